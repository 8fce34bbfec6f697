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

fn scenario(text: &str) -> avs_sim::scenario::model::Scenario {
    avs_sim::scenario::load::parse(text, "t.toml").unwrap_or_else(|e| panic!("{e:?}"))
}

fn quiet() -> std::sync::Arc<dyn Fn(&avs_sim::scenario::runner::StepResult) + Send + Sync> {
    std::sync::Arc::new(|_| {})
}

/// `expect ... after = <a send step>` sees the device's answer to that very
/// directive, however fast it comes: the cut-off is the journal position
/// just before the directive is written, not the journal when the send
/// step's bookkeeping ends. The scenario task is held at the worst moment
/// (its progress report, after the directive went out) until the device's
/// answer is journaled, as a busy machine does now and then.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn after_a_send_sees_the_answer_to_its_directive_however_fast() {
    let sim = TestSim::start(|_| {}).await;
    let (mut dev, mut dc) = sim.connected("kitchen").await;
    let (answered_tx, answered_rx) = std::sync::mpsc::sync_channel::<u16>(1);
    // The device answers ReportSoftwareInfo at once.
    let device = tokio::spawn(async move {
        let part = dc.next_part(DEADLINE).await.unwrap().expect("ReportSoftwareInfo");
        assert_eq!(part.json()["directive"]["header"]["name"], "ReportSoftwareInfo");
        let info = event("System", "SoftwareInfo", json!({"firmwareVersion": "8701"}));
        let status = dev.event(&info, None).await.unwrap().status;
        answered_tx.send(status).unwrap();
        (dev, dc)
    });
    let answered_rx = std::sync::Mutex::new(answered_rx);
    let progress = std::sync::Arc::new(move |r: &avs_sim::scenario::runner::StepResult| {
        if r.path == "1" {
            // A blocking wait with a deadline: the runner's task stands still, as a
            // descheduled one would; the device and the server run on other workers.
            let status = answered_rx
                .lock()
                .unwrap()
                .recv_timeout(DEADLINE)
                .expect("the device answered");
            assert_eq!(status, 204);
        }
    });
    let s = scenario(
        "name='fast'\n[[devices]]\nname='dut'\ntoken='kitchen'\n\
         [[steps]]\nkind='send'\nid='report'\ndevice='dut'\ndirective='System.ReportSoftwareInfo'\n\
         [[steps]]\nkind='expect'\ndevice='dut'\nevent='System.SoftwareInfo'\nafter='report'\nwithin='5s'",
    );
    let state = sim.handle.state.clone();
    let since = state.journal.latest();
    let r = avs_sim::scenario::runner::run(state.clone(), &s, since, progress).await;
    assert!(r.passed, "{:#?}", r.failure);
    let matched = state.journal.get(r.steps[1].journal_ids[0]).unwrap();
    assert_eq!(matched.summary, "System.SoftwareInfo");
    assert!(
        matched.id > r.steps[0].journal_ids[0],
        "the answer follows the directive"
    );
    let _ = device.await.unwrap();
    sim.stop().await;
}

/// `await_connect` passes when the downchannel opens; with `synchronized =
/// true` only once that connection's SynchronizeState was accepted (a
/// refused one does not count), and the step claims it.
#[tokio::test]
async fn await_connect_can_wait_for_an_accepted_synchronize_state() {
    let sim = TestSim::start(|_| {}).await;
    let state = sim.handle.state.clone();
    let refuse: avs_sim::faults::Rule = toml::from_str(
        "times = 1\n[when]\ndevice = 'kitchen'\nevent = 'System.SynchronizeState'\n[then]\naction = 'status'\nstatus = 503",
    )
    .unwrap();
    state.faults.add(refuse).unwrap();
    let s = scenario(
        "name='sync'\n[[devices]]\nname='dut'\ntoken='kitchen'\n\
         [[steps]]\nkind='await_connect'\ndevice='dut'\nsynchronized=true\nwithin='10s'",
    );
    let since = state.journal.latest();
    let run = {
        let state = state.clone();
        tokio::spawn(async move { avs_sim::scenario::runner::run(state, &s, since, quiet()).await })
    };
    let (mut dev, _dc) = sim.connected("kitchen").await;
    let sync = || event("System", "SynchronizeState", json!({}));
    assert_eq!(dev.event(&sync(), None).await.unwrap().status, 503);
    assert_eq!(dev.event(&sync(), None).await.unwrap().status, 204);
    let r = tokio::time::timeout(DEADLINE, run).await.unwrap().unwrap();
    assert!(r.passed, "{:#?}", r.failure);
    assert_eq!(r.steps[0].label, "dut connects and synchronizes");
    let ids = &r.steps[0].journal_ids;
    let entry = |id: u64| state.journal.get(id).unwrap();
    assert_eq!(entry(ids[0]).summary, "200 downchannel open");
    let synced = entry(ids[1]);
    assert_eq!(synced.summary, "System.SynchronizeState");
    let syncs: Vec<u64> = state
        .journal
        .query(&avs_sim::journal::Query {
            device: Some("kitchen".into()),
            limit: Some(usize::MAX),
            ..Default::default()
        })
        .iter()
        .filter(|e| e.summary == "System.SynchronizeState")
        .map(|e| e.id)
        .collect();
    assert_eq!(syncs.len(), 2);
    assert_eq!(synced.id, syncs[1], "the accepted one, not the refused one");
    assert!(state.scenarios.is_claimed(synced.id));

    // A device that never synchronizes fails the step, and says so.
    let s = scenario(
        "name='never'\n[[devices]]\nname='dut'\ntoken='bedroom'\n\
         [[steps]]\nkind='await_connect'\ndevice='dut'\nsynchronized=true\nwithin='300ms'",
    );
    let since = state.journal.latest();
    let run = {
        let state = state.clone();
        tokio::spawn(async move { avs_sim::scenario::runner::run(state, &s, since, quiet()).await })
    };
    let _bedroom = sim.connected("bedroom").await;
    let r = tokio::time::timeout(DEADLINE, run).await.unwrap().unwrap();
    assert!(!r.passed);
    assert!(
        r.failure
            .as_deref()
            .unwrap_or("")
            .contains("did not open a downchannel and synchronize in time"),
        "{:?}",
        r.failure
    );
    drop(dev);
    sim.stop().await;
}
