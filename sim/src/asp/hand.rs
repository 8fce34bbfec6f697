//! Events published by hand (`POST /api/asp/events`, the `publish_event`
//! scenario step): a whole event document, or an event type with a unit and
//! the fields that vary, built like the simulator's own. Either way the
//! document is checked against the seed before it is published.

use super::AspError;
use super::event::{self, AutomationError, EventType, InteractionFailure, UnitRef};
use crate::state::State;
use serde::Deserialize;
use serde_json::Value;

/// An event described by its type and fields.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HandEvent {
    /// `Alexa.Automation.Execution.Completion`, `Alexa.Skill.Interaction.Failure`
    /// or `Alexa.Enterprise.Subscription.Activation`.
    #[serde(rename = "type")]
    pub event_type: String,
    /// A `[[units]]` id (its parent goes into the entities).
    pub unit: String,
    /// Automation: its id (default `amzn1.alexa.automation.manual`).
    #[serde(default)]
    pub automation: Option<String>,
    /// Automation: `[{type, id, message}]`; FAILURE when non-empty.
    #[serde(default)]
    pub errors: Vec<HandError>,
    /// Skill failure: the skill id (default the unit's skill).
    #[serde(default)]
    pub skill: Option<String>,
    /// Skill failure: default `[asp] skill_stage`.
    #[serde(default)]
    pub stage: Option<String>,
    #[serde(default)]
    pub locale: Option<String>,
    #[serde(default)]
    pub intent: Option<String>,
    #[serde(default)]
    pub session: Option<String>,
    #[serde(default)]
    pub request: Option<String>,
    /// Skill failure: `INVALID_RESPONSE` or `ENDPOINT_TIMEOUT`; activation:
    /// `INTERNAL_SERVER_ERROR` (makes it FAILED).
    #[serde(default)]
    pub error_type: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
    /// Activation: the subscription id (default as `activate` picks it).
    #[serde(default)]
    pub subscription: Option<String>,
}

/// One `errors` entry of a hand-made automation event.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HandError {
    #[serde(rename = "type")]
    pub kind: String,
    pub id: String,
    #[serde(default)]
    pub message: Option<String>,
}

/// The event document `hand` describes (not yet checked: `raise` does).
pub fn build(state: &State, hand: &HandEvent) -> Result<Value, AspError> {
    let kind = EventType::parse(&hand.event_type).ok_or_else(|| {
        AspError::BadRequest(format!(
            "type {:?} is not an event type of the seed (one of {})",
            hand.event_type,
            EventType::ALL.map(|t| t.full_name()).join(", ")
        ))
    })?;
    let unit = super::unit(state, &hand.unit)
        .ok_or_else(|| AspError::NotFound(format!("unknown unit {:?}: units are declared in [[units]]", hand.unit)))?;
    let unit_ref: UnitRef = unit.to_ref();
    let time = event::now();
    Ok(match kind {
        EventType::AutomationCompletion => {
            let errors: Vec<AutomationError> = hand
                .errors
                .iter()
                .map(|e| AutomationError {
                    kind: e.kind.clone(),
                    id: e.id.clone(),
                    message: e.message.clone().unwrap_or_else(|| format!("{} for {}", e.kind, e.id)),
                })
                .collect();
            let id = hand.automation.as_deref().unwrap_or("amzn1.alexa.automation.manual");
            event::automation_completion(&unit_ref, id, &errors, &time)
        }
        EventType::SkillInteractionFailure => {
            let skill =
                hand.skill.clone().or_else(|| unit.skill.clone()).ok_or_else(|| {
                    AspError::BadRequest(format!("skill is required: unit {:?} declares none", unit.id))
                })?;
            let f = InteractionFailure {
                unit: unit_ref,
                skill,
                stage: hand
                    .stage
                    .clone()
                    .unwrap_or_else(|| state.config.asp.skill_stage.clone()),
                locale: hand.locale.clone().unwrap_or_else(|| "en-US".into()),
                intent: hand.intent.clone(),
                session: hand
                    .session
                    .clone()
                    .unwrap_or_else(|| format!("amzn1.echo-api.session.{}", uuid::Uuid::new_v4())),
                request: hand
                    .request
                    .clone()
                    .unwrap_or_else(|| format!("amzn1.echo-api.request.{}", uuid::Uuid::new_v4())),
                error: hand.error_type.clone().unwrap_or_else(|| "INVALID_RESPONSE".into()),
                message: hand.message.clone().unwrap_or_else(|| "raised by hand".into()),
            };
            event::skill_interaction_failure(&f, &time)
        }
        EventType::SubscriptionActivation => {
            let subscription = hand
                .subscription
                .clone()
                .unwrap_or_else(|| super::activation::subscription_id(unit));
            let message = hand.message.clone().unwrap_or_else(|| "raised by hand".into());
            event::subscription_activation(
                &unit_ref,
                &subscription,
                hand.error_type.as_deref().map(|t| (t, message.as_str())),
                &time,
            )
        }
    })
}
