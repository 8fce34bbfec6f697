//! The Smart Properties face: Alexa Smart Properties events (reference
//! smart-properties.md, seed smart-properties-event-schemas.txt) raised by
//! what happens in the simulator and published to an SNS topic (`[asp]
//! topic`, created at start), so a back end subscribed to it gets them as
//! SNS notifications.
//!
//! `event` builds the three event types, `validate` checks any document
//! against the seed's tables, `intent` sends custom-skill IntentRequests
//! (and raises Skill Interaction Failures), `automation` runs automations,
//! `activation` activates a unit's subscription, `hand` turns a hand-written
//! request into an event. Every raised event goes through [`raise`]:
//! checked, published, journaled under face `asp`.

pub mod activation;
pub mod automation;
pub mod event;
pub mod hand;
pub mod intent;
pub mod validate;

pub use event::{EventType, UnitRef};
pub use validate::Refusal;

use crate::journal::{Face, Kind, Record};
use crate::sns::{Publish, SnsError};
use crate::state::State;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::sync::Arc;

/// `[asp]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AspConfig {
    /// The SNS topic (name) events are published to; created at start.
    pub topic: String,
    /// Also raise Skill Interaction Failure for a smart home directive the
    /// skill fails (timeout, crash, unusable answer): the seed documents
    /// only IntentRequest interactions, so this is opt-in.
    pub skill_failures_for_smart_home: bool,
    /// `payload.skill.stage` of the failures raised (`development`, `live`
    /// or `certification`): a skill served locally is most likely in
    /// development.
    pub skill_stage: String,
}

impl Default for AspConfig {
    fn default() -> Self {
        AspConfig {
            topic: "asp-events".into(),
            skill_failures_for_smart_home: false,
            skill_stage: "development".into(),
        }
    }
}

/// `[[units]]`: a unit (a room, an apartment) of the property.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnitDecl {
    /// E.g. `amzn1.alexa.unit.did.101`.
    pub id: String,
    /// The parent unit's id (a `[[units]]` id).
    #[serde(default)]
    pub parent: Option<String>,
    /// Smart home endpoint ids in this unit.
    #[serde(default)]
    pub devices: Vec<String>,
    /// The `[[skills]]` id of the unit's skill.
    #[serde(default)]
    pub skill: Option<String>,
}

impl UnitDecl {
    pub fn to_ref(&self) -> UnitRef {
        UnitRef {
            id: self.id.clone(),
            parent: self.parent.clone(),
        }
    }
}

/// `[[automations]]`: a named list of smart home directives run for a unit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AutomationDecl {
    /// E.g. `amzn1.alexa.automation.morning`.
    pub id: String,
    /// A `[[units]]` id.
    pub unit: String,
    /// A `[[users]]` id: whose skill runs the actions.
    pub user: String,
    pub actions: Vec<ActionDecl>,
}

/// One directive of an automation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActionDecl {
    pub endpoint: String,
    /// `Namespace.Name`; default `Alexa.PowerController.TurnOn`.
    #[serde(default = "turn_on")]
    pub directive: String,
    /// The directive's payload (SetBrightness's `brightness`...).
    #[serde(default)]
    pub payload: Option<Value>,
}

fn turn_on() -> String {
    "Alexa.PowerController.TurnOn".into()
}

/// Most actions an automation may have (a typo in a generated file must not
/// make one run for hours).
pub const MAX_ACTIONS: usize = 100;

/// Every problem with `[asp]`, `[[units]]` and `[[automations]]`, named.
pub fn validate(config: &crate::config::Config) -> Vec<String> {
    let mut errors = Vec::new();
    if !crate::sns::valid_name(&config.asp.topic) {
        errors.push(format!(
            "asp.topic: {:?} must be 1-256 letters, digits, '-' or '_'",
            config.asp.topic
        ));
    }
    if !validate::SKILL_STAGES.contains(&config.asp.skill_stage.as_str()) {
        errors.push(format!(
            "asp.skill_stage: must be one of {}, got {:?}",
            validate::SKILL_STAGES.join(", "),
            config.asp.skill_stage
        ));
    }
    let mut ids = std::collections::HashSet::new();
    for (i, u) in config.units.iter().enumerate() {
        let at = format!("units[{i}] ({:?})", u.id);
        if u.id.is_empty() || !ids.insert(u.id.as_str()) {
            errors.push(format!("{at}: id must be non-empty and unique"));
        }
        if let Some(p) = &u.parent {
            if p == &u.id || !config.units.iter().any(|o| &o.id == p) {
                errors.push(format!("{at}: parent {p:?} is not another unit in [[units]]"));
            }
        }
        if let Some(s) = &u.skill {
            if !config.skills.iter().any(|k| &k.id == s) {
                errors.push(format!("{at}: skill {s:?} is not declared in [[skills]]"));
            }
        }
    }
    let mut automation_ids = std::collections::HashSet::new();
    for (i, a) in config.automations.iter().enumerate() {
        let at = format!("automations[{i}] ({:?})", a.id);
        if a.id.is_empty() || !automation_ids.insert(a.id.as_str()) {
            errors.push(format!("{at}: id must be non-empty and unique"));
        }
        if !config.units.iter().any(|u| u.id == a.unit) {
            errors.push(format!("{at}: unit {:?} is not declared in [[units]]", a.unit));
        }
        if !config.users.iter().any(|u| u.id == a.user) {
            errors.push(format!("{at}: user {:?} is not declared in [[users]]", a.user));
        }
        if a.actions.is_empty() || a.actions.len() > MAX_ACTIONS {
            errors.push(format!("{at}: actions must number 1..={MAX_ACTIONS}"));
        }
        for (j, action) in a.actions.iter().enumerate() {
            let Some((namespace, name)) = action.directive.rsplit_once('.') else {
                errors.push(format!(
                    "{at}: actions[{j}].directive {:?} must be Namespace.Name",
                    action.directive
                ));
                continue;
            };
            let payload = action.payload.clone().unwrap_or_else(|| json!({}));
            if let Err(e) = crate::smarthome::alexa::control_of(namespace, name, &payload) {
                errors.push(format!("{at}: actions[{j}]: {e}"));
            }
        }
    }
    errors
}

/// Create the `[asp] topic` (called once as the state is built).
pub fn init(state: &State) {
    if let Err(e) = state.sns.create_topic(&state.config.asp.topic, Default::default()) {
        // validate() accepted the name; only the topic quota can refuse it.
        state.journal.record(
            Record::new(
                Face::Asp,
                Kind::Error,
                format!("cannot create topic {}: {e}", state.config.asp.topic),
            )
            .body(json!({"topic": state.config.asp.topic})),
        );
    }
}

/// The declared unit `id`.
pub fn unit<'a>(state: &'a State, id: &str) -> Option<&'a UnitDecl> {
    state.config.units.iter().find(|u| u.id == id)
}

/// Why an event could not be raised.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AspError {
    /// The event breaks the seed's tables (400, naming the field).
    #[error("invalid event: {0}")]
    Invalid(#[from] Refusal),
    /// A unit, skill, automation or topic that does not exist (404).
    #[error("{0}")]
    NotFound(String),
    /// A request that cannot be turned into an event (400).
    #[error("{0}")]
    BadRequest(String),
    /// The skill already runs `smarthome.max_invocations` invocations (503).
    #[error("skill {0:?} is busy: smarthome.max_invocations invocations are running")]
    Busy(String),
    /// SNS refused the publish.
    #[error("SNS refused the publish: {0}")]
    Sns(SnsError),
}

/// An event on its way: what was published where.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Raised {
    #[serde(rename = "eventId")]
    pub event_id: String,
    #[serde(rename = "eventType")]
    pub event_type: String,
    pub topic: String,
    #[serde(rename = "MessageId")]
    pub message_id: String,
    /// Journal id of the face `asp` entry.
    pub journal: u64,
}

/// The ARN for a topic given by name or ARN (`None`: the `[asp] topic`).
pub fn topic_arn(state: &State, topic: Option<&str>) -> String {
    match topic {
        Some(t) if t.starts_with("arn:") => t.to_string(),
        Some(t) => state.sns.topic_arn(t),
        None => state.sns.topic_arn(&state.config.asp.topic),
    }
}

/// Check `event` against the seed, publish it to `topic` (default the
/// `[asp] topic`) and journal it under face `asp`.
pub fn raise(state: &Arc<State>, event: &Value, topic: Option<&str>) -> Result<Raised, AspError> {
    let kind = validate::check(event)?;
    let arn = topic_arn(state, topic);
    let publish = Publish {
        message: event.to_string(),
        subject: None,
        attributes: Default::default(),
    };
    let message_id = crate::sns::publish::publish(state, &arn, publish).map_err(|e| match e {
        SnsError::NotFound(_) => AspError::NotFound(format!("no SNS topic {arn}")),
        other => AspError::Sns(other),
    })?;
    let event_id = event["header"]["eventId"]["id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let unit = event["header"]["entities"]["unit"]["id"].as_str().unwrap_or_default();
    let journal = state.journal.record(
        Record::new(
            Face::Asp,
            Kind::Request,
            format!("{} for unit {unit} published to {arn} ({message_id})", kind.full_name()),
        )
        .body(json!({"event": event, "topic": arn, "MessageId": message_id})),
    );
    Ok(Raised {
        event_id,
        event_type: kind.full_name(),
        topic: arn,
        message_id,
        journal,
    })
}

#[cfg(test)]
mod tests;
