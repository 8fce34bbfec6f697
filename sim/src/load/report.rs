//! What a load run measured, and how it is printed: text for people, one
//! JSON object (`--json`) for the bench scripts.

use super::LoadArgs;
use super::device::Failure;
use serde::Serialize;
use std::collections::BTreeMap;

/// Distinct failure reasons counted one by one (the rest count as "other").
const MAX_REASONS: usize = 32;
/// Failures shown in full.
const FIRST_FAILURES: usize = 5;

/// The whole run.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub devices: u32,
    pub url: String,
    pub rate: f64,
    pub connect: ConnectReport,
    /// The server's VmRSS before connecting and once all were held (KiB).
    pub rss_before_kib: Option<u64>,
    pub rss_held_kib: Option<u64>,
    /// The load generator's own VmRSS once all were held (KiB).
    pub client_rss_kib: Option<u64>,
    pub broadcasts: Option<BroadcastReport>,
    pub events: Option<EventsReport>,
    /// Devices whose downchannel ended while held, and the first reason.
    pub dropped: u64,
    pub first_drop: Option<String>,
    /// The process's open-file soft limit, when it is too low for the run.
    pub fd_limit_warning: Option<String>,
}

#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConnectReport {
    pub held: usize,
    pub failed: usize,
    /// From the first connection started to the last device held.
    pub seconds_to_hold_all: f64,
    pub devices_per_second: f64,
    pub failures: Failures,
    /// Setups retried after a transient failure (reset, refused), and the first reason.
    pub retries: u64,
    pub first_retry: Option<String>,
}

/// Failures counted by step and reason, the first few kept whole.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Failures {
    pub total: usize,
    pub by_reason: BTreeMap<String, usize>,
    pub first: Vec<String>,
}

impl Failures {
    pub fn add(&mut self, f: &Failure) {
        self.total = self.total.saturating_add(1);
        let mut reason: String = format!("{}: {}", f.step, f.reason);
        if self.first.len() < FIRST_FAILURES {
            self.first.push(reason.clone());
        }
        reason.truncate(reason.char_indices().nth(160).map_or(reason.len(), |(i, _)| i));
        if self.by_reason.len() >= MAX_REASONS && !self.by_reason.contains_key(&reason) {
            reason = "other".into();
        }
        let n = self.by_reason.entry(reason).or_default();
        *n = n.saturating_add(1);
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BroadcastReport {
    pub broadcasts: u32,
    /// Sum of the `devices` the simulator answered.
    pub queued: u64,
    /// Devices held at each broadcast, summed.
    pub expected: usize,
    pub delivered: usize,
    /// Delivery at the device, from just before the POST.
    pub latency_ms: Latency,
    /// The POST's own duration (until the 202).
    pub post_ms: Latency,
}

#[derive(Debug, Default, Serialize)]
pub struct Latency {
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
}

impl Latency {
    /// Nearest-rank percentiles (zeros for no samples).
    pub fn of(samples: &mut [f64]) -> Latency {
        if samples.is_empty() {
            return Latency::default();
        }
        samples.sort_by(f64::total_cmp);
        let rank = |p: f64| {
            let i = ((p * samples.len() as f64).ceil() as usize).clamp(1, samples.len());
            samples[i - 1]
        };
        Latency {
            p50: rank(0.50),
            p99: rank(0.99),
            max: samples[samples.len() - 1],
        }
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EventsReport {
    pub seconds: f64,
    /// Events the generator handed out.
    pub asked: u64,
    pub ok: u64,
    pub failed: u64,
    /// Events not handed out because that device was still busy with earlier ones.
    pub backlogged: u64,
    pub ok_per_second: f64,
}

impl Report {
    pub fn new(args: &LoadArgs) -> Report {
        Report {
            devices: args.devices,
            url: args.url.clone(),
            rate: args.rate,
            connect: ConnectReport::default(),
            rss_before_kib: None,
            rss_held_kib: None,
            client_rss_kib: None,
            broadcasts: None,
            events: None,
            dropped: 0,
            first_drop: None,
            fd_limit_warning: fd_warning(args.devices),
        }
    }

    /// Every device held, and every broadcast delivered to every held device.
    pub fn complete(&self) -> bool {
        let all_held = self.connect.held == self.devices as usize;
        let all_delivered = self.broadcasts.as_ref().is_none_or(|b| b.delivered >= b.expected);
        all_held && all_delivered
    }

    /// Server KiB per held device (held − before, over the devices held).
    pub fn kib_per_device(&self) -> Option<f64> {
        let (before, held) = (self.rss_before_kib?, self.rss_held_kib?);
        (self.connect.held > 0).then(|| (held.saturating_sub(before)) as f64 / self.connect.held as f64)
    }

    pub fn print(&self, json: bool) {
        if json {
            let mut doc = serde_json::to_value(self).unwrap_or_default();
            doc["kibPerDevice"] = serde_json::json!(self.kib_per_device());
            println!("{doc}");
        } else {
            self.print_text();
        }
    }

    fn print_text(&self) {
        let c = &self.connect;
        println!(
            "load: {}/{} devices held in {:.2} s ({:.0} devices/s; asked {}/s) against {}",
            c.held, self.devices, c.seconds_to_hold_all, c.devices_per_second, self.rate, self.url
        );
        if let Some(w) = &self.fd_limit_warning {
            println!("load: warning: {w}");
        }
        println!("load: failures: {}", c.failed);
        if c.retries > 0 {
            println!(
                "load: setups retried: {} (first: {})",
                c.retries,
                c.first_retry.as_deref().unwrap_or("?")
            );
        }
        for (reason, n) in &c.failures.by_reason {
            println!("load:   {n} × {reason}");
        }
        if let (Some(before), Some(held)) = (self.rss_before_kib, self.rss_held_kib) {
            println!(
                "load: server RSS {before} KiB before, {held} KiB held: {:.1} KiB per held device",
                self.kib_per_device().unwrap_or(0.0)
            );
        }
        if let Some(b) = &self.broadcasts {
            println!(
                "load: {} broadcasts: delivered {}/{} (queued {}), latency p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms (POST p50 {:.1} ms)",
                b.broadcasts,
                b.delivered,
                b.expected,
                b.queued,
                b.latency_ms.p50,
                b.latency_ms.p99,
                b.latency_ms.max,
                b.post_ms.p50
            );
        }
        if let Some(e) = &self.events {
            println!(
                "load: events over {:.1} s: {} asked, {} ok ({:.0}/s), {} failed, {} backlogged",
                e.seconds, e.asked, e.ok, e.ok_per_second, e.failed, e.backlogged
            );
        }
        if self.dropped > 0 {
            println!(
                "load: {} devices dropped while held (first: {})",
                self.dropped,
                self.first_drop.as_deref().unwrap_or("?")
            );
        }
    }
}

/// VmRSS of a process, in KiB, from /proc/PID/status.
pub fn rss_kib(pid: u32) -> Option<u64> {
    status_kib(&format!("/proc/{pid}/status"), "VmRSS:")
}

/// This process's VmRSS, in KiB.
pub fn self_rss_kib() -> Option<u64> {
    status_kib("/proc/self/status", "VmRSS:")
}

fn status_kib(path: &str, key: &str) -> Option<u64> {
    let text = std::fs::read_to_string(path).ok()?;
    let line = text.lines().find(|l| l.starts_with(key))?;
    line[key.len()..].split_whitespace().next()?.parse().ok()
}

/// A warning when the open-file soft limit cannot hold every connection
/// (connections past it fail with EMFILE, "Too many open files").
fn fd_warning(devices: u32) -> Option<String> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    let soft: u64 = line["Max open files".len()..].split_whitespace().next()?.parse().ok()?;
    let needed = u64::from(devices).saturating_add(64);
    (soft < needed).then(|| {
        format!("open-file soft limit {soft} is below the {needed} this run needs (raise it with `ulimit -n`)")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_and_failures() {
        let mut s: Vec<f64> = (1..=100).map(f64::from).collect();
        let l = Latency::of(&mut s);
        assert_eq!((l.p50, l.p99, l.max), (50.0, 99.0, 100.0));
        assert_eq!(Latency::of(&mut []).max, 0.0);
        let mut f = Failures::default();
        for i in 0..40 {
            f.add(&Failure {
                step: "connect",
                reason: format!("reason {i}"),
                transient: true,
            });
        }
        assert_eq!(f.total, 40);
        assert_eq!(f.first.len(), FIRST_FAILURES);
        assert_eq!(f.by_reason.len(), MAX_REASONS + 1);
        assert_eq!(f.by_reason["other"], 40 - MAX_REASONS);
    }
}
