//! `avs-sim device`: a reference AVS client that behaves like the AVS
//! Device SDK, and can break one rule on purpose (`--misbehave`) so the
//! simulator's conformance checks can be shown to catch it.
//!
//! - `transport`: one HTTP/2 connection (TLS or h2c), requests, the downchannel reader.
//! - `session`: what the device does on one connection, and why it leaves it.
//! - this file: arguments, the reconnect loop with the SDK's backoff.

mod session;
pub(crate) mod transport;

use clap::ValueEnum;
use std::process::ExitCode;
use std::time::Duration;

/// Rules the device can break on purpose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Misbehave {
    /// Do not send SynchronizeState after connecting.
    SkipSynchronizeState,
    /// Answer ReportSoftwareInfo with firmwareVersion "0".
    BadFirmwareVersion,
    /// Ignore ReportSoftwareInfo.
    NoSoftwareInfo,
    /// Ignore malformed directives (no ExceptionEncountered).
    NoException,
    /// Send ExceptionEncountered with an altered unparsedDirective.
    WrongUnparsedDirective,
    /// Ignore SetEndpoint.
    IgnoreSetEndpoint,
    /// Never ping.
    NoPing,
    /// Never send UserInactivityReport.
    NoInactivityReport,
    /// Reuse one messageId for every event.
    DuplicateMessageIds,
    /// Send SynchronizeState before opening the downchannel.
    EventsBeforeDownchannel,
    /// Declare System 1.0 (without SoftwareInfo) in the Capabilities API.
    DeclareSystem10,
    /// Ignore ResetUserInactivity (keep counting inactivity).
    IgnoreResetInactivity,
    /// Exit instead of reconnecting when the connection is lost.
    NoReconnect,
    /// Never refresh the token after a 403.
    NoRefresh,
}

/// Options of `avs-sim device`.
#[derive(Debug, Clone, clap::Args)]
pub struct DeviceArgs {
    /// AVS base URL: https:// (TLS, ALPN h2) or http:// (h2c prior knowledge).
    #[arg(long, env = "AVS_SIM_AVS_URL", value_name = "URL")]
    pub url: String,
    /// Bearer token (the access token; with --refresh-token, replaced by LWA's).
    #[arg(long, value_name = "TOKEN")]
    pub token: String,
    /// CA certificate to trust for https:// URLs.
    #[arg(long, env = "AVS_SIM_CA", value_name = "FILE")]
    pub ca: Option<std::path::PathBuf>,
    /// Use h2c prior knowledge even for an https:// URL's host and port.
    #[arg(long)]
    pub h2c: bool,
    /// Refresh the access token through LWA (`/auth/o2/token`) before connecting and on 403.
    #[arg(long, value_name = "TOKEN")]
    pub refresh_token: Option<String>,
    /// firmwareVersion to report.
    #[arg(long, default_value = "1", value_name = "N")]
    pub firmware: String,
    /// Ping after this long without activity (SDK: 5 minutes).
    #[arg(long, default_value = "5m", value_parser = parse_duration, value_name = "DURATION")]
    pub ping_interval: Duration,
    /// Give up on a ping after this long and reconnect (SDK: 30 s).
    #[arg(long, default_value = "30s", value_parser = parse_duration, value_name = "DURATION")]
    pub ping_timeout: Duration,
    /// UserInactivityReport cadence (SDK: 1 hour).
    #[arg(long, default_value = "1h", value_parser = parse_duration, value_name = "DURATION")]
    pub inactivity_interval: Duration,
    /// Break one rule on purpose.
    #[arg(long, value_enum, value_name = "RULE")]
    pub misbehave: Option<Misbehave>,
    /// Exit after this many connections end (for tests; default: run until SIGTERM).
    #[arg(long, hide = true)]
    pub max_sessions: Option<u32>,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    crate::duration::parse(text)
}

/// The SDK's transport reconnect backoff: 0.25, 1, 3, 5, 10, 20 s, ±50 %
/// (reference avs.md §7, TransportDefines.cpp).
pub const BACKOFF: [Duration; 6] = [
    Duration::from_millis(250),
    Duration::from_secs(1),
    Duration::from_secs(3),
    Duration::from_secs(5),
    Duration::from_secs(10),
    Duration::from_secs(20),
];

/// The wait before reconnect attempt `n` (0-based), with ±50 % jitter.
pub fn backoff(n: usize) -> Duration {
    let base = BACKOFF[n.min(BACKOFF.len() - 1)];
    base.mul_f64(0.5 + rand::random::<f64>())
}

/// Entry point of `avs-sim device`.
pub fn main(args: DeviceArgs) -> ExitCode {
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("device: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run(args))
}

/// Why a session ended.
#[derive(Debug)]
pub enum Next {
    /// Reconnect to the same endpoint (GOAWAY, downchannel ended, ping failed).
    Reconnect(String),
    /// SetEndpoint: connect to this URL instead.
    MoveTo(String),
    /// The token was refused: refresh it, then reconnect.
    Refresh,
    /// The server refused the session (e.g. SynchronizeState not 2xx): back off, then reconnect.
    Backoff(String),
    /// Shutting down.
    Stop,
}

async fn run(args: DeviceArgs) -> ExitCode {
    let mut device = session::Device::new(args.clone());
    let mut endpoint = args.url.clone();
    let mut failures = 0usize;
    let mut sessions = 0u32;
    let mut stop = std::pin::pin!(stop_signal());
    loop {
        if args.refresh_token.is_some() && device.needs_token() {
            if let Err(e) = device.refresh(&endpoint).await {
                println!("device: LWA refresh failed: {e}");
            }
        }
        let outcome = tokio::select! {
            o = device.session(&endpoint) => o,
            _ = &mut stop => Ok(Next::Stop),
        };
        sessions += 1;
        match outcome {
            Ok(Next::Stop) => return ExitCode::SUCCESS,
            Ok(Next::MoveTo(url)) if url == endpoint => {
                println!("device: SetEndpoint to the current endpoint: nothing to do");
                continue;
            }
            Ok(Next::MoveTo(url)) => {
                println!("device: SetEndpoint: moving to {url}");
                endpoint = url;
                failures = 0;
                continue;
            }
            Ok(Next::Refresh) if args.misbehave != Some(Misbehave::NoRefresh) => {
                println!("device: 403: refreshing the token");
                device.forget_token();
                failures += 1;
            }
            Ok(Next::Refresh) => {
                println!("device: 403, and not refreshing (--misbehave no-refresh)");
                failures += 1;
            }
            Ok(Next::Backoff(why)) => {
                println!("device: backing off: {why}");
                failures += 1;
            }
            Ok(Next::Reconnect(why)) => {
                println!("device: reconnecting: {why}");
                failures = 0;
            }
            Err(e) => {
                let text = format!("{e:#}");
                println!("device: connection failed: {text}");
                if let Some(hint) = tls_hint(&text, args.ca.is_some()) {
                    println!("device: {hint}");
                }
                failures += 1;
            }
        }
        if args.misbehave == Some(Misbehave::NoReconnect) {
            println!("device: not reconnecting (--misbehave no-reconnect)");
            return ExitCode::SUCCESS;
        }
        if args.max_sessions.is_some_and(|m| sessions >= m) {
            return ExitCode::SUCCESS;
        }
        let wait = if failures == 0 {
            Duration::ZERO
        } else {
            backoff(failures - 1)
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = &mut stop => return ExitCode::SUCCESS,
        }
    }
}

/// What to do about a certificate the device does not trust: the usual
/// cause is a missing `--ca` (the simulator's CA is not in the system store).
fn tls_hint(error: &str, ca_given: bool) -> Option<String> {
    let untrusted = ["UnknownIssuer", "invalid peer certificate", "certificate verify failed"]
        .iter()
        .any(|m| error.contains(m));
    match (untrusted, ca_given) {
        (false, _) => None,
        (true, false) => Some(
            "the server's certificate is not trusted: pass the simulator's CA with --ca certs/ca.pem \
             (or set AVS_SIM_CA), from the directory `avs-sim serve` runs in"
                .into(),
        ),
        (true, true) => Some(
            "the server's certificate is not issued by the --ca given: is it the CA of this simulator \
             (certs/ca.pem where `avs-sim serve` runs)?"
                .into(),
        ),
    }
}

async fn stop_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) {
        (Ok(mut i), Ok(mut t)) => {
            tokio::select! {
                _ = i.recv() => {}
                _ = t.recv() => {}
            }
        }
        _ => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_untrusted_certificate_says_to_pass_the_ca() {
        let e = "TLS handshake: invalid peer certificate: UnknownIssuer";
        assert!(tls_hint(e, false).unwrap().contains("--ca certs/ca.pem"));
        assert!(tls_hint(e, true).unwrap().contains("not issued by the --ca given"));
        assert_eq!(tls_hint("connection refused", false), None);
    }

    #[test]
    fn backoff_follows_the_sdk_table_with_jitter() {
        for (n, base) in BACKOFF.iter().enumerate() {
            let d = backoff(n);
            assert!(d >= base.mul_f64(0.5) && d <= base.mul_f64(1.5), "{n}: {d:?}");
        }
        assert!(backoff(50) <= Duration::from_secs(30));
    }
}
