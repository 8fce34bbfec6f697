//! The command line's own surface: `--version`, shell completions, and the
//! stderr log (plain text when redirected, JSON with `--log-format json`).

use avs_sim_tests::{DEADLINE, binary, temp_dir};
use std::process::Stdio;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

async fn output(args: &[&str]) -> std::process::Output {
    tokio::time::timeout(DEADLINE, Command::new(binary::path()).args(args).output())
        .await
        .expect("it ends")
        .unwrap()
}

#[tokio::test]
async fn version_and_completions() {
    let out = output(&["--version"]).await;
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("avs-sim {}", env!("CARGO_PKG_VERSION"))
    );
    for (shell, mark) in [
        ("bash", "_avs__sim()"),
        ("zsh", "#compdef avs-sim"),
        ("fish", "complete -c avs-sim"),
    ] {
        let out = output(&["completions", shell]).await;
        assert!(out.status.success(), "{shell}");
        let script = String::from_utf8_lossy(&out.stdout);
        assert!(script.contains(mark) && script.contains("serve"), "{shell}: {script}");
    }
}

/// `serve` with stderr in a file until SIGTERM; what it logged there.
async fn serve_log(extra: &[&str]) -> String {
    let dir = temp_dir("cli-log");
    let log = std::fs::File::create(dir.join("stderr.log")).unwrap();
    let mut child = Command::new(binary::path())
        .current_dir(&dir)
        .args(extra)
        .arg("serve")
        .args(binary::PORT_ZERO)
        .stdout(Stdio::piped())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let up = async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if line.starts_with("avs-sim: CA certificate") {
                return;
            }
        }
        panic!("serve ended before printing its listeners");
    };
    tokio::time::timeout(DEADLINE, up).await.expect("serve starts");
    let pid = child.id().unwrap().to_string();
    let killed = Command::new("kill").args(["-TERM", &pid]).status().await.unwrap();
    assert!(killed.success());
    let status = tokio::time::timeout(DEADLINE, child.wait())
        .await
        .expect("serve stops")
        .unwrap();
    assert!(status.success(), "{status}");
    std::fs::read_to_string(dir.join("stderr.log")).unwrap()
}

#[tokio::test]
async fn a_redirected_log_has_no_colour_codes_and_json_is_one_object_per_line() {
    let plain = serve_log(&[]).await;
    assert!(plain.contains("shutting down"), "{plain}");
    assert!(!plain.contains('\u{1b}'), "colour codes in a redirected log: {plain:?}");
    let json = serve_log(&["--log-format", "json"]).await;
    let lines: Vec<&str> = json.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(!lines.is_empty(), "{json}");
    for line in lines {
        let v: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(v["level"].is_string() && v["fields"]["message"].is_string(), "{line}");
    }
}

/// `avs-sim device` against a running `serve` without `--ca` says what to
/// pass, instead of only retrying on UnknownIssuer.
#[tokio::test]
async fn a_device_without_the_ca_is_told_to_pass_it() {
    let served = binary::Served::start(&[], &[]).await;
    let mut child = Command::new(binary::path())
        .args(["device", "--url", &served.avs, "--token", "kitchen"])
        .env_remove("AVS_SIM_CA")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let hint = async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if line.contains("--ca certs/ca.pem") {
                return line;
            }
        }
        panic!("the device ended without the hint");
    };
    let line = tokio::time::timeout(DEADLINE, hint).await.expect("the hint comes");
    assert!(line.contains("not trusted"), "{line}");
}

/// `avs-sim health`: exit 0 against a running `serve`; exit 1 naming the
/// URL when nothing listens there.
#[tokio::test]
async fn health_is_0_against_a_running_serve_and_1_with_the_url_against_a_closed_port() {
    let served = binary::Served::start(&[], &[]).await;
    let out = output(&["health", "--url", &served.control]).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        stdout.contains("healthy") && stdout.contains("\"avs\":\"up\""),
        "{stdout}"
    );

    // A port that was just free: bound, read, released.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let out = output(&["health", "--url", &closed]).await;
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains(&format!("{closed}/healthz")) && stderr.contains("cannot connect"),
        "{stderr}"
    );
}
