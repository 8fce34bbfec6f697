//! Bounded state: what a slow, silent or forgetful client may cost the
//! simulator. A downchannel nobody reads, devices that come and go, tokens
//! that expire, a journal of big entries, connections that end badly.

use avs_sim_tests::binary::Served;
use avs_sim_tests::{DEADLINE, TestSim};
use bytes::Bytes;
use serde_json::{Value, json};
use std::net::SocketAddr;
use tokio::net::TcpStream;

/// A raw h2c client whose stream window is 1 KiB (the connection window
/// stays at the protocol's 65,535): it opens the downchannel as `token` and
/// never reads it. Returns the request handle (for other streams), the
/// unread body (kept alive), and the connection task.
async fn silent_downchannel(
    plain: SocketAddr,
    token: &str,
) -> (
    h2::client::SendRequest<Bytes>,
    h2::RecvStream,
    tokio::task::JoinHandle<()>,
) {
    let tcp = TcpStream::connect(plain).await.unwrap();
    let (send, conn) = h2::client::Builder::new()
        .initial_window_size(1024)
        .initial_connection_window_size(65_535)
        .handshake::<_, Bytes>(tcp)
        .await
        .unwrap();
    let driver = tokio::spawn(async move {
        let _ = conn.await;
    });
    let mut send = send.ready().await.unwrap();
    let req = http::Request::get("http://localhost/v20160207/directives")
        .header("authorization", format!("Bearer {token}"))
        .body(())
        .unwrap();
    let (resp, _) = send.send_request(req, true).unwrap();
    let resp = tokio::time::timeout(DEADLINE, resp).await.unwrap().unwrap();
    assert_eq!(resp.status(), 200);
    (send, resp.into_body(), driver)
}

/// A directive with one `size`-byte attachment, as the control API takes it.
fn big_directive(size: usize) -> Value {
    json!({
        "namespace": "SpeechSynthesizer",
        "name": "Speak",
        "payload": {"url": "cid:blob"},
        "attachment": {"cid": "blob", "text": "~".repeat(size)},
    })
}

/// Resident memory of a process, from /proc.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Before: every push got 202 and h2 buffered every byte (+132 MiB for
/// this traffic, never returned). Now h2 gets only what the 1 KiB window
/// allows, the bounded queue fills, the control API answers 503 and
/// journals why, and memory stays put.
#[tokio::test]
async fn a_downchannel_nobody_reads_costs_a_bounded_queue_not_every_push() {
    // No stall deadline here: this test is about the queue bound alone.
    let served = Served::start(&[], &[("AVS_SIM_AVS_DOWNCHANNEL_STALL_TIMEOUT", "0s")]).await;
    let pid = served.child.id().unwrap();
    let plain: SocketAddr = served.plain.trim_start_matches("http://").parse().unwrap();
    let (_send, _unread, _driver) = silent_downchannel(plain, "silent").await;
    let http = reqwest::Client::new();
    let url = format!("{}/api/devices/silent/directives", served.control);
    let body = serde_json::to_vec(&big_directive(64 * 1024)).unwrap();
    let before = rss_kib(pid);
    let (mut accepted, mut refused) = (0, 0);
    for _ in 0..1000 {
        let resp = http
            .post(&url)
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        match resp.status().as_u16() {
            202 => accepted += 1,
            503 => refused += 1,
            other => panic!("push answered {other}: {}", resp.text().await.unwrap_or_default()),
        }
    }
    let grown = rss_kib(pid).saturating_sub(before);
    eprintln!("{accepted} accepted, {refused} refused, RSS {before} KiB + {grown} KiB");
    // The queue (32 by default) plus the directive being written.
    assert!(accepted <= 34, "{accepted} pushes accepted");
    assert!(refused >= 966, "{refused} pushes refused");
    assert!(grown < 24 * 1024, "RSS grew by {grown} KiB");
    let journal: Value = http
        .get(format!(
            "{}/api/journal?device=silent&face=control&limit=100000",
            served.control
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let errors = journal["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "error" && e["summary"].as_str().unwrap().contains("queued already"))
        .count();
    assert_eq!(errors, refused, "every refusal is journaled");
}

/// A device that leaves its downchannel full past
/// `avs.downchannel_stall_timeout` loses it (RST_STREAM CANCEL, journaled
/// with the reason); its connection and other streams go on. Every push
/// that was accepted is journaled as not delivered: the queued ones, and
/// the one cut off part way, with how much of it went out.
///
/// The stall clock starts at the first push; the two after it usually land
/// in the queue before the deadline, but a busy machine may be slower than
/// that, so the test counts what was accepted instead of assuming it (a
/// later push is refused with 409 once the downchannel is gone).
#[tokio::test]
async fn a_stalled_downchannel_is_reset_after_the_deadline_and_the_connection_lives() {
    let sim = TestSim::start(|c| c.avs.downchannel_stall_timeout = std::time::Duration::from_secs(1)).await;
    let (mut send, _unread, _driver) = silent_downchannel(sim.handle.addrs.plain, "stuck").await;
    // The first directive fills the window and waits; two more wait in the queue.
    let mut accepted = 0;
    for i in 0..3 {
        let (status, body) = sim.push("stuck", big_directive(8 * 1024)).await;
        match status {
            202 => accepted += 1,
            409 if i > 0 => break, // the deadline passed already
            _ => panic!("push {i}: {status} {body}"),
        }
    }
    let reset = sim
        .await_entry(Some("stuck"), |e| {
            e["kind"] == "reset" && e["summary"].as_str().unwrap_or("").contains("stalled")
        })
        .await;
    assert!(
        reset["summary"]
            .as_str()
            .unwrap()
            .contains("avs.downchannel_stall_timeout"),
        "{reset}"
    );
    let closed = sim
        .await_entry(Some("stuck"), |e| e["kind"] == "connection_close")
        .await;
    assert!(
        closed["summary"]
            .as_str()
            .unwrap()
            .starts_with("downchannel closed: stalled"),
        "{closed}"
    );
    let (_, device) = sim.get("/api/devices/stuck").await;
    assert_eq!(device["connected"], false);
    let lost = undelivered(&sim, "stuck").await;
    assert_eq!(
        lost.len(),
        accepted,
        "every accepted push that was never written in full is journaled: {lost:?}"
    );
    // The first was cut off part way: the window took its first bytes.
    let cut = &lost[0];
    let (written, bytes) = (
        cut["body"]["written"].as_u64().unwrap(),
        cut["body"]["bytes"].as_u64().unwrap(),
    );
    assert!(written > 0 && written < 1024 && bytes > 8 * 1024, "{cut}");
    assert!(cut["summary"].as_str().unwrap().contains("stalled"), "{cut}");
    let (status, _) = sim.push("stuck", big_directive(10)).await;
    assert_eq!(status, 409, "no downchannel to push to any more");
    // The connection itself is untouched: another stream on it works.
    let ping = http::Request::get("http://localhost/ping")
        .header("authorization", "Bearer stuck")
        .body(())
        .unwrap();
    let (resp, _) = send.send_request(ping, true).unwrap();
    let resp = tokio::time::timeout(DEADLINE, resp).await.unwrap().unwrap();
    assert_eq!(resp.status(), 204);
    sim.stop().await;
}

/// `POST /api/devices/{id}/faults`: apply `action` now; the status.
async fn fault_now(sim: &TestSim, device: &str, action: Value) -> (u16, Value) {
    let resp = sim
        .http
        .post(sim.control(&format!("/api/devices/{device}/faults")))
        .json(&action)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// A simulator without a stall deadline (so only a control command can end
/// a stuck downchannel) and a queue of 2, with `token`'s silent downchannel
/// open and an 8 KiB directive waiting for window in it.
async fn stuck_downchannel(
    token: &str,
) -> (
    TestSim,
    h2::client::SendRequest<Bytes>,
    h2::RecvStream,
    tokio::task::JoinHandle<()>,
) {
    let sim = TestSim::start(|c| {
        c.avs.downchannel_stall_timeout = std::time::Duration::ZERO;
        c.avs.directive_queue = 2;
    })
    .await;
    let (send, body, driver) = silent_downchannel(sim.handle.addrs.plain, token).await;
    let (status, resp) = sim.push(token, big_directive(8 * 1024)).await;
    assert_eq!(status, 202, "{resp}");
    // Taken from the queue: its first KiB went out, the rest waits for window.
    sim.await_entry(Some(token), |e| e["kind"] == "directive").await;
    (sim, send, body, driver)
}

/// Read what arrived (without granting window) until the stream ends; the
/// reset's reason, or `None` for a clean end.
async fn reset_of(body: &mut h2::RecvStream) -> Option<h2::Reason> {
    loop {
        match tokio::time::timeout(DEADLINE, body.data())
            .await
            .expect("the downchannel ended")
        {
            Some(Ok(_)) => {}
            Some(Err(e)) => return Some(e.reason().expect("a stream reset")),
            None => return None,
        }
    }
}

/// Read the rest of a downchannel, granting window, to its end; the bytes.
async fn read_to_end(body: &mut h2::RecvStream) -> Vec<u8> {
    let mut all = Vec::new();
    while let Some(chunk) = tokio::time::timeout(DEADLINE, body.data())
        .await
        .expect("the downchannel ended")
    {
        let chunk = chunk.expect("a clean end, not a reset");
        body.flow_control().release_capacity(chunk.len()).unwrap();
        all.extend_from_slice(&chunk);
    }
    all
}

/// The downchannel journal entries of `device` that say a directive was not delivered.
async fn undelivered(sim: &TestSim, device: &str) -> Vec<Value> {
    let (_, journal) = sim.get(&format!("/api/journal?device={device}&face=avs")).await;
    journal["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "error" && e["summary"].as_str().unwrap().contains("not delivered"))
        .cloned()
        .collect()
}

/// Before: the downchannel task read its command queue only while no
/// directive waited for window, so a reset fault on a device that stopped
/// reading waited for the stall deadline (here: for ever), and with the
/// queue full it was even refused. Now the reset goes beside the queue and
/// the device sees RST_STREAM at once; every directive that did not arrive
/// is journaled, the one cut off part way with its byte counts.
#[tokio::test]
async fn a_reset_fault_reaches_a_downchannel_stuck_on_a_full_window() {
    let (sim, _send, mut body, _driver) = stuck_downchannel("wedged").await;
    for _ in 0..2 {
        let (status, resp) = sim.push("wedged", big_directive(10)).await;
        assert_eq!(status, 202, "{resp}");
    }
    let (status, _) = sim.push("wedged", big_directive(10)).await;
    assert_eq!(status, 503, "the queue of 2 is full");
    let (status, resp) = fault_now(&sim, "wedged", json!({"action": "reset", "code": "INTERNAL_ERROR"})).await;
    assert_eq!(status, 200, "{resp}");
    assert_eq!(reset_of(&mut body).await, Some(h2::Reason::INTERNAL_ERROR));
    let closed = sim
        .await_entry(Some("wedged"), |e| e["kind"] == "connection_close")
        .await;
    assert_eq!(closed["summary"], "downchannel closed: reset with INTERNAL_ERROR");
    let lost = undelivered(&sim, "wedged").await;
    assert_eq!(lost.len(), 3, "{lost:?}");
    let cut = &lost[0];
    let (written, bytes) = (
        cut["body"]["written"].as_u64().unwrap(),
        cut["body"]["bytes"].as_u64().unwrap(),
    );
    assert!(written > 0 && written < 1024 && bytes > 8 * 1024, "{cut}");
    assert!(cut["summary"].as_str().unwrap().contains("bytes were written"), "{cut}");
    sim.stop().await;
}

/// `end_downchannel` on a device whose directive waits for window ends the
/// downchannel at once (the directive under way is finished, then
/// END_STREAM): the device is disconnected for pushes, and reading on
/// shows the whole directive and a clean end.
#[tokio::test]
async fn end_downchannel_reaches_a_downchannel_stuck_on_a_full_window() {
    let (sim, _send, mut body, _driver) = stuck_downchannel("ending").await;
    let (status, resp) = fault_now(&sim, "ending", json!({"action": "end_downchannel"})).await;
    assert_eq!(status, 200, "{resp}");
    let closed = sim
        .await_entry(Some("ending"), |e| e["kind"] == "connection_close")
        .await;
    assert_eq!(closed["summary"], "downchannel closed: ended by a fault");
    let (status, _) = sim.push("ending", big_directive(10)).await;
    assert_eq!(status, 409, "no downchannel any more");
    let all = read_to_end(&mut body).await;
    assert_eq!(
        all.iter().filter(|b| **b == b'~').count(),
        8 * 1024,
        "the directive arrives whole"
    );
    assert!(undelivered(&sim, "ending").await.is_empty());
    sim.stop().await;
}

/// A second downchannel on the same connection takes over from one whose
/// directive waits for window: the old stream ends at once and the new one
/// is the device's downchannel.
#[tokio::test]
async fn a_new_downchannel_on_the_same_connection_replaces_a_stuck_one() {
    let (sim, send, mut old, _driver) = stuck_downchannel("twice").await;
    let mut send = send.ready().await.unwrap();
    let req = http::Request::get("http://localhost/v20160207/directives")
        .header("authorization", "Bearer twice")
        .body(())
        .unwrap();
    let (resp, _) = send.send_request(req, true).unwrap();
    let resp = tokio::time::timeout(DEADLINE, resp).await.unwrap().unwrap();
    assert_eq!(resp.status(), 200);
    let mut new = resp.into_body();
    let closed = sim
        .await_entry(Some("twice"), |e| e["kind"] == "connection_close")
        .await;
    assert_eq!(closed["summary"], "downchannel closed: replaced by a newer downchannel");
    let all = read_to_end(&mut old).await;
    assert_eq!(
        all.iter().filter(|b| **b == b'~').count(),
        8 * 1024,
        "the directive arrives whole"
    );
    // The newer downchannel is the device's now.
    let (_, device) = sim.get("/api/devices/twice").await;
    assert_eq!(device["connected"], true, "{device}");
    sim.push_system("twice", "ReportSoftwareInfo").await;
    let mut got = Vec::new();
    while !String::from_utf8_lossy(&got).contains("ReportSoftwareInfo") {
        let chunk = tokio::time::timeout(DEADLINE, new.data())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        new.flow_control().release_capacity(chunk.len()).unwrap();
        got.extend_from_slice(&chunk);
    }
    sim.stop().await;
}

/// Control commands skip the queue only for a device that does not read:
/// one that reads gets the directives pushed before `end_downchannel`
/// first, every time, then the clean end.
#[tokio::test]
async fn end_downchannel_comes_after_the_directives_pushed_before_it() {
    let sim = TestSim::start(|_| {}).await;
    let (_dev, mut dc) = sim.connected("orderly").await;
    for i in 0..5 {
        let (status, resp) = sim
            .push(
                "orderly",
                json!({"namespace": "Test", "name": format!("Before{i}"), "payload": {}}),
            )
            .await;
        assert_eq!(status, 202, "{resp}");
    }
    let (status, resp) = fault_now(&sim, "orderly", json!({"action": "end_downchannel"})).await;
    assert_eq!(status, 200, "{resp}");
    for i in 0..5 {
        let part = dc
            .next_part(DEADLINE)
            .await
            .unwrap()
            .expect("a directive before the end");
        let doc: Value = serde_json::from_slice(&part.body).unwrap();
        assert_eq!(doc["directive"]["header"]["name"], format!("Before{i}"));
    }
    assert!(dc.next_part(DEADLINE).await.unwrap().is_none(), "then END_STREAM");
    assert!(undelivered(&sim, "orderly").await.is_empty());
    sim.stop().await;
}

/// A reader that keeps up gets every byte of big directives, in order, even
/// though each one is written in window-sized pieces.
#[tokio::test]
async fn a_slow_reader_gets_every_directive_whole() {
    let sim = TestSim::start(|_| {}).await;
    let (_send, mut body, _driver) = silent_downchannel(sim.handle.addrs.plain, "slow").await;
    for _ in 0..3 {
        let (status, resp) = sim.push("slow", big_directive(20_000)).await;
        assert_eq!(status, 202, "{resp}");
    }
    let mut received = Vec::new();
    while received.iter().filter(|b| **b == b'~').count() < 60_000 {
        let chunk = tokio::time::timeout(DEADLINE, body.data())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        body.flow_control().release_capacity(chunk.len()).unwrap();
        received.extend_from_slice(&chunk);
    }
    let runs: Vec<usize> = received
        .split(|b| *b != b'~')
        .map(<[u8]>::len)
        .filter(|n| *n > 0)
        .collect();
    assert_eq!(runs, vec![20_000; 3], "each attachment arrives whole and in order");
    let text = String::from_utf8_lossy(&received);
    assert_eq!(text.matches("SpeechSynthesizer").count(), 3);
    sim.stop().await;
}

/// The close of the connection from `peer`, once journaled.
async fn close_of(sim: &TestSim, peer: SocketAddr) -> String {
    let peer = peer.to_string();
    let e = sim
        .await_entry(None, |e| {
            e["kind"] == "connection_close" && e["body"]["peer"] == peer.as_str()
        })
        .await;
    e["summary"].as_str().unwrap().to_string()
}

/// Every connection's end is journaled with why it ended, errors included.
#[tokio::test]
async fn connections_that_end_in_errors_have_their_close_journaled_with_the_reason() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let sim = TestSim::start(|_| {}).await;
    let plain = sim.handle.addrs.plain;

    // HTTP/1.1 garbage: hyper refuses it.
    let mut tcp = TcpStream::connect(plain).await.unwrap();
    let me = tcp.local_addr().unwrap();
    tcp.write_all(b"GARBAGE \x01\x02 nonsense\r\n\r\n").await.unwrap();
    let mut sink = Vec::new();
    let _ = tokio::time::timeout(DEADLINE, tcp.read_to_end(&mut sink)).await;
    let why = close_of(&sim, me).await;
    assert!(why.starts_with("connection closed: connection error:"), "{why}");

    // h2c: the preface, then bytes that are no frame the protocol allows.
    let mut tcp = TcpStream::connect(plain).await.unwrap();
    let me = tcp.local_addr().unwrap();
    tcp.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").await.unwrap();
    tcp.write_all(&[0xff; 64]).await.unwrap();
    let mut sink = Vec::new();
    let _ = tokio::time::timeout(DEADLINE, tcp.read_to_end(&mut sink)).await;
    let why = close_of(&sim, me).await;
    assert!(why.contains("failed") || why.contains("error"), "{why}");

    // h2c with a downchannel open, then a TCP reset from the client.
    let tcp = TcpStream::connect(plain).await.unwrap();
    let me = tcp.local_addr().unwrap();
    tcp.set_zero_linger().unwrap(); // closing the socket sends RST
    let (send, conn) = h2::client::handshake(tcp).await.unwrap();
    let driver = tokio::spawn(conn);
    let mut send = send.ready().await.unwrap();
    let req = http::Request::get("http://localhost/v20160207/directives")
        .header("authorization", "Bearer resetter")
        .body(())
        .unwrap();
    let (resp, _) = send.send_request(req, true).unwrap();
    let body = resp.await.unwrap().into_body();
    driver.abort();
    let _ = driver.await; // drops the h2 connection and with it the socket
    drop((send, body));
    let why = close_of(&sim, me).await;
    assert!(why.starts_with("connection closed: connection error:"), "{why}");

    // Connections that never reach HTTP: garbage instead of a TLS
    // ClientHello, and a client that closes before its first request.
    let mut tcp = TcpStream::connect(sim.handle.addrs.avs).await.unwrap();
    let me = tcp.local_addr().unwrap();
    tcp.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
    let mut sink = Vec::new();
    let _ = tokio::time::timeout(DEADLINE, tcp.read_to_end(&mut sink)).await;
    let why = close_of(&sim, me).await;
    assert!(why.contains("closed before HTTP: TLS handshake failed"), "{why}");
    let tcp = TcpStream::connect(plain).await.unwrap();
    let me = tcp.local_addr().unwrap();
    drop(tcp);
    let why = close_of(&sim, me).await;
    assert!(why.contains("closed before sending a request"), "{why}");
    sim.stop().await;
}

/// A form POST to the plain listener (LWA over HTTP/1.1).
async fn form(sim: &TestSim, path: &str, body: &str) -> (u16, Value) {
    let resp = sim
        .http
        .post(format!("http://{}{path}", sim.handle.addrs.plain))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

/// Lenient mode makes every token a device; once a device has no connection
/// and stays idle past `avs.device_idle_timeout`, it is forgotten (the
/// control API stops listing it) while its journal entries stay. A device
/// that stays connected is kept however long it is quiet.
#[tokio::test]
async fn idle_disconnected_devices_are_forgotten_and_their_journal_stays() {
    let sim = TestSim::start(|c| c.avs.device_idle_timeout = std::time::Duration::from_millis(300)).await;
    let (_stay, _stay_dc) = sim.connected("stay").await;
    let (leave, leave_dc) = sim.connected("leave").await;
    sim.push_system("leave", "ReportSoftwareInfo").await;
    sim.await_entry(Some("leave"), |e| e["kind"] == "directive").await;
    leave.closed.abort();
    drop(leave_dc);
    let evicted = sim.await_entry(Some("leave"), |e| e["kind"] == "evicted").await;
    assert!(
        evicted["summary"].as_str().unwrap().contains("avs.device_idle_timeout"),
        "{evicted}"
    );
    let (_, list) = sim.get("/api/devices").await;
    let ids: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&"stay") && !ids.contains(&"leave"), "{ids:?}");
    let (status, _) = sim.get("/api/devices/leave").await;
    assert_eq!(status, 404);
    let (_, journal) = sim.get("/api/journal?device=leave").await;
    let kinds: Vec<&str> = journal["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert!(kinds.contains(&"directive") && kinds.contains(&"request"), "{kinds:?}");
    // Coming back makes it a device again.
    let (_back, _back_dc) = sim.connected("leave").await;
    let (status, device) = sim.get("/api/devices/leave").await;
    assert_eq!((status, device["connected"].as_bool()), (200, Some(true)));
    sim.stop().await;
}

/// Expired refresh tokens and access tokens are swept from the store (and
/// the sweep journaled); a swept refresh token is refused in strict mode.
#[tokio::test]
async fn expired_tokens_are_swept() {
    let sim = TestSim::start(|c| {
        c.auth = avs_sim::config::AuthMode::Strict;
        c.lwa.expires_in = 1;
        c.lwa.refresh_expires_in = 1;
    })
    .await;
    let (status, t) = form(
        &sim,
        "/auth/o2/token",
        "grant_type=authorization_code&code=c1&client_id=x",
    )
    .await;
    assert_eq!(status, 200, "{t}");
    let refresh = t["refresh_token"].as_str().unwrap().replace('|', "%7C");
    let swept = sim
        .await_entry(None, |e| {
            e["kind"] == "evicted" && e["body"]["refresh"].as_u64() >= Some(1)
        })
        .await;
    assert_eq!(swept["face"], "lwa");
    let (status, e) = form(
        &sim,
        "/auth/o2/token",
        &format!("grant_type=refresh_token&refresh_token={refresh}&client_id=x"),
    )
    .await;
    assert_eq!((status, e["error"].as_str()), (400, Some("invalid_grant")), "{e}");
    sim.await_entry(None, |e| {
        e["kind"] == "evicted" && e["body"]["access"].as_u64() >= Some(1)
    })
    .await;
    sim.stop().await;
}

/// With `journal.max_bytes` set, big entries evict old ones: what the
/// journal holds stays within the bound, the newest entry is there, and
/// `evicted` counts what went.
#[tokio::test]
async fn the_journal_stays_within_its_byte_bound_with_big_entries() {
    let max = 256 * 1024;
    let sim = TestSim::start(|c| c.journal.max_bytes = max).await;
    let (_dev, _dc) = sim.connected("big").await;
    let filler = "f".repeat(16 * 1024);
    for i in 0..64 {
        let (status, body) = sim
            .push(
                "big",
                json!({"namespace": "Test", "name": format!("Big{i}"), "payload": {"filler": filler}}),
            )
            .await;
        assert!(status == 202 || status == 503, "{body}");
    }
    let (_, journal) = sim.get("/api/journal?limit=100000").await;
    let entries = journal["entries"].as_array().unwrap();
    let held: usize = entries.iter().map(|e| e.to_string().len()).sum();
    assert!(held <= max, "{held} bytes of entries held");
    assert!(journal["evicted"].as_u64().unwrap() > 0);
    assert!(
        entries.iter().any(|e| e["body"]["name"] == "Big63"),
        "the newest push is held"
    );
    sim.stop().await;
}
