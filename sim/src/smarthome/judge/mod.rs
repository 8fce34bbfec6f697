//! Judging a skill's Discover.Response as Alexa does, rule by rule.
//!
//! Rules and severities come from reference smarthome.md §4 (written from
//! the documentation, never from the official schema, whose licence bars
//! it here: §7). Each finding carries the rule's number and name, a JSON
//! pointer into the answer and a message. Like Alexa, an endpoint with an
//! error is dropped while the others are kept; unlike Alexa, the report
//! says why. `Mode::Strict` turns warnings into errors and applies the
//! schema-era limits.
//!
//! Layout: this file holds the verdict types, the header (rules 1–3) and
//! the Discover.Response envelope (4, 5); `endpoint` judges one declared
//! endpoint (6–12, 15, 18, 19) and `capability` each of its capabilities
//! (13, 14, 16, 17) with the knowledge in `interfaces`; `properties` judges
//! reported property objects (26–28); `answer` a control answer (30, 31)
//! and `event` what a skill posts to the event gateway (21, 23–29).

use serde::Serialize;
use serde_json::Value;
use std::collections::HashSet;

pub mod answer;
mod capability;
mod endpoint;
pub mod event;
mod interfaces;
mod properties;

pub use answer::{Answer, AnswerKind, answer};
pub use event::{Context, Event, EventKind, event};

/// How strictly answers are judged (`[smarthome] validation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// What the documentation requires; what it only recommends warns.
    #[default]
    Default,
    /// Warnings are errors, and the older schema-era limits apply.
    Strict,
}

/// Whether Alexa rejects it or only the documentation recommends against it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// One broken rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub severity: Severity,
    /// JSON pointer (RFC 6901) to the offending value.
    pub pointer: String,
    /// `"6 endpointId"`: the rule's number in the reference and its subject.
    pub rule: &'static str,
    pub message: String,
}

/// The verdict on a Discover.Response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Discovery {
    /// Endpoint ids Alexa would show.
    pub accepted: Vec<String>,
    /// Endpoints Alexa would drop, each with its findings.
    pub dropped: Vec<Dropped>,
    /// Every finding, the kept endpoints' warnings and the answer's own included.
    pub findings: Vec<Finding>,
}

/// An endpoint dropped from discovery, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Dropped {
    #[serde(rename = "endpointId")]
    pub endpoint_id: Option<String>,
    pub findings: Vec<Finding>,
}

/// The display categories of the schema (reference §4).
const CATEGORIES: [&str; 34] = [
    "ACTIVITY_TRIGGER",
    "CAMERA",
    "COMPUTER",
    "CONTACT_SENSOR",
    "DOOR",
    "DOORBELL",
    "EXTERIOR_BLIND",
    "FAN",
    "GAME_CONSOLE",
    "GARAGE_DOOR",
    "INTERIOR_BLIND",
    "LAPTOP",
    "LIGHT",
    "MICROWAVE",
    "MOBILE_PHONE",
    "MOTION_SENSOR",
    "MUSIC_SYSTEM",
    "NETWORK_HARDWARE",
    "OTHER",
    "OVEN",
    "PHONE",
    "SCENE_TRIGGER",
    "SCREEN",
    "SECURITY_PANEL",
    "SMARTLOCK",
    "SMARTPLUG",
    "SPEAKER",
    "STREAMING_DEVICE",
    "SWITCH",
    "TABLET",
    "TEMPERATURE_SENSOR",
    "THERMOSTAT",
    "TV",
    "WEARABLE",
];

/// Collects findings with the mode's severities.
struct Report {
    mode: Mode,
    findings: Vec<Finding>,
}

impl Report {
    fn new(mode: Mode) -> Report {
        Report {
            mode,
            findings: Vec::new(),
        }
    }

    fn push(&mut self, severity: Severity, pointer: String, rule: &'static str, message: String) {
        self.findings.push(Finding {
            severity,
            pointer,
            rule,
            message,
        });
    }

    fn error(&mut self, pointer: String, rule: &'static str, message: String) {
        self.push(Severity::Error, pointer, rule, message);
    }

    /// A documented recommendation: an error only in strict mode.
    fn warn(&mut self, pointer: String, rule: &'static str, message: String) {
        let severity = match self.mode {
            Mode::Strict => Severity::Error,
            Mode::Default => Severity::Warning,
        };
        self.push(severity, pointer, rule, message);
    }

    /// A best practice: a warning in both modes (rule 29).
    fn advise(&mut self, pointer: String, rule: &'static str, message: String) {
        self.push(Severity::Warning, pointer, rule, message);
    }

    /// Only the schema forbids it and the docs allow it: accepted silently
    /// by default, an error in strict mode (rule 31).
    fn strict_only(&mut self, pointer: String, rule: &'static str, message: String) {
        if self.mode == Mode::Strict {
            self.error(pointer, rule, message);
        }
    }

    fn has_error(&self) -> bool {
        self.findings.iter().any(|f| f.severity == Severity::Error)
    }
}

/// Judge `answer` (the handler's whole result) as a Discover.Response.
pub fn discovery(answer: &Value, mode: Mode) -> Discovery {
    let mut top = Report::new(mode);
    header(&mut top, answer, "Alexa.Discovery", "Discover.Response");
    extra_keys(&mut top, answer, "", &["event"]);
    extra_keys(&mut top, &answer["event"], "/event", &["header", "payload"]);
    extra_keys(&mut top, &answer["event"]["payload"], "/event/payload", &["endpoints"]);
    let (verdict, _) = endpoints(top, answer, true);
    verdict
}

/// Rule 5 and each endpoint's rules (6–19) for `doc`'s
/// `event.payload.endpoints`, after the message's own findings in `top`:
/// the verdict and the endpoints kept. An endpoint with an error is
/// dropped; when the message itself has one, all are (`top_drops`).
fn endpoints(mut top: Report, doc: &Value, top_drops: bool) -> (Discovery, Vec<Value>) {
    let mut verdict = Discovery {
        accepted: Vec::new(),
        dropped: Vec::new(),
        findings: Vec::new(),
    };
    let mut kept = Vec::new();
    let at = "/event/payload/endpoints";
    match doc.pointer(at).and_then(Value::as_array) {
        None => top.error(
            at.into(),
            "5 endpoints",
            "payload.endpoints must be an array (empty when the customer has no devices)".into(),
        ),
        Some(list) if list.len() > 300 => top.error(
            at.into(),
            "5 endpoints",
            format!("at most 300 endpoints per message, got {}", list.len()),
        ),
        Some(_) => {}
    }
    let list = doc.pointer(at).and_then(Value::as_array);
    let drop_all = top_drops && top.has_error();
    let mut seen = HashSet::new();
    for (i, e) in list.into_iter().flatten().enumerate() {
        let mut r = Report::new(top.mode);
        endpoint::endpoint(&mut r, e, &format!("{at}/{i}"), &mut seen);
        anchor(doc, &mut r.findings);
        let id = e["endpointId"].as_str().map(str::to_string);
        match id {
            Some(id) if !r.has_error() && !drop_all => {
                verdict.accepted.push(id);
                kept.push(e.clone());
            }
            _ => verdict.dropped.push(Dropped {
                endpoint_id: id,
                findings: r.findings.clone(),
            }),
        }
        verdict.findings.extend(r.findings);
    }
    anchor(doc, &mut top.findings);
    top.findings.append(&mut verdict.findings);
    verdict.findings = top.findings;
    (verdict, kept)
}

/// Point each finding at a place the document has: a missing value is
/// reported at the nearest ancestor that is there (the message names it).
fn anchor(doc: &Value, findings: &mut [Finding]) {
    for f in findings {
        while doc.pointer(&f.pointer).is_none() {
            match f.pointer.rfind('/') {
                Some(cut) => f.pointer.truncate(cut),
                None => f.pointer.clear(),
            }
        }
    }
}

/// Rules 1–3: namespace, name, payloadVersion "3", messageId.
fn header(r: &mut Report, doc: &Value, namespace: &str, name: &str) {
    let h = &doc["event"]["header"];
    if !h.is_object() {
        return r.error(
            "/event/header".into(),
            "1 header",
            "event.header must be an object".into(),
        );
    }
    for (key, want) in [("namespace", namespace), ("name", name)] {
        if h[key] != want {
            r.error(
                format!("/event/header/{key}"),
                "1 header",
                format!("{key} must be {want:?}, got {}", h[key]),
            );
        }
    }
    version_and_id(r, h);
}

/// Rules 1 (payloadVersion) and 2–3 (messageId) on an object header.
fn version_and_id(r: &mut Report, h: &Value) {
    if h["payloadVersion"] != "3" {
        r.error(
            "/event/header/payloadVersion".into(),
            "1 header",
            format!("payloadVersion must be the string \"3\", got {}", h["payloadVersion"]),
        );
    }
    match h["messageId"].as_str() {
        None | Some("") => r.error(
            "/event/header/messageId".into(),
            "2 messageId",
            "messageId must be a non-empty string".into(),
        ),
        Some(id) if id.len() > 127 || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') => r.warn(
            "/event/header/messageId".into(),
            "3 messageId format",
            format!("messageId should be 1-127 characters of letters, digits and '-' (a UUID), got {id:?}"),
        ),
        Some(_) => {}
    }
}

/// Rule 4: keys beyond the ones a Discover.Response has.
fn extra_keys(r: &mut Report, v: &Value, at: &str, allowed: &[&str]) {
    for key in v.as_object().into_iter().flat_map(|o| o.keys()) {
        if !allowed.contains(&key.as_str()) {
            r.warn(
                format!("{at}/{}", escape(key)),
                "4 only known keys",
                format!(
                    "{key:?} is not part of a Discover.Response here (expected {})",
                    allowed.join(", ")
                ),
            );
        }
    }
}

/// RFC 6901 escaping of one reference token.
fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_answer;
#[cfg(test)]
mod tests_event;
