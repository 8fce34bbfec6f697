//! Running an automation: each action is a smart home directive sent
//! through the user's skill (`smarthome::alexa::send`, the same path as the
//! control API's), then `Alexa.Automation.Execution.Completion` reports
//! SUCCESS, or FAILURE with one error per failed action: ENDPOINT_NOT_FOUND
//! when Alexa's registry lacks the endpoint (nothing is sent to it),
//! INTERNAL_SERVER_ERROR when the skill failed it (no usable answer, an
//! invalid one, or an ErrorResponse: the action ran without taking effect).

use super::event::{self, AutomationError};
use super::{AspError, AutomationDecl, Raised};
use crate::smarthome::alexa::{self, DirectiveRequest, Verdict};
use crate::smarthome::judge::AnswerKind;
use crate::state::State;
use serde::Serialize;
use serde_json::json;
use std::sync::Arc;

/// What one action came to.
#[derive(Debug, Clone, Serialize)]
pub struct ActionOutcome {
    pub endpoint: String,
    pub directive: String,
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A run: each action and the Completion event raised.
#[derive(Debug, Clone, Serialize)]
pub struct Run {
    pub automation: String,
    pub status: &'static str,
    pub actions: Vec<ActionOutcome>,
    pub event: Raised,
}

/// The declared automation `id`.
pub fn find<'a>(state: &'a State, id: &str) -> Option<&'a AutomationDecl> {
    state.config.automations.iter().find(|a| a.id == id)
}

/// Run automation `id` and raise its Completion event.
pub async fn run(state: &Arc<State>, id: &str) -> Result<Run, AspError> {
    let automation = find(state, id).ok_or_else(|| {
        AspError::NotFound(format!(
            "unknown automation {id:?}: automations are declared in [[automations]]"
        ))
    })?;
    // validate() checked the unit exists.
    let unit = super::unit(state, &automation.unit)
        .ok_or_else(|| AspError::NotFound(format!("unknown unit {:?}", automation.unit)))?;
    let mut actions = Vec::new();
    let mut errors = Vec::new();
    for action in &automation.actions {
        let (namespace, name) = action.directive.rsplit_once('.').unwrap_or(("", ""));
        let failure = if state
            .smarthome
            .registry
            .declaration(&automation.user, &action.endpoint)
            .is_none()
        {
            Some((
                "ENDPOINT_NOT_FOUND",
                format!("Endpoint {} used in the automation was not found", action.endpoint),
            ))
        } else {
            let request = DirectiveRequest {
                user: automation.user.clone(),
                endpoint: Some(action.endpoint.clone()),
                namespace: namespace.into(),
                name: name.into(),
                payload: action.payload.clone().unwrap_or_else(|| json!({})),
            };
            match alexa::send(state, &request).await {
                Err(e) => Some(("INTERNAL_SERVER_ERROR", e.to_string())),
                Ok(r) if r.exchange.verdict != Verdict::Ok => Some((
                    "INTERNAL_SERVER_ERROR",
                    r.exchange
                        .detail
                        .clone()
                        .unwrap_or_else(|| format!("the skill's answer was {:?}", r.exchange.verdict)),
                )),
                Ok(r) => match r.kind {
                    Some(AnswerKind::ErrorResponse { error_type, message }) => Some((
                        "INTERNAL_SERVER_ERROR",
                        format!("the skill answered ErrorResponse {error_type}: {message}"),
                    )),
                    _ => None,
                },
            }
        };
        actions.push(ActionOutcome {
            endpoint: action.endpoint.clone(),
            directive: action.directive.clone(),
            ok: failure.is_none(),
            error: failure.as_ref().map(|(_, m)| m.clone()),
        });
        if let Some((kind, message)) = failure {
            errors.push(AutomationError {
                kind: kind.into(),
                id: action.endpoint.clone(),
                message,
            });
        }
    }
    let doc = event::automation_completion(&unit.to_ref(), &automation.id, &errors, &event::now());
    let raised = super::raise(state, &doc, None)?;
    Ok(Run {
        automation: automation.id.clone(),
        status: if errors.is_empty() { "SUCCESS" } else { "FAILURE" },
        actions,
        event: raised,
    })
}
