//! Reading scenario files: every mistake reported at once, each with
//! `file:line:column`.
//!
//! The document is parsed once into spanned TOML (every syntax error is
//! reported; a document with one goes no further, since what the parser
//! recovered would only mislead the checks). The head and each step table
//! are then deserialized separately with `lenient`, which reports every
//! unknown key and wrong type, each at its own location, and keeps what
//! parsed. Semantic checks (devices, captures, templates, directive names)
//! follow in `check`, on everything that parsed.

use super::lenient;
use super::model::*;
use std::fmt;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

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
    /// The `[[devices]]` list had a mistake: steps naming a device are not
    /// checked against it (they would all repeat that one mistake).
    pub devices_uncertain: bool,
    /// Regions the scenario's `[config]` declares, for `{{region.NAME.url}}`.
    pub regions: Vec<String>,
}

impl<'a> Diagnostics<'a> {
    pub fn new(file: &'a str, text: &'a str) -> Diagnostics<'a> {
        Diagnostics {
            file,
            text,
            list: Vec::new(),
            broken_ids: Default::default(),
            devices_uncertain: false,
            regions: Vec::new(),
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
}

/// Parse scenario text. `Err` carries every problem found.
pub fn parse(text: &str, file: &str) -> Result<Scenario, Vec<Diagnostic>> {
    let mut diags = Diagnostics::new(file, text);
    let (root, syntax) = DeTable::parse_recoverable(text);
    if !syntax.is_empty() {
        for e in &syntax {
            diags.at(e.span().map_or(0, |s| s.start), e.message().trim().to_string());
        }
        return Err(diags.list);
    }
    let span = root.span();
    let mut table = root.into_inner();
    let steps_value = table.remove("steps");
    if let Some(config) = table.get("config") {
        config_regions(config, &mut diags);
        // Located errors in [config]; the head keeps it as a plain table.
        let checked = lenient::deserialize::<crate::config::Config>(config.clone(), "[config]: ", &mut diags);
        if !checked.is_clean() {
            table.remove("config");
        }
    }
    let devices_span = table.get("devices").map(|d| d.span());
    let head = lenient::deserialize::<Head>(Spanned::new(span, DeValue::Table(table)), "", &mut diags);
    let devices_hit = |at: &usize| devices_span.as_ref().is_some_and(|s| s.contains(at));
    diags.devices_uncertain = head.value.is_none() || head.errors_at.iter().any(devices_hit);
    let steps = match steps_value {
        Some(v) => steps_of(v, &mut diags),
        None => {
            diags.at(0, "a scenario needs at least one [[steps]] table");
            Vec::new()
        }
    };
    let head = head.value.unwrap_or_else(|| Head {
        name: String::new(),
        description: None,
        config: None,
        devices: Vec::new(),
    });
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
        diags.list.sort_by_key(|d| (d.line, d.column));
        Err(diags.list)
    }
}

/// The region names `[[config.regions]]` declares.
fn config_regions(config: &Spanned<DeValue<'_>>, diags: &mut Diagnostics<'_>) {
    let Some(DeValue::Array(regions)) = config.get_ref().get("regions").map(|r| r.get_ref()) else {
        return;
    };
    for r in regions.iter() {
        if let Some(name) = r.get_ref().get("name").and_then(|n| n.get_ref().as_str()) {
            diags.regions.push(name.to_string());
        }
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
        DeValue::Array(items) => items.iter().filter_map(|item| step(item.clone(), diags)).collect(),
        _ => {
            diags.at(at, "`steps` must be an array of tables ([[steps]])");
            Vec::new()
        }
    }
}

/// Keys whose strings may hold `{{templates}}` (see the scenarios README).
const TEMPLATED: &[&str] = &["payload", "json", "raw", "dialog_request_id", "match", "until"];

/// Every `{{name}}` in the templated values of a step table, each with the
/// byte offset of its own `{{` (or of its string, when escapes make the
/// two differ).
fn templates(table: &toml::de::DeTable<'_>, text: &str) -> Vec<(String, usize)> {
    fn walk(v: &Spanned<DeValue<'_>>, text: &str, out: &mut Vec<(String, usize)>) {
        match v.get_ref() {
            DeValue::String(s) => {
                let span = v.span();
                let literal = text.get(span.clone()).unwrap_or("");
                let mut from = 0;
                for name in super::template::names(s) {
                    let found = literal[from..].find("{{").map(|i| from + i);
                    let at = match found {
                        Some(i) if literal[i + 2..].trim_start().starts_with(name.as_str()) => {
                            from = i + 2;
                            span.start + i
                        }
                        _ => span.start,
                    };
                    out.push((name, at));
                }
            }
            DeValue::Array(a) => a.iter().for_each(|x| walk(x, text, out)),
            DeValue::Table(t) => t.values().for_each(|x| walk(x, text, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    for key in TEMPLATED {
        if let Some(v) = table.get(*key) {
            walk(v, text, &mut out);
        }
    }
    out.sort_by_key(|(_, at)| *at);
    out
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
    let found = templates(&table, diags.text);
    let whole = Spanned::new(span.clone(), DeValue::Table(table));
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
    fn read<T: serde::de::DeserializeOwned>(
        whole: Spanned<DeValue<'_>>,
        diags: &mut Diagnostics<'_>,
        name_id: impl Fn(&T) -> (Option<String>, Option<String>),
        action: impl FnOnce(T) -> Action,
    ) -> Option<(Action, Option<String>, Option<String>, bool)> {
        let out = lenient::deserialize::<T>(whole, "", diags);
        let damaged = !out.is_clean();
        let v = out.value?;
        let (name, id) = name_id(&v);
        Some((action(v), name, id, damaged))
    }
    let parsed = match kind.as_str() {
        "await_connect" => read(
            whole,
            diags,
            |s: &AwaitConnect| (s.name.clone(), s.id.clone()),
            Action::AwaitConnect,
        ),
        "send" => read(whole, diags, |s: &Send| (s.name.clone(), s.id.clone()), Action::Send),
        "expect" => read(
            whole,
            diags,
            |s: &Expect| (s.name.clone(), s.id.clone()),
            Action::Expect,
        ),
        "capture" => read(
            whole,
            diags,
            |s: &Capture| (s.name.clone(), s.id.clone()),
            Action::Capture,
        ),
        "wait" => read(whole, diags, |s: &Wait| (s.name.clone(), s.id.clone()), Action::Wait),
        "expect_conformance" => read(
            whole,
            diags,
            |s: &ExpectConformance| (s.name.clone(), s.id.clone()),
            Action::ExpectConformance,
        ),
        "fault" => read(
            whole,
            diags,
            |s: &FaultStep| (s.name.clone(), s.id.clone()),
            |s| Action::Fault(Box::new(s)),
        ),
        "clear_fault" => read(
            whole,
            diags,
            |s: &ClearFault| (s.name.clone(), s.id.clone()),
            Action::ClearFault,
        ),
        "discover" => read(
            whole,
            diags,
            |s: &Discover| (s.name.clone(), s.id.clone()),
            Action::Discover,
        ),
        "skill_directive" => read(
            whole,
            diags,
            |s: &SkillDirective| (s.name.clone(), s.id.clone()),
            Action::SkillDirective,
        ),
        "expect_gateway_event" => read(
            whole,
            diags,
            |s: &ExpectGatewayEvent| (s.name.clone(), s.id.clone()),
            Action::ExpectGatewayEvent,
        ),
        "expect_registry" => read(
            whole,
            diags,
            |s: &ExpectRegistry| (s.name.clone(), s.id.clone()),
            Action::ExpectRegistry,
        ),
        "publish_event" => read(
            whole,
            diags,
            |s: &PublishEvent| (s.name.clone(), s.id.clone()),
            |s| Action::PublishEvent(Box::new(s)),
        ),
        "expect_delivery" => read(
            whole,
            diags,
            |s: &ExpectDelivery| (s.name.clone(), s.id.clone()),
            Action::ExpectDelivery,
        ),
        "expect_subscription_confirmed" => read(
            whole,
            diags,
            |s: &ExpectSubscriptionConfirmed| (s.name.clone(), s.id.clone()),
            Action::ExpectSubscriptionConfirmed,
        ),
        "expect_dead_letter" => read(
            whole,
            diags,
            |s: &ExpectDeadLetter| (s.name.clone(), s.id.clone()),
            Action::ExpectDeadLetter,
        ),
        "activate_subscription" => read(
            whole,
            diags,
            |s: &ActivateSubscription| (s.name.clone(), s.id.clone()),
            Action::ActivateSubscription,
        ),
        "run_automation" => read(
            whole,
            diags,
            |s: &RunAutomation| (s.name.clone(), s.id.clone()),
            Action::RunAutomation,
        ),
        "repeat" => {
            let inner = nested(diags);
            read(
                whole,
                diags,
                |s: &Repeat| (s.name.clone(), s.id.clone()),
                |s| Action::Repeat(s, inner),
            )
        }
        "parallel" => {
            let inner = nested(diags);
            read(
                whole,
                diags,
                |s: &Parallel| (s.name.clone(), s.id.clone()),
                |_| Action::Parallel(inner),
            )
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
        Some((action, name, id, damaged)) => Some(Step {
            name,
            id,
            span,
            action,
            templates: found,
            damaged,
        }),
        None => {
            diags.broken_ids.extend(step_id);
            None
        }
    }
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
    fn smart_home_steps_parse_and_are_checked() {
        let text = "name = 't'\n\
            [[steps]]\nkind = 'discover'\nuser = 'u'\naccepted = ['a']\ndropped = [{ endpoint = 'b', rule = '6' }]\n\
            [[steps]]\nkind = 'skill_directive'\nuser = 'u'\ndirective = 'Alexa.PowerController.TurnOn'\nendpoint = 'a'\nanswer = 'Response'\n\
            [[steps]]\nkind = 'expect_gateway_event'\nuser = 'u'\nevent = 'Alexa.ChangeReport'\nproperty = { name = 'powerState', value = 'ON' }\n\
            [[steps]]\nkind = 'expect_registry'\nuser = 'u'\nendpoint = 'a'\npresent = false\n";
        let s = parse(text, "s.toml").unwrap();
        let kinds: Vec<&str> = s.steps.iter().map(|s| s.action.kind()).collect();
        assert_eq!(
            kinds,
            ["discover", "skill_directive", "expect_gateway_event", "expect_registry"]
        );
        let errs = errors(
            "name = 't'\n[[steps]]\nkind = 'discover'\nuser = 'u'\nverdict = 'slow'\n\
             [[steps]]\nkind = 'skill_directive'\nuser = 'u'\ndirective = 'TurnOn'\n\
             [[steps]]\nkind = 'expect_registry'\nuser = 'u'\nendpoint = 'a'\nusr = 'x'\n",
        );
        assert_eq!(errs.len(), 3, "{errs:#?}");
        assert!(
            errs[0].contains("verdict `slow` is not one of ok, invalid, timeout"),
            "{}",
            errs[0]
        );
        assert!(
            errs[1].contains("directive `TurnOn` must be Namespace.Name"),
            "{}",
            errs[1]
        );
        assert!(errs[2].contains("usr"), "{}", errs[2]);
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
            ("name='x'\n[[steps]]\nkind='sns'", "unknown step kind `sns`"),
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
                "name='x'\n[[steps]]\nkind='wait'\nduration='999999999999h'",
                "is too long: at most 720h (30 days)",
            ),
            (
                "name='x'\n[[devices]]\nname='d'\n[[steps]]\nkind='expect'\ndevice='d'\nevent='A.B'\ncount=0\nwithin='1s'\ncapture={v='/a'}",
                "`count = 0` matches nothing to capture from",
            ),
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

    /// The texts of `errors`, with their `line:column`.
    fn located(text: &str) -> Vec<String> {
        parse(text, "s.toml")
            .unwrap_err()
            .into_iter()
            .map(|d| format!("{}:{} {}", d.line, d.column, d.message))
            .collect()
    }

    #[test]
    fn every_unknown_key_is_reported_at_its_own_key() {
        let errs = located(
            "name = 'x'\ndescripton = 'typo'\n[[devices]]\nname = 'dut'\n\n[[steps]]\nkind = 'expect'\ndevice = 'dut'\nevnt = 'A.B'\nwithinn = '5s'\nevent = 'A.B'\n",
        );
        assert_eq!(errs.len(), 3, "{errs:#?}");
        assert!(errs[0].starts_with("2:1 unknown field `descripton`"), "{errs:#?}");
        assert!(errs[1].starts_with("9:1 unknown field `evnt`"), "{errs:#?}");
        assert!(errs[2].starts_with("10:1 unknown field `withinn`"), "{errs:#?}");
        // In a nested table too, and a fault's `then`.
        let errs = located(
            "name='x'\n[[devices]]\nname='d'\n[[steps]]\nkind='fault'\ndevice='d'\nthen={action='status', statsu=1, status=503, bdy='x'}\n[[steps]]\nkind='expect'\ndevice='d'\nevent='A.B'\nmatch.'/a'={equals=1, regx='x', typ='string'}",
        );
        assert_eq!(errs.len(), 4, "{errs:#?}");
        assert!(errs.iter().any(|e| e.contains("unknown field `statsu`")), "{errs:#?}");
        assert!(errs.iter().any(|e| e.contains("unknown field `bdy`")), "{errs:#?}");
        assert!(
            errs.iter().any(|e| e.starts_with("12:23 unknown field `regx`")),
            "{errs:#?}"
        );
        assert!(
            errs.iter().any(|e| e.starts_with("12:33 unknown field `typ`")),
            "{errs:#?}"
        );
    }

    #[test]
    fn type_errors_and_semantic_errors_are_reported_together() {
        let errs = located(
            "name = 'x'\n[[devices]]\nname = 'dut'\n[[steps]]\nkind = 'expect'\ndevice = 'ghost'\nevent = 'A.B'\ncount = 'two'\nnever = 'yes'\n",
        );
        assert_eq!(errs.len(), 3, "{errs:#?}");
        assert!(errs[0].starts_with("6:10 unknown device `ghost`"), "{errs:#?}");
        assert!(errs[1].starts_with("8:9 invalid type: string \"two\""), "{errs:#?}");
        assert!(errs[2].starts_with("9:9 invalid type: string \"yes\""), "{errs:#?}");
        // A wrong type in the head does not hide the steps' mistakes either.
        let errs = located("name = 5\n[[steps]]\nkind = 'capture'\nvar = 'v'\npointer = '/a'\n");
        assert_eq!(errs.len(), 2, "{errs:#?}");
        assert!(errs[0].starts_with("1:8 invalid type: integer `5`"), "{errs:#?}");
        assert!(errs[1].contains("capture needs an earlier expect step"), "{errs:#?}");
    }

    #[test]
    fn templates_naming_undeclared_regions_or_devices_are_located_at_the_template() {
        let errs = located(
            "name = 'x'\n[config]\n[[config.regions]]\nname = 'FE'\nlisten = '127.0.0.1:0'\n[[devices]]\nname = 'dut'\n[[steps]]\nkind = 'send'\ndevice = 'dut'\ndirective = 'System.SetEndpoint'\npayload = { endpoint = '{{region.EU.url}}',\n  other = 'x {{device.dtu.id}}', fine = '{{region.FE.url}} {{device.dut.id}}' }\n",
        );
        assert_eq!(errs.len(), 2, "{errs:#?}");
        assert!(
            errs[0].starts_with(
                "12:25 `{{region.EU.url}}`: region `EU` is not declared in [[config.regions]] (declared: FE)"
            ),
            "{errs:#?}"
        );
        assert!(
            errs[1].starts_with("13:14 `{{device.dtu.id}}`: device `dtu` is not declared in [[devices]] (declared: dut); did you mean `dut`?"),
            "{errs:#?}"
        );
        let errs =
            located("name='x'\n[[devices]]\nname='d'\n[[steps]]\nkind='send'\ndevice='d'\nraw='{{region.EU.url}}'");
        assert!(
            errs[0].contains("region `EU` is not declared in [[config.regions]] (declared: none)"),
            "{errs:#?}"
        );
    }

    #[test]
    fn a_misspelt_capture_gets_a_did_you_mean() {
        let errs = located(
            "name='x'\n[[devices]]\nname='d'\n[[steps]]\nkind='expect'\ndevice='d'\nevent='A.B'\ncapture={firmware='/f'}\n[[steps]]\nkind='send'\ndevice='d'\nraw='v={{firmwre}}'\n[[steps]]\nkind='send'\ndevice='d'\nraw='{{zzz}}'",
        );
        assert_eq!(errs.len(), 2, "{errs:#?}");
        assert_eq!(
            errs[0],
            "12:8 `{{firmwre}}` is used before any step captures it; did you mean `{{firmware}}`?"
        );
        assert_eq!(errs[1], "16:6 `{{zzz}}` is used before any step captures it");
    }

    #[test]
    fn numeric_matchers_take_a_template_or_say_why_not() {
        let text = "name='x'\n[[devices]]\nname='d'\n[[steps]]\nkind='expect'\ndevice='d'\nevent='A.B'\ncapture={n='/n'}\n[[steps]]\nkind='expect'\ndevice='d'\nevent='A.B'\nmatch.'/m'={min='{{n}}', max=10}";
        let s = parse(text, "s.toml").unwrap();
        let Action::Expect(e) = &s.steps[1].action else {
            panic!()
        };
        assert_eq!(e.fields["/m"].min, Some(Bound::Template("n".into())));
        assert_eq!(e.fields["/m"].max, Some(Bound::Number(10.0)));
        let errs = located(&text.replace("min='{{n}}'", "min='{{n}} + 1'"));
        assert_eq!(errs.len(), 1, "{errs:#?}");
        assert!(
            errs[0].starts_with("13:17 a numeric bound is a number or exactly one `{{variable}}`, not \"{{n}} + 1\""),
            "{errs:#?}"
        );
        let errs = located(&text.replace("min='{{n}}'", "min='{{m}}'"));
        assert_eq!(errs.len(), 1, "{errs:#?}");
        assert!(
            errs[0].starts_with("13:18 `{{m}}` is used before any step captures it; did you mean `{{n}}`?"),
            "{errs:#?}"
        );
    }

    #[test]
    fn config_mistakes_are_located_too() {
        let errs = located("name='x'\n[config]\nauth='sometimes'\nseeed=1\n[[steps]]\nkind='wait'\nduration='1s'");
        assert_eq!(errs.len(), 2, "{errs:#?}");
        assert!(
            errs[0].starts_with("3:6 [config]: unknown variant `sometimes`"),
            "{errs:#?}"
        );
        assert!(errs[1].starts_with("4:1 [config]: unknown field `seeed`"), "{errs:#?}");
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
