//! One device connection: its identity, activity and how to close it.
//!
//! Shared by the HTTP/2 loop, every stream on it, and the device registry
//! (which may ask an older connection of the same device to go away).

use crate::avs::devices::Device;
use crate::clock;
use crate::journal::{Face, Kind, Record};
use crate::state::{ListenerInfo, State};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use tokio_util::sync::CancellationToken;

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// Why a connection is being closed by the simulator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// The same device opened a downchannel on a newer connection.
    Superseded,
    /// The simulator is shutting down.
    Shutdown,
    /// The connection reached `avs.max_connection_age` (AVS does this after about an hour).
    Age,
    /// A fault rule asked for GOAWAY.
    Fault { graceful: bool, code: u32 },
}

impl CloseReason {
    /// Why, in words, for the journal.
    pub fn describe(self) -> String {
        match self {
            CloseReason::Superseded => "the device opened a newer connection".into(),
            CloseReason::Shutdown => "drained at shutdown".into(),
            CloseReason::Age => "the connection reached avs.max_connection_age".into(),
            CloseReason::Fault { graceful: true, .. } => "a fault rule (GOAWAY)".into(),
            CloseReason::Fault { graceful: false, code } => format!("a fault rule (abrupt GOAWAY, code {code})"),
        }
    }
}

/// A connection from a device (or any client) to an AVS listener.
pub struct Connection {
    pub id: u64,
    pub listener: ListenerInfo,
    pub peer: SocketAddr,
    /// `h2` or `http/1.1`.
    pub protocol: &'static str,
    /// Cancelled to make the connection send GOAWAY and end its downchannel.
    pub closing: CancellationToken,
    close_reason: OnceLock<CloseReason>,
    /// Set once the close has been journaled.
    close_journaled: AtomicBool,
    last_activity_ms: AtomicU64,
    device: OnceLock<Arc<Device>>,
    device_seq: OnceLock<u64>,
    /// The server side of HTTP/2 PINGs, for `flush_barrier`.
    ping: OnceLock<tokio::sync::Mutex<h2::PingPong>>,
    /// Byte-level faults on this connection's socket.
    pub shaping: Arc<crate::faults::io::Shaping>,
    /// Frame-level faults on this connection's HTTP/2 frames.
    pub frames: Arc<crate::avs::frames::FrameControl>,
    /// The highest client stream id accepted (the last-stream-id of a GOAWAY).
    last_stream: AtomicU32,
}

impl Connection {
    /// A connection accepted on `listener` from `peer`, with the socket
    /// shaping its connection-level faults set up at accept.
    pub fn new(
        listener: ListenerInfo,
        peer: SocketAddr,
        protocol: &'static str,
        shaping: Arc<crate::faults::io::Shaping>,
    ) -> Arc<Connection> {
        Arc::new(Connection {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            listener,
            peer,
            protocol,
            closing: CancellationToken::new(),
            close_reason: OnceLock::new(),
            close_journaled: AtomicBool::new(false),
            last_activity_ms: AtomicU64::new(clock::mono_ms()),
            device: OnceLock::new(),
            device_seq: OnceLock::new(),
            ping: OnceLock::new(),
            shaping,
            frames: Default::default(),
            last_stream: AtomicU32::new(0),
        })
    }

    /// The device this connection belongs to (the first one to authenticate).
    pub fn device(&self) -> Option<&Arc<Device>> {
        self.device.get()
    }

    pub fn bind_device(&self, device: &Arc<Device>) {
        if self.device.set(device.clone()).is_ok() {
            let mut d = device.lock();
            d.connections += 1;
            let _ = self.device_seq.set(d.connections);
        }
    }

    /// Keep the HTTP/2 connection's PING handle (set once after the handshake).
    pub fn set_ping_pong(&self, pp: h2::PingPong) {
        let _ = self.ping.set(tokio::sync::Mutex::new(pp));
    }

    /// Wait until frames queued so far have reached the client: a PING the
    /// client answers is written after them, so its PONG proves they left.
    /// Used where a fault must be seen in order (headers, then RST_STREAM).
    pub async fn flush_barrier(&self) {
        let Some(pp) = self.ping.get() else { return };
        let mut pp = pp.lock().await;
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), pp.ping(h2::Ping::opaque())).await;
    }

    /// Which of its device's connections this is (1-based), once bound.
    pub fn sequence(&self) -> Option<u64> {
        self.device_seq.get().copied()
    }

    /// Ask the connection to close (GOAWAY, then drain).
    ///
    /// An abrupt close (a fault's GOAWAY with an error code) queues its
    /// GOAWAY before anything else is told: streams that end because the
    /// connection is closing (the downchannel, the stream the fault fired
    /// on) would otherwise race it to the wire. After it nothing else
    /// leaves, so a client sees the same frames on every run.
    pub fn close(&self, reason: CloseReason) {
        if self.close_reason.set(reason).is_ok() {
            if let CloseReason::Fault { graceful: false, code } = reason {
                self.frames.goaway(self.last_stream.load(Ordering::Relaxed), code);
            }
        }
        self.closing.cancel();
    }

    /// A client stream was accepted.
    pub fn stream_accepted(&self, id: u32) {
        self.last_stream.fetch_max(id, Ordering::Relaxed);
    }

    pub fn close_reason(&self) -> Option<CloseReason> {
        self.close_reason.get().copied()
    }

    /// Record activity (a request, `GET /ping` or a PING frame). A gap longer
    /// than the configured interval breaks the device's activity rule.
    pub fn touch(&self, state: &State, evidence: u64) {
        let now = clock::mono_ms();
        let before = self.last_activity_ms.swap(now, Ordering::Relaxed);
        let limit = clock::as_ms(state.config.conformance.activity_interval);
        if let Some(device) = self.device() {
            device.activity_gap(now.saturating_sub(before), limit, evidence);
        }
    }

    /// Milliseconds since the last activity.
    pub fn idle_ms(&self) -> u64 {
        clock::mono_ms().saturating_sub(self.last_activity_ms.load(Ordering::Relaxed))
    }

    /// Journal a record about this connection.
    pub fn journal(&self, state: &State, record: Record) -> u64 {
        let mut record = record.connection(self.id);
        if record.device.is_none() {
            record.device = self.device().map(|d| d.id.to_string());
        }
        state.journal.record(record)
    }

    /// Journal the end of the connection with the reason, once: later calls
    /// (a `CloseGuard` after a normal end) do nothing.
    pub fn journal_close(&self, state: &State, why: impl Into<String>) -> Option<u64> {
        if self.close_journaled.swap(true, Ordering::AcqRel) {
            return None;
        }
        let why = why.into();
        let record = Record::new(Face::Server, Kind::ConnectionClose, format!("connection closed: {why}"))
            .body(serde_json::json!({ "reason": why, "peer": self.peer.to_string() }));
        Some(self.journal(state, record))
    }

    /// Why the simulator ended a connection it had asked to close, or that the peer did.
    pub fn end_note(&self) -> String {
        match self.close_reason() {
            Some(reason) => format!("closed after GOAWAY: {}", reason.describe()),
            None if self.frames.goaway_sent() => "closed after a GOAWAY injected by a fault rule".into(),
            None => "the peer closed the connection".into(),
        }
    }

    /// Journal the opening of the connection.
    pub fn journal_open(&self, state: &State) -> u64 {
        self.journal(
            state,
            Record::new(
                Face::Server,
                Kind::ConnectionOpen,
                format!("{} connection from {}", self.protocol, self.peer),
            )
            .body(serde_json::json!({
                "listener": &*self.listener.name,
                "region": &*self.listener.region,
                "local": self.listener.addr.to_string(),
                "peer": self.peer.to_string(),
                "protocol": self.protocol,
            })),
        )
    }
}

/// Journals the connection's close when dropped, unless it was journaled
/// already: a connection task that panics or is cancelled still leaves its
/// close in the journal. Held by the task that serves the connection.
pub struct CloseGuard {
    state: Arc<State>,
    conn: Arc<Connection>,
}

impl CloseGuard {
    /// A guard that journals `conn`'s close when dropped, unless already journaled.
    pub fn new(state: &Arc<State>, conn: &Arc<Connection>) -> CloseGuard {
        CloseGuard {
            state: state.clone(),
            conn: conn.clone(),
        }
    }
}

impl Drop for CloseGuard {
    fn drop(&mut self) {
        let why = if std::thread::panicking() {
            "the connection task panicked"
        } else {
            "the connection task was cancelled"
        };
        // Recording takes a parking_lot lock only: safe while unwinding.
        self.conn.journal_close(&self.state, why);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::avs::conformance::Verdict;
    use crate::config::Config;
    use crate::journal::Journal;
    use std::time::Duration;

    fn conn() -> Arc<Connection> {
        let info = ListenerInfo {
            name: "avs".into(),
            region: "NA".into(),
            addr: "127.0.0.1:1".parse().unwrap(),
            tls: true,
        };
        Connection::new(info, "127.0.0.1:2".parse().unwrap(), "h2", Default::default())
    }

    fn closes(state: &State, conn: &Connection) -> Vec<String> {
        state
            .journal
            .query(&Default::default())
            .iter()
            .filter(|e| e.kind == Kind::ConnectionClose && e.connection == Some(conn.id))
            .map(|e| e.summary.clone())
            .collect()
    }

    #[tokio::test]
    async fn a_panicking_or_cancelled_connection_task_still_journals_its_close() {
        let state = State::new(Config::default(), Arc::new(Journal::new(100)));
        let (c, s) = (conn(), state.clone());
        let task = tokio::spawn(async move {
            let _guard = CloseGuard::new(&s, &c);
            panic!("a bug in a connection task");
        });
        assert!(task.await.unwrap_err().is_panic());
        let c = conn();
        let (c2, s) = (c.clone(), state.clone());
        let (started, running) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(async move {
            let _guard = CloseGuard::new(&s, &c2);
            let _ = started.send(());
            std::future::pending::<()>().await;
        });
        running.await.unwrap();
        task.abort();
        assert!(task.await.unwrap_err().is_cancelled());
        assert_eq!(
            closes(&state, &c),
            vec!["connection closed: the connection task was cancelled"]
        );
        let all: Vec<_> = state
            .journal
            .query(&Default::default())
            .iter()
            .map(|e| e.summary.clone())
            .collect();
        assert!(
            all.contains(&"connection closed: the connection task panicked".to_string()),
            "{all:?}"
        );
    }

    #[test]
    fn a_close_is_journaled_once_with_its_reason() {
        let state = State::new(Config::default(), Arc::new(Journal::new(100)));
        let c = conn();
        {
            let _guard = CloseGuard::new(&state, &c);
            c.close(CloseReason::Shutdown);
            c.journal_close(&state, c.end_note());
        }
        assert_eq!(
            closes(&state, &c),
            vec!["connection closed: closed after GOAWAY: drained at shutdown"]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_connection_breaks_the_activity_rule() {
        let mut config = Config::default();
        config.conformance.activity_interval = Duration::from_secs(300);
        let state = State::new(config, Arc::new(Journal::new(100)));
        let info = ListenerInfo {
            name: "avs".into(),
            region: "NA".into(),
            addr: "127.0.0.1:1".parse().unwrap(),
            tls: true,
        };
        let conn = Connection::new(info, "127.0.0.1:2".parse().unwrap(), "h2", Default::default());
        let device = state.devices.get_or_create(&Arc::from("quiet"));
        conn.bind_device(&device);
        let _rx = device.open_downchannel(&conn, 4);
        let verdict = |d: &Device| {
            d.conformance(300_000)
                .into_iter()
                .find(|r| r.rule == "activity")
                .unwrap()
                .verdict
        };
        tokio::time::advance(Duration::from_secs(240)).await;
        conn.touch(&state, 1);
        assert_eq!(verdict(&device), Verdict::Pass);
        // Still connected and silent past the interval: the report notices without a request.
        tokio::time::advance(Duration::from_secs(301)).await;
        assert_eq!(verdict(&device), Verdict::Fail);
    }
}
