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
//! Built so far: the header (rules 1–3), the endpoints array (5), and each
//! endpoint's id, names, categories, cookie and capabilities list (6–12, 15).

use serde::Serialize;
use serde_json::Value;
use std::collections::HashSet;

pub mod answer;
pub mod event;

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
    fn error(&mut self, pointer: String, rule: &'static str, message: String) {
        self.findings.push(Finding {
            severity: Severity::Error,
            pointer,
            rule,
            message,
        });
    }

    /// A documented recommendation: an error only in strict mode.
    fn warn(&mut self, pointer: String, rule: &'static str, message: String) {
        let severity = match self.mode {
            Mode::Strict => Severity::Error,
            Mode::Default => Severity::Warning,
        };
        self.findings.push(Finding {
            severity,
            pointer,
            rule,
            message,
        });
    }

    fn has_error(&self) -> bool {
        self.findings.iter().any(|f| f.severity == Severity::Error)
    }
}

/// Judge `answer` (the handler's whole result) as a Discover.Response.
pub fn discovery(answer: &Value, mode: Mode) -> Discovery {
    let mut top = Report {
        mode,
        findings: Vec::new(),
    };
    header(&mut top, answer, "Alexa.Discovery", "Discover.Response");
    extra_keys(&mut top, answer, "", &["event"]);
    extra_keys(&mut top, &answer["event"], "/event", &["header", "payload"]);
    extra_keys(&mut top, &answer["event"]["payload"], "/event/payload", &["endpoints"]);
    let mut verdict = Discovery {
        accepted: Vec::new(),
        dropped: Vec::new(),
        findings: Vec::new(),
    };
    let Some(endpoints) = answer.pointer("/event/payload/endpoints").and_then(Value::as_array) else {
        top.error(
            "/event/payload/endpoints".into(),
            "5 endpoints",
            "payload.endpoints must be an array (empty when the customer has no devices)".into(),
        );
        verdict.findings = top.findings;
        anchor_all(answer, &mut verdict);
        return verdict;
    };
    if endpoints.len() > 300 {
        top.error(
            "/event/payload/endpoints".into(),
            "5 endpoints",
            format!("at most 300 endpoints per response, got {}", endpoints.len()),
        );
    }
    let mut seen = HashSet::new();
    for (i, e) in endpoints.iter().enumerate() {
        let mut r = Report {
            mode,
            findings: Vec::new(),
        };
        endpoint(&mut r, e, &format!("/event/payload/endpoints/{i}"), &mut seen);
        let id = e["endpointId"].as_str().map(str::to_string);
        if r.has_error() || top.has_error() {
            verdict.dropped.push(Dropped {
                endpoint_id: id,
                findings: r.findings.clone(),
            });
        } else if let Some(id) = id {
            verdict.accepted.push(id);
        }
        verdict.findings.extend(r.findings);
    }
    top.findings.extend(verdict.findings);
    verdict.findings = top.findings;
    anchor_all(answer, &mut verdict);
    verdict
}

/// Point each finding at a place the answer has: a missing value is
/// reported where it is missing (its parent exists), a missing parent at
/// the nearest ancestor that is there.
fn anchor_all(answer: &Value, verdict: &mut Discovery) {
    let dropped = verdict.dropped.iter_mut().flat_map(|d| d.findings.iter_mut());
    for f in verdict.findings.iter_mut().chain(dropped) {
        while let Some(cut) = f.pointer.rfind('/') {
            if answer.pointer(&f.pointer[..cut]).is_some() {
                break;
            }
            f.pointer.truncate(cut);
        }
    }
}

/// Rules 1–3: namespace, name, payloadVersion "3", messageId.
fn header(r: &mut Report, answer: &Value, namespace: &str, name: &str) {
    let h = &answer["event"]["header"];
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

/// Rules 6–12 and 15 for one endpoint at `at`.
fn endpoint(r: &mut Report, e: &Value, at: &str, seen: &mut HashSet<String>) {
    endpoint_id(r, &e["endpointId"], &format!("{at}/endpointId"), seen);
    for key in ["manufacturerName", "description"] {
        text(
            r,
            &e[key],
            &format!("{at}/{key}"),
            "8 manufacturerName, description",
            128,
        );
    }
    friendly_name(r, &e["friendlyName"], &format!("{at}/friendlyName"));
    categories(r, &e["displayCategories"], &format!("{at}/displayCategories"));
    cookie(r, e.get("cookie"), &format!("{at}/cookie"));
    capabilities(r, &e["capabilities"], &format!("{at}/capabilities"));
}

/// Rules 6 and 7: endpointId.
fn endpoint_id(r: &mut Report, v: &Value, at: &str, seen: &mut HashSet<String>) {
    let Some(id) = v.as_str() else {
        return r.error(at.into(), "6 endpointId", "endpointId is required, a string".into());
    };
    let allowed = |c: char| c.is_ascii_alphanumeric() || "_-=#;:?@&".contains(c);
    if id.is_empty() || id.chars().count() > 256 {
        r.error(
            at.into(),
            "6 endpointId",
            format!("endpointId must be 1-256 characters, got {}", id.chars().count()),
        );
    } else if let Some(bad) = id.chars().find(|c| !allowed(*c) && *c != ' ') {
        r.error(at.into(), "6 endpointId", format!("endpointId may not contain {bad:?}"));
    } else if id.contains(' ') {
        r.warn(
            at.into(),
            "6 endpointId",
            "endpointId contains a space (the docs allow it, the schema does not)".into(),
        );
    }
    if !seen.insert(id.to_string()) {
        r.error(
            at.into(),
            "7 endpointId unique",
            format!("endpointId {id:?} appears twice in the response"),
        );
    }
}

/// Rule 8: a required text of 1..=`max` characters.
fn text(r: &mut Report, v: &Value, at: &str, rule: &'static str, max: usize) {
    match v.as_str().map(|s| s.chars().count()) {
        Some(n) if (1..=max).contains(&n) => {}
        Some(n) => r.error(at.into(), rule, format!("must be 1-{max} characters, got {n}")),
        None => r.error(at.into(), rule, "is required, a string".into()),
    }
}

/// Rule 9: friendlyName.
fn friendly_name(r: &mut Report, v: &Value, at: &str) {
    let rule = "9 friendlyName";
    let Some(name) = v.as_str() else {
        return r.error(at.into(), rule, "friendlyName is required, a string".into());
    };
    let n = name.chars().count();
    let limit = if r.mode == Mode::Strict { 128 } else { 256 };
    if n == 0 || n > limit {
        return r.error(
            at.into(),
            rule,
            format!("friendlyName must be 1-{limit} characters, got {n}"),
        );
    }
    if n > 128 {
        r.warn(
            at.into(),
            rule,
            format!("friendlyName over 128 characters ({n}): older devices' limit"),
        );
    }
    if let Some(c) = name.chars().find(|c| !(c.is_alphanumeric() || *c == ' ')) {
        r.warn(
            at.into(),
            rule,
            format!("friendlyName should have no punctuation or special characters, has {c:?}"),
        );
    }
}

/// Rule 10: displayCategories.
fn categories(r: &mut Report, v: &Value, at: &str) {
    let rule = "10 displayCategories";
    let Some(list) = v.as_array().filter(|l| !l.is_empty()) else {
        return r.error(at.into(), rule, "displayCategories must be a non-empty array".into());
    };
    let mut seen = HashSet::new();
    for (i, c) in list.iter().enumerate() {
        let here = format!("{at}/{i}");
        let Some(c) = c.as_str() else {
            r.error(here, rule, "a display category is a string".into());
            continue;
        };
        if !seen.insert(c) {
            r.error(here.clone(), rule, format!("{c} is listed twice"));
        }
        if !CATEGORIES.contains(&c) {
            r.warn(
                here,
                rule,
                format!("{c} is not a display category this simulator knows"),
            );
        }
    }
}

/// Rule 11: cookie, a string map of at most 5000 bytes.
fn cookie(r: &mut Report, v: Option<&Value>, at: &str) {
    let rule = "11 cookie";
    let Some(v) = v else { return };
    let Some(map) = v.as_object() else {
        return r.error(at.into(), rule, "cookie must be an object of strings".into());
    };
    for (k, val) in map {
        if !val.is_string() {
            r.error(
                format!("{at}/{}", escape(k)),
                rule,
                "cookie values must be strings".into(),
            );
        }
    }
    let size = v.to_string().len();
    if size > 5000 {
        r.error(at.into(), rule, format!("cookie must be at most 5000 bytes, is {size}"));
    }
}

/// Rules 12 and 15: the capabilities list (each capability's own rules come later).
fn capabilities(r: &mut Report, v: &Value, at: &str) {
    let Some(list) = v.as_array().filter(|l| !l.is_empty()) else {
        return r.error(
            at.into(),
            "12 capabilities",
            "capabilities must be a non-empty array".into(),
        );
    };
    if list.len() > 100 {
        r.error(
            at.into(),
            "12 capabilities",
            format!("at most 100 capabilities, got {}", list.len()),
        );
    }
    let mut seen = HashSet::new();
    for (i, c) in list.iter().enumerate() {
        if !seen.insert(c.to_string()) {
            r.error(
                format!("{at}/{i}"),
                "12 capabilities",
                "a capability is listed twice".into(),
            );
        }
    }
    let declares_alexa = list.iter().any(|c| c["interface"] == "Alexa" && c["version"] == "3");
    if !declares_alexa {
        r.warn(
            at.into(),
            "15 Alexa interface",
            "every endpoint should declare {\"interface\": \"Alexa\", \"version\": \"3\"}".into(),
        );
    }
}

#[cfg(test)]
mod tests;
