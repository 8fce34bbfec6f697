//! `avs-sim device`, the reference device, against an in-process simulator:
//! LWA refresh, pings, reconnect after GOAWAY, and the misbehaviours the
//! conformance rules must catch.

use avs_sim_tests::{TestSim, binary};
use std::process::Stdio;
use tokio::process::{Child, Command};

fn device(sim: &TestSim, args: &[&str]) -> Child {
    Command::new(binary::path())
        .arg("device")
        .args(["--url", &format!("https://localhost:{}", sim.handle.addrs.avs.port())])
        .arg("--ca")
        .arg(&sim.handle.ca)
        .args(args)
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("device starts")
}

async fn opens(sim: &TestSim, device: &str, n: usize) {
    let mut seen = 0;
    sim.await_entry(Some(device), |e| {
        if e["summary"] == "200 downchannel open" {
            seen += 1;
        }
        seen >= n
    })
    .await;
}

#[tokio::test]
async fn refreshes_through_lwa_pings_and_keeps_its_device_id() {
    let sim = TestSim::start(|c| {
        c.devices.push(avs_sim::config::DeviceDecl {
            id: "hall".into(),
            token: "hall-static".into(),
            refresh_token: Some("Atzr|hall".into()),
        })
    })
    .await;
    let _d = device(
        &sim,
        &[
            "--token",
            "unused",
            "--refresh-token",
            "Atzr|hall",
            "--ping-interval",
            "300ms",
        ],
    );
    sim.await_entry(Some("hall"), |e| {
        e["face"] == "lwa" && e["kind"] == "response" && e["body"]["status"] == 200
    })
    .await;
    opens(&sim, "hall", 1).await;
    sim.await_entry(Some("hall"), |e| e["summary"] == "System.SynchronizeState")
        .await;
    sim.await_entry(Some("hall"), |e| e["summary"] == "GET /ping").await;
    let (_, d) = sim.get("/api/devices/hall").await;
    assert_eq!(
        d["capabilities"][0],
        serde_json::json!({"interface": "System", "version": "1.1"})
    );
    assert!(
        d["last_state"].as_array().is_some_and(|c| !c.is_empty()),
        "SynchronizeState carries context"
    );
    sim.stop().await;
}

#[tokio::test]
async fn reconnects_after_goaway_and_resyncs() {
    let sim = TestSim::start(|_| {}).await;
    let _d = device(&sim, &["--token", "gw"]);
    opens(&sim, "gw", 1).await;
    // Another connection for the same device: AVS sends the first one GOAWAY.
    let (_intruder, _dc) = sim.connected("gw").await;
    sim.await_entry(Some("gw"), |e| e["kind"] == "goaway").await;
    // The reference device reconnects (which in turn sends the intruder away) and syncs again.
    opens(&sim, "gw", 3).await;
    let mut syncs = 0;
    sim.await_entry(Some("gw"), |e| {
        if e["summary"] == "System.SynchronizeState" {
            syncs += 1;
        }
        syncs >= 2
    })
    .await;
    assert_eq!(sim.verdict("gw", "synchronize_state_first").await.0, "pass");
    sim.stop().await;
}

#[tokio::test]
async fn misbehaviours_break_their_conformance_rules() {
    let sim = TestSim::start(|_| {}).await;
    let _a = device(&sim, &["--token", "early", "--misbehave", "events-before-downchannel"]);
    let _b = device(
        &sim,
        &[
            "--token",
            "dup",
            "--misbehave",
            "duplicate-message-ids",
            "--inactivity-interval",
            "200ms",
        ],
    );
    let _c = device(&sim, &["--token", "old", "--misbehave", "declare-system10"]);
    let _d = device(
        &sim,
        &["--token", "quiet", "--misbehave", "no-ping", "--ping-interval", "100ms"],
    );
    opens(&sim, "early", 1).await;
    opens(&sim, "dup", 1).await;
    opens(&sim, "old", 1).await;
    opens(&sim, "quiet", 1).await;
    let wait_for = |device: &'static str, rule: &'static str, verdict: &'static str| {
        let sim = &sim;
        async move {
            let path = format!("/api/devices/{device}/conformance");
            let deadline = tokio::time::Instant::now() + avs_sim_tests::DEADLINE;
            loop {
                let (v, r) = sim.verdict(device, rule).await;
                if v == verdict {
                    return r;
                }
                assert!(tokio::time::Instant::now() < deadline, "{path}: {rule} stayed {v}: {r}");
                // Verdicts change as the device acts; the journal wakes us.
                let latest = sim.get("/api/journal?limit=0").await.1["latest"].as_u64().unwrap();
                sim.get(&format!("/api/journal?since={latest}&wait=1s")).await;
            }
        }
    };
    wait_for("early", "downchannel_before_events", "fail").await;
    wait_for("dup", "unique_message_ids", "fail").await;
    sim.push_system("old", "ReportSoftwareInfo").await;
    wait_for("old", "software_info_needs_system_1_1", "fail").await;
    wait_for("quiet", "synchronize_state_first", "pass").await;
    let pings = sim.get("/api/journal?device=quiet").await.1["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["summary"] == "GET /ping")
        .count();
    assert_eq!(pings, 0, "--misbehave no-ping never pings");
    sim.stop().await;
}
