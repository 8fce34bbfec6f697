//! Watches the HTTP/2 frames a client sends, without touching them.
//!
//! The `h2` crate answers PING frames itself and does not surface them, but
//! a PING frame counts as connection activity for AVS (reference avs.md §7).
//! So the connection's read side passes through this wrapper, which parses
//! only frame headers (9 bytes each, payloads skipped) and reports client
//! PINGs. Later fault rules can hook in at the same place.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

const PREFACE_LEN: usize = 24;
const FRAME_PING: u8 = 0x6;
const FLAG_ACK: u8 = 0x1;

/// What the sniffer reports.
pub trait FrameObserver: Send + Sync + 'static {
    /// The client sent a PING frame (not an ACK).
    fn ping(&self);
}

/// Incremental frame-header tracker.
#[derive(Debug, Default)]
pub struct FrameTracker {
    preface_left: usize,
    header: [u8; 9],
    header_len: usize,
    skip: usize,
}

impl FrameTracker {
    pub fn new() -> FrameTracker {
        FrameTracker {
            preface_left: PREFACE_LEN,
            ..Default::default()
        }
    }

    /// Feed bytes read from the client; calls `on_ping` per client PING.
    pub fn feed(&mut self, mut data: &[u8], mut on_ping: impl FnMut()) {
        while !data.is_empty() {
            if self.preface_left > 0 {
                let n = self.preface_left.min(data.len());
                self.preface_left -= n;
                data = &data[n..];
            } else if self.skip > 0 {
                let n = self.skip.min(data.len());
                self.skip -= n;
                data = &data[n..];
            } else {
                let n = (9 - self.header_len).min(data.len());
                self.header[self.header_len..self.header_len + n].copy_from_slice(&data[..n]);
                self.header_len += n;
                data = &data[n..];
                if self.header_len == 9 {
                    self.header_len = 0;
                    let h = self.header;
                    self.skip = (usize::from(h[0]) << 16) | (usize::from(h[1]) << 8) | usize::from(h[2]);
                    if h[3] == FRAME_PING && h[4] & FLAG_ACK == 0 {
                        on_ping();
                    }
                }
            }
        }
    }
}

/// An I/O stream whose reads are watched by a `FrameTracker`.
pub struct Sniffed<IO> {
    io: IO,
    tracker: FrameTracker,
    observer: std::sync::Arc<dyn FrameObserver>,
}

impl<IO> Sniffed<IO> {
    pub fn new(io: IO, observer: std::sync::Arc<dyn FrameObserver>) -> Sniffed<IO> {
        Sniffed {
            io,
            tracker: FrameTracker::new(),
            observer,
        }
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for Sniffed<IO> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.io).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = result {
            let this = &mut *self;
            let observer = this.observer.clone();
            this.tracker.feed(&buf.filled()[before..], || observer.ping());
        }
        result
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Sniffed<IO> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, data)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(kind: u8, flags: u8, payload: &[u8]) -> Vec<u8> {
        let len = payload.len();
        let mut f = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags, 0, 0, 0, 0];
        f.extend_from_slice(payload);
        f
    }

    #[test]
    fn counts_client_pings_across_any_split() {
        let mut wire = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
        wire.extend(frame(0x4, 0, &[0; 6])); // SETTINGS
        wire.extend(frame(FRAME_PING, 0, &[1; 8]));
        wire.extend(frame(FRAME_PING, FLAG_ACK, &[2; 8])); // an ACK is not activity
        wire.extend(frame(0x0, 0, b"PING-looking data \x06\x00"));
        wire.extend(frame(FRAME_PING, 0, &[3; 8]));
        for split in 0..wire.len() {
            let mut t = FrameTracker::new();
            let mut pings = 0;
            t.feed(&wire[..split], || pings += 1);
            t.feed(&wire[split..], || pings += 1);
            assert_eq!(pings, 2, "split at {split}");
        }
    }
}
