//! `avs-sim load` against a real `avs-sim serve`: every device held over
//! h2c, every broadcast delivered to every device, the server's RSS read;
//! and its arguments range-checked. No timing is asserted.

use avs_sim_tests::{DEADLINE, binary, binary::Served};
use serde_json::Value;
use std::process::Output;

async fn load(args: &[&str]) -> Output {
    let run = tokio::process::Command::new(binary::path())
        .arg("load")
        .args(args)
        .kill_on_drop(true)
        .output();
    tokio::time::timeout(DEADLINE * 6, run)
        .await
        .expect("load finishes")
        .expect("load runs")
}

#[tokio::test]
async fn fifty_devices_held_and_two_broadcasts_delivered_to_each() {
    let served = Served::start(&[], &[]).await;
    let pid = served.child.id().expect("serve runs").to_string();
    let out = load(&[
        "--devices",
        "50",
        "--url",
        &served.plain,
        "--control",
        &served.control,
        "--broadcasts",
        "2",
        "--server-pid",
        &pid,
        "--hold",
        "200ms",
        "--events-per-second",
        "100",
        "--json",
    ])
    .await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "load failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_str(stdout.trim()).expect("one JSON report");
    assert_eq!(report["connect"]["held"], 50, "{report}");
    assert_eq!(report["connect"]["failed"], 0, "{report}");
    let b = &report["broadcasts"];
    assert_eq!(b["queued"], 100, "{report}");
    assert_eq!(b["expected"], 100, "{report}");
    assert_eq!(b["delivered"], 100, "{report}");
    assert!(report["rssBeforeKib"].as_u64().is_some_and(|k| k > 0), "{report}");
    assert!(report["rssHeldKib"].as_u64().is_some_and(|k| k > 0), "{report}");
    assert!(report["kibPerDevice"].is_number(), "{report}");
    assert_eq!(report["events"]["failed"], 0, "{report}");
    assert_eq!(report["dropped"], 0, "{report}");
}

#[tokio::test]
async fn failures_are_counted_with_their_reason() {
    // A port nobody listens on: every device fails to connect.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let out = load(&["--devices", "3", "--url", &url, "--json"]).await;
    assert_eq!(out.status.code(), Some(1));
    let report: Value = serde_json::from_slice(&out.stdout).expect("one JSON report");
    assert_eq!(report["connect"]["held"], 0, "{report}");
    assert_eq!(report["connect"]["failed"], 3, "{report}");
    let first = report["connect"]["failures"]["first"][0].as_str().unwrap_or_default();
    assert!(first.starts_with("connect: "), "{report}");
}

#[tokio::test]
async fn arguments_out_of_range_are_refused() {
    for (args, why) in [
        (vec!["--devices", "0"], "--devices"),
        (vec!["--devices", "100001"], "--devices"),
        (vec!["--devices", "5", "--rate", "0"], "--rate"),
        (vec!["--devices", "5", "--broadcasts", "1"], "--control"),
        (vec!["--devices", "5", "--events-per-second=-3"], "--events-per-second"),
    ] {
        let mut all = vec!["--url", "http://127.0.0.1:1"];
        all.extend(args);
        let out = load(&all).await;
        assert_eq!(out.status.code(), Some(2), "{all:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(why), "{all:?}: {stderr}");
    }
}
