//! Control routes that make Alexa talk to a skill: discover a user's
//! devices, send a directive, and show what the user's skill and gateway
//! traffic broke, rule by rule.

use super::ControlError;
use crate::journal::{Face, Kind, Query};
use crate::smarthome::alexa::{self, AlexaError, DirectiveRequest};
use crate::state::State;
use axum::extract::{Path, State as AxState};
use axum::routing::{get, post};
use axum::{Json, Router};
use bytes::Bytes;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The smart home routes Alexa's side owns.
pub fn router() -> Router<Arc<State>> {
    Router::new()
        .route("/api/smarthome/discover", post(discover))
        .route("/api/smarthome/directives", post(directive))
        .route("/api/smarthome/users/{user}/conformance", get(conformance))
}

impl From<AlexaError> for ControlError {
    fn from(e: AlexaError) -> ControlError {
        match e {
            AlexaError::UnknownUser(_) | AlexaError::UnknownSkill { .. } => ControlError::NotFound(e.to_string()),
            AlexaError::BadDirective(_) => ControlError::BadRequest(e.to_string()),
            AlexaError::Busy(_) => ControlError::Busy(e.to_string()),
        }
    }
}

fn json_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ControlError> {
    serde_json::from_slice(body).map_err(|e| ControlError::BadRequest(format!("invalid request body: {e}")))
}

/// `POST /api/smarthome/discover {"user"}`: Alexa sends Discover and judges
/// the answer: `accepted`, `dropped` (each with its findings), `findings`,
/// `duration_ms`, and the invocation's `verdict`.
async fn discover(AxState(state): AxState<Arc<State>>, body: Bytes) -> Result<Json<Value>, ControlError> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Req {
        user: String,
    }
    let req: Req = json_body(&body)?;
    let report = alexa::discover(&state, &req.user).await?;
    Ok(Json(serde_json::to_value(report).unwrap_or_default()))
}

/// `POST /api/smarthome/directives {"user","endpoint","namespace","name","payload"}`:
/// the skill's answer, its kind and findings.
async fn directive(AxState(state): AxState<Arc<State>>, body: Bytes) -> Result<Json<Value>, ControlError> {
    let req: DirectiveRequest = json_body(&body)?;
    let report = alexa::send(&state, &req).await?;
    Ok(Json(serde_json::to_value(report).unwrap_or_default()))
}

/// `GET /api/smarthome/users/{user}/conformance`: every rule the user's
/// skill and gateway traffic broke (or only warned about), with the
/// journal entries that show it.
async fn conformance(
    AxState(state): AxState<Arc<State>>,
    Path(user): Path<String>,
) -> Result<Json<Value>, ControlError> {
    if !state.config.users.iter().any(|u| u.id == user) {
        return Err(ControlError::NotFound(format!("no user {user:?} in [[users]]")));
    }
    Ok(Json(user_conformance(&state, &user)))
}

/// Findings of `user`'s exchanges still in the journal, grouped by rule.
pub fn user_conformance(state: &State, user: &str) -> Value {
    let mut rules: BTreeMap<String, (bool, Vec<Value>)> = BTreeMap::new();
    let mut exchanges = 0;
    for face in [Face::Skill, Face::Gateway] {
        let q = Query {
            face: Some(face),
            limit: Some(usize::MAX),
            ..Default::default()
        };
        for e in state.journal.query(&q) {
            if e.kind != Kind::Response || owner(state, &e.body).as_deref() != Some(user) {
                continue;
            }
            exchanges += 1;
            for f in e.body["findings"].as_array().into_iter().flatten() {
                let rule = f["rule"].as_str().unwrap_or("?").to_string();
                let slot = rules.entry(rule).or_default();
                slot.0 |= f["severity"] == "error";
                if slot.1.len() < 20 {
                    slot.1
                        .push(json!({"journal": e.id, "face": face, "pointer": f["pointer"], "message": f["message"]}));
                }
            }
        }
    }
    let rules: BTreeMap<String, Value> = rules
        .into_iter()
        .map(|(rule, (error, evidence))| {
            let verdict = if error { "fail" } else { "warn" };
            (rule, json!({"verdict": verdict, "evidence": evidence}))
        })
        .collect();
    json!({"user": user, "exchanges": exchanges, "rules": rules})
}

/// The user an answer entry belongs to: its own `user`, else its request's.
fn owner(state: &State, body: &Value) -> Option<String> {
    if let Some(u) = body["user"].as_str() {
        return Some(u.to_string());
    }
    let request = state.journal.get(body["request"].as_u64()?)?;
    request.body["user"].as_str().map(str::to_string)
}
