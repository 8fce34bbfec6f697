//! The AVS device face, black-box over real sockets with a Rust device
//! client that behaves like the AVS Device SDK (TLS + ALPN h2, and h2c).

use avs_sim_tests::{DEADLINE, TestSim, event};
use bytes::Bytes;
use http::Method;
use serde_json::json;

#[tokio::test]
async fn downchannel_receives_a_pushed_directive_framed_as_avs_does() {
    let sim = TestSim::start(|_| {}).await;
    let mut dev = sim.tls_device("kitchen").await;
    assert!(dev.max_streams() >= 10, "advertises {} streams", dev.max_streams());
    let mut dc = dev.downchannel().await.unwrap();
    assert_eq!(dc.status, 200);
    let ct = dc.content_type().to_string();
    assert!(ct.starts_with("multipart/related; boundary="), "{ct}");
    assert!(
        ct.ends_with("; type=application/json"),
        "boundary must not be the last parameter: {ct}"
    );
    assert!(!ct.contains('"'), "boundary must be unquoted: {ct}");
    assert!(dc.headers.contains_key("x-amzn-requestid"));

    let (status, body) = sim
        .push("kitchen", json!({"namespace": "System", "name": "ResetUserInactivity"}))
        .await;
    assert_eq!(status, 202, "{body}");
    let part = dc.next_part(DEADLINE).await.unwrap().expect("a directive part");
    assert_eq!(part.header("Content-Type"), Some("application/json; charset=UTF-8"));
    let d = part.json();
    assert_eq!(d["directive"]["header"]["name"], "ResetUserInactivity");
    assert_eq!(d["directive"]["header"]["messageId"], body["messageId"]);
    // The downchannel body starts with CRLF --B CRLF, and each part is followed by CRLF --B CRLF.
    let boundary = avs_sim_tests::related::sdk_boundary(&ct).unwrap();
    assert!(dc.raw.starts_with(format!("\r\n--{boundary}\r\n").as_bytes()));
    assert!(dc.raw.ends_with(format!("\r\n--{boundary}\r\n").as_bytes()));

    // The two other request forms: a whole directive, and raw bytes.
    let directive =
        json!({"directive": {"header": {"namespace": "Speaker", "name": "SetVolume"}, "payload": {"volume": 5}}});
    assert_eq!(sim.push("kitchen", directive).await.0, 202);
    let d = dc.next_part(DEADLINE).await.unwrap().unwrap().json();
    assert_eq!(d["directive"]["payload"]["volume"], 5);
    assert!(
        d["directive"]["header"]["messageId"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "messageId filled in"
    );
    assert_eq!(sim.push("kitchen", json!({"raw": "{not json"})).await.0, 202);
    assert_eq!(dc.next_part(DEADLINE).await.unwrap().unwrap().body, b"{not json");
    sim.stop().await;
}

#[tokio::test]
async fn push_errors_unknown_device_no_downchannel_bad_json() {
    let sim = TestSim::start(|_| {}).await;
    let (status, body) = sim
        .push("nobody", json!({"namespace": "System", "name": "ResetUserInactivity"}))
        .await;
    assert_eq!(status, 404, "{body}");
    let mut dev = sim.h2c_device("lamp").await;
    assert_eq!(dev.ping("/ping").await.unwrap(), 204); // the device exists but has no downchannel
    let (status, body) = sim
        .push("lamp", json!({"namespace": "System", "name": "ResetUserInactivity"}))
        .await;
    assert_eq!(status, 409, "{body}");
    assert!(body["error"].as_str().unwrap().contains("no open downchannel"));
    let resp = sim
        .http
        .post(sim.control("/api/devices/lamp/directives"))
        .body("{oops")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("not valid JSON"), "{body}");
    let (status, body) = sim.push("lamp", json!({"name": "X"})).await;
    assert_eq!(status, 400, "{body}");
    let (status, _) = sim.get("/api/journal?since=abc").await;
    assert_eq!(status, 400);
    sim.stop().await;
}

#[tokio::test]
async fn synchronize_state_is_stored_and_answered_204() {
    let sim = TestSim::start(|_| {}).await;
    let (mut dev, _dc) = sim.connected("d1").await;
    let mut ev = event("System", "SynchronizeState", json!({}));
    ev["context"] =
        json!([{"header": {"namespace": "Speaker", "name": "VolumeState"}, "payload": {"volume": 30, "muted": false}}]);
    let answer = dev.event(&ev, None).await.unwrap();
    assert_eq!(answer.status, 204);
    assert!(answer.body.is_empty());
    let (_, d) = sim.get("/api/devices/d1").await;
    assert_eq!(d["last_state"][0]["payload"]["volume"], 30);
    assert_eq!(d["connected"], true);
    assert_eq!(d["region"], "NA");
    assert_eq!(d["last_event"]["name"], "System.SynchronizeState");
    assert_eq!(sim.verdict("d1", "synchronize_state_first").await.0, "pass");
    assert_eq!(sim.verdict("d1", "downchannel_before_events").await.0, "pass");
    sim.stop().await;
}

#[tokio::test]
async fn firmware_versions_from_the_seed_and_the_issue() {
    let sim = TestSim::start(|_| {}).await;
    let (mut dev, _dc) = sim.connected("fw").await;
    for valid in ["123", "8701", "20170207", "2147483647"] {
        let a = dev
            .event(
                &event("System", "SoftwareInfo", json!({"firmwareVersion": valid})),
                None,
            )
            .await
            .unwrap();
        assert_eq!(a.status, 204, "{valid}: {:?}", a.json());
    }
    let (_, d) = sim.get("/api/devices/fw").await;
    assert_eq!(d["firmware"], "2147483647");
    for invalid in [
        "50.3",
        "avs-123.4x",
        "ask.201-(1.23.4-test)",
        "0",
        "",
        "-5",
        "2147483648",
        " 12",
        "+12",
    ] {
        let a = dev
            .event(
                &event("System", "SoftwareInfo", json!({"firmwareVersion": invalid})),
                None,
            )
            .await
            .unwrap();
        assert_eq!(a.status, 400, "{invalid:?}");
        let body = a.json();
        assert_eq!(body["header"]["name"], "Exception");
        assert_eq!(body["payload"]["code"], "INVALID_REQUEST_EXCEPTION", "{invalid:?}");
        assert!(
            body["payload"]["description"]
                .as_str()
                .unwrap()
                .contains("firmwareVersion")
        );
    }
    assert_eq!(sim.verdict("fw", "valid_firmware_version").await.0, "fail");
    sim.stop().await;
}

#[tokio::test]
async fn malformed_event_gets_400_and_the_downchannel_lives_on() {
    let sim = TestSim::start(|_| {}).await;
    let (mut dev, mut dc) = sim.connected("m").await;
    let bad_bodies: Vec<(&str, Bytes)> = vec![
        (
            "multipart/form-data; boundary=b",
            Bytes::from_static(b"no delimiter at all"),
        ),
        (
            "multipart/form-data; boundary=b",
            Bytes::from_static(b"--b\r\nContent-Type: application/json\r\n\r\n{not json\r\n--b--\r\n"),
        ),
        (
            "multipart/form-data; boundary=b",
            Bytes::from_static(b"--b\r\nContent-Type: application/json\r\n\r\n{\"event\":{}}\r\n--b--\r\n"),
        ),
        ("multipart/form-data", Bytes::from_static(b"x")),
    ];
    for (ct, body) in bad_bodies {
        let a = dev
            .call(Method::POST, "/v20160207/events", Some(ct), body)
            .await
            .unwrap();
        assert_eq!(a.status, 400, "{:?}", a.json());
        assert_eq!(a.json()["payload"]["code"], "INVALID_REQUEST_EXCEPTION");
    }
    let a = dev
        .call(
            Method::POST,
            "/v20160207/events",
            Some("application/json"),
            Bytes::from_static(b"{}"),
        )
        .await
        .unwrap();
    assert_eq!(a.status, 415);
    assert_eq!(a.json()["payload"]["code"], "UNSUPPORTED_MEDIA_TYPE");
    let a = dev
        .event(
            &json!({"event": {"header": {"namespace": "System", "name": "X"}}}),
            None,
        )
        .await
        .unwrap();
    assert_eq!(a.status, 400);
    assert!(
        a.json()["payload"]["description"]
            .as_str()
            .unwrap()
            .contains("event.header.messageId")
    );
    // Same connection: the downchannel still delivers.
    sim.push_system("m", "ResetUserInactivity").await;
    assert!(dc.next_part(DEADLINE).await.unwrap().is_some());
    sim.stop().await;
}

#[tokio::test]
async fn missing_or_unknown_token_gets_403_everywhere() {
    let sim = TestSim::start(|c| {
        c.auth = avs_sim::config::AuthMode::Strict;
        c.devices.push(avs_sim::config::DeviceDecl {
            id: "known".into(),
            token: "good".into(),
            refresh_token: None,
        });
    })
    .await;
    for token in ["", "bad"] {
        let mut dev = sim.tls_device(token).await;
        let dc = dev.downchannel().await.unwrap();
        assert_eq!(dc.status, 403);
        for path in ["/ping", "/v20160207/ping"] {
            assert_eq!(dev.ping(path).await.unwrap(), 403);
        }
        let a = dev
            .event(&event("System", "SynchronizeState", json!({})), None)
            .await
            .unwrap();
        assert_eq!(a.status, 403);
        assert_eq!(a.json()["payload"]["code"], "UNAUTHORIZED_REQUEST_EXCEPTION");
    }
    let (_dev, dc) = sim.connected("good").await;
    assert_eq!(dc.status, 200);
    let (_, d) = sim.get("/api/devices/known").await;
    assert_eq!(d["connected"], true);
    sim.stop().await;
}

#[tokio::test]
async fn ping_paths_and_ping_frames() {
    let sim = TestSim::start(|_| {}).await;
    let mut dev = sim.h2c_device("p").await;
    let _dc = dev.downchannel().await.unwrap();
    assert_eq!(dev.ping("/ping").await.unwrap(), 204);
    assert_eq!(dev.ping("/v20160207/ping").await.unwrap(), 204);
    dev.ping_frame().await.unwrap();
    sim.await_entry(Some("p"), |e| e["kind"] == "ping_frame").await;
    assert_eq!(sim.verdict("p", "activity").await.0, "pass");
    sim.stop().await;
}

#[tokio::test]
async fn recognize_is_answered_while_audio_still_streams() {
    let sim = TestSim::start(|_| {}).await;
    let (mut dev, _dc) = sim.connected("r").await;
    let mut ev = event(
        "SpeechRecognizer",
        "Recognize",
        json!({"profile": "NEAR_FIELD", "format": "AUDIO_L16_RATE_16000_CHANNELS_1"}),
    );
    ev["event"]["header"]["dialogRequestId"] = json!("dlg-1");
    let (resp, mut audio) = dev.open_event(&ev).await.unwrap();
    audio.send_data(Bytes::from(vec![1u8; 3200]), false).unwrap();
    // The answer's headers and StopCapture arrive before the audio ends.
    let resp = tokio::time::timeout(DEADLINE, resp).await.unwrap().unwrap();
    assert_eq!(resp.status(), 200);
    let ct = resp.headers()["content-type"].to_str().unwrap().to_string();
    let boundary = avs_sim_tests::related::sdk_boundary(&ct).unwrap();
    let mut body = resp.into_body();
    let mut reader = avs_sim_tests::related::Reader::new(&boundary);
    let stop = loop {
        if let Some(p) = reader.next_part() {
            break p;
        }
        let chunk = tokio::time::timeout(DEADLINE, body.data())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        reader.push(&chunk);
    };
    let stop = stop.json();
    assert_eq!(stop["directive"]["header"]["name"], "StopCapture");
    assert_eq!(stop["directive"]["header"]["dialogRequestId"], "dlg-1");
    // Now finish the upload; the answer closes with --B--.
    audio.send_data(Bytes::from(vec![2u8; 1600]), false).unwrap();
    audio
        .send_data(
            Bytes::from(format!("\r\n--{}--\r\n", avs_sim_tests::device::SDK_BOUNDARY)),
            true,
        )
        .unwrap();
    while let Some(chunk) = tokio::time::timeout(DEADLINE, body.data()).await.unwrap() {
        reader.push(&chunk.unwrap());
    }
    assert!(
        reader.next_part().is_none() && reader.ended,
        "answer ends with the close delimiter"
    );
    let att = sim.await_entry(Some("r"), |e| e["kind"] == "attachment").await;
    assert_eq!(att["body"]["bytes"], 4800);
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    h.update(vec![1u8; 3200]);
    h.update(vec![2u8; 1600]);
    assert_eq!(att["body"]["sha256"], hex::encode(h.finalize()));
    sim.stop().await;
}

#[tokio::test]
async fn event_body_limit_is_enforced_without_buffering() {
    let sim = TestSim::start(|c| c.avs.max_event_bytes = 10_000).await;
    let mut dev = sim.tls_device("big").await;
    let a = dev
        .event(
            &event("System", "SynchronizeState", json!({})),
            Some(&vec![0u8; 20_000]),
        )
        .await
        .unwrap();
    assert_eq!(a.status, 400);
    assert!(
        a.json()["payload"]["description"]
            .as_str()
            .unwrap()
            .contains("limit of 10000")
    );
    sim.stop().await;
}

#[tokio::test]
async fn user_inactivity_and_exceptions_are_recorded() {
    let sim = TestSim::start(|_| {}).await;
    let (mut dev, mut dc) = sim.connected("u").await;
    let a = dev
        .event(
            &event("System", "UserInactivityReport", json!({"inactiveTimeInSeconds": 3600})),
            None,
        )
        .await
        .unwrap();
    assert_eq!(a.status, 204);
    let a = dev
        .event(
            &event("System", "UserInactivityReport", json!({"inactiveTimeInSeconds": -1})),
            None,
        )
        .await
        .unwrap();
    assert_eq!(a.status, 400);
    assert_eq!(sim.get("/api/devices/u").await.1["inactive_seconds"], 3600);

    assert_eq!(sim.push("u", json!({"raw": "{\"directive\": broken"})).await.0, 202);
    let raw = String::from_utf8(dc.next_part(DEADLINE).await.unwrap().unwrap().body).unwrap();
    assert_eq!(sim.verdict("u", "exception_after_malformed").await.0, "pending");
    let payload =
        json!({"unparsedDirective": raw, "error": {"type": "UNEXPECTED_INFORMATION_RECEIVED", "message": "bad json"}});
    let a = dev
        .event(&event("System", "ExceptionEncountered", payload), None)
        .await
        .unwrap();
    assert_eq!(a.status, 204);
    let d = sim.get("/api/devices/u").await.1;
    assert_eq!(d["exceptions"][0]["unparsed_directive"], "{\"directive\": broken");
    assert_eq!(d["exceptions"][0]["error_type"], "UNEXPECTED_INFORMATION_RECEIVED");
    assert_eq!(sim.verdict("u", "exception_after_malformed").await.0, "pass");
    sim.stop().await;
}

#[tokio::test]
async fn a_new_connection_of_the_same_device_sends_the_old_one_goaway() {
    let sim = TestSim::start(|_| {}).await;
    let mut first = sim.tls_device("twice").await;
    let mut old_dc = first.downchannel().await.unwrap();
    let mut second = sim.tls_device("twice").await;
    let mut new_dc = second.downchannel().await.unwrap();
    assert_eq!(new_dc.status, 200);
    // The old downchannel ends and the old connection closes.
    assert!(old_dc.next_part(DEADLINE).await.map(|p| p.is_none()).unwrap_or(true));
    tokio::time::timeout(DEADLINE, &mut first.closed)
        .await
        .expect("old connection closes")
        .unwrap()
        .ok();
    sim.await_entry(Some("twice"), |e| e["kind"] == "goaway").await;
    // Directives now go to the new connection.
    sim.push_system("twice", "ResetUserInactivity").await;
    assert!(new_dc.next_part(DEADLINE).await.unwrap().is_some());
    sim.stop().await;
}

#[tokio::test]
async fn event_before_downchannel_and_duplicate_ids_break_conformance() {
    let sim = TestSim::start(|_| {}).await;
    let mut dev = sim.tls_device("c").await;
    let ev = event("System", "SynchronizeState", json!({}));
    assert_eq!(dev.event(&ev, None).await.unwrap().status, 204);
    let (verdict, rule) = sim.verdict("c", "downchannel_before_events").await;
    assert_eq!(verdict, "fail");
    let evidence = rule["evidence"][0].as_u64().unwrap();
    let (_, journal) = sim.get(&format!("/api/journal?since={}&limit=1", evidence - 1)).await;
    assert_eq!(
        journal["entries"][0]["summary"], "System.SynchronizeState",
        "evidence points at the event"
    );
    let _dc = dev.downchannel().await.unwrap();
    assert_eq!(dev.event(&ev, None).await.unwrap().status, 204); // same messageId again
    assert_eq!(sim.verdict("c", "unique_message_ids").await.0, "fail");
    sim.stop().await;
}

#[tokio::test]
async fn set_endpoint_to_another_region_and_reconnect_there() {
    let sim = TestSim::start(|c| {
        c.regions.push(avs_sim::config::Region {
            name: "EU".into(),
            listen: "127.0.0.1:0".parse().unwrap(),
            certificate: Default::default(),
        })
    })
    .await;
    let eu = sim.handle.addrs.regions[0].1;
    let (_dev, mut dc) = sim.connected("mover").await;
    let endpoint = format!("https://localhost:{}", eu.port());
    let (status, _) = sim
        .push(
            "mover",
            json!({"namespace": "System", "name": "SetEndpoint", "payload": {"endpoint": endpoint}}),
        )
        .await;
    assert_eq!(status, 202);
    let d = dc.next_part(DEADLINE).await.unwrap().unwrap().json();
    assert_eq!(d["directive"]["payload"]["endpoint"], endpoint);
    assert_eq!(sim.verdict("mover", "reconnect_after_set_endpoint").await.0, "pending");
    let mut moved = avs_sim_tests::device::Device::tls(eu, &sim.handle.ca, "mover")
        .await
        .unwrap();
    let _dc2 = moved.downchannel().await.unwrap();
    assert_eq!(
        moved
            .event(&event("System", "SynchronizeState", json!({})), None)
            .await
            .unwrap()
            .status,
        204
    );
    assert_eq!(sim.verdict("mover", "reconnect_after_set_endpoint").await.0, "pass");
    assert_eq!(sim.get("/api/devices/mover").await.1["region"], "EU");
    let open = sim
        .await_entry(Some("mover"), |e| {
            e["kind"] == "response" && e["body"]["region"] == "EU"
        })
        .await;
    assert_eq!(open["summary"], "200 downchannel open");
    sim.stop().await;
}

#[tokio::test]
async fn software_info_after_report_and_system_1_1() {
    let sim = TestSim::start(|_| {}).await;
    let mut dev = sim.tls_device("sw").await;
    let caps = json!({"envelopeVersion": "20160207", "capabilities": [{"type": "AlexaInterface", "interface": "System", "version": "1.0"}]});
    let a = dev
        .call(
            Method::PUT,
            "/v1/devices/@self/capabilities",
            Some("application/json"),
            Bytes::from(caps.to_string()),
        )
        .await
        .unwrap();
    assert_eq!(a.status, 204);
    let mut dc = dev.downchannel().await.unwrap();
    sim.push_system("sw", "ReportSoftwareInfo").await;
    dc.next_part(DEADLINE).await.unwrap().unwrap();
    assert_eq!(sim.verdict("sw", "software_info_after_report").await.0, "pending");
    let a = dev
        .event(&event("System", "SoftwareInfo", json!({"firmwareVersion": "42"})), None)
        .await
        .unwrap();
    assert_eq!(a.status, 204);
    assert_eq!(sim.verdict("sw", "software_info_after_report").await.0, "pass");
    assert_eq!(
        sim.verdict("sw", "software_info_needs_system_1_1").await.0,
        "fail",
        "declared System 1.0 only"
    );
    let d = sim.get("/api/devices/sw").await.1;
    assert_eq!(d["capabilities"][0]["version"], "1.0");
    sim.stop().await;
}

#[tokio::test]
async fn lenient_multipart_inputs_are_accepted() {
    let sim = TestSim::start(|_| {}).await;
    let mut dev = sim.h2c_device("lenient").await;
    let _dc = dev.downchannel().await.unwrap();
    let meta = json!({"event": {"header": {"namespace": "System", "name": "SynchronizeState", "messageId": ""}}, "context": []});
    // alexa-client: part named `request`, filename=, `application/json;`, no leading CRLF, empty messageId.
    let body = format!(
        "--seeed-voice-engine\r\nContent-Disposition: form-data; name=\"request\"; filename=\"request\"\r\nContent-Type: application/json;\r\n\r\n{meta}\r\n--seeed-voice-engine--\r\n"
    );
    let a = dev
        .call(
            Method::POST,
            "/v20160207/events",
            Some("multipart/form-data; boundary=seeed-voice-engine"),
            Bytes::from(body),
        )
        .await
        .unwrap();
    assert_eq!(a.status, 204, "{:?}", a.json());
    sim.stop().await;
}
