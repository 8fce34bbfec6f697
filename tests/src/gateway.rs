//! Talking to the event gateway as a smart home skill does: `POST
//! /v3/events` over TLS (ALPN h2, trusting the generated CA) or plain
//! HTTP/1.1, the events a skill posts, LWA's grant exchange, and the
//! registry as the control API shows it.

use crate::TestSim;
use crate::device::{Answer, read_whole, tls_stream};
use avs_sim::Config;
use avs_sim::smarthome::{SkillDecl, UserDecl};
use bytes::Bytes;
use h2::client::SendRequest;
use serde_json::{Value, json};

/// The gateway's path.
pub const PATH: &str = "/v3/events";

/// A `[[users]] gateway_token` per user of [`skills_and_users`].
pub const U1: &str = "gw-token-u1";
pub const U2: &str = "gw-token-u2";
pub const U3: &str = "gw-token-u3";

/// Skills and users for gateway tests: `u1` (skill `lights`), `u2` (skill
/// `lights`, disabled), `u3` (skill `mute`, without the send-events
/// permission), `u4` (skill `secure`, whose LWA grants need client
/// `sk-client` / `sk-secret`; no gateway token).
pub fn skills_and_users(c: &mut Config) {
    let skill = |id: &str| SkillDecl {
        command: Some(vec!["true".into()]),
        ..SkillDecl::new(id)
    };
    c.skills = vec![
        skill("lights"),
        SkillDecl {
            send_events: false,
            ..skill("mute")
        },
        SkillDecl {
            client_id: Some("sk-client".into()),
            client_secret: Some("sk-secret".into()),
            ..skill("secure")
        },
    ];
    let user = |id: &str, skill: &str, gateway_token: Option<&str>, enabled: bool| UserDecl {
        id: id.into(),
        skill: skill.into(),
        token: format!("user-token-{id}"),
        gateway_token: gateway_token.map(str::to_string),
        enabled,
        partition: None,
        user_id: None,
    };
    c.users = vec![
        user("u1", "lights", Some(U1), true),
        user("u2", "lights", Some(U2), false),
        user("u3", "mute", Some(U3), true),
        user("u4", "secure", None, true),
    ];
}

/// A skill's HTTP/2 connection to the gateway over TLS (ALPN h2).
pub struct H2Gateway {
    send: SendRequest<Bytes>,
}

impl H2Gateway {
    pub async fn connect(sim: &TestSim) -> H2Gateway {
        let tls = tls_stream(sim.handle.addrs.avs, &sim.handle.ca)
            .await
            .expect("TLS with ALPN h2");
        let (send, conn) = h2::client::handshake(tls).await.expect("HTTP/2 handshake");
        tokio::spawn(conn);
        H2Gateway { send }
    }

    fn request(method: http::Method, path: &str, token: Option<&str>, content_type: &str) -> http::Request<()> {
        let mut b = http::Request::builder()
            .method(method)
            .uri(format!("https://localhost{path}"))
            .header("content-type", content_type);
        if let Some(t) = token {
            b = b.header("authorization", format!("Bearer {t}"));
        }
        b.body(()).unwrap()
    }

    /// A request with a whole body, read whole.
    pub async fn call(&mut self, path: &str, token: Option<&str>, content_type: &str, body: Bytes) -> Answer {
        let req = Self::request(http::Method::POST, path, token, content_type);
        let (resp, mut stream) = self
            .send
            .clone()
            .ready()
            .await
            .unwrap()
            .send_request(req, body.is_empty())
            .unwrap();
        if !body.is_empty() {
            stream.send_data(body, true).unwrap();
        }
        read_whole(resp).await.expect("an answer")
    }

    /// `POST /v3/events` with `body`.
    pub async fn post(&mut self, token: Option<&str>, body: &Value) -> Answer {
        self.post_bytes(token, Bytes::from(body.to_string())).await
    }

    pub async fn post_bytes(&mut self, token: Option<&str>, body: Bytes) -> Answer {
        self.call(PATH, token, "application/json", body).await
    }

    /// Start `POST /v3/events` whose body stays open.
    pub async fn open(&mut self, token: Option<&str>) -> (h2::client::ResponseFuture, h2::SendStream<Bytes>) {
        let req = Self::request(http::Method::POST, PATH, token, "application/json");
        self.send
            .clone()
            .ready()
            .await
            .unwrap()
            .send_request(req, false)
            .unwrap()
    }
}

/// `POST /v3/events` over plain HTTP/1.1: (status, JSON body or Null, raw body).
pub async fn post_http1(sim: &TestSim, token: Option<&str>, body: impl Into<reqwest::Body>) -> (u16, Value, Bytes) {
    let mut req = sim
        .http
        .post(format!("http://{}{PATH}", sim.handle.addrs.plain))
        .header("content-type", "application/json")
        .body(body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.expect("HTTP/1.1 answer");
    let status = resp.status().as_u16();
    let bytes = resp.bytes().await.unwrap_or_default();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null), bytes)
}

/// Assert a `System.Exception` answer with `status` and `code`; its description.
pub fn assert_exception(status: u16, doc: &Value, want_status: u16, code: &str) -> String {
    assert_eq!(status, want_status, "{doc}");
    assert_eq!(doc["header"]["namespace"], "System", "{doc}");
    assert_eq!(doc["header"]["name"], "Exception", "{doc}");
    assert!(
        doc["header"]["messageId"].as_str().is_some_and(|m| !m.is_empty()),
        "{doc}"
    );
    assert_eq!(doc["payload"]["code"], code, "{doc}");
    doc["payload"]["description"].as_str().unwrap_or("").to_string()
}

/// A valid endpoint: a light with power (reported proactively) and health.
pub fn endpoint(id: &str, name: &str) -> Value {
    let iface = |interface: &str, prop: &str| {
        json!({"type": "AlexaInterface", "interface": interface, "version": "3",
               "properties": {"supported": [{"name": prop}], "proactivelyReported": true, "retrievable": true}})
    };
    json!({
        "endpointId": id,
        "manufacturerName": "Sample Manufacturer",
        "description": "A test light",
        "friendlyName": name,
        "displayCategories": ["LIGHT"],
        "capabilities": [
            {"type": "AlexaInterface", "interface": "Alexa", "version": "3"},
            iface("Alexa.PowerController", "powerState"),
            iface("Alexa.EndpointHealth", "connectivity"),
        ],
    })
}

fn header(namespace: &str, name: &str) -> Value {
    json!({"namespace": namespace, "name": name, "payloadVersion": "3",
           "messageId": uuid::Uuid::new_v4().to_string()})
}

fn scope(token: &str) -> Value {
    json!({"type": "BearerToken", "token": token})
}

/// `Alexa.Discovery` / `AddOrUpdateReport`.
pub fn add_or_update(token: &str, endpoints: Vec<Value>) -> Value {
    json!({"event": {"header": header("Alexa.Discovery", "AddOrUpdateReport"),
                     "payload": {"endpoints": endpoints, "scope": scope(token)}}})
}

/// `Alexa.Discovery` / `DeleteReport`.
pub fn delete_report(token: &str, ids: &[&str]) -> Value {
    let endpoints: Vec<Value> = ids.iter().map(|id| json!({"endpointId": id})).collect();
    json!({"event": {"header": header("Alexa.Discovery", "DeleteReport"),
                     "payload": {"endpoints": endpoints, "scope": scope(token)}}})
}

/// A property object as a skill reports it.
pub fn property(namespace: &str, name: &str, value: Value) -> Value {
    json!({"namespace": namespace, "name": name, "value": value,
           "timeOfSample": "2026-01-01T00:00:00Z", "uncertaintyInMilliseconds": 0})
}

/// `Alexa` / `ChangeReport`: power changed to `power`, connectivity OK.
pub fn change_report(token: &str, endpoint: &str, power: &str) -> Value {
    json!({
        "event": {
            "header": header("Alexa", "ChangeReport"),
            "endpoint": {"scope": scope(token), "endpointId": endpoint},
            "payload": {"change": {"cause": {"type": "PHYSICAL_INTERACTION"},
                                   "properties": [property("Alexa.PowerController", "powerState", json!(power))]}},
        },
        "context": {"properties": [property("Alexa.EndpointHealth", "connectivity", json!({"value": "OK"}))]},
    })
}

/// `Alexa` / `ErrorResponse` answering the directive with `correlation`.
pub fn error_response(token: &str, endpoint: &str, correlation: &str, error_type: &str) -> Value {
    let mut h = header("Alexa", "ErrorResponse");
    h["correlationToken"] = json!(correlation);
    json!({"event": {"header": h,
                     "endpoint": {"scope": scope(token), "endpointId": endpoint},
                     "payload": {"type": error_type, "message": "the customer's credentials are gone"}}})
}

/// The registry of `user` from the control API.
pub async fn registry(sim: &TestSim, user: &str) -> Value {
    let (status, body) = sim.get(&format!("/api/smarthome/users/{user}/endpoints")).await;
    assert_eq!(status, 200, "{body}");
    body
}

/// The endpoint ids the registry holds for `user`.
pub async fn endpoint_ids(sim: &TestSim, user: &str) -> Vec<String> {
    registry(sim, user).await["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["endpointId"].as_str().unwrap().to_string())
        .collect()
}

/// `POST /auth/o2/token` with a form body over plain HTTP/1.1: (status, JSON).
pub async fn lwa_token(sim: &TestSim, form: &[(&str, &str)]) -> (u16, Value) {
    let body = form_body(form);
    let resp = sim
        .http
        .post(format!("http://{}/auth/o2/token", sim.handle.addrs.plain))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// `application/x-www-form-urlencoded`.
pub fn form_body(form: &[(&str, &str)]) -> String {
    let enc = |s: &str| {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    form.iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// The gateway's journal pair (request, response) for the request whose
/// entry satisfies `pred`.
pub async fn journal_pair(sim: &TestSim, mut pred: impl FnMut(&Value) -> bool) -> (Value, Value) {
    let request = sim
        .await_entry(None, |e| e["face"] == "gateway" && e["kind"] == "request" && pred(e))
        .await;
    let id = request["id"].clone();
    let response = sim
        .await_entry(None, |e| {
            e["face"] == "gateway" && e["kind"] == "response" && e["body"]["request"] == id
        })
        .await;
    (request, response)
}
