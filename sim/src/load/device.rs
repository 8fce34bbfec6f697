//! One load device: the reference device's transport, a downchannel held
//! open, one SynchronizeState, then a `select!` over directives arriving,
//! events to send, and the stop signal.

use super::broadcast::Deliveries;
use crate::avs::multipart::form;
use crate::device::transport::{Downchannel, Transport, boundary_of};
use http::Method;
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::{mpsc, watch};

/// The SDK's event boundary.
const BOUNDARY: &str = "WhooHooZeerOoonie!";

/// What every device shares.
pub struct Shared {
    pub url: String,
    pub tls: Option<Arc<rustls::ClientConfig>>,
    pub deliveries: Arc<Deliveries>,
    pub stop: watch::Receiver<bool>,
    /// Devices whose downchannel or connection ended while held, with the first reason.
    pub dropped: AtomicU64,
    pub first_drop: parking_lot::Mutex<Option<String>>,
    /// Setups retried after a transient failure, with the first reason.
    pub retries: AtomicU64,
    pub first_retry: parking_lot::Mutex<Option<String>>,
    /// Events sent during the hold: answered 2xx, or not.
    pub events_ok: AtomicU64,
    pub events_failed: AtomicU64,
}

/// A device's setup failed: at which step, and why.
#[derive(Debug, Clone)]
pub struct Failure {
    pub step: &'static str,
    pub reason: String,
    /// A transport error (reset, refused, timed out), worth a retry as the
    /// SDK would reconnect; an unexpected status is not.
    pub transient: bool,
}

impl Failure {
    fn at(step: &'static str) -> impl FnOnce(anyhow::Error) -> Failure {
        move |e| Failure {
            step,
            reason: format!("{e:#}"),
            transient: true,
        }
    }

    fn answered(step: &'static str, status: u16) -> Failure {
        Failure {
            step,
            reason: format!("answered {status}"),
            transient: false,
        }
    }
}

/// A connected device, ready to be held.
pub struct Connected {
    transport: Transport,
    downchannel: Held,
    token: String,
}

/// The downchannel body: parsed into parts when it is multipart (the
/// simulator), only drained when it is not (a bare baseline server).
enum Held {
    Parts(Downchannel),
    Opaque(h2::RecvStream),
}

/// Connect, open the downchannel, send SynchronizeState.
pub async fn connect(shared: &Shared, token: String) -> Result<Connected, Failure> {
    let mut transport = Transport::connect_with(&shared.url, shared.tls.as_ref(), false)
        .await
        .map_err(Failure::at("connect"))?;
    let resp = transport
        .open(Method::GET, "/v20160207/directives", &token)
        .await
        .map_err(Failure::at("downchannel"))?;
    if resp.status() != 200 {
        return Err(Failure::answered("downchannel", resp.status().as_u16()));
    }
    let downchannel = match boundary_of(resp.headers()) {
        Some(b) => Held::Parts(Downchannel::new(resp.into_body(), &b)),
        None => Held::Opaque(resp.into_body()),
    };
    let status = send_event(&mut transport, &token, "System", "SynchronizeState")
        .await
        .map_err(Failure::at("SynchronizeState"))?;
    if !(200..300).contains(&status) {
        return Err(Failure::answered("SynchronizeState", status));
    }
    Ok(Connected {
        transport,
        downchannel,
        token,
    })
}

/// An event as the SDK sends it (multipart, JSON metadata), with a small
/// context for SynchronizeState.
async fn send_event(t: &mut Transport, token: &str, namespace: &str, name: &str) -> anyhow::Result<u16> {
    let id = uuid::Uuid::new_v4().to_string();
    let mut doc = json!({"event": {"header": {"namespace": namespace, "name": name, "messageId": id}, "payload": {}}});
    if name == "SynchronizeState" {
        doc["context"] = json!([
            {"header": {"namespace": "Speaker", "name": "VolumeState"}, "payload": {"volume": 50, "muted": false}}
        ]);
    } else {
        doc["event"]["payload"] = json!({"inactiveTimeInSeconds": 0});
    }
    let body = form::event_body(BOUNDARY, doc.to_string().as_bytes(), None);
    let ct = format!("multipart/form-data; boundary={BOUNDARY}");
    let answer = t
        .call(Method::POST, "/v20160207/events", token, Some(&ct), body)
        .await?;
    Ok(answer.status)
}

/// Hold the device until stopped: note each directive that arrives, send
/// each event asked for (a UserInactivityReport).
pub async fn hold(shared: Arc<Shared>, mut device: Connected, mut events: mpsc::Receiver<()>) {
    let mut stop = shared.stop.clone();
    loop {
        tokio::select! {
            part = next_part(&mut device.downchannel) => match part {
                Ok(Some(body)) => shared.deliveries.arrived(&body),
                Ok(None) => return dropped(&shared, "downchannel ended".into()),
                Err(e) => return dropped(&shared, format!("downchannel: {e:#}")),
            },
            Some(()) = events.recv() => {
                let sent = send_event(&mut device.transport, &device.token, "System", "UserInactivityReport").await;
                let counter = match sent {
                    Ok(200..=299) => &shared.events_ok,
                    _ => &shared.events_failed,
                };
                counter.fetch_add(1, Ordering::Relaxed);
            }
            _ = async { drop(stop.wait_for(|s| *s).await) } => return,
        }
    }
}

/// The next directive part; an opaque body never yields one.
async fn next_part(held: &mut Held) -> anyhow::Result<Option<Vec<u8>>> {
    match held {
        Held::Parts(dc) => dc.next().await,
        Held::Opaque(body) => loop {
            match body.data().await {
                None => return Ok(None),
                Some(chunk) => {
                    let chunk = chunk?;
                    let _ = body.flow_control().release_capacity(chunk.len());
                }
            }
        },
    }
}

fn dropped(shared: &Shared, why: String) {
    if *shared.stop.borrow() {
        return;
    }
    shared.dropped.fetch_add(1, Ordering::Relaxed);
    shared.first_drop.lock().get_or_insert(why);
}

/// A directive body's messageId, if it is JSON with one.
pub fn message_id(body: &[u8]) -> Option<String> {
    let doc: serde_json::Value = serde_json::from_slice(body).ok()?;
    doc.pointer("/directive/header/messageId")?.as_str().map(str::to_string)
}
