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

/// Wall-clock time as RFC 3339 with millisecond precision.
pub fn wall_rfc3339() -> String {
    let now = wall();
    let now = now
        .replace_nanosecond(now.millisecond() as u32 * 1_000_000)
        .unwrap_or(now);
    now.format(&Rfc3339).unwrap_or_default()
}

/// `Duration` to whole milliseconds, saturating.
pub fn as_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
