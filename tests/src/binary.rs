//! Driving the real `avs-sim` binary: start `serve` on port 0, read the
//! listener lines it prints, stop it with a signal.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// The binary under test: `avs-sim-bin`, built from `sim/src/main.rs` by
/// this package, so Cargo builds it fresh before the integration tests run.
/// It sits in the target directory, one level above the test executables.
pub fn path() -> PathBuf {
    if let Ok(p) = std::env::var("CARGO_BIN_EXE_avs-sim-bin") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe.parent().and_then(Path::parent).expect("target/<profile>/deps/..");
    let bin = dir.join("avs-sim-bin");
    assert!(
        bin.exists(),
        "{} is missing: run the tests with `cargo test --workspace`",
        bin.display()
    );
    bin
}

/// Every listener on port 0 (the bound ports are printed).
pub const PORT_ZERO: [&str; 6] = [
    "--avs-listen",
    "127.0.0.1:0",
    "--plain-listen",
    "127.0.0.1:0",
    "--control-listen",
    "127.0.0.1:0",
];

/// A running `avs-sim serve`.
pub struct Served {
    pub child: Child,
    pub avs: String,
    pub plain: String,
    pub control: String,
    pub regions: Vec<(String, String)>,
    pub ca: PathBuf,
    pub dir: PathBuf,
    pub banner: Vec<String>,
}

impl Served {
    /// `avs-sim serve` in a fresh directory with every listener on port 0,
    /// plus `extra` arguments and `env`.
    pub async fn start(extra: &[&str], env: &[(&str, &str)]) -> Served {
        let dir = crate::temp_dir("bin");
        Served::start_in(&dir, extra, env).await
    }

    pub async fn start_in(dir: &Path, extra: &[&str], env: &[(&str, &str)]) -> Served {
        let mut cmd = Command::new(path());
        cmd.current_dir(dir)
            .arg("serve")
            .args(PORT_ZERO)
            .args(extra)
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        let mut child = cmd.spawn().expect("avs-sim starts");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut served = Served {
            child,
            avs: String::new(),
            plain: String::new(),
            control: String::new(),
            regions: Vec::new(),
            ca: PathBuf::new(),
            dir: dir.to_path_buf(),
            banner: Vec::new(),
        };
        let read = async {
            while let Some(line) = lines.next_line().await.unwrap() {
                served.banner.push(line.clone());
                let url = || {
                    line.split_whitespace()
                        .find(|w| w.contains("://"))
                        .unwrap_or("")
                        .to_string()
                };
                if line.starts_with("avs-sim: avs listening") {
                    served.avs = url();
                } else if line.starts_with("avs-sim: plain listening") {
                    served.plain = url();
                } else if line.starts_with("avs-sim: control listening") {
                    served.control = url();
                } else if let Some(rest) = line.strip_prefix("avs-sim: region ") {
                    served
                        .regions
                        .push((rest.split_whitespace().next().unwrap().to_string(), url()));
                } else if let Some(ca) = line.strip_prefix("avs-sim: CA certificate ") {
                    served.ca = dir.join(ca);
                    break;
                }
            }
        };
        tokio::time::timeout(crate::DEADLINE, read)
            .await
            .expect("avs-sim printed its listeners");
        // Keep draining stdout so the child never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        served
    }

    /// The port of a URL printed in the banner.
    pub fn port(url: &str) -> u16 {
        url.rsplit(':').next().unwrap().trim_end_matches('/').parse().unwrap()
    }

    /// Send a signal and wait for the exit status.
    pub async fn signal(mut self, signal: &str) -> std::process::ExitStatus {
        let pid = self.child.id().expect("running").to_string();
        let status = std::process::Command::new("kill")
            .args(["-s", signal, &pid])
            .status()
            .unwrap();
        assert!(status.success());
        tokio::time::timeout(crate::DEADLINE * 2, self.child.wait())
            .await
            .expect("exits after the signal")
            .unwrap()
    }
}
