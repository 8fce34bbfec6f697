//! The dashboard in a real browser: `avs-sim serve` (the binary), `avs-sim
//! device` connecting to it, and Debian's chromium, headless, driven by
//! playwright-core (tests/interop/dashboard/drive.js). The script sees the
//! device appear, its SynchronizeState arrive in the live timeline, pushes
//! ReportSoftwareInfo from the composer and sees SoftwareInfo come back,
//! clears a fault rule from the faults panel, then saves
//! `target/dashboard.png` (kept as CI's artifact).
//!
//! Needs `/usr/bin/chromium` and the script's node_modules; `.ci/run`
//! installs both. Without them this test fails, saying so: it never passes
//! without having looked at the page.

use avs_sim_tests::binary::{self, Served};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

/// The browser the test drives (Debian's package).
const CHROMIUM: &str = "/usr/bin/chromium";

/// How long the whole browser script may take (it bounds each step itself).
const SCRIPT_DEADLINE: Duration = Duration::from_secs(120);

/// The script's directory, checked to be ready to run.
fn script_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("interop/dashboard");
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: run `.ci/run`, or `apt-get install -y --no-install-recommends chromium`"
    );
    assert!(
        dir.join("node_modules/playwright-core/package.json").exists(),
        "playwright-core is not installed: run `.ci/run`, or `npm ci --prefix tests/interop/dashboard` (needs node and npm)"
    );
    dir
}

/// The dashboard URL `serve` printed.
fn dashboard_url(served: &Served) -> String {
    let line = served
        .banner
        .iter()
        .find(|l| l.starts_with("avs-sim: dashboard "))
        .unwrap_or_else(|| panic!("serve printed no dashboard line: {:?}", served.banner));
    let url = line.trim_start_matches("avs-sim: dashboard ").to_string();
    assert_eq!(
        url,
        format!("{}/", served.control),
        "the dashboard is / on the control listener"
    );
    url
}

/// `avs-sim device` against `served`, until it says its downchannel is open.
async fn start_device(served: &Served, token: &str) -> tokio::process::Child {
    let mut child = Command::new(binary::path())
        .args(["device", "--url", &served.avs, "--token", token, "--ca"])
        .arg(&served.ca)
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let open = async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if line.contains("downchannel open") {
                return;
            }
        }
        panic!("the device ended before opening its downchannel");
    };
    tokio::time::timeout(avs_sim_tests::DEADLINE, open)
        .await
        .expect("the device connects");
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    child
}

#[tokio::test]
async fn a_browser_sees_the_device_and_its_software_info_after_a_push_from_the_composer() {
    let dir = script_dir();
    let served = Served::start(&[], &[]).await;
    let url = dashboard_url(&served);
    let _device = start_device(&served, "kitchen").await;
    // A rule that never fires, for the page to clear.
    let http = reqwest::Client::new();
    let faults = format!("{}/api/faults", served.control);
    let rule =
        serde_json::json!({"id": "never-fires", "when": {"path": "/never"}, "then": {"action": "latency", "ms": 1}});
    let added = http.post(&faults).json(&rule).send().await.unwrap();
    assert_eq!(added.status(), 201);

    let shot = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/dashboard.png");
    let _ = std::fs::remove_file(&shot);
    let run = Command::new("node")
        .current_dir(&dir)
        .arg("drive.js")
        .args([url.as_str(), "kitchen"])
        .arg(&shot)
        .arg("never-fires")
        .env("CHROMIUM", CHROMIUM)
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(SCRIPT_DEADLINE, run)
        .await
        .expect("the browser script ends")
        .expect("node runs (install nodejs, as .ci/run does)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the browser script failed: {}\n{stdout}\n{stderr}",
        out.status
    );

    let steps: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let names: Vec<&str> = steps.iter().filter_map(|s| s["step"].as_str()).collect();
    assert_eq!(
        names,
        [
            "loaded",
            "device",
            "synchronize_state",
            "pushed",
            "software_info",
            "device_updated",
            "fault_cleared",
            "screenshot",
            "done"
        ],
        "{stdout}"
    );
    assert!(steps.iter().all(|s| s["ok"] == true), "{stdout}");
    let ids: Vec<u64> = ["synchronize_state", "pushed", "software_info"]
        .iter()
        .map(|n| {
            steps.iter().find(|s| s["step"] == *n).unwrap()["entry"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert!(ids[0] < ids[1] && ids[1] < ids[2], "timeline order: {ids:?}");
    let device_row = steps[1]["row"].as_str().unwrap();
    assert!(
        device_row.contains("kitchen") && device_row.contains("yes"),
        "{device_row}"
    );
    let updated = steps[5]["row"].as_str().unwrap();
    assert!(updated.contains("System.SoftwareInfo at"), "{updated}");
    assert_eq!(steps[4]["firmware"], "1", "the device's default firmwareVersion");

    let left: Value = http.get(&faults).send().await.unwrap().json().await.unwrap();
    assert_eq!(left, serde_json::json!([]), "the page cleared the fault rule");

    let png = std::fs::read(&shot).expect("the screenshot was saved");
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    assert!(
        png.len() > 20_000,
        "a screenshot of {} bytes shows next to nothing",
        png.len()
    );
    // Width 1366 (the viewport), height at least the 768 of a laptop screen.
    let width = u32::from_be_bytes(png[16..20].try_into().unwrap());
    let height = u32::from_be_bytes(png[20..24].try_into().unwrap());
    assert!(width == 1366 && height >= 768, "{width}x{height}");
}
