//! Judging a skill's answer to a directive (reference smarthome.md §2 and
//! §4 rules 1–3, 26–28, 30, 31): the answer kind must fit the directive,
//! the correlationToken and endpointId are echoed, ErrorResponse carries a
//! known type and a message, and reported properties are well formed.

use super::interfaces::{ERROR_TYPES, error_types};
use super::{Dropped, Finding, Mode, Report, anchor, properties, version_and_id};
use serde::Serialize;
use serde_json::Value;

/// What kind of answer the skill gave.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind")]
pub enum AnswerKind {
    /// `Alexa` / `Response`; also the documented interface success answers
    /// (`Alexa.SceneController` / `ActivationStarted`, `DeactivationStarted`;
    /// `Alexa.CameraStreamController` / `Response`).
    Response,
    /// `Alexa` / `StateReport` (to ReportState).
    StateReport,
    /// `Alexa` / `DeferredResponse`: the real answer comes via the gateway.
    DeferredResponse {
        #[serde(rename = "estimatedDeferralInSeconds", skip_serializing_if = "Option::is_none")]
        estimated_seconds: Option<u64>,
    },
    /// `Alexa` (or an interface) / `ErrorResponse`, with its `payload.type`.
    ErrorResponse {
        #[serde(rename = "type")]
        error_type: String,
        message: String,
    },
    /// `Alexa.Authorization` / `AcceptGrant.Response`.
    AcceptGrantResponse,
    /// A Discover.Response (the directive was Discover; judged by
    /// `discovery`, whose verdict this carries).
    DiscoverResponse {
        accepted: Vec<String>,
        dropped: Vec<Dropped>,
    },
    /// Neither of the above (findings say why).
    Unknown,
}

/// The verdict on one answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Answer {
    #[serde(flatten)]
    pub kind: AnswerKind,
    pub findings: Vec<Finding>,
    /// Well-formed `context.properties` (to update the registry).
    pub properties: Vec<Value>,
}

impl Answer {
    /// Whether Alexa would reject it.
    pub fn rejected(&self) -> bool {
        self.findings.iter().any(|f| f.severity == super::Severity::Error)
    }
}

/// What the directive asked, which decides the answers that fit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Asked {
    Discover,
    AcceptGrant,
    ReportState,
    Control,
}

fn asked(directive: &Value) -> Asked {
    let h = &directive["directive"]["header"];
    match (h["namespace"].as_str(), h["name"].as_str()) {
        (Some("Alexa.Discovery"), Some("Discover")) => Asked::Discover,
        (Some("Alexa.Authorization"), Some("AcceptGrant")) => Asked::AcceptGrant,
        (Some("Alexa"), Some("ReportState")) => Asked::ReportState,
        _ => Asked::Control,
    }
}

/// Judge `answer` to `directive`. `declared` is the endpoint's declaration
/// in the registry, when Alexa knows it (undeclared reported properties warn).
pub fn answer(answer: &Value, directive: &Value, declared: Option<&Value>, mode: Mode) -> Answer {
    let asked = asked(directive);
    if asked == Asked::Discover {
        let d = super::discovery(answer, mode);
        return Answer {
            kind: AnswerKind::DiscoverResponse {
                accepted: d.accepted,
                dropped: d.dropped,
            },
            findings: d.findings,
            properties: Vec::new(),
        };
    }
    let mut r = Report::new(mode);
    let kind = classify(answer);
    fits(&mut r, &kind, asked, answer);
    if answer["event"]["header"].is_object() {
        version_and_id(&mut r, &answer["event"]["header"]);
    }
    echoes(&mut r, &kind, answer, directive);
    let properties = body(&mut r, &kind, answer, asked);
    if let Some(decl) = declared {
        properties::declared(
            &mut r,
            decl,
            answer.pointer("/context/properties"),
            "/context/properties",
        );
    }
    anchor(answer, &mut r.findings);
    Answer {
        kind,
        findings: r.findings,
        properties,
    }
}

/// The answer's kind from its header.
fn classify(answer: &Value) -> AnswerKind {
    let h = &answer["event"]["header"];
    let text = |p: &str| answer.pointer(p).and_then(Value::as_str).unwrap_or("").to_string();
    match (h["namespace"].as_str(), h["name"].as_str()) {
        (Some("Alexa"), Some("Response"))
        | (Some("Alexa.SceneController"), Some("ActivationStarted" | "DeactivationStarted"))
        | (Some("Alexa.CameraStreamController"), Some("Response")) => AnswerKind::Response,
        (Some("Alexa"), Some("StateReport")) => AnswerKind::StateReport,
        (Some("Alexa"), Some("DeferredResponse")) => AnswerKind::DeferredResponse {
            estimated_seconds: answer
                .pointer("/event/payload/estimatedDeferralInSeconds")
                .and_then(Value::as_u64),
        },
        (Some(_), Some("ErrorResponse")) => AnswerKind::ErrorResponse {
            error_type: text("/event/payload/type"),
            message: text("/event/payload/message"),
        },
        (Some("Alexa.Authorization"), Some("AcceptGrant.Response")) => AnswerKind::AcceptGrantResponse,
        _ => AnswerKind::Unknown,
    }
}

/// Rule 1: the answer is one Alexa takes for what it asked.
fn fits(r: &mut Report, kind: &AnswerKind, asked: Asked, answer: &Value) {
    let ok = match (asked, kind) {
        (Asked::AcceptGrant, AnswerKind::AcceptGrantResponse) => true,
        (Asked::AcceptGrant, AnswerKind::ErrorResponse { .. }) => {
            answer["event"]["header"]["namespace"] == "Alexa.Authorization"
        }
        (Asked::ReportState, AnswerKind::StateReport | AnswerKind::ErrorResponse { .. }) => true,
        (
            Asked::Control,
            AnswerKind::Response | AnswerKind::DeferredResponse { .. } | AnswerKind::ErrorResponse { .. },
        ) => true,
        _ => false,
    };
    if !ok {
        let want = match asked {
            Asked::AcceptGrant => "Alexa.Authorization AcceptGrant.Response or ErrorResponse",
            Asked::ReportState => "Alexa StateReport or ErrorResponse",
            _ => "Alexa Response, DeferredResponse or ErrorResponse",
        };
        let h = &answer["event"]["header"];
        r.error(
            "/event/header/name".into(),
            "1 header",
            format!(
                "the directive is answered with {want}, got {} {}",
                h["namespace"], h["name"]
            ),
        );
    }
}

/// Rule 30: the correlationToken and endpointId of the directive come back.
fn echoes(r: &mut Report, kind: &AnswerKind, answer: &Value, directive: &Value) {
    let d = &directive["directive"];
    if let Some(token) = d["header"]["correlationToken"].as_str()
        && answer["event"]["header"]["correlationToken"] != token
    {
        r.error(
            "/event/header/correlationToken".into(),
            "30 correlationToken",
            format!(
                "the answer must echo the directive's correlationToken {token:?}, got {}",
                answer["event"]["header"]["correlationToken"]
            ),
        );
    }
    let carries_endpoint = matches!(
        kind,
        AnswerKind::Response | AnswerKind::StateReport | AnswerKind::ErrorResponse { .. }
    );
    if let Some(id) = d["endpoint"]["endpointId"].as_str()
        && carries_endpoint
        && answer["event"]["endpoint"]["endpointId"] != id
    {
        r.error(
            "/event/endpoint/endpointId".into(),
            "30 endpointId",
            format!(
                "event.endpoint.endpointId must be the directive's {id:?}, got {}",
                answer["event"]["endpoint"]["endpointId"]
            ),
        );
    }
}

/// The kind's own payload and the reported properties (kept when well formed).
fn body(r: &mut Report, kind: &AnswerKind, answer: &Value, asked: Asked) -> Vec<Value> {
    match kind {
        AnswerKind::ErrorResponse { .. } => {
            error_response(r, answer, asked == Asked::AcceptGrant);
            Vec::new()
        }
        AnswerKind::DeferredResponse { .. } => {
            deferral(r, answer);
            Vec::new()
        }
        AnswerKind::Response | AnswerKind::StateReport => {
            let at = "/context/properties";
            properties::list(r, answer.pointer(at), at, false)
        }
        _ => Vec::new(),
    }
}

/// An ErrorResponse's `payload.type` (from its namespace's enum) and
/// `payload.message`, and rule 31 (a `context` only the schema refused).
pub(super) fn error_response(r: &mut Report, doc: &Value, accept_grant: bool) {
    let ns = doc["event"]["header"]["namespace"].as_str().unwrap_or_default();
    let p = &doc["event"]["payload"];
    let at = "/event/payload/type";
    match (p["type"].as_str(), error_types(ns)) {
        (None, _) => r.error(
            at.into(),
            "1 ErrorResponse type",
            "payload.type is required, a string".into(),
        ),
        (Some(t), _) if accept_grant && t != "ACCEPT_GRANT_FAILED" => r.error(
            at.into(),
            "1 ErrorResponse type",
            format!("an AcceptGrant ErrorResponse has type ACCEPT_GRANT_FAILED, got {t:?}"),
        ),
        (Some(t), Some(extra)) if !ERROR_TYPES.contains(&t) && !extra.contains(&t) => r.error(
            at.into(),
            "1 ErrorResponse type",
            format!("{t:?} is not an ErrorResponse type of {ns}"),
        ),
        (Some(t), None) => {
            r.warn(
                "/event/header/namespace".into(),
                "1 ErrorResponse type",
                format!("{ns:?} is not an ErrorResponse namespace known here"),
            );
            if !ERROR_TYPES.contains(&t) {
                r.warn(
                    at.into(),
                    "1 ErrorResponse type",
                    format!("{t:?} is not a known ErrorResponse type"),
                );
            }
        }
        _ => {}
    }
    if !p["message"].is_string() {
        r.error(
            "/event/payload/message".into(),
            "1 ErrorResponse message",
            "payload.message is required, a string (for logs)".into(),
        );
    }
    if doc.get("context").is_some() {
        r.strict_only(
            "/context".into(),
            "31 ErrorResponse context",
            "an ErrorResponse with context: the docs allow it, the schema refused it".into(),
        );
    }
}

/// A DeferredResponse's optional `estimatedDeferralInSeconds`.
pub(super) fn deferral(r: &mut Report, answer: &Value) {
    let at = "/event/payload/estimatedDeferralInSeconds";
    if let Some(v) = answer.pointer(at)
        && !v.is_u64()
    {
        r.error(
            at.into(),
            "1 DeferredResponse payload",
            format!("estimatedDeferralInSeconds must be a non-negative integer, got {v}"),
        );
    }
}
