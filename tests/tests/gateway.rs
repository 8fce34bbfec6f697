//! The event gateway (`POST /v3/events`) over real sockets: every error
//! code of the reference's table with its `System.Exception` body, the
//! 256 KB bound proven on both transports, registry merges seen through the
//! control API, and the LWA grant dance a skill goes through.

use avs_sim_tests::gateway::{
    H2Gateway, U1, U2, U3, add_or_update, assert_exception, change_report, delete_report, endpoint, endpoint_ids,
    error_response, form_body, journal_pair, lwa_token, post_http1, registry, skills_and_users,
};
use avs_sim_tests::{DEADLINE, TestSim, device::read_whole, device::send_until_reset};
use bytes::Bytes;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The gateway's body limit (reference rule 22).
const LIMIT: usize = 256 * 1024;

async fn sim() -> TestSim {
    TestSim::start(skills_and_users).await
}

#[tokio::test]
async fn a_valid_add_or_update_report_is_202_over_tls_h2_and_http1() {
    let sim = sim().await;
    let mut gw = H2Gateway::connect(&sim).await;
    let doc = add_or_update(U1, vec![endpoint("lamp-1", "Desk lamp")]);
    let answer = gw.post(Some(U1), &doc).await;
    assert_eq!(answer.status, 202, "{:?}", answer.body);
    assert!(answer.body.is_empty(), "202 has an empty body");
    let (status, _, body) = post_http1(
        &sim,
        Some(U1),
        add_or_update(U1, vec![endpoint("lamp-2", "Hall lamp")]).to_string(),
    )
    .await;
    assert_eq!(status, 202);
    assert!(body.is_empty());
    assert_eq!(endpoint_ids(&sim, "u1").await, ["lamp-1", "lamp-2"]);
    let reg = registry(&sim, "u1").await;
    assert_eq!(reg["endpoints"][0]["source"], "AddOrUpdateReport");
    assert_eq!(reg["endpoints"][0]["friendlyName"], "Desk lamp");

    // One request entry and one response entry, in the shapes scenario steps match.
    let message_id = doc["event"]["header"]["messageId"].clone();
    let (req, resp) = journal_pair(&sim, |e| {
        e["body"]["message"]["event"]["header"]["messageId"] == message_id
    })
    .await;
    assert_eq!(
        req["summary"],
        "POST /v3/events Alexa.Discovery.AddOrUpdateReport (user u1)"
    );
    let b = &req["body"];
    assert_eq!(b["user"], "u1");
    assert_eq!(b["namespace"], "Alexa.Discovery");
    assert_eq!(b["name"], "AddOrUpdateReport");
    assert_eq!(b["endpoint"], Value::Null);
    assert_eq!(b["correlationToken"], Value::Null);
    assert_eq!(b["message"], doc);
    assert_eq!(resp["summary"], "202");
    assert_eq!(resp["body"]["status"], 202);
    assert_eq!(resp["body"]["code"], Value::Null);
    assert!(resp["body"]["findings"].is_array());
    assert!(
        resp["body"]["description"].as_str().unwrap().contains("1 endpoint"),
        "{resp}"
    );
    // The public router's generic journal did not record gateway traffic a second time.
    let (_, all) = sim.get("/api/journal?face=gateway").await;
    let requests = all["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "request")
        .count();
    assert_eq!(requests, 2, "{all}");
    sim.stop().await;
}

#[tokio::test]
async fn bad_json_is_400_naming_the_parse_error() {
    let sim = sim().await;
    let mut gw = H2Gateway::connect(&sim).await;
    let answer = gw.post_bytes(Some(U1), Bytes::from_static(b"{\"event\": ")).await;
    let why = assert_exception(answer.status, &answer.json(), 400, "INVALID_REQUEST_EXCEPTION");
    assert!(why.contains("not valid JSON") && why.contains("EOF"), "{why}");
    let (status, doc, _) = post_http1(&sim, Some(U1), "not json at all").await;
    let why = assert_exception(status, &doc, 400, "INVALID_REQUEST_EXCEPTION");
    assert!(why.contains("not valid JSON") && why.contains("expected"), "{why}");
    // The journal keeps the text that was sent, and the answer's code.
    let (req, resp) = journal_pair(&sim, |e| e["body"]["message"] == "not json at all").await;
    assert_eq!(req["body"]["user"], "u1");
    assert_eq!(req["body"]["namespace"], Value::Null);
    assert_eq!(resp["summary"], "400 INVALID_REQUEST_EXCEPTION");
    assert_eq!(resp["body"]["code"], "INVALID_REQUEST_EXCEPTION");
    assert_eq!(resp["body"]["status"], 400);
    sim.stop().await;
}

#[tokio::test]
async fn a_broken_header_is_400_naming_the_rule() {
    let sim = sim().await;
    let mut gw = H2Gateway::connect(&sim).await;
    let mut doc = add_or_update(U1, vec![endpoint("lamp-1", "Desk lamp")]);
    doc["event"]["header"].as_object_mut().unwrap().remove("namespace");
    let answer = gw.post(Some(U1), &doc).await;
    let why = assert_exception(answer.status, &answer.json(), 400, "INVALID_REQUEST_EXCEPTION");
    assert!(why.starts_with("rule 1 ") && why.contains(" at /event/header"), "{why}");
    let (_, resp) = journal_pair(&sim, |e| e["body"]["message"] == doc).await;
    assert_eq!(resp["summary"], "400 INVALID_REQUEST_EXCEPTION");
    let findings = resp["body"]["findings"].as_array().unwrap();
    assert!(
        findings
            .iter()
            .any(|f| f["severity"] == "error" && f["rule"].as_str().unwrap().starts_with("1 ")),
        "{resp}"
    );
    // Nothing was merged.
    assert!(endpoint_ids(&sim, "u1").await.is_empty());
    sim.stop().await;
}

/// Rule 24: a ChangeReport must be about an endpoint Alexa discovered.
#[tokio::test]
async fn a_change_report_for_an_undiscovered_endpoint_is_400_rule_24() {
    let sim = sim().await;
    let mut gw = H2Gateway::connect(&sim).await;
    let answer = gw.post(Some(U1), &change_report(U1, "ghost", "ON")).await;
    let why = assert_exception(answer.status, &answer.json(), 400, "INVALID_REQUEST_EXCEPTION");
    assert!(
        why.starts_with("rule 24") && why.contains("at /event/endpoint/endpointId") && why.contains("\"ghost\""),
        "{why}"
    );
    sim.stop().await;
}

#[tokio::test]
async fn missing_unknown_and_expired_tokens_are_401() {
    let sim = TestSim::start(|c| {
        skills_and_users(c);
        c.lwa.expires_in = 1;
    })
    .await;
    let mut gw = H2Gateway::connect(&sim).await;
    let doc = add_or_update(U1, vec![endpoint("lamp-1", "Desk lamp")]);
    let answer = gw.post(None, &doc).await;
    let why = assert_exception(answer.status, &answer.json(), 401, "INVALID_ACCESS_TOKEN_EXCEPTION");
    assert!(why.contains("no access token"), "{why}");
    let (status, doc401, _) = post_http1(&sim, Some("made-up"), doc.to_string()).await;
    let why = assert_exception(status, &doc401, 401, "INVALID_ACCESS_TOKEN_EXCEPTION");
    assert!(why.contains("unknown access token"), "{why}");
    // The refused request is journaled, with no user.
    let (req, resp) = journal_pair(&sim, |e| {
        e["body"]["user"].is_null() && e["body"]["name"] == "AddOrUpdateReport"
    })
    .await;
    assert!(req["summary"].as_str().unwrap().ends_with("(no user)"), "{req}");
    assert_eq!(resp["summary"], "401 INVALID_ACCESS_TOKEN_EXCEPTION");

    // A token LWA minted for the skill, once it is past expires_in (1 s).
    let code = sim.handle.state.smarthome.grants.mint_code("u1");
    let (status, tokens) = lwa_token(&sim, &[("grant_type", "authorization_code"), ("code", &code)]).await;
    assert_eq!(status, 200, "{tokens}");
    // Minted before this instant, so it has expired 1 s after it: the wait
    // below is the lifetime under test passing, not a poll.
    let expired_by = tokio::time::Instant::now() + std::time::Duration::from_millis(1050);
    let access = tokens["access_token"].as_str().unwrap().to_string();
    let body = add_or_update(&access, vec![endpoint("lamp-1", "Desk lamp")]);
    tokio::time::sleep_until(expired_by).await;
    let answer = gw.post(Some(&access), &body).await;
    let why = assert_exception(answer.status, &answer.json(), 401, "INVALID_ACCESS_TOKEN_EXCEPTION");
    assert!(why.contains("expired"), "{why}");
    sim.stop().await;
}

#[tokio::test]
async fn a_disabled_skill_is_403_until_enabled_again() {
    let sim = sim().await;
    let mut gw = H2Gateway::connect(&sim).await;
    // u2's skill is disabled in config.
    let answer = gw.post(Some(U2), &add_or_update(U2, vec![endpoint("a", "A")])).await;
    let why = assert_exception(answer.status, &answer.json(), 403, "SKILL_DISABLED_EXCEPTION");
    assert!(why.contains("u2"), "{why}");
    // Disable u1's through the control API, then enable it again.
    let put = |enabled: bool| {
        sim.http
            .put(sim.control("/api/smarthome/users/u1"))
            .json(&json!({"enabled": enabled}))
            .send()
    };
    let resp = put(false).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.json::<Value>().await.unwrap(),
        json!({"user": "u1", "enabled": false})
    );
    let (status, doc, _) = post_http1(&sim, Some(U1), add_or_update(U1, vec![endpoint("a", "A")]).to_string()).await;
    assert_exception(status, &doc, 403, "SKILL_DISABLED_EXCEPTION");
    assert_eq!(put(true).await.unwrap().status(), 200);
    let (status, _, _) = post_http1(&sim, Some(U1), add_or_update(U1, vec![endpoint("a", "A")]).to_string()).await;
    assert_eq!(status, 202);
    // The control routes name unknown users and bad bodies.
    let resp = sim
        .http
        .put(sim.control("/api/smarthome/users/nobody"))
        .json(&json!({"enabled": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    assert!(
        resp.json::<Value>().await.unwrap()["error"]
            .as_str()
            .unwrap()
            .contains("nobody")
    );
    let resp = sim
        .http
        .put(sim.control("/api/smarthome/users/u1"))
        .json(&json!({"enabled": "yes"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let resp = sim
        .http
        .put(sim.control("/api/smarthome/users/u1"))
        .json(&json!({"enabled": true, "enabeld": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400, "a misspelt key is refused");
    let (status, body) = sim.get("/api/smarthome/users/nobody/endpoints").await;
    assert_eq!(status, 404, "{body}");
    assert!(body["error"].as_str().unwrap().contains("nobody"));
    sim.stop().await;
}

#[tokio::test]
async fn a_skill_without_the_send_events_permission_is_403() {
    let sim = sim().await;
    let mut gw = H2Gateway::connect(&sim).await;
    let answer = gw.post(Some(U3), &add_or_update(U3, vec![endpoint("a", "A")])).await;
    let why = assert_exception(answer.status, &answer.json(), 403, "INSUFFICIENT_PERMISSION_EXCEPTION");
    assert!(why.contains("mute") && why.contains("send_events"), "{why}");
    sim.stop().await;
}

#[tokio::test]
async fn a_body_over_256_kb_is_413_on_both_transports() {
    let sim = sim().await;
    let big = add_or_update(U1, vec![json!({"endpointId": "x", "description": "y".repeat(LIMIT)})]).to_string();
    assert!(big.len() > LIMIT);
    // HTTP/2 without a content-length: the bound is met while reading.
    let mut gw = H2Gateway::connect(&sim).await;
    let answer = gw.post_bytes(Some(U1), Bytes::from(big.clone())).await;
    let why = assert_exception(answer.status, &answer.json(), 413, "REQUEST_ENTITY_TOO_LARGE_EXCEPTION");
    assert!(why.contains("262144"), "{why}");
    // HTTP/1.1 with a content-length: refused on the declared size, and the
    // client still reads the 413 (the rest of the upload is drained).
    let (status, doc, _) = post_http1(&sim, Some(U1), big.clone()).await;
    let why = assert_exception(status, &doc, 413, "REQUEST_ENTITY_TOO_LARGE_EXCEPTION");
    assert!(why.contains(&format!("{} bytes", big.len())), "{why}");
    let (req, resp) = journal_pair(&sim, |e| e["body"]["message"]["content_length"] == big.len()).await;
    assert_eq!(req["body"]["message"]["bytes_read"], 0, "{req}");
    assert_eq!(resp["summary"], "413 REQUEST_ENTITY_TOO_LARGE_EXCEPTION");
    // Just under the bound is fine (the size check is the gateway's, not the public router's).
    let mut fits = add_or_update(U1, vec![endpoint("fits", "Fits")]);
    let pad = LIMIT - fits.to_string().len() - 20;
    fits["event"]["payload"]["padding"] = json!("p".repeat(pad));
    assert!(fits.to_string().len() <= LIMIT);
    let answer = gw.post(Some(U1), &fits).await;
    assert_ne!(answer.status, 413, "{:?}", answer.body);
    sim.stop().await;
}

#[tokio::test]
async fn an_endless_h2_upload_gets_413_and_is_not_buffered() {
    let sim = sim().await;
    let mut gw = H2Gateway::connect(&sim).await;
    let (resp, upload) = gw.open(Some(U1)).await;
    // Keep sending up to 16 MiB: the server must answer and reset the stream long before.
    let (reason, sent) = send_until_reset(upload, 16 * 1024 * 1024).await;
    assert_eq!(reason, Some(h2::Reason::NO_ERROR), "sent {sent}");
    assert!(sent < 2 * 1024 * 1024, "the server read {sent} bytes");
    let answer = read_whole(resp).await.unwrap();
    assert_exception(answer.status, &answer.json(), 413, "REQUEST_ENTITY_TOO_LARGE_EXCEPTION");
    let (req, _) = journal_pair(&sim, |e| {
        e["body"]["message"]["bytes_read"].as_u64().is_some_and(|n| n > 0)
    })
    .await;
    let read = req["body"]["message"]["bytes_read"].as_u64().unwrap();
    assert!(
        read > LIMIT as u64 && read <= (LIMIT + 16 * 1024) as u64,
        "kept {read} bytes"
    );
    sim.stop().await;
}

#[tokio::test]
async fn an_endless_http1_upload_gets_413_before_it_ends() {
    let sim = sim().await;
    let tcp = tokio::net::TcpStream::connect(sim.handle.addrs.plain).await.unwrap();
    let (mut rd, mut wr) = tcp.into_split();
    let head = format!(
        "POST /v3/events HTTP/1.1\r\nhost: localhost\r\nauthorization: Bearer {U1}\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n"
    );
    wr.write_all(head.as_bytes()).await.unwrap();
    // A chunked body that never ends: the last chunk is never sent.
    let writer = tokio::spawn(async move {
        let chunk = format!("4000\r\n{}\r\n", "x".repeat(0x4000));
        let mut sent = 0usize;
        while sent < 32 * 1024 * 1024 {
            if wr.write_all(chunk.as_bytes()).await.is_err() {
                break;
            }
            sent += 0x4000;
        }
        sent
    });
    let mut got = Vec::new();
    let answer = tokio::time::timeout(DEADLINE, async {
        let mut buf = [0u8; 4096];
        loop {
            let n = rd.read(&mut buf).await.unwrap();
            assert!(n > 0, "closed before an answer: {}", String::from_utf8_lossy(&got));
            got.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&got).to_string();
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let len: usize = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse().unwrap())
                    })
                    .unwrap_or(0);
                if body.len() >= len {
                    break (head.to_string(), body[..len].to_string());
                }
            }
        }
    })
    .await
    .expect("an answer while the upload goes on");
    assert!(answer.0.starts_with("HTTP/1.1 413"), "{}", answer.0);
    let doc: Value = serde_json::from_str(&answer.1).unwrap();
    assert_exception(413, &doc, 413, "REQUEST_ENTITY_TOO_LARGE_EXCEPTION");
    let (req, _) = journal_pair(&sim, |e| {
        e["body"]["message"]["bytes_read"].as_u64().is_some_and(|n| n > 0)
    })
    .await;
    let read = req["body"]["message"]["bytes_read"].as_u64().unwrap();
    assert!(
        read > LIMIT as u64 && read <= (LIMIT + 64 * 1024) as u64,
        "kept {read} bytes"
    );
    drop(rd);
    writer.abort();
    sim.stop().await;
}

#[tokio::test]
async fn more_than_300_endpoints_is_413() {
    let sim = sim().await;
    let many: Vec<Value> = (0..301).map(|i| json!({"endpointId": format!("e{i}")})).collect();
    let doc = add_or_update(U1, many);
    assert!(doc.to_string().len() < LIMIT);
    let mut gw = H2Gateway::connect(&sim).await;
    let answer = gw.post(Some(U1), &doc).await;
    let why = assert_exception(answer.status, &answer.json(), 413, "REQUEST_ENTITY_TOO_LARGE_EXCEPTION");
    assert!(why.contains("301 endpoints") && why.contains("300"), "{why}");
    let delete: Vec<String> = (0..301).map(|i| format!("e{i}")).collect();
    let ids: Vec<&str> = delete.iter().map(String::as_str).collect();
    let (status, doc, _) = post_http1(&sim, Some(U1), delete_report(U1, &ids).to_string()).await;
    assert_exception(status, &doc, 413, "REQUEST_ENTITY_TOO_LARGE_EXCEPTION");
    assert!(endpoint_ids(&sim, "u1").await.is_empty());
    sim.stop().await;
}

#[tokio::test]
async fn over_the_users_rate_is_429() {
    let sim = TestSim::start(|c| {
        skills_and_users(c);
        c.smarthome.events_per_second = 1;
        c.smarthome.burst = 1;
    })
    .await;
    let mut gw = H2Gateway::connect(&sim).await;
    let doc = add_or_update(U1, vec![endpoint("a", "A")]);
    // With one event per second and a burst of one, some of fifty back-to-back events are refused.
    let mut refused = None;
    for _ in 0..50 {
        let answer = gw.post(Some(U1), &doc).await;
        if answer.status == 429 {
            refused = Some(answer);
            break;
        }
        assert_eq!(answer.status, 202, "{:?}", answer.body);
    }
    let answer = refused.expect("a 429 among fifty events at once");
    let why = assert_exception(answer.status, &answer.json(), 429, "THROTTLING_EXCEPTION");
    assert!(why.contains("u1") && why.contains("1 events per second"), "{why}");
    // Another user's bucket is their own.
    let answer = gw.post(Some(U3), &add_or_update(U3, vec![endpoint("a", "A")])).await;
    assert_ne!(answer.status, 429);
    sim.stop().await;
}

#[tokio::test]
async fn injected_500_and_503_carry_the_system_exception_body() {
    let sim = sim().await;
    let doc = add_or_update(U1, vec![endpoint("a", "A")]);
    for status in [500u16, 503] {
        let code = if status == 500 {
            "INTERNAL_SERVICE_EXCEPTION"
        } else {
            "SERVICE_UNAVAILABLE_EXCEPTION"
        };
        sim.add_fault(json!({"when": {"face": "gateway"}, "then": {"action": "status", "status": status}, "times": 1}))
            .await;
        let mut gw = H2Gateway::connect(&sim).await;
        let answer = gw.post(Some(U1), &doc).await;
        assert_exception(answer.status, &answer.json(), status, code);
        sim.add_fault(json!({"when": {"face": "gateway"}, "then": {"action": "status", "status": status}, "times": 1}))
            .await;
        let (got, body, _) = post_http1(&sim, Some(U1), doc.to_string()).await;
        assert_exception(got, &body, status, code);
    }
    // The rules were used up: the next event goes through.
    let (status, _, _) = post_http1(&sim, Some(U1), doc.to_string()).await;
    assert_eq!(status, 202);
    sim.stop().await;
}

#[tokio::test]
async fn registry_merges_add_update_delete_and_unknown_ids() {
    let sim = sim().await;
    let mut gw = H2Gateway::connect(&sim).await;
    // Add two.
    let doc = add_or_update(U1, vec![endpoint("a", "Lamp A"), endpoint("b", "Lamp B")]);
    assert_eq!(gw.post(Some(U1), &doc).await.status, 202);
    assert_eq!(endpoint_ids(&sim, "u1").await, ["a", "b"]);
    // Update one and add a third: the others stay, the update replaces the declaration.
    let doc = add_or_update(U1, vec![endpoint("b", "Lamp B renamed"), endpoint("c", "Lamp C")]);
    assert_eq!(gw.post(Some(U1), &doc).await.status, 202);
    let reg = registry(&sim, "u1").await;
    let names: Vec<&str> = reg["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["friendlyName"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Lamp A", "Lamp B renamed", "Lamp C"]);
    // Delete one known id and one unknown: the known goes, the unknown is named.
    let doc = delete_report(U1, &["a", "never-was"]);
    let answer = gw.post(Some(U1), &doc).await;
    assert_eq!(answer.status, 202, "{:?}", answer.body);
    assert_eq!(endpoint_ids(&sim, "u1").await, ["b", "c"]);
    let (_, resp) = journal_pair(&sim, |e| e["body"]["message"] == doc).await;
    let said = resp["body"]["description"].as_str().unwrap();
    assert!(
        said.contains("1 endpoint(s) deleted") && said.contains("never-was"),
        "{said}"
    );
    // Another user's home is untouched.
    assert!(endpoint_ids(&sim, "u3").await.is_empty());
    sim.stop().await;
}

/// A ChangeReport's properties become the endpoint's state, and an
/// AddOrUpdateReport of the same endpoint keeps it.
#[tokio::test]
async fn a_change_report_sets_state_and_an_update_keeps_it() {
    let sim = sim().await;
    let mut gw = H2Gateway::connect(&sim).await;
    assert_eq!(
        gw.post(Some(U1), &add_or_update(U1, vec![endpoint("a", "Lamp A")]))
            .await
            .status,
        202
    );
    let doc = change_report(U1, "a", "ON");
    let answer = gw.post(Some(U1), &doc).await;
    assert_eq!(answer.status, 202, "{:?}", answer.body);
    let power = |reg: &Value| {
        reg["endpoints"][0]["state"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "powerState")
            .map(|p| p["value"].clone())
    };
    assert_eq!(power(&registry(&sim, "u1").await), Some(json!("ON")));
    let (req, _) = journal_pair(&sim, |e| e["body"]["message"] == doc).await;
    assert_eq!(req["summary"], "POST /v3/events Alexa.ChangeReport a (user u1)");
    assert_eq!(req["body"]["endpoint"], "a");
    // An AddOrUpdateReport of the same endpoint keeps its state.
    assert_eq!(
        gw.post(Some(U1), &add_or_update(U1, vec![endpoint("a", "Lamp A2")]))
            .await
            .status,
        202
    );
    let reg = registry(&sim, "u1").await;
    assert_eq!(reg["endpoints"][0]["friendlyName"], "Lamp A2");
    assert_eq!(power(&reg), Some(json!("ON")));
    sim.stop().await;
}

#[tokio::test]
async fn the_lwa_grant_dance_gives_working_gateway_tokens() {
    let sim = sim().await;
    let mut gw = H2Gateway::connect(&sim).await;
    // The code AcceptGrant would carry.
    let code = sim.handle.state.smarthome.grants.mint_code("u1");
    // Over TLS (h2), form body.
    let form = form_body(&[
        ("grant_type", "authorization_code"),
        ("code", &code),
        ("client_id", "any"),
        ("client_secret", "any"),
    ]);
    let answer = gw
        .call(
            "/auth/o2/token",
            None,
            "application/x-www-form-urlencoded",
            Bytes::from(form.clone()),
        )
        .await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    let tokens = answer.json();
    assert_eq!(tokens["token_type"], "bearer");
    assert!(tokens["expires_in"].as_u64().is_some_and(|n| n > 0), "{tokens}");
    let access = tokens["access_token"].as_str().unwrap().to_string();
    let refresh = tokens["refresh_token"].as_str().unwrap().to_string();
    // The access token works at the gateway, over h2 and HTTP/1.1.
    let answer = gw
        .post(Some(&access), &add_or_update(&access, vec![endpoint("a", "A")]))
        .await;
    assert_eq!(answer.status, 202, "{:?}", answer.body);
    let (status, _, _) = post_http1(
        &sim,
        Some(&access),
        add_or_update(&access, vec![endpoint("b", "B")]).to_string(),
    )
    .await;
    assert_eq!(status, 202);
    assert_eq!(endpoint_ids(&sim, "u1").await, ["a", "b"]);
    // The code cannot be used twice.
    let (status, err) = lwa_token(&sim, &[("grant_type", "authorization_code"), ("code", &code)]).await;
    assert_eq!(status, 400, "{err}");
    assert_eq!(err["error"], "invalid_grant");
    assert!(
        err["error_description"].as_str().unwrap().contains("already used"),
        "{err}"
    );
    // The refresh token gives a new, working access token (over HTTP/1.1).
    let (status, again) = lwa_token(&sim, &[("grant_type", "refresh_token"), ("refresh_token", &refresh)]).await;
    assert_eq!(status, 200, "{again}");
    let fresh = again["access_token"].as_str().unwrap();
    assert_ne!(fresh, access);
    assert_eq!(again["refresh_token"], refresh.as_str());
    let (status, _, _) = post_http1(
        &sim,
        Some(fresh),
        add_or_update(fresh, vec![endpoint("c", "C")]).to_string(),
    )
    .await;
    assert_eq!(status, 202);
    // The journal names the user the token stands for.
    let (req, _) = journal_pair(&sim, |e| {
        e["body"]["message"]["event"]["payload"]["scope"]["token"] == fresh
    })
    .await;
    assert_eq!(req["body"]["user"], "u1");
    sim.stop().await;
}

#[tokio::test]
async fn a_skill_with_client_credentials_must_present_them() {
    let sim = sim().await;
    let code = sim.handle.state.smarthome.grants.mint_code("u4");
    let swap = |secret: &'static str| {
        let code = code.clone();
        let sim = &sim;
        async move {
            lwa_token(
                sim,
                &[
                    ("grant_type", "authorization_code"),
                    ("code", &code),
                    ("client_id", "sk-client"),
                    ("client_secret", secret),
                ],
            )
            .await
        }
    };
    let (status, err) = swap("wrong").await;
    assert_eq!(status, 401, "{err}");
    assert_eq!(err["error"], "invalid_client");
    assert!(err["error_description"].as_str().unwrap().contains("secure"), "{err}");
    // The refused attempt did not spend the code.
    let (status, tokens) = swap("sk-secret").await;
    assert_eq!(status, 200, "{tokens}");
    let refresh = tokens["refresh_token"].as_str().unwrap();
    let (status, err) = lwa_token(&sim, &[("grant_type", "refresh_token"), ("refresh_token", refresh)]).await;
    assert_eq!(status, 401, "refresh needs the credentials too: {err}");
    let (status, _) = lwa_token(
        &sim,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh),
            ("client_id", "sk-client"),
            ("client_secret", "sk-secret"),
        ],
    )
    .await;
    assert_eq!(status, 200);
    sim.stop().await;
}

#[tokio::test]
async fn an_expired_credential_error_response_unlinks_the_account() {
    let sim = sim().await;
    let mut gw = H2Gateway::connect(&sim).await;
    let code = sim.handle.state.smarthome.grants.mint_code("u1");
    let (_, tokens) = lwa_token(&sim, &[("grant_type", "authorization_code"), ("code", &code)]).await;
    let access = tokens["access_token"].as_str().unwrap().to_string();
    let refresh = tokens["refresh_token"].as_str().unwrap().to_string();
    assert_eq!(
        gw.post(Some(&access), &add_or_update(&access, vec![endpoint("a", "A")]))
            .await
            .status,
        202
    );
    // A directive to `a` was answered with DeferredResponse (as the
    // directive side records it); the skill now answers it with an error.
    sim.handle.state.smarthome.registry.defer(
        "u1",
        "corr-1",
        avs_sim::smarthome::registry::Pending {
            endpoint: Some("a".into()),
            namespace: "Alexa.PowerController".into(),
            name: "TurnOn".into(),
            sent: avs_sim::clock::now(),
        },
    );
    let doc = error_response(&access, "a", "corr-1", "EXPIRED_AUTHORIZATION_CREDENTIAL");
    let answer = gw.post(Some(&access), &doc).await;
    assert_eq!(answer.status, 202, "{:?}", answer.body);
    let (req, resp) = journal_pair(&sim, |e| e["body"]["message"] == doc).await;
    assert_eq!(req["body"]["correlationToken"], "corr-1");
    assert!(
        resp["body"]["description"].as_str().unwrap().contains("unlinked"),
        "{resp}"
    );
    assert!(!sim.handle.state.smarthome.registry.is_pending("u1", "corr-1"));
    // Alexa discarded the tokens: the access token is refused, the refresh token too.
    let answer = gw
        .post(Some(&access), &add_or_update(&access, vec![endpoint("b", "B")]))
        .await;
    let why = assert_exception(answer.status, &answer.json(), 401, "INVALID_ACCESS_TOKEN_EXCEPTION");
    assert!(why.contains("unlinked"), "{why}");
    let (status, err) = lwa_token(&sim, &[("grant_type", "refresh_token"), ("refresh_token", &refresh)]).await;
    assert_eq!(status, 400, "{err}");
    assert_eq!(err["error"], "invalid_grant");
    assert!(err["error_description"].as_str().unwrap().contains("unlinked"), "{err}");
    // The declared gateway token is config's word and stays.
    let (status, _, _) = post_http1(&sim, Some(U1), add_or_update(U1, vec![endpoint("b", "B")]).to_string()).await;
    assert_eq!(status, 202);
    sim.stop().await;
}
