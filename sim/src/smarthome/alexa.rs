//! Alexa's side of a conversation with a skill: build the directive for a
//! user, invoke the user's skill within its budget (fault rules of face
//! `skill` first), judge the answer, bring the registry up to date, and
//! journal both halves under face `skill`.
//!
//! The control API and scenario steps both call these functions, so a
//! discovery started either way is the same discovery.

use super::directive::{self, Control, Scope};
use super::invoke::{self, Outcome};
use super::judge::{self, AnswerKind, Finding, Severity};
use super::registry::Pending;
use super::{SkillDecl, UserDecl};
use crate::faults::{Action, Point};
use crate::journal::{Face, Kind, Record};
use crate::state::State;
use serde::Serialize;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

/// Why Alexa could not even send a directive.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AlexaError {
    #[error("no user {0:?} in [[users]]")]
    UnknownUser(String),
    #[error("user {user:?} names skill {skill:?}, which [[skills]] does not declare")]
    UnknownSkill { user: String, skill: String },
    /// The directive asked for cannot be built (a value out of range...).
    #[error("{0}")]
    BadDirective(String),
    /// The skill already runs `smarthome.max_invocations` invocations.
    #[error("skill {0:?} is busy: smarthome.max_invocations invocations are running")]
    Busy(String),
}

/// How one invocation ended, as Alexa would record it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// An answer Alexa accepts (it may carry warnings).
    Ok,
    /// An answer Alexa rejects (the findings say why).
    Invalid,
    /// No answer within the budget: SKILL_RESPONSE_TIMEOUT_EXCEPTION.
    Timeout,
    /// The handler failed (non-zero exit, signal, HTTP error status).
    Crashed,
    NotJson,
    TooLarge,
    Unreachable,
}

/// One directive and what came of it.
#[derive(Debug, Clone, Serialize)]
pub struct Exchange {
    pub user: String,
    pub skill: String,
    pub verdict: Verdict,
    /// The skill's answer, when it gave a JSON one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub answer: Option<Value>,
    /// What failed, for the verdicts without an answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    pub findings: Vec<Finding>,
    pub duration_ms: u64,
    pub directive: Value,
    /// Journal ids of the directive and answer entries (the second is 0
    /// until the answer is journaled).
    pub journal: [u64; 2],
}

/// A discovery: the exchange plus Alexa's endpoint verdict.
#[derive(Debug, Clone, Serialize)]
pub struct DiscoveryReport {
    pub accepted: Vec<String>,
    pub dropped: Vec<judge::Dropped>,
    #[serde(flatten)]
    pub exchange: Exchange,
}

/// A control directive (or ReportState, AcceptGrant, any raw one).
#[derive(Debug, Clone, Serialize)]
pub struct DirectiveReport {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// The answer's kind (`"kind": "Response"`, `"DeferredResponse"`,
    /// `"ErrorResponse"` with its `type` and `message`...), flattened.
    #[serde(flatten)]
    pub kind: Option<AnswerKind>,
    #[serde(flatten)]
    pub exchange: Exchange,
}

/// What a caller asks Alexa to send to one endpoint.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirectiveRequest {
    pub user: String,
    #[serde(default)]
    pub endpoint: Option<String>,
    pub namespace: String,
    pub name: String,
    #[serde(default = "empty_object")]
    pub payload: Value,
}

fn empty_object() -> Value {
    json!({})
}

/// The user, their skill, and a place among the skill's invocations.
fn find<'a>(state: &'a State, user: &str) -> Result<(&'a UserDecl, &'a SkillDecl, Slot), AlexaError> {
    let config = &state.config;
    let u = config
        .users
        .iter()
        .find(|u| u.id == user)
        .ok_or_else(|| AlexaError::UnknownUser(user.into()))?;
    let s = config
        .skills
        .iter()
        .find(|s| s.id == u.skill)
        .ok_or_else(|| AlexaError::UnknownSkill {
            user: user.into(),
            skill: u.skill.clone(),
        })?;
    let slot = state
        .smarthome
        .invocation_slot(&s.id)
        .ok_or_else(|| AlexaError::Busy(s.id.clone()))?;
    Ok((u, s, slot))
}

/// Held while an invocation runs.
type Slot = tokio::sync::OwnedSemaphorePermit;

/// The scope Alexa puts in the user's directives.
fn scope(user: &UserDecl) -> Scope {
    Scope {
        token: user.token.clone(),
        partition: user
            .partition
            .clone()
            .map(|p| (p, user.user_id.clone().unwrap_or_else(|| user.id.clone()))),
    }
}

/// Send Discover to `user`'s skill and judge the Discover.Response; the
/// accepted endpoints replace what the registry knew (a failed discovery
/// leaves it as it was, as Alexa keeps the devices it had).
pub async fn discover(state: &Arc<State>, user: &str) -> Result<DiscoveryReport, AlexaError> {
    let (u, skill, _slot) = find(state, user)?;
    let d = directive::discover(&scope(u));
    let mut ex = exchange(state, u, skill, d, None).await;
    let Some(answer) = ex.answer.clone() else {
        journal_verdict(state, &mut ex, json!({"accepted": [], "dropped": []}));
        return Ok(DiscoveryReport {
            accepted: Vec::new(),
            dropped: Vec::new(),
            exchange: ex,
        });
    };
    let verdict = judge::discovery(&answer, state.config.smarthome.validation);
    let endpoints = answer.pointer("/event/payload/endpoints").and_then(Value::as_array);
    let kept: Vec<Value> = verdict
        .accepted
        .iter()
        .filter_map(|id| endpoints?.iter().find(|e| e["endpointId"] == id.as_str()).cloned())
        .collect();
    let answer_rejected = verdict
        .findings
        .iter()
        .any(|f| f.severity == Severity::Error && !is_endpoint_finding(f));
    if !answer_rejected {
        state.smarthome.registry.discovered(user, kept);
    }
    ex.findings = verdict.findings;
    ex.verdict = if answer_rejected { Verdict::Invalid } else { Verdict::Ok };
    let extra = json!({"accepted": verdict.accepted, "dropped": verdict.dropped});
    journal_verdict(state, &mut ex, extra);
    Ok(DiscoveryReport {
        accepted: verdict.accepted,
        dropped: verdict.dropped,
        exchange: ex,
    })
}

/// Whether a finding is about one endpoint (which only drops that endpoint).
fn is_endpoint_finding(f: &Finding) -> bool {
    f.pointer.starts_with("/event/payload/endpoints/")
}

/// Send AcceptGrant with a fresh authorization code for `user`; the skill
/// is expected to swap it at `/auth/o2/token` for gateway tokens.
pub async fn accept_grant(state: &Arc<State>, user: &str) -> Result<DirectiveReport, AlexaError> {
    let (u, skill, _slot) = find(state, user)?;
    let code = state.smarthome.grants.mint_code(user);
    let d = directive::accept_grant(&code, &u.token);
    let ex = exchange(state, u, skill, d, None).await;
    Ok(judge_answer(state, None, ex))
}

/// Send any directive to one endpoint (or Discover / AcceptGrant, which
/// have their own flows but are reported the same way here).
pub async fn send(state: &Arc<State>, req: &DirectiveRequest) -> Result<DirectiveReport, AlexaError> {
    match (req.namespace.as_str(), req.name.as_str()) {
        ("Alexa.Discovery", "Discover") => {
            let r = discover(state, &req.user).await?;
            let answered = r.exchange.answer.is_some();
            return Ok(DirectiveReport {
                endpoint: None,
                kind: answered.then_some(AnswerKind::DiscoverResponse {
                    accepted: r.accepted,
                    dropped: r.dropped,
                }),
                exchange: r.exchange,
            });
        }
        ("Alexa.Authorization", "AcceptGrant") => return accept_grant(state, &req.user).await,
        _ => {}
    }
    let (u, skill, _slot) = find(state, &req.user)?;
    let endpoint = req
        .endpoint
        .clone()
        .ok_or_else(|| AlexaError::BadDirective(format!("{}.{} needs an endpoint", req.namespace, req.name)))?;
    let correlation = directive::correlation_token();
    let d = if (req.namespace.as_str(), req.name.as_str()) == ("Alexa", "ReportState") {
        directive::report_state(&endpoint, &scope(u), &correlation)
    } else {
        let control = control_of(&req.namespace, &req.name, &req.payload).map_err(AlexaError::BadDirective)?;
        directive::control(&control, &endpoint, &scope(u), &correlation).map_err(AlexaError::BadDirective)?
    };
    // Known before the skill is invoked, so an asynchronous answer that
    // reaches the gateway before the DeferredResponse is judged still matches.
    let pending = Pending {
        endpoint: Some(endpoint.clone()),
        namespace: req.namespace.clone(),
        name: req.name.clone(),
        sent: crate::clock::now(),
    };
    let registry = &state.smarthome.registry;
    if let Some(forgotten) = registry.defer(&req.user, &correlation, pending) {
        let why = format!(
            "directive {forgotten} forgotten: more than {} await an answer",
            super::registry::MAX_PENDING
        );
        state
            .journal
            .record(Record::new(Face::Skill, Kind::Evicted, why).body(json!({"user": req.user})));
    }
    let ex = exchange(state, u, skill, d, Some(&endpoint)).await;
    let report = judge_answer(state, Some(endpoint), ex);
    let deferred = matches!(report.kind, Some(AnswerKind::DeferredResponse { .. }));
    if !deferred || report.exchange.verdict != Verdict::Ok {
        registry.take_pending(&req.user, &correlation);
    }
    Ok(report)
}

/// The typed control directive for a known name (its payload range-checked),
/// or the directive as given.
pub fn control_of(namespace: &str, name: &str, payload: &Value) -> Result<Control, String> {
    Ok(match (namespace, name) {
        ("Alexa.PowerController", "TurnOn") => Control::TurnOn,
        ("Alexa.PowerController", "TurnOff") => Control::TurnOff,
        ("Alexa.BrightnessController", "SetBrightness") => {
            let b = payload["brightness"].as_u64().filter(|b| *b <= 100).ok_or_else(|| {
                format!(
                    "SetBrightness needs payload.brightness, an integer in 0..=100, got {}",
                    payload["brightness"]
                )
            })?;
            Control::SetBrightness(b as u8)
        }
        ("Alexa.ThermostatController", "SetTargetTemperature") => {
            let t = &payload["targetSetpoint"];
            let value = t["value"]
                .as_f64()
                .ok_or("SetTargetTemperature needs payload.targetSetpoint.value, a number")?;
            let scale = t["scale"].as_str().unwrap_or("CELSIUS").to_string();
            Control::SetTargetTemperature { value, scale }
        }
        ("Alexa.LockController", "Lock") => Control::Lock,
        ("Alexa.LockController", "Unlock") => Control::Unlock,
        ("Alexa.SceneController", "Activate") => Control::Activate,
        ("Alexa.SceneController", "Deactivate") => Control::Deactivate,
        _ => {
            if namespace.is_empty() || name.is_empty() {
                return Err("a directive needs a namespace and a name".into());
            }
            if !payload.is_object() {
                return Err(format!("payload must be a JSON object, got {payload}"));
            }
            Control::Raw {
                namespace: namespace.into(),
                name: name.into(),
                payload: payload.clone(),
            }
        }
    })
}

/// Judge a non-discovery answer and apply it: context properties to the
/// registry, credentials errors unlink the user.
fn judge_answer(state: &Arc<State>, endpoint: Option<String>, mut ex: Exchange) -> DirectiveReport {
    let Some(answer) = ex.answer.clone() else {
        journal_verdict(state, &mut ex, json!({}));
        return DirectiveReport {
            endpoint,
            kind: None,
            exchange: ex,
        };
    };
    let declared = endpoint
        .as_deref()
        .and_then(|e| state.smarthome.registry.declaration(&ex.user, e));
    let verdict = judge::answer(
        &answer,
        &ex.directive,
        declared.as_ref(),
        state.config.smarthome.validation,
    );
    ex.verdict = if verdict.rejected() {
        Verdict::Invalid
    } else {
        Verdict::Ok
    };
    ex.findings = verdict.findings.clone();
    if ex.verdict == Verdict::Ok {
        if let Some(e) = &endpoint {
            state.smarthome.registry.report(&ex.user, e, &verdict.properties);
        }
        if let AnswerKind::ErrorResponse { error_type, .. } = &verdict.kind {
            if super::gateway::apply::UNLINKING.contains(&error_type.as_str()) {
                let n = state.smarthome.grants.unlink(&ex.user);
                let why = format!(
                    "{error_type}: Alexa discards the account link of {} ({n} tokens)",
                    ex.user
                );
                state
                    .journal
                    .record(Record::new(Face::Skill, Kind::Evicted, why).body(json!({"user": ex.user})));
            }
        }
    }
    journal_verdict(state, &mut ex, serde_json::to_value(&verdict.kind).unwrap_or_default());
    DirectiveReport {
        endpoint,
        kind: Some(verdict.kind),
        exchange: ex,
    }
}

/// Where a command skill finds the simulator (plain listener preferred:
/// no CA to trust).
fn handler_env(state: &State) -> Vec<(String, String)> {
    let listeners = state.listeners.read();
    let base = listeners
        .iter()
        .find(|l| &*l.name == "plain")
        .or_else(|| listeners.first())
        .map(|l| l.url());
    match base {
        Some(base) => vec![
            ("AVS_SIM_GATEWAY_URL".into(), format!("{base}{}", super::gateway::PATH)),
            ("AVS_SIM_TOKEN_URL".into(), format!("{base}/auth/o2/token")),
        ],
        None => Vec::new(),
    }
}

/// Invoke the skill with `directive` (fault rules of face `skill` first) and
/// journal the directive and the raw outcome. Judging is the caller's.
async fn exchange(
    state: &Arc<State>,
    user: &UserDecl,
    skill: &SkillDecl,
    directive: Value,
    endpoint: Option<&str>,
) -> Exchange {
    let h = &directive["directive"]["header"];
    let what = format!(
        "{}.{}",
        h["namespace"].as_str().unwrap_or(""),
        h["name"].as_str().unwrap_or("")
    );
    let sent = state.journal.record(
        Record::new(
            Face::Skill,
            Kind::Directive,
            format!(
                "{what} to skill {} for {}{}",
                skill.id,
                user.id,
                endpoint.map(|e| format!(" ({e})")).unwrap_or_default()
            ),
        )
        .body(json!({"user": user.id, "skill": skill.id, "endpoint": endpoint, "directive": directive})),
    );
    let started = crate::clock::now();
    let outcome = match injected(state, user, skill, &what).await {
        Injected::Outcome(o) => o,
        Injected::Invoke(budget) => {
            invoke::invoke_with(skill, &directive, &handler_env(state), budget)
                .await
                .outcome
        }
    };
    let duration_ms = crate::clock::as_ms(crate::clock::now().duration_since(started));
    let (verdict, answer, detail) = match outcome {
        Outcome::Answered(v) => (Verdict::Ok, Some(v), None),
        Outcome::Timeout => (
            Verdict::Timeout,
            None,
            Some(format!(
                "no answer within {}: Alexa records SKILL_RESPONSE_TIMEOUT_EXCEPTION",
                crate::duration::format(skill.timeout)
            )),
        ),
        Outcome::Crashed { status, stderr } => (
            Verdict::Crashed,
            None,
            Some(format!(
                "the handler failed ({status}); stderr ends: {}",
                tail(&stderr, 2000)
            )),
        ),
        Outcome::NotJson { text } => (
            Verdict::NotJson,
            None,
            Some(format!("the answer is not JSON: {}", tail(&text, 500))),
        ),
        Outcome::TooLarge => (
            Verdict::TooLarge,
            None,
            Some(format!(
                "the answer exceeds {} bytes (Lambda's limit)",
                invoke::MAX_ANSWER
            )),
        ),
        Outcome::Unreachable(why) => (Verdict::Unreachable, None, Some(why)),
    };
    let findings = detail
        .iter()
        .map(|d| Finding {
            severity: Severity::Error,
            pointer: String::new(),
            rule: "20 answer",
            message: d.clone(),
        })
        .collect();
    Exchange {
        user: user.id.clone(),
        skill: skill.id.clone(),
        verdict,
        answer,
        detail,
        findings,
        duration_ms,
        directive,
        journal: [sent, 0],
    }
}

/// The end of `text`, at most `max` bytes, on a character boundary.
fn tail(text: &str, max: usize) -> &str {
    let mut start = text.len().saturating_sub(max);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}

enum Injected {
    /// A fault decided the outcome.
    Outcome(Outcome),
    /// Invoke, within this budget.
    Invoke(Duration),
}

/// Fault rules of face `skill`: `device` is the user, `path` the skill id,
/// `event` the directive's `Namespace.Name`.
async fn injected(state: &State, user: &UserDecl, skill: &SkillDecl, what: &str) -> Injected {
    let point = |event| Point {
        face: Face::Skill,
        device: Some(&user.id),
        path: &skill.id,
        event,
        connection: None,
        stream: None,
    };
    let fired = state
        .faults
        .fire(&state.journal, &point(None), None)
        .or_else(|| state.faults.fire(&state.journal, &point(Some(what)), None));
    let Some(fired) = fired else {
        return Injected::Invoke(skill.timeout);
    };
    match fired.action {
        Action::Status { status, .. } => Injected::Outcome(Outcome::Crashed {
            status: format!("HTTP {status}, injected by fault rule {}", fired.rule),
            stderr: String::new(),
        }),
        Action::Hold => {
            tokio::time::sleep(skill.timeout).await;
            Injected::Outcome(Outcome::Timeout)
        }
        ref delay @ Action::Delay { .. } => {
            let d = delay
                .delay()
                .map(|d| crate::faults::sample_delay(&d))
                .unwrap_or_default();
            if d >= skill.timeout {
                tokio::time::sleep(skill.timeout).await;
                return Injected::Outcome(Outcome::Timeout);
            }
            tokio::time::sleep(d).await;
            Injected::Invoke(skill.timeout - d)
        }
        // Rule::validate refuses other actions for face `skill`.
        _ => Injected::Invoke(skill.timeout),
    }
}

/// Journal the judged answer, linked to its directive's entry.
fn journal_verdict(state: &Arc<State>, ex: &mut Exchange, extra: Value) {
    let summary = match (&ex.answer, &ex.detail) {
        (_, Some(detail)) => format!("{:?} after {} ms: {detail}", ex.verdict, ex.duration_ms),
        (Some(a), None) => format!(
            "{}.{} {:?} in {} ms, {} findings",
            a["event"]["header"]["namespace"].as_str().unwrap_or("?"),
            a["event"]["header"]["name"].as_str().unwrap_or("?"),
            ex.verdict,
            ex.duration_ms,
            ex.findings.len()
        ),
        (None, None) => format!("{:?}", ex.verdict),
    };
    let mut body = json!({
        "user": ex.user,
        "skill": ex.skill,
        "directive": ex.journal[0],
        "verdict": ex.verdict,
        "duration_ms": ex.duration_ms,
        "answer": ex.answer,
        "detail": ex.detail,
        "findings": ex.findings,
    });
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    ex.journal[1] = state
        .journal
        .record(Record::new(Face::Skill, Kind::Response, summary).body(body));
    // The opt-in Smart Properties hook: a failed directive raises a Skill Interaction Failure.
    crate::asp::intent::smart_home_failure(state, ex);
}
