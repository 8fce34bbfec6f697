//! `avs-sim load`: a load generator of many devices in one process, for the
//! benchmarks in `bench/` (devices held, server memory per device,
//! broadcast delivery latency).
//!
//! - `device`: one device's life: a connection (the reference device's
//!   `Transport`), a downchannel, SynchronizeState, then reading directives
//!   and sending the events it is handed until told to stop.
//! - `fleet`: starting devices at a rate, collecting what became of them,
//!   and the events sent during the hold.
//! - `broadcast`: `POST /api/directives/broadcast` and the deliveries the
//!   devices see, for latency from the POST.
//! - `report`: percentiles, server RSS from /proc, the text and JSON report.
//! - this file: arguments, their bounds, and the order of a run.

mod broadcast;
mod device;
mod fleet;
mod report;

use std::process::ExitCode;
use std::time::Duration;

/// Most devices one run may start (the fd ceiling of one process is lower
/// on most machines; the run says so when connections fail with EMFILE).
pub const MAX_DEVICES: u32 = 100_000;
/// Highest connection rate (devices per second).
pub const MAX_RATE: f64 = 100_000.0;
/// Highest total event rate during the hold.
pub const MAX_EVENT_RATE: f64 = 1_000_000.0;
/// Most broadcasts one run may send.
pub const MAX_BROADCASTS: u32 = 10_000;
/// Longest hold.
pub const MAX_HOLD: Duration = Duration::from_secs(24 * 3600);

/// Options of `avs-sim load`.
#[derive(Debug, Clone, clap::Args)]
pub struct LoadArgs {
    /// How many devices to connect and hold (1..=100000).
    #[arg(long, value_name = "N")]
    pub devices: u32,
    /// AVS base URL: http:// (h2c prior knowledge) or https:// (TLS, ALPN h2).
    #[arg(long, value_name = "URL")]
    pub url: String,
    /// CA certificate to trust for an https:// URL.
    #[arg(long, value_name = "PEM")]
    pub ca: Option<std::path::PathBuf>,
    /// New connections per second (> 0, at most 100000).
    #[arg(long, default_value_t = 2000.0, value_name = "R")]
    pub rate: f64,
    /// Most connections being set up at once.
    #[arg(long, default_value_t = 512, value_name = "N")]
    pub concurrency: u32,
    /// Total events per second the held devices send during the hold (0: none).
    #[arg(long, default_value_t = 0.0, value_name = "E")]
    pub events_per_second: f64,
    /// How long to hold every device after they are all connected (and after any broadcasts).
    #[arg(long, default_value = "0s", value_parser = parse_duration, value_name = "DURATION")]
    pub hold: Duration,
    /// Give up on a device whose connection, downchannel and SynchronizeState take longer.
    #[arg(long, default_value = "60s", value_parser = parse_duration, value_name = "DURATION")]
    pub setup_timeout: Duration,
    /// The server's process id: its VmRSS is read before connecting and once all devices are held.
    #[arg(long, value_name = "PID")]
    pub server_pid: Option<u32>,
    /// Control API base URL of the server, for --broadcasts.
    #[arg(long, value_name = "URL")]
    pub control: Option<String>,
    /// Broadcasts to send once all devices are held (needs --control), one after another.
    #[arg(long, default_value_t = 0, value_name = "K")]
    pub broadcasts: u32,
    /// How long to wait for every device to receive one broadcast.
    #[arg(long, default_value = "10s", value_parser = parse_duration, value_name = "DURATION")]
    pub broadcast_deadline: Duration,
    /// Device tokens are this prefix and a 6-digit number (load-000001, ...);
    /// a lenient simulator takes each token as its device id.
    #[arg(long, default_value = "load-", value_name = "PREFIX")]
    pub token_prefix: String,
    /// Print the report as one JSON object.
    #[arg(long)]
    pub json: bool,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    crate::duration::parse(text)
}

impl LoadArgs {
    /// Every number range-checked, every combination that cannot work refused.
    pub fn validate(&self) -> Result<(), String> {
        let mut errors = Vec::new();
        let mut check = |ok: bool, why: String| {
            if !ok {
                errors.push(why);
            }
        };
        check(
            (1..=MAX_DEVICES).contains(&self.devices),
            format!("--devices must be 1..={MAX_DEVICES}, got {}", self.devices),
        );
        check(
            self.rate.is_finite() && self.rate > 0.0 && self.rate <= MAX_RATE,
            format!("--rate must be > 0 and at most {MAX_RATE}, got {}", self.rate),
        );
        check(
            (1..=100_000).contains(&self.concurrency),
            format!("--concurrency must be 1..=100000, got {}", self.concurrency),
        );
        check(
            self.events_per_second.is_finite() && (0.0..=MAX_EVENT_RATE).contains(&self.events_per_second),
            format!(
                "--events-per-second must be 0..={MAX_EVENT_RATE}, got {}",
                self.events_per_second
            ),
        );
        check(self.hold <= MAX_HOLD, "--hold must be at most 24h".into());
        check(
            !self.setup_timeout.is_zero() && self.setup_timeout <= Duration::from_secs(3600),
            "--setup-timeout must be > 0 and at most 1h".into(),
        );
        check(
            !self.broadcast_deadline.is_zero() && self.broadcast_deadline <= Duration::from_secs(3600),
            "--broadcast-deadline must be > 0 and at most 1h".into(),
        );
        check(
            self.broadcasts <= MAX_BROADCASTS,
            format!("--broadcasts must be at most {MAX_BROADCASTS}, got {}", self.broadcasts),
        );
        check(
            self.broadcasts == 0 || self.control.is_some(),
            "--broadcasts needs --control URL".into(),
        );
        check(
            self.url.starts_with("http://") || self.url.starts_with("https://"),
            format!("--url must be http:// or https://, got {:?}", self.url),
        );
        check(
            self.token_prefix.len() <= 64 && self.token_prefix.chars().all(|c| c.is_ascii_graphic()),
            "--token-prefix must be at most 64 visible ASCII characters".into(),
        );
        if let Some(pid) = self.server_pid {
            check(
                report::rss_kib(pid).is_some(),
                format!("--server-pid {pid}: no VmRSS in /proc/{pid}/status"),
            );
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors.join("\n"))
        }
    }

    /// The token (and, on a lenient simulator, the device id) of device `n` (1-based).
    pub fn token(&self, n: u32) -> String {
        format!("{}{n:06}", self.token_prefix)
    }
}

/// Entry point of `avs-sim load`: exit 0 when every device was held (and
/// every broadcast delivered to all), 1 otherwise, 2 for invalid arguments.
pub fn main(args: LoadArgs) -> ExitCode {
    if let Err(why) = args.validate() {
        eprintln!("avs-sim load: {why}");
        return ExitCode::from(2);
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("avs-sim load: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(run(&args));
    // Dropping the runtime closes every connection at once.
    drop(runtime);
    match outcome {
        Ok(report) => {
            report.print(args.json);
            if report.complete() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(why) => {
            eprintln!("avs-sim load: {why:#}");
            ExitCode::FAILURE
        }
    }
}

/// One run: connect, measure, broadcast, hold with events, report.
async fn run(args: &LoadArgs) -> anyhow::Result<report::Report> {
    let mut report = report::Report::new(args);
    report.rss_before_kib = args.server_pid.and_then(report::rss_kib);
    let mut fleet = fleet::Fleet::start(args)?;
    let connected = fleet.connect_all(args).await;
    report.connect = connected;
    report.rss_held_kib = args.server_pid.and_then(report::rss_kib);
    report.client_rss_kib = report::self_rss_kib();
    if args.broadcasts > 0 {
        let control = args.control.as_deref().unwrap_or_default();
        report.broadcasts = Some(broadcast::run(args, control, &fleet).await?);
    }
    if !args.hold.is_zero() {
        report.events = Some(fleet.hold(args).await);
    }
    (report.dropped, report.first_drop) = fleet.dropped();
    fleet.stop();
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        load: LoadArgs,
    }

    fn args(extra: &[&str]) -> LoadArgs {
        let mut argv = vec!["load", "--url", "http://127.0.0.1:1"];
        argv.extend_from_slice(extra);
        Cli::try_parse_from(argv).unwrap().load
    }

    #[test]
    fn numbers_are_range_checked() {
        assert!(args(&["--devices", "10"]).validate().is_ok());
        let bad = args(&[
            "--devices",
            "0",
            "--rate",
            "0",
            "--events-per-second=-1",
            "--broadcasts",
            "2",
        ])
        .validate()
        .unwrap_err();
        assert!(bad.contains("--devices"), "{bad}");
        assert!(bad.contains("--rate"), "{bad}");
        assert!(bad.contains("--events-per-second"), "{bad}");
        assert!(bad.contains("--control"), "{bad}");
        assert!(args(&["--devices", "100001"]).validate().is_err());
        assert!(args(&["--devices", "1", "--rate", "NaN"]).validate().is_err());
        assert_eq!(args(&["--devices", "1"]).token(42), "load-000042");
    }
}
