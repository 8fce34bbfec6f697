//! The control API: see and steer the simulator from tests, scenarios and
//! people. JSON in, JSON out; every error is `{"error": "..."}` with a
//! status that says what went wrong.

mod alexa;
mod asp;
mod broadcast;
mod dashboard;
mod journal_stream;
pub mod registry;
mod sns;
mod sns_topics;

use crate::avs::devices::PushError;
use crate::journal::{Face, Kind, Query, Record};
use crate::state::State;
use axum::extract::{Path, Query as AxQuery, State as AxState};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use bytes::Bytes;
use http::StatusCode;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// Longest `wait` a journal query may ask for.
const MAX_WAIT: Duration = Duration::from_secs(60);

/// Every way a control request fails.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("{0}")]
    BadRequest(String),
    #[error("unknown device {0:?}")]
    UnknownDevice(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Busy(String),
}

impl IntoResponse for ControlError {
    fn into_response(self) -> Response {
        let status = match &self {
            ControlError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ControlError::UnknownDevice(_) | ControlError::NotFound(_) => StatusCode::NOT_FOUND,
            ControlError::Conflict(_) => StatusCode::CONFLICT,
            ControlError::Busy(_) => StatusCode::SERVICE_UNAVAILABLE,
        };
        (status, Json(json!({ "error": self.to_string() }))).into_response()
    }
}

/// The control router.
pub fn router(state: Arc<State>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/api/openapi.json", get(openapi))
        .route("/api/devices", get(devices))
        .route("/api/devices/{id}", get(device))
        .route("/api/devices/{id}/directives", post(push_directive))
        .route("/api/devices/{id}/conformance", get(conformance))
        .route("/api/journal", get(journal))
        .route("/api/faults", get(list_faults).post(add_fault))
        .route("/api/faults/{id}", axum::routing::delete(remove_fault))
        .route("/api/devices/{id}/faults", post(fault_now))
        .route("/api/scenarios", get(scenarios))
        .route("/api/scenarios/run", post(run_scenario))
        .route("/api/scenarios/{run}", get(scenario_run))
        .merge(alexa::router())
        .merge(broadcast::router())
        .merge(registry::router())
        .merge(asp::router())
        .merge(sns_topics::router())
        .merge(sns::router())
        .merge(dashboard::router())
        .fallback(|req: axum::extract::Request| async move {
            (
                StatusCode::NOT_FOUND,
                Json(json!({"error": format!("no route for {} {}", req.method(), req.uri().path())})),
            )
        })
        .with_state(state)
}

/// The OpenAPI 3 document of this API; tests/tests/openapi.rs fails when a
/// route here and a path there disagree.
const OPENAPI: &str = include_str!("openapi.json");

/// `GET /api/openapi.json`: the document, as written.
async fn openapi() -> impl IntoResponse {
    ([(http::header::CONTENT_TYPE, "application/json")], OPENAPI)
}

/// `GET /healthz`: every listener's state (`up`, `down`, `stopped`); 503
/// when one is down (its accept loop ended while not shutting down).
async fn healthz(AxState(state): AxState<Arc<State>>) -> (StatusCode, Json<Value>) {
    let listeners = state.listener_health.snapshot();
    let down = state.listener_health.any_down();
    let status = if down {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    (
        status,
        Json(json!({"status": if down { "down" } else { "ok" }, "listeners": listeners})),
    )
}

async fn devices(AxState(state): AxState<Arc<State>>) -> Json<Value> {
    Json(json!(
        state.devices.list().iter().map(|d| d.summary()).collect::<Vec<_>>()
    ))
}

async fn device(AxState(state): AxState<Arc<State>>, Path(id): Path<String>) -> Result<Json<Value>, ControlError> {
    let device = state.devices.get(&id).ok_or(ControlError::UnknownDevice(id))?;
    Ok(Json(json!(device.summary())))
}

async fn push_directive(
    AxState(state): AxState<Arc<State>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ControlError> {
    let request: Value =
        serde_json::from_slice(&body).map_err(|e| ControlError::BadRequest(format!("body is not valid JSON: {e}")))?;
    state.journal.record(
        Record::new(
            Face::Control,
            Kind::Request,
            format!("POST /api/devices/{id}/directives"),
        )
        .device(&id)
        .body(crate::avs::directive::journal_view(&request)),
    );
    let push = crate::avs::directive::from_request(&request).map_err(|e| ControlError::BadRequest(e.to_string()))?;
    let device = state
        .devices
        .get(&id)
        .ok_or_else(|| ControlError::UnknownDevice(id.clone()))?;
    let (name, message_id) = (push.name.clone(), push.message_id.clone());
    device.push(push).map_err(|e| {
        state
            .journal
            .record(Record::new(Face::Control, Kind::Error, e.to_string()).device(&id));
        match e {
            PushError::NoDownchannel(_) | PushError::Ending(..) => ControlError::Conflict(e.to_string()),
            PushError::QueueFull(..) => ControlError::Busy(e.to_string()),
        }
    })?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "messageId": message_id, "name": name })),
    ))
}

async fn conformance(AxState(state): AxState<Arc<State>>, Path(id): Path<String>) -> Result<Json<Value>, ControlError> {
    let device = state.devices.get(&id).ok_or(ControlError::UnknownDevice(id.clone()))?;
    let rules = device.conformance(crate::clock::as_ms(state.config.conformance.activity_interval));
    let passed = rules
        .iter()
        .all(|r| r.verdict != crate::avs::conformance::Verdict::Fail);
    Ok(Json(json!({ "device": id, "passed": passed, "rules": rules })))
}

/// `GET /api/journal?device=&face=&since=&limit=&wait=`: `wait` (e.g. "5s")
/// holds the request until a matching entry exists, so clients need not poll.
async fn journal(
    AxState(state): AxState<Arc<State>>,
    AxQuery(params): AxQuery<HashMap<String, String>>,
) -> Result<Json<Value>, ControlError> {
    let number = |k: &str| -> Result<Option<u64>, ControlError> {
        params
            .get(k)
            .map(|v| {
                v.parse::<u64>()
                    .map_err(|_| ControlError::BadRequest(format!("{k} must be a non-negative integer, got {v:?}")))
            })
            .transpose()
    };
    let face = face_param(params.get("face"))?;
    let query = Query {
        device: params.get("device").cloned(),
        face,
        since: number("since")?,
        limit: number("limit")?.map(|l| l as usize),
    };
    let entries = match params.get("wait") {
        Some(w) => {
            let wait = crate::duration::parse(w)
                .map_err(ControlError::BadRequest)?
                .min(MAX_WAIT);
            state.journal.wait_for(&query, crate::clock::now() + wait).await
        }
        None => state.journal.query(&query),
    };
    Ok(Json(json!({
        "entries": entries,
        "latest": state.journal.latest(),
        "evicted": state.journal.evicted(),
    })))
}

/// A `face` query parameter: absent (or empty) is every face; an unknown
/// name is a 400.
fn face_param(face: Option<&String>) -> Result<Option<Face>, ControlError> {
    match face.filter(|f| !f.is_empty()) {
        Some(f) => serde_json::from_value::<Face>(json!(f))
            .map(Some)
            .map_err(|_| ControlError::BadRequest(format!("unknown face {f:?}"))),
        None => Ok(None),
    }
}

async fn scenarios(AxState(state): AxState<Arc<State>>) -> Json<Value> {
    Json(state.scenarios.list())
}

async fn scenario_run(
    AxState(state): AxState<Arc<State>>,
    Path(run): Path<String>,
) -> Result<Json<Value>, ControlError> {
    let id: u64 = run
        .parse()
        .map_err(|_| ControlError::BadRequest(format!("run id must be a number, got {run:?}")))?;
    state
        .scenarios
        .get(id)
        .map(Json)
        .ok_or_else(|| ControlError::NotFound(format!("no scenario run {id}")))
}

/// `POST /api/scenarios/run` with `{"scenario": "<name or file>"}` → 202 `{"run": id}`.
async fn run_scenario(
    AxState(state): AxState<Arc<State>>,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ControlError> {
    let request: Value =
        serde_json::from_slice(&body).map_err(|e| ControlError::BadRequest(format!("body is not valid JSON: {e}")))?;
    let key = request["scenario"].as_str().ok_or_else(|| {
        ControlError::BadRequest("scenario must be a string (a loaded scenario's name or file)".into())
    })?;
    let index = state
        .scenarios
        .find(key)
        .ok_or_else(|| ControlError::NotFound(format!("no loaded scenario {key:?}")))?;
    let since = state.journal.latest();
    let run = state
        .scenarios
        .start(&state, index, "api", since)
        .ok_or_else(|| ControlError::Conflict(format!("scenario {key:?} is already running")))?;
    Ok((StatusCode::ACCEPTED, Json(json!({ "run": run }))))
}

async fn list_faults(AxState(state): AxState<Arc<State>>) -> Json<Value> {
    Json(json!(state.faults.list()))
}

/// `POST /api/faults` with a rule (`id`?, `when`, `then`, `times`?) → 201 `{"id"}`.
async fn add_fault(
    AxState(state): AxState<Arc<State>>,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ControlError> {
    let rule: crate::faults::Rule =
        serde_json::from_slice(&body).map_err(|e| ControlError::BadRequest(format!("not a fault rule: {e}")))?;
    let id = state.faults.add(rule).map_err(|e| match e {
        crate::faults::FaultError::Duplicate(_) => ControlError::Conflict(e.to_string()),
        crate::faults::FaultError::Invalid(m) => ControlError::BadRequest(m),
    })?;
    state
        .journal
        .record(Record::new(Face::Control, Kind::Request, format!("fault {id} installed")).body(json!({"id": id})));
    Ok((StatusCode::CREATED, Json(json!({ "id": id }))))
}

async fn remove_fault(AxState(state): AxState<Arc<State>>, Path(id): Path<String>) -> Result<StatusCode, ControlError> {
    if state.faults.remove(&id) {
        state
            .journal
            .record(Record::new(Face::Control, Kind::Request, format!("fault {id} removed")));
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ControlError::NotFound(format!("no fault rule {id:?}")))
    }
}

/// `POST /api/devices/{id}/faults` with an action (`goaway`, `end_downchannel`,
/// `reset`, `revoke_token`): applied to the device's connection right now.
async fn fault_now(
    AxState(state): AxState<Arc<State>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ControlError> {
    let action: crate::faults::Action =
        serde_json::from_slice(&body).map_err(|e| ControlError::BadRequest(format!("not a fault action: {e}")))?;
    action.validate().map_err(ControlError::BadRequest)?;
    if state.devices.get(&id).is_none() {
        return Err(ControlError::UnknownDevice(id));
    }
    let journal_id =
        crate::avs::fault::apply_now(&state, &Arc::from(id.as_str()), &action).map_err(ControlError::Conflict)?;
    Ok(Json(json!({ "applied": action.describe(), "journal_id": journal_id })))
}
