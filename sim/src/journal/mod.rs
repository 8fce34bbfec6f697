//! The journal: every exchange in and out, in one append-only record.
//!
//! Each entry gets a monotonic id when it is recorded; the in-memory ring is
//! bounded by entries and by bytes (an estimate of each entry's heap size,
//! taken before the lock), and counts what it evicts. An entry larger than
//! the whole byte bound keeps its place with its body left out (the file,
//! if any, still gets it whole). Recording is a short critical section
//! (no I/O, no serialization): the JSONL file, if any, is written by a
//! background task fed through an unbounded channel, so a slow disk never
//! slows a request and no entry is dropped. Readers (the control API,
//! expectations, tests) query by device, face and id, and can wait for new
//! entries through a `watch` channel instead of polling.

mod file;

mod body;
pub use body::Body;
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
    /// Alexa toward a smart home skill: directives sent, answers judged.
    Skill,
    /// The Alexa event gateway (`POST /v3/events`).
    Gateway,
    /// SNS: topics, subscriptions, every delivery attempt.
    Sns,
    /// Alexa Smart Properties events raised and published.
    Asp,
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
            Face::Skill => "skill",
            Face::Gateway => "gateway",
            Face::Sns => "sns",
            Face::Asp => "asp",
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
    /// State forgotten to stay bounded (an idle device, expired tokens).
    Evicted,
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
    /// Reads as a `serde_json::Value`; an event's metadata is kept as its
    /// text and parsed when read (see `Body`).
    #[serde(skip_serializing_if = "Body::is_null", default)]
    pub body: Body,
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
    pub body: Body,
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
            body: Body::default(),
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
        self.body = Body::compact(body);
        self
    }
    /// A body shared with the caller (e.g. an event's metadata text).
    pub fn shared_body(mut self, body: Body) -> Record {
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

/// Default of `journal.max_bytes` for journals made without a config.
pub const DEFAULT_MAX_BYTES: usize = 64 * 1024 * 1024;

/// Longest summary an oversized entry keeps, in bytes.
const OVERSIZE_SUMMARY: usize = 1024;

struct Ring {
    entries: VecDeque<Arc<Entry>>,
    /// Estimated size of each entry in `entries`, in step with it.
    sizes: VecDeque<usize>,
    /// Sum of `sizes`.
    bytes: usize,
    evicted: u64,
    /// Feeds the JSONL writer; taken by `close_file` at shutdown.
    file: Option<mpsc::UnboundedSender<Arc<Entry>>>,
}

/// The journal. Cheap to share behind an `Arc`.
pub struct Journal {
    ring: Mutex<Ring>,
    capacity: usize,
    max_bytes: usize,
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
                sizes: VecDeque::new(),
                bytes: 0,
                evicted: 0,
                file,
            }),
            capacity: capacity.max(1),
            max_bytes: DEFAULT_MAX_BYTES,
            next_id: AtomicU64::new(1),
            latest: watch::channel(0).0,
        }
    }

    /// Bound the in-memory entries by their estimated size too (at least
    /// one entry's worth is always kept).
    pub fn with_max_bytes(mut self, max_bytes: usize) -> Journal {
        self.max_bytes = max_bytes.max(OVERSIZE_SUMMARY * 4);
        self
    }

    /// Record an entry and return its id.
    pub fn record(&self, r: Record) -> u64 {
        let (ts, mono_ms) = (crate::clock::wall_rfc3339(), crate::clock::mono_ms());
        let size = record_size(&r, &ts);
        let mut ring = self.ring.lock();
        // The id is taken under the lock so the ring stays in id order.
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let entry = Arc::new(Entry {
            id,
            ts,
            mono_ms,
            face: r.face,
            kind: r.kind,
            device: r.device,
            connection: r.connection,
            stream: r.stream,
            summary: r.summary,
            body: r.body,
        });
        if let Some(file) = &ring.file {
            let _ = file.send(entry.clone());
        }
        let (entry, size) = if size > self.max_bytes / 2 {
            shrunk(&entry, size)
        } else {
            (entry, size)
        };
        while !ring.entries.is_empty()
            && (ring.entries.len() >= self.capacity || ring.bytes.saturating_add(size) > self.max_bytes)
        {
            ring.entries.pop_front();
            let gone = ring.sizes.pop_front().unwrap_or(0);
            ring.bytes = ring.bytes.saturating_sub(gone);
            ring.evicted += 1;
        }
        ring.entries.push_back(entry);
        ring.sizes.push_back(size);
        ring.bytes = ring.bytes.saturating_add(size);
        drop(ring);
        self.latest.send_replace(id);
        id
    }

    /// Estimated bytes the in-memory entries take.
    pub fn bytes(&self) -> usize {
        self.ring.lock().bytes
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

    /// The cursor (a `since`) after which the newest `n` entries matching
    /// `q` (its own `since` included) begin: streaming from it shows the
    /// recent past without replaying the whole ring. `q.since` when fewer match.
    pub fn tail_since(&self, q: &Query, n: usize) -> Option<u64> {
        if n == 0 {
            return Some(self.latest().max(q.since.unwrap_or(0)));
        }
        let ring = self.ring.lock();
        let start = ring
            .entries
            .iter()
            .rev()
            .filter(|e| q.matches(e))
            .nth(n - 1)
            .map(|e| e.id - 1);
        start.map(|s| s.max(q.since.unwrap_or(0))).or(q.since)
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

/// The heap an entry built from `r` takes, estimated: the entry itself,
/// its strings, and every node of its JSON body.
fn record_size(r: &Record, ts: &str) -> usize {
    std::mem::size_of::<Entry>()
        + 2 * std::mem::size_of::<usize>() // the Arc's counts
        + ts.len()
        + r.summary.len()
        + r.device.as_ref().map_or(0, String::len)
        + r.body.text_len().unwrap_or_else(|| value_size(&r.body))
}

/// Estimated heap size of a JSON value (iterative: bodies may nest deeply).
fn value_size(v: &Value) -> usize {
    let mut total = 0usize;
    let mut stack = vec![v];
    while let Some(v) = stack.pop() {
        total = total.saturating_add(std::mem::size_of::<Value>());
        match v {
            Value::String(s) => total = total.saturating_add(s.len()),
            Value::Array(a) => stack.extend(a.iter()),
            Value::Object(m) => {
                for (k, v) in m {
                    // Key string plus the map's per-entry overhead.
                    total = total.saturating_add(k.len() + 3 * std::mem::size_of::<usize>());
                    stack.push(v);
                }
            }
            _ => {}
        }
    }
    total
}

/// An entry too big for the byte bound, kept with its body left out and its
/// summary cut, so the record of what happened is never lost.
fn shrunk(entry: &Entry, size: usize) -> (Arc<Entry>, usize) {
    let mut cut = OVERSIZE_SUMMARY.min(entry.summary.len());
    while !entry.summary.is_char_boundary(cut) {
        cut -= 1;
    }
    let mut small = entry.clone();
    small.summary.truncate(cut);
    small.body = Body::value(
        serde_json::json!({"omitted": format!("an entry of about {size} bytes: over half of journal.max_bytes")}),
    );
    let size = std::mem::size_of::<Entry>() + small.ts.len() + small.summary.len() + value_size(&small.body) + 64;
    (Arc::new(small), size)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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

    #[test]
    fn tail_since_starts_before_the_newest_n_matches() {
        let j = Journal::new(100);
        for i in 0..10 {
            let device = if i % 2 == 0 { "even" } else { "odd" };
            j.record(Record::new(Face::Avs, Kind::Request, format!("r{i}")).device(device));
        }
        let even = Query {
            device: Some("even".into()),
            ..Default::default()
        };
        // Even entries are ids 1, 3, 5, 7, 9: the newest two start after 6.
        assert_eq!(j.tail_since(&even, 2), Some(6));
        assert_eq!(j.tail_since(&even, 50), None, "fewer than asked: from the start");
        assert_eq!(j.tail_since(&even, 0), Some(10), "none: only new ones");
        let later = Query {
            since: Some(8),
            ..even.clone()
        };
        assert_eq!(j.tail_since(&later, 3), Some(8), "never before the query's own since");
    }

    #[test]
    fn bytes_bound_evicts_oldest_and_counts_with_the_entry_bound() {
        let j = Journal::new(1000).with_max_bytes(64 * 1024);
        let big = "b".repeat(10 * 1024);
        for i in 0..20 {
            j.record(Record::new(Face::Avs, Kind::Request, format!("r{i}")).body(json!({"text": big})));
            assert!(j.bytes() <= 64 * 1024, "after {i}: {} bytes", j.bytes());
        }
        let kept = j.query(&Query::default());
        assert!(kept.len() >= 4 && kept.len() < 7, "{} kept", kept.len());
        assert_eq!(kept.last().unwrap().summary, "r19", "the newest is kept");
        assert_eq!(j.evicted(), 20 - kept.len() as u64);
        // The entry bound still applies, and both count as evictions.
        let j = Journal::new(3).with_max_bytes(64 * 1024);
        for i in 0..5 {
            j.record(Record::new(Face::Avs, Kind::Request, format!("s{i}")));
        }
        let quarter = "q".repeat(25 * 1024);
        for i in 0..3 {
            j.record(Record::new(Face::Avs, Kind::Request, format!("q{i}")).body(json!(quarter)));
        }
        let kept: Vec<_> = j.query(&Query::default()).iter().map(|e| e.summary.clone()).collect();
        assert_eq!(kept, vec!["q1", "q2"], "three would exceed 64 KiB");
        assert_eq!(j.evicted(), 8 - 2, "evictions by count and by bytes are both counted");
    }

    #[test]
    fn an_entry_bigger_than_the_bound_is_kept_without_its_body() {
        let j = Journal::new(100).with_max_bytes(64 * 1024);
        j.record(Record::new(Face::Avs, Kind::Request, "small"));
        let id = j.record(Record::new(Face::Avs, Kind::Directive, "s".repeat(5000)).body(json!("x".repeat(1 << 20))));
        let e = j.get(id).expect("kept");
        assert_eq!(e.summary.len(), OVERSIZE_SUMMARY);
        assert!(e.body["omitted"].as_str().unwrap().contains("journal.max_bytes"));
        assert!(j.bytes() <= 64 * 1024);
        assert_eq!(j.query(&Query::default()).len(), 2, "the small one stays too");
        // Deep bodies are sized without recursion.
        let mut deep = json!(1);
        for _ in 0..10_000 {
            deep = Value::Array(vec![deep]);
        }
        assert!(value_size(&deep) > 10_000);
        std::mem::forget(deep); // dropping a 10,000-deep Value recurses; not what this tests
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
