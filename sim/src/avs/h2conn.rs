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
pub async fn serve<IO>(state: Arc<State>, conn: Arc<Connection>, io: IO, tasks: TaskTracker)
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
        .handshake::<_, Bytes>(io);
    let mut h2 = match handshake.await {
        Ok(h2) => h2,
        Err(e) => {
            conn.journal_close(&state, format!("HTTP/2 handshake failed: {e}"));
            return;
        }
    };
    if let Some(pp) = h2.ping_pong() {
        conn.set_ping_pong(pp);
    }
    let router = crate::public::router(state.clone());
    let grace = state.config.avs.drain_grace;
    let mut drain_deadline: Option<crate::clock::Instant> = None;
    let age = state.config.avs.max_connection_age;
    let mut age_deadline = (!age.is_zero()).then(|| crate::clock::now() + age);
    let close_note = loop {
        tokio::select! {
            accepted = h2.accept() => match accepted {
                Some(Ok((req, respond))) => {
                    let (state, conn, router) = (state.clone(), conn.clone(), router.clone());
                    tasks.spawn(route(state, conn, router, req, respond));
                }
                Some(Err(e)) => break format!("connection error: {e}"),
                None => break conn.end_note(),
            },
            _ = conn.closing.cancelled(), if drain_deadline.is_none() => {
                drain_deadline = Some(crate::clock::now() + grace);
                let (why, abrupt) = match conn.close_reason() {
                    Some(CloseReason::Superseded) => ("the device opened a newer connection".to_string(), None),
                    Some(CloseReason::Age) => ("the connection reached avs.max_connection_age".to_string(), None),
                    Some(CloseReason::Fault { graceful: true, .. }) => ("a fault rule".to_string(), None),
                    Some(CloseReason::Fault { graceful: false, code }) => ("a fault rule (abrupt)".to_string(), Some(h2::Reason::from(code))),
                    _ => ("the simulator is shutting down".to_string(), None),
                };
                match abrupt {
                    Some(reason) => h2.abrupt_shutdown(reason),
                    None => h2.graceful_shutdown(),
                }
                let code = abrupt.map_or("NO_ERROR".to_string(), |r| format!("{r:?}"));
                conn.journal(&state, Record::new(Face::Avs, Kind::Goaway, format!("GOAWAY {code}: {why}")));
            }
            _ = sleep_until(age_deadline), if drain_deadline.is_none() => {
                conn.close(CloseReason::Age);
                age_deadline = None;
            }
            _ = state.shutdown.cancelled(), if drain_deadline.is_none() && !conn.closing.is_cancelled() => {
                conn.close(CloseReason::Shutdown);
            }
            _ = sleep_until(drain_deadline) => {
                h2.abrupt_shutdown(h2::Reason::NO_ERROR);
                drain_deadline = Some(crate::clock::now() + grace);
            }
        }
    };
    // Wake stream tasks still waiting on this connection.
    conn.closing.cancel();
    conn.journal_close(&state, close_note);
}

async fn sleep_until(deadline: Option<crate::clock::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// Dispatch one stream by path.
async fn route(
    state: Arc<State>,
    conn: Arc<Connection>,
    router: axum::Router,
    req: Request<h2::RecvStream>,
    mut respond: SendResponse<Bytes>,
) {
    let path = req.uri().path().to_string();
    let face = crate::public::face_of(&path);
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
    let mut shape = fault::Shape::default();
    if let Some(fired) = state.faults.fire(&state.journal, &point, Some(conn.id)) {
        let next = fault::apply(&state, &conn, fired, face, device.as_ref(), &mut respond).await;
        match next {
            fault::Next::Continue => {}
            fault::Next::Shape(s) => shape = s,
            next => {
                // The request never reaches its handler: journal it here.
                let record = Record::new(face, Kind::Request, format!("{} {path}", req.method()));
                let record = record
                    .maybe_device(device.as_deref())
                    .stream(respond.stream_id().as_u32());
                conn.journal(&state, record);
                fault::finish_body(&conn, &next, req.into_body(), &mut respond).await;
                return;
            }
        }
    }
    let method = req.method().clone();
    match (method, path.as_str()) {
        (http::Method::GET, "/v20160207/directives") => {
            crate::avs::downchannel::serve(state, conn, req, respond, shape).await
        }
        (http::Method::POST, "/v20160207/events") => crate::avs::events::serve(state, conn, req, respond, shape).await,
        _ => crate::bridge::serve_h2(router, conn, req, respond, shape).await,
    }
}
