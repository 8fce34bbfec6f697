//! The command line: `avs-sim serve`, `run`, `check`, `certs`, `device`, `health`, `completions`.

use crate::config::{AuthMode, Config};
use crate::scenario::progress::{Progress, ProgressMode};
use clap::{Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

/// avs-sim: an offline stand-in for the Alexa cloud (AVS for devices, LWA,
/// the Capabilities API), for laptops and CI.
#[derive(Debug, Parser)]
#[command(name = "avs-sim", version, about, long_about = None)]
pub struct Cli {
    /// How the log on stderr is written: `pretty` (for people; coloured only
    /// on a terminal) or `json` (one object per line, for log collectors).
    /// `RUST_LOG` filters it (default `avs_sim=info`).
    #[arg(long, value_enum, global = true, default_value_t = LogFormat::Pretty)]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

/// `--log-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Pretty,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the simulator until SIGINT/SIGTERM (then drain open streams and exit 0).
    ///
    /// Settings come from built-in defaults, then --config FILE, then
    /// AVS_SIM_* environment variables (the key path in upper case joined by
    /// `_`, e.g. AVS_SIM_LISTEN_AVS=127.0.0.1:443, AVS_SIM_AUTH=strict,
    /// AVS_SIM_AVS_MAX_EVENT_BYTES=1000000), then these flags.
    Serve(ServeArgs),
    /// Generate (or reuse) the local CA and the server certificate.
    Certs(CertsArgs),
    /// Run scenario files against an in-process simulator.
    ///
    /// Exit codes: 0 all passed, 1 a scenario failed, 2 invalid input.
    Run(RunArgs),
    /// Validate scenario files without running them; every mistake is
    /// listed with file:line:column. Exit 2 when there is any.
    Check(CheckArgs),
    /// A reference AVS device that behaves like the AVS Device SDK.
    Device(crate::device::DeviceArgs),
    /// A load generator: many devices in one process (one HTTP/2 connection,
    /// downchannel and SynchronizeState each), reporting connect rate, the
    /// server's memory per held device (--server-pid) and broadcast delivery
    /// latency (--control, --broadcasts).
    ///
    /// Exit codes: 0 every device held and every broadcast delivered, 1 otherwise, 2 invalid arguments.
    Load(crate::load::LoadArgs),
    /// Print a shell completion script (e.g. `avs-sim completions bash > /etc/bash_completion.d/avs-sim`).
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Ask a running simulator whether it is healthy (GET /healthz on the
    /// control listener); the Docker image's HEALTHCHECK.
    ///
    /// Exit codes: 0 healthy (HTTP 200, status "ok"), 1 anything else, with one line saying why.
    Health(HealthArgs),
}

#[derive(Debug, clap::Args)]
pub struct HealthArgs {
    /// The control listener [default: http://<listen.control default>, i.e. http://127.0.0.1:9090].
    #[arg(long, value_name = "URL", env = "AVS_SIM_CONTROL_URL")]
    pub url: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Scenario files, run in order.
    #[arg(required = true, value_name = "SCENARIO.toml")]
    pub scenarios: Vec<PathBuf>,
    /// Write JUnit XML here (one testsuite per file, one testcase per scenario).
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Write a JSON report here (every step, timings, journal ids).
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// Start the device under test once the listeners are ready (via `sh -c`),
    /// with AVS_SIM_AVS_URL, AVS_SIM_PLAIN_URL, AVS_SIM_CONTROL_URL and AVS_SIM_CA
    /// in its environment; its output goes into the reports; it is stopped at the end.
    #[arg(long, value_name = "CMD")]
    pub spawn: Option<String>,
    /// Live counters on stderr (scenarios done/total, steps passed/failed,
    /// time elapsed): `auto` on a terminal only, as one line updated in
    /// place; `always` also into files and pipes, as a plain line after each
    /// scenario and every 5 s; `never`. Stdout and the reports are the same
    /// whichever is chosen.
    #[arg(long, value_enum, default_value_t = ProgressMode::Auto, value_name = "WHEN")]
    pub progress: ProgressMode,
    /// Listener flags and config as for `serve`, except that a listener left
    /// at its default takes a free port (127.0.0.1:0).
    #[command(flatten)]
    pub serve: ServeArgs,
}

#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    #[arg(required = true, value_name = "SCENARIO.toml")]
    pub scenarios: Vec<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// TOML config file; every key has a default, so none is needed.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// AVS listener: TLS with ALPN h2 and http/1.1 [config: listen.avs; default 127.0.0.1:8443].
    #[arg(long, value_name = "ADDR")]
    pub avs_listen: Option<SocketAddr>,
    /// Plaintext listener: h2c prior knowledge and HTTP/1.1 [config: listen.plain; default 127.0.0.1:8080].
    #[arg(long, value_name = "ADDR")]
    pub plain_listen: Option<SocketAddr>,
    /// Control API listener [config: listen.control; default 127.0.0.1:9090].
    #[arg(long, value_name = "ADDR")]
    pub control_listen: Option<SocketAddr>,
    /// Directory of the CA and server certificate [config: certs.dir; default certs].
    #[arg(long, value_name = "DIR")]
    pub certs: Option<PathBuf>,
    /// Also append every journal entry to this JSONL file [config: journal.file].
    #[arg(long, value_name = "FILE")]
    pub journal: Option<PathBuf>,
    /// lenient: any token is accepted and is the device id; strict: only known, unexpired tokens [config: auth].
    #[arg(long, value_enum)]
    pub auth: Option<AuthArg>,
    /// Run this scenario file each time one of its devices connects (repeatable);
    /// results in the journal and at GET /api/scenarios [config: scenarios].
    #[arg(long = "scenario", id = "serve_scenarios", value_name = "FILE")]
    pub scenarios: Vec<PathBuf>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum AuthArg {
    Lenient,
    Strict,
}

#[derive(Debug, clap::Args)]
pub struct CertsArgs {
    /// Where to write ca.pem, ca.key, server.pem, server.key.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// An extra host name or IP address for the server certificate (repeatable).
    #[arg(long = "host", value_name = "NAME")]
    pub hosts: Vec<String>,
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.log_format);
    match cli.command {
        Command::Completions { shell } => {
            use clap::CommandFactory;
            clap_complete::generate(shell, &mut Cli::command(), "avs-sim", &mut std::io::stdout());
            ExitCode::SUCCESS
        }
        Command::Serve(args) => serve(args),
        Command::Certs(args) => certs(args),
        Command::Run(args) => run(args),
        Command::Check(args) => check(args),
        Command::Device(args) => crate::device::main(args),
        Command::Load(args) => crate::load::main(args),
        Command::Health(args) => health(args),
    }
}

fn health(args: HealthArgs) -> ExitCode {
    let url = args.url.unwrap_or_else(crate::healthcheck::default_url);
    let outcome = runtime().map(|rt| rt.block_on(crate::healthcheck::check(&url)));
    match outcome {
        Ok(Ok(listeners)) => {
            println!("avs-sim: healthy: {url} (listeners {listeners})");
            ExitCode::SUCCESS
        }
        Ok(Err(why)) => exit(1)(format!("unhealthy: {why}")),
        Err(code) => code,
    }
}

/// The stderr log: filtered by `RUST_LOG`; colour codes only when stderr is
/// a terminal (a log redirected to a file or CI stays plain text).
fn init_tracing(format: LogFormat) {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("avs_sim=info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        // A log line first blanks `run`'s live progress line, if one is on
        // screen, so the two never share a line (it is drawn again after).
        .with_writer(|| {
            crate::scenario::progress::clear_line();
            std::io::stderr()
        })
        .with_ansi(std::io::stderr().is_terminal());
    let _ = match format {
        LogFormat::Pretty => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// The config `serve` runs with: file, environment, then flags.
pub fn serve_config(
    args: &ServeArgs,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<Config, crate::config::ConfigError> {
    let mut config = Config::load(args.config.as_deref(), env)?;
    if let Some(a) = args.avs_listen {
        config.listen.avs = a;
    }
    if let Some(a) = args.plain_listen {
        config.listen.plain = a;
    }
    if let Some(a) = args.control_listen {
        config.listen.control = a;
    }
    if let Some(d) = &args.certs {
        config.certs.dir = d.clone();
    }
    if let Some(j) = &args.journal {
        config.journal.file = Some(j.clone());
    }
    if !args.scenarios.is_empty() {
        config.scenarios.extend(args.scenarios.iter().cloned());
    }
    if let Some(a) = args.auth {
        config.auth = match a {
            AuthArg::Lenient => AuthMode::Lenient,
            AuthArg::Strict => AuthMode::Strict,
        };
    }
    config.validate()?;
    Ok(config)
}

/// Exit code 2: the input (flags, config, scenarios) is invalid.
const INVALID: u8 = 2;

/// Print `avs-sim: <why>` and turn it into an exit code.
fn exit(code: u8) -> impl FnOnce(String) -> ExitCode {
    move |why| {
        eprintln!("avs-sim: {why}");
        ExitCode::from(code)
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Runtime::new().map_err(|e| exit(1)(format!("cannot start the runtime: {e}")))
}

/// The serve config with the `--scenario` files' own config folded in.
fn serve_config_with_scenarios(args: &ServeArgs) -> Result<Config, String> {
    let config = serve_config(args, std::env::vars()).map_err(|e| e.to_string())?;
    // Scenario files may add config (regions, devices): fold it in before binding.
    let scenarios = crate::scenario::batch::load_all(&config.scenarios)
        .map_err(|errors| errors.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n"))?;
    crate::scenario::batch::merged_config(&config, &scenarios)
}

fn serve(args: ServeArgs) -> ExitCode {
    let outcome = serve_config_with_scenarios(&args)
        .map_err(exit(INVALID))
        .and_then(|config| {
            let runtime = runtime()?;
            runtime.block_on(serve_until_signal(config))
        });
    outcome.unwrap_or_else(|code| code)
}

async fn serve_until_signal(config: Config) -> Result<ExitCode, ExitCode> {
    let listeners = crate::server::Listeners::bind(&config)
        .await
        .map_err(|e| exit(1)(e.to_string()))?;
    let sim = crate::server::Sim::new(config, listeners).await.map_err(|e| match e {
        crate::server::StartError::Scenario(_) => exit(INVALID)(e.to_string()),
        e => exit(1)(e.to_string()),
    })?;
    // Listen for signals before announcing the listeners, so a signal
    // sent right after the banner is never missed.
    let shutdown = shutdown_signal().map_err(|e| exit(1)(format!("cannot install signal handlers: {e}")))?;
    for line in sim.banner() {
        println!("{line}");
    }
    sim.run(shutdown).await;
    println!("avs-sim: stopped");
    Ok(ExitCode::SUCCESS)
}

/// SIGINT or SIGTERM, registered now, awaited later.
fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut int = signal(SignalKind::interrupt())?;
    let mut term = signal(SignalKind::terminate())?;
    Ok(async move {
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
    })
}

fn certs(args: CertsArgs) -> ExitCode {
    match crate::tls::ensure_certs(&args.out, &args.hosts) {
        Ok(paths) => {
            println!("avs-sim: CA certificate {}", paths.ca_cert.display());
            println!("avs-sim: server certificate {}", paths.server_cert.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("avs-sim: {e}");
            ExitCode::FAILURE
        }
    }
}

fn check(args: CheckArgs) -> ExitCode {
    match crate::scenario::batch::load_all(&args.scenarios) {
        Ok(s) => {
            println!("avs-sim: {} scenario(s) ok", s.len());
            ExitCode::SUCCESS
        }
        Err(errors) => {
            errors.iter().for_each(|e| eprintln!("{e}"));
            eprintln!("avs-sim: {} error(s)", errors.len());
            ExitCode::from(2)
        }
    }
}

fn run(args: RunArgs) -> ExitCode {
    run_scenarios(args).unwrap_or_else(|code| code)
}

/// `run` starts a simulator of its own: a listener nobody chose (by flag,
/// config file or environment) takes a free port (`127.0.0.1:0`), so a run
/// never clashes with a `serve` on the default ports; the spawned device
/// learns the real ones from its environment.
fn free_ports_unless_chosen(config: &mut Config) {
    let defaults = crate::config::Listen::default();
    let free = |a: &mut std::net::SocketAddr, default: std::net::SocketAddr| {
        if *a == default {
            a.set_port(0);
        }
    };
    free(&mut config.listen.avs, defaults.avs);
    free(&mut config.listen.plain, defaults.plain);
    free(&mut config.listen.control, defaults.control);
}

fn run_scenarios(args: RunArgs) -> Result<ExitCode, ExitCode> {
    use crate::scenario::batch;
    let scenarios = batch::load_all(&args.scenarios).map_err(|errors| {
        errors.iter().for_each(|e| eprintln!("{e}"));
        ExitCode::from(INVALID)
    })?;
    let mut config = serve_config(&args.serve, std::env::vars()).map_err(|e| exit(INVALID)(e.to_string()))?;
    free_ports_unless_chosen(&mut config);
    // `run` drives its scenarios itself; none start on connect.
    config.scenarios.clear();
    let config = batch::merged_config(&config, &scenarios).map_err(exit(INVALID))?;
    let progress = {
        use std::io::IsTerminal;
        Progress::new(args.progress, std::io::stderr().is_terminal(), scenarios.len())
    };
    let outcome = runtime()?
        .block_on(batch::run(config, &scenarios, args.spawn.as_deref(), false, progress))
        .map_err(exit(INVALID))?;
    if let Some(path) = &args.junit {
        let xml = crate::scenario::report::junit(&outcome.results, &outcome.device_output);
        batch::write(path, &xml).map_err(exit(INVALID))?;
    }
    if let Some(path) = &args.report {
        let extra = serde_json::json!({"spawn": args.spawn, "device_output": outcome.device_output});
        let doc = crate::scenario::runner::report_json(&outcome.results, extra);
        batch::write(path, &serde_json::to_string_pretty(&doc).unwrap_or_default()).map_err(exit(INVALID))?;
    }
    let failed = outcome.results.iter().filter(|r| !r.passed).count();
    println!("avs-sim: {} scenario(s), {failed} failed", outcome.results.len());
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn run_takes_free_ports_for_listeners_nobody_chose() {
        let mut config = Config::default();
        config.listen.control = "127.0.0.1:9999".parse().unwrap();
        free_ports_unless_chosen(&mut config);
        assert_eq!(config.listen.avs, "127.0.0.1:0".parse().unwrap());
        assert_eq!(config.listen.plain, "127.0.0.1:0".parse().unwrap());
        assert_eq!(config.listen.control, "127.0.0.1:9999".parse().unwrap(), "chosen, kept");
    }

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn flags_override_file_and_environment() {
        let cli = Cli::try_parse_from([
            "avs-sim",
            "serve",
            "--avs-listen",
            "127.0.0.1:1",
            "--auth",
            "strict",
            "--scenario",
            "a.toml",
        ])
        .unwrap();
        let Command::Serve(args) = cli.command else { panic!() };
        let env = [
            ("AVS_SIM_LISTEN_AVS".to_string(), "127.0.0.1:2".to_string()),
            ("AVS_SIM_LISTEN_PLAIN".to_string(), "127.0.0.1:3".to_string()),
        ];
        let c = serve_config(&args, env).unwrap();
        assert_eq!(c.listen.avs.port(), 1, "flag beats environment");
        assert_eq!(c.listen.plain.port(), 3, "environment beats default");
        assert_eq!(c.auth, AuthMode::Strict);
        assert_eq!(c.scenarios, vec![PathBuf::from("a.toml")]);
    }
}
