//! Scenario steps of the smart home face: Alexa discovers a user's devices
//! or sends a directive to their skill, and the scenario checks the
//! verdict, what the skill posts to the event gateway, and what Alexa's
//! registry ends up knowing.

use super::Dur;
use serde::Deserialize;

/// `kind = "discover"`: Alexa sends Discover to the user's skill.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Discover {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub id: Option<String>,
    /// A `[[users]]` id.
    pub user: String,
    /// How the invocation must end: `ok` (default), `invalid`, `timeout`,
    /// `crashed`, `not_json`, `too_large` or `unreachable`.
    #[serde(default)]
    pub verdict: Option<String>,
    /// Exactly these endpoint ids are accepted (in any order).
    #[serde(default)]
    pub accepted: Option<Vec<String>>,
    /// Each of these endpoints is dropped (for `rule`, when given).
    #[serde(default)]
    pub dropped: Vec<DroppedWant>,
    /// Rules with at least one finding, by number or full name (`"15"`,
    /// `"15 Alexa interface"`).
    #[serde(default)]
    pub findings: Vec<String>,
}

/// An endpoint a discovery must drop.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DroppedWant {
    pub endpoint: String,
    #[serde(default)]
    pub rule: Option<String>,
}

/// `kind = "skill_directive"`: Alexa sends a directive to one endpoint.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SkillDirective {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub id: Option<String>,
    pub user: String,
    /// `Namespace.Name`, e.g. `Alexa.PowerController.TurnOn`.
    pub directive: String,
    #[serde(default)]
    pub endpoint: Option<String>,
    #[serde(default)]
    pub payload: Option<toml::Table>,
    /// The answer's name: `Response`, `DeferredResponse`, `ErrorResponse`,
    /// `StateReport`, `AcceptGrant.Response`.
    #[serde(default)]
    pub answer: Option<String>,
    /// As in `discover`; default `ok`.
    #[serde(default)]
    pub verdict: Option<String>,
    /// An ErrorResponse's `payload.type`.
    #[serde(default)]
    pub error_type: Option<String>,
    #[serde(default)]
    pub findings: Vec<String>,
}

/// `kind = "expect_gateway_event"`: the skill posts an event to the gateway.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectGatewayEvent {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub id: Option<String>,
    pub user: String,
    /// `Namespace.Name`, e.g. `Alexa.ChangeReport`.
    #[serde(default)]
    pub event: Option<String>,
    #[serde(default)]
    pub endpoint: Option<String>,
    /// The gateway's answer; default 202.
    #[serde(default)]
    pub status: Option<u16>,
    /// The refusal's `payload.code`.
    #[serde(default)]
    pub code: Option<String>,
    /// A property the event reports (change or context).
    #[serde(default)]
    pub property: Option<PropertyWant>,
    #[serde(default)]
    pub within: Option<Dur>,
}

/// `kind = "expect_registry"`: what Alexa knows of an endpoint.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectRegistry {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub id: Option<String>,
    pub user: String,
    pub endpoint: String,
    /// Whether Alexa knows it (default true).
    #[serde(default)]
    pub present: Option<bool>,
    #[serde(default)]
    pub property: Option<PropertyWant>,
    #[serde(default)]
    pub within: Option<Dur>,
}

/// A property by name (and namespace), with the value it must have.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PropertyWant {
    #[serde(default)]
    pub namespace: Option<String>,
    pub name: String,
    pub value: toml::Value,
}

/// The verdicts a step may expect.
pub const SKILL_VERDICTS: &[&str] = &[
    "ok",
    "invalid",
    "timeout",
    "crashed",
    "not_json",
    "too_large",
    "unreachable",
];
