//! `POST /v20160207/events`: read a streaming multipart event, apply the
//! System rules, answer.
//!
//! Full duplex: the answer is decided as soon as the JSON part is complete.
//! Errors and directive answers go out at once, while the audio may still
//! be streaming; a plain 204 waits for the end of the body. The audio is
//! hashed as it passes and never buffered.

use crate::avs::connection::Connection;
use crate::avs::devices::Device;
use crate::avs::downchannel::error_record;
use crate::avs::event::{EventMessage, EventReader};
use crate::avs::exception::AvsError;
use crate::avs::multipart::{self, related};
use crate::avs::respond;
use crate::avs::system::{self, Reply};
use crate::journal::{Face, Kind, Record};
use crate::state::State;
use bytes::Bytes;
use h2::server::SendResponse;
use h2::{RecvStream, SendStream};
use http::{Request, StatusCode};
use serde_json::json;
use std::sync::Arc;

/// A part of an event's multipart answer.
enum PartBody {
    Json(serde_json::Value),
    Attachment(String, Bytes),
}

/// Where the answer stands while the body is still arriving.
enum Answer {
    /// Nothing sent yet.
    Undecided,
    /// 204 once the body ends.
    NoContentAtEnd,
    /// A multipart answer is open; close it when the body ends.
    Streaming { send: SendStream<Bytes> },
    /// An answer was sent; the rest of the body is read and dropped, up to
    /// `avs.max_event_bytes` (then RST_STREAM NO_ERROR).
    Done,
    /// A fault holds the answer back: read the body up to
    /// `avs.max_event_bytes`, never answer.
    Held,
}

struct Ctx {
    state: Arc<State>,
    conn: Arc<Connection>,
    device: Arc<Device>,
    stream: u32,
}

/// Serve an events request.
pub async fn serve(
    state: Arc<State>,
    conn: Arc<Connection>,
    req: Request<RecvStream>,
    mut respond: SendResponse<Bytes>,
    shape: crate::avs::fault::Shape,
) {
    let stream = respond.stream_id().as_u32();
    let (parts, body) = req.into_parts();
    let device = match crate::avs::auth::device(&state, &parts.headers) {
        Ok(d) => d,
        Err(e) => {
            conn.journal(
                &state,
                Record::new(Face::Avs, Kind::Request, "POST /v20160207/events").stream(stream),
            );
            reject(&state, &conn, &mut respond, &e, stream, None);
            drain(&conn, body, &mut respond, state.config.avs.max_event_bytes).await;
            return;
        }
    };
    conn.bind_device(&device);
    let ctx = Ctx {
        state,
        conn,
        device,
        stream,
    };
    let content_type = parts
        .headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let boundary = match boundary_of(content_type) {
        Ok(b) => b,
        Err(e) => {
            let id = ctx.request_record(json!({"content_type": content_type}), "POST /v20160207/events");
            ctx.conn.touch(&ctx.state, id);
            reject(&ctx.state, &ctx.conn, &mut respond, &e, stream, Some(&ctx.device.id));
            drain(&ctx.conn, body, &mut respond, ctx.state.config.avs.max_event_bytes).await;
            return;
        }
    };
    read_and_answer(&ctx, body, &boundary, &mut respond, shape.withhold_window).await;
}

fn boundary_of(content_type: &str) -> Result<String, AvsError> {
    if !multipart::media_type(content_type)
        .to_ascii_lowercase()
        .starts_with("multipart/")
    {
        return Err(AvsError::UnsupportedMediaType(format!(
            "events must be multipart/form-data, got content-type {content_type:?}"
        )));
    }
    multipart::boundary(content_type).map_err(|e| AvsError::InvalidRequest(e.to_string()))
}

async fn read_and_answer(
    ctx: &Ctx,
    mut body: RecvStream,
    boundary: &str,
    respond: &mut SendResponse<Bytes>,
    withhold_window: bool,
) {
    let cfg = &ctx.state.config.avs;
    let mut reader = EventReader::new(boundary, cfg.max_json_bytes, cfg.max_event_bytes);
    let mut answer = Answer::Undecided;
    let mut saw_metadata = false;
    let mut received = 0u64;
    while let Some(chunk) = body.data().await {
        let chunk = match chunk {
            Ok(c) => c,
            Err(e) => {
                ctx.note(Kind::Reset, format!("request body ended abnormally: {e}"));
                return;
            }
        };
        // A fault may withhold WINDOW_UPDATE: the upload stalls once the window is spent.
        if !withhold_window {
            let _ = body.flow_control().release_capacity(chunk.len());
        }
        // Every byte counts, also those read after the answer was decided.
        received = received.saturating_add(chunk.len() as u64);
        let over = received > cfg.max_event_bytes;
        match answer {
            Answer::Done if over => {
                // An answer (a fault's, a rule's error) went out while the
                // body kept coming: read no more of it than an event may be.
                let why = format!("over avs.max_event_bytes = {}", cfg.max_event_bytes);
                return ctx.stop_upload(respond, &why).await;
            }
            Answer::Held if over => {
                // Hold the answer without reading on: the stream's window
                // stays spent, so flow control stops the client.
                ctx.note(
                    Kind::Error,
                    format!(
                        "held event: the rest of the upload (over avs.max_event_bytes = {}) is not read",
                        cfg.max_event_bytes
                    ),
                );
                return crate::avs::fault::hold(&ctx.conn, respond).await;
            }
            Answer::Done | Answer::Held => continue,
            _ => {}
        }
        match reader.feed(&chunk) {
            Ok(Some(metadata)) => {
                saw_metadata = true;
                answer = ctx.on_metadata(metadata, respond).await;
            }
            Ok(None) => {}
            Err(e) => {
                let whole_answer = matches!(answer, Answer::Undecided | Answer::NoContentAtEnd);
                ctx.fail(answer, respond, &e, saw_metadata);
                if whole_answer {
                    // The 400 is complete and the rest of the body cannot be
                    // read as an event anyway: stop the upload now.
                    return ctx.stop_upload(respond, &e.to_string()).await;
                }
                // A multipart answer already under way was cut with
                // RST_STREAM CANCEL by `fail`: that reset ends the upload too.
                return;
            }
        }
    }
    match answer {
        Answer::Done => return,
        Answer::Held => return crate::avs::fault::hold(&ctx.conn, respond).await,
        _ => {}
    }
    match reader.finish() {
        Ok(attachments) => {
            for a in &attachments {
                let summary = format!("attachment {} ({} bytes)", a.name.as_deref().unwrap_or("?"), a.bytes);
                ctx.record(Record::new(Face::Avs, Kind::Attachment, summary).body(json!(a)));
            }
            ctx.finish(answer, respond);
        }
        Err(e) => {
            if !saw_metadata {
                ctx.request_record(json!(null), "POST /v20160207/events (unreadable)");
            }
            ctx.fail(answer, respond, &e, true);
        }
    }
}

impl Ctx {
    fn record(&self, r: Record) -> u64 {
        self.conn
            .journal(&self.state, r.device(&*self.device.id).stream(self.stream))
    }

    fn note(&self, kind: Kind, summary: String) {
        self.record(Record::new(Face::Avs, kind, summary));
    }

    /// The answer went out whole: stop the upload (`respond::stop_upload`)
    /// and journal why the rest is not read.
    async fn stop_upload(&self, respond: &mut SendResponse<Bytes>, why: &str) {
        respond::stop_upload(&self.conn, respond).await;
        self.note(
            Kind::Reset,
            format!("RST_STREAM NO_ERROR after the answer: the rest of the upload is not read ({why})"),
        );
    }

    fn request_record(&self, body: serde_json::Value, summary: &str) -> u64 {
        self.record(Record::new(Face::Avs, Kind::Request, summary).body(body))
    }

    /// The JSON part is complete: judge the event and decide the answer.
    async fn on_metadata(&self, metadata: Bytes, respond: &mut SendResponse<Bytes>) -> Answer {
        let event = EventMessage::from_text(metadata.clone());
        let record = match &event {
            // The parsed document is shared with the journal entry, not copied.
            Ok(ev) => Record::new(Face::Avs, Kind::Request, ev.qualified()).shared_body(ev.journal_body()),
            Err(_) => Record::new(Face::Avs, Kind::Request, "POST /v20160207/events (bad metadata)")
                .body(json!(String::from_utf8_lossy(&metadata))),
        };
        // Fault rules installed after this event became visible (journaled) do not apply to it.
        let ticket = self.state.faults.ticket();
        let id = self.record(record);
        self.conn.touch(&self.state, id);
        if let Ok(ev) = &event {
            if let Some(answer) = self.event_fault(ticket, ev, respond).await {
                return answer;
            }
        }
        let outcome = event.and_then(|ev| system::handle(&self.state, &self.device, &self.conn, &ev, id));
        match outcome {
            Ok(Reply::NoContent) => {
                // Attachments a fault held back arrive here, in the wrong stream.
                let held = std::mem::take(&mut self.device.lock().pending_attachments);
                if held.is_empty() {
                    Answer::NoContentAtEnd
                } else {
                    self.stream_attachments(respond, held)
                }
            }
            Ok(Reply::Directives(directives)) => self.stream_directives(respond, directives),
            Err(e) => self.fail(Answer::Undecided, respond, &e, true),
        }
    }

    /// Fault rules keyed on the event's name, decided now that it is known.
    async fn event_fault(&self, ticket: u64, ev: &EventMessage, respond: &mut SendResponse<Bytes>) -> Option<Answer> {
        use crate::avs::fault::{self, Next};
        let name = &ev.qualified();
        let point = crate::faults::Point {
            face: Face::Avs,
            device: Some(&self.device.id),
            path: "/v20160207/events",
            event: Some(name),
            connection: self.conn.sequence(),
            stream: Some(self.stream.div_ceil(2)),
        };
        let fired = self
            .state
            .faults
            .fire_at(&self.state.journal, &point, Some(self.conn.id), ticket)?;
        let next = fault::apply(
            &self.state,
            &self.conn,
            fired,
            Face::Avs,
            Some(&self.device.id),
            respond,
        )
        .await;
        match next {
            // Shaping is decided at the stream's start; here it changes nothing.
            Next::Continue | Next::Shape(_) => None,
            Next::Answered => Some(Answer::Done),
            Next::Hold => Some(Answer::Held),
            Next::ResetAfter(_, reason) => {
                respond.send_reset(reason);
                Some(Answer::Done)
            }
        }
    }

    /// Answer 200 `multipart/related` now and write `parts` (kind, part bytes
    /// builder). The last delimiter stays open: whether more follow is known
    /// only when the request body ends.
    fn stream_parts(&self, respond: &mut SendResponse<Bytes>, parts: Vec<(Record, PartBody)>) -> Answer {
        let boundary = related::new_boundary();
        let head = respond::head(StatusCode::OK, Some(&related::content_type(&boundary)));
        let Ok(mut send) = respond.send_response(head, false) else {
            return Answer::Done;
        };
        self.record(Record::new(Face::Avs, Kind::Response, "200 multipart/related").body(json!({"status": 200})));
        let _ = send.send_data(related::response_start(&boundary), false);
        let count = parts.len();
        for (i, (record, body)) in parts.into_iter().enumerate() {
            let next = if i + 1 == count {
                related::Next::Unknown
            } else {
                related::Next::More
            };
            let bytes = match &body {
                PartBody::Json(doc) => related::json_part(&boundary, doc.to_string().as_bytes(), next),
                PartBody::Attachment(cid, data) => related::attachment_part(&boundary, cid, data, next),
            };
            let _ = send.send_data(bytes, false);
            self.record(record);
        }
        Answer::Streaming { send }
    }

    /// Attachments a fault held back, delivered on this (wrong) stream.
    fn stream_attachments(&self, respond: &mut SendResponse<Bytes>, held: Vec<(String, Bytes)>) -> Answer {
        let parts = held
            .into_iter()
            .map(|(cid, data)| {
                let summary = format!("attachment {cid} ({} bytes), held back", data.len());
                (
                    Record::new(Face::Avs, Kind::Attachment, summary),
                    PartBody::Attachment(cid, data),
                )
            })
            .collect();
        self.stream_parts(respond, parts)
    }

    fn stream_directives(&self, respond: &mut SendResponse<Bytes>, directives: Vec<serde_json::Value>) -> Answer {
        let parts = directives
            .into_iter()
            .map(|d| {
                let name = |k: &str| {
                    d.pointer(&format!("/directive/header/{k}"))
                        .and_then(|v| v.as_str())
                        .unwrap_or("?")
                        .to_string()
                };
                let record = Record::new(
                    Face::Avs,
                    Kind::Directive,
                    format!("{}.{}", name("namespace"), name("name")),
                );
                (record.body(d.clone()), PartBody::Json(d))
            })
            .collect();
        self.stream_parts(respond, parts)
    }

    /// Answer with an error if nothing was sent yet; else cut the answer short.
    fn fail(&self, answer: Answer, respond: &mut SendResponse<Bytes>, e: &AvsError, metadata_seen: bool) -> Answer {
        if !metadata_seen {
            self.request_record(json!(null), "POST /v20160207/events (unreadable)");
        }
        match answer {
            Answer::Undecided | Answer::NoContentAtEnd => {
                reject(&self.state, &self.conn, respond, e, self.stream, Some(&self.device.id));
            }
            Answer::Streaming { mut send, .. } => {
                send.send_reset(h2::Reason::CANCEL);
                self.note(Kind::Reset, format!("RST_STREAM CANCEL: {e}"));
            }
            Answer::Done | Answer::Held => {}
        }
        Answer::Done
    }

    /// The body ended cleanly: send what is owed.
    fn finish(&self, answer: Answer, respond: &mut SendResponse<Bytes>) {
        match answer {
            Answer::NoContentAtEnd => {
                let _ = respond::empty(respond, StatusCode::NO_CONTENT);
                self.record(Record::new(Face::Avs, Kind::Response, "204").body(json!({"status": 204})));
            }
            Answer::Streaming { mut send, .. } => {
                // Turn the open delimiter into the closing one.
                let _ = send.send_data(related::last(), true);
                self.record(Record::new(Face::Avs, Kind::Response, "multipart/related complete"));
            }
            Answer::Undecided => {
                let e = AvsError::InvalidRequest("event body has no JSON metadata part".into());
                reject(&self.state, &self.conn, respond, &e, self.stream, Some(&self.device.id));
            }
            Answer::Done | Answer::Held => {}
        }
    }
}

fn reject(
    state: &State,
    conn: &Connection,
    respond: &mut SendResponse<Bytes>,
    e: &AvsError,
    stream: u32,
    device: Option<&str>,
) {
    conn.journal(state, error_record(&e.to_json(), e.status(), stream, device));
    let _ = respond::error(respond, e);
}

/// Read and drop the rest of a body so the client can finish sending it,
/// up to `limit` bytes (`avs.max_event_bytes`); past that, RST_STREAM
/// NO_ERROR (RFC 9113 §8.1: the answer already went out whole).
async fn drain(conn: &Connection, mut body: RecvStream, respond: &mut SendResponse<Bytes>, limit: u64) {
    let mut seen = 0u64;
    while let Some(Ok(chunk)) = body.data().await {
        let _ = body.flow_control().release_capacity(chunk.len());
        seen = seen.saturating_add(chunk.len() as u64);
        if seen > limit {
            respond::stop_upload(conn, respond).await;
            return;
        }
    }
}
