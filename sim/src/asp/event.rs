//! Building the three Smart Properties events of the seed
//! (smart-properties-event-schemas.txt) in exactly its examples' shape:
//! `header` with `version` "2.0", `eventId`, `eventType`, `eventTime` and
//! `entities` (an object keyed by entity kind, inside `header`, as every
//! example has it although the tables write `eventTime` and `entities`
//! without `header.` and call `entities` an array), then `payload`.
//!
//! Every builder's output passes `validate::check`; a proptest proves it.

use serde_json::{Value, json};

/// The three event types the seed documents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    AutomationCompletion,
    SkillInteractionFailure,
    SubscriptionActivation,
}

impl EventType {
    pub const ALL: [EventType; 3] = [
        EventType::AutomationCompletion,
        EventType::SkillInteractionFailure,
        EventType::SubscriptionActivation,
    ];

    /// `header.eventType.namespace`.
    pub fn namespace(self) -> &'static str {
        match self {
            EventType::AutomationCompletion => "Alexa.Automation.Execution",
            EventType::SkillInteractionFailure => "Alexa.Skill.Interaction",
            EventType::SubscriptionActivation => "Alexa.Enterprise.Subscription",
        }
    }

    /// `header.eventType.name`.
    pub fn name(self) -> &'static str {
        match self {
            EventType::AutomationCompletion => "Completion",
            EventType::SkillInteractionFailure => "Failure",
            EventType::SubscriptionActivation => "Activation",
        }
    }

    /// `Namespace.Name`, e.g. `Alexa.Automation.Execution.Completion`.
    pub fn full_name(self) -> String {
        format!("{}.{}", self.namespace(), self.name())
    }

    pub fn from_parts(namespace: &str, name: &str) -> Option<EventType> {
        EventType::ALL
            .into_iter()
            .find(|t| t.namespace() == namespace && t.name() == name)
    }

    /// From `Namespace.Name`.
    pub fn parse(full: &str) -> Option<EventType> {
        let (namespace, name) = full.rsplit_once('.')?;
        EventType::from_parts(namespace, name)
    }
}

/// A unit as the event's entities name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitRef {
    pub id: String,
    pub parent: Option<String>,
}

/// The event time as the seed wants it: RFC 3339 UTC, whole seconds, `Z`.
pub fn timestamp(t: time::OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// The simulator's wall clock, in the seed's format.
pub fn now() -> String {
    timestamp(crate::clock::wall())
}

/// A message for logs is never empty (the validator refuses empty strings):
/// the error type stands in.
fn or_default<'a>(message: &'a str, kind: &'a str) -> &'a str {
    if message.is_empty() { kind } else { message }
}

fn unit_entity(unit: &UnitRef) -> Value {
    let mut u = json!({"type": "Unit", "id": unit.id});
    if let Some(p) = &unit.parent {
        u["parent"] = json!({"type": "Unit", "id": p});
    }
    u
}

/// The header every event shares, with a fresh UUID event id and `time`.
pub fn header(kind: EventType, entities: Value, time: &str) -> Value {
    json!({
        "version": "2.0",
        "eventId": {"id": uuid::Uuid::new_v4().to_string()},
        "eventType": {"namespace": kind.namespace(), "name": kind.name()},
        "eventTime": {"timestamp": time},
        "entities": entities,
    })
}

/// One failed action of an automation (`payload.result.errors[*]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AutomationError {
    /// `ENDPOINT_NOT_FOUND` or `INTERNAL_SERVER_ERROR`.
    pub kind: String,
    /// The endpoint id.
    pub id: String,
    pub message: String,
}

/// `Alexa.Automation.Execution.Completion`: SUCCESS without errors,
/// FAILURE with them. Entities: `unit`.
pub fn automation_completion(unit: &UnitRef, automation: &str, errors: &[AutomationError], time: &str) -> Value {
    let mut result = json!({"status": if errors.is_empty() { "SUCCESS" } else { "FAILURE" }});
    if !errors.is_empty() {
        result["errors"] = errors
            .iter()
            .map(|e| json!({"type": e.kind, "message": or_default(&e.message, &e.kind), "id": e.id}))
            .collect();
    }
    json!({
        "header": header(EventType::AutomationCompletion, json!({"unit": unit_entity(unit)}), time),
        "payload": {"automation": {"id": automation}, "result": result},
    })
}

/// What an `Alexa.Skill.Interaction.Failure` reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InteractionFailure {
    pub unit: UnitRef,
    pub skill: String,
    /// `development`, `live` or `certification`.
    pub stage: String,
    pub locale: String,
    pub intent: Option<String>,
    /// `amzn1.echo-api.session.…`
    pub session: String,
    /// `amzn1.echo-api.request.…`
    pub request: String,
    /// `INVALID_RESPONSE` or `ENDPOINT_TIMEOUT`.
    pub error: String,
    pub message: String,
}

/// `Alexa.Skill.Interaction.Failure` (interaction type `IntentRequest`, the
/// only one the seed allows). Entities: `unit` and `skill`.
pub fn skill_interaction_failure(f: &InteractionFailure, time: &str) -> Value {
    let mut interaction = json!({"type": "IntentRequest", "locale": f.locale});
    if let Some(intent) = &f.intent {
        interaction["intent"] = json!({"name": intent});
    }
    let entities = json!({"unit": unit_entity(&f.unit), "skill": {"type": "Skill", "id": f.skill}});
    json!({
        "header": header(EventType::SkillInteractionFailure, entities, time),
        "payload": {
            "interaction": interaction,
            "skill": {"id": f.skill, "stage": f.stage},
            "unit": {"id": f.unit.id},
            "session": {"id": f.session},
            "requestId": f.request,
            "error": {"type": f.error, "message": or_default(&f.message, &f.error)},
        },
    })
}

/// The status a failed activation carries: the seed lists no values and
/// its only example says `SUCCEEDED`; `FAILED` is the simulator's choice.
pub const ACTIVATION_FAILED: &str = "FAILED";

/// `Alexa.Enterprise.Subscription.Activation`: `SUCCEEDED`, or
/// `FAILED` with `payload.result.error` (where the seed's example puts it;
/// its table says `payload.error`). Entities: `unit` (with `parent` when
/// the unit has one).
pub fn subscription_activation(unit: &UnitRef, subscription: &str, error: Option<(&str, &str)>, time: &str) -> Value {
    let mut result = json!({"status": if error.is_some() { ACTIVATION_FAILED } else { "SUCCEEDED" }});
    if let Some((kind, message)) = error {
        result["error"] = json!({"type": kind, "message": or_default(message, kind)});
    }
    json!({
        "header": header(EventType::SubscriptionActivation, json!({"unit": unit_entity(unit)}), time),
        "payload": {"subscription": {"id": subscription}, "result": result},
    })
}
