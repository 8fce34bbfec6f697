//! The HTTP/2 frame layer under `h2`: what `h2` cannot do or does not show.
//!
//! - **Watching**: `h2` answers PING frames itself and does not surface them,
//!   but a PING frame counts as connection activity for AVS (reference
//!   avs.md §7), so client frame headers are parsed (payloads skipped) and
//!   PINGs reported.
//! - **Hiding**: a `stop_ping_acks` fault hides client PINGs from `h2`, and
//!   the client's ACK of an injected SETTINGS is hidden (`h2` never sent it).
//! - **Injecting**: frames `h2` has no API for (a SETTINGS change, a GOAWAY
//!   with a chosen last-stream-id) are written between `h2`'s own frames.
//! - **Closing in order** after an injected GOAWAY (`GOAWAY_LINGER`).
//!
//! The read side works in place on the caller's buffer and never hands back
//! more than it read (see `ReadFilter`).

use futures::task::AtomicWaker;
use parking_lot::Mutex;
use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

const PREFACE_LEN: usize = 24;
const FRAME_PING: u8 = 0x6;
const FRAME_SETTINGS: u8 = 0x4;
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
    /// Bytes until the end of the frame being written (0 at a boundary).
    /// While the header is incomplete and its length unknown, the bytes
    /// that complete the header.
    fn to_boundary(&self) -> usize {
        match self.header_len {
            0 => self.skip,
            n if n >= 3 => {
                let h = &self.header;
                let len = (usize::from(h[0]) << 16) | (usize::from(h[1]) << 8) | usize::from(h[2]);
                9 - n + len
            }
            n => 9 - n,
        }
    }

    /// A tracker for a client's bytes, which start with the connection preface.
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

/// How long a connection lingers after an injected GOAWAY: the write side
/// is shut down at once, and what the client still sends is read and
/// discarded until it closes or this much time has passed. Closing with
/// unread bytes in the socket would make the kernel send a TCP RST, which
/// can destroy the GOAWAY before the client reads it (RFC 9113 §6.8 asks
/// for an orderly close after GOAWAY).
pub const GOAWAY_LINGER: std::time::Duration = std::time::Duration::from_secs(2);

/// At most this many injected bytes wait for the client (each injection is
/// a frame of at most 17 bytes; a GOAWAY is always let through, once).
const MAX_INJECT: usize = 4096;

/// Frame-level faults on one connection: client PINGs dropped before `h2`
/// sees them (so none is answered), and raw frames written between `h2`'s
/// own (a SETTINGS change, a GOAWAY with a chosen last-stream-id).
#[derive(Debug)]
pub struct FrameControl {
    drop_pings: AtomicBool,
    /// Client SETTINGS ACKs to hide from `h2` (one per injected SETTINGS).
    swallow_acks: AtomicU32,
    inject: Mutex<VecDeque<u8>>,
    /// Shut the connection down once the injected bytes are out (after a GOAWAY).
    close_after_inject: AtomicBool,
    /// SETTINGS_MAX_CONCURRENT_STREAMS values sent but not yet acknowledged.
    announced: Mutex<VecDeque<u32>>,
    /// The stream limit the client has acknowledged (`u32::MAX`: only `h2`'s own).
    max_streams: AtomicU32,
    /// The connection task, woken when frames are queued so they leave even
    /// on an idle connection (`h2` flushes its I/O whenever it is polled).
    task: AtomicWaker,
}

impl Default for FrameControl {
    fn default() -> Self {
        FrameControl {
            drop_pings: AtomicBool::new(false),
            swallow_acks: AtomicU32::new(0),
            inject: Mutex::new(VecDeque::new()),
            close_after_inject: AtomicBool::new(false),
            announced: Mutex::new(VecDeque::new()),
            max_streams: AtomicU32::new(u32::MAX),
            task: AtomicWaker::new(),
        }
    }
}

impl FrameControl {
    /// Stop answering PING frames.
    pub fn drop_pings(&self) {
        self.drop_pings.store(true, Ordering::Relaxed);
    }

    /// Announce a new SETTINGS_MAX_CONCURRENT_STREAMS. It is enforced once
    /// the client acknowledges it (RFC 9113 §6.5.3): from then on a stream
    /// beyond it is refused (`max_streams`).
    /// `false` (nothing queued) when `MAX_INJECT` bytes already wait for a
    /// client that is not reading.
    pub fn max_concurrent_streams(&self, value: u32) -> bool {
        if self.inject.lock().len() >= MAX_INJECT {
            return false;
        }
        let mut frame = frame_header(6, 0x4, 0, 0);
        frame.extend_from_slice(&0x3u16.to_be_bytes());
        frame.extend_from_slice(&value.to_be_bytes());
        // Queue the value before the frame can leave, so the ACK finds it.
        self.announced.lock().push_back(value);
        self.swallow_acks.fetch_add(1, Ordering::Relaxed);
        self.inject.lock().extend(frame);
        self.task.wake();
        true
    }

    /// The concurrent-stream limit the client has acknowledged, if one was announced.
    pub fn max_streams(&self) -> Option<u32> {
        let n = self.max_streams.load(Ordering::Relaxed);
        (n != u32::MAX).then_some(n)
    }

    /// Send GOAWAY with this last-stream-id and code, then close in order
    /// (write side shut, reads discarded until the peer closes or
    /// `GOAWAY_LINGER`). Nothing `h2` writes after it reaches the client,
    /// so the frames a client sees do not depend on timing.
    pub fn goaway(&self, last_stream_id: u32, code: u32) {
        if self.close_after_inject.load(Ordering::Relaxed) {
            return; // one GOAWAY is all a connection gets
        }
        let mut frame = frame_header(8, 0x7, 0, 0);
        frame.extend_from_slice(&(last_stream_id & 0x7fff_ffff).to_be_bytes());
        frame.extend_from_slice(&code.to_be_bytes());
        self.inject.lock().extend(frame);
        self.close_after_inject.store(true, Ordering::Relaxed);
        self.task.wake();
    }

    /// Whether a GOAWAY was injected (the connection is closing in order).
    pub fn goaway_sent(&self) -> bool {
        self.close_after_inject.load(Ordering::Relaxed)
    }

    /// Whether a client frame with this header is hidden from `h2`;
    /// `on_ping` runs for every client PING, hidden or not.
    fn hides(&self, h: &[u8; 9], on_ping: &mut impl FnMut()) -> bool {
        let ping = h[3] == FRAME_PING && h[4] & FLAG_ACK == 0;
        if ping {
            on_ping();
            return self.drop_pings.load(Ordering::Relaxed);
        }
        let settings_ack = h[3] == FRAME_SETTINGS && h[4] & FLAG_ACK != 0;
        let swallowed = settings_ack
            && self
                .swallow_acks
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                .is_ok();
        if swallowed {
            if let Some(v) = self.announced.lock().pop_front() {
                self.max_streams.store(v, Ordering::Relaxed);
            }
        }
        swallowed
    }
}

fn frame_header(len: usize, kind: u8, flags: u8, stream: u32) -> Vec<u8> {
    let mut h = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags];
    h.extend_from_slice(&stream.to_be_bytes());
    h
}

/// The read side: follows client frames, reports PINGs, drops the frames
/// `FrameControl` asks to hide.
///
/// It works in place on the caller's buffer: bytes are read once, straight
/// into it, and only the frames it hides are cut out (so it never hands
/// back more than was read). A frame header split across reads is held
/// here until complete, then handed back before anything else.
#[derive(Debug)]
pub struct ReadFilter {
    preface_left: usize,
    /// An incomplete frame header, not yet handed back.
    header: [u8; 9],
    header_len: usize,
    body_left: usize,
    body_dropped: bool,
    /// A complete, kept header still to hand back: `header[pending..9]`.
    pending: Option<usize>,
}

impl Default for ReadFilter {
    fn default() -> Self {
        ReadFilter {
            preface_left: PREFACE_LEN,
            header: [0; 9],
            header_len: 0,
            body_left: 0,
            body_dropped: false,
            pending: None,
        }
    }
}

impl ReadFilter {
    /// Filter `region` (bytes just read) in place; returns how many bytes at
    /// its start are kept. Requires no held header (`held() == 0`).
    pub fn filter_in_place(&mut self, region: &mut [u8], control: &FrameControl, mut on_ping: impl FnMut()) -> usize {
        debug_assert_eq!(self.header_len, 0);
        let (mut r, mut w, n) = (0, 0, region.len());
        let keep = |region: &mut [u8], r: usize, w: &mut usize, k: usize| {
            if r != *w {
                region.copy_within(r..r + k, *w);
            }
            *w += k;
        };
        while r < n {
            if self.preface_left > 0 {
                let k = self.preface_left.min(n - r);
                keep(region, r, &mut w, k);
                self.preface_left -= k;
                r += k;
            } else if self.body_left > 0 {
                let k = self.body_left.min(n - r);
                if !self.body_dropped {
                    keep(region, r, &mut w, k);
                }
                self.body_left -= k;
                r += k;
            } else if n - r < 9 {
                self.header[..n - r].copy_from_slice(&region[r..]);
                self.header_len = n - r;
                r = n;
            } else {
                let mut h = [0u8; 9];
                h.copy_from_slice(&region[r..r + 9]);
                if !self.start_frame(&h, control, &mut on_ping) {
                    keep(region, r, &mut w, 9);
                }
                r += 9;
            }
        }
        w
    }

    /// Bytes of an incomplete header held back.
    pub fn held(&self) -> usize {
        self.header_len
    }

    /// Add bytes (at most `9 - held()`) to the held header; once complete it
    /// is decided, and if kept becomes pending.
    pub fn complete_header(&mut self, bytes: &[u8], control: &FrameControl, mut on_ping: impl FnMut()) {
        let n = bytes.len().min(9 - self.header_len);
        self.header[self.header_len..self.header_len + n].copy_from_slice(&bytes[..n]);
        self.header_len += n;
        if self.header_len == 9 {
            self.header_len = 0;
            let h = self.header;
            if !self.start_frame(&h, control, &mut on_ping) {
                self.pending = Some(0);
            }
        }
    }

    /// At end of input: hand back a partial header as it is (`h2` will
    /// report the truncated frame).
    pub fn flush_partial(&mut self) {
        if self.header_len > 0 {
            self.pending = Some(9 - self.header_len);
            self.header.copy_within(..self.header_len, 9 - self.header_len);
            self.header_len = 0;
        }
    }

    /// Kept header bytes still to hand back.
    pub fn pending(&self) -> &[u8] {
        self.pending.map_or(&[], |p| &self.header[p..])
    }

    /// `n` pending bytes were handed back.
    pub fn consume_pending(&mut self, n: usize) {
        if let Some(p) = self.pending {
            let p = (p + n).min(9);
            self.pending = (p < 9).then_some(p);
        }
    }

    /// A frame starts with header `h`; returns whether it is hidden.
    fn start_frame(&mut self, h: &[u8; 9], control: &FrameControl, on_ping: &mut impl FnMut()) -> bool {
        let hidden = control.hides(h, on_ping);
        self.body_left = (usize::from(h[0]) << 16) | (usize::from(h[1]) << 8) | usize::from(h[2]);
        self.body_dropped = hidden;
        hidden
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
    /// Set once an injected GOAWAY is out: the write side is shut and reads
    /// are discarded until the peer closes or this deadline passes.
    closing: Option<Pin<Box<tokio::time::Sleep>>>,
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
            closing: None,
        }
    }
}

impl<IO: AsyncRead + Unpin> Sniffed<IO> {
    /// After GOAWAY: read and discard until EOF (handed to `h2` as EOF) or
    /// the linger deadline (an error). Yields after a few reads so a client
    /// that never stops sending cannot hog the task.
    fn poll_discard(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let Some(deadline) = self.closing.as_mut() {
            if deadline.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the client did not close after GOAWAY",
                )));
            }
        }
        let mut scratch = [0u8; 4096];
        for _ in 0..16 {
            let mut rb = ReadBuf::new(&mut scratch);
            match Pin::new(&mut self.io).poll_read(cx, &mut rb) {
                Poll::Ready(Ok(())) if rb.filled().is_empty() => return Poll::Ready(Ok(())),
                Poll::Ready(Ok(())) => continue,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                // The socket and the deadline will wake us.
                Poll::Pending => return Poll::Pending,
            }
        }
        // Still more to discard: come back after others had their turn.
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for Sniffed<IO> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        this.control.task.register(cx.waker());
        let observer = this.observer.clone();
        loop {
            if this.closing.is_some() {
                return this.poll_discard(cx);
            }
            if buf.remaining() == 0 {
                return Poll::Ready(Ok(()));
            }
            let pending = this.read.pending();
            if !pending.is_empty() {
                let n = pending.len().min(buf.remaining());
                buf.put_slice(&pending[..n]);
                this.read.consume_pending(n);
                return Poll::Ready(Ok(()));
            }
            if this.read.held() > 0 {
                // Complete the split header with a read of at most its missing bytes.
                let mut scratch = [0u8; 9];
                let need = 9 - this.read.held();
                let mut rb = ReadBuf::new(&mut scratch[..need]);
                std::task::ready!(Pin::new(&mut this.io).poll_read(cx, &mut rb))?;
                if rb.filled().is_empty() {
                    this.read.flush_partial();
                    if this.read.pending().is_empty() {
                        return Poll::Ready(Ok(()));
                    }
                } else {
                    this.read
                        .complete_header(rb.filled(), &this.control, || observer.ping());
                }
                continue;
            }
            let before = buf.filled().len();
            std::task::ready!(Pin::new(&mut this.io).poll_read(cx, buf))?;
            let read = buf.filled().len() - before;
            if read == 0 {
                return Poll::Ready(Ok(())); // EOF
            }
            let region = &mut buf.filled_mut()[before..];
            let kept = this.read.filter_in_place(region, &this.control, || observer.ping());
            buf.set_filled(before + kept);
            if kept > 0 {
                return Poll::Ready(Ok(()));
            }
            // Everything read was hidden or held: read again rather than signal EOF.
        }
    }
}

impl<IO: AsyncWrite + Unpin> Sniffed<IO> {
    /// Write pending injected frames if at a frame boundary; after a GOAWAY,
    /// flush and shut the write side, and start closing.
    fn poll_inject(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.control.task.register(cx.waker());
        let at_boundary = self.out.skip == 0 && self.out.header_len == 0;
        if !at_boundary || self.closing.is_some() {
            return Poll::Ready(Ok(()));
        }
        loop {
            let chunk: Vec<u8> = self.control.inject.lock().iter().copied().collect();
            if chunk.is_empty() {
                if self.control.close_after_inject.load(Ordering::Relaxed) {
                    std::task::ready!(Pin::new(&mut self.io).poll_flush(cx))?;
                    // A failed shutdown still ends in close; the GOAWAY is out.
                    let _ = std::task::ready!(Pin::new(&mut self.io).poll_shutdown(cx));
                    self.closing = Some(Box::pin(tokio::time::sleep(GOAWAY_LINGER)));
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
        if self.closing.is_some() {
            return Poll::Ready(Ok(data.len())); // after GOAWAY nothing else leaves
        }
        // With frames waiting to be injected, write only to the end of the
        // current frame: `data` may already hold frames `h2` encoded after
        // the injection was asked for, and those must come after it.
        let data = match self.out.to_boundary() {
            n if n > 0 && !self.control.inject.lock().is_empty() => &data[..n.min(data.len())],
            _ => data,
        };
        let n = std::task::ready!(Pin::new(&mut self.io).poll_write(cx, data))?;
        self.out.feed(&data[..n], || {});
        Poll::Ready(Ok(n))
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        std::task::ready!(self.poll_inject(cx))?;
        if self.closing.is_some() {
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.io).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.closing.is_some() {
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::sync::atomic::AtomicUsize;

    const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

    fn frame(kind: u8, flags: u8, payload: &[u8]) -> Vec<u8> {
        let len = payload.len();
        let mut f = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags, 0, 0, 0, 0];
        f.extend_from_slice(payload);
        f
    }

    /// A socket that delivers `chunks` as separate reads (never more than the
    /// reader's buffer holds, the rest on the next read), then EOF.
    struct Chunked(VecDeque<Vec<u8>>);

    impl AsyncRead for Chunked {
        fn poll_read(mut self: Pin<&mut Self>, _: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
            if let Some(front) = self.0.front_mut() {
                let n = front.len().min(buf.remaining());
                buf.put_slice(&front[..n]);
                front.drain(..n);
                if front.is_empty() {
                    self.0.pop_front();
                }
            }
            Poll::Ready(Ok(()))
        }
    }

    #[derive(Default)]
    struct Pings(AtomicUsize);
    impl FrameObserver for Pings {
        fn ping(&self) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Read `wire` (cut at `cuts`) through the filter with buffers of `sizes`
    /// (cycled); returns what came out and the PINGs seen.
    fn through(wire: &[u8], cuts: &[usize], sizes: &[usize], control: Arc<FrameControl>) -> (Vec<u8>, usize) {
        let mut points: Vec<usize> = cuts.iter().map(|c| c % (wire.len() + 1)).collect();
        points.extend([0, wire.len()]);
        points.sort_unstable();
        points.dedup();
        let chunks = points.windows(2).map(|w| wire[w[0]..w[1]].to_vec()).collect();
        let pings = Arc::new(Pings::default());
        let mut io = Sniffed::new(Chunked(chunks), pings.clone(), control);
        let mut cx = Context::from_waker(std::task::Waker::noop());
        let mut out = Vec::new();
        for size in sizes.iter().cycle() {
            let mut storage = vec![0u8; *size];
            let mut buf = ReadBuf::new(&mut storage);
            match Pin::new(&mut io).poll_read(&mut cx, &mut buf) {
                Poll::Ready(Ok(())) if buf.filled().is_empty() => break,
                Poll::Ready(Ok(())) => out.extend_from_slice(buf.filled()),
                other => panic!("unexpected {other:?}"),
            }
        }
        (out, pings.0.load(Ordering::Relaxed))
    }

    #[test]
    fn counts_client_pings_across_any_split() {
        let mut wire = PREFACE.to_vec();
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

    /// The reported crash: a burst of WINDOW_UPDATEs read with a buffer that
    /// ends inside a frame header.
    #[test]
    fn a_header_split_across_reads_never_overfills_the_buffer() {
        let mut wire = PREFACE.to_vec();
        for _ in 0..1000 {
            wire.extend(frame(0x8, 0, &1u32.to_be_bytes()));
        }
        for size in [1, 5, 8, 9, 10, 17, 100, 4096] {
            let (out, _) = through(&wire, &[], &[size], Arc::default());
            assert_eq!(out, wire, "buffer of {size}");
        }
    }

    #[test]
    fn dropped_pings_and_swallowed_acks_vanish_across_any_split() {
        let settings = frame(0x4, 0, &[0; 6]);
        let ping = frame(FRAME_PING, 0, &[1; 8]);
        let ack = frame(0x4, FLAG_ACK, &[]);
        let data = frame(0x0, 0, b"payload");
        let mut wire = PREFACE.to_vec();
        for f in [&settings, &ping, &ack, &data, &ack] {
            wire.extend_from_slice(f);
        }
        let mut want = PREFACE.to_vec();
        for f in [&settings, &data, &ack] {
            want.extend_from_slice(f);
        }
        for split in 0..wire.len() {
            for size in [1, 3, 9, 64] {
                let control = Arc::new(FrameControl::default());
                control.drop_pings();
                control.max_concurrent_streams(1);
                control.inject.lock().clear();
                let (got, pings) = through(&wire, &[split], &[size], control.clone());
                assert_eq!(got, want, "split at {split}, buffer {size}");
                assert_eq!(pings, 1);
                assert_eq!(
                    control.max_streams(),
                    Some(1),
                    "the swallowed ACK puts the limit in force"
                );
            }
        }
    }

    /// Write `data` through `io` as `h2` would: call `poll_write` until all is taken.
    fn write_all(io: &mut Sniffed<Vec<u8>>, mut data: &[u8]) {
        let mut cx = Context::from_waker(std::task::Waker::noop());
        while !data.is_empty() {
            match Pin::new(&mut *io).poll_write(&mut cx, data) {
                Poll::Ready(Ok(n)) => data = &data[n..],
                other => panic!("unexpected {other:?}"),
            }
        }
    }

    #[test]
    fn injected_frames_go_between_frames_already_encoded() {
        let control = Arc::new(FrameControl::default());
        let mut io = Sniffed::new(Vec::new(), Arc::new(Pings::default()), control.clone());
        let a = frame(0x0, 0, &[7; 20]);
        let b = frame(0x3, 0, &[0, 0, 0, 8]);
        write_all(&mut io, &a[..5]); // mid-header
        control.max_concurrent_streams(1);
        let mut rest = a[5..].to_vec();
        rest.extend_from_slice(&b);
        write_all(&mut io, &rest);
        let mut want = a.clone();
        want.extend(frame(0x4, 0, &[0, 3, 0, 0, 0, 1]));
        want.extend_from_slice(&b);
        assert_eq!(io.io, want, "the SETTINGS goes after A and before B");
    }

    #[test]
    fn injections_for_a_client_that_never_reads_are_bounded() {
        let control = FrameControl::default();
        let mut queued = 0;
        while control.max_concurrent_streams(1) {
            queued += 1;
            assert!(queued < 10_000, "unbounded");
        }
        assert!(control.inject.lock().len() <= MAX_INJECT + 15);
        control.goaway(1, 0);
        control.goaway(1, 0);
        assert_eq!(
            control.inject.lock().len() % 15,
            17 % 15,
            "one GOAWAY (17 bytes) on top"
        );
    }

    #[tokio::test]
    async fn nothing_follows_an_injected_goaway() {
        let control = Arc::new(FrameControl::default());
        let mut io = Sniffed::new(Vec::new(), Arc::new(Pings::default()), control.clone());
        let a = frame(0x0, 0, &[7; 20]);
        let rst = frame(0x3, 0, &[0, 0, 0, 8]);
        write_all(&mut io, &a[..12]); // mid-payload
        control.goaway(3, 0xb);
        let mut rest = a[12..].to_vec();
        rest.extend_from_slice(&rst);
        write_all(&mut io, &rest);
        write_all(&mut io, &rst);
        let mut want = a.clone();
        want.extend(frame(0x7, 0, &[0, 0, 0, 3, 0, 0, 0, 0xb]));
        assert_eq!(io.io, want, "A is finished, then the GOAWAY, then nothing");
    }

    fn frames() -> impl Strategy<Value = Vec<(u8, u8, Vec<u8>)>> {
        proptest::collection::vec(
            (0u8..=10, any::<u8>(), proptest::collection::vec(any::<u8>(), 0..40)),
            0..40,
        )
    }

    proptest! {
        /// Whatever the frames, cuts and buffer sizes, untouched traffic
        /// comes out byte for byte and every PING is seen once.
        #[test]
        fn bytes_out_equal_bytes_in(
            frames in frames(),
            cuts in proptest::collection::vec(any::<usize>(), 0..20),
            sizes in proptest::collection::vec(1usize..80, 1..8),
        ) {
            let mut wire = PREFACE.to_vec();
            let mut want_pings = 0;
            for (kind, flags, payload) in &frames {
                want_pings += usize::from(*kind == FRAME_PING && flags & FLAG_ACK == 0);
                wire.extend(frame(*kind, *flags, payload));
            }
            let (out, pings) = through(&wire, &cuts, &sizes, Arc::default());
            prop_assert_eq!(out, wire);
            prop_assert_eq!(pings, want_pings);
        }

        /// Hidden frames are cut out whole, and nothing else changes.
        #[test]
        fn hidden_pings_are_cut_out_whole(
            frames in frames(),
            cuts in proptest::collection::vec(any::<usize>(), 0..20),
            sizes in proptest::collection::vec(1usize..80, 1..8),
        ) {
            let mut wire = PREFACE.to_vec();
            let mut want = PREFACE.to_vec();
            for (kind, flags, payload) in &frames {
                let f = frame(*kind, *flags, payload);
                wire.extend_from_slice(&f);
                if !(*kind == FRAME_PING && flags & FLAG_ACK == 0) {
                    want.extend_from_slice(&f);
                }
            }
            let control = Arc::new(FrameControl::default());
            control.drop_pings();
            let (out, _) = through(&wire, &cuts, &sizes, control);
            prop_assert_eq!(out, want);
        }
    }
}
