//! Semantic checks of a parsed scenario: devices that exist, captures set
//! before they are used, templates that name declared regions and devices,
//! directive and rule names that exist, step fields that make sense
//! together. A misspelt name gets a "did you mean".

use super::load::Diagnostics;
use super::model::*;
use super::template;
use std::collections::HashSet;

/// Directives the simulator knows by name (`send.directive`); anything else
/// can still be sent whole with `json`.
pub const KNOWN_DIRECTIVES: &[&str] = &[
    "System.ResetUserInactivity",
    "System.SetEndpoint",
    "System.ReportSoftwareInfo",
    "Alexa.ApiGateway.SetGateway",
    "SpeechRecognizer.StopCapture",
    "SpeechRecognizer.ExpectSpeech",
    "SpeechSynthesizer.Speak",
    "Speaker.SetVolume",
    "Speaker.AdjustVolume",
    "Speaker.SetMute",
    "Alerts.SetAlert",
    "Alerts.DeleteAlert",
    "AudioPlayer.Play",
    "AudioPlayer.Stop",
    "AudioPlayer.ClearQueue",
    "Notifications.SetIndicator",
    "Notifications.ClearIndicator",
    "InteractionModel.NewDialogRequest",
];

/// Verdicts `expect_conformance` may ask for.
pub const VERDICTS: &[&str] = &["pass", "fail", "pending", "not_exercised"];

const MATCHER_TYPES: &[&str] = &["string", "number", "integer", "boolean", "object", "array", "null"];

struct Scope<'s> {
    devices: HashSet<&'s str>,
    expect_ids: HashSet<String>,
    expects_seen: usize,
    fault_ids: HashSet<String>,
    step_ids: HashSet<String>,
}

/// Check everything `load` could not; adds to `diags`.
pub fn check(s: &Scenario, diags: &mut Diagnostics<'_>) {
    let mut devices = HashSet::new();
    for a in &s.devices {
        if !devices.insert(a.name.as_str()) {
            diags.at(0, format!("device `{}` is declared twice", a.name));
        }
    }
    let broken = diags.broken_ids.clone();
    let mut scope = Scope {
        devices,
        expects_seen: broken.len(),
        expect_ids: broken.clone(),
        fault_ids: broken.clone(),
        step_ids: broken,
    };
    let mut vars = HashSet::new();
    steps(&s.steps, &mut scope, &mut vars, diags);
}

fn steps(list: &[Step], scope: &mut Scope<'_>, vars: &mut HashSet<String>, diags: &mut Diagnostics<'_>) {
    for step in list {
        one(step, scope, vars, diags);
    }
}

fn device(d: &toml::Spanned<String>, scope: &Scope<'_>, diags: &mut Diagnostics<'_>) {
    if !diags.devices_uncertain && !scope.devices.contains(d.get_ref().as_str()) {
        let mut known: Vec<_> = scope.devices.iter().copied().collect();
        known.sort_unstable();
        diags.at(
            d.span().start,
            format!(
                "unknown device `{}` (declared: {}){}",
                d.get_ref(),
                known.join(", "),
                did_you_mean(d.get_ref(), known.iter().copied(), "")
            ),
        );
    }
}

/// The one of `known` closest to `name`, if it is close enough to be a
/// likely misspelling (at most a third of the letters off).
pub fn closest<'k>(name: &str, known: impl IntoIterator<Item = &'k str>) -> Option<&'k str> {
    let mut best: Option<(usize, &str)> = None;
    for k in known {
        let d = strsim::damerau_levenshtein(name, k);
        let close = d <= (name.chars().count().max(k.chars().count()) / 3).max(1);
        if close && best.is_none_or(|(b, bk)| (d, k) < (b, bk)) {
            best = Some((d, k));
        }
    }
    best.map(|(_, k)| k)
}

/// `; did you mean `x`?` for the closest of `known`, if one is close;
/// `wrap` = `{{` shows it as a template.
fn did_you_mean<'k>(name: &str, known: impl IntoIterator<Item = &'k str>, wrap: &str) -> String {
    let close = if wrap.is_empty() { "" } else { "}}" };
    closest(name, known)
        .map(|k| format!("; did you mean `{wrap}{k}{close}`?"))
        .unwrap_or_default()
}

/// The built-ins that name no region or device.
const PLAIN_BUILTINS: &[&str] = &["uuid", "now", "avs_url", "plain_url", "control_url"];

/// Check one `{{name}}` at byte offset `at`.
fn template_use(name: &str, at: usize, scope: &Scope<'_>, vars: &HashSet<String>, diags: &mut Diagnostics<'_>) {
    if PLAIN_BUILTINS.contains(&name) || vars.contains(name) {
        return;
    }
    if let Some(region) = name.strip_prefix("region.").and_then(|r| r.strip_suffix(".url")) {
        if !diags.regions.iter().any(|r| r == region) {
            let declared = if diags.regions.is_empty() {
                "none".to_string()
            } else {
                diags.regions.join(", ")
            };
            let hint = did_you_mean(region, diags.regions.iter().map(String::as_str), "");
            diags.at(
                at,
                format!(
                    "`{{{{{name}}}}}`: region `{region}` is not declared in [[config.regions]] (declared: {declared}){hint}"
                ),
            );
        }
        return;
    }
    if let Some(device) = name.strip_prefix("device.").and_then(|d| d.strip_suffix(".id")) {
        if !diags.devices_uncertain && !scope.devices.contains(device) {
            let mut known: Vec<_> = scope.devices.iter().copied().collect();
            known.sort_unstable();
            let hint = did_you_mean(device, known.iter().copied(), "");
            diags.at(
                at,
                format!(
                    "`{{{{{name}}}}}`: device `{device}` is not declared in [[devices]] (declared: {}){hint}",
                    known.join(", ")
                ),
            );
        }
        return;
    }
    let mut candidates: Vec<&str> = vars.iter().map(String::as_str).collect();
    candidates.extend(PLAIN_BUILTINS);
    candidates.sort_unstable();
    let hint = did_you_mean(name, candidates, "{{");
    diags.at(
        at,
        format!("`{{{{{name}}}}}` is used before any step captures it{hint}"),
    );
}

/// Check every template of `step`, each at its own location.
fn templates_in(step: &Step, scope: &Scope<'_>, vars: &HashSet<String>, diags: &mut Diagnostics<'_>) {
    for (name, at) in &step.templates {
        template_use(name, *at, scope, vars, diags);
    }
}

fn matchers(fields: &std::collections::BTreeMap<String, Matcher>, at: usize, diags: &mut Diagnostics<'_>) {
    for (pointer, m) in fields {
        if !pointer.is_empty() && !pointer.starts_with('/') {
            diags.at(
                at,
                format!("match key {pointer:?} must be a JSON pointer starting with `/`"),
            );
        }
        if let Some(re) = m.regex.as_ref().filter(|re| template::names(re).is_empty()) {
            if let Err(e) = regex::Regex::new(re) {
                diags.at(at, format!("match {pointer}: bad regex: {e}"));
            }
        }
        if let Some(k) = &m.kind {
            if !MATCHER_TYPES.contains(&k.as_str()) {
                diags.at(
                    at,
                    format!("match {pointer}: type {k:?} is not one of {}", MATCHER_TYPES.join(", ")),
                );
            }
        }
        if m.equals.is_none()
            && m.regex.is_none()
            && m.exists.is_none()
            && m.kind.is_none()
            && m.min.is_none()
            && m.max.is_none()
        {
            diags.at(
                at,
                format!("match {pointer}: give at least one of equals, regex, exists, type, min, max"),
            );
        }
    }
}

fn one(step: &Step, scope: &mut Scope<'_>, vars: &mut HashSet<String>, diags: &mut Diagnostics<'_>) {
    one_kind(step, scope, vars, diags);
    if let Some(id) = &step.id {
        scope.step_ids.insert(id.clone());
    }
}

fn one_kind(step: &Step, scope: &mut Scope<'_>, vars: &mut HashSet<String>, diags: &mut Diagnostics<'_>) {
    let at = step.span.start;
    // How keys fit together is not judged on a step missing one of them already reported.
    let whole = !step.damaged;
    match &step.action {
        Action::AwaitConnect(a) => device(&a.device, scope, diags),
        Action::Send(s) => {
            device(&s.device, scope, diags);
            let forms = [s.directive.is_some(), s.json.is_some(), s.raw.is_some()]
                .iter()
                .filter(|b| **b)
                .count();
            if forms != 1 && whole {
                diags.at(at, "a send step needs exactly one of `directive`, `json`, `raw`");
            }
            if let Some(d) = &s.directive {
                if !KNOWN_DIRECTIVES.contains(&d.get_ref().as_str()) {
                    diags.at(
                        d.span().start,
                        format!(
                            "unknown directive `{}` (send it whole with `json` instead)",
                            d.get_ref()
                        ),
                    );
                }
            } else if s.payload.is_some() && whole {
                diags.at(at, "`payload` goes with `directive`");
            }
            templates_in(step, scope, vars, diags);
        }
        Action::Expect(e) => {
            device(&e.device, scope, diags);
            if e.event.is_some() == e.request.is_some() && whole {
                diags.at(at, "an expect step needs exactly one of `event` or `request`");
            }
            if e.never && (e.count.is_some() || e.within.is_none()) && whole {
                diags.at(at, "`never` needs `within` (the window) and no `count`");
            }
            if e.count == Some(0) && !e.capture.is_empty() {
                diags.at(at, "`count = 0` matches nothing to capture from (it is `never = true`)");
            }
            matchers(&e.fields, at, diags);
            templates_in(step, scope, vars, diags);
            if let Some(after) = &e.after {
                if !scope.step_ids.contains(after.get_ref()) {
                    diags.at(
                        after.span().start,
                        format!("after `{}`: no earlier step has that id", after.get_ref()),
                    );
                }
            }
            if let Some(id) = &step.id {
                scope.expect_ids.insert(id.clone());
            }
            scope.expects_seen += 1;
            vars.extend(e.capture.keys().cloned());
        }
        Action::Capture(c) => {
            if let Some(from) = &c.from {
                if !scope.expect_ids.contains(from.get_ref()) {
                    diags.at(
                        from.span().start,
                        format!("capture from `{}`: no earlier expect step has that id", from.get_ref()),
                    );
                }
            } else if scope.expects_seen == 0 {
                diags.at(at, "capture needs an earlier expect step");
            }
            vars.insert(c.var.get_ref().clone());
        }
        Action::Wait(_) => {}
        Action::Repeat(r, inner) => {
            if r.times.is_some() == r.until.is_some() && whole {
                diags.at(at, "a repeat step needs exactly one of `times` or `until`");
            }
            if r.max.is_some() && r.until.is_none() && whole {
                diags.at(at, "`max` bounds `until`; with `times` leave it out");
            }
            if let Some(u) = &r.until {
                device(&u.device, scope, diags);
                matchers(&u.fields, at, diags);
            }
            steps(inner, scope, vars, diags);
            // `until` is judged after each round: what the rounds capture counts.
            templates_in(step, scope, vars, diags);
        }
        Action::Parallel(inner) => {
            // Each branch sees what was set before the group; afterwards all of it.
            let mut after = vars.clone();
            for branch in inner {
                let mut mine = vars.clone();
                one(branch, scope, &mut mine, diags);
                after.extend(mine);
            }
            *vars = after;
        }
        Action::Fault(f) => {
            if let Some(d) = &f.device {
                device(d, scope, diags);
            }
            let rule = crate::faults::Rule {
                id: None,
                when: f.when.clone(),
                then: f.then.clone(),
                times: f.times,
            };
            if let Err(e) = rule.validate() {
                diags.at(at, e);
            }
            if f.now {
                use crate::faults::Action as A;
                if f.device.is_none() {
                    diags.at(at, "`now` acts on a device: give `device`");
                }
                let now_able = matches!(
                    f.then,
                    A::Goaway { .. }
                        | A::EndDownchannel
                        | A::Reset { .. }
                        | A::RevokeToken
                        | A::ExpireToken
                        | A::TcpReset
                        | A::Latency { .. }
                        | A::Bandwidth { .. }
                        | A::Stall { .. }
                        | A::CloseAfter { .. }
                        | A::StopPingAcks
                        | A::MaxConcurrentStreams { .. }
                );
                if !now_able {
                    diags.at(
                        at,
                        format!(
                            "{} cannot be applied now; leave out `now` to install it as a rule",
                            f.then.describe()
                        ),
                    );
                }
            }
            if let Some(id) = &step.id {
                scope.fault_ids.insert(id.clone());
            }
        }
        Action::ClearFault(c) => {
            if !scope.fault_ids.contains(c.fault.get_ref()) {
                diags.at(
                    c.fault.span().start,
                    format!("clear_fault `{}`: no earlier fault step has that id", c.fault.get_ref()),
                );
            }
        }
        Action::Discover(d) => skill_verdict(d.verdict.as_deref(), at, diags),
        Action::SkillDirective(d) => {
            skill_verdict(d.verdict.as_deref(), at, diags);
            if !d.directive.contains('.') {
                diags.at(at, format!("directive `{}` must be Namespace.Name", d.directive));
            }
            templates_in(step, scope, vars, diags);
        }
        Action::ExpectGatewayEvent(e) => {
            if let Some(s) = e.status {
                if !(100..=599).contains(&s) {
                    diags.at(at, format!("status {s} is not an HTTP status"));
                }
            }
        }
        Action::ExpectRegistry(r) => {
            if r.present == Some(false) && r.property.is_some() {
                diags.at(at, "`property` needs the endpoint present");
            }
        }
        Action::PublishEvent(_)
        | Action::ExpectDelivery(_)
        | Action::ExpectSubscriptionConfirmed(_)
        | Action::ExpectDeadLetter(_)
        | Action::ActivateSubscription(_)
        | Action::RunAutomation(_) => crate::scenario::runner::sns::check(&step.action, at, diags),
        Action::ExpectConformance(c) => {
            device(&c.device, scope, diags);
            let rules: Vec<&str> = crate::avs::conformance::Rule::ALL.iter().map(|r| r.name()).collect();
            if !rules.contains(&c.rule.get_ref().as_str()) {
                diags.at(
                    c.rule.span().start,
                    format!("unknown rule `{}` (one of {})", c.rule.get_ref(), rules.join(", ")),
                );
            }
            if let Some(v) = &c.verdict {
                if !VERDICTS.contains(&v.get_ref().as_str()) {
                    diags.at(
                        v.span().start,
                        format!("verdict `{}` is not one of {}", v.get_ref(), VERDICTS.join(", ")),
                    );
                }
            }
        }
    }
}

/// A smart home step's `verdict` must be one an invocation can have.
fn skill_verdict(v: Option<&str>, at: usize, diags: &mut Diagnostics<'_>) {
    if let Some(v) = v.filter(|v| !SKILL_VERDICTS.contains(v)) {
        diags.at(at, format!("verdict `{v}` is not one of {}", SKILL_VERDICTS.join(", ")));
    }
}
