//! Activating a unit's enterprise subscription:
//! `Alexa.Enterprise.Subscription.Activation`, SUCCEEDED, or FAILED with
//! `payload.result.error` INTERNAL_SERVER_ERROR when a fault rule of face
//! `asp` with action `status` fires (`path` is the unit id, `event`
//! `Alexa.Enterprise.Subscription.Activation`): the activation workflow
//! "timed out or failed to run", as the seed puts it.

use super::event::{self, EventType};
use super::{AspError, Raised};
use crate::faults::{Action, Point};
use crate::journal::Face;
use crate::state::State;
use std::sync::Arc;

/// `payload.subscription.id`: the unit's skill when it has one (the seed's
/// example is a skill id), else one made from the unit id.
pub fn subscription_id(unit: &super::UnitDecl) -> String {
    unit.skill
        .clone()
        .unwrap_or_else(|| format!("amzn1.alexa.subscription.{}", unit.id))
}

/// Activate unit `id`'s subscription and raise the event.
pub fn activate(state: &Arc<State>, id: &str) -> Result<Raised, AspError> {
    let unit = super::unit(state, id)
        .ok_or_else(|| AspError::NotFound(format!("unknown unit {id:?}: units are declared in [[units]]")))?;
    let what = EventType::SubscriptionActivation.full_name();
    let point = |event| Point {
        face: Face::Asp,
        device: None,
        path: &unit.id,
        event,
        connection: None,
        stream: None,
    };
    let fired = state
        .faults
        .fire(&state.journal, &point(None), None)
        .or_else(|| state.faults.fire(&state.journal, &point(Some(&what)), None));
    let error = match fired {
        Some(f) if matches!(f.action, Action::Status { .. }) => {
            Some(format!("the activation workflow failed (fault rule {})", f.rule))
        }
        _ => None,
    };
    let doc = event::subscription_activation(
        &unit.to_ref(),
        &subscription_id(unit),
        error.as_deref().map(|m| ("INTERNAL_SERVER_ERROR", m)),
        &event::now(),
    );
    super::raise(state, &doc, None)
}
