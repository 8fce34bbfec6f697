//! Checking an event document against the seed's field tables before it is
//! published: required fields, their JSON types and the enums. A refusal
//! names the field by JSON pointer.
//!
//! Where the seed is unclear the check follows its examples: `eventTime`
//! and `entities` sit inside `header`; `entities` is an object;
//! `unit.parent` is optional (only the Activation example has it);
//! `payload.automation` is required (the table's column is garbled, the
//! example always has it); the Activation error sits at
//! `payload.result.error` (the table says `payload.error`, the example
//! nests it under `result`). Fields the seed does not know are allowed.

use super::event::{ACTIVATION_FAILED, EventType};
use serde_json::Value;

/// Why a document is not a valid event: the field and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{pointer}: {message}")]
pub struct Refusal {
    /// JSON pointer of the field (`/payload/result/status`).
    pub pointer: String,
    pub message: String,
}

fn refuse(pointer: &str, message: impl Into<String>) -> Refusal {
    Refusal {
        pointer: pointer.into(),
        message: message.into(),
    }
}

/// `payload.result.status` of an automation.
pub const AUTOMATION_STATUS: &[&str] = &["SUCCESS", "FAILURE"];
/// `payload.result.errors[*].type`.
pub const AUTOMATION_ERRORS: &[&str] = &["ENDPOINT_NOT_FOUND", "INTERNAL_SERVER_ERROR"];
/// `payload.interaction.type`.
pub const INTERACTION_TYPES: &[&str] = &["IntentRequest"];
/// `payload.skill.stage`.
pub const SKILL_STAGES: &[&str] = &["development", "live", "certification"];
/// `payload.error.type` of a skill interaction failure.
pub const INTERACTION_ERRORS: &[&str] = &["INVALID_RESPONSE", "ENDPOINT_TIMEOUT"];
/// `payload.result.status` of an activation: the example's `SUCCEEDED`
/// and the simulator's own failure status.
pub const ACTIVATION_STATUS: &[&str] = &["SUCCEEDED", ACTIVATION_FAILED];
/// `payload.result.error.type` of an activation.
pub const ACTIVATION_ERRORS: &[&str] = &["INTERNAL_SERVER_ERROR"];

/// Walks one document, refusing at the first wrong field.
struct Doc<'a>(&'a Value);

impl Doc<'_> {
    fn get(&self, pointer: &str) -> Option<&Value> {
        self.0.pointer(pointer)
    }

    fn object(&self, pointer: &str) -> Result<(), Refusal> {
        match self.get(pointer) {
            None => Err(refuse(pointer, "required object is missing")),
            Some(Value::Object(_)) => Ok(()),
            Some(v) => Err(refuse(pointer, format!("must be an object, got {}", type_name(v)))),
        }
    }

    fn optional_object(&self, pointer: &str) -> Result<bool, Refusal> {
        match self.get(pointer) {
            None => Ok(false),
            Some(_) => self.object(pointer).map(|_| true),
        }
    }

    fn string(&self, pointer: &str) -> Result<&str, Refusal> {
        match self.get(pointer) {
            None => Err(refuse(pointer, "required string is missing")),
            Some(Value::String(s)) if s.is_empty() => Err(refuse(pointer, "must not be empty")),
            Some(Value::String(s)) => Ok(s),
            Some(v) => Err(refuse(pointer, format!("must be a string, got {}", type_name(v)))),
        }
    }

    fn optional_string(&self, pointer: &str) -> Result<Option<&str>, Refusal> {
        match self.get(pointer) {
            None => Ok(None),
            Some(_) => self.string(pointer).map(Some),
        }
    }

    fn one_of(&self, pointer: &str, allowed: &[&str]) -> Result<(), Refusal> {
        let s = self.string(pointer)?;
        enum_check(pointer, s, allowed)
    }

    fn optional_one_of(&self, pointer: &str, allowed: &[&str]) -> Result<(), Refusal> {
        match self.optional_string(pointer)? {
            Some(s) => enum_check(pointer, s, allowed),
            None => Ok(()),
        }
    }
}

fn enum_check(pointer: &str, s: &str, allowed: &[&str]) -> Result<(), Refusal> {
    if allowed.contains(&s) {
        Ok(())
    } else {
        Err(refuse(
            pointer,
            format!("must be one of {}, got {s:?}", allowed.join(", ")),
        ))
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Whether `s` is `YYYY-MM-DDThh:mm:ssZ`, a real UTC date and time.
pub fn is_event_time(s: &str) -> bool {
    let format = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    s.len() == 20 && time::PrimitiveDateTime::parse(s, &format).is_ok()
}

/// Check `doc` against the seed's tables; its event type when it passes.
pub fn check(doc: &Value) -> Result<EventType, Refusal> {
    let d = Doc(doc);
    if !doc.is_object() {
        return Err(refuse(
            "",
            format!("an event must be a JSON object, got {}", type_name(doc)),
        ));
    }
    d.object("/header")?;
    let version = d.string("/header/version")?;
    if version != "2.0" {
        return Err(refuse("/header/version", format!("must be \"2.0\", got {version:?}")));
    }
    d.object("/header/eventId")?;
    d.string("/header/eventId/id")?;
    d.object("/header/eventType")?;
    let namespace = d.string("/header/eventType/namespace")?;
    let name = d.string("/header/eventType/name")?;
    let kind = EventType::from_parts(namespace, name).ok_or_else(|| {
        refuse(
            "/header/eventType",
            format!(
                "{namespace}.{name} is not an event type of the seed (one of {})",
                EventType::ALL.map(|t| t.full_name()).join(", ")
            ),
        )
    })?;
    d.object("/header/eventTime")?;
    let ts = d.string("/header/eventTime/timestamp")?;
    if !is_event_time(ts) {
        return Err(refuse(
            "/header/eventTime/timestamp",
            format!("must be YYYY-MM-DDThh:mm:ssZ (RFC 3339, UTC, whole seconds), got {ts:?}"),
        ));
    }
    d.object("/header/entities")?;
    d.object("/header/entities/unit")?;
    d.one_of("/header/entities/unit/type", &["Unit"])?;
    d.string("/header/entities/unit/id")?;
    if d.optional_object("/header/entities/unit/parent")? {
        d.one_of("/header/entities/unit/parent/type", &["Unit"])?;
        d.string("/header/entities/unit/parent/id")?;
    }
    d.object("/payload")?;
    match kind {
        EventType::AutomationCompletion => automation(&d)?,
        EventType::SkillInteractionFailure => interaction(&d)?,
        EventType::SubscriptionActivation => activation(&d)?,
    }
    Ok(kind)
}

fn automation(d: &Doc<'_>) -> Result<(), Refusal> {
    d.object("/payload/automation")?;
    d.string("/payload/automation/id")?;
    d.object("/payload/result")?;
    d.one_of("/payload/result/status", AUTOMATION_STATUS)?;
    match d.get("/payload/result/errors") {
        None => {}
        Some(Value::Array(errors)) => {
            for i in 0..errors.len() {
                let at = format!("/payload/result/errors/{i}");
                d.object(&at)?;
                d.optional_one_of(&format!("{at}/type"), AUTOMATION_ERRORS)?;
                d.optional_string(&format!("{at}/message"))?;
                d.optional_string(&format!("{at}/id"))?;
            }
        }
        Some(v) => {
            return Err(refuse(
                "/payload/result/errors",
                format!("must be an array, got {}", type_name(v)),
            ));
        }
    }
    Ok(())
}

fn interaction(d: &Doc<'_>) -> Result<(), Refusal> {
    d.object("/header/entities/skill")?;
    d.one_of("/header/entities/skill/type", &["Skill"])?;
    d.string("/header/entities/skill/id")?;
    d.object("/payload/interaction")?;
    d.one_of("/payload/interaction/type", INTERACTION_TYPES)?;
    d.string("/payload/interaction/locale")?;
    if d.optional_object("/payload/interaction/intent")? {
        d.optional_string("/payload/interaction/intent/name")?;
    }
    d.object("/payload/skill")?;
    d.string("/payload/skill/id")?;
    d.one_of("/payload/skill/stage", SKILL_STAGES)?;
    d.object("/payload/unit")?;
    d.string("/payload/unit/id")?;
    d.object("/payload/session")?;
    d.string("/payload/session/id")?;
    d.string("/payload/requestId")?;
    d.object("/payload/error")?;
    d.one_of("/payload/error/type", INTERACTION_ERRORS)?;
    d.string("/payload/error/message")?;
    Ok(())
}

fn activation(d: &Doc<'_>) -> Result<(), Refusal> {
    d.object("/payload/subscription")?;
    d.string("/payload/subscription/id")?;
    d.object("/payload/result")?;
    d.one_of("/payload/result/status", ACTIVATION_STATUS)?;
    if d.optional_object("/payload/result/error")? {
        d.one_of("/payload/result/error/type", ACTIVATION_ERRORS)?;
        d.string("/payload/result/error/message")?;
    }
    Ok(())
}
