//! Custom-skill IntentRequests and the Skill Interaction Failures they
//! raise.
//!
//! Alexa sends a custom skill the request envelope (`version` "1.0",
//! `session`, `context.System`, `request`) and expects an answer with
//! `version` and `response`. A skill that does not answer in time raises
//! `Alexa.Skill.Interaction.Failure` ENDPOINT_TIMEOUT; one that crashes, is
//! unreachable or answers with something that is not such a document
//! raises INVALID_RESPONSE (the seed puts "Alexa is unable to call the
//! endpoint" under INVALID_RESPONSE too). The skill is reached through the
//! smart home face's invoker (`smarthome::invoke`), command or HTTP alike.

use super::event::{self, InteractionFailure};
use super::{AspError, Raised};
use crate::journal::{Face, Kind, Record};
use crate::smarthome::alexa::{Exchange, Verdict};
use crate::smarthome::invoke::{self, Outcome};
use crate::state::State;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::sync::Arc;

/// `POST /api/asp/intents` (and the scenario step).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntentCall {
    /// A `[[units]]` id.
    pub unit: String,
    /// A `[[skills]]` id.
    pub skill: String,
    /// The intent's name, e.g. `AMAZON.HelpIntent`.
    pub intent: String,
    /// Default `en-US`.
    #[serde(default)]
    pub locale: Option<String>,
    /// A session id to continue; default a new session.
    #[serde(default)]
    pub session: Option<String>,
}

/// What came of an IntentRequest.
#[derive(Debug, Clone, Serialize)]
pub struct IntentOutcome {
    /// `answered`, `timeout`, `crashed`, `not_json`, `too_large`,
    /// `unreachable` or `invalid` (JSON without `version` and `response`).
    pub outcome: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub answer: Option<Value>,
    #[serde(rename = "sessionId")]
    pub session_id: String,
    #[serde(rename = "requestId")]
    pub request_id: String,
    /// The Skill Interaction Failure raised, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event: Option<Raised>,
}

/// The request envelope Alexa sends a custom skill.
pub fn envelope(state: &State, call: &IntentCall, session: &str, request: &str, new: bool) -> Value {
    let user = json!({"userId": format!("amzn1.ask.account.{}", call.unit)});
    let application = json!({"applicationId": call.skill});
    json!({
        "version": "1.0",
        "session": {
            "new": new,
            "sessionId": session,
            "application": application,
            "attributes": {},
            "user": user,
        },
        "context": {
            "System": {
                "application": application,
                "user": user,
                "device": {"deviceId": format!("amzn1.ask.device.{}", call.unit), "supportedInterfaces": {}},
                "apiEndpoint": crate::sns::publish::base_url(state),
            }
        },
        "request": {
            "type": "IntentRequest",
            "requestId": request,
            "timestamp": event::now(),
            "locale": call.locale.as_deref().unwrap_or("en-US"),
            "intent": {"name": call.intent, "confirmationStatus": "NONE", "slots": {}},
        }
    })
}

/// Whether `answer` is shaped like a custom skill's response.
fn usable(answer: &Value) -> bool {
    answer.get("version").is_some_and(Value::is_string) && answer.get("response").is_some_and(Value::is_object)
}

/// Send an IntentRequest to a unit's skill; a failure raises the event.
pub async fn send(state: &Arc<State>, call: &IntentCall) -> Result<IntentOutcome, AspError> {
    let unit = super::unit(state, &call.unit)
        .ok_or_else(|| AspError::NotFound(format!("unknown unit {:?}: units are declared in [[units]]", call.unit)))?;
    let skill = state.config.skills.iter().find(|s| s.id == call.skill).ok_or_else(|| {
        AspError::NotFound(format!(
            "unknown skill {:?}: skills are declared in [[skills]]",
            call.skill
        ))
    })?;
    if call.intent.is_empty() {
        return Err(AspError::BadRequest("intent must be non-empty".into()));
    }
    // Held while the skill runs: a custom skill shares the smart home bound.
    let _slot = state
        .smarthome
        .invocation_slot(&skill.id)
        .ok_or_else(|| AspError::Busy(skill.id.clone()))?;
    let new = call.session.is_none();
    let session = call
        .session
        .clone()
        .unwrap_or_else(|| format!("amzn1.echo-api.session.{}", uuid::Uuid::new_v4()));
    let request = format!("amzn1.echo-api.request.{}", uuid::Uuid::new_v4());
    let envelope = envelope(state, call, &session, &request, new);
    let sent = state.journal.record(
        Record::new(
            Face::Skill,
            Kind::Directive,
            format!(
                "IntentRequest {} to custom skill {} for unit {}",
                call.intent, skill.id, unit.id
            ),
        )
        .body(json!({"unit": unit.id, "skill": skill.id, "request": envelope})),
    );
    let invocation = invoke::invoke_with(skill, &envelope, &[], skill.timeout).await;
    let (outcome, detail, answer, error) = match invocation.outcome {
        Outcome::Answered(v) if usable(&v) => ("answered", None, Some(v), None),
        Outcome::Answered(v) => (
            "invalid",
            Some("the answer has no version and response".to_string()),
            Some(v),
            Some("INVALID_RESPONSE"),
        ),
        Outcome::Timeout => (
            "timeout",
            Some(format!("no answer within {}", crate::duration::format(skill.timeout))),
            None,
            Some("ENDPOINT_TIMEOUT"),
        ),
        Outcome::Crashed { status, .. } => (
            "crashed",
            Some(format!("the skill failed ({status})")),
            None,
            Some("INVALID_RESPONSE"),
        ),
        Outcome::NotJson { .. } => (
            "not_json",
            Some("the answer is not JSON".to_string()),
            None,
            Some("INVALID_RESPONSE"),
        ),
        Outcome::TooLarge => (
            "too_large",
            Some("the answer is too large".to_string()),
            None,
            Some("INVALID_RESPONSE"),
        ),
        Outcome::Unreachable(why) => ("unreachable", Some(why), None, Some("INVALID_RESPONSE")),
    };
    state.journal.record(
        Record::new(
            Face::Skill,
            Kind::Response,
            format!("IntentRequest {}: {outcome}", call.intent),
        )
        .body(json!({"unit": unit.id, "skill": skill.id, "request": sent, "outcome": outcome, "detail": detail, "answer": answer})),
    );
    let event = match error {
        Some(error) => {
            let failure = InteractionFailure {
                unit: unit.to_ref(),
                skill: skill.id.clone(),
                stage: state.config.asp.skill_stage.clone(),
                locale: call.locale.clone().unwrap_or_else(|| "en-US".into()),
                intent: Some(call.intent.clone()),
                session: session.clone(),
                request: request.clone(),
                error: error.into(),
                message: detail.clone().unwrap_or_default(),
            };
            Some(super::raise(
                state,
                &event::skill_interaction_failure(&failure, &event::now()),
                None,
            )?)
        }
        None => None,
    };
    Ok(IntentOutcome {
        outcome,
        detail,
        answer,
        session_id: session,
        request_id: request,
        event,
    })
}

/// The opt-in hook of the smart home face (`[asp]
/// skill_failures_for_smart_home`): a directive the skill failed raises a
/// Skill Interaction Failure for the unit holding the endpoint (else the
/// unit with the user's skill). The interaction type stays `IntentRequest`,
/// the only one the seed allows; `intent.name` carries the directive's
/// `Namespace.Name`, `requestId` its messageId.
pub fn smart_home_failure(state: &Arc<State>, ex: &Exchange) {
    if !state.config.asp.skill_failures_for_smart_home || ex.verdict == Verdict::Ok {
        return;
    }
    let endpoint = ex.directive["directive"]["endpoint"]["endpointId"].as_str();
    let units = &state.config.units;
    let Some(unit) = endpoint
        .and_then(|e| units.iter().find(|u| u.devices.iter().any(|d| d == e)))
        .or_else(|| units.iter().find(|u| u.skill.as_deref() == Some(ex.skill.as_str())))
    else {
        return;
    };
    let h = &ex.directive["directive"]["header"];
    let failure = InteractionFailure {
        unit: unit.to_ref(),
        skill: ex.skill.clone(),
        stage: state.config.asp.skill_stage.clone(),
        locale: "en-US".into(),
        intent: Some(format!(
            "{}.{}",
            h["namespace"].as_str().unwrap_or(""),
            h["name"].as_str().unwrap_or("")
        )),
        session: format!("amzn1.echo-api.session.{}", uuid::Uuid::new_v4()),
        request: format!(
            "amzn1.echo-api.request.{}",
            h["messageId"]
                .as_str()
                .map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_string)
        ),
        error: if ex.verdict == Verdict::Timeout {
            "ENDPOINT_TIMEOUT"
        } else {
            "INVALID_RESPONSE"
        }
        .into(),
        message: ex.detail.clone().unwrap_or_else(|| format!("{:?}", ex.verdict)),
    };
    if let Err(e) = super::raise(state, &event::skill_interaction_failure(&failure, &event::now()), None) {
        state.journal.record(Record::new(
            Face::Asp,
            Kind::Error,
            format!("Skill Interaction Failure not raised: {e}"),
        ));
    }
}
