//! The device registry: what the simulator knows about each device, and the
//! queue that feeds its downchannel.
//!
//! Per-device state is small (a few hundred bytes plus a bounded queue) and
//! guarded by a plain mutex that is never held across `.await`. A device
//! nothing holds (no connection, no request under way) that has been idle
//! for `avs.device_idle_timeout` is forgotten by `Devices::sweep`, so a
//! lenient server that makes every token a device stays bounded; its
//! journal entries stay.

use crate::avs::conformance::{Conformance, RuleReport};
use crate::avs::connection::{CloseReason, Connection};
use bytes::Bytes;
use parking_lot::{Mutex, MutexGuard};
use serde::Serialize;
use serde_json::Value;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// Exceptions kept per device.
const MAX_EXCEPTIONS: usize = 8;

/// A directive waiting to be written to a downchannel.
#[derive(Debug, Clone)]
pub struct Push {
    /// The part body: directive JSON, or raw bytes to provoke an exception.
    pub body: Bytes,
    /// `Namespace.Name`, or `raw` for raw bytes.
    pub name: String,
    pub message_id: Option<String>,
    /// Whether `body` is a well-formed directive (false for raw pushes).
    pub well_formed: bool,
    /// Binary parts the directive references as `cid:<id>`.
    pub attachments: Vec<(String, Bytes)>,
    /// Send the attachments on the device's next event response instead of
    /// with the directive: the SDK keys attachments by stream, so it will not
    /// find them (a fault).
    pub attachments_elsewhere: bool,
}

/// What the downchannel task is asked to do.
#[derive(Debug, Clone)]
pub enum Command {
    /// Write a directive part (through the bounded queue).
    Push(Push),
    /// End the downchannel cleanly (END_STREAM), a control command.
    End,
    /// Reset the downchannel stream with this code, a control command.
    Reset(h2::Reason),
}

/// A control command for the downchannel task. It travels beside the push
/// queue, not in it: a device that stops reading fills the queue and keeps
/// the task waiting for window, and a fault (or a newer downchannel) must
/// still reach the task at once, and must never be refused as "queue full".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// End the stream cleanly (END_STREAM).
    End,
    /// Reset the stream with this code.
    Reset(h2::Reason),
    /// A newer downchannel of the device took over this one.
    Replaced,
}

/// A control command and how many pushes the queue had accepted before it:
/// the task hands those to h2 first as long as they go out without waiting
/// for window, so "push, then end" keeps its order for a device that reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Order {
    pub control: Control,
    pub after: u64,
}

/// The receiving end of a downchannel, owned by its task.
pub struct DownchannelRx {
    /// Which link this is (for `Device::downchannel_closed`).
    pub link: u64,
    /// Directives, bounded by `avs.directive_queue`. Boxed: tokio's channel
    /// allocates its slots in blocks of 32, and 32 inline `Push`es were ~4 KiB
    /// per held downchannel whether anything was pushed or not.
    pub pushes: mpsc::Receiver<Box<Push>>,
    /// Control commands; a dropped sender means a newer downchannel took over.
    pub control: watch::Receiver<Option<Order>>,
}

/// Why a push was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PushError {
    #[error("device {0:?} has no open downchannel")]
    NoDownchannel(String),
    #[error("device {0:?} has {1} directives queued already")]
    QueueFull(String, usize),
    #[error("device {0:?}'s downchannel is already ending ({1:?} is under way)")]
    Ending(String, Control),
}

/// Distinguishes downchannels, also two on one connection.
static LINKS: AtomicU64 = AtomicU64::new(1);

/// The live downchannel of a device.
struct DownchannelLink {
    id: u64,
    conn: Arc<Connection>,
    tx: mpsc::Sender<Box<Push>>,
    control: watch::Sender<Option<Order>>,
    /// Pushes the queue accepted.
    accepted: u64,
}

/// An ExceptionEncountered the device sent.
#[derive(Debug, Clone, Serialize)]
pub struct ExceptionRecord {
    pub unparsed_directive: String,
    pub error_type: String,
    pub message: Option<String>,
    pub journal_id: u64,
}

/// One declared interface from the Capabilities API.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Interface {
    pub interface: String,
    pub version: String,
}

/// Mutable per-device state.
#[derive(Default)]
pub struct DeviceState {
    downchannel: Option<DownchannelLink>,
    pub region: Option<Arc<str>>,
    pub connected_at: Option<String>,
    pub last_event: Option<(String, String)>,
    pub firmware: Option<String>,
    pub capabilities: Option<Vec<Interface>>,
    /// The metadata JSON text of the last SynchronizeState, as it arrived:
    /// a device holds a few hundred bytes here rather than a parsed tree
    /// several times that size; the control API parses it when asked.
    pub last_state: Option<Bytes>,
    pub inactive_seconds: Option<u64>,
    pub exceptions: VecDeque<ExceptionRecord>,
    pub conformance: Conformance,
    /// Connections this device has made (for `when.connection` fault matchers).
    pub connections: u64,
    /// Attachments held back for the next event response (bounded).
    pub pending_attachments: Vec<(String, Bytes)>,
}

impl DeviceState {
    /// Whether `conn` carries this device's open downchannel.
    pub fn downchannel_on(&self, conn: u64) -> bool {
        self.downchannel
            .as_ref()
            .is_some_and(|d| d.conn.id == conn && !d.tx.is_closed())
    }

    /// Whether the device declared System 1.1 or later; `None` when it declared nothing.
    pub fn declares_system_1_1(&self) -> Option<bool> {
        let caps = self.capabilities.as_ref()?;
        Some(
            caps.iter()
                .any(|i| i.interface == "System" && version_at_least(&i.version, (1, 1))),
        )
    }

    pub fn record_exception(&mut self, e: ExceptionRecord) {
        if self.exceptions.len() == MAX_EXCEPTIONS {
            self.exceptions.pop_front();
        }
        self.exceptions.push_back(e);
    }
}

fn version_at_least(v: &str, min: (u32, u32)) -> bool {
    let mut it = v.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    (it.next().unwrap_or(0), it.next().unwrap_or(0)) >= min
}

/// A device.
pub struct Device {
    pub id: Arc<str>,
    state: Mutex<DeviceState>,
    /// `clock::mono_ms` when a request last named the device or its downchannel closed.
    last_seen_ms: AtomicU64,
}

impl Device {
    fn new(id: Arc<str>) -> Device {
        Device {
            id,
            state: Mutex::new(DeviceState::default()),
            last_seen_ms: AtomicU64::new(crate::clock::mono_ms()),
        }
    }

    fn seen(&self) {
        self.last_seen_ms.store(crate::clock::mono_ms(), Ordering::Relaxed);
    }

    /// Milliseconds since the device was last seen.
    pub fn idle_ms(&self) -> u64 {
        crate::clock::mono_ms().saturating_sub(self.last_seen_ms.load(Ordering::Relaxed))
    }

    pub fn lock(&self) -> MutexGuard<'_, DeviceState> {
        self.state.lock()
    }

    /// Make `conn` this device's downchannel; returns what the downchannel
    /// task reads. An older connection of the device is asked to go away
    /// (one connection per device, as AVS does).
    pub fn open_downchannel(&self, conn: &Arc<Connection>, queue: usize) -> DownchannelRx {
        let (tx, pushes) = mpsc::channel(queue);
        let (control, control_rx) = watch::channel(None);
        let link = LINKS.fetch_add(1, Ordering::Relaxed);
        let old = {
            let mut s = self.lock();
            s.region = Some(conn.listener.region.clone());
            s.connected_at = Some(crate::clock::wall_rfc3339());
            s.downchannel.replace(DownchannelLink {
                id: link,
                conn: conn.clone(),
                tx,
                control,
                accepted: 0,
            })
        };
        // Dropping the old link's senders ends the old downchannel stream
        // (its task sees the control sender go, whatever it is waiting for).
        if let Some(old) = old.filter(|o| o.conn.id != conn.id) {
            old.conn.close(CloseReason::Superseded);
        }
        DownchannelRx {
            link,
            pushes,
            control: control_rx,
        }
    }

    /// The downchannel `link` ended; forget it if it is still the current
    /// one (a newer downchannel on the same connection stays).
    pub fn downchannel_closed(&self, link: u64) {
        self.seen();
        let mut s = self.lock();
        if s.downchannel.as_ref().is_some_and(|d| d.id == link) {
            s.downchannel = None;
        }
    }

    /// Queue a directive for the downchannel.
    pub fn push(&self, push: Push) -> Result<(), PushError> {
        self.command(Command::Push(push))
    }

    /// Give the downchannel task a command: a push joins the bounded
    /// queue; `End` and `Reset` go beside it and are never refused for a
    /// full queue.
    pub fn command(&self, command: Command) -> Result<(), PushError> {
        let mut s = self.lock();
        let link = s.downchannel.as_mut().filter(|d| !d.tx.is_closed());
        let link = link.ok_or_else(|| PushError::NoDownchannel(self.id.to_string()))?;
        let control = match command {
            Command::Push(push) => {
                link.tx.try_send(Box::new(push)).map_err(|e| match e {
                    mpsc::error::TrySendError::Full(_) => {
                        PushError::QueueFull(self.id.to_string(), link.tx.max_capacity())
                    }
                    mpsc::error::TrySendError::Closed(_) => PushError::NoDownchannel(self.id.to_string()),
                })?;
                link.accepted = link.accepted.saturating_add(1);
                return Ok(());
            }
            Command::End => Control::End,
            Command::Reset(reason) => Control::Reset(reason),
        };
        let order = Order {
            control,
            after: link.accepted,
        };
        // The first control command wins: the stream ends with it.
        let mut under_way = None;
        link.control.send_if_modified(|pending| match pending {
            Some(first) => {
                under_way = Some(first.control);
                false
            }
            None => {
                *pending = Some(order);
                true
            }
        });
        match under_way {
            Some(first) => Err(PushError::Ending(self.id.to_string(), first)),
            None => Ok(()),
        }
    }

    /// The connection carrying the device's downchannel.
    pub fn connection(&self) -> Option<Arc<Connection>> {
        self.lock().downchannel.as_ref().map(|d| d.conn.clone())
    }

    /// Whether the device has an open downchannel.
    pub fn connected(&self) -> bool {
        self.lock().downchannel.as_ref().is_some_and(|d| !d.tx.is_closed())
    }

    /// Record an activity gap (from the connection's activity clock).
    pub fn activity_gap(&self, gap_ms: u64, limit_ms: u64, evidence: u64) {
        use crate::avs::conformance::Rule;
        let mut s = self.lock();
        if gap_ms > limit_ms {
            s.conformance.fail(
                Rule::Activity,
                &[evidence],
                format!("{gap_ms} ms without activity on the connection (limit {limit_ms} ms)"),
            );
        } else {
            s.conformance.pass(Rule::Activity, evidence);
        }
    }

    /// The conformance report, including an activity check of the open connection.
    pub fn conformance(&self, limit_ms: u64) -> Vec<RuleReport> {
        let idle = {
            let s = self.lock();
            s.downchannel.as_ref().map(|d| d.conn.idle_ms())
        };
        if let Some(idle) = idle.filter(|i| *i > limit_ms) {
            self.activity_gap(idle, limit_ms, 0);
        }
        self.lock().conformance.report()
    }

    /// A summary for the control API.
    pub fn summary(&self) -> DeviceSummary {
        let s = self.lock();
        DeviceSummary {
            id: self.id.to_string(),
            connected: s.downchannel.as_ref().is_some_and(|d| !d.tx.is_closed()),
            region: s.region.as_deref().map(str::to_string),
            connected_at: s.connected_at.clone(),
            last_event: s
                .last_event
                .as_ref()
                .map(|(name, at)| serde_json::json!({"name": name, "at": at})),
            firmware: s.firmware.clone(),
            capabilities: s.capabilities.clone(),
            inactive_seconds: s.inactive_seconds,
            last_state: s.last_state.as_deref().map(context_of),
            exceptions: s.exceptions.iter().cloned().collect(),
        }
    }
}

/// The `context` of a stored SynchronizeState (an empty list when it has none).
fn context_of(metadata: &[u8]) -> Value {
    serde_json::from_slice::<Value>(metadata)
        .ok()
        .and_then(|mut doc| doc.get_mut("context").map(Value::take))
        .unwrap_or_else(|| Value::Array(Vec::new()))
}

/// A device as the control API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct DeviceSummary {
    pub id: String,
    pub connected: bool,
    pub region: Option<String>,
    pub connected_at: Option<String>,
    pub last_event: Option<Value>,
    pub firmware: Option<String>,
    pub capabilities: Option<Vec<Interface>>,
    pub inactive_seconds: Option<u64>,
    pub last_state: Option<Value>,
    pub exceptions: Vec<ExceptionRecord>,
}

/// All devices, by id.
pub struct Devices {
    map: Mutex<HashMap<Arc<str>, Arc<Device>>>,
    /// Capacity of each downchannel queue.
    pub queue: usize,
}

impl Devices {
    pub fn new(queue: usize) -> Devices {
        Devices {
            map: Mutex::new(HashMap::new()),
            queue,
        }
    }

    /// The device with `id`, created on first sight (a request naming it
    /// counts as activity).
    pub fn get_or_create(&self, id: &Arc<str>) -> Arc<Device> {
        let mut map = self.map.lock();
        let device = map
            .entry(id.clone())
            .or_insert_with(|| Arc::new(Device::new(id.clone())))
            .clone();
        device.seen();
        device
    }

    /// Forget devices idle for `idle` that nothing else holds: no open
    /// downchannel, no connection bound to them, no request under way (the
    /// map's is the only reference, checked under the map lock, so a request
    /// that is just finding the device keeps it). Returns the ids forgotten.
    pub fn sweep(&self, idle: Duration) -> Vec<Arc<str>> {
        let idle_ms = crate::clock::as_ms(idle);
        let mut gone = Vec::new();
        self.map.lock().retain(|id, device| {
            let keep = Arc::strong_count(device) > 1 || device.connected() || device.idle_ms() < idle_ms;
            if !keep {
                gone.push(id.clone());
            }
            keep
        });
        gone.sort();
        gone
    }

    pub fn get(&self, id: &str) -> Option<Arc<Device>> {
        self.map.lock().get(id).cloned()
    }

    /// Every device, sorted by id.
    pub fn list(&self) -> Vec<Arc<Device>> {
        let mut all: Vec<_> = self.map.lock().values().cloned().collect();
        all.sort_by(|a, b| a.id.cmp(&b.id));
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn idle_devices_nobody_holds_are_forgotten() {
        let devices = Devices::new(4);
        let idle = Duration::from_secs(60);
        drop(devices.get_or_create(&Arc::from("gone")));
        let held = devices.get_or_create(&Arc::from("held")); // a connection keeps it
        drop(devices.get_or_create(&Arc::from("busy")));
        tokio::time::advance(Duration::from_secs(59)).await;
        assert!(devices.sweep(idle).is_empty(), "not idle long enough");
        drop(devices.get_or_create(&Arc::from("busy"))); // a request: seen again
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(devices.sweep(idle), vec![Arc::from("gone")]);
        assert!(devices.get("gone").is_none());
        assert!(devices.get("held").is_some());
        tokio::time::advance(Duration::from_secs(60)).await;
        assert_eq!(devices.sweep(idle), vec![Arc::from("busy")]);
        drop(held);
        assert_eq!(devices.sweep(idle), vec![Arc::from("held")], "once released");
        assert!(devices.list().is_empty());
    }

    #[test]
    fn system_versions() {
        assert!(version_at_least("1.1", (1, 1)));
        assert!(version_at_least("1.2", (1, 1)));
        assert!(version_at_least("2.0", (1, 1)));
        assert!(!version_at_least("1.0", (1, 1)));
    }
}
