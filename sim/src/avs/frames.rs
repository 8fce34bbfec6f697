//! Watches the HTTP/2 frames a client sends, without touching them.
//!
//! The `h2` crate answers PING frames itself and does not surface them, but
//! a PING frame counts as connection activity for AVS (reference avs.md §7).
//! So the connection's read side passes through this wrapper, which parses
//! only frame headers (9 bytes each, payloads skipped) and reports client
//! PINGs. Later fault rules can hook in at the same place.

use parking_lot::Mutex;
use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
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

/// Frame-level faults on one connection: client PINGs dropped before `h2`
/// sees them (so none is answered), and raw frames written between `h2`'s
/// own (a SETTINGS change, a GOAWAY with a chosen last-stream-id).
#[derive(Debug, Default)]
pub struct FrameControl {
    drop_pings: AtomicBool,
    /// Client SETTINGS ACKs to hide from `h2` (one per injected SETTINGS).
    swallow_acks: AtomicU32,
    inject: Mutex<VecDeque<u8>>,
    /// Fail the connection once the injected bytes are out (after a raw GOAWAY).
    close_after_inject: AtomicBool,
}

impl FrameControl {
    /// Stop answering PING frames.
    pub fn drop_pings(&self) {
        self.drop_pings.store(true, Ordering::Relaxed);
    }

    /// Announce a new SETTINGS_MAX_CONCURRENT_STREAMS.
    pub fn max_concurrent_streams(&self, value: u32) {
        let mut frame = frame_header(6, 0x4, 0, 0);
        frame.extend_from_slice(&0x3u16.to_be_bytes());
        frame.extend_from_slice(&value.to_be_bytes());
        self.swallow_acks.fetch_add(1, Ordering::Relaxed);
        self.inject.lock().extend(frame);
    }

    /// Send GOAWAY with this last-stream-id and code, then drop the connection.
    pub fn goaway(&self, last_stream_id: u32, code: u32) {
        let mut frame = frame_header(8, 0x7, 0, 0);
        frame.extend_from_slice(&(last_stream_id & 0x7fff_ffff).to_be_bytes());
        frame.extend_from_slice(&code.to_be_bytes());
        self.inject.lock().extend(frame);
        self.close_after_inject.store(true, Ordering::Relaxed);
    }
}

fn frame_header(len: usize, kind: u8, flags: u8, stream: u32) -> Vec<u8> {
    let mut h = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags];
    h.extend_from_slice(&stream.to_be_bytes());
    h
}

/// The read side: follows client frames, reports PINGs, drops the frames
/// `FrameControl` asks to hide. A frame header is held back until complete.
#[derive(Debug)]
pub struct ReadFilter {
    preface_left: usize,
    header: Vec<u8>,
    body_left: usize,
    body_dropped: bool,
}

impl Default for ReadFilter {
    fn default() -> Self {
        ReadFilter {
            preface_left: PREFACE_LEN,
            header: Vec::with_capacity(9),
            body_left: 0,
            body_dropped: false,
        }
    }
}

impl ReadFilter {
    /// The bytes to pass on; `on_ping` runs for every client PING.
    pub fn filter(&mut self, mut data: &[u8], control: &FrameControl, mut on_ping: impl FnMut()) -> Vec<u8> {
        let mut kept = Vec::with_capacity(data.len());
        while !data.is_empty() {
            if self.preface_left > 0 {
                let n = self.preface_left.min(data.len());
                self.preface_left -= n;
                kept.extend_from_slice(&data[..n]);
                data = &data[n..];
                continue;
            }
            if self.body_left > 0 {
                let n = self.body_left.min(data.len());
                self.body_left -= n;
                if !self.body_dropped {
                    kept.extend_from_slice(&data[..n]);
                }
                data = &data[n..];
                continue;
            }
            let n = (9 - self.header.len()).min(data.len());
            self.header.extend_from_slice(&data[..n]);
            data = &data[n..];
            if self.header.len() < 9 {
                break;
            }
            let h = std::mem::take(&mut self.header);
            let len = (usize::from(h[0]) << 16) | (usize::from(h[1]) << 8) | usize::from(h[2]);
            let ping = h[3] == FRAME_PING && h[4] & FLAG_ACK == 0;
            let settings_ack = h[3] == 0x4 && h[4] & FLAG_ACK != 0;
            if ping {
                on_ping();
            }
            let drop = (ping && control.drop_pings.load(Ordering::Relaxed))
                || (settings_ack
                    && control
                        .swallow_acks
                        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                        .is_ok());
            if !drop {
                kept.extend_from_slice(&h);
            }
            self.body_left = len;
            self.body_dropped = drop;
        }
        kept
    }
}

/// An I/O stream whose reads are watched (and filtered) frame by frame, and
/// whose writes can carry injected frames at frame boundaries.
pub struct Sniffed<IO> {
    io: IO,
    observer: std::sync::Arc<dyn FrameObserver>,
    control: Arc<FrameControl>,
    read: ReadFilter,
    /// Write side: boundary tracking of what `h2` wrote.
    out: FrameTracker,
}

impl<IO> Sniffed<IO> {
    pub fn new(io: IO, observer: std::sync::Arc<dyn FrameObserver>, control: Arc<FrameControl>) -> Sniffed<IO> {
        let mut out = FrameTracker::new();
        out.preface_left = 0; // the server sends no preface
        Sniffed {
            io,
            observer,
            control,
            read: ReadFilter::default(),
            out,
        }
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for Sniffed<IO> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        loop {
            let before = buf.filled().len();
            std::task::ready!(Pin::new(&mut self.io).poll_read(cx, buf))?;
            let read = buf.filled()[before..].to_vec();
            if read.is_empty() {
                return Poll::Ready(Ok(())); // EOF
            }
            let this = &mut *self;
            let observer = this.observer.clone();
            let kept = this.read.filter(&read, &this.control, || observer.ping());
            buf.set_filled(before);
            buf.put_slice(&kept);
            if !kept.is_empty() {
                return Poll::Ready(Ok(()));
            }
            // Everything read was filtered out: read again rather than signal EOF.
        }
    }
}

impl<IO: AsyncWrite + Unpin> Sniffed<IO> {
    /// Write pending injected frames if at a frame boundary.
    fn poll_inject(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let at_boundary = self.out.skip == 0 && self.out.header_len == 0;
        if !at_boundary {
            return Poll::Ready(Ok(()));
        }
        loop {
            let chunk: Vec<u8> = self.control.inject.lock().iter().copied().collect();
            if chunk.is_empty() {
                if self.control.close_after_inject.load(Ordering::Relaxed) {
                    std::task::ready!(Pin::new(&mut self.io).poll_flush(cx))?;
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::BrokenPipe,
                        "closed after an injected GOAWAY",
                    )));
                }
                return Poll::Ready(Ok(()));
            }
            let n = std::task::ready!(Pin::new(&mut self.io).poll_write(cx, &chunk))?;
            self.control.inject.lock().drain(..n);
        }
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Sniffed<IO> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        std::task::ready!(self.poll_inject(cx))?;
        let n = std::task::ready!(Pin::new(&mut self.io).poll_write(cx, data))?;
        self.out.feed(&data[..n], || {});
        Poll::Ready(Ok(n))
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        std::task::ready!(self.poll_inject(cx))?;
        Pin::new(&mut self.io).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
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

    #[test]
    fn dropped_pings_and_swallowed_acks_vanish_across_any_split() {
        let mut wire = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
        let settings = frame(0x4, 0, &[0; 6]);
        let ping = frame(FRAME_PING, 0, &[1; 8]);
        let ack = frame(0x4, FLAG_ACK, &[]);
        let data = frame(0x0, 0, b"payload");
        for f in [&settings, &ping, &ack, &data, &ack] {
            wire.extend_from_slice(f);
        }
        let mut want = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
        for f in [&settings, &data, &ack] {
            want.extend_from_slice(f);
        }
        for split in 0..wire.len() {
            let control = FrameControl::default();
            control.drop_pings();
            control.swallow_acks.store(1, Ordering::Relaxed);
            let mut filter = ReadFilter::default();
            let mut pings = 0;
            let mut got = filter.filter(&wire[..split], &control, || pings += 1);
            got.extend(filter.filter(&wire[split..], &control, || pings += 1));
            assert_eq!(got, want, "split at {split}");
            assert_eq!(pings, 1);
        }
    }
}
