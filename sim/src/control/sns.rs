//! SNS delivery on the control API: what was given up on, and every attempt.
//!
//! - `GET /api/sns/dead-letters[?subscription=ARN]` → `{"dead_letters": [...]}`:
//!   each message given up on (retries exhausted, queue overflow,
//!   subscription gone) with `subscription`, `message_id`, `type`,
//!   `attempts`, `last_error`, `reason`, `endpoint`, `topic`, `time`,
//!   oldest first (the newest 10,000 are kept).
//! - `GET /api/sns/deliveries[?subscription=ARN]` → `{"deliveries": [...]}`:
//!   the recent attempts, each as journaled (`attempt`, `status`, `error`,
//!   `delivered`, `final`) plus `endpoint` and `time`.

use crate::sns::deliver;
use crate::state::State;
use axum::extract::{Query, State as AxState};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;

/// The SNS delivery routes, merged into the control router.
pub fn router() -> Router<Arc<State>> {
    Router::new()
        .route("/api/sns/dead-letters", get(dead_letters))
        .route("/api/sns/deliveries", get(deliveries))
}

#[derive(Deserialize)]
struct Filter {
    subscription: Option<String>,
}

async fn dead_letters(AxState(state): AxState<Arc<State>>, Query(f): Query<Filter>) -> Json<Value> {
    let letters: Vec<Value> = deliver::dead_letters(&state)
        .into_iter()
        .filter(|d| f.subscription.as_deref().is_none_or(|s| d["subscription"] == s))
        .collect();
    Json(json!({ "dead_letters": letters }))
}

async fn deliveries(AxState(state): AxState<Arc<State>>, Query(f): Query<Filter>) -> Json<Value> {
    Json(json!({ "deliveries": deliver::attempts(&state, f.subscription.as_deref()) }))
}
