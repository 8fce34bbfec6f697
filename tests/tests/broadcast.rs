//! `POST /api/directives/broadcast`: one directive to every device, to a
//! prefix, to a list; each device gets it on its downchannel with its own
//! messageId; bad filters are refused by name; devices without a
//! downchannel are counted as skipped.

use avs_sim_tests::device::Downchannel;
use avs_sim_tests::{DEADLINE, TestSim};
use serde_json::{Value, json};

async fn broadcast(sim: &TestSim, body: Value) -> (u16, Value) {
    let resp = sim
        .http
        .post(sim.control("/api/directives/broadcast"))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// The next directive on `dc`: its header.
async fn next_header(dc: &mut Downchannel) -> Value {
    let part = dc
        .next_part(DEADLINE)
        .await
        .expect("a part arrives")
        .expect("the downchannel is open");
    let doc: Value = serde_json::from_slice(&part.body).expect("directive JSON");
    doc["directive"]["header"].clone()
}

#[tokio::test]
async fn broadcast_reaches_all_a_prefix_or_a_list() {
    let sim = TestSim::start(|_| {}).await;
    let (_a, mut kitchen1) = sim.connected("kitchen-1").await;
    let (_b, mut kitchen2) = sim.connected("kitchen-2").await;
    let (_c, mut hall) = sim.connected("hall").await;

    // Everyone, with the caller's messageId as the broadcast id.
    let (status, answer) = broadcast(
        &sim,
        json!({"directive": {"header": {"namespace": "System", "name": "ResetUserInactivity", "messageId": "all"}, "payload": {}}}),
    )
    .await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["devices"], 3, "{answer}");
    assert_eq!(answer["messageId"], "all");
    assert_eq!(answer["skipped"]["total"], 0, "{answer}");
    let mut ids = Vec::new();
    for dc in [&mut kitchen1, &mut kitchen2, &mut hall] {
        let header = next_header(dc).await;
        assert_eq!(header["name"], "ResetUserInactivity");
        ids.push(header["messageId"].as_str().unwrap().to_string());
    }
    ids.sort();
    assert_eq!(ids, ["all-1", "all-2", "all-3"], "one messageId per device");

    // A prefix: only the kitchen.
    let (status, answer) = broadcast(
        &sim,
        json!({"namespace": "Alerts", "name": "DeleteAlert", "payload": {"token": "t"}, "prefix": "kitchen-"}),
    )
    .await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["devices"], 2, "{answer}");
    let id = answer["messageId"].as_str().expect("a broadcast id").to_string();
    for dc in [&mut kitchen1, &mut kitchen2] {
        let header = next_header(dc).await;
        assert_eq!(header["name"], "DeleteAlert");
        assert!(header["messageId"].as_str().unwrap().starts_with(&format!("{id}-")));
    }

    // A list: the hall and one unknown device, counted as skipped.
    let (status, answer) = broadcast(
        &sim,
        json!({"namespace": "System", "name": "ResetUserInactivity", "devices": ["hall", "nobody"]}),
    )
    .await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["devices"], 1, "{answer}");
    assert_eq!(answer["skipped"]["byReason"]["unknownDevice"], 1, "{answer}");
    assert_eq!(answer["skipped"]["first"][0]["device"], "nobody");
    assert_eq!(next_header(&mut hall).await["name"], "ResetUserInactivity");

    // The hall got only the first and third; the kitchen the first two: the
    // next thing on every downchannel is a fresh broadcast to all.
    let (_, answer) = broadcast(&sim, json!({"namespace": "System", "name": "ReportSoftwareInfo"})).await;
    assert_eq!(answer["devices"], 3, "{answer}");
    for dc in [&mut kitchen1, &mut kitchen2, &mut hall] {
        assert_eq!(next_header(dc).await["name"], "ReportSoftwareInfo");
    }

    // One journal entry for the broadcast, with its outcome.
    let entry = sim
        .await_entry(None, |e| {
            e["summary"] == "POST /api/directives/broadcast" && e["body"]["answer"]["devices"] == 1
        })
        .await;
    assert_eq!(entry["body"]["request"]["devices"], "(2 ids)", "{entry}");
    sim.stop().await;
}

#[tokio::test]
async fn devices_without_a_downchannel_are_skipped() {
    let sim = TestSim::start(|_| {}).await;
    let (_a, mut held) = sim.connected("held").await;
    // A device that only sent an event: known, but with no downchannel.
    let mut quiet = sim.tls_device("quiet").await;
    let sync = avs_sim_tests::event("System", "SynchronizeState", json!({}));
    let answer = quiet.event(&sync, None).await.unwrap();
    assert!(answer.status < 300, "event answered {}", answer.status);

    let (status, answer) = broadcast(&sim, json!({"namespace": "System", "name": "ResetUserInactivity"})).await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["devices"], 1, "{answer}");
    assert_eq!(answer["skipped"]["total"], 1, "{answer}");
    assert_eq!(
        answer["skipped"]["first"],
        json!([{"device": "quiet", "reason": "noDownchannel"}])
    );
    assert_eq!(next_header(&mut held).await["name"], "ResetUserInactivity");
    sim.stop().await;
}

#[tokio::test]
async fn bad_bodies_are_refused_naming_the_problem() {
    let sim = TestSim::start(|_| {}).await;
    let too_many: Vec<String> = (0..100_001).map(|i| format!("d{i}")).collect();
    let cases = [
        (
            json!({"name": "X", "namespace": "Y", "devices": ["a"], "prefix": "a"}),
            "not both",
        ),
        (
            json!({"name": "X", "namespace": "Y", "devices": "a"}),
            "devices must be an array",
        ),
        (
            json!({"name": "X", "namespace": "Y", "devices": [7]}),
            "non-empty strings",
        ),
        (
            json!({"name": "X", "namespace": "Y", "prefix": 7}),
            "prefix must be a string",
        ),
        (
            json!({"name": "X", "namespace": "Y", "devices": too_many}),
            "at most 100000",
        ),
        (json!({"name": "X"}), "namespace must be a non-empty string"),
        (json!([1, 2]), "body must be a JSON object"),
    ];
    for (body, why) in cases {
        let (status, answer) = broadcast(&sim, body).await;
        assert_eq!(status, 400, "{why}: {answer}");
        let error = answer["error"].as_str().unwrap_or_default();
        assert!(error.contains(why), "{error:?} should say {why:?}");
    }
    let resp = sim
        .http
        .post(sim.control("/api/directives/broadcast"))
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    let answer: Value = resp.json().await.unwrap();
    assert!(answer["error"].as_str().unwrap().contains("not valid JSON"), "{answer}");
    sim.stop().await;
}
