//! One declared endpoint, in a Discover.Response or an AddOrUpdateReport
//! (reference smarthome.md §4 rules 6–12, 15, 18, 19; each capability's own
//! rules are in `capability`).

use super::capability::capability;
use super::{CATEGORIES, Mode, Report, escape};
use serde_json::Value;
use std::collections::HashSet;

/// Rules 6–12, 15, 18 and 19 for one endpoint at `at`, and 13, 14, 16
/// and 17 for each of its capabilities.
pub(super) fn endpoint(r: &mut Report, e: &Value, at: &str, seen: &mut HashSet<String>) {
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
    if let Some(a) = e.get("additionalAttributes") {
        additional_attributes(r, a, &format!("{at}/additionalAttributes"));
    }
    if let Some(c) = e.get("connections") {
        connections(r, c, &format!("{at}/connections"));
    }
}

/// Rules 6 and 7: endpointId.
pub(super) fn endpoint_id(r: &mut Report, v: &Value, at: &str, seen: &mut HashSet<String>) {
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
        Some(n) => r.error(
            at.into(),
            rule,
            format!("{} must be 1-{max} characters, got {n}", key_of(at)),
        ),
        None => r.error(at.into(), rule, format!("{} is required, a string", key_of(at))),
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
        capability(r, c, &format!("{at}/{i}"));
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

/// The last reference token of a pointer: the key a message names.
fn key_of(at: &str) -> &str {
    at.rsplit('/').next().unwrap_or(at)
}

/// The keys `additionalAttributes` documents (rule 18).
const ATTRIBUTES: [&str; 6] = [
    "manufacturer",
    "model",
    "serialNumber",
    "firmwareVersion",
    "softwareVersion",
    "customIdentifier",
];

/// Rule 18: known keys, each a string of at most 256 characters. The docs
/// only recommend (Works with Alexa needs manufacturer and model): warn.
fn additional_attributes(r: &mut Report, v: &Value, at: &str) {
    let rule = "18 additionalAttributes";
    let Some(map) = v.as_object() else {
        return r.warn(at.into(), rule, "additionalAttributes should be an object".into());
    };
    for (k, val) in map {
        let here = format!("{at}/{}", escape(k));
        if !ATTRIBUTES.contains(&k.as_str()) {
            r.warn(
                here,
                rule,
                format!("{k:?} is not an additional attribute ({})", ATTRIBUTES.join(", ")),
            );
        } else if val.as_str().is_none_or(|s| s.chars().count() > 256) {
            r.warn(here, rule, format!("{k} should be a string of at most 256 characters"));
        }
    }
}

/// Connection types (rule 19).
const CONNECTION_TYPES: [&str; 4] = ["TCP_IP", "ZIGBEE", "ZWAVE", "UNKNOWN"];
/// Keys a connection may have (rule 19).
const CONNECTION_KEYS: [&str; 5] = ["type", "macAddress", "homeId", "nodeId", "value"];

/// Rule 19: `connections[*]` with a known type and known keys only (schema: warn).
fn connections(r: &mut Report, v: &Value, at: &str) {
    let rule = "19 connections";
    let Some(list) = v.as_array() else {
        return r.warn(at.into(), rule, "connections should be an array".into());
    };
    for (i, c) in list.iter().enumerate() {
        let here = format!("{at}/{i}");
        let Some(map) = c.as_object() else {
            r.warn(here, rule, "a connection should be an object".into());
            continue;
        };
        if !c["type"].as_str().is_some_and(|t| CONNECTION_TYPES.contains(&t)) {
            r.warn(
                format!("{here}/type"),
                rule,
                format!("connection type should be one of {}", CONNECTION_TYPES.join(", ")),
            );
        }
        for k in map.keys().filter(|k| !CONNECTION_KEYS.contains(&k.as_str())) {
            r.warn(
                format!("{here}/{}", escape(k)),
                rule,
                format!("{k:?} is not a connection key ({})", CONNECTION_KEYS.join(", ")),
            );
        }
    }
}
