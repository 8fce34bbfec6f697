//! A client-side reader of `multipart/related` answers, written
//! independently of the simulator's encoder and following the AVS Device
//! SDK's rules: one optional leading CRLF, then `--B` CRLF; a part ends at
//! CRLF `--B`; then CRLF means another part, `--` the end.

/// One part of an answer.
#[derive(Debug, Clone)]
pub struct Part {
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Part {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("part body is JSON")
    }
}

/// The boundary of a content-type, as the SDK extracts it: everything after
/// `boundary=` up to the next `;`, not unquoted.
pub fn sdk_boundary(content_type: &str) -> Option<String> {
    let at = content_type.find("boundary=")? + "boundary=".len();
    let rest = &content_type[at..];
    Some(rest.split(';').next().unwrap_or(rest).trim().to_string())
}

/// Incremental reader.
pub struct Reader {
    boundary: String,
    buf: Vec<u8>,
    started: bool,
    pub ended: bool,
}

impl Reader {
    pub fn new(boundary: &str) -> Reader {
        Reader {
            boundary: boundary.to_string(),
            buf: Vec::new(),
            started: false,
            ended: false,
        }
    }

    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The next complete part, if the bytes so far hold one.
    pub fn next_part(&mut self) -> Option<Part> {
        if !self.started {
            let open = format!("--{}\r\n", self.boundary);
            let skip = if self.buf.starts_with(b"\r\n") { 2 } else { 0 };
            if self.buf.len() < skip + open.len() {
                return None;
            }
            assert_eq!(
                &self.buf[skip..skip + open.len()],
                open.as_bytes(),
                "answer must start with the boundary"
            );
            self.buf.drain(..skip + open.len());
            self.started = true;
        }
        if self.buf.starts_with(b"--") {
            self.ended = true;
        }
        if self.ended {
            return None;
        }
        let delim = format!("\r\n--{}", self.boundary);
        let end = find(&self.buf, delim.as_bytes())?;
        let part_bytes: Vec<u8> = self.buf.drain(..end + delim.len()).collect();
        let raw = &part_bytes[..end];
        let split = find(raw, b"\r\n\r\n")
            .map(|i| (i, 4))
            .or_else(|| raw.starts_with(b"\r\n").then_some((0, 2)))?;
        let headers = String::from_utf8_lossy(&raw[..split.0])
            .split("\r\n")
            .filter(|l| !l.is_empty())
            .filter_map(|l| {
                l.split_once(':')
                    .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            })
            .collect();
        let body = raw[split.0 + split.1..].to_vec();
        if self.buf.starts_with(b"--") {
            self.ended = true;
        } else if self.buf.starts_with(b"\r\n") {
            self.buf.drain(..2);
        }
        Some(Part { headers, body })
    }
}

fn find(h: &[u8], n: &[u8]) -> Option<usize> {
    h.windows(n.len()).position(|w| w == n)
}
