//! Per-user pacing of gateway events (429 THROTTLING_EXCEPTION beyond it):
//! a token bucket of `burst` events refilled at `events_per_second`.

use crate::clock::{self, Instant};
use parking_lot::Mutex;
use std::collections::HashMap;

/// The buckets, one per user that sent an event (users are declared in
/// config, so their number is bounded).
pub struct Throttle {
    rate: f64,
    burst: f64,
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl Throttle {
    /// `rate` 0 admits everything.
    pub fn new(rate: u32, burst: u32) -> Throttle {
        Throttle {
            rate: f64::from(rate),
            burst: f64::from(burst.max(1)),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Take one event's place for `user`, or say no.
    pub fn admit(&self, user: &str) -> bool {
        if self.rate <= 0.0 {
            return true;
        }
        let now = clock::now();
        let mut buckets = self.buckets.lock();
        let (tokens, at) = buckets.entry(user.into()).or_insert((self.burst, now));
        let refill = now.duration_since(*at).as_secs_f64() * self.rate;
        *tokens = (*tokens + refill).min(self.burst);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn a_burst_then_the_rate() {
        let t = Throttle::new(2, 3);
        assert!((0..3).all(|_| t.admit("u")));
        assert!(!t.admit("u"));
        assert!(t.admit("other"));
        tokio::time::advance(Duration::from_millis(500)).await;
        assert!(t.admit("u"));
        assert!(!t.admit("u"));
        assert!((0..1000).all(|_| Throttle::new(0, 1).admit("u")));
    }
}
