//! Carrying out fired fault rules on HTTP/2 streams and connections.
//!
//! The rule engine (`crate::faults`) decides; this module acts, because
//! only the stream's owner can reset it, hold it, or answer in the face's
//! own error format.

use crate::avs::connection::{CloseReason, Connection};
use crate::avs::devices::Command;
use crate::avs::exception::AvsError;
use crate::faults::rule::{Action, ResetAt, reason};
use crate::faults::{Fired, sample_delay};
use crate::journal::{Face, Kind, Record};
use crate::state::State;
use bytes::Bytes;
use h2::server::SendResponse;
use http::StatusCode;
use serde_json::json;
use std::sync::Arc;

/// What the stream's owner does next.
#[derive(Debug)]
pub enum Next {
    /// Serve the request normally.
    Continue,
    /// An answer (or a reset) went out; drain the request body.
    Answered,
    /// Never answer; drain the body and wait for the connection to close.
    Hold,
    /// Reset once this many request-body bytes have arrived.
    ResetAfter(u64, h2::Reason),
    /// Serve the request, shaped.
    Shape(Shape),
}

/// How a served stream is altered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Shape {
    /// Response body in pieces of this size, this far apart.
    pub dribble: Option<(usize, std::time::Duration)>,
    /// Response body cut after this many bytes.
    pub truncate: Option<usize>,
    /// Do not release the request body's flow-control window.
    pub withhold_window: bool,
    pub framing: Option<crate::faults::rule::FramingStyle>,
}

impl Shape {
    /// The pieces to send `body` in, after truncation.
    pub fn pieces(&self, body: Bytes) -> Vec<Bytes> {
        let body = match self.truncate {
            Some(n) if n < body.len() => body.slice(..n),
            _ => body,
        };
        match self.dribble {
            Some((chunk, _)) if chunk > 0 => (0..body.len())
                .step_by(chunk)
                .map(|i| body.slice(i..i.saturating_add(chunk).min(body.len())))
                .collect(),
            _ => vec![body],
        }
    }
}

/// The body of an error answer in `face`'s own format.
pub fn error_body(face: Face, status: u16, error: Option<&str>, body: Option<&str>) -> (String, Bytes) {
    if let Some(b) = body {
        return ("application/json".into(), Bytes::from(b.to_string()));
    }
    let doc = match face {
        Face::Lwa => {
            let error = error.unwrap_or(if status >= 500 {
                "servererror"
            } else {
                "invalid_request"
            });
            json!({"error": error, "error_description": format!("injected by a fault rule (HTTP {status})")})
        }
        Face::Capabilities => json!({"message": format!("injected by a fault rule (HTTP {status})")}),
        Face::Gateway => crate::smarthome::GatewayError::Injected {
            status,
            code: error.map(str::to_string),
            description: format!("injected by a fault rule (HTTP {status})"),
        }
        .to_json(),
        _ => AvsError::Injected {
            status,
            code: error.map(str::to_string),
            description: format!("injected by a fault rule (HTTP {status})"),
        }
        .to_json(),
    };
    ("application/json".into(), Bytes::from(doc.to_string()))
}

/// Act on `fired` at a stream's start (or, for events, once the event name is known).
pub async fn apply(
    state: &Arc<State>,
    conn: &Arc<Connection>,
    fired: Fired,
    face: Face,
    device: Option<&Arc<str>>,
    respond: &mut SendResponse<Bytes>,
) -> Next {
    match fired.action {
        Action::Status { status, error, body } => {
            let (ct, bytes) = error_body(face, status, error.as_deref(), body.as_deref());
            let head = crate::avs::respond::head(
                StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                Some(&ct),
            );
            if let Ok(mut s) = respond.send_response(head, false) {
                let _ = s.send_data(bytes, true);
            }
            Next::Answered
        }
        Action::Delay { .. } => {
            if let Some(d) = fired.action.delay() {
                tokio::time::sleep(sample_delay(&d)).await;
            }
            Next::Continue
        }
        Action::Hold => Next::Hold,
        Action::Reset { code, at, bytes } => {
            let reason = reason(&code).unwrap_or(h2::Reason::CANCEL);
            match at {
                ResetAt::BeforeHeaders => respond.send_reset(reason),
                ResetAt::AfterHeaders => {
                    match respond.send_response(crate::avs::respond::head(StatusCode::OK, None), false) {
                        Ok(mut s) => {
                            // The client must see the headers before the reset.
                            conn.flush_barrier().await;
                            s.send_reset(reason)
                        }
                        Err(_) => respond.send_reset(reason),
                    }
                }
                ResetAt::AfterRequestBytes => return Next::ResetAfter(bytes, reason),
            }
            Next::Answered
        }
        Action::EndDownchannel => {
            if let Some(d) = device.and_then(|d| state.devices.get(d)) {
                let _ = d.command(Command::End);
            }
            Next::Continue
        }
        Action::Goaway {
            code,
            graceful,
            last_stream_id,
        } => {
            let code = reason(&code).map_or(0, u32::from);
            match last_stream_id {
                Some(id) => {
                    raw_goaway(conn, id, code);
                    Next::Hold
                }
                None => {
                    conn.close(CloseReason::Fault { graceful, code });
                    if graceful { Next::Continue } else { Next::Answered }
                }
            }
        }
        Action::StopPingAcks => {
            conn.frames.drop_pings();
            Next::Continue
        }
        Action::MaxConcurrentStreams { value } => {
            // A client that does not read cannot be sent more; the firing is journaled either way.
            let _ = announce_max_streams(state, conn, value);
            Next::Continue
        }
        Action::RevokeToken | Action::ExpireToken => {
            let expire = matches!(fired.action, Action::ExpireToken);
            if let Some(d) = device {
                state.tokens.block_device(d, expire);
            }
            let e = AvsError::Unauthorized(
                if expire {
                    "access token expired"
                } else {
                    "access token revoked"
                }
                .into(),
            );
            let _ = crate::avs::respond::error(respond, &e);
            Next::Answered
        }
        Action::Dribble { chunk_bytes, every_ms } => Next::Shape(Shape {
            dribble: Some((chunk_bytes.max(1), std::time::Duration::from_millis(every_ms))),
            ..Default::default()
        }),
        Action::Truncate { bytes } => Next::Shape(Shape {
            truncate: Some(bytes),
            ..Default::default()
        }),
        Action::WithholdWindowUpdate => Next::Shape(Shape {
            withhold_window: true,
            ..Default::default()
        }),
        Action::DirectiveFraming { style } => Next::Shape(Shape {
            framing: Some(style),
            ..Default::default()
        }),
        ref byte_level => {
            crate::faults::io::shape(&conn.shaping, byte_level, fired.seed);
            if matches!(byte_level, Action::TcpReset | Action::TlsFail) {
                // Make the socket move so the reset happens now.
                let conn = conn.clone();
                tokio::spawn(async move { conn.flush_barrier().await });
                Next::Hold
            } else {
                Next::Continue
            }
        }
    }
}

/// Carry out the body-side part of `next` on a request body the caller owns.
pub async fn finish_body(conn: &Connection, next: &Next, mut body: h2::RecvStream, respond: &mut SendResponse<Bytes>) {
    let mut seen = 0u64;
    while let Some(chunk) = body.data().await {
        let Ok(chunk) = chunk else { return };
        let _ = body.flow_control().release_capacity(chunk.len());
        seen += chunk.len() as u64;
        if let Next::ResetAfter(n, reason) = next {
            if seen >= *n {
                respond.send_reset(*reason);
                return;
            }
        }
    }
    match next {
        Next::ResetAfter(_, reason) => respond.send_reset(*reason),
        Next::Hold => hold(conn, respond).await,
        _ => {}
    }
}

/// Keep a stream unanswered until the client gives up or the connection closes.
pub async fn hold(conn: &Connection, respond: &mut SendResponse<Bytes>) {
    tokio::select! {
        _ = conn.closing.cancelled() => {}
        _ = futures::future::poll_fn(|cx| respond.poll_reset(cx)) => {}
    }
}

/// Apply a connection-wide fault right now (control API and scenarios with
/// `now`); returns the journal id of the entry recording it.
pub fn apply_now(state: &State, device: &Arc<str>, action: &Action) -> Result<u64, String> {
    // Both callers validated already; checked again because a bad number here would reach the socket.
    action.validate()?;
    let d = state
        .devices
        .get(device)
        .ok_or_else(|| format!("unknown device {device:?}"))?;
    let journal = |summary: String| {
        state.journal.record(
            Record::new(Face::Avs, Kind::Fault, summary)
                .device(&**device)
                .body(json!({"action": action})),
        )
    };
    match action {
        Action::Goaway {
            code,
            graceful,
            last_stream_id,
        } => {
            let conn = d
                .connection()
                .ok_or_else(|| format!("{device} has no open connection"))?;
            let id = journal(format!("fault applied now: {}", action.describe()));
            let code = reason(code).map_or(0, u32::from);
            match last_stream_id {
                Some(last) => raw_goaway(&conn, *last, code),
                None => conn.close(CloseReason::Fault {
                    graceful: *graceful,
                    code,
                }),
            }
            Ok(id)
        }
        Action::StopPingAcks | Action::MaxConcurrentStreams { .. } => {
            let conn = d
                .connection()
                .ok_or_else(|| format!("{device} has no open connection"))?;
            match action {
                Action::StopPingAcks => conn.frames.drop_pings(),
                Action::MaxConcurrentStreams { value } => {
                    announce_max_streams(state, &conn, *value)?;
                }
                _ => {}
            }
            Ok(journal(format!("fault applied now: {}", action.describe())))
        }
        Action::EndDownchannel => {
            d.command(Command::End).map_err(|e| e.to_string())?;
            Ok(journal(format!("fault applied now: {}", action.describe())))
        }
        Action::Reset { code, .. } => {
            let r = reason(code).ok_or_else(|| format!("{code:?} is not an HTTP/2 error code"))?;
            d.command(Command::Reset(r)).map_err(|e| e.to_string())?;
            Ok(journal(format!(
                "fault applied now: RST_STREAM {code} on the downchannel"
            )))
        }
        Action::RevokeToken | Action::ExpireToken => {
            state.tokens.block_device(device, matches!(action, Action::ExpireToken));
            Ok(journal(format!("fault applied now: {}", action.describe())))
        }
        Action::Latency { .. }
        | Action::Bandwidth { .. }
        | Action::Stall { .. }
        | Action::CloseAfter { .. }
        | Action::TcpReset => {
            let conn = d
                .connection()
                .ok_or_else(|| format!("{device} has no open connection"))?;
            crate::faults::io::shape(&conn.shaping, action, state.config.seed);
            let id = journal(format!("fault applied now: {}", action.describe()));
            if matches!(action, Action::TcpReset) {
                tokio::spawn(async move { conn.flush_barrier().await });
            }
            Ok(id)
        }
        other => Err(format!(
            "{} cannot be applied now; install it as a rule",
            other.describe()
        )),
    }
}

/// Announce a stream limit, at most `avs.max_concurrent_streams`: `h2`
/// enforces the configured limit itself and cannot raise it mid-connection,
/// so a higher announcement would be a promise the server breaks.
fn announce_max_streams(state: &State, conn: &Connection, value: u32) -> Result<(), String> {
    let value = value.min(state.config.avs.max_concurrent_streams);
    if conn.frames.max_concurrent_streams(value) {
        Ok(())
    } else {
        Err("the connection is not reading: earlier SETTINGS frames are still waiting to be sent".into())
    }
}

/// Write a raw GOAWAY (chosen last-stream-id and code), then close in order.
fn raw_goaway(conn: &Arc<Connection>, last_stream_id: u32, code: u32) {
    conn.frames.goaway(last_stream_id, code);
}
