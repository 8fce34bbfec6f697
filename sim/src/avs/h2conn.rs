//! The HTTP/2 connection loop of the AVS face.
//!
//! Drives `h2::server` directly (not hyper) because the AVS face needs
//! stream-level control: a downchannel that never ends, answers sent before
//! the request body ends, GOAWAY on demand, and (later) RST_STREAM faults.
//! The loop is a `select!` over new streams, the connection's close signal
//! and a drain deadline once GOAWAY went out.

use crate::avs::connection::{CloseReason, Connection};
use crate::avs::fault;
use crate::avs::frames::{FrameObserver, Sniffed};
use crate::faults::Point;
use crate::journal::{Face, Kind, Record};
use crate::state::State;
use bytes::Bytes;
use h2::server::SendResponse;
use http::Request;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::task::TaskTracker;

struct PingWatch {
    state: Arc<State>,
    conn: Arc<Connection>,
}

impl FrameObserver for PingWatch {
    fn ping(&self) {
        let id = self
            .conn
            .journal(&self.state, Record::new(Face::Avs, Kind::PingFrame, "PING frame"));
        self.conn.touch(&self.state, id);
    }
}

/// Serve one HTTP/2 connection until it closes.
/// `router` is the listener's public router (one per listener).
pub async fn serve<IO>(state: Arc<State>, conn: Arc<Connection>, io: IO, tasks: TaskTracker, router: axum::Router)
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let watch = Arc::new(PingWatch {
        state: state.clone(),
        conn: conn.clone(),
    });
    let io = Sniffed::new(io, watch, conn.frames.clone());
    let handshake = h2::server::Builder::new()
        .max_concurrent_streams(state.config.avs.max_concurrent_streams)
        .max_header_list_size(state.config.limits.max_header_list_size)
        .handshake::<_, Bytes>(io);
    let handshake = tokio::time::timeout(state.config.limits.handshake_timeout, handshake);
    let failed = match handshake.await {
        Ok(Ok(h2)) => Ok(h2),
        Ok(Err(e)) => Err(format!("HTTP/2 handshake failed: {e}")),
        Err(_) => Err("HTTP/2 handshake not done within limits.handshake_timeout".to_string()),
    };
    let mut h2 = match failed {
        Ok(h2) => h2,
        Err(why) => {
            conn.journal_close(&state, why);
            return;
        }
    };
    if let Some(pp) = h2.ping_pong() {
        conn.set_ping_pong(pp);
    }
    let open = OpenStreams::default();
    let grace = state.config.avs.drain_grace;
    let mut drain_deadline: Option<crate::clock::Instant> = None;
    let age = state.config.avs.max_connection_age;
    let mut age_deadline = (!age.is_zero()).then(|| crate::clock::deadline_in(age));
    let close_note = loop {
        tokio::select! {
            accepted = h2.accept() => match accepted {
                Some(Ok((req, mut respond))) => {
                    conn.stream_accepted(respond.stream_id().as_u32());
                    let Some(slot) = open.admit(&conn) else {
                        refuse(&state, &conn, &req, &mut respond);
                        continue;
                    };
                    let (state, conn, router) = (state.clone(), conn.clone(), router.clone());
                    tasks.spawn(async move {
                        route(state, conn, router, req, respond).await;
                        drop(slot);
                    });
                }
                Some(Err(e)) => break format!("connection error: {e}"),
                None => break conn.end_note(),
            },
            _ = conn.closing.cancelled(), if drain_deadline.is_none() => {
                drain_deadline = Some(crate::clock::deadline_in(grace));
                let reason = conn.close_reason().unwrap_or(CloseReason::Shutdown);
                let abrupt = match reason {
                    CloseReason::Fault { graceful: false, code } => Some(h2::Reason::from(code)),
                    _ => None,
                };
                let why = reason.describe();
                match abrupt {
                    // `Connection::close` queued the GOAWAY (and woke this task).
                    // The frame filter then closes in order (see `frames::GOAWAY_LINGER`).
                    Some(_) => {
                        drain_deadline = Some(crate::clock::deadline_in(grace.max(crate::avs::frames::GOAWAY_LINGER * 2)));
                    }
                    None => h2.graceful_shutdown(),
                }
                let code = abrupt.map_or("NO_ERROR".to_string(), |r| format!("{r:?}"));
                conn.journal(&state, Record::new(Face::Avs, Kind::Goaway, format!("GOAWAY {code}: {why}")));
            }
            _ = crate::clock::sleep_until(age_deadline), if drain_deadline.is_none() => {
                conn.close(CloseReason::Age);
                age_deadline = None;
            }
            _ = state.shutdown.cancelled(), if drain_deadline.is_none() && !conn.closing.is_cancelled() => {
                conn.close(CloseReason::Shutdown);
            }
            _ = crate::clock::sleep_until(drain_deadline) => {
                h2.abrupt_shutdown(h2::Reason::NO_ERROR);
                drain_deadline = Some(crate::clock::deadline_in(grace));
            }
        }
    };
    // Wake stream tasks still waiting on this connection.
    conn.closing.cancel();
    conn.journal_close(&state, close_note);
}

/// The streams of one connection that are being served, so that a
/// SETTINGS_MAX_CONCURRENT_STREAMS announced by a fault (which `h2` does not
/// know about) is enforced: RFC 9113 §5.1.2 lets a server refuse a stream
/// beyond its limit with REFUSED_STREAM, which tells the client it may retry.
#[derive(Default)]
struct OpenStreams(Arc<std::sync::atomic::AtomicU32>);

/// One served stream; the slot frees when the stream's task ends.
struct Slot(Arc<std::sync::atomic::AtomicU32>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

impl OpenStreams {
    /// A slot for a new stream, unless the acknowledged limit is reached.
    fn admit(&self, conn: &Connection) -> Option<Slot> {
        use std::sync::atomic::Ordering::Relaxed;
        let limit = conn.frames.max_streams().unwrap_or(u32::MAX);
        self.0
            .fetch_update(Relaxed, Relaxed, |n| (n < limit).then(|| n.saturating_add(1)))
            .ok()?;
        Some(Slot(self.0.clone()))
    }
}

/// RST_STREAM REFUSED_STREAM for a stream beyond the announced limit, journaled.
fn refuse(state: &State, conn: &Connection, req: &Request<h2::RecvStream>, respond: &mut SendResponse<Bytes>) {
    respond.send_reset(h2::Reason::REFUSED_STREAM);
    let limit = conn.frames.max_streams().unwrap_or(u32::MAX);
    let record = Record::new(
        crate::public::face_of(req.uri().path()),
        Kind::Request,
        format!(
            "{} {}: RST_STREAM REFUSED_STREAM (beyond the announced SETTINGS_MAX_CONCURRENT_STREAMS {limit})",
            req.method(),
            req.uri().path()
        ),
    )
    .stream(respond.stream_id().as_u32());
    conn.journal(state, record);
}

/// Dispatch one stream by path.
async fn route(
    state: Arc<State>,
    conn: Arc<Connection>,
    router: axum::Router,
    req: Request<h2::RecvStream>,
    mut respond: SendResponse<Bytes>,
) {
    let path = req.uri().path();
    let face = crate::public::face_of(path);
    let mut shape = fault::Shape::default();
    // Most requests meet no fault rule: then the token is looked up once, by
    // the handler, not also here to describe the request to the rules.
    if !state.faults.none_installed() {
        let path = path.to_string();
        let token = crate::lwa::tokens::bearer(req.headers(), face == Face::Capabilities).map(str::to_string);
        let device = token.as_deref().and_then(|t| state.tokens.authenticate(t).ok());
        let point = Point {
            face,
            device: device.as_deref(),
            path: &path,
            event: None,
            connection: conn.sequence(),
            stream: Some(respond.stream_id().as_u32().div_ceil(2)),
        };
        if let Some(fired) = state.faults.fire(&state.journal, &point, Some(conn.id)) {
            let injected = match &fired.action {
                crate::faults::Action::Status { status, error, .. } => Some((*status, error.clone())),
                _ => None,
            };
            let rule = fired.rule.clone();
            let next = Box::pin(fault::apply(&state, &conn, fired, face, device.as_ref(), &mut respond)).await;
            match next {
                fault::Next::Continue => {}
                fault::Next::Shape(s) => shape = s,
                next => {
                    // The request never reaches its handler: journal it here.
                    let stream = respond.stream_id().as_u32();
                    if face == Face::Gateway {
                        let request = (req.method(), req.headers());
                        crate::smarthome::gateway::journal_faulted(
                            &state,
                            &conn,
                            request,
                            Some(stream),
                            injected,
                            &rule,
                        );
                    } else {
                        let record = Record::new(face, Kind::Request, format!("{} {path}", req.method()));
                        conn.journal(&state, record.maybe_device(device.as_deref()).stream(stream));
                    }
                    fault::finish_body(&conn, &next, req.into_body(), &mut respond).await;
                    return;
                }
            }
        }
    }
    let method = req.method().clone();
    match (method, req.uri().path()) {
        (http::Method::GET, "/v20160207/directives") => {
            crate::avs::downchannel::serve(state, conn, req, respond, shape).await
        }
        // Boxed: a task's future is as big as its largest arm, and every
        // held downchannel's task would otherwise carry room for these.
        (http::Method::POST, "/v20160207/events") => {
            Box::pin(crate::avs::events::serve(state, conn, req, respond, shape)).await
        }
        _ => Box::pin(crate::bridge::serve_h2(router, conn, req, respond, shape)).await,
    }
}
