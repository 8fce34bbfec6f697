//! Judging what a skill posts to the event gateway (reference smarthome.md
//! §3, rules 1–3, 6–19 for reported endpoints, 21–31).
//!
//! FIRST CUT: only the header is classified; the rules are being written.

use super::{Dropped, Finding, Mode, Report};
use serde::Serialize;
use serde_json::Value;

/// What the gateway needs to know beyond the message itself.
pub struct Context<'a> {
    /// The `Authorization` bearer token (rule 21: the scope must carry it).
    pub bearer: &'a str,
    /// The declaration of an endpoint Alexa knows for this user (rules 24, 26).
    pub known: &'a dyn Fn(&str) -> Option<Value>,
    /// Whether a deferred directive with this correlationToken waits (rule 30).
    pub pending: &'a dyn Fn(&str) -> bool,
    pub mode: Mode,
}

/// What kind of event it was, with what the registry needs.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind")]
pub enum EventKind {
    AddOrUpdateReport {
        /// Endpoints without errors.
        endpoints: Vec<Value>,
        dropped: Vec<Dropped>,
    },
    DeleteReport {
        ids: Vec<String>,
    },
    ChangeReport {
        endpoint: String,
        /// `payload.change.properties` then `context.properties`.
        properties: Vec<Value>,
    },
    /// An asynchronous `Alexa` / `Response` (after a DeferredResponse).
    Response {
        endpoint: Option<String>,
        correlation: String,
        properties: Vec<Value>,
    },
    ErrorResponse {
        endpoint: Option<String>,
        correlation: String,
        error_type: String,
    },
    DeferredResponse {
        correlation: String,
    },
    /// Any other interface event (e.g. DoorbellPress).
    Other {
        namespace: String,
        name: String,
        endpoint: Option<String>,
    },
}

/// The verdict on one gateway event.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    pub kind: EventKind,
    pub findings: Vec<Finding>,
}

impl Event {
    /// The first error, if Alexa would refuse the event.
    pub fn first_error(&self) -> Option<&Finding> {
        self.findings.iter().find(|f| f.severity == super::Severity::Error)
    }
}

/// Judge a gateway event body.
pub fn event(body: &Value, ctx: &Context<'_>) -> Event {
    let mut r = Report {
        mode: ctx.mode,
        findings: Vec::new(),
    };
    let h = &body["event"]["header"];
    let ns = h["namespace"].as_str().unwrap_or("").to_string();
    let name = h["name"].as_str().unwrap_or("").to_string();
    let endpoint = body["event"]["endpoint"]["endpointId"].as_str().map(str::to_string);
    let correlation = h["correlationToken"].as_str().unwrap_or("").to_string();
    let kind = match (ns.as_str(), name.as_str()) {
        ("Alexa.Discovery", "AddOrUpdateReport") => EventKind::AddOrUpdateReport {
            endpoints: body["event"]["payload"]["endpoints"]
                .as_array()
                .cloned()
                .unwrap_or_default(),
            dropped: Vec::new(),
        },
        ("Alexa.Discovery", "DeleteReport") => EventKind::DeleteReport {
            ids: body["event"]["payload"]["endpoints"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|e| e["endpointId"].as_str().map(str::to_string))
                .collect(),
        },
        ("Alexa", "ChangeReport") => EventKind::ChangeReport {
            endpoint: endpoint.clone().unwrap_or_default(),
            properties: Vec::new(),
        },
        ("Alexa", "Response") => EventKind::Response {
            endpoint,
            correlation,
            properties: Vec::new(),
        },
        ("Alexa", "DeferredResponse") => EventKind::DeferredResponse { correlation },
        (_, "ErrorResponse") => EventKind::ErrorResponse {
            endpoint,
            correlation,
            error_type: body["event"]["payload"]["type"].as_str().unwrap_or("").into(),
        },
        _ => EventKind::Other {
            namespace: ns.clone(),
            name: name.clone(),
            endpoint,
        },
    };
    if ns.is_empty() || name.is_empty() {
        r.error(
            "/event/header".into(),
            "1 header",
            "event.header needs namespace and name".into(),
        );
    }
    Event {
        kind,
        findings: r.findings,
    }
}
