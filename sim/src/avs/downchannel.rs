//! `GET /v20160207/directives`: the downchannel.
//!
//! Answered with 200 and a `multipart/related` body that never ends: each
//! directive pushed to the device is written as one part together with the
//! delimiter that follows it, so the device can act on it at once. The
//! stream ends only when the connection goes away, the client resets it,
//! a newer downchannel of the same device replaces it, a fault ends or
//! resets it, or the device stops reading it for
//! `avs.downchannel_stall_timeout`. Whatever ends it, every accepted
//! directive that did not go out in full is journaled as not delivered.
//!
//! Backpressure: bytes go to h2 only as the device's flow-control window
//! allows (`outbox`), so a device that reads slowly or not at all leaves its
//! directives in its bounded queue (`avs.directive_queue`), and a full queue
//! refuses pushes. A stalled downchannel is reset (RST_STREAM CANCEL) rather
//! than its connection sent GOAWAY: the reset frees the stalled bytes at
//! once without waiting on the peer, and the connection's other streams
//! (an event under way, pings) are not punished for the downchannel.
//!
//! Control commands (`end_downchannel`, `reset`, a newer downchannel) do not
//! wait in the push queue: a device that stops reading would hold them
//! there until the stall deadline, and a full queue would refuse them.

use crate::avs::connection::Connection;
use crate::avs::devices::{Control, Device, DownchannelRx, Order, Push};
use crate::avs::multipart::related;
use crate::avs::outbox::{self, Outbox, StreamEvent};
use crate::avs::respond;
use crate::clock::Instant;
use crate::faults::rule::FramingStyle;
use crate::journal::{Face, Kind, Record};
use crate::state::State;
use bytes::Bytes;
use h2::SendStream;
use h2::server::SendResponse;
use http::{Request, StatusCode};
use serde_json::{Value, json};
use std::sync::Arc;

/// Attachments held for a device's next event response, at most.
const MAX_PENDING_ATTACHMENTS: usize = 16;

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
    // A few bytes, always within the initial window.
    if send.send_data(related::downchannel_start(&boundary), false).is_err() {
        device.downchannel_closed(rx.link);
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

    let mut out = Outbox::default();
    let mut under_way = None;
    let end = pump(
        &state,
        &conn,
        &device,
        &mut send,
        &mut rx,
        &mut out,
        &mut under_way,
        &boundary,
        stream_id,
    )
    .await;
    device.downchannel_closed(rx.link);
    // A directive cut off part way (a reset, a stall) was journaled when it
    // was taken: say that it did not arrive, and how much of it left.
    if let Some(d) = under_way.filter(|_| !out.is_empty()) {
        let written = d.bytes.saturating_sub(out.waiting());
        let why = format!(
            "directive {} not delivered: the downchannel closed ({end}) after {written} of its {} bytes were written",
            d.name, d.bytes
        );
        let record = Record::new(Face::Avs, Kind::Error, why)
            .device(&*device.id)
            .body(json!({"directive": d.journal_id, "written": written, "bytes": d.bytes}));
        conn.journal(&state, record.stream(stream_id));
    }
    // Pushes accepted (202) but still queued will never be written: say so.
    rx.pushes.close();
    while let Ok(push) = rx.pushes.try_recv() {
        let why = format!("directive {} not delivered: the downchannel closed ({end})", push.name);
        let record = Record::new(Face::Avs, Kind::Error, why).device(&*device.id);
        conn.journal(&state, record.stream(stream_id));
    }
    conn.journal(
        &state,
        Record::new(Face::Avs, Kind::ConnectionClose, format!("downchannel closed: {end}")).stream(stream_id),
    );
}

/// The directive whose bytes are in the outbox.
struct UnderWay {
    name: String,
    journal_id: u64,
    /// All its bytes (parts and delimiters).
    bytes: usize,
}

/// The downchannel loop: a `select!` over the device's control commands,
/// its push queue, the stream (window granted, reset by the client), a
/// stall deadline and the connection's close signal. Every branch is
/// cancel-safe: `changed` and `recv` lose nothing when dropped, the
/// stream's state lives in h2, and bytes not yet written wait in the
/// `Outbox`, not in a future.
///
/// A directive is taken from the queue only when the previous one has been
/// handed to h2 in full, and h2 is handed only what the device's window
/// allows: a device that stops reading leaves directives in its bounded
/// queue, where a full queue refuses pushes (the control API's 503).
///
/// Control commands (a fault's end or reset, a newer downchannel) are
/// always listened for. One takes effect once the pushes accepted before
/// it have been handed to h2, or at once if the device's window is holding
/// a directive back: waiting on a device that does not read would delay
/// the fault until the stall deadline, or for ever.
#[allow(clippy::too_many_arguments)]
async fn pump(
    state: &State,
    conn: &Connection,
    device: &Device,
    send: &mut SendStream<Bytes>,
    rx: &mut DownchannelRx,
    out: &mut Outbox<Record>,
    under_way: &mut Option<UnderWay>,
    boundary: &str,
    stream_id: u32,
) -> String {
    let stall = state.config.avs.downchannel_stall_timeout;
    let mut stalled_since: Option<Instant> = None;
    let mut pending: Option<Order> = None;
    let mut taken = 0u64;
    loop {
        if let Some(order) = pending.filter(|o| !out.is_empty() || taken >= o.after) {
            return control(state, conn, send, out, order.control, stream_id);
        }
        let stall_deadline = stalled_since.and_then(|t| (!stall.is_zero()).then(|| t.checked_add(stall)).flatten());
        tokio::select! {
            changed = rx.control.changed(), if pending.is_none() => {
                pending = match changed {
                    Ok(()) => *rx.control.borrow_and_update(),
                    // The device's link was dropped: a newer downchannel took over.
                    Err(_) => Some(Order { control: Control::Replaced, after: 0 }),
                };
            }
            push = rx.pushes.recv(), if out.is_empty() => match push {
                Some(push) => {
                    taken = taken.saturating_add(1);
                    *under_way = Some(queue(state, conn, device, out, boundary, *push, stream_id));
                }
                None => pending = Some(Order { control: Control::Replaced, after: 0 }),
            },
            event = futures::future::poll_fn(|cx| outbox::poll_event(send, !out.is_empty(), cx)) => match event {
                StreamEvent::Capacity => {}
                StreamEvent::Reset(reason) => return format!("client reset the stream: {reason:?}"),
                StreamEvent::Closed(why) => return why,
            },
            _ = crate::clock::sleep_until(stall_deadline) => {
                let waiting = out.waiting();
                send.send_reset(h2::Reason::CANCEL);
                let why = format!(
                    "stalled: the device granted no flow-control window for {} with {waiting} bytes waiting (avs.downchannel_stall_timeout)",
                    crate::duration::format(stall)
                );
                conn.journal(state, Record::new(Face::Avs, Kind::Reset, format!("RST_STREAM CANCEL on the downchannel: {why}")).stream(stream_id));
                return why;
            }
            _ = conn.closing.cancelled() => {
                finish(state, conn, send, out);
                return "connection closing".to_string();
            }
        }
        let mut done = Vec::new();
        let written = out.write(send, &mut done);
        journal_all(state, conn, done);
        match written {
            Err(e) => return format!("write failed: {e}"),
            Ok(_) if out.is_empty() => stalled_since = None,
            Ok(0) => stalled_since = stalled_since.or_else(|| Some(crate::clock::now())),
            Ok(_) => stalled_since = Some(crate::clock::now()),
        }
    }
}

/// Carry out a control command; returns why the downchannel ended.
fn control(
    state: &State,
    conn: &Connection,
    send: &mut SendStream<Bytes>,
    out: &mut Outbox<Record>,
    control: Control,
    stream_id: u32,
) -> String {
    match control {
        Control::End => {
            finish(state, conn, send, out);
            "ended by a fault".to_string()
        }
        Control::Replaced => {
            finish(state, conn, send, out);
            "replaced by a newer downchannel".to_string()
        }
        Control::Reset(reason) => {
            send.send_reset(reason);
            let summary = format!("RST_STREAM {reason:?} on the downchannel");
            conn.journal(state, Record::new(Face::Avs, Kind::Reset, summary).stream(stream_id));
            format!("reset with {reason:?}")
        }
    }
}

/// End the stream cleanly: hand h2 the rest of the directive under way (one
/// message at most, window or not, so the device never sees half a part),
/// then END_STREAM. The SDK treats the end of the downchannel as a
/// server-side disconnect.
fn finish(state: &State, conn: &Connection, send: &mut SendStream<Bytes>, out: &mut Outbox<Record>) {
    let mut done = Vec::new();
    let _ = out.write_all(send, &mut done);
    journal_all(state, conn, done);
    let _ = send.send_data(Bytes::new(), true);
}

fn journal_all(state: &State, conn: &Connection, records: Vec<Record>) {
    for record in records {
        conn.journal(state, record);
    }
}

/// Journal a directive and queue its parts; each attachment is journaled
/// once its part has been handed to h2.
fn queue(
    state: &State,
    conn: &Connection,
    device: &Device,
    out: &mut Outbox<Record>,
    boundary: &str,
    push: Push,
    stream_id: u32,
) -> UnderWay {
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
    let before = out.waiting();
    out.push(related::json_part(boundary, &push.body, related::Next::More), None);
    let under_way = |out: &Outbox<Record>| UnderWay {
        name: push.name.clone(),
        journal_id: id,
        bytes: out.waiting().saturating_sub(before),
    };
    if push.attachments_elsewhere {
        let mut s = device.lock();
        s.pending_attachments.extend(push.attachments.iter().cloned());
        let excess = s.pending_attachments.len().saturating_sub(MAX_PENDING_ATTACHMENTS);
        s.pending_attachments.drain(..excess);
        return under_way(out);
    }
    for (cid, data) in &push.attachments {
        let summary = format!("attachment {cid} ({} bytes)", data.len());
        let record = Record::new(Face::Avs, Kind::Attachment, summary)
            .device(&*device.id)
            .stream(stream_id);
        out.push(
            related::attachment_part(boundary, cid, data, related::Next::More),
            Some(record),
        );
    }
    under_way(out)
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
