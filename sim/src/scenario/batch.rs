//! `avs-sim run`: scenario files against an in-process simulator, with an
//! optional device under test spawned once the listeners are ready.

use super::model::Scenario;
use super::progress::Progress;
use super::runner::{self, ScenarioResult};
use crate::config::{Config, DeviceDecl};
use crate::server::{Listeners, Sim};
use parking_lot::Mutex;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncReadExt;

/// How long the spawned device gets to stop after SIGTERM.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// Load every file; all diagnostics on failure.
pub fn load_all(files: &[PathBuf]) -> Result<Vec<Scenario>, Vec<super::load::Diagnostic>> {
    let mut scenarios = Vec::new();
    let mut errors = Vec::new();
    for f in files {
        match super::load::load(f) {
            Ok(s) => scenarios.push(s),
            Err(mut e) => errors.append(&mut e),
        }
    }
    if errors.is_empty() { Ok(scenarios) } else { Err(errors) }
}

/// The base config with every scenario's `[config]` and declared actors
/// folded in. Two scenarios setting one key to different values conflict.
pub fn merged_config(base: &Config, scenarios: &[Scenario]) -> Result<Config, String> {
    let mut table = toml::Table::try_from(base).map_err(|e| e.to_string())?;
    let mut set_by: std::collections::HashMap<String, (toml::Value, String)> = Default::default();
    for s in scenarios {
        if let Some(over) = &s.config {
            let over = skill_paths_from(over, &s.file);
            merge(&mut table, &over, "", &mut set_by, &s.file)?;
        }
    }
    let mut config: Config = toml::Value::Table(table)
        .try_into()
        .map_err(|e: toml::de::Error| e.to_string())?;
    for a in scenarios.iter().flat_map(|s| &s.devices) {
        if let (Some(id), Some(token)) = (&a.id, &a.token) {
            if !config.devices.iter().any(|d| &d.token == token) {
                config.devices.push(DeviceDecl {
                    id: id.clone(),
                    token: token.clone(),
                    refresh_token: None,
                });
            }
        }
    }
    config.validate().map_err(|e| e.to_string())?;
    Ok(config)
}

/// A scenario's `[[config.skills]]` command arguments that start with `./`
/// or `../` are relative to the scenario file, so a library scenario finds
/// its sample skill from any working directory.
fn skill_paths_from(over: &toml::Table, file: &str) -> toml::Table {
    let mut over = over.clone();
    let dir = std::path::Path::new(file).parent().unwrap_or(std::path::Path::new("."));
    let skills = over.get_mut("skills").and_then(toml::Value::as_array_mut);
    for skill in skills.into_iter().flatten() {
        let command = skill.get_mut("command").and_then(toml::Value::as_array_mut);
        for arg in command.into_iter().flatten() {
            if let Some(a) = arg.as_str().filter(|a| a.starts_with("./") || a.starts_with("../")) {
                *arg = toml::Value::String(dir.join(a).display().to_string());
            }
        }
    }
    over
}

fn merge(
    into: &mut toml::Table,
    over: &toml::Table,
    path: &str,
    set_by: &mut std::collections::HashMap<String, (toml::Value, String)>,
    file: &str,
) -> Result<(), String> {
    for (k, v) in over {
        let key = if path.is_empty() {
            k.clone()
        } else {
            format!("{path}.{k}")
        };
        match (into.get_mut(k), v) {
            (Some(toml::Value::Table(dst)), toml::Value::Table(src)) => merge(dst, src, &key, set_by, file)?,
            (Some(toml::Value::Array(dst)), toml::Value::Array(src)) if src.iter().all(toml::Value::is_table) => {
                dst.extend(src.iter().cloned());
            }
            _ => {
                if let Some((prev, prev_file)) = set_by.get(&key) {
                    if prev != v {
                        return Err(format!(
                            "{file}: [config] {key} = {v} conflicts with {prev} from {prev_file}"
                        ));
                    }
                }
                set_by.insert(key, (v.clone(), file.to_string()));
                into.insert(k.clone(), v.clone());
            }
        }
    }
    Ok(())
}

/// What `run` produced.
pub struct Outcome {
    pub results: Vec<ScenarioResult>,
    pub device_output: String,
}

/// Start the simulator, spawn `spawn` if given, run every scenario in order.
/// `progress` gets live counters (and prints the step lines around them).
pub async fn run(
    config: Config,
    scenarios: &[Scenario],
    spawn: Option<&str>,
    quiet: bool,
    progress: Progress,
) -> Result<Outcome, String> {
    let listeners = Listeners::bind(&config).await.map_err(|e| e.to_string())?;
    let sim = Sim::new(config, listeners).await.map_err(|e| e.to_string())?;
    if !quiet {
        sim.banner().iter().for_each(|l| println!("{l}"));
    }
    let state = sim.state().clone();
    let env = device_env(&sim);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(sim.run(async {
        let _ = stopped.await;
    }));
    let output = Arc::new(Mutex::new(String::new()));
    let mut child = match spawn {
        Some(cmd) => Some(spawn_device(cmd, &env, output.clone())?),
        None => None,
    };
    let results = run_each(&state, scenarios, progress).await;
    if let Some((child, readers)) = child.as_mut() {
        stop_device(child).await;
        // Everything the device printed, up to its exit.
        for r in readers.drain(..) {
            let _ = tokio::time::timeout(STOP_GRACE, r).await;
        }
    }
    let _ = stop.send(());
    let _ = server.await;
    let device_output = output.lock().clone();
    Ok(Outcome { results, device_output })
}

/// Every scenario in order, step lines on stdout, counters in `progress`
/// (kept ticking while a scenario runs).
async fn run_each(state: &Arc<crate::state::State>, scenarios: &[Scenario], progress: Progress) -> Vec<ScenarioResult> {
    let mut results = Vec::new();
    for (i, s) in scenarios.iter().enumerate() {
        progress.println(&format!("scenario {:?} ({})", s.name, s.file));
        // The first scenario also sees what the device did before it began.
        let since = if i == 0 { 0 } else { state.journal.latest() };
        let steps = progress.clone();
        let on_step = Arc::new(move |r: &runner::StepResult| {
            steps.println(&super::report::step_line(r));
            steps.step(r.passed);
        });
        let result = tokio::select! {
            r = runner::run(state.clone(), s, since, on_step) => r,
            never = progress.clone().tick() => match never {},
        };
        progress.println(&super::report::scenario_line(&result));
        progress.scenario_done();
        results.push(result);
    }
    progress.finish();
    results
}

/// What a spawned device is told about the simulator.
fn device_env(sim: &Sim) -> Vec<(String, String)> {
    let a = sim.addrs();
    let ca = std::fs::canonicalize(&sim.certs().ca_cert).unwrap_or_else(|_| sim.certs().ca_cert.clone());
    vec![
        ("AVS_SIM_AVS_URL".into(), format!("https://localhost:{}", a.avs.port())),
        ("AVS_SIM_PLAIN_URL".into(), format!("http://{}", a.plain)),
        ("AVS_SIM_CONTROL_URL".into(), format!("http://{}", a.control)),
        ("AVS_SIM_CA".into(), ca.display().to_string()),
    ]
}

type Readers = Vec<tokio::task::JoinHandle<()>>;

fn spawn_device(
    cmd: &str,
    env: &[(String, String)],
    output: Arc<Mutex<String>>,
) -> Result<(tokio::process::Child, Readers), String> {
    let mut child = tokio::process::Command::new("sh")
        .args(["-c", cmd])
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .process_group(0)
        .spawn()
        .map_err(|e| format!("cannot start {cmd:?}: {e}"))?;
    let mut readers = Vec::new();
    for stream in [child.stdout.take().map(boxed), child.stderr.take().map(boxed)]
        .into_iter()
        .flatten()
    {
        readers.push(tokio::spawn(capture(stream, output.clone())));
    }
    Ok((child, readers))
}

fn boxed<R: tokio::io::AsyncRead + Unpin + std::marker::Send + 'static>(
    r: R,
) -> Box<dyn tokio::io::AsyncRead + Unpin + std::marker::Send> {
    Box::new(r)
}

/// How much of a spawned device's output is kept for the reports: the
/// latest part, since a chatty device must not grow memory without bound.
const MAX_DEVICE_OUTPUT: usize = 1024 * 1024;

async fn capture(mut r: Box<dyn tokio::io::AsyncRead + Unpin + std::marker::Send>, output: Arc<Mutex<String>>) {
    let mut buf = [0u8; 4096];
    while let Ok(n) = r.read(&mut buf).await {
        if n == 0 {
            break;
        }
        let mut out = output.lock();
        out.push_str(&String::from_utf8_lossy(&buf[..n]));
        keep_tail(&mut out, MAX_DEVICE_OUTPUT);
    }
}

/// Drop the oldest text beyond `max` bytes (at a character boundary),
/// marking the cut.
fn keep_tail(out: &mut String, max: usize) {
    const MARK: &str = "[earlier output dropped]\n";
    if out.len() <= max {
        return;
    }
    let mut cut = out.len() - max + MARK.len();
    while !out.is_char_boundary(cut) {
        cut += 1;
    }
    out.replace_range(..cut, MARK);
}

async fn stop_device(child: &mut tokio::process::Child) {
    // The command runs in its own process group: signal all of it.
    if let Some(pid) = child.id() {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", "--", &format!("-{pid}")])
            .status();
    }
    if tokio::time::timeout(STOP_GRACE, child.wait()).await.is_err() {
        let _ = child.kill().await;
    }
}

/// Write a file, creating its directory.
pub fn write(path: &Path, text: &str) -> Result<(), String> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn skill_paths_marked_relative_are_taken_from_the_scenario_file() {
        let over: toml::Table = toml::from_str(
            "[[skills]]\nid = 's'\ncommand = ['python3', './skills/x.py', '../y.py', 'plain', '/abs']\n",
        )
        .unwrap();
        let fixed = super::skill_paths_from(&over, "lib/scenarios/a.toml");
        let command = fixed["skills"][0]["command"].as_array().unwrap();
        let args: Vec<&str> = command.iter().map(|v| v.as_str().unwrap()).collect();
        assert_eq!(
            args,
            [
                "python3",
                "lib/scenarios/./skills/x.py",
                "lib/scenarios/../y.py",
                "plain",
                "/abs"
            ]
        );
    }

    #[test]
    fn device_output_keeps_only_its_tail() {
        let mut out = "é".repeat(1000);
        super::keep_tail(&mut out, 100);
        assert!(out.len() <= 100 && out.starts_with("[earlier output dropped]"), "{out}");
        assert!(out.ends_with('é'));
    }
}
