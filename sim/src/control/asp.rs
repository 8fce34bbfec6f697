//! Smart Properties events on the control API. Each raised event is
//! published to the `[asp] topic` and journaled under face `asp`.
//!
//! - `POST /api/asp/intents` `{"unit", "skill", "intent", "locale"?,
//!   "session"?}` → 200 `{"outcome", "detail"?, "answer"?, "sessionId",
//!   "requestId", "event"?}`: a custom-skill IntentRequest; a timeout or an
//!   unusable answer raises `Alexa.Skill.Interaction.Failure` (`event`).
//! - `POST /api/asp/automations/{id}/run` → 200 `{"automation", "status",
//!   "actions", "event"}`: `Alexa.Automation.Execution.Completion`.
//! - `POST /api/asp/subscriptions/activate` `{"unit"}` → 200 the raised
//!   `Alexa.Enterprise.Subscription.Activation` (`eventId`, `MessageId`...).
//! - `POST /api/asp/events` `{"event": {...}, "topic"?}` or `{"type",
//!   "unit", ...fields}` → 200 the raised event; 400 naming the field a
//!   document breaks.
//!
//! Unknown units, skills and automations are 404s naming them.

use super::ControlError;
use crate::asp::{self, AspError};
use crate::journal::{Face, Kind, Record};
use crate::state::State;
use axum::extract::{Path, State as AxState};
use axum::routing::post;
use axum::{Json, Router};
use bytes::Bytes;
use serde_json::{Value, json};
use std::sync::Arc;

/// The Smart Properties routes, merged into the control router.
pub fn router() -> Router<Arc<State>> {
    Router::new()
        .route("/api/asp/intents", post(intents))
        .route("/api/asp/automations/{id}/run", post(run_automation))
        .route("/api/asp/subscriptions/activate", post(activate))
        .route("/api/asp/events", post(events))
}

impl From<AspError> for ControlError {
    fn from(e: AspError) -> ControlError {
        match e {
            AspError::NotFound(m) => ControlError::NotFound(m),
            AspError::Busy(_) => ControlError::Busy(e.to_string()),
            AspError::Sns(e) if e.status() == 404 => ControlError::NotFound(e.to_string()),
            other => ControlError::BadRequest(other.to_string()),
        }
    }
}

fn parse<T: serde::de::DeserializeOwned>(body: &[u8], shape: &str) -> Result<T, ControlError> {
    serde_json::from_slice(body).map_err(|e| ControlError::BadRequest(format!("body must be {shape}: {e}")))
}

fn journal_request(state: &State, what: String, body: Value) {
    state
        .journal
        .record(Record::new(Face::Control, Kind::Request, what).body(body));
}

async fn intents(AxState(state): AxState<Arc<State>>, body: Bytes) -> Result<Json<Value>, ControlError> {
    let call: asp::intent::IntentCall = parse(&body, r#"{"unit", "skill", "intent", "locale"?, "session"?}"#)?;
    journal_request(
        &state,
        "POST /api/asp/intents".into(),
        json!({"unit": call.unit, "skill": call.skill, "intent": call.intent}),
    );
    let outcome = asp::intent::send(&state, &call).await?;
    Ok(Json(json!(outcome)))
}

async fn run_automation(
    AxState(state): AxState<Arc<State>>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ControlError> {
    journal_request(
        &state,
        format!("POST /api/asp/automations/{id}/run"),
        json!({"automation": id}),
    );
    let run = asp::automation::run(&state, &id).await?;
    Ok(Json(json!(run)))
}

async fn activate(AxState(state): AxState<Arc<State>>, body: Bytes) -> Result<Json<Value>, ControlError> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Activate {
        unit: String,
    }
    let Activate { unit } = parse(&body, r#"{"unit": "<unit id>"}"#)?;
    journal_request(
        &state,
        "POST /api/asp/subscriptions/activate".into(),
        json!({"unit": unit}),
    );
    let raised = asp::activation::activate(&state, &unit)?;
    Ok(Json(json!(raised)))
}

async fn events(AxState(state): AxState<Arc<State>>, body: Bytes) -> Result<Json<Value>, ControlError> {
    let request: Value = parse(&body, "a JSON object")?;
    journal_request(&state, "POST /api/asp/events".into(), request.clone());
    let raised = match request.get("event") {
        Some(event) => {
            let extra = request
                .as_object()
                .into_iter()
                .flat_map(|o| o.keys())
                .find(|k| !matches!(k.as_str(), "event" | "topic"));
            if let Some(k) = extra {
                return Err(ControlError::BadRequest(format!(
                    "unknown field {k:?}: give {{\"event\": {{...}}, \"topic\"?}}, or {{\"type\", \"unit\", ...fields}}"
                )));
            }
            let topic = match request.get("topic") {
                None => None,
                Some(Value::String(t)) => Some(t.as_str()),
                Some(_) => return Err(ControlError::BadRequest("topic must be a string".into())),
            };
            asp::raise(&state, event, topic)?
        }
        None => {
            let hand: asp::hand::HandEvent = serde_json::from_value(request).map_err(|e| {
                ControlError::BadRequest(format!(
                    "body must be {{\"event\": {{...}}}} or {{\"type\", \"unit\", ...fields}}: {e}"
                ))
            })?;
            let doc = asp::hand::build(&state, &hand)?;
            asp::raise(&state, &doc, None)?
        }
    };
    Ok(Json(json!(raised)))
}
