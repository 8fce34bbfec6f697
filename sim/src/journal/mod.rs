//! The journal: every exchange in and out, in one append-only record.
//!
//! Each entry gets a monotonic id when it is recorded; the in-memory ring is
//! bounded and counts what it evicts. Recording is a short critical section
//! (no I/O, no serialization): the JSONL file, if any, is written by a
//! background task fed through an unbounded channel, so a slow disk never
//! slows a request and no entry is dropped. Readers (the control API,
//! expectations, tests) query by device, face and id, and can wait for new
//! entries through a `watch` channel instead of polling.

mod file;

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::{mpsc, watch};

pub use file::FileWriter;

/// Which face of the simulated cloud an entry belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Face {
    Avs,
    Lwa,
    Capabilities,
    Control,
    Server,
    /// Scenario runs started by `serve --scenario` or the control API.
    Scenario,
}

impl Face {
    pub fn as_str(self) -> &'static str {
        match self {
            Face::Avs => "avs",
            Face::Lwa => "lwa",
            Face::Capabilities => "capabilities",
            Face::Control => "control",
            Face::Server => "server",
            Face::Scenario => "scenario",
        }
    }
}

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    ConnectionOpen,
    ConnectionClose,
    Request,
    Response,
    /// A directive written to a device (downchannel or event response).
    Directive,
    /// An audio (or other binary) part of an event, by size and hash.
    Attachment,
    PingFrame,
    Goaway,
    Reset,
    /// Something the simulator refused to do (a push to a full queue, ...).
    Error,
    /// A scenario step finished.
    Step,
    /// A scenario run started or ended.
    Run,
    /// A fault rule fired.
    Fault,
}

/// One journal entry.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Entry {
    /// Monotonic, starting at 1.
    pub id: u64,
    /// Wall-clock time, RFC 3339.
    pub ts: String,
    /// Milliseconds on the simulator's monotonic clock.
    pub mono_ms: u64,
    pub face: Face,
    pub kind: Kind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    /// The connection the exchange travelled on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connection: Option<u64>,
    /// The HTTP/2 stream id, where there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream: Option<u32>,
    pub summary: String,
    #[serde(skip_serializing_if = "Value::is_null", default)]
    pub body: Value,
}

/// An entry before it is recorded (the journal assigns id and time).
#[derive(Debug, Clone)]
pub struct Record {
    pub face: Face,
    pub kind: Kind,
    pub device: Option<String>,
    pub connection: Option<u64>,
    pub stream: Option<u32>,
    pub summary: String,
    pub body: Value,
}

impl Record {
    pub fn new(face: Face, kind: Kind, summary: impl Into<String>) -> Record {
        Record {
            face,
            kind,
            device: None,
            connection: None,
            stream: None,
            summary: summary.into(),
            body: Value::Null,
        }
    }
    pub fn device(mut self, device: impl Into<String>) -> Record {
        self.device = Some(device.into());
        self
    }
    pub fn maybe_device(mut self, device: Option<&str>) -> Record {
        self.device = device.map(str::to_string);
        self
    }
    pub fn connection(mut self, id: u64) -> Record {
        self.connection = Some(id);
        self
    }
    pub fn stream(mut self, id: u32) -> Record {
        self.stream = Some(id);
        self
    }
    pub fn body(mut self, body: Value) -> Record {
        self.body = body;
        self
    }
}

/// A query over the journal.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Query {
    pub device: Option<String>,
    pub face: Option<Face>,
    /// Only entries with an id greater than this.
    pub since: Option<u64>,
    pub limit: Option<usize>,
}

impl Query {
    fn matches(&self, e: &Entry) -> bool {
        self.since.is_none_or(|s| e.id > s)
            && self.face.is_none_or(|f| e.face == f)
            && self.device.as_deref().is_none_or(|d| e.device.as_deref() == Some(d))
    }
}

struct Ring {
    entries: VecDeque<Arc<Entry>>,
    evicted: u64,
    /// Feeds the JSONL writer; taken by `close_file` at shutdown.
    file: Option<mpsc::UnboundedSender<Arc<Entry>>>,
}

/// The journal. Cheap to share behind an `Arc`.
pub struct Journal {
    ring: Mutex<Ring>,
    capacity: usize,
    next_id: AtomicU64,
    latest: watch::Sender<u64>,
}

impl Journal {
    /// An in-memory journal keeping at most `capacity` entries.
    pub fn new(capacity: usize) -> Journal {
        Journal::with_file(capacity, None)
    }

    /// As `new`, also sending every entry to a file writer.
    pub fn with_file(capacity: usize, file: Option<mpsc::UnboundedSender<Arc<Entry>>>) -> Journal {
        Journal {
            ring: Mutex::new(Ring {
                entries: VecDeque::new(),
                evicted: 0,
                file,
            }),
            capacity: capacity.max(1),
            next_id: AtomicU64::new(1),
            latest: watch::channel(0).0,
        }
    }

    /// Record an entry and return its id.
    pub fn record(&self, r: Record) -> u64 {
        let mut ring = self.ring.lock();
        // The id is taken under the lock so the ring stays in id order.
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let entry = Arc::new(Entry {
            id,
            ts: crate::clock::wall_rfc3339(),
            mono_ms: crate::clock::mono_ms(),
            face: r.face,
            kind: r.kind,
            device: r.device,
            connection: r.connection,
            stream: r.stream,
            summary: r.summary,
            body: r.body,
        });
        if ring.entries.len() == self.capacity {
            ring.entries.pop_front();
            ring.evicted += 1;
        }
        if let Some(file) = &ring.file {
            let _ = file.send(entry.clone());
        }
        ring.entries.push_back(entry);
        drop(ring);
        self.latest.send_replace(id);
        id
    }

    /// Entries matching `q`, oldest first, at most `q.limit` (default 1000).
    pub fn query(&self, q: &Query) -> Vec<Arc<Entry>> {
        let limit = q.limit.unwrap_or(1000);
        let ring = self.ring.lock();
        let start = match q.since {
            Some(since) => ring.entries.partition_point(|e| e.id <= since),
            None => 0,
        };
        ring.entries
            .range(start..)
            .filter(|e| q.matches(e))
            .take(limit)
            .cloned()
            .collect()
    }

    /// One entry by id, if still held.
    pub fn get(&self, id: u64) -> Option<Arc<Entry>> {
        let ring = self.ring.lock();
        let at = ring.entries.partition_point(|e| e.id < id);
        ring.entries.get(at).filter(|e| e.id == id).cloned()
    }

    /// Stop feeding the file writer, so it flushes and ends.
    pub fn close_file(&self) {
        self.ring.lock().file = None;
    }

    /// How many entries the bound has evicted.
    pub fn evicted(&self) -> u64 {
        self.ring.lock().evicted
    }

    /// The id of the newest entry (0 when empty).
    pub fn latest(&self) -> u64 {
        *self.latest.borrow()
    }

    /// A receiver that changes whenever an entry is recorded.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.latest.subscribe()
    }

    /// Wait until an entry matching `q` exists, or `deadline` passes.
    pub async fn wait_for(&self, q: &Query, deadline: crate::clock::Instant) -> Vec<Arc<Entry>> {
        let mut rx = self.subscribe();
        loop {
            let found = self.query(q);
            if !found.is_empty() {
                return found;
            }
            if tokio::time::timeout_at(deadline, rx.changed()).await.is_err() {
                return Vec::new();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_monotonic_and_bound_evicts_with_count() {
        let j = Journal::new(3);
        let ids: Vec<u64> = (0..5)
            .map(|i| j.record(Record::new(Face::Avs, Kind::Request, format!("r{i}"))))
            .collect();
        assert_eq!(ids, vec![1, 2, 3, 4, 5]);
        let kept: Vec<u64> = j.query(&Query::default()).iter().map(|e| e.id).collect();
        assert_eq!(kept, vec![3, 4, 5]);
        assert_eq!(j.evicted(), 2);
        assert!(j.get(2).is_none());
        assert_eq!(j.get(4).unwrap().summary, "r3");
    }

    #[test]
    fn query_filters_device_face_since_limit() {
        let j = Journal::new(100);
        j.record(Record::new(Face::Avs, Kind::Request, "a").device("d1"));
        j.record(Record::new(Face::Lwa, Kind::Request, "b").device("d1"));
        j.record(Record::new(Face::Avs, Kind::Request, "c").device("d2"));
        j.record(Record::new(Face::Avs, Kind::Request, "d").device("d1"));
        let q = Query {
            device: Some("d1".into()),
            face: Some(Face::Avs),
            ..Default::default()
        };
        let got: Vec<_> = j.query(&q).iter().map(|e| e.summary.clone()).collect();
        assert_eq!(got, vec!["a", "d"]);
        let q = Query {
            since: Some(2),
            limit: Some(1),
            ..Default::default()
        };
        assert_eq!(j.query(&q)[0].summary, "c");
    }

    #[tokio::test(start_paused = true)]
    async fn wait_for_wakes_on_record_and_times_out() {
        let j = Arc::new(Journal::new(10));
        let j2 = j.clone();
        let waiter = tokio::spawn(async move {
            let q = Query {
                device: Some("x".into()),
                ..Default::default()
            };
            j2.wait_for(&q, crate::clock::now() + std::time::Duration::from_secs(5))
                .await
        });
        tokio::task::yield_now().await;
        j.record(Record::new(Face::Avs, Kind::Request, "other"));
        j.record(Record::new(Face::Avs, Kind::Request, "mine").device("x"));
        assert_eq!(waiter.await.unwrap()[0].summary, "mine");
        let q = Query {
            device: Some("nobody".into()),
            ..Default::default()
        };
        assert!(
            j.wait_for(&q, crate::clock::now() + std::time::Duration::from_secs(5))
                .await
                .is_empty()
        );
    }
}
