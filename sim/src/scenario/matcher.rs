//! Field matchers and the near-miss report: which journal entries came
//! closest to an expectation, and what did not hold for each.

use super::model::{Bound, Matcher};
use super::template::{Vars, toml_to_json};
use crate::journal::Entry;
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;

/// What an expectation looks for in a journal entry.
#[derive(Debug, Clone)]
pub struct Want {
    pub device: String,
    /// `Namespace.Name` of an event.
    pub event: Option<String>,
    /// A request line, e.g. `GET /ping`.
    pub request: Option<String>,
    pub fields: BTreeMap<String, Matcher>,
}

/// Why one matcher did not hold.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Miss {
    pub what: String,
    pub expected: String,
    pub actual: String,
}

/// One test of one matcher against a value (`None` = absent).
pub fn check_field(pointer: &str, m: &Matcher, actual: Option<&Value>, vars: &Vars) -> Vec<Miss> {
    let mut misses = Vec::new();
    let show = |v: Option<&Value>| v.map_or_else(|| "(absent)".to_string(), |v| v.to_string());
    let mut miss = |test: &str, expected: String| {
        misses.push(Miss {
            what: format!("{pointer} {test}"),
            expected,
            actual: show(actual),
        });
    };
    if let Some(exists) = m.exists {
        if actual.is_some() != exists {
            miss("exists", exists.to_string());
        }
    }
    if let Some(eq) = &m.equals {
        let want = vars.expand_json(&toml_to_json(eq));
        if actual != Some(&want) {
            miss("equals", want.to_string());
        }
    }
    if let Some(re) = &m.regex {
        let re_text = vars.expand(re);
        let ok = regex::Regex::new(&re_text)
            .ok()
            .zip(actual.and_then(Value::as_str))
            .is_some_and(|(r, s)| r.is_match(s));
        if !ok {
            miss("regex", format!("/{re_text}/"));
        }
    }
    if let Some(kind) = &m.kind {
        if !actual.is_some_and(|v| type_is(v, kind)) {
            miss("type", kind.clone());
        }
    }
    let number = actual.and_then(Value::as_f64);
    for (test, bound) in [("min", &m.min), ("max", &m.max)] {
        let Some(bound) = bound else { continue };
        let (op, holds): (&str, fn(f64, f64) -> bool) = if test == "min" {
            (">=", |n, b| n >= b)
        } else {
            ("<=", |n, b| n <= b)
        };
        match resolve(bound, vars) {
            Ok(b) => {
                if !number.is_some_and(|n| holds(n, b)) {
                    miss(test, format!("{op} {b}"));
                }
            }
            Err(why) => miss(test, why),
        }
    }
    misses
}

/// The number a bound stands for; why not, when its variable holds none.
fn resolve(bound: &Bound, vars: &Vars) -> Result<f64, String> {
    match bound {
        Bound::Number(n) => Ok(*n),
        Bound::Template(name) => {
            let value = vars.values.get(name);
            let number = value.and_then(|v| match v {
                Value::Number(n) => n.as_f64(),
                Value::String(s) => s.trim().parse::<f64>().ok(),
                _ => None,
            });
            number.ok_or_else(|| match value {
                Some(v) => format!("a number in {{{{{name}}}}}, which holds {v}"),
                None => format!("a number in {{{{{name}}}}}, which is not set"),
            })
        }
    }
}

fn type_is(v: &Value, kind: &str) -> bool {
    match kind {
        "string" => v.is_string(),
        "number" => v.is_number(),
        "integer" => v.is_i64() || v.is_u64(),
        "boolean" => v.is_boolean(),
        "object" => v.is_object(),
        "array" => v.is_array(),
        "null" => v.is_null(),
        _ => false,
    }
}

impl Want {
    /// Whether the entry is the kind of thing this looks at (an incoming
    /// request of the device), regardless of name and fields.
    pub fn candidate(&self, e: &Entry) -> bool {
        let face_ok = self.request.is_some() || e.face == crate::journal::Face::Avs;
        face_ok && e.kind == crate::journal::Kind::Request && e.device.as_deref() == Some(self.device.as_str())
    }

    /// Everything that does not hold for `e` (empty = a match).
    pub fn misses(&self, e: &Entry, vars: &Vars) -> Vec<Miss> {
        let mut misses = Vec::new();
        if let Some(event) = &self.event {
            if &e.summary != event {
                misses.push(Miss {
                    what: "event".into(),
                    expected: event.clone(),
                    actual: e.summary.clone(),
                });
            }
        }
        if let Some(request) = &self.request {
            if &e.summary != request {
                misses.push(Miss {
                    what: "request".into(),
                    expected: request.clone(),
                    actual: e.summary.clone(),
                });
            }
        }
        for (pointer, m) in &self.fields {
            misses.extend(check_field(pointer, m, e.body.pointer(pointer), vars));
        }
        misses
    }

    pub fn matches(&self, e: &Entry, vars: &Vars) -> bool {
        self.candidate(e) && self.misses(e, vars).is_empty()
    }

    /// How this expectation reads in a report.
    pub fn describe(&self) -> String {
        let what = self.event.clone().or_else(|| self.request.clone()).unwrap_or_default();
        let fields: Vec<String> = self.fields.keys().cloned().collect();
        if fields.is_empty() {
            format!("{what} from {}", self.device)
        } else {
            format!("{what} from {} with {}", self.device, fields.join(", "))
        }
    }
}

/// A journal entry that nearly matched.
#[derive(Debug, Clone, Serialize)]
pub struct NearMiss {
    pub journal_id: u64,
    pub summary: String,
    pub misses: Vec<Miss>,
}

/// The closest candidates: fewest misses first, newest first among equals.
pub fn near_misses<'a>(
    want: &Want,
    entries: impl IntoIterator<Item = &'a Entry>,
    vars: &Vars,
    top: usize,
) -> Vec<NearMiss> {
    let mut scored: Vec<NearMiss> = entries
        .into_iter()
        .filter(|e| want.candidate(e))
        .map(|e| NearMiss {
            journal_id: e.id,
            summary: e.summary.clone(),
            misses: want.misses(e, vars),
        })
        .collect();
    scored.sort_by(|a, b| {
        a.misses
            .len()
            .cmp(&b.misses.len())
            .then(b.journal_id.cmp(&a.journal_id))
    });
    scored.truncate(top);
    scored
}

/// The near-miss report as text.
pub fn render(want: &Want, near: &[NearMiss]) -> String {
    let mut out = format!("expected {}\n", want.describe());
    if near.is_empty() {
        out.push_str(&format!("  nothing arrived from {} in the window\n", want.device));
    }
    for n in near {
        out.push_str(&format!("  closest: journal #{} {}\n", n.journal_id, n.summary));
        for m in &n.misses {
            out.push_str(&format!("    {}: expected {}, got {}\n", m.what, m.expected, m.actual));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::{Face, Kind};
    use proptest::prelude::*;
    use serde_json::json;

    fn entry(id: u64, summary: &str, body: Value) -> Entry {
        Entry {
            id,
            ts: String::new(),
            mono_ms: 0,
            face: Face::Avs,
            kind: Kind::Request,
            device: Some("d".into()),
            connection: None,
            stream: None,
            summary: summary.into(),
            body: body.into(),
        }
    }

    fn m(toml_text: &str) -> Matcher {
        toml::from_str(toml_text).unwrap()
    }

    #[test]
    fn each_matcher_kind() {
        let v = Vars::default();
        let val = json!("123");
        assert!(check_field("/x", &m("regex = '^[1-9][0-9]*$'"), Some(&val), &v).is_empty());
        assert!(!check_field("/x", &m("regex = '^0'"), Some(&val), &v).is_empty());
        assert!(check_field("/x", &m("equals = '123'"), Some(&val), &v).is_empty());
        assert!(check_field("/x", &m("exists = false"), None, &v).is_empty());
        assert!(!check_field("/x", &m("exists = true"), None, &v).is_empty());
        assert!(check_field("/x", &m("type = 'string'"), Some(&val), &v).is_empty());
        assert!(check_field("/n", &m("min = 0\nmax = 10\ntype = 'integer'"), Some(&json!(7)), &v).is_empty());
        let miss = check_field("/n", &m("min = 0\nmax = 10"), Some(&json!(11)), &v);
        assert_eq!(
            miss,
            vec![Miss {
                what: "/n max".into(),
                expected: "<= 10".into(),
                actual: "11".into()
            }]
        );
    }

    #[test]
    fn near_miss_names_what_did_not_hold() {
        let want = Want {
            device: "d".into(),
            event: Some("System.SoftwareInfo".into()),
            request: None,
            fields: [(
                "/event/payload/firmwareVersion".to_string(),
                m("regex = '^[1-9][0-9]*$'"),
            )]
            .into(),
        };
        let entries = [
            entry(1, "System.SynchronizeState", json!({})),
            entry(
                2,
                "System.SoftwareInfo",
                json!({"event": {"payload": {"firmwareVersion": "0"}}}),
            ),
        ];
        let v = Vars::default();
        assert!(!want.matches(&entries[1], &v));
        let near = near_misses(&want, entries.iter(), &v, 3);
        assert_eq!(near[0].journal_id, 2);
        let text = render(&want, &near);
        assert!(text.contains("closest: journal #2 System.SoftwareInfo"), "{text}");
        assert!(
            text.contains("/event/payload/firmwareVersion regex: expected /^[1-9][0-9]*$/, got \"0\""),
            "{text}"
        );
    }

    #[test]
    fn numeric_bounds_can_come_from_variables() {
        let mut v = Vars::default();
        v.set("n", json!(5));
        v.set("s", json!("7"));
        v.set("x", json!("abc"));
        let min = |name: &str| Matcher {
            min: Some(Bound::Template(name.into())),
            ..Default::default()
        };
        assert!(check_field("/a", &min("n"), Some(&json!(6)), &v).is_empty());
        let miss = check_field("/a", &min("s"), Some(&json!(6)), &v);
        assert_eq!(miss[0].expected, ">= 7", "a string holding a number counts");
        let miss = check_field("/a", &min("x"), Some(&json!(6)), &v);
        assert_eq!(miss[0].expected, "a number in {{x}}, which holds \"abc\"");
        let miss = check_field("/a", &min("unset"), Some(&json!(6)), &v);
        assert_eq!(miss[0].expected, "a number in {{unset}}, which is not set");
    }

    proptest! {
        #[test]
        fn range_matcher_agrees_with_comparison(n in -1e6f64..1e6, lo in -1e6f64..1e6, hi in -1e6f64..1e6) {
            let matcher = Matcher { min: Some(Bound::Number(lo)), max: Some(Bound::Number(hi)), ..Default::default() };
            let ok = check_field("/n", &matcher, Some(&json!(n)), &Vars::default()).is_empty();
            prop_assert_eq!(ok, n >= lo && n <= hi);
        }

        #[test]
        fn equals_matches_itself(s in ".*") {
            let matcher = Matcher { equals: Some(toml::Value::String(s.clone())), ..Default::default() };
            prop_assert!(check_field("/s", &matcher, Some(&json!(s)), &Vars::default()).is_empty());
        }
    }
}
