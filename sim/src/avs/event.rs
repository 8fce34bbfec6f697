//! An event request body: the streaming reader that finds the JSON part and
//! summarises attachments, and the event message it carries. Pure code.

use crate::avs::exception::AvsError;
use crate::avs::multipart::{Event as Part, Parser, PartHeaders};
use bytes::Bytes;
use serde::Serialize;
use serde_json::Value;
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};

/// An attachment (usually audio), by size and hash: never buffered.
#[derive(Debug, Clone, Serialize)]
pub struct Attachment {
    pub name: Option<String>,
    pub content_type: Option<String>,
    pub bytes: u64,
    pub sha256: String,
}

struct Open {
    headers: PartHeaders,
    hasher: Sha256,
    bytes: u64,
}

enum Current {
    None,
    Metadata,
    Attachment(Box<Open>),
}

/// Reads an event body chunk by chunk.
pub struct EventReader {
    parser: Parser,
    max_json: usize,
    max_body: u64,
    total: u64,
    current: Current,
    json: Vec<u8>,
    metadata_seen: bool,
    parts_seen: usize,
    attachments: Vec<Attachment>,
    events: Vec<Part>,
}

impl EventReader {
    pub fn new(boundary: &str, max_json: usize, max_body: u64) -> EventReader {
        EventReader {
            parser: Parser::new(boundary),
            max_json,
            max_body,
            total: 0,
            current: Current::None,
            json: Vec::new(),
            metadata_seen: false,
            parts_seen: 0,
            attachments: Vec::new(),
            events: Vec::new(),
        }
    }

    /// Feed a chunk; returns the metadata JSON bytes once, when its part ends.
    pub fn feed(&mut self, chunk: &[u8]) -> Result<Option<Bytes>, AvsError> {
        self.total += chunk.len() as u64;
        if self.total > self.max_body {
            return Err(AvsError::InvalidRequest(format!(
                "event body exceeds the limit of {} bytes",
                self.max_body
            )));
        }
        let mut events = std::mem::take(&mut self.events);
        self.parser
            .feed(chunk, &mut events)
            .map_err(|e| AvsError::InvalidRequest(format!("malformed multipart body: {e}")))?;
        let mut metadata = None;
        for event in events.drain(..) {
            if let Some(m) = self.on_part_event(event)? {
                metadata = Some(m);
            }
        }
        self.events = events;
        Ok(metadata)
    }

    fn on_part_event(&mut self, event: Part) -> Result<Option<Bytes>, AvsError> {
        match event {
            Part::PartBegin(headers) => {
                self.parts_seen += 1;
                self.current = if self.is_metadata(&headers) {
                    self.metadata_seen = true;
                    Current::Metadata
                } else {
                    Current::Attachment(Box::new(Open {
                        headers,
                        hasher: Sha256::new(),
                        bytes: 0,
                    }))
                };
            }
            Part::Data(data) => match &mut self.current {
                Current::Metadata => {
                    if self.json.len() + data.len() > self.max_json {
                        return Err(AvsError::InvalidRequest(format!(
                            "metadata part exceeds the limit of {} bytes",
                            self.max_json
                        )));
                    }
                    self.json.extend_from_slice(&data);
                }
                Current::Attachment(open) => {
                    open.hasher.update(&data);
                    open.bytes += data.len() as u64;
                }
                Current::None => {}
            },
            Part::PartEnd => match std::mem::replace(&mut self.current, Current::None) {
                Current::Metadata => return Ok(Some(Bytes::from(std::mem::take(&mut self.json)))),
                Current::Attachment(open) => self.attachments.push(Attachment {
                    name: open.headers.name,
                    content_type: open.headers.content_type,
                    bytes: open.bytes,
                    sha256: hex::encode(open.hasher.finalize()),
                }),
                Current::None => {}
            },
            Part::End => {}
        }
        Ok(None)
    }

    /// The JSON part is the one named `metadata`; failing that the first JSON
    /// part (alexa-client names it `request`); failing that the first part.
    fn is_metadata(&self, h: &PartHeaders) -> bool {
        if self.metadata_seen {
            return false;
        }
        h.name.as_deref() == Some("metadata") || h.is_json() || self.parts_seen == 1
    }

    /// The body ended: check it was complete and had a JSON part.
    pub fn finish(&mut self) -> Result<Vec<Attachment>, AvsError> {
        self.parser
            .finish()
            .map_err(|e| AvsError::InvalidRequest(format!("malformed multipart body: {e}")))?;
        if !self.metadata_seen {
            return Err(AvsError::InvalidRequest("event body has no JSON metadata part".into()));
        }
        Ok(std::mem::take(&mut self.attachments))
    }
}

/// The event inside the metadata part.
///
/// Parsed without building a JSON tree: the header fields are read straight
/// from the text, the payload is kept as its text and parsed only by the
/// rules that read it, and the journal gets the text (`journal::Body`),
/// parsed when someone reads it. A tree per event was about a third of an
/// event's instructions (callgrind; bench/RESULTS.md).
#[derive(Debug, Clone)]
pub struct EventMessage {
    pub namespace: String,
    pub name: String,
    pub message_id: String,
    pub dialog_request_id: Option<String>,
    /// `event.payload`'s JSON text, when present and not null.
    payload: Option<Bytes>,
    /// The metadata's JSON text, as it arrived (one valid JSON document).
    pub text: Bytes,
}

/// The metadata document, fields borrowed from its text.
#[derive(serde::Deserialize)]
struct Doc<'a> {
    #[serde(borrow, default)]
    event: Option<&'a RawValue>,
    #[serde(borrow, default)]
    context: Option<&'a RawValue>,
}

#[derive(serde::Deserialize)]
struct EventDoc<'a> {
    #[serde(borrow, default)]
    header: Option<&'a RawValue>,
    #[serde(borrow, default)]
    payload: Option<&'a RawValue>,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct HeaderDoc<'a> {
    #[serde(borrow, default)]
    namespace: Option<&'a RawValue>,
    #[serde(borrow, default)]
    name: Option<&'a RawValue>,
    #[serde(borrow, default)]
    message_id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    dialog_request_id: Option<&'a RawValue>,
}

/// An object (or `null`, read as absent) inside the metadata, or `missing(what)`.
fn object<'a, T: serde::Deserialize<'a>>(raw: Option<&'a RawValue>, what: &str) -> Result<T, AvsError> {
    let raw = raw.filter(|r| r.get().starts_with('{')).ok_or_else(|| missing(what))?;
    serde_json::from_str(raw.get()).map_err(|e| AvsError::InvalidRequest(format!("{what}: {e}")))
}

impl EventMessage {
    /// Parse and check the metadata JSON; errors name the problem.
    pub fn from_json(bytes: &[u8]) -> Result<EventMessage, AvsError> {
        EventMessage::from_text(Bytes::copy_from_slice(bytes))
    }

    /// `from_json` keeping the text it parsed (shared, not copied).
    pub fn from_text(text: Bytes) -> Result<EventMessage, AvsError> {
        let doc: Doc<'_> = match serde_json::from_slice(&text) {
            Ok(doc) => doc,
            Err(e) if e.is_data() && !text.trim_ascii_start().starts_with(b"{") => return Err(missing("event")),
            Err(e) if e.is_data() => return Err(AvsError::InvalidRequest(format!("metadata: {e}"))),
            Err(e) => {
                return Err(AvsError::InvalidRequest(format!(
                    "metadata part is not valid JSON: {e}"
                )));
            }
        };
        let event: EventDoc<'_> = object(doc.event, "event")?;
        let header: HeaderDoc<'_> = object(event.header, "event.header")?;
        let field = |raw: Option<&RawValue>, name: &str| -> Result<String, AvsError> {
            let raw = raw.ok_or_else(|| missing(&format!("event.header.{name}")))?;
            serde_json::from_str::<String>(raw.get())
                .map_err(|_| AvsError::InvalidRequest(format!("event.header.{name} must be a string")))
        };
        let namespace = field(header.namespace, "namespace")?;
        let name = field(header.name, "name")?;
        if namespace.is_empty() || name.is_empty() {
            return Err(AvsError::InvalidRequest(
                "event.header.namespace and name must not be empty".into(),
            ));
        }
        // An empty messageId is accepted (alexa-client sends one on SynchronizeState).
        let message_id = field(header.message_id, "messageId")?;
        let dialog_request_id = header
            .dialog_request_id
            .and_then(|raw| serde_json::from_str::<String>(raw.get()).ok());
        let payload = match event.payload {
            // The SDK omits an empty payload (`null` reads as absent too).
            None => None,
            Some(p) if p.get().starts_with('{') => Some(text.slice_ref(p.get().as_bytes())),
            Some(_) => {
                return Err(AvsError::InvalidRequest("event.payload must be an object".into()));
            }
        };
        if doc.context.is_some_and(|c| !c.get().starts_with('[')) {
            return Err(AvsError::InvalidRequest("context must be an array".into()));
        }
        Ok(EventMessage {
            namespace,
            name,
            message_id,
            dialog_request_id,
            payload,
            text,
        })
    }

    /// `event.payload`, parsed (an empty object when absent or null).
    pub fn payload(&self) -> Value {
        self.payload
            .as_deref()
            .and_then(|p| serde_json::from_slice(p).ok())
            .unwrap_or_else(|| Value::Object(Default::default()))
    }

    /// The metadata as a journal body (the text, parsed when read).
    pub fn journal_body(&self) -> crate::journal::Body {
        crate::journal::Body::json_text(self.text.clone())
    }

    /// `Namespace.Name`.
    pub fn qualified(&self) -> String {
        format!("{}.{}", self.namespace, self.name)
    }
}

fn missing(what: &str) -> AvsError {
    AvsError::InvalidRequest(format!("{what} is missing from the event metadata"))
}

/// Read a whole body given in chunks (for tests and tools): the event and its attachments.
pub fn read_all(
    boundary: &str,
    chunks: &[&[u8]],
    max_json: usize,
    max_body: u64,
) -> Result<(EventMessage, Vec<Attachment>), AvsError> {
    let mut reader = EventReader::new(boundary, max_json, max_body);
    let mut metadata = None;
    for chunk in chunks {
        if let Some(m) = reader.feed(chunk)? {
            metadata.get_or_insert(m);
        }
    }
    let attachments = reader.finish()?;
    let metadata = metadata.ok_or_else(|| AvsError::InvalidRequest("event body has no JSON metadata part".into()))?;
    Ok((EventMessage::from_json(&metadata)?, attachments))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::avs::multipart::form;
    use proptest::prelude::*;

    const META: &[u8] = br#"{"context":[],"event":{"header":{"namespace":"System","name":"SynchronizeState","messageId":"m1"},"payload":{}}}"#;

    #[test]
    fn reads_metadata_and_hashes_audio() {
        let body = form::event_body("b", META, Some(&[7u8; 1000]));
        let (ev, att) = read_all("b", &[&body[..10], &body[10..]], 1 << 20, 1 << 20).unwrap();
        assert_eq!(ev.qualified(), "System.SynchronizeState");
        assert_eq!(ev.message_id, "m1");
        assert_eq!(att.len(), 1);
        assert_eq!(att[0].bytes, 1000);
        assert_eq!(att[0].sha256, hex::encode(Sha256::digest([7u8; 1000])));
    }

    #[test]
    fn missing_fields_are_named() {
        let err = EventMessage::from_json(br#"{"event":{"header":{"namespace":"System","name":"X"}}}"#).unwrap_err();
        assert_eq!(
            err,
            AvsError::InvalidRequest("event.header.messageId is missing from the event metadata".into())
        );
        let err = EventMessage::from_json(b"{nope").unwrap_err();
        assert!(err.to_string().starts_with("metadata part is not valid JSON"), "{err}");
        let ok =
            EventMessage::from_json(br#"{"event":{"header":{"namespace":"A","name":"B","messageId":""}}}"#).unwrap();
        assert_eq!(ok.payload(), serde_json::json!({}));
    }

    #[test]
    fn body_limit_applies_to_streamed_audio() {
        let body = form::event_body("b", META, Some(&[0u8; 5000]));
        let err = read_all("b", &[&body], 1 << 20, 4000).unwrap_err();
        assert!(err.to_string().contains("exceeds the limit"), "{err}");
    }

    proptest! {
        /// Whatever arrives, the reader answers with a value or a 400, never a panic.
        #[test]
        fn garbage_yields_400(body in proptest::collection::vec(any::<u8>(), 0..300), b in "[a-zA-Z0-9!]{1,20}") {
            match read_all(&b, &[&body], 1024, 4096) {
                Ok(_) => {}
                Err(e) => prop_assert_eq!(e.status().as_u16(), 400),
            }
        }

        #[test]
        fn framed_garbage_yields_400(meta in proptest::collection::vec(any::<u8>(), 0..200)) {
            let body = form::event_body("b", &meta, None);
            match read_all("b", &[&body], 1024, 4096) {
                Ok((ev, _)) => prop_assert!(!ev.name.is_empty()),
                Err(e) => prop_assert_eq!(e.status().as_u16(), 400),
            }
        }
    }
}
