//! LWA, the Capabilities API and the journal, over real sockets
//! (HTTP/1.1 with reqwest as Python `requests` would, and HTTP/2).

use avs_sim_tests::{DEADLINE, TestSim, event};
use bytes::Bytes;
use http::Method;
use serde_json::{Value, json};

async fn form(sim: &TestSim, path: &str, pairs: &[(&str, &str)]) -> (u16, Value) {
    let body: String = pairs
        .iter()
        .map(|(k, v)| format!("{k}={}", v.replace('|', "%7C").replace(' ', "+")))
        .collect::<Vec<_>>()
        .join("&");
    let resp = sim
        .http
        .post(format!("http://{}{path}", sim.handle.addrs.plain))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

async fn device_of(sim: &TestSim, token: &str) -> String {
    let mut dev = sim.h2c_device(token).await;
    assert_eq!(dev.ping("/ping").await.unwrap(), 204);
    // The ping is journaled before it is answered; the newest ping entry names the device.
    let (_, j) = sim.get("/api/journal?face=avs").await;
    j["entries"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .find(|e| e["summary"] == "GET /ping")
        .unwrap()["device"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn refresh_grant_over_http1_keeps_the_device_id() {
    let sim = TestSim::start(|c| c.lwa.expires_in = 1800).await;
    let (status, a) = form(
        &sim,
        "/auth/o2/token",
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", "Atzr|abc"),
            ("client_id", "c"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{a}");
    assert_eq!(a["token_type"], "bearer");
    assert_eq!(a["expires_in"], 1800);
    assert!(a["access_token"].as_str().unwrap().starts_with("Atza|"));
    assert_eq!(a["refresh_token"], "Atzr|abc");
    // The SDK's upper-case path, and a JSON body as alexa-client sends it.
    let resp = sim
        .http
        .post(format!("http://{}/auth/O2/token", sim.handle.addrs.plain))
        .json(&json!({"grant_type": "refresh_token", "refresh_token": "Atzr|abc", "client_id": "c"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let b: Value = resp.json().await.unwrap();
    assert_ne!(a["access_token"], b["access_token"]);
    let d1 = device_of(&sim, a["access_token"].as_str().unwrap()).await;
    let d2 = device_of(&sim, b["access_token"].as_str().unwrap()).await;
    assert_eq!(d1, d2, "one device per refresh token");
    assert!(d1.starts_with("rt-"));
    let lwa = sim
        .await_entry(None, |e| e["face"] == "lwa" && e["kind"] == "response")
        .await;
    assert_eq!(lwa["device"], d1.as_str());
    sim.stop().await;
}

#[tokio::test]
async fn lwa_over_http2_and_code_based_linking() {
    let sim = TestSim::start(|_| {}).await;
    let mut client = sim.tls_device("").await;
    let scope = r#"{"alexa:all":{"productID":"echo-sim","productInstanceAttributes":{"deviceSerialNumber":"SN1"}}}"#;
    let body = format!(
        "response_type=device_code&client_id=c&scope=alexa%3Aall&scope_data={}",
        scope
            .replace('"', "%22")
            .replace('{', "%7B")
            .replace('}', "%7D")
            .replace(':', "%3A")
    );
    let a = client
        .call(
            Method::POST,
            "/auth/O2/create/codepair",
            Some("application/x-www-form-urlencoded"),
            Bytes::from(body),
        )
        .await
        .unwrap();
    assert_eq!(a.status, 200, "{:?}", a.json());
    let pair = a.json();
    for k in ["user_code", "device_code", "verification_uri"] {
        assert!(pair[k].as_str().is_some_and(|v| !v.is_empty()), "{k}");
    }
    assert_eq!(pair["expires_in"], 600);
    assert_eq!(pair["interval"], 30);
    let body = format!(
        "grant_type=device_code&device_code={}&user_code={}",
        pair["device_code"].as_str().unwrap(),
        pair["user_code"].as_str().unwrap()
    );
    let a = client
        .call(
            Method::POST,
            "/auth/o2/token",
            Some("application/x-www-form-urlencoded"),
            Bytes::from(body.clone()),
        )
        .await
        .unwrap();
    assert_eq!(a.status, 200);
    let tokens = a.json();
    assert_eq!(tokens["token_type"], "bearer");
    assert_eq!(
        device_of(&sim, tokens["access_token"].as_str().unwrap()).await,
        "echo-sim:SN1"
    );
    // Refreshing the code-pair's refresh token keeps the same device.
    let (_, r) = form(
        &sim,
        "/auth/o2/token",
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
        ],
    )
    .await;
    assert_eq!(
        device_of(&sim, r["access_token"].as_str().unwrap()).await,
        "echo-sim:SN1"
    );
    // A code pair is redeemed once.
    let a = client
        .call(
            Method::POST,
            "/auth/o2/token",
            Some("application/x-www-form-urlencoded"),
            Bytes::from(body),
        )
        .await
        .unwrap();
    assert_eq!(a.status, 400);
    assert_eq!(a.json()["error"], "invalid_code_pair");
    sim.stop().await;
}

#[tokio::test]
async fn lwa_errors_are_oauth_bodies() {
    let sim = TestSim::start(|c| c.auth = avs_sim::config::AuthMode::Strict).await;
    let cases: [(&[(&str, &str)], &str); 5] = [
        (&[], "invalid_request"),
        (&[("grant_type", "password")], "unsupported_grant_type"),
        (&[("grant_type", "refresh_token")], "invalid_request"),
        (
            &[("grant_type", "refresh_token"), ("refresh_token", "never-issued")],
            "invalid_grant",
        ),
        (
            &[("grant_type", "device_code"), ("device_code", "x"), ("user_code", "y")],
            "invalid_code_pair",
        ),
    ];
    for (pairs, error) in cases {
        let (status, body) = form(&sim, "/auth/o2/token", pairs).await;
        assert_eq!(status, 400, "{pairs:?}");
        assert_eq!(body["error"], error, "{pairs:?}");
        assert!(body["error_description"].as_str().is_some_and(|d| !d.is_empty()));
    }
    let (status, body) = form(
        &sim,
        "/auth/o2/create/codepair",
        &[
            ("response_type", "device_code"),
            ("client_id", "c"),
            ("scope_data", "{"),
        ],
    )
    .await;
    assert_eq!(status, 400);
    assert!(body["error_description"].as_str().unwrap().contains("scope_data"));
    // In strict mode a token minted by the authorization_code grant is accepted, others are not.
    let (_, t) = form(
        &sim,
        "/auth/o2/token",
        &[
            ("grant_type", "authorization_code"),
            ("code", "c1"),
            ("redirect_uri", "x"),
            ("client_id", "c"),
            ("client_secret", "s"),
        ],
    )
    .await;
    let mut dev = sim.h2c_device(t["access_token"].as_str().unwrap()).await;
    assert_eq!(dev.ping("/ping").await.unwrap(), 204);
    let mut stranger = sim.h2c_device("made-up").await;
    assert_eq!(stranger.ping("/ping").await.unwrap(), 403);
    sim.stop().await;
}

#[tokio::test]
async fn capabilities_with_both_auth_forms_and_validation() {
    let sim = TestSim::start(|_| {}).await;
    let url = format!("http://{}/v1/devices/@self/capabilities", sim.handle.addrs.plain);
    let caps = json!({"envelopeVersion": "20160207", "capabilities": [
        {"type": "AlexaInterface", "interface": "System", "version": "1.1"},
        {"type": "AlexaInterface", "interface": "SpeechRecognizer", "version": "2.1", "configurations": {"wakeWords": []}}]});
    let resp = sim
        .http
        .put(&url)
        .header("x-amz-access-token", "tv")
        .header("accept", "")
        .json(&caps)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    let resp = sim
        .http
        .put(&url)
        .header("authorization", "Bearer radio")
        .json(&caps)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    let d = sim.get("/api/devices/tv").await.1;
    assert_eq!(
        d["capabilities"][1],
        json!({"interface": "SpeechRecognizer", "version": "2.1"})
    );
    let bad = json!({"envelopeVersion": "20160207", "capabilities": [{"type": "AlexaInterface", "version": "1.0"}]});
    let resp = sim
        .http
        .put(&url)
        .header("x-amz-access-token", "tv")
        .json(&bad)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    assert!(
        body["message"].as_str().unwrap().contains("capabilities[0].interface"),
        "{body}"
    );
    let resp = sim.http.put(&url).json(&caps).send().await.unwrap();
    assert_eq!(resp.status(), 403);
    let entry = sim
        .await_entry(Some("tv"), |e| {
            e["face"] == "capabilities" && e["body"]["status"] == 400
        })
        .await;
    assert_eq!(entry["kind"], "response");
    sim.stop().await;
}

#[tokio::test]
async fn journal_is_bounded_counts_evictions_and_writes_jsonl() {
    let dir = avs_sim_tests::temp_dir("journal");
    let file = dir.join("journal.jsonl");
    let f2 = file.clone();
    let sim = TestSim::start(move |c| {
        c.journal.capacity = 5;
        c.journal.file = Some(f2);
    })
    .await;
    let mut dev = sim.h2c_device("j").await;
    for _ in 0..6 {
        assert_eq!(dev.ping("/ping").await.unwrap(), 204);
    }
    let (_, j) = sim.get("/api/journal").await;
    let entries = j["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 5);
    let ids: Vec<u64> = entries.iter().map(|e| e["id"].as_u64().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[1] == w[0] + 1), "{ids:?}");
    let latest = j["latest"].as_u64().unwrap();
    assert_eq!(j["evicted"].as_u64().unwrap(), latest - 5);
    let (_, j) = sim
        .get(&format!("/api/journal?device=j&since={}&limit=2", latest - 4))
        .await;
    assert_eq!(j["entries"].as_array().unwrap().len(), 2);
    drop(dev);
    sim.stop().await;
    // Every entry, evicted or not, is in the file, one JSON document per line.
    let text = std::fs::read_to_string(&file).unwrap();
    let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(
        lines.len() as u64 >= latest,
        "{} lines, latest id {latest}",
        lines.len()
    );
    assert_eq!(lines[0]["id"], 1);
    assert!(lines.iter().any(|e| e["summary"] == "GET /ping" && e["device"] == "j"));
}

#[tokio::test]
async fn journal_wait_holds_until_an_entry_arrives() {
    let sim = TestSim::start(|_| {}).await;
    let latest = sim.get("/api/journal").await.1["latest"].as_u64().unwrap();
    let url = sim.control(&format!("/api/journal?since={latest}&device=late&wait=10s"));
    let waiter = tokio::spawn({
        let http = sim.http.clone();
        async move { http.get(url).send().await.unwrap().json::<Value>().await.unwrap() }
    });
    let mut dev = sim.h2c_device("late").await;
    let _dc = dev.downchannel().await.unwrap();
    let got = tokio::time::timeout(DEADLINE, waiter).await.unwrap().unwrap();
    assert_eq!(got["entries"][0]["device"], "late");
    let ev = event("System", "SynchronizeState", json!({}));
    assert_eq!(dev.event(&ev, None).await.unwrap().status, 204);
    sim.stop().await;
}

#[tokio::test]
async fn http1_on_the_avs_paths_explains_that_http2_is_needed() {
    let sim = TestSim::start(|_| {}).await;
    let resp = sim
        .http
        .get(format!("http://{}/v20160207/directives", sim.handle.addrs.plain))
        .header("authorization", "Bearer x")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    assert!(body["payload"]["description"].as_str().unwrap().contains("HTTP/2"));
    let resp = sim
        .http
        .get(format!("http://{}/ping", sim.handle.addrs.plain))
        .header("authorization", "Bearer x")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    assert!(resp.headers().contains_key("x-amzn-requestid"));
    let resp = sim
        .http
        .get(format!("http://{}/nowhere", sim.handle.addrs.plain))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    let (status, body) = sim.get("/healthz").await;
    assert_eq!((status, body["status"].as_str()), (200, Some("ok")));
    sim.stop().await;
}
