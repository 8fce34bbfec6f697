//! Scenario steps of the SNS and Smart Properties faces: raise events
//! (by hand, by activating a unit's subscription, by running an
//! automation) and check what SNS did with them: deliveries to a
//! subscriber, confirmed subscriptions, the dead-letter list.

use super::Dur;
use serde::Deserialize;

/// `kind = "publish_event"`: publish a Smart Properties event, given as
/// `type` + `unit` + the fields that vary (as `POST /api/asp/events` takes
/// them), or whole as `event`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublishEvent {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub id: Option<String>,
    /// `Alexa.Automation.Execution.Completion`, `Alexa.Skill.Interaction.Failure`
    /// or `Alexa.Enterprise.Subscription.Activation`.
    #[serde(default, rename = "type")]
    pub event_type: Option<String>,
    /// A `[[units]]` id.
    #[serde(default)]
    pub unit: Option<String>,
    /// The whole event document (instead of `type` and fields).
    #[serde(default)]
    pub event: Option<toml::Table>,
    /// The topic (name or ARN); default `[asp] topic`.
    #[serde(default)]
    pub topic: Option<String>,
    #[serde(default)]
    pub automation: Option<String>,
    /// `[{type, id, message?}]` of an automation.
    #[serde(default)]
    pub errors: Option<toml::Value>,
    #[serde(default)]
    pub skill: Option<String>,
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
    #[serde(default)]
    pub error_type: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub subscription: Option<String>,
    /// Expect the event refused: the JSON pointer (or text) the refusal names.
    #[serde(default)]
    pub refused: Option<String>,
}

/// `kind = "expect_delivery"`: SNS delivered (or attempted) a message to a
/// subscription.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectDelivery {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub id: Option<String>,
    /// The subscription's endpoint URL or ARN.
    pub subscription: String,
    /// `Notification` (default), `SubscriptionConfirmation` or `UnsubscribeConfirmation`.
    #[serde(default)]
    pub message_type: Option<String>,
    /// The attempt's HTTP status; default any 2xx (delivered).
    #[serde(default)]
    pub status: Option<u16>,
    /// The attempt's number (1 = the first).
    #[serde(default)]
    pub attempts: Option<u32>,
    #[serde(default)]
    pub within: Option<Dur>,
}

/// `kind = "expect_subscription_confirmed"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectSubscriptionConfirmed {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub id: Option<String>,
    /// The subscription's endpoint URL or ARN.
    pub subscription: String,
    #[serde(default)]
    pub within: Option<Dur>,
}

/// `kind = "expect_dead_letter"`: a message to the subscription was given up on.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectDeadLetter {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub id: Option<String>,
    /// The subscription's endpoint URL or ARN.
    pub subscription: String,
    #[serde(default)]
    pub within: Option<Dur>,
}

/// `kind = "activate_subscription"`: `Alexa.Enterprise.Subscription.Activation` for a unit.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActivateSubscription {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub id: Option<String>,
    pub unit: String,
    /// The status the event must carry: `SUCCEEDED` or `FAILED`.
    #[serde(default)]
    pub status: Option<String>,
}

/// `kind = "run_automation"`: run a `[[automations]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunAutomation {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub id: Option<String>,
    /// The automation's id (`id` names the step, as in every step).
    pub automation: String,
    /// The status the event must carry: `SUCCESS` or `FAILURE`.
    #[serde(default)]
    pub status: Option<String>,
}

/// The SNS message types a delivery step may name.
pub const MESSAGE_TYPES: &[&str] = &["Notification", "SubscriptionConfirmation", "UnsubscribeConfirmation"];
