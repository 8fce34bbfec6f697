//! Reading scenario files: every mistake reported at once, each with
//! `file:line:column`.
//!
//! The document is parsed once into spanned TOML; the head and each step
//! table are then deserialized separately (spans kept), so an unknown key
//! in one step does not hide a bad duration in the next. Semantic checks
//! (devices, captures, directive names) follow in `check`.

use super::model::*;
use serde::Deserialize;
use std::fmt;
use toml::Spanned;
use toml::de::{DeTable, DeValue, ValueDeserializer};

/// One problem in a scenario file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: {}", self.file, self.line, self.column, self.message)
    }
}

/// Collects diagnostics against one file's text.
pub struct Diagnostics<'a> {
    pub file: &'a str,
    pub text: &'a str,
    pub list: Vec<Diagnostic>,
    /// Ids of steps that failed to parse: references to them are not
    /// reported again (one mistake, one message).
    pub broken_ids: std::collections::HashSet<String>,
}

impl<'a> Diagnostics<'a> {
    pub fn new(file: &'a str, text: &'a str) -> Diagnostics<'a> {
        Diagnostics {
            file,
            text,
            list: Vec::new(),
            broken_ids: Default::default(),
        }
    }

    /// Report `message` at byte offset `at`.
    pub fn at(&mut self, at: usize, message: impl Into<String>) {
        let (line, column) = crate::config::line_col(self.text, at);
        self.list.push(Diagnostic {
            file: self.file.to_string(),
            line,
            column,
            message: message.into(),
        });
    }

    /// Report a TOML/serde error, at its own span or else at `fallback`.
    fn toml(&mut self, e: &toml::de::Error, fallback: usize) {
        let at = e.span().map_or(fallback, |s| s.start);
        let at = self.refine_unknown_field(e.message(), at);
        self.at(at, e.message().trim().to_string());
    }

    /// serde reports an unknown field at the table; point at the key itself.
    fn refine_unknown_field(&self, message: &str, at: usize) -> usize {
        let Some(rest) = message.strip_prefix("unknown field `") else {
            return at;
        };
        let Some(key) = rest.split('`').next() else { return at };
        let tail = &self.text[at.min(self.text.len())..];
        let found = tail.match_indices(key).find(|(i, _)| {
            let before = tail[..*i].chars().last();
            let after = tail[i + key.len()..].trim_start().chars().next();
            matches!(before, None | Some('\n' | ' ' | '\t' | '{' | ',')) && after == Some('=')
        });
        found.map_or(at, |(i, _)| at + i)
    }
}

/// Parse scenario text. `Err` carries every problem found.
pub fn parse(text: &str, file: &str) -> Result<Scenario, Vec<Diagnostic>> {
    let mut diags = Diagnostics::new(file, text);
    let root = match DeTable::parse(text) {
        Ok(root) => root,
        Err(e) => {
            diags.toml(&e, 0);
            return Err(diags.list);
        }
    };
    let span = root.span();
    let mut table = root.into_inner();
    let steps_value = table.remove("steps");
    let head = Head::deserialize(ValueDeserializer::from(Spanned::new(span, DeValue::Table(table))));
    let head = head.map_err(|e| diags.toml(&e, 0)).ok();
    let steps = match steps_value {
        Some(v) => steps_of(v, &mut diags),
        None => {
            diags.at(0, "a scenario needs at least one [[steps]] table");
            Vec::new()
        }
    };
    let Some(head) = head else { return Err(diags.list) };
    let scenario = Scenario {
        name: head.name,
        description: head.description,
        config: head.config,
        devices: head.devices,
        steps,
        file: file.to_string(),
    };
    super::check::check(&scenario, &mut diags);
    if diags.list.is_empty() {
        Ok(scenario)
    } else {
        Err(diags.list)
    }
}

/// Read and parse a scenario file.
pub fn load(path: &std::path::Path) -> Result<Scenario, Vec<Diagnostic>> {
    let file = path.display().to_string();
    match std::fs::read_to_string(path) {
        Ok(text) => parse(&text, &file),
        Err(e) => Err(vec![Diagnostic {
            file,
            line: 0,
            column: 0,
            message: format!("cannot read: {e}"),
        }]),
    }
}

fn steps_of(value: Spanned<DeValue<'_>>, diags: &mut Diagnostics<'_>) -> Vec<Step> {
    let at = value.span().start;
    match value.into_inner() {
        DeValue::Array(items) => items.into_iter().filter_map(|item| step(item, diags)).collect(),
        _ => {
            diags.at(at, "`steps` must be an array of tables ([[steps]])");
            Vec::new()
        }
    }
}

fn step(value: Spanned<DeValue<'_>>, diags: &mut Diagnostics<'_>) -> Option<Step> {
    let span = value.span();
    let DeValue::Table(mut table) = value.into_inner() else {
        diags.at(span.start, "a step must be a table");
        return None;
    };
    let kind = match table.remove("kind").map(|k| (k.span(), k.into_inner())) {
        Some((_, DeValue::String(k))) => k.into_owned(),
        Some((s, _)) => {
            diags.at(s.start, "`kind` must be a string");
            return None;
        }
        None => {
            diags.at(span.start, format!("step has no `kind` (one of {})", KINDS.join(", ")));
            return None;
        }
    };
    let children = table.remove("steps");
    let step_id = match table.get("id").map(|v| v.get_ref()) {
        Some(DeValue::String(id)) => Some(id.to_string()),
        _ => None,
    };
    let de = || ValueDeserializer::from(Spanned::new(span.clone(), DeValue::Table(table.clone())));
    let nested = |diags: &mut Diagnostics<'_>| match children.clone() {
        Some(c) => steps_of(c, diags),
        None => {
            diags.at(span.start, format!("a {kind} step needs nested [[steps.steps]]"));
            Vec::new()
        }
    };
    if children.is_some() && kind != "repeat" && kind != "parallel" {
        diags.at(
            span.start,
            format!("a {kind} step cannot have nested steps (only repeat and parallel can)"),
        );
    }
    let parsed: Result<(Action, Option<String>, Option<String>), toml::de::Error> = match kind.as_str() {
        "await_connect" => AwaitConnect::deserialize(de())
            .map(|s| (s.name.clone(), s.id.clone(), Action::AwaitConnect(s)))
            .map(reorder),
        "send" => Send::deserialize(de())
            .map(|s| (s.name.clone(), s.id.clone(), Action::Send(s)))
            .map(reorder),
        "expect" => Expect::deserialize(de())
            .map(|s| (s.name.clone(), s.id.clone(), Action::Expect(s)))
            .map(reorder),
        "capture" => Capture::deserialize(de())
            .map(|s| (s.name.clone(), s.id.clone(), Action::Capture(s)))
            .map(reorder),
        "wait" => Wait::deserialize(de())
            .map(|s| (s.name.clone(), s.id.clone(), Action::Wait(s)))
            .map(reorder),
        "expect_conformance" => ExpectConformance::deserialize(de())
            .map(|s| (s.name.clone(), s.id.clone(), Action::ExpectConformance(s)))
            .map(reorder),
        "fault" => FaultStep::deserialize(de())
            .map(|s| (s.name.clone(), s.id.clone(), Action::Fault(Box::new(s))))
            .map(reorder),
        "clear_fault" => ClearFault::deserialize(de())
            .map(|s| (s.name.clone(), s.id.clone(), Action::ClearFault(s)))
            .map(reorder),
        "repeat" => {
            let inner = nested(diags);
            Repeat::deserialize(de())
                .map(|s| (s.name.clone(), s.id.clone(), Action::Repeat(s, inner)))
                .map(reorder)
        }
        "parallel" => {
            let inner = nested(diags);
            Parallel::deserialize(de())
                .map(|s| (s.name.clone(), s.id.clone(), Action::Parallel(inner)))
                .map(reorder)
        }
        other if RESERVED_KINDS.contains(&other) => {
            diags.at(
                span.start,
                format!("step kind `{other}` is reserved for a later face and not available in this version"),
            );
            return None;
        }
        other => {
            diags.at(
                span.start,
                format!("unknown step kind `{other}` (one of {})", KINDS.join(", ")),
            );
            return None;
        }
    };
    match parsed {
        Ok((action, name, id)) => Some(Step { name, id, span, action }),
        Err(e) => {
            diags.toml(&e, span.start);
            diags.broken_ids.extend(step_id);
            None
        }
    }
}

fn reorder<A>((name, id, action): (Option<String>, Option<String>, A)) -> (A, Option<String>, Option<String>) {
    (action, name, id)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
name = "software info"
description = "ReportSoftwareInfo gets a valid SoftwareInfo"
[[devices]]
name = "dut"
token = "kitchen"

[[steps]]
kind = "await_connect"
device = "dut"
within = "10s"

[[steps]]
kind = "send"
device = "dut"
directive = "System.ReportSoftwareInfo"

[[steps]]
kind = "expect"
id = "info"
device = "dut"
event = "System.SoftwareInfo"
within = "5s"
match."/event/payload/firmwareVersion" = { regex = '^[1-9][0-9]*$' }

[[steps]]
kind = "capture"
var = "fw"
pointer = "/event/payload/firmwareVersion"
from = "info"

[[steps]]
kind = "repeat"
times = 2
[[steps.steps]]
kind = "send"
device = "dut"
raw = "{{fw}} is not json"
"#;

    fn errors(text: &str) -> Vec<String> {
        parse(text, "s.toml")
            .unwrap_err()
            .into_iter()
            .map(|d| d.to_string())
            .collect()
    }

    #[test]
    fn a_good_file_parses() {
        let s = parse(GOOD, "s.toml").unwrap();
        assert_eq!(s.name, "software info");
        assert_eq!(s.devices[0].device_id(), "kitchen");
        assert_eq!(s.steps.len(), 5);
        let Action::Repeat(r, inner) = &s.steps[4].action else {
            panic!()
        };
        assert_eq!(r.times, Some(2));
        assert!(matches!(inner[0].action, Action::Send(_)));
        let Action::Expect(e) = &s.steps[2].action else {
            panic!()
        };
        assert_eq!(e.within, Some(Dur(std::time::Duration::from_secs(5))));
    }

    #[test]
    fn three_mistakes_three_located_errors() {
        let text = GOOD
            .replace("within = \"10s\"", "within = \"10 parsecs\"")
            .replace("event = \"System.SoftwareInfo\"", "evnt = \"System.SoftwareInfo\"")
            .replace("raw = \"{{fw}} is not json\"", "raw = \"{{fv}} is not json\"");
        let errs = errors(&text);
        assert_eq!(errs.len(), 3, "{errs:#?}");
        assert!(
            errs[0].starts_with("s.toml:11:10:") && errs[0].contains("bad duration"),
            "{}",
            errs[0]
        );
        assert!(
            errs[1].starts_with("s.toml:22:1:") && errs[1].contains("unknown field `evnt`"),
            "{}",
            errs[1]
        );
        assert!(
            errs[2].contains("`{{fv}}` is used before any step captures it"),
            "{}",
            errs[2]
        );
    }

    #[test]
    fn every_semantic_error_message() {
        let cases: &[(&str, &str)] = &[
            (
                "name='x'\n[[steps]]\nkind='wait'\nduration='1s'\n[[steps]]\nkind='expect'\ndevice='ghost'\nevent='A.B'",
                "unknown device `ghost`",
            ),
            (
                "name='x'\n[[devices]]\nname='d'\n[[steps]]\nkind='send'\ndevice='d'\ndirective='System.Nope'",
                "unknown directive `System.Nope`",
            ),
            (
                "name='x'\n[[devices]]\nname='d'\n[[steps]]\nkind='send'\ndevice='d'",
                "exactly one of `directive`, `json`, `raw`",
            ),
            (
                "name='x'\n[[steps]]\nkind='capture'\nvar='v'\npointer='/a'",
                "capture needs an earlier expect step",
            ),
            (
                "name='x'\n[[devices]]\nname='d'\n[[steps]]\nkind='expect'\nid='e'\ndevice='d'\nevent='A.B'\n[[steps]]\nkind='capture'\nvar='v'\npointer='/a'\nfrom='nope'",
                "no earlier expect step has that id",
            ),
            ("name='x'\n[[steps]]\nkind='dance'", "unknown step kind `dance`"),
            ("name='x'\n[[steps]]\nkind='sns'", "reserved for a later face"),
            ("name='x'\n[[steps]]\nkind='fault'", "missing field `then`"),
            ("name='x'\n[[steps]]\nduration='1s'", "step has no `kind`"),
            (
                "name='x'\n[[devices]]\nname='d'\n[[steps]]\nkind='expect_conformance'\ndevice='d'\nrule='be_nice'",
                "unknown rule `be_nice`",
            ),
            (
                "name='x'\n[[devices]]\nname='d'\n[[steps]]\nkind='expect'\ndevice='d'\nevent='A.B'\nnever=true",
                "`never` needs `within`",
            ),
            (
                "name='x'\n[[devices]]\nname='d'\n[[steps]]\nkind='expect'\ndevice='d'\nevent='A.B'\nmatch.'/a'={regex='('}",
                "bad regex",
            ),
            (
                "name='x'\n[[steps]]\nkind='repeat'\n[[steps.steps]]\nkind='wait'\nduration='1s'",
                "exactly one of `times` or `until`",
            ),
            ("name='x'\n[[steps]]\nkind='parallel'", "needs nested"),
            (
                "name='x'\n[config]\nauth='sometimes'\n[[steps]]\nkind='wait'\nduration='1s'",
                "[config]",
            ),
            ("name='x'", "at least one [[steps]]"),
            (
                "name='x'\n[[steps]]\nkind='clear_fault'\nfault='nope'",
                "no earlier fault step has that id",
            ),
            (
                "name='x'\n[[steps]]\nkind='fault'\nnow=true\nthen={action='goaway'}",
                "`now` acts on a device",
            ),
            (
                "name='x'\n[[devices]]\nname='d'\n[[steps]]\nkind='fault'\ndevice='d'\nnow=true\nthen={action='hold'}",
                "cannot be applied now",
            ),
            (
                "name='x'\n[[steps]]\nkind='fault'\nthen={action='status',status=42}",
                "not an HTTP status",
            ),
            (
                "name='x'\n[[steps]]\nkind='fault'\nthen={action='boom'}",
                "unknown variant `boom`",
            ),
            (
                "name='x'\n[[devices]]\nname='d'\n[[steps]]\nkind='expect'\ndevice='d'\nevent='A.B'\nafter='later'",
                "no earlier step has that id",
            ),
            ("nam='x'\n[[steps]]\nkind='wait'\nduration='1s'", "unknown field `nam`"),
            (
                "name='x'\n[[steps]]\nkind='wait'\nduration='1s'\nwithin='1s'",
                "unknown field `within`",
            ),
        ];
        for (text, want) in cases {
            let errs = errors(text);
            assert!(errs.iter().any(|e| e.contains(want)), "{text:?}: {errs:#?}");
        }
    }

    #[test]
    fn syntax_errors_are_located() {
        let errs = errors("name = 'x'\n[[steps]\nkind='wait'");
        assert_eq!(errs.len(), 1);
        assert!(errs[0].starts_with("s.toml:2:"), "{errs:?}");
    }
}

#[cfg(test)]
mod fault_steps {
    use super::*;

    #[test]
    fn fault_and_clear_fault_parse() {
        let s = parse(
            "name='f'\n[[devices]]\nname='d'\n[[steps]]\nkind='fault'\nid='slow'\ndevice='d'\nwhen={path='/ping'}\nthen={action='delay',ms=5}\ntimes=2\nduration='1m'\n[[steps]]\nkind='clear_fault'\nfault='slow'",
            "f.toml",
        )
        .unwrap();
        let Action::Fault(f) = &s.steps[0].action else { panic!() };
        assert_eq!(f.times, Some(2));
        assert_eq!(f.when.path.as_deref(), Some("/ping"));
        assert!(matches!(s.steps[1].action, Action::ClearFault(_)));
    }
}
