//! `POST /api/directives/broadcast`: one directive to many devices at once.
//!
//! The body is a device push (`POST /api/devices/{id}/directives`: the
//! `directive`, `namespace`/`name`/`payload` or `raw` forms, attachments)
//! plus an optional filter, `"devices": [ids]` or `"prefix": "..."` (not
//! both; neither means every known device). The directive is queued on
//! every matching device's downchannel with the same non-blocking
//! `Device::push` a single push uses, so the request never waits on a
//! device: 10,000 devices are a loop of 10,000 queue inserts.
//!
//! Message ids: a real AVS gives each directive its own messageId, so each
//! device gets `<broadcastId>-<n>` (n = 1, 2, ... in the order the pushes
//! were queued); the broadcast id is the request's `directive.header.messageId`
//! when given, otherwise a fresh UUID, and it is what the answer carries.
//! Raw pushes carry no messageId and go out byte for byte.
//!
//! The journal gets one control entry for the broadcast (its request, with a
//! device list shown by its length, and the outcome); each directive sent
//! is journaled by its downchannel as usual.

use super::ControlError;
use crate::avs::devices::{Device, Push, PushError};
use crate::journal::{Face, Kind, Record};
use crate::state::State;
use axum::extract::{DefaultBodyLimit, State as AxState};
use axum::routing::post;
use axum::{Json, Router};
use bytes::Bytes;
use http::StatusCode;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Most ids a `"devices"` filter may list.
pub const MAX_IDS: usize = 100_000;

/// Largest request body: 100,000 ids of ~60 bytes each, with room to spare.
const MAX_BODY: usize = 8 * 1024 * 1024;

/// Skipped devices named one by one in the answer (the rest are counted).
const MAX_SKIPPED_SHOWN: usize = 20;

/// The broadcast route, merged into the control router.
pub fn router() -> Router<Arc<State>> {
    Router::new().route(
        "/api/directives/broadcast",
        post(broadcast).layer(DefaultBodyLimit::max(MAX_BODY)),
    )
}

/// Which devices a broadcast goes to.
#[derive(Debug, PartialEq, Eq)]
enum Target {
    All,
    Prefix(String),
    Ids(Vec<String>),
}

/// Take the filter out of the request (what remains is a device push).
fn target(map: &mut Map<String, Value>) -> Result<Target, ControlError> {
    let bad = |m: &str| Err(ControlError::BadRequest(m.to_string()));
    match (map.remove("devices"), map.remove("prefix")) {
        (Some(_), Some(_)) => bad("give `devices` or `prefix`, not both"),
        (None, None) => Ok(Target::All),
        (None, Some(Value::String(p))) => Ok(Target::Prefix(p)),
        (None, Some(_)) => bad("prefix must be a string"),
        (Some(Value::Array(ids)), None) if ids.len() > MAX_IDS => Err(ControlError::BadRequest(format!(
            "devices lists {} ids; at most {MAX_IDS}",
            ids.len()
        ))),
        (Some(Value::Array(ids)), None) => ids
            .into_iter()
            .map(|v| match v {
                Value::String(s) if !s.is_empty() => Ok(s),
                other => Err(ControlError::BadRequest(format!(
                    "devices must hold non-empty strings, found {other}"
                ))),
            })
            .collect::<Result<_, _>>()
            .map(Target::Ids),
        (Some(_), None) => bad("devices must be an array of device ids"),
    }
}

/// The devices of `target`: found ones, and the ids not known.
fn resolve(state: &State, target: &Target) -> (Vec<Arc<Device>>, Vec<String>) {
    match target {
        Target::All => (state.devices.list(), Vec::new()),
        Target::Prefix(p) => {
            let mut all = state.devices.list();
            all.retain(|d| d.id.starts_with(p.as_str()));
            (all, Vec::new())
        }
        Target::Ids(ids) => {
            let mut found = Vec::with_capacity(ids.len());
            let mut unknown = Vec::new();
            for id in ids {
                match state.devices.get(id) {
                    Some(d) => found.push(d),
                    None => unknown.push(id.clone()),
                }
            }
            (found, unknown)
        }
    }
}

/// Builds each device's copy of the push: the directive JSON serialised once
/// around a marker messageId, and the per-device id spliced in.
struct Copies {
    push: Push,
    broadcast_id: Option<String>,
    /// The serialised directive before and after its messageId string.
    around: Option<(String, String)>,
}

impl Copies {
    fn new(push: Push) -> Copies {
        let broadcast_id = push.message_id.clone();
        let around = match (&broadcast_id, push.well_formed) {
            (Some(_), true) => split_at_message_id(&push.body),
            _ => None,
        };
        Copies {
            push,
            broadcast_id,
            around,
        }
    }

    /// The push for the `n`th device queued.
    fn nth(&self, n: usize) -> Push {
        let mut push = self.push.clone();
        if let (Some(id), Some((before, after))) = (&self.broadcast_id, &self.around) {
            let own = format!("{id}-{n}");
            let quoted = Value::String(own.clone()).to_string();
            push.body = Bytes::from([before.as_str(), &quoted, after.as_str()].concat());
            push.message_id = Some(own);
        }
        push
    }
}

/// The directive document serialised with a unique marker as its messageId,
/// split around the (quoted) marker.
fn split_at_message_id(body: &[u8]) -> Option<(String, String)> {
    let mut doc: Value = serde_json::from_slice(body).ok()?;
    let marker = uuid::Uuid::new_v4().to_string();
    *doc.pointer_mut("/directive/header/messageId")? = json!(marker);
    let text = doc.to_string();
    let quoted = format!("\"{marker}\"");
    let at = text.find(&quoted)?;
    Some((text[..at].to_string(), text[at + quoted.len()..].to_string()))
}

/// Short names of the reasons a device was skipped.
fn reason(e: &PushError) -> &'static str {
    match e {
        PushError::NoDownchannel(_) => "noDownchannel",
        PushError::QueueFull(..) => "queueFull",
        PushError::Ending(..) => "downchannelEnding",
    }
}

/// Devices skipped: counts by reason and the first few by name.
#[derive(Default)]
struct Skipped {
    total: usize,
    by_reason: BTreeMap<&'static str, usize>,
    first: Vec<Value>,
}

impl Skipped {
    fn add(&mut self, device: &str, reason: &'static str) {
        self.total = self.total.saturating_add(1);
        let n = self.by_reason.entry(reason).or_default();
        *n = n.saturating_add(1);
        if self.first.len() < MAX_SKIPPED_SHOWN {
            self.first.push(json!({"device": device, "reason": reason}));
        }
    }

    fn to_json(&self) -> Value {
        json!({"total": self.total, "byReason": self.by_reason, "first": self.first})
    }
}

/// The request as the journal keeps it: a device list by its length.
fn journal_view(request: &Value) -> Value {
    let mut view = crate::avs::directive::journal_view(request);
    if let Some(Value::Array(ids)) = view.get("devices") {
        view["devices"] = json!(format!("({} ids)", ids.len()));
    }
    view
}

async fn broadcast(
    AxState(state): AxState<Arc<State>>,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ControlError> {
    let request: Value =
        serde_json::from_slice(&body).map_err(|e| ControlError::BadRequest(format!("body is not valid JSON: {e}")))?;
    let view = journal_view(&request);
    let outcome = queue_all(&state, request);
    let mut entry = Record::new(Face::Control, Kind::Request, "POST /api/directives/broadcast");
    entry = match &outcome {
        Ok(answer) => entry.body(json!({"request": view, "answer": answer})),
        Err(e) => entry.body(json!({"request": view, "error": e.to_string()})),
    };
    state.journal.record(entry);
    outcome.map(|answer| (StatusCode::ACCEPTED, Json(answer)))
}

/// Validate the request and queue the push on every matching device.
fn queue_all(state: &State, mut request: Value) -> Result<Value, ControlError> {
    let Value::Object(map) = &mut request else {
        return Err(ControlError::BadRequest("body must be a JSON object".into()));
    };
    let target = target(map)?;
    let push = crate::avs::directive::from_request(&request).map_err(|e| ControlError::BadRequest(e.to_string()))?;
    let name = push.name.clone();
    let copies = Copies::new(push);
    let (devices, unknown) = resolve(state, &target);
    let mut skipped = Skipped::default();
    unknown.iter().for_each(|id| skipped.add(id, "unknownDevice"));
    let mut queued = 0usize;
    for device in &devices {
        match device.push(copies.nth(queued.saturating_add(1))) {
            Ok(()) => queued = queued.saturating_add(1),
            Err(e) => skipped.add(&device.id, reason(&e)),
        }
    }
    Ok(json!({
        "devices": queued,
        "messageId": copies.broadcast_id,
        "name": name,
        "skipped": skipped.to_json(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target_of(v: Value) -> Result<Target, String> {
        let Value::Object(mut map) = v else { panic!() };
        target(&mut map).map_err(|e| e.to_string())
    }

    #[test]
    fn filters() {
        assert_eq!(target_of(json!({"name": "X"})), Ok(Target::All));
        assert_eq!(
            target_of(json!({"prefix": "load-"})),
            Ok(Target::Prefix("load-".into()))
        );
        assert_eq!(
            target_of(json!({"devices": ["a", "b"]})),
            Ok(Target::Ids(vec!["a".into(), "b".into()]))
        );
        assert!(
            target_of(json!({"devices": ["a"], "prefix": "a"}))
                .unwrap_err()
                .contains("not both")
        );
        assert!(target_of(json!({"devices": "a"})).unwrap_err().contains("array"));
        assert!(
            target_of(json!({"devices": [1]}))
                .unwrap_err()
                .contains("non-empty strings")
        );
        assert!(
            target_of(json!({"devices": [""]}))
                .unwrap_err()
                .contains("non-empty strings")
        );
        assert!(
            target_of(json!({"prefix": 3}))
                .unwrap_err()
                .contains("prefix must be a string")
        );
        let many: Vec<String> = (0..=MAX_IDS).map(|i| i.to_string()).collect();
        assert!(target_of(json!({ "devices": many })).unwrap_err().contains("at most"));
    }

    #[test]
    fn each_copy_has_its_own_message_id() {
        let push = crate::avs::directive::from_request(&json!({
            "directive": {"header": {"namespace": "A", "name": "B", "messageId": "bc\"1"}, "payload": {"messageId": "bc\"1"}}
        }))
        .unwrap();
        let copies = Copies::new(push);
        let second = copies.nth(2);
        assert_eq!(second.message_id.as_deref(), Some("bc\"1-2"));
        let doc: Value = serde_json::from_slice(&second.body).unwrap();
        assert_eq!(doc["directive"]["header"]["messageId"], "bc\"1-2");
        assert_eq!(doc["directive"]["payload"]["messageId"], "bc\"1", "payload untouched");

        let raw = Copies::new(crate::avs::directive::from_request(&json!({"raw": "{x"})).unwrap());
        assert_eq!(&raw.nth(1).body[..], b"{x");
        assert_eq!(raw.nth(1).message_id, None);
    }
}
