//! The one place the simulator reads time.
//!
//! Monotonic time comes from `tokio::time::Instant`, so tests that pause
//! tokio's clock control every deadline the simulator keeps (conformance
//! windows, token expiry, drain grace). Wall-clock time is only used for
//! human-readable timestamps in the journal and for expiry dates.

use std::sync::OnceLock;
use std::time::Duration;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// A monotonic instant that follows tokio's (pausable) clock.
pub type Instant = tokio::time::Instant;

/// Now, on tokio's clock.
pub fn now() -> Instant {
    Instant::now()
}

/// `d` from now. A duration too long for the clock (numbers from outside
/// are bounded well below it) gives a deadline a year away instead of a panic.
pub fn deadline_in(d: Duration) -> Instant {
    let now = now();
    now.checked_add(d)
        .or_else(|| now.checked_add(Duration::from_secs(365 * 24 * 3600)))
        .unwrap_or(now)
}

/// Sleep until `deadline`, or forever when there is none: a `select!`
/// branch that is disabled by leaving its deadline unset.
pub async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// Milliseconds since the process first asked for the time: a compact,
/// monotonic stamp that fits in an atomic (used for per-connection activity).
pub fn mono_ms() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    let start = *START.get_or_init(now);
    u64::try_from(now().duration_since(start).as_millis()).unwrap_or(u64::MAX)
}

/// Wall-clock time in UTC.
pub fn wall() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

/// Wall-clock time as RFC 3339 with millisecond precision (trailing zeros
/// of the fraction dropped, as `time`'s RFC 3339 formatter writes it).
///
/// Every journal entry takes one, so the date and time of the current second
/// are formatted once per thread and second: formatting them each time was
/// ~5% of the instructions of an event (callgrind, bench/RESULTS.md).
pub fn wall_rfc3339() -> String {
    rfc3339_ms(wall())
}

/// `now` as RFC 3339 at millisecond precision (see `wall_rfc3339`).
fn rfc3339_ms(now: OffsetDateTime) -> String {
    use std::cell::RefCell;
    use std::fmt::Write as _;
    thread_local! {
        /// The unix second and its `YYYY-MM-DDTHH:MM:SS`.
        static SECOND: RefCell<(i64, String)> = const { RefCell::new((i64::MIN, String::new())) };
    }
    let (unix, ms) = (now.unix_timestamp(), now.millisecond());
    let mut out = String::with_capacity(24);
    SECOND.with(|cached| {
        let mut cached = cached.borrow_mut();
        if cached.0 != unix {
            let whole = now.replace_nanosecond(0).unwrap_or(now);
            let mut text = whole.format(&Rfc3339).unwrap_or_default();
            text.pop(); // the `Z`
            *cached = (unix, text);
        }
        out.push_str(&cached.1);
    });
    if ms != 0 {
        let _ = write!(out, ".{ms:03}");
        while out.ends_with('0') {
            out.pop();
        }
    }
    out.push('Z');
    out
}

/// `Duration` to whole milliseconds, saturating.
pub fn as_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The cached formatter writes what `time` writes, for every millisecond
    /// and across second, day and year boundaries.
    #[test]
    fn rfc3339_ms_matches_time_formatting() {
        let starts = [0i64, 1_767_225_599, 1_767_225_600, 1_798_761_599, 951_782_399];
        for start in starts {
            for ms in (0..2000).step_by(7).chain([0, 10, 100, 120, 999, 1000, 1999]) {
                let t = OffsetDateTime::from_unix_timestamp(start).unwrap() + Duration::from_millis(ms);
                let t = t.replace_nanosecond(t.millisecond() as u32 * 1_000_000).unwrap();
                assert_eq!(rfc3339_ms(t), t.format(&Rfc3339).unwrap(), "at {start} + {ms} ms");
            }
        }
    }
}
