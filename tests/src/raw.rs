//! A raw HTTP/2 client: frames written and read byte for byte, for tests
//! that must send what a well-behaved client library would never send in
//! one go (a burst of WINDOW_UPDATEs, streams beyond an announced limit)
//! or must see exactly which frames arrived, in which order.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The client connection preface (RFC 9113 §3.4).
pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
pub const DATA: u8 = 0x0;
pub const HEADERS: u8 = 0x1;
pub const RST_STREAM: u8 = 0x3;
pub const SETTINGS: u8 = 0x4;
pub const PING: u8 = 0x6;
pub const GOAWAY: u8 = 0x7;
pub const WINDOW_UPDATE: u8 = 0x8;
pub const END_STREAM: u8 = 0x1;
pub const ACK: u8 = 0x1;
pub const END_HEADERS: u8 = 0x4;

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// One frame as read from the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub kind: u8,
    pub flags: u8,
    pub stream: u32,
    pub payload: Vec<u8>,
}

impl Frame {
    /// The 32-bit big-endian word at `at` in the payload (error codes, stream ids).
    pub fn word(&self, at: usize) -> u32 {
        let b = &self.payload[at..at + 4];
        u32::from_be_bytes([b[0], b[1], b[2], b[3]])
    }

    /// The `:status` of a HEADERS frame, when HPACK encoded it from the static table.
    pub fn status(&self) -> Option<u16> {
        let statuses = [200, 204, 206, 304, 400, 404, 500];
        let first = *self.payload.first()?;
        (first & 0x80 != 0)
            .then(|| usize::from(first & 0x7f))
            .and_then(|i| i.checked_sub(8))
            .and_then(|i| statuses.get(i).copied())
    }

    /// The SETTINGS parameter `id`, if this frame carries it.
    pub fn setting(&self, id: u16) -> Option<u32> {
        self.payload.chunks_exact(6).find_map(|c| {
            (u16::from_be_bytes([c[0], c[1]]) == id).then(|| u32::from_be_bytes([c[2], c[3], c[4], c[5]]))
        })
    }
}

/// Encode one frame.
pub fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len();
    let mut f = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags];
    f.extend_from_slice(&stream.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// An HPACK integer with an `n`-bit prefix (RFC 7541 §5.1), first byte's high bits zero.
fn hpack_int(out: &mut Vec<u8>, value: usize, n: u32) {
    let max = (1usize << n) - 1;
    if value < max {
        out.push(value as u8);
        return;
    }
    out.push(max as u8);
    let mut v = value - max;
    while v >= 128 {
        out.push((v % 128 + 128) as u8);
        v /= 128;
    }
    out.push(v as u8);
}

/// A header block of literal fields without indexing, new names (RFC 7541 §6.2.2).
pub fn header_block(fields: &[(&str, &str)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, value) in fields {
        out.push(0);
        hpack_int(&mut out, name.len(), 7);
        out.extend_from_slice(name.as_bytes());
        hpack_int(&mut out, value.len(), 7);
        out.extend_from_slice(value.as_bytes());
    }
    out
}

/// A HEADERS frame for a request from a device holding `token`.
pub fn request(
    stream: u32,
    method: &str,
    path: &str,
    token: &str,
    end_stream: bool,
    extra: &[(&str, &str)],
) -> Vec<u8> {
    let auth = format!("Bearer {token}");
    let mut fields = vec![
        (":method", method),
        (":scheme", "https"),
        (":authority", "localhost"),
        (":path", path),
        ("authorization", auth.as_str()),
    ];
    fields.extend_from_slice(extra);
    let flags = END_HEADERS | if end_stream { END_STREAM } else { 0 };
    frame(HEADERS, flags, stream, &header_block(&fields))
}

/// A raw connection.
pub struct RawH2 {
    io: Box<dyn Io>,
    buf: Vec<u8>,
}

impl RawH2 {
    /// Connect over TCP (h2c prior knowledge).
    pub async fn h2c(addr: SocketAddr) -> anyhow::Result<RawH2> {
        let tcp = tokio::net::TcpStream::connect(addr).await?;
        Ok(RawH2 {
            io: Box::new(tcp),
            buf: Vec::new(),
        })
    }

    /// Connect over TLS with ALPN h2, trusting `ca`.
    pub async fn tls(addr: SocketAddr, ca: &Path) -> anyhow::Result<RawH2> {
        let tls = crate::device::tls_stream(addr, ca).await?;
        Ok(RawH2 {
            io: Box::new(tls),
            buf: Vec::new(),
        })
    }

    /// Write bytes as one write.
    pub async fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.io.write_all(bytes).await?;
        self.io.flush().await
    }

    /// The preface and an empty SETTINGS frame, to prepend to a first write.
    pub fn opening() -> Vec<u8> {
        let mut out = PREFACE.to_vec();
        out.extend(frame(SETTINGS, 0, 0, &[]));
        out
    }

    /// The next frame; `Ok(None)` at a clean end of the stream (FIN or
    /// close_notify), an error on a reset. A server SETTINGS is
    /// and a PING are acknowledged as they arrive, as a client must.
    pub async fn next(&mut self, within: Duration) -> anyhow::Result<Option<Frame>> {
        let read = tokio::time::timeout(within, self.read_frame())
            .await
            .map_err(|_| anyhow::anyhow!("no frame within {within:?}"))??;
        if let Some(f) = &read {
            if f.kind == SETTINGS && f.flags & ACK == 0 {
                self.send(&frame(SETTINGS, ACK, 0, &[])).await?;
            }
            if f.kind == PING && f.flags & ACK == 0 {
                self.send(&frame(PING, ACK, 0, &f.payload)).await?;
            }
        }
        Ok(read)
    }

    /// Frames until one matches `pred` (returned) or the stream ends (an error).
    pub async fn until(&mut self, within: Duration, mut pred: impl FnMut(&Frame) -> bool) -> anyhow::Result<Frame> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next(left).await? {
                Some(f) if pred(&f) => return Ok(f),
                Some(_) => {}
                None => anyhow::bail!("the connection ended first"),
            }
        }
    }

    async fn read_frame(&mut self) -> anyhow::Result<Option<Frame>> {
        loop {
            if self.buf.len() >= 9 {
                let len = (usize::from(self.buf[0]) << 16) | (usize::from(self.buf[1]) << 8) | usize::from(self.buf[2]);
                if self.buf.len() >= 9 + len {
                    let f: Vec<u8> = self.buf.drain(..9 + len).collect();
                    return Ok(Some(Frame {
                        kind: f[3],
                        flags: f[4],
                        stream: u32::from_be_bytes([f[5], f[6], f[7], f[8]]) & 0x7fff_ffff,
                        payload: f[9..].to_vec(),
                    }));
                }
            }
            let mut chunk = [0u8; 16384];
            let n = self.io.read(&mut chunk).await?;
            if n == 0 {
                anyhow::ensure!(self.buf.is_empty(), "the connection ended inside a frame");
                return Ok(None);
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}
