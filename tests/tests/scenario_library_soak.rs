//! Scenarios never fail a correct device: every library scenario, 50 times
//! in a row, through the command line the scenarios README shows
//! (`avs-sim run FILE --spawn 'avs-sim device ...'`), against the reference
//! device, while two CPU-burning processes keep the machine busy. The
//! scenarios run side by side (each its own 50 in a row) so the whole test
//! stays within a few minutes.
//!
//! The smart home scenarios have no device: they drive the sample skill
//! (a Python process per directive). They run fewer times here
//! (`SMART_HOME_RUNS`; the slow-skill one, which waits out Alexa's 8 s,
//! `SLOW_SKILL_RUNS`) to keep the suite within its time budget.
//!
//! It has a test binary of its own: the burners would otherwise slow the
//! other scenario tests down.

use avs_sim_tests::{binary, temp_dir};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::process::{Child, Command};

/// Runs of each device scenario.
const RUNS: usize = 50;
/// Runs of each smart home scenario.
const SMART_HOME_RUNS: usize = 20;
/// Runs of the scenario that waits out Alexa's 8 s budget.
const SLOW_SKILL_RUNS: usize = 3;
/// One `avs-sim run` may take this long (the slowest scenario needs about 5 s).
const RUN_DEADLINE: Duration = Duration::from_secs(90);

fn library() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios")
}

/// How often to run a library scenario, and the device command line it
/// expects (none for the smart home ones).
fn plan_for(file: &str) -> Option<(usize, Option<String>)> {
    match file {
        "smarthome-slow-skill.toml" => Some((SLOW_SKILL_RUNS, None)),
        f if f.starts_with("smarthome-") || f.starts_with("asp-") => Some((smart_home_runs(), None)),
        f => device_for(f).map(|d| (RUNS, Some(d))),
    }
}

/// `SMART_HOME_RUNS`, or `SOAK_SMART_HOME_RUNS` (not `AVS_SIM_*`: the
/// simulator reads those as config) to loop them longer
/// by hand (with `SOAK_ONLY=smarthome-` to run only those).
fn smart_home_runs() -> usize {
    std::env::var("SOAK_SMART_HOME_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(SMART_HOME_RUNS)
}

/// The device command line each library scenario expects (the scenarios
/// README's table).
fn device_for(file: &str) -> Option<String> {
    let bin = binary::path().display().to_string();
    let one = |args: &str| format!("{bin} device {args}");
    Some(match file {
        "chaos.toml"
        | "first-connect.toml"
        | "goaway.toml"
        | "malformed-directive.toml"
        | "reset-downchannel.toml"
        | "set-endpoint.toml"
        | "software-info.toml"
        | "throttled-sync.toml" => one("--token kitchen"),
        "reset-user-inactivity.toml" | "user-inactivity-cadence.toml" => {
            one("--token kitchen --inactivity-interval 2s")
        }
        "ping-silence.toml" => one("--token kitchen --ping-interval 1s --ping-timeout 1s"),
        "token-expiry.toml" => one("--token unused --refresh-token 'Atzr|hall'"),
        "several-devices.toml" => format!(
            "{} & {} & {} & wait",
            one("--token kitchen"),
            one("--token bedroom"),
            one("--token garage")
        ),
        _ => return None,
    })
}

/// A process that burns one CPU until it is killed (or dropped).
fn burner() -> Child {
    Command::new("sh")
        .args(["-c", "while :; do :; done"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("a CPU burner starts")
}

/// One `avs-sim run`: `Ok` when it passed, else the run's output and the
/// device's.
async fn run_once(file: &Path, device: Option<&str>) -> Result<(), String> {
    let dir = temp_dir("soak");
    let mut cmd = Command::new(binary::path());
    cmd.current_dir(&dir)
        .arg("run")
        .arg(file)
        .args(binary::PORT_ZERO)
        .args(["--report", "report.json"])
        .args(device.map(|d| ["--spawn", d]).into_iter().flatten())
        .stdin(Stdio::null())
        .kill_on_drop(true);
    let out = match tokio::time::timeout(RUN_DEADLINE, cmd.output()).await {
        Ok(Ok(out)) => out,
        Ok(Err(e)) => return Err(format!("cannot start avs-sim run: {e}")),
        Err(_) => return Err(format!("avs-sim run did not finish within {RUN_DEADLINE:?}")),
    };
    let report = std::fs::read_to_string(dir.join("report.json")).unwrap_or_default();
    let _ = std::fs::remove_dir_all(&dir);
    if out.status.code() == Some(0) {
        return Ok(());
    }
    let report: serde_json::Value = serde_json::from_str(&report).unwrap_or_default();
    Err(format!(
        "exit {:?}\n{}\n{}\n--- device ---\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        report["run"]["device_output"].as_str().unwrap_or("(no report)")
    ))
}

/// `runs` runs of one scenario in a row: (passes, the first failure).
async fn in_a_row(file: PathBuf, runs: usize, device: Option<String>) -> (usize, Option<String>) {
    let mut passed = 0;
    let mut first_failure = None;
    for i in 1..=runs {
        match run_once(&file, device.as_deref()).await {
            Ok(()) => passed += 1,
            Err(report) => {
                eprintln!("{} run {i} failed:\n{report}", file.display());
                first_failure.get_or_insert(format!("run {i}:\n{report}"));
            }
        }
    }
    (passed, first_failure)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_library_scenario_passes_50_times_in_a_row_on_a_busy_machine() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(library())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    assert!(files.len() >= 18, "the library: {files:?}");
    if let Ok(only) = std::env::var("SOAK_ONLY") {
        files.retain(|f| f.file_name().is_some_and(|n| n.to_string_lossy().starts_with(&only)));
    }
    let mut burners = [burner(), burner()];
    let started = tokio::time::Instant::now();
    let runs: Vec<_> = files
        .iter()
        .map(|f| {
            let name = f.file_name().unwrap().to_string_lossy().into_owned();
            let (n, device) =
                plan_for(&name).unwrap_or_else(|| panic!("{name}: add its device command line to this test"));
            (name, n, tokio::spawn(in_a_row(f.clone(), n, device)))
        })
        .collect();
    let mut summary = Vec::new();
    let mut failures = Vec::new();
    for (name, n, run) in runs {
        let (passed, failure) = run.await.expect("the runs of a scenario");
        summary.push(format!("{name}: {passed}/{n}"));
        if let Some(f) = failure {
            failures.push(format!("=== {name}: {passed}/{n} passed; first failure, {f}"));
        }
    }
    for b in &mut burners {
        let _ = b.kill().await;
    }
    let took = started.elapsed();
    println!("{} scenarios in {took:.1?}:", files.len());
    for line in &summary {
        println!("  {line}");
    }
    assert!(failures.is_empty(), "{}\n{}", summary.join("\n"), failures.join("\n"));
}
