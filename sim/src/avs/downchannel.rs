//! `GET /v20160207/directives`: the downchannel.
//!
//! Answered with 200 and a `multipart/related` body that never ends: each
//! directive pushed to the device is written as one part together with the
//! delimiter that follows it, so the device can act on it at once. The
//! stream ends only when the connection goes away, the client resets it,
//! or a newer downchannel of the same device replaces it.

use crate::avs::connection::Connection;
use crate::avs::devices::{Command, Device, Push};
use crate::avs::multipart::related;
use crate::avs::respond;
use crate::faults::rule::FramingStyle;

/// Attachments held for a device's next event response, at most.
const MAX_PENDING_ATTACHMENTS: usize = 16;
use crate::journal::{Face, Kind, Record};
use crate::state::State;
use bytes::Bytes;
use h2::SendStream;
use h2::server::SendResponse;
use http::{Request, StatusCode};
use serde_json::{Value, json};
use std::sync::Arc;

/// Serve a downchannel request.
pub async fn serve(
    state: Arc<State>,
    conn: Arc<Connection>,
    req: Request<h2::RecvStream>,
    mut respond: SendResponse<Bytes>,
    shape: crate::avs::fault::Shape,
) {
    let stream_id = respond.stream_id().as_u32();
    let request_id = conn.journal(
        &state,
        Record::new(Face::Avs, Kind::Request, "GET /v20160207/directives").stream(stream_id),
    );
    let device = match crate::avs::auth::device(&state, req.headers()) {
        Ok(d) => d,
        Err(e) => {
            conn.journal(&state, error_record(&e.to_json(), e.status(), stream_id, None));
            let _ = respond::error(&mut respond, &e);
            return;
        }
    };
    conn.bind_device(&device);
    conn.touch(&state, request_id);
    let boundary = related::new_boundary();
    let content_type = match shape.framing {
        None => related::content_type(&boundary),
        Some(FramingStyle::QuotedBoundary) => {
            format!("multipart/related; boundary=\"{boundary}\"; type=application/json")
        }
        Some(FramingStyle::BoundaryLast) => format!("multipart/related; type=application/json; boundary={boundary}"),
    };
    let head = respond::head(StatusCode::OK, Some(&content_type));
    let Ok(mut send) = respond.send_response(head, false) else {
        return;
    };
    let mut rx = device.open_downchannel(&conn, state.devices.queue);
    if send.send_data(related::downchannel_start(&boundary), false).is_err() {
        device.downchannel_closed(conn.id);
        return;
    }
    let opened = conn.journal(
        &state,
        Record::new(Face::Avs, Kind::Response, "200 downchannel open")
            .device(&*device.id)
            .stream(stream_id)
            .body(json!({"status": 200, "region": &*conn.listener.region, "listener": conn.listener.url()})),
    );
    device
        .lock()
        .conformance
        .downchannel_opened(opened, conn.listener.addr.port());

    let end = loop {
        tokio::select! {
            command = rx.recv() => match command {
                Some(Command::Push(push)) => {
                    if let Err(e) = write(&state, &conn, &device, &mut send, &boundary, push, stream_id) {
                        break format!("write failed: {e}");
                    }
                }
                Some(Command::End) => {
                    let _ = send.send_data(Bytes::new(), true);
                    break "ended by a fault".to_string();
                }
                Some(Command::Reset(reason)) => {
                    send.send_reset(reason);
                    conn.journal(&state, Record::new(Face::Avs, Kind::Reset, format!("RST_STREAM {reason:?} on the downchannel")).stream(stream_id));
                    break format!("reset with {reason:?}");
                }
                None => {
                    let _ = send.send_data(Bytes::new(), true);
                    break "replaced by a newer downchannel".to_string();
                }
            },
            reset = futures::future::poll_fn(|cx| send.poll_reset(cx)) => {
                break match reset {
                    Ok(reason) => format!("client reset the stream: {reason:?}"),
                    Err(e) => format!("stream error: {e}"),
                };
            }
            _ = conn.closing.cancelled() => {
                // The SDK treats the end of the downchannel as a server-side disconnect.
                let _ = send.send_data(Bytes::new(), true);
                break "connection closing".to_string();
            }
        }
    };
    device.downchannel_closed(conn.id);
    conn.journal(
        &state,
        Record::new(Face::Avs, Kind::ConnectionClose, format!("downchannel closed: {end}")).stream(stream_id),
    );
}

fn write(
    state: &State,
    conn: &Connection,
    device: &Device,
    send: &mut SendStream<Bytes>,
    boundary: &str,
    push: Push,
    stream_id: u32,
) -> Result<(), h2::Error> {
    let body: Value =
        serde_json::from_slice(&push.body).unwrap_or_else(|_| json!({ "raw": String::from_utf8_lossy(&push.body) }));
    let id = conn.journal(
        state,
        Record::new(Face::Avs, Kind::Directive, push.name.clone())
            .device(&*device.id)
            .stream(stream_id)
            .body(body),
    );
    // Start the conformance clock before the bytes leave: a fast device may answer at once.
    note_for_conformance(state, device, &push, id);
    send.send_data(related::json_part(boundary, &push.body, related::Next::More), false)?;
    if push.attachments_elsewhere {
        let mut s = device.lock();
        s.pending_attachments.extend(push.attachments);
        let excess = s.pending_attachments.len().saturating_sub(MAX_PENDING_ATTACHMENTS);
        s.pending_attachments.drain(..excess);
        return Ok(());
    }
    for (cid, data) in &push.attachments {
        send.send_data(
            related::attachment_part(boundary, cid, data, related::Next::More),
            false,
        )?;
        let summary = format!("attachment {cid} ({} bytes)", data.len());
        conn.journal(
            state,
            Record::new(Face::Avs, Kind::Attachment, summary)
                .device(&*device.id)
                .stream(stream_id),
        );
    }
    Ok(())
}

/// Directives the device owes an answer to start a conformance clock.
fn note_for_conformance(state: &State, device: &Device, push: &Push, evidence: u64) {
    let c = &state.config.conformance;
    let mut s = device.lock();
    if !push.well_formed {
        s.conformance
            .malformed_sent(&String::from_utf8_lossy(&push.body), evidence, c.exception_deadline);
        return;
    }
    match push.name.as_str() {
        "System.ReportSoftwareInfo" => s
            .conformance
            .report_software_info_sent(evidence, c.software_info_deadline),
        "System.SetEndpoint" => {
            let doc: Value = serde_json::from_slice(&push.body).unwrap_or_default();
            let url = doc
                .pointer("/directive/payload/endpoint")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            let target = crate::avs::conformance::EndpointTarget {
                port: endpoint_port(&url),
                url,
            };
            s.conformance.set_endpoint_sent(target, evidence, c.reconnect_deadline);
        }
        _ => {}
    }
}

/// The port a SetEndpoint URL names (scheme default if none).
pub fn endpoint_port(url: &str) -> Option<u16> {
    let (scheme, rest) = url.split_once("://").unwrap_or(("https", url));
    let authority = rest.split('/').next().unwrap_or("");
    let port = authority
        .rsplit_once(':')
        .and_then(|(host, p)| (!host.ends_with(']') || authority.contains("]:")).then_some(p));
    match port.and_then(|p| p.parse().ok()) {
        Some(p) => Some(p),
        None if authority.is_empty() => None,
        None => Some(if scheme.eq_ignore_ascii_case("http") { 80 } else { 443 }),
    }
}

pub(crate) fn error_record(body: &Value, status: StatusCode, stream: u32, device: Option<&str>) -> Record {
    Record::new(
        Face::Avs,
        Kind::Response,
        format!("{} {}", status.as_u16(), body["payload"]["code"].as_str().unwrap_or("")),
    )
    .maybe_device(device)
    .stream(stream)
    .body(json!({"status": status.as_u16(), "body": body}))
}

#[cfg(test)]
mod tests {
    use super::endpoint_port;

    #[test]
    fn endpoint_ports() {
        assert_eq!(endpoint_port("https://localhost:9444"), Some(9444));
        assert_eq!(endpoint_port("https://avs-alexa-na.amazon.com"), Some(443));
        assert_eq!(endpoint_port("http://127.0.0.1:8080/"), Some(8080));
        assert_eq!(endpoint_port("localhost:9000"), Some(9000));
        assert_eq!(endpoint_port("https://[::1]:9445"), Some(9445));
    }
}
