//! The scenario file format: a serde model with `deny_unknown_fields`.
//!
//! A scenario names the devices it expects and a list of steps; each step
//! table has a `kind` that picks its shape. Every step struct repeats the
//! common `name` and `id` fields on purpose: serde's `flatten` cannot be
//! combined with `deny_unknown_fields`, and a typo must fail loudly. `load` parses step tables one
//! by one so that every mistake in a file is reported, each with its
//! location; this module only says what a well-formed file contains.

mod smarthome;
mod sns;

pub use smarthome::*;
pub use sns::*;

use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Duration;
use toml::Spanned;

/// A whole scenario file.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub name: String,
    pub description: Option<String>,
    /// Config overrides: the same keys as `serve`'s config file.
    pub config: Option<toml::Table>,
    pub devices: Vec<Actor>,
    pub steps: Vec<Step>,
    /// Where it came from, for reports.
    pub file: String,
}

/// The head of a scenario file (everything but `steps`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Head {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub config: Option<toml::Table>,
    #[serde(default)]
    pub devices: Vec<Actor>,
}

/// A device the scenario expects.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Actor {
    /// How steps refer to it.
    pub name: String,
    /// The device id it connects as. Defaults to `token` (lenient auth), else `name`.
    #[serde(default)]
    pub id: Option<String>,
    /// The bearer token it uses; with `id`, the pair is declared to the simulator.
    #[serde(default)]
    pub token: Option<String>,
}

impl Actor {
    /// The device id the simulator will know this actor by.
    pub fn device_id(&self) -> String {
        self.id
            .clone()
            .or_else(|| self.token.clone())
            .unwrap_or_else(|| self.name.clone())
    }
}

/// A duration written as a string, parsed when the file is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dur(pub Duration);

/// The longest duration a scenario (or a fault rule's window) may give:
/// longer is surely a mistake, and deadlines computed from it stay far
/// from overflowing.
pub const MAX_DUR: Duration = Duration::from_secs(30 * 24 * 3600);

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: serde::Deserializer<'de>>(de: D) -> Result<Dur, D::Error> {
        let d = crate::duration::deserialize(de)?;
        if d > MAX_DUR {
            return Err(serde::de::Error::custom(format!(
                "duration {} is too long: at most {} (30 days)",
                crate::duration::format(d),
                crate::duration::format(MAX_DUR)
            )));
        }
        Ok(Dur(d))
    }
}

/// One step.
#[derive(Debug, Clone)]
pub struct Step {
    /// A label for progress lines and reports.
    pub name: Option<String>,
    /// Names the step for `capture.from`.
    pub id: Option<String>,
    /// Byte span of the step table, for errors found later.
    pub span: std::ops::Range<usize>,
    pub action: Action,
    /// Every `{{name}}` in its templated values, with the byte offset of each.
    pub templates: Vec<(String, usize)>,
    /// It had a mistake `load` reported and worked around (a key taken
    /// out): checks of how its keys fit together are skipped.
    pub damaged: bool,
}

/// What a step does.
#[derive(Debug, Clone)]
pub enum Action {
    AwaitConnect(AwaitConnect),
    Send(Send),
    Expect(Expect),
    Capture(Capture),
    Wait(Wait),
    Repeat(Repeat, Vec<Step>),
    Parallel(Vec<Step>),
    ExpectConformance(ExpectConformance),
    Fault(Box<FaultStep>),
    ClearFault(ClearFault),
    Discover(Discover),
    SkillDirective(SkillDirective),
    ExpectGatewayEvent(ExpectGatewayEvent),
    ExpectRegistry(ExpectRegistry),
    PublishEvent(Box<PublishEvent>),
    ExpectDelivery(ExpectDelivery),
    ExpectSubscriptionConfirmed(ExpectSubscriptionConfirmed),
    ExpectDeadLetter(ExpectDeadLetter),
    ActivateSubscription(ActivateSubscription),
    RunAutomation(RunAutomation),
}

impl Action {
    pub fn kind(&self) -> &'static str {
        match self {
            Action::AwaitConnect(_) => "await_connect",
            Action::Send(_) => "send",
            Action::Expect(_) => "expect",
            Action::Capture(_) => "capture",
            Action::Wait(_) => "wait",
            Action::Repeat(..) => "repeat",
            Action::Parallel(_) => "parallel",
            Action::ExpectConformance(_) => "expect_conformance",
            Action::Fault(_) => "fault",
            Action::ClearFault(_) => "clear_fault",
            Action::Discover(_) => "discover",
            Action::SkillDirective(_) => "skill_directive",
            Action::ExpectGatewayEvent(_) => "expect_gateway_event",
            Action::ExpectRegistry(_) => "expect_registry",
            Action::PublishEvent(_) => "publish_event",
            Action::ExpectDelivery(_) => "expect_delivery",
            Action::ExpectSubscriptionConfirmed(_) => "expect_subscription_confirmed",
            Action::ExpectDeadLetter(_) => "expect_dead_letter",
            Action::ActivateSubscription(_) => "activate_subscription",
            Action::RunAutomation(_) => "run_automation",
        }
    }
}

/// Step kinds later faces add; the format reserves their names.
pub const RESERVED_KINDS: &[&str] = &[];

/// Every step kind, for error messages.
pub const KINDS: &[&str] = &[
    "await_connect",
    "send",
    "expect",
    "capture",
    "wait",
    "repeat",
    "parallel",
    "expect_conformance",
    "fault",
    "clear_fault",
    "discover",
    "skill_directive",
    "expect_gateway_event",
    "expect_registry",
    "publish_event",
    "expect_delivery",
    "expect_subscription_confirmed",
    "expect_dead_letter",
    "activate_subscription",
    "run_automation",
];

/// Wait for a device to open its downchannel.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AwaitConnect {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub id: Option<String>,
    pub device: Spanned<String>,
    #[serde(default)]
    pub within: Option<Dur>,
    /// Only a downchannel on this region's listener counts.
    #[serde(default)]
    pub region: Option<String>,
    /// Also wait until the device's SynchronizeState on that connection was
    /// accepted (2xx); the step then claims it. Without it the step passes
    /// as soon as the downchannel opens, before SynchronizeState.
    #[serde(default)]
    pub synchronized: bool,
}

/// Push a directive to a device.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Send {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub id: Option<String>,
    pub device: Spanned<String>,
    /// `Namespace.Name` of a known directive, built with `payload`.
    #[serde(default)]
    pub directive: Option<Spanned<String>>,
    #[serde(default)]
    pub payload: Option<toml::Table>,
    #[serde(default)]
    pub dialog_request_id: Option<String>,
    /// A whole directive document, sent as given (messageId filled in).
    #[serde(default)]
    pub json: Option<toml::Table>,
    /// Raw bytes as the part body (to provoke ExceptionEncountered).
    #[serde(default)]
    pub raw: Option<String>,
    /// A binary part the directive references as `cid:<cid>`.
    #[serde(default)]
    pub attachment: Option<AttachmentSpec>,
    /// Send the attachment on the device's next event response instead (a fault).
    #[serde(default)]
    pub attachment_elsewhere: bool,
}

/// An attachment of a `send` step.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttachmentSpec {
    pub cid: String,
    pub text: String,
}

/// One field matcher; every given test must hold.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Matcher {
    #[serde(default)]
    pub equals: Option<toml::Value>,
    #[serde(default)]
    pub regex: Option<String>,
    #[serde(default)]
    pub exists: Option<bool>,
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub min: Option<Bound>,
    #[serde(default)]
    pub max: Option<Bound>,
}

/// A bound of `min` / `max`: a number, or a string that is exactly one
/// `{{var}}`, whose value (a number, or a string holding one) is used when
/// the matcher runs.
#[derive(Debug, Clone, PartialEq)]
pub enum Bound {
    Number(f64),
    Template(String),
}

impl<'de> Deserialize<'de> for Bound {
    fn deserialize<D: serde::Deserializer<'de>>(de: D) -> Result<Bound, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Bound;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a number or a string that is exactly one `{{variable}}`")
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Bound, E> {
                Ok(Bound::Number(v as f64))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Bound, E> {
                Ok(Bound::Number(v as f64))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Bound, E> {
                Ok(Bound::Number(v))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Bound, E> {
                match super::template::names(v).as_slice() {
                    [name] if v.trim() == format!("{{{{{name}}}}}") => Ok(Bound::Template(name.clone())),
                    _ => Err(E::custom(format!(
                        "a numeric bound is a number or exactly one `{{{{variable}}}}`, not {v:?}"
                    ))),
                }
            }
        }
        de.deserialize_any(Visitor)
    }
}

/// Wait for an event (or request) from a device.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub id: Option<String>,
    pub device: Spanned<String>,
    /// `Namespace.Name` of the event.
    #[serde(default)]
    pub event: Option<String>,
    /// Or a request line such as `GET /ping`.
    #[serde(default)]
    pub request: Option<String>,
    /// Field matchers keyed by JSON pointer into the event document.
    #[serde(default, rename = "match")]
    pub fields: BTreeMap<String, Matcher>,
    #[serde(default)]
    pub within: Option<Dur>,
    /// Exactly this many within the window (waits for the whole window).
    #[serde(default)]
    pub count: Option<u32>,
    /// No match at all during the window.
    #[serde(default)]
    pub never: bool,
    /// Variables to set from the (first) match: name → JSON pointer.
    #[serde(default)]
    pub capture: BTreeMap<String, String>,
    /// Only what arrived after the step with this `id` finished.
    #[serde(default)]
    pub after: Option<Spanned<String>>,
    /// Only what arrived on the connection the device's latest `await_connect` saw.
    #[serde(default)]
    pub same_connection: bool,
}

/// Copy a value from a matched entry into a variable.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Capture {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub id: Option<String>,
    pub var: Spanned<String>,
    pub pointer: String,
    /// The `id` of an earlier expect step; defaults to the latest expect.
    #[serde(default)]
    pub from: Option<Spanned<String>>,
}

/// Let time pass.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Wait {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub id: Option<String>,
    pub duration: Dur,
}

/// Run the nested steps `times` times, or until `until` holds (at most `max` rounds).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Repeat {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub times: Option<u32>,
    #[serde(default)]
    pub until: Option<Until>,
    #[serde(default)]
    pub max: Option<u32>,
}

/// A condition over the journal: an event from a device matching fields.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Until {
    pub device: Spanned<String>,
    #[serde(default)]
    pub event: Option<String>,
    #[serde(default)]
    pub request: Option<String>,
    #[serde(default, rename = "match")]
    pub fields: BTreeMap<String, Matcher>,
}

/// Nested steps that run concurrently.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Parallel {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub id: Option<String>,
}

/// A device's conformance rule must reach a verdict.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectConformance {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub id: Option<String>,
    pub device: Spanned<String>,
    pub rule: Spanned<String>,
    /// `pass` (default) or `fail`.
    #[serde(default)]
    pub verdict: Option<Spanned<String>>,
    #[serde(default)]
    pub within: Option<Dur>,
}

/// Install a fault rule (or, with `now`, apply a connection fault at once).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultStep {
    #[serde(default)]
    pub name: Option<String>,
    /// Also the rule's id, for `clear_fault`.
    #[serde(default)]
    pub id: Option<String>,
    /// The device the rule is about (fills `when.device`), or the one `now` acts on.
    #[serde(default)]
    pub device: Option<Spanned<String>>,
    #[serde(default)]
    pub when: crate::faults::When,
    pub then: crate::faults::Action,
    #[serde(default)]
    pub times: Option<u32>,
    /// Remove the rule after this long (it is removed at the scenario's end anyway).
    #[serde(default)]
    pub duration: Option<Dur>,
    /// Apply the action to the device's connection now instead of installing a rule.
    #[serde(default)]
    pub now: bool,
}

/// Remove a rule an earlier `fault` step installed.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClearFault {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub id: Option<String>,
    pub fault: Spanned<String>,
}
