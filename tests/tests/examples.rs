//! The operator examples tell the truth: `examples/compose.yaml` and the
//! README's CI job. CI has no Docker engine, so this checks what can be
//! checked without one: the YAML parses, every `avs-sim` command line in it
//! is accepted by the real argument parser, ports and volumes agree with the
//! Dockerfile, the CA the firmware trusts is where `serve` writes it; then
//! the same commands run without Docker (the compose pair connects, the CI
//! job passes and writes its JUnit), with `run --progress` checked on the way.

use avs_sim::cli::{Cli, Command as Sub, ServeArgs};
use avs_sim_tests::readme_blocks as blocks;
use avs_sim_tests::{DEADLINE, binary};
use clap::Parser;
use serde_norway::Value;
use std::path::{Path, PathBuf};

fn repo(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").join(path)
}

fn read(path: &str) -> String {
    std::fs::read_to_string(repo(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn compose() -> Value {
    serde_norway::from_str(&read("examples/compose.yaml")).unwrap_or_else(|e| panic!("examples/compose.yaml: {e}"))
}

fn strings(v: &Value) -> Vec<String> {
    let list = v.as_sequence().unwrap_or_else(|| panic!("not a list: {v:?}"));
    list.iter()
        .map(|s| s.as_str().unwrap_or_else(|| panic!("not a string: {s:?}")).to_string())
        .collect()
}

/// `avs-sim ARGS` through the real parser.
fn parse(args: &[String]) -> Cli {
    let argv = std::iter::once("avs-sim".to_string()).chain(args.iter().cloned());
    Cli::try_parse_from(argv).unwrap_or_else(|e| panic!("`avs-sim {}` does not parse: {e}", args.join(" ")))
}

fn serve_args(args: &[String]) -> ServeArgs {
    match parse(args).command {
        Sub::Serve(a) => a,
        other => panic!("not serve: {other:?}"),
    }
}

fn device_args(args: &[String]) -> avs_sim::device::DeviceArgs {
    match parse(args).command {
        Sub::Device(a) => a,
        other => panic!("not device: {other:?}"),
    }
}

/// A service's `environment` as (name, value) pairs.
fn environment(service: &Value) -> Vec<(String, String)> {
    let Some(map) = service["environment"].as_mapping() else {
        return Vec::new();
    };
    map.iter()
        .map(|(k, v)| (k.as_str().unwrap().to_string(), v.as_str().unwrap().to_string()))
        .collect()
}

/// A service's volumes as (source, target) pairs, options dropped.
fn volumes(service: &Value) -> Vec<(String, String)> {
    strings(&service["volumes"])
        .iter()
        .map(|v| {
            let mut parts = v.split(':');
            (parts.next().unwrap().to_string(), parts.next().unwrap().to_string())
        })
        .collect()
}

/// The Dockerfile's words after `instruction` in the runtime stage (one line each here).
fn dockerfile(instruction: &str) -> Vec<String> {
    let text = read("Dockerfile");
    let runtime = &text[text.rfind("\nFROM ").unwrap()..];
    runtime
        .lines()
        .filter_map(|l| l.strip_prefix(&format!("{instruction} ")))
        .map(str::to_string)
        .collect()
}

/// The compose file's commands: (`avs-sim` serve, device, healthcheck) argv, without `avs-sim`.
fn compose_commands() -> (Vec<String>, Vec<String>, Vec<String>) {
    let c = compose();
    let services = &c["services"];
    let health = strings(&services["avs-sim"]["healthcheck"]["test"]);
    assert_eq!(
        health[..2],
        ["CMD", "avs-sim"],
        "the healthcheck runs the image's binary"
    );
    (
        strings(&services["avs-sim"]["command"]),
        strings(&services["firmware"]["command"]),
        health[2..].to_vec(),
    )
}

#[test]
fn the_compose_file_builds_both_services_from_the_repository_dockerfile() {
    let c = compose();
    let services = c["services"].as_mapping().unwrap();
    let names: Vec<&str> = services.keys().map(|k| k.as_str().unwrap()).collect();
    assert_eq!(names, ["avs-sim", "firmware"]);
    for (name, s) in services {
        let context = repo("examples").join(s["build"]["context"].as_str().unwrap());
        let dockerfile = context.join(s["build"]["dockerfile"].as_str().unwrap());
        assert_eq!(
            std::fs::canonicalize(&dockerfile).unwrap(),
            std::fs::canonicalize(repo("Dockerfile")).unwrap(),
            "{name:?}"
        );
        assert_eq!(s["image"], c["services"]["avs-sim"]["image"], "{name:?}: one image");
    }
    let firmware = &c["services"]["firmware"];
    assert_eq!(
        firmware["depends_on"]["avs-sim"]["condition"].as_str(),
        Some("service_healthy")
    );
    assert_eq!(
        firmware["healthcheck"]["disable"].as_bool(),
        Some(true),
        "the image's HEALTHCHECK asks for a simulator the firmware container does not run"
    );
}

#[test]
fn every_avs_sim_command_line_in_the_compose_file_parses() {
    let (serve, device, health) = compose_commands();
    serve_args(&serve);
    device_args(&device);
    assert!(matches!(parse(&health).command, Sub::Health(_)));
}

#[test]
fn compose_ports_volumes_and_command_agree_with_the_dockerfile() {
    let c = compose();
    let sim = &c["services"]["avs-sim"];
    let (serve, _, _) = compose_commands();
    let cmd: Vec<String> = serde_json::from_str(&dockerfile("CMD")[0]).unwrap();
    assert_eq!(serve, cmd, "the compose command is the image's CMD");
    let config = avs_sim::cli::serve_config(&serve_args(&serve), environment(sim)).unwrap();
    let exposed: Vec<String> = dockerfile("EXPOSE")
        .iter()
        .flat_map(|l| l.split_whitespace().map(str::to_string).collect::<Vec<_>>())
        .collect();
    let published = strings(&sim["ports"]);
    for listen in [config.listen.avs, config.listen.plain, config.listen.control] {
        assert!(
            listen.ip().is_unspecified(),
            "{listen}: listeners on 0.0.0.0 in the image"
        );
        let port = listen.port().to_string();
        assert!(exposed.contains(&port), "{port} is not EXPOSEd");
        assert!(
            published.contains(&format!("127.0.0.1:{port}:{port}")),
            "{port} is not published on the host's loopback: {published:?}"
        );
    }
    assert_eq!(published.len(), 3, "{published:?}");
    let declared = &dockerfile("VOLUME")[0];
    for (_, target) in volumes(sim) {
        assert!(declared.contains(&format!("\"{target}\"")), "{target} is not a VOLUME");
    }
    assert!(volumes(sim).iter().any(|(_, t)| Path::new(t) == config.certs.dir));
    let journal = config.journal.file.unwrap();
    assert!(
        volumes(sim).iter().any(|(_, t)| journal.starts_with(t)),
        "the journal is in a volume"
    );
}

#[test]
fn the_firmware_trusts_the_ca_where_serve_writes_it_under_a_name_it_certifies() {
    let c = compose();
    let services = &c["services"];
    let (serve, device, _) = compose_commands();
    let config = avs_sim::cli::serve_config(&serve_args(&serve), environment(&services["avs-sim"])).unwrap();
    let device = device_args(&device);
    let ca = avs_sim::tls::CertPaths::in_dir(&config.certs.dir).ca_cert;
    assert_eq!(device.ca.as_deref(), Some(ca.as_path()));
    // The same named volume at the same place in both containers.
    let certs_volume = |s: &Value| {
        volumes(s)
            .into_iter()
            .find(|(_, t)| Path::new(t) == config.certs.dir)
            .map(|(source, _)| source)
    };
    let shared = certs_volume(&services["avs-sim"]).expect("avs-sim mounts its certs dir");
    assert_eq!(certs_volume(&services["firmware"]), Some(shared.clone()));
    assert!(c["volumes"].as_mapping().unwrap().contains_key(shared.as_str()));
    // The firmware's URL names the service, on the AVS listener's port, and
    // the server certificate names that host.
    let url = device.url.strip_prefix("https://").expect("TLS");
    let (host, port) = url.trim_end_matches('/').split_once(':').unwrap();
    assert!(services.as_mapping().unwrap().contains_key(host), "{host} is a service");
    assert_eq!(port.parse::<u16>().unwrap(), config.listen.avs.port());
    assert!(
        config.certs.extra_hosts.iter().any(|h| h == host),
        "{host} is not certified"
    );
}

/// `path` as seen from a test directory: the image's absolute paths moved under `dir`.
fn local(arg: &str, dir: &Path) -> String {
    if arg.starts_with("/certs") || arg.starts_with("/journal") {
        dir.join(&arg[1..]).display().to_string()
    } else {
        arg.to_string()
    }
}

/// The journal entries of `device` until one matches (long-polling the control API).
async fn await_entry(control: &str, device: &str, pred: impl Fn(&serde_json::Value) -> bool) {
    let http = reqwest::Client::new();
    let deadline = tokio::time::Instant::now() + DEADLINE;
    let mut since = 0u64;
    loop {
        let url = format!("{control}/api/journal?since={since}&wait=2s&device={device}");
        let body: serde_json::Value = http.get(url).send().await.unwrap().json().await.unwrap();
        for e in body["entries"].as_array().cloned().unwrap_or_default() {
            since = since.max(e["id"].as_u64().unwrap_or(0));
            if pred(&e) {
                return;
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no matching journal entry for {device}"
        );
    }
}

/// The compose file's two commands, run here without Docker: `serve` as
/// written (listeners on port 0, the volumes under a directory, the
/// environment as given), then the firmware's `device` with only the
/// service host mapped to localhost. The device connects and synchronizes,
/// and the healthcheck passes.
#[tokio::test]
async fn the_compose_commands_connect_without_docker() {
    let c = compose();
    let (serve, device, health) = compose_commands();
    let dir = avs_sim_tests::temp_dir("compose");
    std::fs::create_dir_all(dir.join("certs")).unwrap();
    std::fs::create_dir_all(dir.join("journal")).unwrap();
    // Served supplies `serve` and port-0 listeners; the rest as written.
    let mut rest = Vec::new();
    let mut args = serve[1..].iter();
    while let Some(a) = args.next() {
        if a.ends_with("-listen") {
            args.next();
        } else {
            rest.push(local(a, &dir));
        }
    }
    let env = environment(&c["services"]["avs-sim"]);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let rest: Vec<&str> = rest.iter().map(String::as_str).collect();
    let served = binary::Served::start_in(&dir, &rest, &env).await;
    let ca_written = std::fs::canonicalize(&served.ca).unwrap();
    let device_args: Vec<String> = device
        .iter()
        .map(|a| {
            let a = local(a, &dir);
            match a.strip_prefix("https://avs-sim:") {
                Some(_) => format!("https://localhost:{}", binary::Served::port(&served.avs)),
                None => a,
            }
        })
        .collect();
    let trusted = &device_args[device_args.iter().position(|a| a == "--ca").unwrap() + 1];
    assert_eq!(
        std::fs::canonicalize(trusted).unwrap(),
        ca_written,
        "the firmware trusts serve's CA"
    );
    // The certificate serve made names the compose service host.
    let pem = std::fs::read(dir.join("certs/server.pem")).unwrap();
    let (_, pem) = x509_parser::pem::parse_x509_pem(&pem).unwrap();
    let cert = pem.parse_x509().unwrap();
    let san = cert.subject_alternative_name().unwrap().unwrap().value;
    assert!(
        san.general_names.iter().any(|n| n.to_string() == "DNSName(avs-sim)"),
        "{:?}",
        san.general_names
    );
    let _firmware = tokio::process::Command::new(binary::path())
        .args(&device_args)
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let token = &device_args[device_args.iter().position(|a| a == "--token").unwrap() + 1];
    await_entry(&served.control, token, |e| e["summary"] == "200 downchannel open").await;
    await_entry(&served.control, token, |e| e["summary"] == "System.SynchronizeState").await;
    let out = tokio::time::timeout(
        DEADLINE,
        tokio::process::Command::new(binary::path())
            .args(&health)
            .env("AVS_SIM_CONTROL_URL", &served.control)
            .output(),
    )
    .await
    .expect("the health check ends")
    .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
}

/// Split a command line as `sh` would for plain words and quotes (no
/// expansions: the examples have none).
fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut quote: Option<char> = None;
    for ch in line.chars() {
        match (quote, ch) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.get_or_insert_with(String::new).push(c),
            (None, '\'' | '"') => {
                quote = Some(ch);
                word.get_or_insert_with(String::new);
            }
            (None, c) if c.is_whitespace() => words.extend(word.take()),
            (None, c) => word.get_or_insert_with(String::new).push(c),
        }
    }
    assert!(quote.is_none(), "unclosed quote in {line}");
    words.extend(word);
    words
}

const BIN: &str = "target/release/avs-sim";

/// The README job's steps, and its `avs-sim run` argv (without the binary).
fn ci_job() -> (Vec<Value>, Vec<String>) {
    let yaml = &blocks(&read("README.md"), "## CI recipes", "yaml")[0];
    let doc: Value = serde_norway::from_str(yaml).unwrap_or_else(|e| panic!("the README's job: {e}\n{yaml}"));
    let jobs = doc["jobs"].as_mapping().expect("jobs");
    assert_eq!(jobs.len(), 1);
    let steps = jobs.values().next().unwrap()["steps"].as_sequence().unwrap().clone();
    let runs: Vec<Vec<String>> = steps
        .iter()
        .filter_map(|s| s["run"].as_str())
        .map(shell_words)
        .collect();
    assert_eq!(
        runs[0].join(" "),
        "cargo build --release --locked -p avs-sim",
        "the release build of CI, the README and the Dockerfile"
    );
    let run = runs.iter().find(|r| r[0] == BIN).expect("a step runs avs-sim");
    (steps, run[1..].to_vec())
}

#[test]
fn the_readme_ci_job_is_valid_and_its_avs_sim_commands_parse() {
    let (steps, run) = ci_job();
    let Sub::Run(args) = parse(&run).command else {
        panic!("not avs-sim run")
    };
    for file in &args.scenarios {
        assert!(repo(&file.display().to_string()).is_file(), "{}", file.display());
    }
    let spawn = shell_words(args.spawn.as_deref().expect("--spawn"));
    assert_eq!(spawn[0], BIN);
    // `run` hands the device its URL and CA in AVS_SIM_AVS_URL and AVS_SIM_CA,
    // which the parser reads when the flags are absent: supplied here the same.
    let mut device = spawn[1..].to_vec();
    for (flag, value) in [("--url", "https://localhost:8443"), ("--ca", "ca.pem")] {
        if !device.iter().any(|a| a == flag) {
            device.extend([flag.to_string(), value.to_string()]);
        }
    }
    device_args(&device);
    // What is uploaded holds the JUnit report.
    let upload = steps
        .iter()
        .find(|s| {
            s["uses"]
                .as_str()
                .is_some_and(|u| u.starts_with("actions/upload-artifact@"))
        })
        .expect("an upload step");
    assert_eq!(
        upload["if"].as_str(),
        Some("always()"),
        "reports are kept when the job fails"
    );
    let path = upload["with"]["path"].as_str().unwrap();
    assert!(args.junit.as_ref().unwrap().starts_with(path), "{path}");
}

/// `avs-sim run` as the README's job writes it, in a directory holding the
/// repository's scenarios, with `--progress` set to `mode`.
async fn run_ci_job(mode: &str) -> (std::process::Output, PathBuf) {
    let (_, run) = ci_job();
    let dir = avs_sim_tests::temp_dir("ci-job");
    std::os::unix::fs::symlink(repo("scenarios"), dir.join("scenarios")).unwrap();
    let bin = binary::path().display().to_string();
    let mut args: Vec<String> = run.iter().map(|a| a.replace(BIN, &bin)).collect();
    let at = args.iter().position(|a| a == "--progress").unwrap() + 1;
    args[at] = mode.to_string();
    let out = tokio::time::timeout(
        DEADLINE * 6,
        tokio::process::Command::new(&bin)
            .args(&args)
            .current_dir(&dir)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("the job's run ends")
    .unwrap();
    (out, dir)
}

/// Digits out, so two runs compare equal but for ports, ids and timings.
fn shape(text: &str) -> String {
    regex::Regex::new(r"[0-9a-f]{8}-[0-9a-f-]{27}|\d+")
        .unwrap()
        .replace_all(text, "N")
        .into_owned()
}

/// JUnit without the device's own output, whose lines depend on its timing.
fn without_device(junit: &str) -> String {
    regex::Regex::new(r"(?s)--- device under test ---.*?</system-out>")
        .unwrap()
        .replace_all(junit, "</system-out>")
        .into_owned()
}

/// The README's job runs as written (the reference device spawned), writes
/// its JUnit, and `--progress always` into a pipe gives plain counter lines
/// that end at the totals; `never` gives none; stdout and JUnit are the same.
#[tokio::test]
async fn the_readme_ci_job_runs_and_progress_counts_to_the_totals() {
    let (always, dir) = run_ci_job("always").await;
    let stdout = String::from_utf8_lossy(&always.stdout);
    let stderr = String::from_utf8_lossy(&always.stderr);
    assert!(always.status.success(), "{stdout}\n{stderr}");
    let junit = std::fs::read_to_string(dir.join("out/junit.xml")).unwrap();
    assert_eq!(junit.matches("<testcase ").count(), 2, "{junit}");
    assert!(!junit.contains("<failure"), "{junit}");
    assert!(dir.join("out/report.json").is_file());

    assert!(
        !stderr.contains('\r') && !stderr.contains('\x1b'),
        "no terminal control in a pipe: {stderr:?}"
    );
    let progress: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("avs-sim: progress: "))
        .collect();
    let steps_ok = stdout.lines().filter(|l| l.starts_with("  ok  ")).count();
    assert!(
        progress.iter().any(|l| l.contains("scenarios 1/2, ")),
        "a line after the first scenario: {stderr}"
    );
    let last = progress.last().unwrap_or_else(|| panic!("no progress: {stderr}"));
    assert!(
        last.contains(&format!("scenarios 2/2, steps {steps_ok} passed, 0 failed, ")),
        "{last} (stdout has {steps_ok} passed steps)"
    );

    let (never, dir_never) = run_ci_job("never").await;
    let stderr_never = String::from_utf8_lossy(&never.stderr);
    assert!(never.status.success(), "{stderr_never}");
    assert!(!stderr_never.contains("progress"), "{stderr_never}");
    assert_eq!(shape(&stdout), shape(&String::from_utf8_lossy(&never.stdout)));
    let junit_never = std::fs::read_to_string(dir_never.join("out/junit.xml")).unwrap();
    assert_eq!(shape(&without_device(&junit)), shape(&without_device(&junit_never)));
}

#[test]
fn shell_words_splits_like_sh() {
    assert_eq!(
        shell_words(r#"a --spawn 'b c --d' "e f"g  h"#),
        ["a", "--spawn", "b c --d", "e fg", "h"]
    );
    assert_eq!(shell_words("x ''"), ["x", ""]);
}
