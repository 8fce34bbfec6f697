//! The AVS multipart framing, both directions. Pure code, no I/O.
//!
//! Written by hand rather than with `multer`: AVS needs leniency that general
//! parsers refuse (a `!` in the boundary, a leading CRLF, JSON parts not
//! named `metadata`), and the response side must control exactly which bytes
//! go into each write (each part flushed together with the delimiter that
//! follows it, an unquoted boundary that is not the last parameter), which
//! is what the AVS Device SDK's parser depends on (reference avs.md §4, §5).

use bytes::{Bytes, BytesMut};

/// Largest header block of one part.
const MAX_PART_HEADERS: usize = 8 * 1024;

/// Why a multipart body could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MultipartError {
    #[error("multipart boundary is {0} characters long; RFC 2046 allows at most 70")]
    BoundaryTooLong(usize),
    #[error("content-type has no boundary parameter")]
    NoBoundary,
    #[error("multipart body has no delimiter line \"--{0}\"")]
    NoDelimiter(String),
    #[error("multipart part headers exceed {MAX_PART_HEADERS} bytes")]
    HeadersTooLong,
    #[error("malformed multipart part header line {0:?}")]
    BadHeader(String),
    #[error("multipart delimiter is followed by {0:?}, expected CRLF or \"--\"")]
    BadDelimiter(String),
    #[error("multipart body ended before the closing delimiter \"--{0}--\"")]
    Truncated(String),
}

/// The headers of one part, the ones AVS cares about.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PartHeaders {
    /// `name=` of Content-Disposition.
    pub name: Option<String>,
    /// `filename=` of Content-Disposition (ignored, but kept for the journal).
    pub filename: Option<String>,
    /// Content-Type, as sent.
    pub content_type: Option<String>,
    /// Content-ID with angle brackets stripped.
    pub content_id: Option<String>,
}

impl PartHeaders {
    /// Whether the part's media type is JSON (parsed loosely: `application/json;`
    /// and `application/json; charset=UTF-8` both count).
    pub fn is_json(&self) -> bool {
        self.content_type
            .as_deref()
            .is_some_and(|ct| media_type(ct).eq_ignore_ascii_case("application/json"))
    }
}

/// What the parser found in the bytes fed so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    PartBegin(PartHeaders),
    Data(Bytes),
    PartEnd,
    /// The closing delimiter; anything after it is epilogue.
    End,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Before the first delimiter (preamble, e.g. the SDK's leading CRLF).
    Preamble,
    /// Just after a delimiter: CRLF (a part follows) or `--` (the end).
    AfterDelimiter,
    Headers,
    Body,
    Done,
}

/// A streaming parser: feed it chunks split anywhere, get events back.
#[derive(Debug)]
pub struct Parser {
    /// `\r\n--` + boundary: the delimiter as it appears between parts.
    delimiter: Vec<u8>,
    state: State,
    buf: BytesMut,
}

impl Parser {
    /// A parser for `boundary` (any non-empty string, as AVS accepts).
    pub fn new(boundary: &str) -> Parser {
        let mut delimiter = b"\r\n--".to_vec();
        delimiter.extend_from_slice(boundary.as_bytes());
        // The first delimiter may lack the CRLF: pretend the body started with one.
        Parser {
            delimiter,
            state: State::Preamble,
            buf: BytesMut::from(&b"\r\n"[..]),
        }
    }

    fn boundary(&self) -> String {
        String::from_utf8_lossy(&self.delimiter[4..]).into_owned()
    }

    /// Feed the next chunk of the body.
    pub fn feed(&mut self, chunk: &[u8], out: &mut Vec<Event>) -> Result<(), MultipartError> {
        if self.state == State::Done {
            return Ok(()); // epilogue
        }
        self.buf.extend_from_slice(chunk);
        while self.step(out)? {}
        Ok(())
    }

    /// The body has ended: it must have been complete.
    pub fn finish(&mut self) -> Result<(), MultipartError> {
        match self.state {
            State::Done => Ok(()),
            State::Preamble => Err(MultipartError::NoDelimiter(self.boundary())),
            _ => Err(MultipartError::Truncated(self.boundary())),
        }
    }

    /// Whether the closing delimiter has been seen.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Advance one state; `Ok(false)` means more input is needed.
    fn step(&mut self, out: &mut Vec<Event>) -> Result<bool, MultipartError> {
        match self.state {
            State::Preamble => Ok(self.skip_preamble()),
            State::AfterDelimiter => self.after_delimiter(out),
            State::Headers => self.headers(out),
            State::Body => Ok(self.body(out)),
            State::Done => Ok(false),
        }
    }

    fn skip_preamble(&mut self) -> bool {
        match find(&self.buf, &self.delimiter) {
            Some(at) => {
                let _ = self.buf.split_to(at + self.delimiter.len());
                self.state = State::AfterDelimiter;
                true
            }
            None => {
                // Keep only what could still be the start of a delimiter.
                let keep = self.delimiter.len() - 1;
                if self.buf.len() > keep {
                    let _ = self.buf.split_to(self.buf.len() - keep);
                }
                false
            }
        }
    }

    fn after_delimiter(&mut self, out: &mut Vec<Event>) -> Result<bool, MultipartError> {
        // Transport padding (spaces, tabs) may follow a delimiter (RFC 2046).
        let pad = self.buf.iter().take_while(|b| **b == b' ' || **b == b'\t').count();
        if self.buf.len() < pad + 2 {
            return Ok(false);
        }
        match &self.buf[pad..pad + 2] {
            b"\r\n" => {
                let _ = self.buf.split_to(pad + 2);
                self.state = State::Headers;
                Ok(true)
            }
            b"--" => {
                self.buf.clear();
                self.state = State::Done;
                out.push(Event::End);
                Ok(false)
            }
            other => Err(MultipartError::BadDelimiter(
                String::from_utf8_lossy(other).into_owned(),
            )),
        }
    }

    fn headers(&mut self, out: &mut Vec<Event>) -> Result<bool, MultipartError> {
        // An empty header block is a bare CRLF.
        let end = if self.buf.starts_with(b"\r\n") {
            Some(0)
        } else {
            find(&self.buf, b"\r\n\r\n").map(|i| i + 2)
        };
        let Some(end) = end else {
            if self.buf.len() > MAX_PART_HEADERS {
                return Err(MultipartError::HeadersTooLong);
            }
            return Ok(false);
        };
        if end > MAX_PART_HEADERS {
            return Err(MultipartError::HeadersTooLong);
        }
        let block = self.buf.split_to(end + 2);
        let headers = parse_part_headers(&block[..end])?;
        out.push(Event::PartBegin(headers));
        self.state = State::Body;
        Ok(true)
    }

    fn body(&mut self, out: &mut Vec<Event>) -> bool {
        match find(&self.buf, &self.delimiter) {
            Some(at) => {
                if at > 0 {
                    out.push(Event::Data(self.buf.split_to(at).freeze()));
                }
                let _ = self.buf.split_to(self.delimiter.len());
                out.push(Event::PartEnd);
                self.state = State::AfterDelimiter;
                true
            }
            None => {
                // Everything that cannot be the start of a delimiter is data.
                let safe = safe_prefix(&self.buf, &self.delimiter);
                if safe > 0 {
                    out.push(Event::Data(self.buf.split_to(safe).freeze()));
                }
                false
            }
        }
    }
}

/// Length of the prefix of `buf` that cannot begin `delimiter`.
fn safe_prefix(buf: &[u8], delimiter: &[u8]) -> usize {
    let start = buf.len().saturating_sub(delimiter.len() - 1);
    (start..buf.len())
        .find(|&i| delimiter.starts_with(&buf[i..]))
        .unwrap_or(buf.len())
}

/// Where `needle` first occurs: memchr's SIMD substring search (the boundary
/// search was the multipart parser's main cost per event, callgrind).
fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return None;
    }
    memchr::memmem::find(haystack, needle)
}

fn parse_part_headers(block: &[u8]) -> Result<PartHeaders, MultipartError> {
    let text = String::from_utf8_lossy(block);
    let mut headers = PartHeaders::default();
    for line in text.split("\r\n").filter(|l| !l.is_empty()) {
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| MultipartError::BadHeader(line.to_string()))?;
        let value = value.trim();
        match name.trim().to_ascii_lowercase().as_str() {
            "content-disposition" => {
                headers.name = param(value, "name");
                headers.filename = param(value, "filename");
            }
            "content-type" => headers.content_type = Some(value.to_string()),
            "content-id" => headers.content_id = Some(value.trim_start_matches('<').trim_end_matches('>').to_string()),
            _ => {}
        }
    }
    Ok(headers)
}

/// The media type of a Content-Type value, without parameters.
pub fn media_type(content_type: &str) -> &str {
    content_type.split(';').next().unwrap_or("").trim()
}

/// A parameter of a header value (`boundary`, `name`, ...), quoted or not.
pub fn param(value: &str, key: &str) -> Option<String> {
    value.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        if !k.trim().eq_ignore_ascii_case(key) {
            return None;
        }
        let v = v.trim();
        let v = v.strip_prefix('"').and_then(|v| v.strip_suffix('"')).unwrap_or(v);
        Some(v.to_string())
    })
}

/// Longest boundary RFC 2046 §5.1.1 allows.
pub const MAX_BOUNDARY: usize = 70;

/// The boundary of a `multipart/*` Content-Type (1 to 70 characters).
pub fn boundary(content_type: &str) -> Result<String, MultipartError> {
    let b = param(content_type, "boundary")
        .filter(|b| !b.is_empty())
        .ok_or(MultipartError::NoBoundary)?;
    if b.len() > MAX_BOUNDARY {
        return Err(MultipartError::BoundaryTooLong(b.len()));
    }
    Ok(b)
}

/// The response side: `multipart/related` as AVS writes it.
pub mod related {
    use bytes::{BufMut, Bytes, BytesMut};

    /// A fresh boundary of token characters only.
    pub fn new_boundary() -> String {
        format!("avs-sim-{}", uuid::Uuid::new_v4().simple())
    }

    /// The Content-Type: boundary unquoted and not the last parameter,
    /// `type` unquoted, as real AVS sends it.
    pub fn content_type(boundary: &str) -> String {
        format!("multipart/related; boundary={boundary}; type=application/json")
    }

    /// The first bytes of a downchannel: CRLF `--B` CRLF.
    pub fn downchannel_start(boundary: &str) -> Bytes {
        Bytes::from(format!("\r\n--{boundary}\r\n"))
    }

    /// The first bytes of an event response: `--B` CRLF.
    pub fn response_start(boundary: &str) -> Bytes {
        Bytes::from(format!("--{boundary}\r\n"))
    }

    /// What follows a part's delimiter.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Next {
        /// More parts follow: CRLF `--B` CRLF.
        More,
        /// This was the last part: CRLF `--B--` CRLF.
        Last,
        /// Not yet known: CRLF `--B`; later `more()` or `last()` completes it.
        Unknown,
    }

    /// A JSON part followed by its delimiter, in one buffer, so the device
    /// can dispatch the part as soon as it arrives.
    pub fn json_part(boundary: &str, json: &[u8], next: Next) -> Bytes {
        part(
            boundary,
            "Content-Type: application/json; charset=UTF-8\r\n",
            json,
            next,
        )
    }

    /// A binary attachment part, referenced from a directive as `cid:<id>`.
    pub fn attachment_part(boundary: &str, content_id: &str, data: &[u8], next: Next) -> Bytes {
        let headers = format!("Content-Type: application/octet-stream\r\nContent-ID: <{content_id}>\r\n");
        part(boundary, &headers, data, next)
    }

    /// Completes a `Next::Unknown` delimiter: another part follows.
    pub fn more() -> Bytes {
        Bytes::from_static(b"\r\n")
    }

    /// Completes a `Next::Unknown` delimiter: the body ends.
    pub fn last() -> Bytes {
        Bytes::from_static(b"--\r\n")
    }

    fn part(boundary: &str, headers: &str, body: &[u8], next: Next) -> Bytes {
        let mut out = BytesMut::with_capacity(headers.len() + body.len() + boundary.len() + 12);
        out.put_slice(headers.as_bytes());
        out.put_slice(b"\r\n");
        out.put_slice(body);
        out.put_slice(b"\r\n--");
        out.put_slice(boundary.as_bytes());
        match next {
            Next::More => out.put_slice(b"\r\n"),
            Next::Last => out.put_slice(b"--\r\n"),
            Next::Unknown => {}
        }
        out.freeze()
    }
}

/// The request side, for clients and tests: `multipart/form-data` as the SDK writes it.
pub mod form {
    use bytes::{BufMut, Bytes, BytesMut};

    /// A whole event body: leading CRLF, `metadata` JSON, optional `audio`.
    pub fn event_body(boundary: &str, metadata: &[u8], audio: Option<&[u8]>) -> Bytes {
        let mut out = BytesMut::new();
        out.put_slice(format!("\r\n--{boundary}\r\n").as_bytes());
        out.put_slice(b"Content-Disposition: form-data; name=\"metadata\"\r\nContent-Type: application/json\r\n\r\n");
        out.put_slice(metadata);
        if let Some(audio) = audio {
            out.put_slice(format!("\r\n--{boundary}\r\n").as_bytes());
            out.put_slice(
                b"Content-Disposition: form-data; name=\"audio\"\r\nContent-Type: application/octet-stream\r\n\r\n",
            );
            out.put_slice(audio);
        }
        out.put_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        out.freeze()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Parse a whole body fed in the given chunks; returns (headers, data) per part.
    fn parse_chunks(boundary: &str, chunks: &[&[u8]]) -> Result<Vec<(PartHeaders, Vec<u8>)>, MultipartError> {
        let mut parser = Parser::new(boundary);
        let mut events = Vec::new();
        for c in chunks {
            parser.feed(c, &mut events)?;
        }
        parser.finish()?;
        let mut parts: Vec<(PartHeaders, Vec<u8>)> = Vec::new();
        for e in events {
            match e {
                Event::PartBegin(h) => parts.push((h, Vec::new())),
                Event::Data(d) => parts.last_mut().expect("data inside a part").1.extend_from_slice(&d),
                Event::PartEnd | Event::End => {}
            }
        }
        Ok(parts)
    }

    #[test]
    fn sdk_body_with_leading_crlf_and_odd_boundary() {
        let body = form::event_body("WhooHooZeerOoonie!", br#"{"event":{}}"#, Some(b"\x00\x01audio"));
        let parts = parse_chunks("WhooHooZeerOoonie!", &[&body]).unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].0.name.as_deref(), Some("metadata"));
        assert!(parts[0].0.is_json());
        assert_eq!(parts[0].1, br#"{"event":{}}"#);
        assert_eq!(parts[1].0.name.as_deref(), Some("audio"));
        assert_eq!(parts[1].1, b"\x00\x01audio");
    }

    #[test]
    fn no_leading_crlf_filename_and_charset() {
        let body = b"--b\r\nContent-Disposition: form-data; name=\"request\"; filename=\"request\"\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n{}\r\n--b--\r\n";
        let parts = parse_chunks("b", &[body]).unwrap();
        assert_eq!(parts[0].0.name.as_deref(), Some("request"));
        assert_eq!(parts[0].0.filename.as_deref(), Some("request"));
        assert!(parts[0].0.is_json());
    }

    #[test]
    fn truncated_and_missing_delimiter_are_errors() {
        assert_eq!(
            parse_chunks("b", &[b"hello"]),
            Err(MultipartError::NoDelimiter("b".into()))
        );
        assert_eq!(
            parse_chunks("b", &[b"--b\r\n\r\nabc"]),
            Err(MultipartError::Truncated("b".into()))
        );
        assert!(matches!(
            parse_chunks("b", &[b"--bXY"]),
            Err(MultipartError::BadDelimiter(_))
        ));
    }

    #[test]
    fn boundaries_longer_than_rfc_2046_allows_are_refused() {
        let ct = |n: usize| format!("multipart/form-data; boundary=\"{}\"", "b".repeat(n));
        assert_eq!(boundary(&ct(70)).unwrap().len(), 70);
        assert!(matches!(boundary(&ct(71)), Err(MultipartError::BoundaryTooLong(71))));
        assert!(boundary(&ct(71)).unwrap_err().to_string().contains("at most 70"));
    }

    #[test]
    fn boundary_parameter_parsing() {
        assert_eq!(boundary("multipart/form-data; boundary=abc").unwrap(), "abc");
        assert_eq!(boundary("multipart/form-data; boundary=\"a b\"; x=y").unwrap(), "a b");
        assert_eq!(boundary("multipart/form-data"), Err(MultipartError::NoBoundary));
        assert_eq!(
            related::content_type("B"),
            "multipart/related; boundary=B; type=application/json"
        );
    }

    #[test]
    fn related_framing_matches_the_reference() {
        assert_eq!(&related::downchannel_start("B")[..], b"\r\n--B\r\n");
        assert_eq!(&related::response_start("B")[..], b"--B\r\n");
        let part = related::json_part("B", b"{}", related::Next::More);
        assert_eq!(
            &part[..],
            b"Content-Type: application/json; charset=UTF-8\r\n\r\n{}\r\n--B\r\n"
        );
        let last = related::json_part("B", b"{}", related::Next::Last);
        assert!(last.ends_with(b"\r\n--B--\r\n"));
        let open = related::json_part("B", b"{}", related::Next::Unknown);
        assert!(open.ends_with(b"\r\n--B"));
    }

    fn boundary_strategy() -> impl Strategy<Value = String> {
        // Any printable non-space ASCII, including AVS's `!`.
        "[!-~]{1,70}".prop_filter("no CR/LF", |b| !b.contains('\r'))
    }

    proptest! {
        #[test]
        fn round_trip_any_split(
            b in boundary_strategy(),
            meta in proptest::collection::vec(any::<u8>(), 0..200),
            audio in proptest::collection::vec(any::<u8>(), 0..600),
            cuts in proptest::collection::vec(any::<usize>(), 0..8),
        ) {
            let mut needle = b"\r\n--".to_vec();
            needle.extend_from_slice(b.as_bytes());
            // Content that contains the delimiter cannot be framed by any encoder.
            prop_assume!(find(&meta, &needle).is_none() && find(&audio, &needle).is_none());
            prop_assume!(!meta.ends_with(b"\r") && !audio.ends_with(b"\r"));
            let body = form::event_body(&b, &meta, Some(&audio));
            let mut points: Vec<usize> = cuts.iter().map(|c| c % (body.len() + 1)).collect();
            points.sort_unstable();
            let mut chunks = Vec::new();
            let mut last = 0;
            for p in points { chunks.push(&body[last..p]); last = p; }
            chunks.push(&body[last..]);
            let parts = parse_chunks(&b, &chunks).unwrap();
            prop_assert_eq!(parts.len(), 2);
            prop_assert_eq!(&parts[0].1, &meta);
            prop_assert_eq!(&parts[1].1, &audio);
        }

        #[test]
        fn garbage_never_panics(b in boundary_strategy(), body in proptest::collection::vec(any::<u8>(), 0..400), split in any::<usize>()) {
            let at = split % (body.len() + 1);
            let _ = parse_chunks(&b, &[&body[..at], &body[at..]]);
        }

        #[test]
        fn garbage_with_delimiters_never_panics(
            b in "[a-z]{1,5}",
            pieces in proptest::collection::vec(prop_oneof![
                Just("\r\n".to_string()), Just("--".to_string()), Just(":".to_string()),
                Just("Content-Type: application/json\r\n".to_string()), "[ -~]{0,10}"], 0..30),
        ) {
            let mut body = String::new();
            for p in &pieces { body.push_str(p); if p == "--" { body.push_str(&b); } }
            let _ = parse_chunks(&b, &[body.as_bytes()]);
        }
    }
}
