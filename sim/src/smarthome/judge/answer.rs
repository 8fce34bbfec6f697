//! Judging a skill's answer to a control directive, ReportState or
//! AcceptGrant (reference smarthome.md §2, rules 1–3, 26–28, 30, 31).
//!
//! FIRST CUT: only the header is checked; the rest is being written.

use super::{Finding, Mode, Report};
use serde::Serialize;
use serde_json::Value;

/// What kind of answer the skill gave.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind")]
pub enum AnswerKind {
    /// `Alexa` / `Response`.
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

/// Judge `answer` to `directive`. `declared` is the endpoint's declaration
/// in the registry, when Alexa knows it (for property names and value types).
pub fn answer(answer: &Value, directive: &Value, declared: Option<&Value>, mode: Mode) -> Answer {
    let _ = (directive, declared);
    let mut r = Report {
        mode,
        findings: Vec::new(),
    };
    let h = &answer["event"]["header"];
    let kind = match (h["namespace"].as_str(), h["name"].as_str()) {
        (Some("Alexa"), Some("Response")) => AnswerKind::Response,
        (Some("Alexa"), Some("StateReport")) => AnswerKind::StateReport,
        (Some("Alexa"), Some("DeferredResponse")) => AnswerKind::DeferredResponse {
            estimated_seconds: answer
                .pointer("/event/payload/estimatedDeferralInSeconds")
                .and_then(Value::as_u64),
        },
        (Some(_), Some("ErrorResponse")) => AnswerKind::ErrorResponse {
            error_type: answer["event"]["payload"]["type"].as_str().unwrap_or("").into(),
            message: answer["event"]["payload"]["message"].as_str().unwrap_or("").into(),
        },
        (Some("Alexa.Authorization"), Some("AcceptGrant.Response")) => AnswerKind::AcceptGrantResponse,
        _ => AnswerKind::Unknown,
    };
    if kind == AnswerKind::Unknown {
        r.error(
            "/event/header".into(),
            "1 header",
            "not an answer Alexa accepts here".into(),
        );
    }
    Answer {
        kind,
        findings: r.findings,
        properties: Vec::new(),
    }
}
