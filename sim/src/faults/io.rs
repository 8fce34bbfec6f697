//! Byte-level (TCP) faults: latency with jitter, a bandwidth cap, stalls,
//! closing after N bytes, and resets (RST), applied to one connection's
//! socket beneath TLS and HTTP/2.
//!
//! Each connection's socket is wrapped in `Shaped`, which reads its
//! settings from a shared `Shaping` that faults change at any time (a rule
//! firing on a request, or a fault applied now to a device). All waiting
//! goes through tokio's timer.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Sleep;

const NONE: u64 = u64::MAX;

/// A connection's byte-level fault settings.
#[derive(Debug)]
pub struct Shaping {
    latency_ms: AtomicU64,
    jitter_ms: AtomicU64,
    bytes_per_second: AtomicU64,
    /// Mono-clock milliseconds until which nothing moves.
    stall_until_ms: AtomicU64,
    /// Close the connection once this many bytes were written.
    close_after: AtomicU64,
    reset: AtomicBool,
    /// Jitter draws: a SplitMix64 sequence seeded by the fault that set the
    /// latency, advanced atomically so no lock is held while drawing.
    jitter_state: AtomicU64,
}

impl Default for Shaping {
    fn default() -> Self {
        Shaping {
            latency_ms: AtomicU64::new(0),
            jitter_ms: AtomicU64::new(0),
            bytes_per_second: AtomicU64::new(NONE),
            stall_until_ms: AtomicU64::new(0),
            close_after: AtomicU64::new(NONE),
            reset: AtomicBool::new(false),
            jitter_state: AtomicU64::new(0),
        }
    }
}

impl Shaping {
    pub fn latency(&self, ms: u64, jitter_ms: u64, seed: u64) {
        self.jitter_state.store(seed, Ordering::Relaxed);
        self.latency_ms.store(ms, Ordering::Relaxed);
        self.jitter_ms.store(jitter_ms, Ordering::Relaxed);
    }
    pub fn bandwidth(&self, bytes_per_second: u64) {
        self.bytes_per_second.store(bytes_per_second.max(1), Ordering::Relaxed);
    }
    pub fn stall(&self, d: Duration) {
        self.stall_until_ms.store(
            crate::clock::mono_ms().saturating_add(crate::clock::as_ms(d)),
            Ordering::Relaxed,
        );
    }
    pub fn close_after(&self, bytes: u64) {
        self.close_after.store(bytes, Ordering::Relaxed);
    }
    /// The next jitter draw (SplitMix64: one atomic add, then a mix).
    fn next_jitter_draw(&self) -> u64 {
        const GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut z = self
            .jitter_state
            .fetch_add(GAMMA, Ordering::Relaxed)
            .wrapping_add(GAMMA);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Reset the connection (RST) at its next read or write.
    pub fn reset(&self) {
        self.reset.store(true, Ordering::Relaxed);
    }
}

/// A socket with faults applied.
pub struct Shaped {
    io: TcpStream,
    shaping: Arc<Shaping>,
    written: u64,
    /// A wait the next write must serve first (stall, latency, bandwidth debt).
    write_wait: Option<Pin<Box<Sleep>>>,
    /// Whether the current write's latency was served.
    latency_served: bool,
    read_wait: Option<Pin<Box<Sleep>>>,
}

impl Shaped {
    pub fn new(io: TcpStream, shaping: Arc<Shaping>) -> Shaped {
        Shaped {
            io,
            shaping,
            written: 0,
            write_wait: None,
            latency_served: false,
            read_wait: None,
        }
    }

    fn check_reset(&self) -> io::Result<()> {
        if self.shaping.reset.load(Ordering::Relaxed) {
            // SO_LINGER 0: closing sends RST instead of FIN.
            let _ = self.io.set_zero_linger();
            return Err(io::Error::new(io::ErrorKind::ConnectionReset, "reset by a fault rule"));
        }
        Ok(())
    }

    fn stall_left(&self) -> Option<Duration> {
        let until = self.shaping.stall_until_ms.load(Ordering::Relaxed);
        let now = crate::clock::mono_ms();
        (until > now).then(|| Duration::from_millis(until - now))
    }

    /// Latency plus jitter, owed once per write.
    fn write_delay(&self) -> Duration {
        let latency = self.shaping.latency_ms.load(Ordering::Relaxed);
        let jitter = self.shaping.jitter_ms.load(Ordering::Relaxed);
        let extra = match jitter {
            0 => 0,
            j => self.shaping.next_jitter_draw() % j.saturating_add(1),
        };
        Duration::from_millis(latency.saturating_add(extra))
    }

    /// Serve every wait owed before a write; `Ready` when the write may go.
    fn poll_write_waits(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        loop {
            if let Some(w) = self.write_wait.as_mut() {
                std::task::ready!(w.as_mut().poll(cx));
                self.write_wait = None;
            }
            if let Some(left) = self.stall_left() {
                self.write_wait = Some(Box::pin(tokio::time::sleep(left)));
                continue;
            }
            if !self.latency_served {
                self.latency_served = true;
                let d = self.write_delay();
                if !d.is_zero() {
                    self.write_wait = Some(Box::pin(tokio::time::sleep(d)));
                    continue;
                }
            }
            return Poll::Ready(());
        }
    }
}

impl AsyncRead for Shaped {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        self.check_reset()?;
        loop {
            if let Some(w) = self.read_wait.as_mut() {
                std::task::ready!(w.as_mut().poll(cx));
                self.read_wait = None;
            }
            match self.stall_left() {
                Some(left) => self.read_wait = Some(Box::pin(tokio::time::sleep(left))),
                None => break,
            }
        }
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for Shaped {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        self.check_reset()?;
        std::task::ready!(self.poll_write_waits(cx));
        let mut data = data;
        let close_after = self.shaping.close_after.load(Ordering::Relaxed);
        if close_after != NONE {
            let room = close_after.saturating_sub(self.written);
            if room == 0 {
                return Poll::Ready(Err(io::Error::new(io::ErrorKind::BrokenPipe, "closed by a fault rule")));
            }
            data = &data[..data.len().min(usize::try_from(room).unwrap_or(usize::MAX))];
        }
        let rate = self.shaping.bytes_per_second.load(Ordering::Relaxed);
        if rate != NONE {
            // At most a tenth of a second's worth per write.
            data = &data[..data
                .len()
                .min(usize::try_from((rate / 10).max(1)).unwrap_or(usize::MAX))];
        }
        let n = std::task::ready!(Pin::new(&mut self.io).poll_write(cx, data))?;
        self.written = self.written.saturating_add(n as u64);
        self.latency_served = false;
        if rate != NONE && n > 0 {
            // The next write first serves what these bytes cost.
            // rate >= 1 (see `bandwidth`), so this is at most n seconds.
            let cost = Duration::try_from_secs_f64(n as f64 / rate.max(1) as f64).unwrap_or(Duration::ZERO);
            self.write_wait = Some(Box::pin(tokio::time::sleep(cost)));
        }
        Poll::Ready(Ok(n))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// Apply a byte-level action to `shaping`; false for other actions.
pub fn shape(shaping: &Shaping, action: &super::Action, seed: u64) -> bool {
    use super::Action;
    match action {
        Action::Latency { ms, jitter_ms } => shaping.latency(*ms, *jitter_ms, seed),
        Action::Bandwidth { bytes_per_second } => shaping.bandwidth(*bytes_per_second),
        Action::Stall { ms } => shaping.stall(Duration::from_millis(*ms)),
        Action::CloseAfter { bytes } => shaping.close_after(*bytes),
        // After the handshake a TLS failure can only be a reset.
        Action::TcpReset | Action::TlsFail => shaping.reset(),
        _ => return false,
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_settings_saturate_instead_of_overflowing() {
        let s = Shaping::default();
        s.stall(Duration::MAX);
        assert_eq!(s.stall_until_ms.load(Ordering::Relaxed), u64::MAX);
        s.latency(u64::MAX, u64::MAX, 7);
        let a: Vec<u64> = (0..5).map(|_| s.next_jitter_draw()).collect();
        s.latency(u64::MAX, u64::MAX, 7);
        let b: Vec<u64> = (0..5).map(|_| s.next_jitter_draw()).collect();
        assert_eq!(a, b, "jitter replays from its seed");
        assert_ne!(a[0], a[1]);
    }

    #[tokio::test]
    async fn latency_plus_jitter_saturates() {
        let (client, server) = {
            let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let c = TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
            (c, l.accept().await.unwrap().0)
        };
        let shaping = Arc::new(Shaping::default());
        shaping.latency(u64::MAX, u64::MAX, 3);
        let shaped = Shaped::new(server, shaping);
        // The old code computed `latency + jitter` unchecked: overflow.
        assert_eq!(shaped.write_delay(), Duration::from_millis(u64::MAX));
        drop(client);
    }
}
