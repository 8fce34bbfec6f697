//! Event uploads whose answer is decided before their body ends: once the
//! answer is out, the rest of the upload is not read without bound.

use avs_sim_tests::device::{SDK_BOUNDARY, read_whole, send_until_reset};
use avs_sim_tests::{DEADLINE, TestSim, event};
use bytes::Bytes;
use serde_json::json;

/// An h2c connection as device `token`; the request handle.
async fn h2c(sim: &TestSim) -> h2::client::SendRequest<Bytes> {
    let tcp = tokio::net::TcpStream::connect(sim.handle.addrs.plain).await.unwrap();
    let (send, conn) = h2::client::handshake(tcp).await.unwrap();
    tokio::spawn(conn);
    send.ready().await.unwrap()
}

/// Start an event as `token` whose body begins with `first` and stays open.
async fn open_upload(
    send: &mut h2::client::SendRequest<Bytes>,
    token: &str,
    first: String,
) -> (h2::client::ResponseFuture, h2::SendStream<Bytes>) {
    let req = http::Request::post("http://localhost/v20160207/events")
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", format!("multipart/form-data; boundary={SDK_BOUNDARY}"))
        .body(())
        .unwrap();
    let (resp, mut upload) = send.send_request(req, false).unwrap();
    upload.send_data(Bytes::from(first), false).unwrap();
    (resp, upload)
}

/// `GET /ping` on the connection: the status.
async fn ping(send: &mut h2::client::SendRequest<Bytes>, token: &str) -> u16 {
    let req = http::Request::get("http://localhost/ping")
        .header("authorization", format!("Bearer {token}"))
        .body(())
        .unwrap();
    let (resp, _) = send.send_request(req, true).unwrap();
    read_whole(resp).await.unwrap().status
}

/// Before: once the metadata part passed `avs.max_json_bytes` the 400 went
/// out, and then the rest of the upload was read and dropped with no bound
/// at all (the byte count stopped with the answer). Now the server stops
/// the upload with RST_STREAM NO_ERROR once the 400 reached the client.
#[tokio::test]
async fn metadata_over_the_json_limit_gets_400_then_the_upload_is_reset() {
    let sim = TestSim::start(|c| c.avs.max_json_bytes = 1024).await;
    let mut send = h2c(&sim).await;
    let head = format!(
        "\r\n--{SDK_BOUNDARY}\r\nContent-Disposition: form-data; name=\"metadata\"\r\nContent-Type: application/json\r\n\r\n{{\"event\": \""
    );
    let (resp, upload) = open_upload(&mut send, "fat", head).await;
    // Well under avs.max_event_bytes (64 MiB): only the answer can stop it.
    let sender = tokio::spawn(send_until_reset(upload, 8 * 1024 * 1024));
    let answer = read_whole(resp).await.unwrap();
    assert_eq!(answer.status, 400);
    let description = answer.json()["payload"]["description"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(description.contains("1024"), "{description}");
    let (reason, sent) = tokio::time::timeout(DEADLINE, sender)
        .await
        .expect("the upload was reset")
        .unwrap();
    assert_eq!(reason, Some(h2::Reason::NO_ERROR), "after {sent} bytes");
    sim.await_entry(Some("fat"), |e| {
        e["kind"] == "reset" && e["summary"].as_str().is_some_and(|s| s.contains("is not read"))
    })
    .await;
    assert_eq!(ping(&mut send, "fat").await, 204, "the connection lives on");
    sim.stop().await;
}

/// A malformed part (a header line with no colon) is a 400 at once, and
/// the upload is stopped the same way.
#[tokio::test]
async fn a_malformed_part_gets_400_then_the_upload_is_reset() {
    let sim = TestSim::start(|_| {}).await;
    let mut send = h2c(&sim).await;
    let head = format!("\r\n--{SDK_BOUNDARY}\r\nthis is no header line\r\n\r\n");
    let (resp, upload) = open_upload(&mut send, "bent", head).await;
    let sender = tokio::spawn(send_until_reset(upload, 8 * 1024 * 1024));
    let answer = read_whole(resp).await.unwrap();
    assert_eq!(answer.status, 400, "{:?}", answer.json());
    let (reason, sent) = tokio::time::timeout(DEADLINE, sender)
        .await
        .expect("the upload was reset")
        .unwrap();
    assert_eq!(reason, Some(h2::Reason::NO_ERROR), "after {sent} bytes");
    sim.stop().await;
}

/// A fault answers the event (429) as soon as its name is known, while the
/// audio keeps coming: the rest is read only up to `avs.max_event_bytes`,
/// then the upload is stopped. Before, every byte after the answer went
/// uncounted and was read for ever.
#[tokio::test]
async fn an_upload_answered_by_a_fault_is_read_no_further_than_the_event_limit() {
    const LIMIT: u64 = 64 * 1024;
    let sim = TestSim::start(|c| c.avs.max_event_bytes = LIMIT).await;
    let (mut dev, _dc) = sim.connected("loud").await;
    let rule = json!({
        "when": {"device": "loud", "event": "SpeechRecognizer.Recognize"},
        "then": {"action": "status", "status": 429},
    });
    sim.add_fault(rule).await;
    let metadata = event("SpeechRecognizer", "Recognize", json!({"profile": "NEAR_FIELD"}));
    let (resp, upload) = dev.open_event(&metadata).await.unwrap();
    let sender = tokio::spawn(send_until_reset(upload, 256 * LIMIT));
    let answer = read_whole(resp).await.unwrap();
    assert_eq!(answer.status, 429);
    let (reason, sent) = tokio::time::timeout(DEADLINE, sender)
        .await
        .expect("the upload was reset")
        .unwrap();
    assert_eq!(reason, Some(h2::Reason::NO_ERROR), "after {sent} bytes");
    assert!(sent > LIMIT, "read up to the limit: {sent}");
    sim.await_entry(Some("loud"), |e| {
        e["kind"] == "reset" && e["summary"].as_str().is_some_and(|s| s.contains("max_event_bytes"))
    })
    .await;
    sim.stop().await;
}
