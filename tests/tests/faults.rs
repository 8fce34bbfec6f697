//! Fault injection, each action observed from an HTTP/2 client as a device
//! would see it: the status and body, the RST_STREAM code, the GOAWAY code,
//! a held or delayed answer, a revoked token. Other streams of the same
//! connection must not notice.

use avs_sim_tests::{DEADLINE, TestSim, event};
use bytes::Bytes;
use http::Method;
use serde_json::{Value, json};
use std::time::Duration;

async fn add(sim: &TestSim, rule: Value) -> String {
    sim.add_fault(rule).await
}

async fn now(sim: &TestSim, device: &str, action: Value) -> u16 {
    sim.fault_now(device, action).await
}

fn h2_reason(e: &anyhow::Error) -> Option<h2::Reason> {
    e.chain()
        .find_map(|c| c.downcast_ref::<h2::Error>())
        .and_then(|e| e.reason())
}

#[tokio::test]
async fn status_faults_speak_each_faces_error_format_and_respect_times() {
    let sim = TestSim::start(|_| {}).await;
    let (mut dev, _dc) = sim.connected("st").await;
    add(&sim, json!({"id": "throttle", "when": {"path": "/v20160207/events", "device": "st"}, "then": {"action": "status", "status": 429}, "times": 1})).await;
    let ev = || event("System.SynchronizeState", "X", json!({}));
    let a = dev
        .event(&event("System", "SynchronizeState", json!({})), None)
        .await
        .unwrap();
    assert_eq!(a.status, 429);
    assert_eq!(a.json()["payload"]["code"], "THROTTLING_EXCEPTION");
    let a = dev
        .event(&event("System", "SynchronizeState", json!({})), None)
        .await
        .unwrap();
    assert_eq!(a.status, 204, "times = 1: the second event passes");
    let _ = ev;
    let fired = sim.await_entry(Some("st"), |e| e["kind"] == "fault").await;
    assert_eq!(fired["body"]["rule"], "throttle");
    let (_, list) = sim.get("/api/faults").await;
    assert_eq!(list[0]["fired"], 1);

    // LWA answers an OAuth error, over HTTP/1.1 too.
    add(&sim, json!({"when": {"path": "/auth/o2/token"}, "then": {"action": "status", "status": 400, "error": "authorization_pending"}, "times": 1})).await;
    let resp = sim
        .http
        .post(format!("http://{}/auth/o2/token", sim.handle.addrs.plain))
        .form(&[("grant_type", "device_code"), ("device_code", "d"), ("user_code", "u")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert_eq!(resp.json::<Value>().await.unwrap()["error"], "authorization_pending");
    sim.stop().await;
}

#[tokio::test]
async fn event_rules_fire_on_the_event_name_only() {
    let sim = TestSim::start(|_| {}).await;
    let (mut dev, _dc) = sim.connected("ev").await;
    add(
        &sim,
        json!({"when": {"event": "System.SoftwareInfo"}, "then": {"action": "status", "status": 500}}),
    )
    .await;
    assert_eq!(
        dev.event(&event("System", "SynchronizeState", json!({})), None)
            .await
            .unwrap()
            .status,
        204
    );
    let a = dev
        .event(&event("System", "SoftwareInfo", json!({"firmwareVersion": "1"})), None)
        .await
        .unwrap();
    assert_eq!(a.status, 500);
    assert_eq!(a.json()["payload"]["code"], "INTERNAL_SERVICE_EXCEPTION");
    sim.stop().await;
}

#[tokio::test]
async fn reset_the_events_stream_after_100_bytes_while_the_downchannel_lives() {
    let sim = TestSim::start(|_| {}).await;
    let (mut dev, mut dc) = sim.connected("rs").await;
    add(&sim, json!({"when": {"path": "/v20160207/events"}, "then": {"action": "reset", "code": "REFUSED_STREAM", "at": "after_request_bytes", "bytes": 100}, "times": 1})).await;
    let err = dev
        .event(&event("System", "SynchronizeState", json!({})), Some(&[0u8; 4000]))
        .await
        .unwrap_err();
    assert_eq!(h2_reason(&err), Some(h2::Reason::REFUSED_STREAM), "{err:#}");
    // The same connection's downchannel still delivers, and the next event works.
    sim.push_system("rs", "ResetUserInactivity").await;
    assert!(dc.next_part(DEADLINE).await.unwrap().is_some());
    assert_eq!(
        dev.event(&event("System", "SynchronizeState", json!({})), None)
            .await
            .unwrap()
            .status,
        204
    );
    sim.stop().await;
}

#[tokio::test]
async fn reset_before_and_after_headers() {
    let sim = TestSim::start(|_| {}).await;
    let (mut dev, _dc) = sim.connected("rh").await;
    add(
        &sim,
        json!({"when": {"path": "/ping"}, "then": {"action": "reset", "code": "INTERNAL_ERROR"}, "times": 1}),
    )
    .await;
    let err = dev.ping("/ping").await.unwrap_err();
    assert_eq!(h2_reason(&err), Some(h2::Reason::INTERNAL_ERROR), "{err:#}");
    add(&sim, json!({"when": {"path": "/ping"}, "then": {"action": "reset", "code": "CANCEL", "at": "after_headers"}, "times": 1})).await;
    let req = http::Request::get("https://localhost/ping")
        .header("authorization", "Bearer rh")
        .body(())
        .unwrap();
    let resp = dev.raw_request(req).await.unwrap();
    assert_eq!(resp.status(), 200, "headers went out first");
    let mut body = resp.into_body();
    let err = body.data().await.expect("a frame or an error").unwrap_err();
    assert_eq!(err.reason(), Some(h2::Reason::CANCEL));
    assert_eq!(dev.ping("/ping").await.unwrap(), 204);
    sim.stop().await;
}

#[tokio::test]
async fn hold_and_delay() {
    let sim = TestSim::start(|_| {}).await;
    let (mut dev, _dc) = sim.connected("hd").await;
    add(
        &sim,
        json!({"when": {"path": "/ping"}, "then": {"action": "hold"}, "times": 1}),
    )
    .await;
    let held = tokio::time::timeout(Duration::from_millis(300), dev.ping("/ping")).await;
    assert!(held.is_err(), "a held ping is never answered");
    sim.await_entry(Some("hd"), |e| {
        e["kind"] == "fault" && e["body"]["action"]["action"] == "hold"
    })
    .await;
    add(
        &sim,
        json!({"when": {"path": "/v20160207/ping"}, "then": {"action": "delay", "ms": 200}, "times": 1}),
    )
    .await;
    let started = tokio::time::Instant::now();
    assert_eq!(dev.ping("/v20160207/ping").await.unwrap(), 204);
    assert!(
        started.elapsed() >= Duration::from_millis(200),
        "answered after the delay, not before"
    );
    sim.stop().await;
}

#[tokio::test]
async fn goaway_graceful_now_and_abrupt_with_a_code() {
    let sim = TestSim::start(|_| {}).await;
    let (mut dev, mut dc) = sim.connected("ga").await;
    assert_eq!(now(&sim, "ga", json!({"action": "goaway"})).await, 200);
    assert!(
        dc.next_part(DEADLINE).await.map(|p| p.is_none()).unwrap_or(true),
        "the downchannel ends"
    );
    let closed = tokio::time::timeout(DEADLINE, &mut dev.closed).await.unwrap().unwrap();
    assert!(closed.is_ok(), "a graceful GOAWAY closes cleanly: {closed:?}");
    let g = sim.await_entry(Some("ga"), |e| e["kind"] == "goaway").await;
    assert!(g["summary"].as_str().unwrap().starts_with("GOAWAY NO_ERROR"), "{g}");

    let (mut dev, _dc) = sim.connected("gb").await;
    add(&sim, json!({"when": {"device": "gb", "path": "/ping"}, "then": {"action": "goaway", "graceful": false, "code": "ENHANCE_YOUR_CALM"}})).await;
    let _ = dev.ping("/ping").await;
    let closed = tokio::time::timeout(DEADLINE, &mut dev.closed).await.unwrap().unwrap();
    let err = closed.expect_err("an abrupt GOAWAY with an error code");
    assert_eq!(err.reason(), Some(h2::Reason::ENHANCE_YOUR_CALM), "{err:?}");
    sim.stop().await;
}

#[tokio::test]
async fn end_or_reset_the_downchannel_now() {
    let sim = TestSim::start(|_| {}).await;
    let (_dev, mut dc) = sim.connected("dc1").await;
    assert_eq!(now(&sim, "dc1", json!({"action": "end_downchannel"})).await, 200);
    assert!(
        dc.next_part(DEADLINE).await.unwrap().is_none(),
        "ended cleanly with END_STREAM"
    );
    let (_dev2, mut dc2) = sim.connected("dc2").await;
    assert_eq!(
        now(&sim, "dc2", json!({"action": "reset", "code": "INTERNAL_ERROR"})).await,
        200
    );
    let err = dc2.next_part(DEADLINE).await.unwrap_err();
    assert_eq!(h2_reason(&err), Some(h2::Reason::INTERNAL_ERROR), "{err:#}");
    assert_eq!(now(&sim, "nobody", json!({"action": "goaway"})).await, 404);
    assert_eq!(
        now(&sim, "dc1", json!({"action": "hold"})).await,
        409,
        "hold is a rule, not a now-action"
    );
    sim.stop().await;
}

#[tokio::test]
async fn a_revoked_token_gets_403_until_the_device_refreshes() {
    let sim = TestSim::start(|c| {
        c.devices.push(avs_sim::config::DeviceDecl {
            id: "tv".into(),
            token: "tv-1".into(),
            refresh_token: Some("Atzr|tv".into()),
        })
    })
    .await;
    let mut dev = sim.h2c_device("tv-1").await;
    assert_eq!(dev.ping("/ping").await.unwrap(), 204);
    assert_eq!(now(&sim, "tv", json!({"action": "revoke_token"})).await, 200);
    assert_eq!(dev.ping("/ping").await.unwrap(), 403);
    let a = dev
        .call(
            Method::POST,
            "/auth/o2/token",
            Some("application/x-www-form-urlencoded"),
            Bytes::from_static(b"grant_type=refresh_token&refresh_token=Atzr%7Ctv"),
        )
        .await
        .unwrap();
    assert_eq!(a.status, 200);
    let mut fresh = sim.h2c_device(a.json()["access_token"].as_str().unwrap()).await;
    assert_eq!(fresh.ping("/ping").await.unwrap(), 204);
    // An expired token reads as such.
    assert_eq!(now(&sim, "tv", json!({"action": "expire_token"})).await, 200);
    let a = fresh.call(Method::GET, "/ping", None, Bytes::new()).await.unwrap();
    assert_eq!(a.status, 403);
    assert_eq!(a.json()["payload"]["description"], "access token expired");
    sim.stop().await;
}

#[tokio::test]
async fn a_config_chaos_profile_and_connection_age() {
    let sim = TestSim::start(|c| {
        c.seed = 7;
        c.faults.push(
            toml::from_str("id = 'chaos'\n[when]\npath = '/v20160207/ping'\n[then]\naction = 'status'\nstatus = 503")
                .unwrap(),
        );
        c.avs.max_connection_age = Duration::from_millis(300);
    })
    .await;
    let (mut dev, _dc) = sim.connected("old").await;
    assert_eq!(dev.ping("/v20160207/ping").await.unwrap(), 503);
    // The connection is sent GOAWAY once it is older than max_connection_age.
    let g = sim.await_entry(Some("old"), |e| e["kind"] == "goaway").await;
    assert!(g["summary"].as_str().unwrap().contains("max_connection_age"), "{g}");
    let closed = tokio::time::timeout(DEADLINE, &mut dev.closed).await.unwrap().unwrap();
    assert!(closed.is_ok());
    sim.stop().await;
}

#[tokio::test]
async fn the_same_seed_gives_the_same_fire_pattern_over_the_wire() {
    let pattern = || async {
        let sim = TestSim::start(|c| c.seed = 42).await;
        add(&sim, json!({"id": "coin", "when": {"path": "/ping", "probability": 0.5}, "then": {"action": "status", "status": 503}})).await;
        let mut dev = sim.h2c_device("coin").await;
        let mut out = Vec::new();
        for _ in 0..24 {
            out.push(dev.ping("/ping").await.unwrap());
        }
        sim.stop().await;
        out
    };
    let (a, b) = (pattern().await, pattern().await);
    assert_eq!(a, b);
    assert!(a.contains(&503) && a.contains(&204), "{a:?}");
}

#[tokio::test]
async fn bad_rules_are_refused_with_a_reason() {
    let sim = TestSim::start(|_| {}).await;
    for (rule, want) in [
        (json!({"then": {"action": "explode"}}), "not a fault rule"),
        (
            json!({"when": {"probability": 3.0}, "then": {"action": "hold"}}),
            "probability",
        ),
        (
            json!({"then": {"action": "reset", "code": "NOPE"}}),
            "not an HTTP/2 error code",
        ),
    ] {
        let resp = sim
            .http
            .post(sim.control("/api/faults"))
            .json(&rule)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400);
        assert!(
            resp.json::<Value>().await.unwrap()["error"]
                .as_str()
                .unwrap()
                .contains(want),
            "{want}"
        );
    }
    add(
        &sim,
        json!({"id": "x", "then": {"action": "hold"}, "when": {"path": "/nowhere"}}),
    )
    .await;
    let resp = sim
        .http
        .post(sim.control("/api/faults"))
        .json(&json!({"id": "x", "then": {"action": "hold"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 409);
    let resp = sim.http.delete(sim.control("/api/faults/x")).send().await.unwrap();
    assert_eq!(resp.status(), 204);
    let resp = sim.http.delete(sim.control("/api/faults/x")).send().await.unwrap();
    assert_eq!(resp.status(), 404);
    sim.stop().await;
}

#[tokio::test]
async fn connection_level_rules_reset_or_fail_tls_at_accept() {
    let sim = TestSim::start(|_| {}).await;
    add(
        &sim,
        json!({"when": {"face": "server"}, "then": {"action": "tcp_reset"}, "times": 1}),
    )
    .await;
    // The h2 client handshake only writes; the reset shows on first use.
    let mut dev = avs_sim_tests::device::Device::h2c(sim.handle.addrs.plain, "r")
        .await
        .unwrap();
    assert!(dev.ping("/ping").await.is_err());
    let closed = tokio::time::timeout(DEADLINE, &mut dev.closed).await.unwrap().unwrap();
    let err = closed.expect_err("reset at accept");
    assert_eq!(
        err.get_io().map(|e| e.kind()),
        Some(std::io::ErrorKind::ConnectionReset),
        "{err:?}"
    );
    let mut dev = avs_sim_tests::device::Device::h2c(sim.handle.addrs.plain, "r")
        .await
        .unwrap();
    assert_eq!(dev.ping("/ping").await.unwrap(), 204, "times = 1");
    add(
        &sim,
        json!({"when": {"face": "server"}, "then": {"action": "tls_fail"}, "times": 1}),
    )
    .await;
    let err = avs_sim_tests::device::Device::tls(sim.handle.addrs.avs, &sim.handle.ca, "t")
        .await
        .err()
        .expect("TLS fails");
    assert!(
        format!("{err:#}").to_lowercase().contains("eof") || format!("{err:#}").contains("reset"),
        "{err:#}"
    );
    assert!(
        avs_sim_tests::device::Device::tls(sim.handle.addrs.avs, &sim.handle.ca, "t")
            .await
            .is_ok()
    );
    sim.stop().await;
}

#[tokio::test]
async fn latency_stall_and_bandwidth_slow_the_device_down() {
    let sim = TestSim::start(|_| {}).await;
    let (mut dev, mut dc) = sim.connected("slow").await;
    assert_eq!(
        now(&sim, "slow", json!({"action": "latency", "ms": 200, "jitter_ms": 20})).await,
        200
    );
    let started = tokio::time::Instant::now();
    assert_eq!(dev.ping("/ping").await.unwrap(), 204);
    assert!(
        started.elapsed() >= Duration::from_millis(200),
        "latency applies to what the device receives"
    );
    assert_eq!(now(&sim, "slow", json!({"action": "latency", "ms": 0})).await, 200);

    assert_eq!(now(&sim, "slow", json!({"action": "stall", "ms": 300})).await, 200);
    let started = tokio::time::Instant::now();
    assert_eq!(dev.ping("/ping").await.unwrap(), 204);
    assert!(
        started.elapsed() >= Duration::from_millis(250),
        "nothing moves during a stall"
    );

    assert_eq!(
        now(&sim, "slow", json!({"action": "bandwidth", "bytes_per_second": 20000})).await,
        200
    );
    let big = "x".repeat(10_000);
    let started = tokio::time::Instant::now();
    let (status, _) = sim
        .push(
            "slow",
            json!({"namespace": "Speaker", "name": "SetVolume", "payload": {"pad": big}}),
        )
        .await;
    assert_eq!(status, 202);
    let part = dc.next_part(DEADLINE).await.unwrap().unwrap();
    assert!(part.body.len() > 10_000);
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "10 kB at 20 kB/s takes about half a second"
    );
    sim.stop().await;
}

#[tokio::test]
async fn close_after_bytes_and_reset_now() {
    let sim = TestSim::start(|_| {}).await;
    let (mut dev, mut dc) = sim.connected("cut").await;
    assert_eq!(
        now(&sim, "cut", json!({"action": "close_after", "bytes": 100})).await,
        200
    );
    let big = "y".repeat(2_000);
    sim.push(
        "cut",
        json!({"namespace": "Speaker", "name": "SetVolume", "payload": {"pad": big}}),
    )
    .await;
    let cut = dc.next_part(DEADLINE).await;
    assert!(
        !matches!(cut, Ok(Some(_))),
        "the directive never arrives whole: {cut:?}"
    );
    tokio::time::timeout(DEADLINE, &mut dev.closed)
        .await
        .expect("the connection ends")
        .unwrap()
        .ok();

    let (mut dev, _dc) = sim.connected("rst").await;
    assert_eq!(now(&sim, "rst", json!({"action": "tcp_reset"})).await, 200);
    let closed = tokio::time::timeout(DEADLINE, &mut dev.closed)
        .await
        .expect("the connection ends")
        .unwrap();
    let err = closed.expect_err("a reset is an error for the client");
    assert!(err.is_io(), "{err:?}");
    sim.stop().await;
}

#[tokio::test]
async fn dribble_and_truncate_the_answer() {
    let sim = TestSim::start(|_| {}).await;
    let mut dev = sim.tls_device("").await;
    let form = || Bytes::from_static(b"grant_type=refresh_token&refresh_token=Atzr%7Cdrip");
    add(&sim, json!({"when": {"path": "/auth/o2/token"}, "then": {"action": "dribble", "chunk_bytes": 10, "every_ms": 20}, "times": 1})).await;
    let started = tokio::time::Instant::now();
    let a = dev
        .call(
            Method::POST,
            "/auth/o2/token",
            Some("application/x-www-form-urlencoded"),
            form(),
        )
        .await
        .unwrap();
    assert_eq!(a.status, 200);
    assert_eq!(a.json()["token_type"], "bearer", "the whole body arrives, slowly");
    let pieces = a.body.len().div_ceil(10) as u32;
    assert!(
        started.elapsed() >= Duration::from_millis(20) * (pieces - 1),
        "{pieces} pieces, 20 ms apart"
    );
    add(
        &sim,
        json!({"when": {"path": "/auth/o2/token"}, "then": {"action": "truncate", "bytes": 15}, "times": 1}),
    )
    .await;
    let a = dev
        .call(
            Method::POST,
            "/auth/o2/token",
            Some("application/x-www-form-urlencoded"),
            form(),
        )
        .await
        .unwrap();
    assert_eq!(a.body.len(), 15);
    assert!(
        serde_json::from_slice::<Value>(&a.body).is_err(),
        "a truncated body is not JSON"
    );
    sim.stop().await;
}

#[tokio::test]
async fn withheld_window_updates_stall_an_upload() {
    let sim = TestSim::start(|_| {}).await;
    let (mut dev, mut dc) = sim.connected("win").await;
    add(
        &sim,
        json!({"when": {"path": "/v20160207/events"}, "then": {"action": "withhold_window_update"}, "times": 1}),
    )
    .await;
    let (resp, mut upload) = dev
        .open_event(&event("SpeechRecognizer", "Recognize", json!({})))
        .await
        .unwrap();
    // More than the 65,535-byte initial window: the client runs out of send capacity.
    upload.reserve_capacity(200_000);
    let granted = tokio::time::timeout(Duration::from_millis(500), async {
        let mut total = 0;
        while total < 200_000 {
            match std::future::poll_fn(|cx| upload.poll_capacity(cx)).await {
                Some(Ok(n)) => {
                    upload.send_data(Bytes::from(vec![0u8; n]), false).unwrap();
                    total += n;
                }
                _ => break,
            }
        }
        total
    })
    .await;
    assert!(
        granted.is_err(),
        "the upload stalls when the window is never replenished"
    );
    drop((resp, upload));
    // Other streams still work.
    sim.push_system("win", "ResetUserInactivity").await;
    assert!(dc.next_part(DEADLINE).await.unwrap().is_some());
    sim.stop().await;
}

#[tokio::test]
async fn downchannel_framing_faults_break_the_sdk_boundary_rules() {
    let sim = TestSim::start(|_| {}).await;
    add(&sim, json!({"when": {"path": "/v20160207/directives", "device": "q"}, "then": {"action": "directive_framing", "style": "quoted_boundary"}})).await;
    add(&sim, json!({"when": {"path": "/v20160207/directives", "device": "l"}, "then": {"action": "directive_framing", "style": "boundary_last"}})).await;
    let (_d1, dc) = sim.connected("q").await;
    let ct = dc.content_type();
    assert!(ct.contains("boundary=\""), "{ct}");
    let (_d2, dc) = sim.connected("l").await;
    assert!(dc.content_type().trim_end().ends_with(&format!(
        "boundary={}",
        avs_sim_tests::related::sdk_boundary(dc.content_type()).unwrap()
    )));
    sim.stop().await;
}

#[tokio::test]
async fn listeners_can_serve_broken_certificates() {
    let sim = TestSim::start(|c| {
        for (name, kind) in [
            ("BAD-HOST", avs_sim::tls::CertKind::WrongHost),
            ("OLD", avs_sim::tls::CertKind::Expired),
        ] {
            c.regions.push(avs_sim::config::Region {
                name: name.into(),
                listen: "127.0.0.1:0".parse().unwrap(),
                certificate: kind,
            });
        }
    })
    .await;
    let (wrong, expired) = (sim.handle.addrs.regions[0].1, sim.handle.addrs.regions[1].1);
    let err = avs_sim_tests::device::Device::tls(wrong, &sim.handle.ca, "x")
        .await
        .err()
        .expect("wrong host name is refused");
    assert!(
        format!("{err:#}").contains("not valid for name \"localhost\""),
        "{err:#}"
    );
    let err = avs_sim_tests::device::Device::tls(expired, &sim.handle.ca, "x")
        .await
        .err()
        .expect("an expired certificate is refused");
    assert!(format!("{err:#}").to_lowercase().contains("expired"), "{err:#}");
    // The main listener still serves the valid one.
    assert!(
        avs_sim_tests::device::Device::tls(sim.handle.addrs.avs, &sim.handle.ca, "x")
            .await
            .is_ok()
    );
    sim.stop().await;
}

#[tokio::test]
async fn frame_level_faults_pings_settings_and_a_chosen_goaway() {
    let sim = TestSim::start(|_| {}).await;
    let (mut dev, _dc) = sim.connected("fr").await;
    dev.ping_frame().await.unwrap();
    assert_eq!(now(&sim, "fr", json!({"action": "stop_ping_acks"})).await, 200);
    assert!(
        tokio::time::timeout(Duration::from_millis(300), dev.ping_frame())
            .await
            .is_err(),
        "PING goes unanswered"
    );
    assert_eq!(dev.ping("/ping").await.unwrap(), 204, "requests still work");

    let (mut dev, _dc) = sim.connected("fs").await;
    assert!(dev.max_streams() >= 10);
    assert_eq!(
        now(&sim, "fs", json!({"action": "max_concurrent_streams", "value": 1})).await,
        200
    );
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while dev.max_streams() != 1 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the client never saw the new SETTINGS"
        );
        assert_eq!(dev.ping("/ping").await.unwrap(), 204, "the connection stays healthy");
    }

    // A raw GOAWAY with a chosen last-stream-id, as nghttp sees it.
    let mut nghttp = tokio::process::Command::new("nghttp")
        .args([
            "-v",
            "-H",
            "authorization: Bearer ng2",
            &format!("http://{}/v20160207/directives", sim.handle.addrs.plain),
        ])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    sim.await_entry(Some("ng2"), |e| e["summary"] == "200 downchannel open")
        .await;
    let goaway = json!({"action": "goaway", "graceful": false, "code": "ENHANCE_YOUR_CALM", "last_stream_id": 1});
    assert_eq!(now(&sim, "ng2", goaway).await, 200);
    let mut out = String::new();
    use tokio::io::AsyncReadExt;
    tokio::time::timeout(DEADLINE, nghttp.stdout.take().unwrap().read_to_string(&mut out))
        .await
        .unwrap()
        .unwrap();
    assert!(out.contains("recv GOAWAY frame"), "{out}");
    assert!(
        out.contains("last_stream_id=1, error_code=ENHANCE_YOUR_CALM(0x0b)"),
        "{out}"
    );
    sim.stop().await;
}

#[tokio::test]
async fn attachments_with_the_directive_or_in_another_stream() {
    let sim = TestSim::start(|_| {}).await;
    let (mut dev, mut dc) = sim.connected("att").await;
    let speak = |elsewhere: bool| {
        json!({
            "directive": {"header": {"namespace": "SpeechSynthesizer", "name": "Speak", "dialogRequestId": "never-sent"},
                          "payload": {"url": "cid:speech-1", "format": "AUDIO_MPEG"}},
            "attachment": {"cid": "speech-1", "text": "ID3-not-really-mp3"},
            "attachment_elsewhere": elsewhere,
        })
    };
    // As AVS does it: the attachment part follows the directive in the same stream.
    assert_eq!(sim.push("att", speak(false)).await.0, 202);
    let directive = dc.next_part(DEADLINE).await.unwrap().unwrap();
    assert_eq!(directive.json()["directive"]["header"]["dialogRequestId"], "never-sent");
    let part = dc.next_part(DEADLINE).await.unwrap().unwrap();
    assert_eq!(part.header("Content-ID"), Some("<speech-1>"));
    assert_eq!(part.header("Content-Type"), Some("application/octet-stream"));
    assert_eq!(part.body, b"ID3-not-really-mp3");

    // The fault: the attachment arrives on the next event's response instead.
    assert_eq!(sim.push("att", speak(true)).await.0, 202);
    assert!(dc.next_part(DEADLINE).await.unwrap().is_some());
    sim.push_system("att", "ResetUserInactivity").await;
    let next = dc.next_part(DEADLINE).await.unwrap().unwrap();
    assert_eq!(
        next.json()["directive"]["header"]["name"],
        "ResetUserInactivity",
        "no attachment on the downchannel"
    );
    let a = dev
        .event(
            &event("System", "UserInactivityReport", json!({"inactiveTimeInSeconds": 1})),
            None,
        )
        .await
        .unwrap();
    assert_eq!(a.status, 200);
    let parts = a.parts();
    assert_eq!(parts.len(), 1);
    assert_eq!(parts[0].header("Content-ID"), Some("<speech-1>"));
    // A duplicate messageId is just a directive sent twice as given.
    let dup = json!({"directive": {"header": {"namespace": "Speaker", "name": "SetMute", "messageId": "same"}, "payload": {"mute": true}}});
    sim.push("att", dup.clone()).await;
    sim.push("att", dup).await;
    let (one, two) = (
        dc.next_part(DEADLINE).await.unwrap().unwrap().json(),
        dc.next_part(DEADLINE).await.unwrap().unwrap().json(),
    );
    assert_eq!(
        one["directive"]["header"]["messageId"],
        two["directive"]["header"]["messageId"]
    );
    sim.stop().await;
}
