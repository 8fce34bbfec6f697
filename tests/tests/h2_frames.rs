//! The HTTP/2 frame layer under traffic a client library would rarely
//! produce but the protocol allows, and the frame-level faults seen frame
//! by frame: a raw client (`avs_sim_tests::raw`) writes and reads the bytes.

use avs_sim_tests::raw::{self, Frame, RawH2};
use avs_sim_tests::{DEADLINE, TestSim, event};
use serde_json::{Value, json};

/// 1,000 WINDOW_UPDATE frames (increment 1, stream 0), then `GET /ping`, all in one write.
fn window_update_burst_then_ping(token: &str) -> Vec<u8> {
    let mut out = RawH2::opening();
    for _ in 0..1000 {
        out.extend(raw::frame(raw::WINDOW_UPDATE, 0, 0, &1u32.to_be_bytes()));
    }
    out.extend(raw::request(1, "GET", "/ping", token, true, &[]));
    out
}

async fn status_of(conn: &mut RawH2, stream: u32) -> Option<u16> {
    let f = conn
        .until(DEADLINE, |f| {
            f.stream == stream && (f.kind == raw::HEADERS || f.kind == raw::RST_STREAM)
        })
        .await
        .expect("an answer");
    f.status()
}

#[tokio::test]
async fn a_burst_of_window_updates_then_ping_on_h2c_and_tls() {
    let sim = TestSim::start(|_| {}).await;
    let mut h2c = RawH2::h2c(sim.handle.addrs.plain).await.unwrap();
    h2c.send(&window_update_burst_then_ping("burst-a")).await.unwrap();
    assert_eq!(status_of(&mut h2c, 1).await, Some(204));
    // Same connection, another request: it is alive.
    h2c.send(&raw::request(3, "GET", "/ping", "burst-a", true, &[]))
        .await
        .unwrap();
    assert_eq!(status_of(&mut h2c, 3).await, Some(204));

    let mut tls = RawH2::tls(sim.handle.addrs.avs, &sim.handle.ca).await.unwrap();
    tls.send(&window_update_burst_then_ping("burst-b")).await.unwrap();
    assert_eq!(status_of(&mut tls, 1).await, Some(204));
    tls.send(&raw::request(3, "GET", "/ping", "burst-b", true, &[]))
        .await
        .unwrap();
    assert_eq!(status_of(&mut tls, 3).await, Some(204));
    drop((h2c, tls));
    sim.stop().await;
}

#[tokio::test]
async fn an_event_uploaded_in_1000_byte_data_frames() {
    let sim = TestSim::start(|_| {}).await;
    let mut ev = event("System", "SynchronizeState", json!({}));
    ev["context"] =
        json!([{"header": {"namespace": "Padding", "name": "State"}, "payload": {"pad": "x".repeat(30_000)}}]);
    let body = format!(
        "--B0undary\r\nContent-Disposition: form-data; name=\"metadata\"\r\nContent-Type: application/json\r\n\r\n{ev}\r\n--B0undary--\r\n"
    );
    let mut out = RawH2::opening();
    let ct = [("content-type", "multipart/form-data; boundary=B0undary")];
    out.extend(raw::request(1, "POST", "/v20160207/events", "upload", false, &ct));
    let chunks: Vec<&[u8]> = body.as_bytes().chunks(1000).collect();
    for (i, chunk) in chunks.iter().enumerate() {
        let last = i + 1 == chunks.len();
        out.extend(raw::frame(raw::DATA, if last { raw::END_STREAM } else { 0 }, 1, chunk));
    }
    let mut conn = RawH2::h2c(sim.handle.addrs.plain).await.unwrap();
    conn.send(&out).await.unwrap();
    assert_eq!(status_of(&mut conn, 1).await, Some(204));
    drop(conn);
    sim.stop().await;
}

async fn now(sim: &TestSim, device: &str, action: Value) {
    assert_eq!(sim.fault_now(device, action.clone()).await, 200, "{action}");
}

/// A raw h2c connection of `token` with its downchannel (stream 1) open.
async fn with_downchannel(sim: &TestSim, token: &str) -> RawH2 {
    let mut conn = RawH2::h2c(sim.handle.addrs.plain).await.unwrap();
    let mut out = RawH2::opening();
    out.extend(raw::request(1, "GET", "/v20160207/directives", token, true, &[]));
    conn.send(&out).await.unwrap();
    assert_eq!(status_of(&mut conn, 1).await, Some(200), "downchannel of {token}");
    conn
}

#[tokio::test]
async fn a_lowered_stream_limit_is_enforced_once_acknowledged() {
    let sim = TestSim::start(|_| {}).await;
    let mut conn = with_downchannel(&sim, "limited").await;
    now(&sim, "limited", json!({"action": "max_concurrent_streams", "value": 1})).await;
    // `next` acknowledges the SETTINGS as it arrives, before anything below is sent.
    let settings = conn
        .until(DEADLINE, |f| {
            f.kind == raw::SETTINGS && f.flags & raw::ACK == 0 && f.setting(3).is_some()
        })
        .await
        .unwrap();
    assert_eq!(settings.setting(3), Some(1));
    conn.send(&raw::request(3, "GET", "/ping", "limited", true, &[]))
        .await
        .unwrap();
    let refused = conn
        .until(DEADLINE, |f| {
            f.stream == 3 && (f.kind == raw::RST_STREAM || f.kind == raw::HEADERS)
        })
        .await
        .unwrap();
    assert_eq!(
        refused.kind,
        raw::RST_STREAM,
        "the downchannel is the one allowed stream: {refused:?}"
    );
    assert_eq!(refused.word(0), 0x7, "REFUSED_STREAM (RFC 9113 §5.1.2)");
    sim.await_entry(Some("limited"), |e| {
        e["summary"].as_str().unwrap_or("").contains("REFUSED_STREAM")
    })
    .await;
    // Raised to 2: the downchannel and one more stream fit.
    now(&sim, "limited", json!({"action": "max_concurrent_streams", "value": 2})).await;
    conn.until(DEADLINE, |f| f.kind == raw::SETTINGS && f.setting(3) == Some(2))
        .await
        .unwrap();
    conn.send(&raw::request(5, "GET", "/ping", "limited", true, &[]))
        .await
        .unwrap();
    assert_eq!(status_of(&mut conn, 5).await, Some(204));
    // Above the configured limit (10), which h2 enforces itself: capped.
    now(
        &sim,
        "limited",
        json!({"action": "max_concurrent_streams", "value": 50}),
    )
    .await;
    let capped = conn
        .until(DEADLINE, |f| {
            f.kind == raw::SETTINGS && f.setting(3).is_some_and(|v| v != 2)
        })
        .await
        .unwrap();
    assert_eq!(capped.setting(3), Some(10));
    drop(conn);
    sim.stop().await;
}

/// Every frame until the server ends the connection, which must be an
/// orderly end (FIN), not a reset.
async fn frames_to_the_end(conn: &mut RawH2) -> Vec<Frame> {
    let mut frames = Vec::new();
    loop {
        match conn.next(DEADLINE).await {
            Ok(Some(f)) => frames.push(f),
            Ok(None) => return frames,
            Err(e) => panic!("the connection must end in order, after {frames:?}: {e:#}"),
        }
    }
}

#[tokio::test]
async fn an_abrupt_goaway_is_the_same_frames_on_every_run() {
    let sim = TestSim::start(|_| {}).await;
    for run in 0..20 {
        let token = format!("abrupt-{run}");
        let rule = json!({"when": {"device": token, "path": "/ping"},
                          "then": {"action": "goaway", "graceful": false, "code": "ENHANCE_YOUR_CALM"}});
        sim.add_fault(rule).await;
        let mut conn = with_downchannel(&sim, &token).await;
        conn.send(&raw::request(3, "GET", "/ping", &token, true, &[]))
            .await
            .unwrap();
        let after: Vec<Frame> = frames_to_the_end(&mut conn)
            .await
            .into_iter()
            // The downchannel's opening boundary may come before or after the
            // /ping request was sent; it is not part of the fault.
            .filter(|f| !(f.kind == raw::DATA && f.stream == 1 && f.flags & raw::END_STREAM == 0))
            .filter(|f| f.kind != raw::SETTINGS && f.kind != raw::WINDOW_UPDATE)
            .collect();
        assert_eq!(after.len(), 1, "run {run}: only the GOAWAY, got {after:?}");
        let goaway = &after[0];
        assert_eq!(goaway.kind, raw::GOAWAY, "run {run}: {after:?}");
        assert_eq!(goaway.word(0) & 0x7fff_ffff, 3, "last-stream-id: the /ping stream");
        assert_eq!(goaway.word(4), 0xb, "ENHANCE_YOUR_CALM");
    }
    sim.stop().await;
}

#[tokio::test]
async fn a_raw_goaway_is_followed_by_an_orderly_close() {
    let sim = TestSim::start(|_| {}).await;
    for run in 0..10 {
        let token = format!("chosen-{run}");
        let mut conn = with_downchannel(&sim, &token).await;
        // Keep the server's receive buffer busy while the GOAWAY goes out: a
        // close with unread bytes would reset the connection.
        let mut pings = Vec::new();
        for i in 0..200u64 {
            pings.extend(raw::frame(raw::PING, 0, 0, &i.to_be_bytes()));
        }
        conn.send(&pings).await.unwrap();
        now(
            &sim,
            &token,
            json!({"action": "goaway", "code": "ENHANCE_YOUR_CALM", "last_stream_id": 1}),
        )
        .await;
        conn.send(&pings).await.unwrap();
        let frames = frames_to_the_end(&mut conn).await;
        let goaway = frames
            .iter()
            .find(|f| f.kind == raw::GOAWAY)
            .expect("the GOAWAY arrived");
        assert_eq!(goaway.word(0) & 0x7fff_ffff, 1);
        assert_eq!(goaway.word(4), 0xb);
        assert_eq!(frames.last(), Some(goaway), "nothing after the GOAWAY (run {run})");
        drop(conn);
        sim.await_entry(Some(&token), |e| e["kind"] == "connection_close").await;
    }
    sim.stop().await;
}
