//! Limits and timeouts on every listener (issue 7, item 6), each proven
//! with real sockets and small configured values: the connection limit, the
//! header-list limit, the handshake deadlines (h2c preface, TLS, HTTP/2),
//! the HTTP/1.1 header read timeout, the RFC 2046 boundary length, and the
//! event body limit answered with 400 and then RST_STREAM.

use avs_sim_tests::device::{Device, read_whole, send_until_reset, tls_offering};
use avs_sim_tests::{DEADLINE, TestSim, event};
use bytes::Bytes;
use http::{Method, Request};
use serde_json::json;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const SHORT: Duration = Duration::from_millis(300);

/// Wait (up to DEADLINE) until the peer closes `io`: EOF or an error.
/// Returns whatever bytes arrived before that.
async fn closed_by_peer(io: &mut (impl AsyncRead + Unpin)) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let result = tokio::time::timeout(DEADLINE, async {
        loop {
            match io.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(
        result.is_ok(),
        "the server did not close the connection within {DEADLINE:?}"
    );
    got
}

#[tokio::test]
async fn silent_clients_are_disconnected_after_the_handshake_deadline() {
    // Long enough for a full TLS handshake on a busy machine: the last
    // client must finish one before it falls silent.
    let sim = TestSim::start(|c| c.limits.handshake_timeout = Duration::from_secs(2)).await;
    let addrs = sim.handle.addrs.clone();
    // Plain listener: nothing at all, then half an h2c preface.
    let mut silent = TcpStream::connect(addrs.plain).await.unwrap();
    let mut half = TcpStream::connect(addrs.plain).await.unwrap();
    half.write_all(b"PRI * HTTP/2.0\r\n").await.unwrap();
    // Control listener: nothing at all.
    let mut control = TcpStream::connect(addrs.control).await.unwrap();
    // TLS listener: no ClientHello.
    let mut no_hello = TcpStream::connect(addrs.avs).await.unwrap();
    // TLS done with ALPN h2, but no HTTP/2 preface.
    let mut no_preface = tls_offering(addrs.avs, &sim.handle.ca, b"h2").await.unwrap();
    // All of them wait out the deadline together.
    tokio::join!(
        closed_by_peer(&mut silent),
        closed_by_peer(&mut half),
        closed_by_peer(&mut control),
        closed_by_peer(&mut no_hello),
        closed_by_peer(&mut no_preface),
    );
    let closed = sim
        .await_entry(None, |e| {
            e["kind"] == "connection_close"
                && e["summary"]
                    .as_str()
                    .is_some_and(|s| s.contains("limits.handshake_timeout"))
        })
        .await;
    assert_eq!(closed["face"], "server");
    // A prompt client is still served.
    let mut dev = sim.h2c_device("prompt").await;
    assert_eq!(dev.ping("/ping").await.unwrap(), 204);
    sim.stop().await;
}

#[tokio::test]
async fn a_slowloris_http1_client_is_cut_off_after_the_header_read_timeout() {
    let sim = TestSim::start(|c| c.limits.header_read_timeout = SHORT).await;
    for addr in [sim.handle.addrs.plain, sim.handle.addrs.control] {
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        tcp.write_all(b"GET /ping HTTP/1.1\r\nHost: sim\r\nX-Slow: ")
            .await
            .unwrap();
        // One header byte every 50 ms, until the server gives up on us.
        let cut = tokio::time::timeout(DEADLINE, async {
            let mut buf = [0u8; 1024];
            loop {
                if tcp.write_all(b"a").await.is_err() {
                    return;
                }
                match tokio::time::timeout(Duration::from_millis(50), tcp.read(&mut buf)).await {
                    Err(_) => continue,
                    // EOF, an error, or an error status (408): cut off either way.
                    Ok(_) => return,
                }
            }
        })
        .await;
        assert!(cut.is_ok(), "{addr}: a client dribbling its headers was never cut off");
    }
    // A normal HTTP/1.1 request still works.
    let mut tcp = TcpStream::connect(sim.handle.addrs.plain).await.unwrap();
    tcp.write_all(b"GET /ping HTTP/1.1\r\nHost: sim\r\nAuthorization: Bearer prompt\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let answer = String::from_utf8_lossy(&closed_by_peer(&mut tcp).await).to_string();
    assert!(answer.starts_with("HTTP/1.1 204"), "{answer}");
    sim.stop().await;
}

#[tokio::test]
async fn the_connection_past_the_limit_is_refused_and_journaled() {
    let sim = TestSim::start(|c| c.limits.max_connections = 3).await;
    let mut held = Vec::new();
    for i in 0..3 {
        let mut dev = sim.h2c_device(&format!("held-{i}")).await;
        assert_eq!(dev.ping("/ping").await.unwrap(), 204);
        held.push(dev);
    }
    let mut fourth = TcpStream::connect(sim.handle.addrs.plain).await.unwrap();
    assert_eq!(closed_by_peer(&mut fourth).await, b"", "closed at accept, nothing sent");
    let refused = sim
        .await_entry(None, |e| {
            e["kind"] == "error" && e["summary"].as_str().is_some_and(|s| s.contains("refused"))
        })
        .await;
    assert_eq!(refused["body"]["listener"], "plain");
    assert_eq!(refused["body"]["max_connections"], 3);
    // Other listeners have their own places.
    let mut tls = sim.tls_device("elsewhere").await;
    assert_eq!(tls.ping("/ping").await.unwrap(), 204);
    // Once a connection ends, its place is free again (a moment after its
    // close is journaled: the place is given back as its task ends).
    drop(held.pop());
    sim.await_entry(Some("held-2"), |e| e["kind"] == "connection_close")
        .await;
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        if let Ok(mut dev) = Device::h2c(sim.handle.addrs.plain, "later").await
            && dev.ping("/ping").await.ok() == Some(204)
        {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "no place came free");
        tokio::task::yield_now().await;
    }
    sim.stop().await;
}

#[tokio::test]
async fn an_oversize_header_list_is_refused_on_h2_and_http1() {
    let sim = TestSim::start(|c| c.limits.max_header_list_size = 16 * 1024).await;
    let big = "x".repeat(32 * 1024);
    // h2: a raw client that does not hold back (h2's own client would).
    let (send, conn) = h2::client::Builder::new()
        .handshake::<_, Bytes>(TcpStream::connect(sim.handle.addrs.plain).await.unwrap())
        .await
        .unwrap();
    tokio::spawn(conn);
    let mut send = send.ready().await.unwrap();
    let req = Request::builder()
        .method(Method::GET)
        .uri("http://sim/ping")
        .header("x-big", &big)
        .body(())
        .unwrap();
    let refused = match send.send_request(req, true) {
        Err(e) => panic!("the client refused to send: {e}"),
        Ok((resp, _)) => match tokio::time::timeout(DEADLINE, resp).await.unwrap() {
            Ok(resp) => {
                assert_eq!(resp.status(), 431, "an oversize header list must not be served");
                "431".to_string()
            }
            Err(e) => format!("stream error {:?}", e.reason()),
        },
    };
    eprintln!("oversize h2 header list: {refused}");
    // HTTP/1.1: 431 from hyper.
    let mut tcp = TcpStream::connect(sim.handle.addrs.plain).await.unwrap();
    tcp.write_all(format!("GET /ping HTTP/1.1\r\nHost: sim\r\nX-Big: {big}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let answer = String::from_utf8_lossy(&closed_by_peer(&mut tcp).await).to_string();
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
    // Headers within the limit pass.
    let mut dev = sim.h2c_device("small").await;
    assert_eq!(dev.ping("/ping").await.unwrap(), 204);
    sim.stop().await;
}

#[tokio::test]
async fn a_boundary_longer_than_70_characters_is_a_400() {
    let sim = TestSim::start(|_| {}).await;
    let (mut dev, _dc) = sim.connected("bound").await;
    let metadata = event("System", "SynchronizeState", json!({}));
    let send = |boundary: String| {
        let body = avs_sim::avs::multipart::form::event_body(&boundary, metadata.to_string().as_bytes(), None);
        (format!("multipart/form-data; boundary={boundary}"), body)
    };
    let (ct, body) = send("b".repeat(70));
    let ok = dev
        .call(Method::POST, "/v20160207/events", Some(&ct), body)
        .await
        .unwrap();
    assert_eq!(ok.status, 204, "70 characters are allowed");
    let (ct, body) = send("b".repeat(71));
    let a = dev
        .call(Method::POST, "/v20160207/events", Some(&ct), body)
        .await
        .unwrap();
    assert_eq!(a.status, 400);
    assert_eq!(
        a.json()["payload"]["code"],
        "INVALID_REQUEST_EXCEPTION",
        "{:?}",
        a.json()
    );
    let msg = a.json()["payload"]["description"].as_str().unwrap_or("").to_string();
    assert!(msg.contains("71") && msg.contains("70"), "{msg}");
    sim.stop().await;
}

#[tokio::test]
async fn an_upload_over_the_event_limit_gets_400_then_a_reset() {
    const LIMIT: u64 = 64 * 1024;
    let sim = TestSim::start(|c| c.avs.max_event_bytes = LIMIT).await;
    let (mut dev, _dc) = sim.connected("big").await;
    // An event answered with 204 at its end, so the 400 can still be sent whole.
    let metadata = event("System", "SynchronizeState", json!({}));
    let (resp, upload) = dev.open_event(&metadata).await.unwrap();
    let sender = tokio::spawn(send_until_reset(upload, 256 * LIMIT));
    let answer = read_whole(resp).await.unwrap();
    assert_eq!(answer.status, 400);
    let description = answer.json()["payload"]["description"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(description.contains("exceeds the limit"), "{description}");
    let (reason, sent) = tokio::time::timeout(DEADLINE, sender)
        .await
        .expect("the upload was reset")
        .unwrap();
    assert_eq!(reason, Some(h2::Reason::NO_ERROR), "after {sent} bytes");
    assert!(sent > LIMIT);
    sim.await_entry(Some("big"), |e| {
        e["kind"] == "reset" && e["summary"].as_str().is_some_and(|s| s.contains("is not read"))
    })
    .await;
    // The connection lives on.
    assert_eq!(dev.ping("/ping").await.unwrap(), 204);
    sim.stop().await;
}

/// Send `req` on a fresh h2c connection and keep uploading: the answer must
/// be 400, then RST_STREAM NO_ERROR before `most` bytes were read.
async fn refused_then_reset(sim: &TestSim, req: Request<()>, most: u64) {
    let (send, conn) = h2::client::handshake(TcpStream::connect(sim.handle.addrs.plain).await.unwrap())
        .await
        .unwrap();
    tokio::spawn(conn);
    let mut send = send.ready().await.unwrap();
    let (resp, upload) = send.send_request(req, false).unwrap();
    let sender = tokio::spawn(send_until_reset(upload, most));
    let answer = read_whole(resp).await.unwrap();
    assert_eq!(answer.status, 400);
    let (reason, sent) = tokio::time::timeout(DEADLINE, sender)
        .await
        .expect("the upload was reset")
        .unwrap();
    assert_eq!(reason, Some(h2::Reason::NO_ERROR), "after {sent} bytes");
}

#[tokio::test]
async fn a_refused_upload_is_not_drained_past_the_event_limit() {
    const LIMIT: u64 = 64 * 1024;
    let sim = TestSim::start(|c| c.avs.max_event_bytes = LIMIT).await;
    let req = Request::builder()
        .method(Method::POST)
        .uri("http://sim/v20160207/events")
        .header("authorization", "Bearer refused")
        .header(
            "content-type",
            format!("multipart/form-data; boundary={}", "b".repeat(71)),
        )
        .body(())
        .unwrap();
    refused_then_reset(&sim, req, 256 * LIMIT).await;
    sim.stop().await;
}

#[tokio::test]
async fn an_lwa_body_over_its_limit_gets_400_then_a_reset() {
    let sim = TestSim::start(|_| {}).await;
    let req = Request::builder()
        .method(Method::POST)
        .uri("http://sim/auth/o2/token")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(())
        .unwrap();
    // The request/response routes read at most 1 MiB of body.
    refused_then_reset(&sim, req, 64 * 1024 * 1024).await;
    sim.stop().await;
}
