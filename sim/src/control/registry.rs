//! The smart home registry on the control API: what Alexa knows of a
//! user's home, and whether the user's skill is enabled.
//!
//! - `GET /api/smarthome/users` → `{"users": [...]}`: every declared user
//!   with its skill, whether the skill is enabled, and how many endpoints
//!   the registry holds for it (the dashboard's list).
//! - `GET /api/smarthome/users/{user}/endpoints` → the registry: each
//!   endpoint with its declaration, source and last reported state, and the
//!   directives still waiting for a deferred answer.
//! - `PUT /api/smarthome/users/{user}` `{"enabled": bool}` → `{"user",
//!   "enabled"}`: a disabled skill's gateway events get 403
//!   SKILL_DISABLED_EXCEPTION, as when a customer disables it in the app.
//!
//! A skill's LWA exchange can be tested without a directive: mint the code
//! AcceptGrant would carry with `state.smarthome.grants.mint_code(user)`
//! (tests reach the state through `SimHandle::state`), then swap it at
//! `/auth/o2/token`.

use super::ControlError;
use crate::journal::{Face, Kind, Record};
use crate::state::State;
use axum::extract::{Path, State as AxState};
use axum::routing::{get, put};
use axum::{Json, Router};
use bytes::Bytes;
use serde_json::{Value, json};
use std::sync::Arc;

/// The registry routes, merged into the control router.
pub fn router() -> Router<Arc<State>> {
    Router::new()
        .route("/api/smarthome/users", get(users))
        .route("/api/smarthome/users/{user}/endpoints", get(endpoints))
        .route("/api/smarthome/users/{user}", put(set_enabled))
}

/// A user declared in config, or 404.
fn declared(state: &State, user: &str) -> Result<(), ControlError> {
    if state.config.users.iter().any(|u| u.id == user) {
        Ok(())
    } else {
        Err(ControlError::NotFound(format!(
            "unknown user {user:?}: users are declared in [[users]]"
        )))
    }
}

async fn users(AxState(state): AxState<Arc<State>>) -> Json<Value> {
    let users: Vec<Value> = state
        .config
        .users
        .iter()
        .map(|u| {
            let home = state.smarthome.registry.snapshot(&u.id);
            json!({
                "user": u.id,
                "skill": u.skill,
                "enabled": state.smarthome.is_enabled(&u.id),
                "endpoints": home["endpoints"].as_array().map_or(0, Vec::len),
            })
        })
        .collect();
    Json(json!({ "users": users }))
}

async fn endpoints(AxState(state): AxState<Arc<State>>, Path(user): Path<String>) -> Result<Json<Value>, ControlError> {
    declared(&state, &user)?;
    Ok(Json(state.smarthome.registry.snapshot(&user)))
}

async fn set_enabled(
    AxState(state): AxState<Arc<State>>,
    Path(user): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ControlError> {
    declared(&state, &user)?;
    /// The body: only `enabled`, so a misspelt key is refused, not ignored.
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Toggle {
        enabled: bool,
    }
    let Toggle { enabled } = serde_json::from_slice(&body)
        .map_err(|e| ControlError::BadRequest(format!("body must be {{\"enabled\": true|false}}: {e}")))?;
    state.smarthome.set_enabled(&user, enabled);
    state.journal.record(
        Record::new(
            Face::Control,
            Kind::Request,
            format!("skill of user {user} {}", if enabled { "enabled" } else { "disabled" }),
        )
        .body(json!({"user": user, "enabled": enabled})),
    );
    Ok(Json(json!({"user": user, "enabled": enabled})))
}
