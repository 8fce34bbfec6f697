//! `serve --scenario`: scenarios run when their device connects and on
//! demand, with results in the journal and the control API.

use avs_sim_tests::{DEADLINE, TestSim, event};
use serde_json::json;
use std::path::Path;

#[tokio::test]
async fn a_scenario_runs_when_its_device_connects_and_on_demand() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/software-info.toml");
    let sim = TestSim::start(|c| c.scenarios.push(file)).await;
    let (listed_status, listed) = sim.get("/api/scenarios").await;
    assert_eq!(listed_status, 200);
    assert_eq!(listed["scenarios"][0]["name"], "software info");
    assert_eq!(listed["scenarios"][0]["devices"][0], "kitchen");

    // The device connects: the scenario starts and pushes ReportSoftwareInfo.
    let (mut dev, mut dc) = sim.connected("kitchen").await;
    let part = dc.next_part(DEADLINE).await.unwrap().expect("ReportSoftwareInfo");
    assert_eq!(part.json()["directive"]["header"]["name"], "ReportSoftwareInfo");
    let ok = dev
        .event(
            &event("System", "SoftwareInfo", json!({"firmwareVersion": "8701"})),
            None,
        )
        .await
        .unwrap();
    assert_eq!(ok.status, 204);
    let done = sim
        .await_entry(None, |e| {
            e["face"] == "scenario" && e["kind"] == "run" && e["body"]["passed"].is_boolean()
        })
        .await;
    assert_eq!(done["body"]["passed"], true, "{done}");
    let (_, run) = sim.get("/api/scenarios/1").await;
    assert_eq!(run["status"], "passed");
    assert_eq!(run["trigger"], "kitchen");
    assert_eq!(run["result"]["steps"].as_array().unwrap().len(), 6);

    // On demand, with a device that now answers wrongly: the run fails with a near miss.
    let resp = sim
        .http
        .post(sim.control("/api/scenarios/run"))
        .json(&json!({"scenario": "software info"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    let body: serde_json::Value = resp.json().await.unwrap();
    let id = body["run"].as_u64().unwrap();
    dc.next_part(DEADLINE).await.unwrap().expect("ReportSoftwareInfo again");
    let bad = dev
        .event(&event("System", "SoftwareInfo", json!({"firmwareVersion": "0"})), None)
        .await
        .unwrap();
    assert_eq!(bad.status, 400);
    let failed = sim
        .await_entry(None, |e| {
            e["face"] == "scenario" && e["kind"] == "run" && e["body"]["run"] == id && e["body"]["passed"] == false
        })
        .await;
    assert!(
        failed["body"]["failure"].as_str().unwrap().contains("got \"0\""),
        "{failed}"
    );
    let (_, run) = sim.get(&format!("/api/scenarios/{id}")).await;
    assert_eq!(run["status"], "failed");

    // Errors.
    let resp = sim
        .http
        .post(sim.control("/api/scenarios/run"))
        .json(&json!({"scenario": "nope"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    let resp = sim
        .http
        .post(sim.control("/api/scenarios/run"))
        .body("{")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert_eq!(sim.get("/api/scenarios/999").await.0, 404);
    sim.stop().await;
}

#[tokio::test]
async fn an_invalid_scenario_stops_serve_with_exit_2() {
    let dir = avs_sim_tests::temp_dir("bad-scenario");
    std::fs::write(
        dir.join("bad.toml"),
        "name = 'x'\n[[steps]]\nkind = 'wait'\nduration = 'soon'\n",
    )
    .unwrap();
    let out = tokio::process::Command::new(avs_sim_tests::binary::path())
        .current_dir(&dir)
        .args(["serve", "--scenario", "bad.toml"])
        .args(avs_sim_tests::binary::PORT_ZERO)
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("bad.toml:4:12: bad duration"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
