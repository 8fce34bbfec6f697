//! SNS topics and subscriptions on the control API (issue 9 item 1), for
//! tests and people who set up SNS without speaking the Query API:
//!
//! - `GET /api/sns/topics` → every topic with its attributes and its
//!   subscriptions, pending or not; a pending one shows its confirmation
//!   `token` and `subscribe_url` (sns.md §6: the admin API exposes them).
//! - `POST /api/sns/topics` `{"name", "attributes"?}` → 201 `{"arn"}`.
//! - `POST /api/sns/subscriptions` `{"topic" (name or ARN), "endpoint",
//!   "attributes"?, "confirmed"?}` → 201 `{"arn", "pending"}`; the
//!   SubscriptionConfirmation is sent unless `confirmed`.
//! - `DELETE /api/sns/subscriptions/{arn}` → `{"deleted"}`; the
//!   UnsubscribeConfirmation is sent, as on Unsubscribe.
//!
//! Attributes are checked exactly as the Query API checks them.

use super::ControlError;
use crate::sns::query::{Fault, actions, attrs};
use crate::state::State;
use axum::extract::{Path, State as AxState};
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;

pub fn router() -> Router<Arc<State>> {
    Router::new()
        .route("/api/sns/topics", get(topics).post(create_topic))
        .route("/api/sns/subscriptions", post(subscribe))
        .route("/api/sns/subscriptions/{arn}", delete(unsubscribe))
}

fn control_error(f: Fault) -> ControlError {
    match f.status {
        404 => ControlError::NotFound(format!("{}: {}", f.code, f.message)),
        _ => ControlError::BadRequest(format!("{}: {}", f.code, f.message)),
    }
}

fn parse<T: for<'de> Deserialize<'de>>(body: &Bytes) -> Result<T, ControlError> {
    serde_json::from_slice(body).map_err(|e| ControlError::BadRequest(format!("body: {e}")))
}

async fn topics(AxState(state): AxState<Arc<State>>) -> Json<Value> {
    let base = crate::sns::publish::base_url(&state);
    let topics: Vec<Value> = state
        .sns
        .topics()
        .into_iter()
        .map(|t| {
            let subs: Vec<Value> = state
                .sns
                .subscriptions(Some(&t.arn))
                .into_iter()
                .map(|s| {
                    let mut v = json!({
                        "arn": s.arn,
                        "protocol": s.protocol,
                        "endpoint": s.endpoint,
                        "attributes": s.attributes,
                        "pending": s.pending,
                    });
                    if s.pending {
                        v["token"] = json!(s.token);
                        v["subscribe_url"] = json!(format!(
                            "{base}/?Action=ConfirmSubscription&TopicArn={}&Token={}",
                            s.topic_arn, s.token
                        ));
                    }
                    v
                })
                .collect();
            json!({"arn": t.arn, "name": t.name, "attributes": t.attributes, "subscriptions": subs})
        })
        .collect();
    Json(json!({ "topics": topics }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewTopic {
    name: String,
    #[serde(default)]
    attributes: BTreeMap<String, String>,
}

async fn create_topic(
    AxState(state): AxState<Arc<State>>,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ControlError> {
    let t: NewTopic = parse(&body)?;
    for (k, v) in &t.attributes {
        attrs::check_topic(k, v).map_err(control_error)?;
    }
    let arn = state
        .sns
        .create_topic(&t.name, t.attributes)
        .map_err(|e| control_error(e.into()))?;
    Ok((StatusCode::CREATED, Json(json!({ "arn": arn }))))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewSubscription {
    topic: String,
    endpoint: String,
    #[serde(default)]
    attributes: BTreeMap<String, String>,
    #[serde(default)]
    confirmed: bool,
}

async fn subscribe(
    AxState(state): AxState<Arc<State>>,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ControlError> {
    let s: NewSubscription = parse(&body)?;
    let topic = if s.topic.starts_with("arn:") {
        s.topic.clone()
    } else {
        state.sns.topic_arn(&s.topic)
    };
    state
        .sns
        .topic(&topic)
        .map_err(|_| ControlError::NotFound(format!("unknown topic {:?}", s.topic)))?;
    let protocol = if s.endpoint.starts_with("https://") {
        "https"
    } else if s.endpoint.starts_with("http://") {
        "http"
    } else {
        return Err(ControlError::BadRequest(format!(
            "endpoint must be an http:// or https:// URL, got {:?}",
            s.endpoint
        )));
    };
    let sub = if s.confirmed {
        for (k, v) in &s.attributes {
            attrs::check_subscription(k, v).map_err(control_error)?;
        }
        let sub = state
            .sns
            .subscribe(&topic, protocol, &s.endpoint, s.attributes)
            .map_err(|e| control_error(e.into()))?;
        state
            .sns
            .confirm(&topic, &sub.token)
            .map_err(|e| control_error(e.into()))?;
        actions::journal_confirmed(&state, &sub.arn);
        state.sns.subscription(&sub.arn).map_err(|e| control_error(e.into()))?
    } else {
        actions::subscribe_checked(&state, &topic, protocol, &s.endpoint, s.attributes).map_err(control_error)?
    };
    Ok((
        StatusCode::CREATED,
        Json(json!({"arn": sub.arn, "pending": sub.pending})),
    ))
}

async fn unsubscribe(
    AxState(state): AxState<Arc<State>>,
    Path(arn): Path<String>,
) -> Result<Json<Value>, ControlError> {
    actions::unsubscribe_checked(&state, &arn).map_err(control_error)?;
    Ok(Json(json!({ "deleted": arn })))
}
