//! One capability of a declared endpoint (reference smarthome.md §4 rules
//! 13, 14, 16, 17): its type, interface, version and supported properties.

use super::interfaces::{self, Interface};
use super::{Mode, Report};
use serde_json::Value;

/// Rules 13, 14, 16 and 17 for the capability at `at`.
pub(super) fn capability(r: &mut Report, c: &Value, at: &str) {
    if !c.is_object() {
        return r.error(at.into(), "13 capability type", "a capability is an object".into());
    }
    if c["type"] != "AlexaInterface" {
        r.error(
            format!("{at}/type"),
            "13 capability type",
            format!("capability type must be \"AlexaInterface\", got {}", c["type"]),
        );
    }
    let known = interface(r, &c["interface"], &format!("{at}/interface"));
    if let Some(name) = c["interface"].as_str() {
        version(r, &c["version"], &format!("{at}/version"), name, known);
    } else {
        version_type(r, &c["version"], &format!("{at}/version"));
    }
    if let Some(p) = c.get("properties") {
        properties(r, p, &format!("{at}/properties"), known);
    }
}

/// Rule 13: `interface` is a string the simulator knows (unknown warns:
/// Amazon adds interfaces faster than this list).
fn interface(r: &mut Report, v: &Value, at: &str) -> Option<&'static Interface> {
    let rule = "13 interface";
    let Some(name) = v.as_str() else {
        r.error(at.into(), rule, "capability interface is required, a string".into());
        return None;
    };
    let known = interfaces::find(name);
    if known.is_none() {
        let hint = match interfaces::find(name.trim()) {
            Some(_) => " (it has leading or trailing spaces)",
            None => "",
        };
        r.warn(
            at.into(),
            rule,
            format!("{name:?} is not an interface this simulator knows{hint}"),
        );
    }
    known
}

/// Rule 14 when the interface is unreadable: only the type is checked.
fn version_type(r: &mut Report, v: &Value, at: &str) -> bool {
    if v.is_string() {
        return true;
    }
    r.error(
        at.into(),
        "14 version",
        format!("capability version is required, a string such as \"3\", got {v}"),
    );
    false
}

/// Rule 14: a string, and one the interface documents (strict: one the
/// schema allowed).
fn version(r: &mut Report, v: &Value, at: &str, name: &str, known: Option<&Interface>) {
    if !version_type(r, v, at) {
        return;
    }
    let got = v.as_str().unwrap_or_default();
    let allowed = match (r.mode, known) {
        (Mode::Strict, _) => interfaces::schema_versions(name),
        (Mode::Default, Some(i)) => i.versions,
        (Mode::Default, None) => return,
    };
    if !allowed.contains(&got) {
        r.warn(
            at.into(),
            "14 version",
            format!("{name} version {got:?} is not one known here ({})", allowed.join(", ")),
        );
    }
}

/// Rules 16 and 17: `properties.supported` names and the two flags.
fn properties(r: &mut Report, p: &Value, at: &str, known: Option<&Interface>) {
    if !p.is_object() {
        return r.error(
            at.into(),
            "16 supported properties",
            "capability properties must be an object".into(),
        );
    }
    for flag in ["proactivelyReported", "retrievable"] {
        if p.get(flag).is_some_and(|f| !f.is_boolean()) {
            r.error(
                format!("{at}/{flag}"),
                "17 proactivelyReported, retrievable",
                format!("{flag} must be a boolean (true or false), got {}", p[flag]),
            );
        }
    }
    if let Some(s) = p.get("supported") {
        supported(r, s, &format!("{at}/supported"), known);
    }
}

/// Rule 16: each supported entry is `{"name": <a property of the interface>}`.
fn supported(r: &mut Report, s: &Value, at: &str, known: Option<&Interface>) {
    let rule = "16 supported properties";
    let Some(list) = s.as_array() else {
        return r.error(at.into(), rule, "properties.supported must be an array".into());
    };
    let names = known.and_then(|i| i.properties.map(|p| (i.name, p)));
    for (i, entry) in list.iter().enumerate() {
        let here = format!("{at}/{i}/name");
        let Some(name) = entry["name"].as_str() else {
            r.error(here, rule, "a supported property is {\"name\": <string>}".into());
            continue;
        };
        if let Some((interface, props)) = names
            && !props.contains(&name)
        {
            let has = if props.is_empty() {
                "no properties".to_string()
            } else {
                props.join(", ")
            };
            r.error(
                here,
                rule,
                format!("{interface} has no property {name:?} (it has {has})"),
            );
        }
    }
}
