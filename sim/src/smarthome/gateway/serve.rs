//! `POST /v3/events`: one skill event in, 202 or a `System.Exception` out.
//!
//! The body is read first, with a bound, so that the journal's request entry
//! (recorded before any check can fail) shows what was sent; then the checks
//! run in the gateway's order: token, skill enabled, send-events permission,
//! pace, size, JSON, endpoint count, the rules, and the registry merge.

use super::GatewayError;
use super::apply;
use crate::avs::connection::Connection;
use crate::journal::{Face, Kind, Record};
use crate::smarthome::grants::GrantError;
use crate::smarthome::judge::{self, Finding};
use crate::state::State;
use axum::body::Body;
use axum::extract::{Request, State as AxState};
use axum::response::{IntoResponse, Response};
use bytes::{Bytes, BytesMut};
use http::StatusCode;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

/// Largest event body the gateway takes: 256 KB (reference rule 22).
pub const MAX_BODY: usize = 256 * 1024;

/// Most endpoints one AddOrUpdateReport or DeleteReport may carry (rule 22).
pub const MAX_ENDPOINTS: usize = 300;

/// After refusing an over-long HTTP/1.1 body, the rest is read and thrown
/// away (up to this much, for at most `DRAIN_FOR`) so that the client, still
/// uploading, gets to read the 413 instead of a connection reset. HTTP/2
/// needs none of this: the stream is reset with NO_ERROR after the answer.
const DRAIN_MAX: u64 = 16 * 1024 * 1024;
const DRAIN_FOR: Duration = Duration::from_secs(5);

/// What reading the body gave.
enum Read {
    Whole(Bytes),
    /// Over `MAX_BODY`: only `read` bytes were taken (0 when the declared
    /// length already said so); `rest` is the unread remainder.
    TooLarge {
        read: usize,
        declared: Option<u64>,
        rest: Body,
    },
    Failed(String),
}

/// Read at most `MAX_BODY` bytes: a chunk that would go beyond is not kept.
async fn read_bounded(mut body: Body, declared: Option<u64>) -> Read {
    if declared.is_some_and(|n| n > MAX_BODY as u64) {
        return Read::TooLarge {
            read: 0,
            declared,
            rest: body,
        };
    }
    let mut buf = BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = match frame {
            Ok(f) => f,
            Err(e) => return Read::Failed(format!("the request body could not be read: {e}")),
        };
        let Ok(data) = frame.into_data() else { continue };
        let read = buf.len().saturating_add(data.len());
        if read > MAX_BODY {
            return Read::TooLarge {
                read,
                declared,
                rest: body,
            };
        }
        buf.extend_from_slice(&data);
    }
    Read::Whole(buf.freeze())
}

/// Read and discard what is left of a refused HTTP/1.1 upload, bounded.
fn drain(state: &Arc<State>, mut rest: Body) {
    let shutdown = state.shutdown.clone();
    tokio::spawn(async move {
        let discard = async {
            let mut seen = 0u64;
            while let Some(Ok(frame)) = rest.frame().await {
                if let Ok(data) = frame.into_data() {
                    seen = seen.saturating_add(data.len() as u64);
                    if seen > DRAIN_MAX {
                        break;
                    }
                }
            }
        };
        tokio::select! {
            _ = tokio::time::timeout(DRAIN_FOR, discard) => {}
            _ = shutdown.cancelled() => {}
        }
    });
}

/// What the request entry and the checks need from the headers.
struct Caller {
    bearer: Option<String>,
    /// `authenticate`'s verdict on the bearer token.
    user: Option<Result<String, GrantError>>,
}

/// The gateway's verdict before the journal's response entry.
struct Verdict {
    result: Result<String, GatewayError>,
    findings: Vec<Finding>,
}

/// The axum handler for `/v3/events` (any method: the others are refused
/// with the gateway's own 400, journaled like the rest).
pub async fn events(
    AxState(state): AxState<Arc<State>>,
    conn: Option<axum::Extension<Arc<Connection>>>,
    req: Request,
) -> Response {
    let conn = conn.map(|axum::Extension(c)| c);
    let (parts, body) = req.into_parts();
    let declared = parts
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let bearer = crate::lwa::tokens::bearer(&parts.headers, false).map(str::to_string);
    let caller = Caller {
        user: bearer.as_deref().map(|b| state.smarthome.grants.authenticate(b)),
        bearer,
    };
    let mut read = read_bounded(body, declared).await;
    if let Read::TooLarge { rest, .. } = &mut read {
        let rest = std::mem::replace(rest, Body::empty());
        if parts.version < http::Version::HTTP_2 {
            drain(&state, rest);
        }
    }
    let parsed: Option<Result<Value, String>> = match &read {
        Read::Whole(bytes) => Some(serde_json::from_slice(bytes).map_err(|e| e.to_string())),
        _ => None,
    };
    let user = caller.user.as_ref().and_then(|u| u.as_ref().ok()).cloned();
    let request_id = record_request(&state, conn.as_deref(), &parts, user.as_deref(), &read, parsed.as_ref());
    let verdict = decide(&state, &parts.method, &caller, &read, parsed);
    let (status, code, description) = match &verdict.result {
        Ok(description) => (StatusCode::ACCEPTED, None, description.clone()),
        Err(e) => (e.status(), Some(e.code().to_string()), e.to_string()),
    };
    let summary = match &code {
        None => status.as_u16().to_string(),
        Some(code) => format!("{} {code}", status.as_u16()),
    };
    let mut record = Record::new(Face::Gateway, Kind::Response, summary).body(json!({
        "status": status.as_u16(),
        "code": code,
        "description": description,
        "findings": verdict.findings,
        "request": request_id,
    }));
    if let Some(c) = &conn {
        record = record.connection(c.id);
    }
    state.journal.record(record);
    match verdict.result {
        Ok(_) => StatusCode::ACCEPTED.into_response(),
        Err(e) => e.into_response(),
    }
}

/// The journal's request entry: who sent what, recorded before any check.
fn record_request(
    state: &State,
    conn: Option<&Connection>,
    parts: &http::request::Parts,
    user: Option<&str>,
    read: &Read,
    parsed: Option<&Result<Value, String>>,
) -> u64 {
    let doc = parsed.and_then(|p| p.as_ref().ok());
    let field = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_string);
    let namespace = field(doc.map(|d| &d["event"]["header"]["namespace"]));
    let name = field(doc.map(|d| &d["event"]["header"]["name"]));
    let endpoint = field(doc.map(|d| &d["event"]["endpoint"]["endpointId"]));
    let correlation = field(doc.map(|d| &d["event"]["header"]["correlationToken"]));
    // The message as it arrived, spliced into the entry's JSON text below:
    // cloning the parsed tree and serialising it back was ~40% of a
    // ChangeReport's instructions (callgrind, bench/RESULTS.md).
    let verbatim = match (read, doc) {
        (Read::Whole(bytes), Some(_)) => Some(bytes.clone()),
        _ => None,
    };
    let message = match (read, doc) {
        (Read::Whole(_), Some(_)) => Value::Null, // spliced in verbatim
        (_, Some(doc)) => doc.clone(),
        (Read::Whole(bytes), None) => crate::public::body_for_journal(bytes),
        (Read::TooLarge { read, declared, .. }, _) => json!({
            "omitted": format!("the body is over the gateway's {MAX_BODY}-byte limit"),
            "bytes_read": read,
            "content_length": declared,
        }),
        (Read::Failed(why), _) => json!({"omitted": why}),
    };
    let mut summary = format!("{} {}", parts.method, parts.uri.path());
    if let (Some(ns), Some(n)) = (&namespace, &name) {
        summary.push_str(&format!(" {ns}.{n}"));
    }
    if let Some(e) = &endpoint {
        summary.push_str(&format!(" {e}"));
    }
    summary.push_str(&match user {
        Some(u) => format!(" (user {u})"),
        None => " (no user)".to_string(),
    });
    let mut head = json!({
        "user": user,
        "namespace": namespace,
        "name": name,
        "endpoint": endpoint,
        "correlationToken": correlation,
    });
    let record = Record::new(Face::Gateway, Kind::Request, summary);
    let mut record = match verbatim.and_then(|bytes| with_message(&head, &bytes)) {
        Some(text) => record.shared_body(crate::journal::Body::json_text(text)),
        None => {
            head["message"] = message;
            record.body(head)
        }
    };
    if let Some(c) = conn {
        record = record.connection(c.id);
    }
    state.journal.record(record)
}

/// The object `head` as JSON text with a last key `"message"` whose value is
/// `raw`, the request body, which parsed as JSON (so the text stays valid).
fn with_message(head: &Value, raw: &[u8]) -> Option<Bytes> {
    let mut text = serde_json::to_vec(head).ok()?;
    if text.pop() != Some(b'}') {
        return None;
    }
    if text.len() > 1 {
        text.push(b',');
    }
    text.extend_from_slice(br#""message":"#);
    text.extend_from_slice(raw);
    text.push(b'}');
    Some(Bytes::from(text))
}

/// Every check, in the gateway's order, then the registry merge.
fn decide(
    state: &State,
    method: &http::Method,
    caller: &Caller,
    read: &Read,
    parsed: Option<Result<Value, String>>,
) -> Verdict {
    let refuse = |e: GatewayError| Verdict {
        result: Err(e),
        findings: Vec::new(),
    };
    if method != http::Method::POST {
        return refuse(GatewayError::InvalidRequest(format!(
            "the event gateway takes POST, not {method}"
        )));
    }
    let user = match (&caller.bearer, &caller.user) {
        (None, _) | (_, None) => {
            return refuse(GatewayError::InvalidAccessToken(
                "no access token: send Authorization: Bearer <token from LWA or the user's gateway_token>".into(),
            ));
        }
        (Some(_), Some(Err(GrantError::Expired))) => {
            return refuse(GatewayError::InvalidAccessToken(
                "the access token has expired: refresh it at /auth/o2/token (grant_type=refresh_token)".into(),
            ));
        }
        (Some(_), Some(Err(GrantError::Unlinked))) => {
            return refuse(GatewayError::InvalidAccessToken(
                "the access token was discarded when the account was unlinked (an ErrorResponse said EXPIRED_AUTHORIZATION_CREDENTIAL or INVALID_AUTHORIZATION_CREDENTIAL)".into(),
            ));
        }
        (Some(_), Some(Err(_))) => {
            return refuse(GatewayError::InvalidAccessToken(
                "unknown access token: it was not minted by LWA for a skill (or was discarded when the account was unlinked) and is no user's gateway_token".into(),
            ));
        }
        (Some(_), Some(Ok(user))) => user.as_str(),
    };
    if !state.smarthome.is_enabled(user) {
        return refuse(GatewayError::SkillDisabled(format!(
            "user {user:?} has disabled the skill"
        )));
    }
    let skill = state
        .config
        .users
        .iter()
        .find(|u| u.id == user)
        .and_then(|u| state.config.skills.iter().find(|s| s.id == u.skill));
    match skill {
        Some(s) if s.send_events => {}
        Some(s) => {
            return refuse(GatewayError::InsufficientPermission(format!(
                "skill {:?} does not have the \"send Alexa events\" permission (send_events = false)",
                s.id
            )));
        }
        None => {
            return refuse(GatewayError::InsufficientPermission(format!(
                "user {user:?} has no declared skill"
            )));
        }
    }
    if !state.smarthome.throttle.admit(user) {
        let s = &state.config.smarthome;
        return refuse(GatewayError::Throttling(format!(
            "user {user:?} is over {} events per second (burst {})",
            s.events_per_second, s.burst
        )));
    }
    match read {
        Read::Whole(_) => {}
        Read::TooLarge { declared, .. } => {
            let size = match declared {
                Some(n) => format!("{n} bytes"),
                None => format!("more than {MAX_BODY} bytes"),
            };
            return refuse(GatewayError::TooLarge(format!(
                "the body is {size}; the gateway takes at most {MAX_BODY} (256 KB)"
            )));
        }
        Read::Failed(why) => return refuse(GatewayError::InvalidRequest(why.clone())),
    }
    let body = match parsed {
        Some(Ok(v)) => v,
        Some(Err(e)) => {
            return refuse(GatewayError::InvalidRequest(format!("the body is not valid JSON: {e}")));
        }
        None => return refuse(GatewayError::InvalidRequest("the body is missing".into())),
    };
    if let Some(n) = body["event"]["payload"]["endpoints"]
        .as_array()
        .map(Vec::len)
        .filter(|n| *n > MAX_ENDPOINTS)
    {
        return refuse(GatewayError::TooLarge(format!(
            "payload.endpoints has {n} endpoints; at most {MAX_ENDPOINTS} per request"
        )));
    }
    let registry = &state.smarthome.registry;
    let known = |id: &str| registry.declaration(user, id);
    let pending = |c: &str| registry.pending(user, c).map(|p| p.endpoint);
    let ctx = judge::Context {
        bearer: caller.bearer.as_deref().unwrap_or(""),
        known: &known,
        pending: &pending,
        received: Some(crate::clock::wall()),
        mode: state.config.smarthome.validation,
    };
    let event = judge::event(&body, &ctx);
    if let Some(f) = event.first_error() {
        let e = GatewayError::InvalidRequest(format!("rule {} at {}: {}", f.rule, f.pointer, f.message));
        return Verdict {
            result: Err(e),
            findings: event.findings,
        };
    }
    let result = apply::apply(state, user, &event.kind);
    Verdict {
        result,
        findings: event.findings,
    }
}

/// Journal a gateway request a fault rule answered (or held, or reset)
/// before the handler saw it, in the gateway's own shape: a request entry
/// naming the user, and with `status`, the answer the rule gave. So
/// `expect_gateway_event` and the user's conformance view see it too.
pub fn journal_faulted(
    state: &State,
    conn: &Connection,
    request: (&http::Method, &http::HeaderMap),
    stream: Option<u32>,
    injected: Option<(u16, Option<String>)>,
    rule: &str,
) {
    let (method, headers) = request;
    let user = crate::lwa::tokens::bearer(headers, false).and_then(|b| state.smarthome.grants.authenticate(b).ok());
    let summary = format!(
        "{method} {} ({}; fault rule {rule})",
        super::PATH,
        user.as_deref().map_or("no user".to_string(), |u| format!("user {u}"))
    );
    let mut record = Record::new(Face::Gateway, Kind::Request, summary).body(json!({
        "user": user,
        "namespace": null,
        "name": null,
        "endpoint": null,
        "correlationToken": null,
        "message": {"omitted": format!("not read: fault rule {rule} acted first")},
    }));
    if let Some(s) = stream {
        record = record.stream(s);
    }
    let request_id = conn.journal(state, record);
    if let Some((status, code)) = injected {
        let e = GatewayError::Injected {
            status,
            code,
            description: format!("injected by fault rule {rule}"),
        };
        let record = Record::new(Face::Gateway, Kind::Response, format!("{status} {}", e.code())).body(json!({
            "status": status,
            "code": e.code(),
            "description": e.to_string(),
            "findings": [],
            "request": request_id,
        }));
        conn.journal(state, record);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The spliced entry is valid JSON holding the body as sent (its own
    /// whitespace included) beside the summary fields.
    #[test]
    fn the_message_is_spliced_in_verbatim() {
        let raw = br#"{ "event": {"header": {"name": "ChangeReport"}}, "n": [1, 2.5] }"#;
        let head = json!({"user": "u", "name": "ChangeReport", "endpoint": null});
        let text = with_message(&head, raw).unwrap();
        let doc: Value = serde_json::from_slice(&text).unwrap();
        assert_eq!(doc["user"], "u");
        assert_eq!(doc["endpoint"], Value::Null);
        assert_eq!(doc["message"], serde_json::from_slice::<Value>(raw).unwrap());
        let empty = with_message(&json!({}), b"[]").unwrap();
        assert_eq!(&empty[..], br#"{"message":[]}"#);
        assert!(with_message(&json!([1]), b"{}").is_none(), "only an object takes a key");
    }
}
