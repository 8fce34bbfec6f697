//! Serving request/response routes (ping, LWA, Capabilities) through one
//! axum `Router`, whether the request came as an HTTP/2 stream that `h2`
//! accepted or over HTTP/1.1 through hyper.
//!
//! Only the streaming AVS paths need raw `h2`; everything else is plain
//! request → response, so it is written once as axum handlers and reached
//! from both transports here.

use crate::avs::connection::Connection;
use crate::avs::exception::AvsError;
use crate::state::State;
use axum::body::Body;
use bytes::{Bytes, BytesMut};
use h2::server::SendResponse;
use http::Request;
use http_body_util::BodyExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tower::ServiceExt;

/// Largest body a request/response route accepts.
const MAX_BODY: usize = 1024 * 1024;

/// Give a request what every public route needs: the connection it came
/// on, and a lower-cased `/auth/o2/` path (the SDK sends `/auth/O2/`).
pub fn prepare(req: &mut Request<Body>, conn: &Arc<Connection>) {
    req.extensions_mut().insert(conn.clone());
    let path = req.uri().path();
    if path.to_ascii_lowercase().starts_with("/auth/o2/") && path.bytes().any(|b| b.is_ascii_uppercase()) {
        let lower = path.to_ascii_lowercase();
        let pq = match req.uri().query() {
            Some(q) => format!("{lower}?{q}"),
            None => lower,
        };
        let mut parts = req.uri().clone().into_parts();
        parts.path_and_query = pq.parse().ok();
        if let Ok(uri) = http::Uri::from_parts(parts) {
            *req.uri_mut() = uri;
        }
    }
}

/// Serve one HTTP/2 stream through the public router.
pub async fn serve_h2(
    router: axum::Router,
    conn: Arc<Connection>,
    req: Request<h2::RecvStream>,
    mut respond: SendResponse<Bytes>,
    shape: crate::avs::fault::Shape,
) {
    let (parts, mut body) = req.into_parts();
    let gateway = crate::public::face_of(parts.uri.path()) == crate::journal::Face::Gateway;
    let ended = Arc::new(AtomicBool::new(false));
    let body = if gateway {
        // The gateway reads its own body with its own bound (256 KB → 413),
        // and may answer before the upload ends.
        streamed(body, ended.clone())
    } else {
        let mut buf = BytesMut::new();
        while let Some(chunk) = body.data().await {
            let Ok(chunk) = chunk else { return };
            let _ = body.flow_control().release_capacity(chunk.len());
            if buf.len() + chunk.len() > MAX_BODY {
                let e = AvsError::InvalidRequest(format!("request body exceeds {MAX_BODY} bytes"));
                let _ = crate::avs::respond::error(&mut respond, &e);
                // The 400 is the whole answer: stop the upload, do not read the rest.
                crate::avs::respond::stop_upload(&conn, &mut respond).await;
                return;
            }
            buf.extend_from_slice(&chunk);
        }
        ended.store(true, Ordering::Release);
        Body::from(buf.freeze())
    };
    let mut req = Request::from_parts(parts, body);
    prepare(&mut req, &conn);
    let Ok(resp) = router.oneshot(req).await;
    let (parts, body) = resp.into_parts();
    let bytes = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let mut head = http::Response::from_parts(parts, ());
    head.headers_mut().remove(http::header::CONNECTION);
    head.headers_mut().remove(http::header::TRANSFER_ENCODING);
    if shape.truncate.is_some() {
        // The body just ends early; a stale content-length would make it a protocol error instead.
        head.headers_mut().remove(http::header::CONTENT_LENGTH);
    }
    let Ok(mut send) = respond.send_response(head, bytes.is_empty()) else {
        return;
    };
    if bytes.is_empty() {
        stop_unread_upload(&conn, &ended, &mut respond).await;
        return;
    }
    // Faults may dribble or truncate the body; otherwise it goes in one piece.
    let pieces = shape.pieces(bytes);
    let last = pieces.len().saturating_sub(1);
    for (i, piece) in pieces.into_iter().enumerate() {
        if i > 0 {
            if let Some((_, every)) = shape.dribble {
                tokio::time::sleep(every).await;
            }
        }
        if send.send_data(piece, i == last).is_err() {
            return;
        }
    }
    stop_unread_upload(&conn, &ended, &mut respond).await;
}

/// An HTTP/2 request body as an axum body read as the handler asks for it
/// (flow control released chunk by chunk); `ended` is set once it ended.
fn streamed(body: h2::RecvStream, ended: Arc<AtomicBool>) -> Body {
    let chunks = futures::stream::unfold(Some(body), move |body| {
        let ended = ended.clone();
        async move {
            let mut body = body?;
            match body.data().await {
                Some(Ok(chunk)) => {
                    let _ = body.flow_control().release_capacity(chunk.len());
                    Some((Ok(chunk), Some(body)))
                }
                Some(Err(e)) => Some((Err(e), None)),
                None => {
                    ended.store(true, Ordering::Release);
                    None
                }
            }
        }
    });
    Body::from_stream(chunks)
}

/// The answer went out before the request body ended (the handler refused
/// it unread): stop the upload with RST_STREAM NO_ERROR (RFC 9113 §8.1).
async fn stop_unread_upload(conn: &Connection, ended: &AtomicBool, respond: &mut SendResponse<Bytes>) {
    if !ended.load(Ordering::Acquire) {
        crate::avs::respond::stop_upload(conn, respond).await;
    }
}

/// Serve an HTTP/1.1 connection through the public router; returns why it ended.
pub async fn serve_http1<IO>(state: Arc<State>, conn: Arc<Connection>, io: IO, router: axum::Router) -> String
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (conn2, state2) = (conn.clone(), state.clone());
    let service = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
        let mut req = req.map(Body::new);
        prepare(&mut req, &conn2);
        let (router, state, conn) = (router.clone(), state2.clone(), conn2.clone());
        async move {
            let (path, headers) = (req.uri().path().to_string(), req.headers().clone());
            if let Some(resp) = http1_fault(&state, &conn, path, (req.method(), &headers)).await? {
                return Ok(resp);
            }
            match router.oneshot(req).await {
                Ok(resp) => Ok::<_, std::io::Error>(resp),
                Err(never) => match never {},
            }
        }
    });
    let limits = &state.config.limits;
    // hyper's header timeout only works with a timer; without one it is ignored.
    let http = hyper::server::conn::http1::Builder::new()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(http1_buf_size(limits.max_header_list_size))
        .serve_connection(hyper_util::rt::TokioIo::new(io), service);
    tokio::pin!(http);
    tokio::select! {
        ended = http.as_mut() => match ended {
            Ok(()) => "the peer closed the connection".to_string(),
            Err(e) => format!("connection error: {e}"),
        },
        _ = state.shutdown.cancelled() => {
            http.as_mut().graceful_shutdown();
            match tokio::time::timeout(state.config.avs.drain_grace, http).await {
                Ok(_) => "drained at shutdown".to_string(),
                Err(_) => "drain grace over at shutdown".to_string(),
            }
        }
    }
}

/// hyper's HTTP/1.1 read buffer for a header-list limit: hyper refuses
/// (431) a head that does not fit, and panics below 8 KiB.
pub fn http1_buf_size(max_header_list_size: u32) -> usize {
    usize::try_from(max_header_list_size).unwrap_or(usize::MAX).max(8192)
}

/// Fault rules on HTTP/1.1: statuses, delays, holds and token revocation act
/// as on HTTP/2; stream and connection faults close the connection (the
/// closest HTTP/1.1 has).
async fn http1_fault(
    state: &Arc<State>,
    conn: &Arc<Connection>,
    path: String,
    (method, headers): (&http::Method, &http::HeaderMap),
) -> Result<Option<axum::response::Response>, std::io::Error> {
    use crate::faults::rule::Action;
    let face = crate::public::face_of(&path);
    let token = crate::lwa::tokens::bearer(headers, face == crate::journal::Face::Capabilities).map(str::to_string);
    let device = token.as_deref().and_then(|t| state.tokens.authenticate(t).ok());
    let point = crate::faults::Point {
        face,
        device: device.as_deref(),
        path: &path,
        event: None,
        connection: conn.sequence(),
        stream: None,
    };
    let Some(fired) = state.faults.fire(&state.journal, &point, Some(conn.id)) else {
        return Ok(None);
    };
    let error = |status: u16, error: Option<&str>, body: Option<&str>| {
        let (ct, bytes) = crate::avs::fault::error_body(face, status, error, body);
        let mut resp = axum::response::Response::new(Body::from(bytes));
        *resp.status_mut() = http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
        resp.headers_mut()
            .insert(http::header::CONTENT_TYPE, ct.parse().expect("static content type"));
        resp
    };
    match &fired.action {
        Action::Status { status, error: e, body } => {
            if face == crate::journal::Face::Gateway {
                let request = (method, headers);
                let injected = Some((*status, e.clone()));
                crate::smarthome::gateway::journal_faulted(state, conn, request, None, injected, &fired.rule);
            }
            Ok(Some(error(*status, e.as_deref(), body.as_deref())))
        }
        Action::Delay { .. } => {
            if let Some(d) = fired.action.delay() {
                tokio::time::sleep(crate::faults::sample_delay(&d)).await;
            }
            Ok(None)
        }
        Action::Hold => {
            conn.closing.cancelled().await;
            Err(std::io::Error::other("held until the connection closed"))
        }
        Action::RevokeToken | Action::ExpireToken => {
            if let Some(d) = &device {
                state
                    .tokens
                    .block_device(d, matches!(fired.action, Action::ExpireToken));
            }
            Ok(Some(error(403, None, None)))
        }
        Action::EndDownchannel => {
            if let Some(d) = device.as_ref().and_then(|d| state.devices.get(d)) {
                let _ = d.command(crate::avs::devices::Command::End);
            }
            Ok(None)
        }
        Action::Reset { .. } | Action::Goaway { .. } => {
            Err(std::io::Error::other("a fault closed the HTTP/1.1 connection"))
        }
        byte_level => {
            crate::faults::io::shape(&conn.shaping, byte_level, fired.seed);
            Ok(None)
        }
    }
}
