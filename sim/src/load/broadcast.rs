//! Broadcasts through the control API and the deliveries the devices see.
//!
//! Broadcast k carries messageId `avs-sim-load-<k>`, so device n receives
//! `avs-sim-load-<k>-<n>` (the simulator's per-device ids); a device notes
//! the instant each such directive arrives, and latency is that instant
//! minus the instant just before the POST was sent.

use super::LoadArgs;
use super::fleet::Fleet;
use super::report::{BroadcastReport, Latency};
use crate::clock::{self, Instant};
use bytes::Bytes;
use http_body_util::BodyExt;
use parking_lot::Mutex;
use serde_json::{Value, json};
use std::time::Duration;
use tokio::sync::Notify;

/// The messageId prefix of the run's broadcasts.
const ID_PREFIX: &str = "avs-sim-load-";

/// Pause between broadcasts, so one's stragglers never count for the next.
const GAP: Duration = Duration::from_millis(100);

/// Largest control answer read.
const MAX_ANSWER: usize = 1024 * 1024;

/// Arrival instants per broadcast, each list bounded by the device count.
pub struct Deliveries {
    arrivals: Mutex<Vec<Vec<Instant>>>,
    per_broadcast: usize,
    notify: Notify,
}

impl Deliveries {
    pub fn new(broadcasts: u32, devices: u32) -> Deliveries {
        Deliveries {
            arrivals: Mutex::new(vec![Vec::new(); broadcasts as usize]),
            per_broadcast: devices as usize,
            notify: Notify::new(),
        }
    }

    /// A directive part arrived at a device: note it if it is one of ours.
    pub fn arrived(&self, body: &[u8]) {
        let at = clock::now();
        let Some(k) = super::device::message_id(body).and_then(|id| broadcast_of(&id)) else {
            return;
        };
        let mut arrivals = self.arrivals.lock();
        if let Some(list) = arrivals.get_mut(k).filter(|l| l.len() < self.per_broadcast) {
            list.push(at);
        }
        drop(arrivals);
        self.notify.notify_one();
    }

    fn count(&self, k: usize) -> usize {
        self.arrivals.lock().get(k).map_or(0, Vec::len)
    }

    /// Wait until broadcast `k` reached `expected` devices or `deadline` passed.
    async fn wait(&self, k: usize, expected: usize, deadline: Instant) {
        while self.count(k) < expected {
            if tokio::time::timeout_at(deadline, self.notify.notified()).await.is_err() {
                return;
            }
        }
    }

    fn latencies_ms(&self, k: usize, from: Instant) -> Vec<f64> {
        self.arrivals.lock().get(k).map_or_else(Vec::new, |l| {
            l.iter()
                .map(|at| at.saturating_duration_since(from).as_secs_f64() * 1000.0)
                .collect()
        })
    }
}

/// `avs-sim-load-<k>-<n>` → k.
fn broadcast_of(id: &str) -> Option<usize> {
    id.strip_prefix(ID_PREFIX)?.split('-').next()?.parse().ok()
}

/// Send `--broadcasts` broadcasts one after another, each waited for.
pub async fn run(args: &LoadArgs, control: &str, fleet: &Fleet) -> anyhow::Result<BroadcastReport> {
    let mut client = Control::connect(control).await?;
    let deliveries = &fleet.shared.deliveries;
    let (mut all, mut expected, mut delivered, mut queued) = (Vec::new(), 0usize, 0usize, 0u64);
    let mut post_ms = Vec::new();
    for k in 0..args.broadcasts as usize {
        let want = fleet.holding();
        let body = json!({
            "directive": {"header": {"namespace": "System", "name": "ResetUserInactivity",
                "messageId": format!("{ID_PREFIX}{k}")}, "payload": {}},
            "prefix": args.token_prefix,
        });
        let sent = clock::now();
        let answer = client.post("/api/directives/broadcast", &body).await?;
        post_ms.push(clock::now().saturating_duration_since(sent).as_secs_f64() * 1000.0);
        queued = queued.saturating_add(answer["devices"].as_u64().unwrap_or(0));
        deliveries
            .wait(k, want, clock::deadline_in(args.broadcast_deadline))
            .await;
        let latencies = deliveries.latencies_ms(k, sent);
        expected = expected.saturating_add(want);
        delivered = delivered.saturating_add(latencies.len());
        all.extend(latencies);
        tokio::time::sleep(GAP).await;
    }
    Ok(BroadcastReport {
        broadcasts: args.broadcasts,
        queued,
        expected,
        delivered,
        latency_ms: Latency::of(&mut all),
        post_ms: Latency::of(&mut post_ms),
    })
}

/// One HTTP/1.1 connection to the control API.
struct Control {
    sender: hyper::client::conn::http1::SendRequest<http_body_util::Full<Bytes>>,
    host: String,
}

impl Control {
    async fn connect(url: &str) -> anyhow::Result<Control> {
        let uri: http::Uri = url.parse()?;
        anyhow::ensure!(
            uri.scheme_str() == Some("http"),
            "--control must be an http:// URL, got {url}"
        );
        let host = uri
            .host()
            .ok_or_else(|| anyhow::anyhow!("--control {url} has no host"))?
            .trim_matches(['[', ']'])
            .to_string();
        let port = uri.port_u16().unwrap_or(80);
        let tcp = tokio::net::TcpStream::connect((host.as_str(), port))
            .await
            .map_err(|e| anyhow::anyhow!("cannot connect to --control {url}: {e}"))?;
        tcp.set_nodelay(true)?;
        let (sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp)).await?;
        tokio::spawn(conn);
        Ok(Control {
            sender,
            host: format!("{host}:{port}"),
        })
    }

    /// POST JSON; the answer's JSON, which must come with a 2xx status.
    async fn post(&mut self, path: &str, body: &Value) -> anyhow::Result<Value> {
        let request = http::Request::post(path)
            .header(http::header::HOST, &self.host)
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(http_body_util::Full::new(Bytes::from(body.to_string())))?;
        self.sender.ready().await?;
        let response = self.sender.send_request(request).await?;
        let status = response.status();
        let bytes = http_body_util::Limited::new(response.into_body(), MAX_ANSWER)
            .collect()
            .await
            .map_err(|e| anyhow::anyhow!("POST {path}: unreadable answer: {e}"))?
            .to_bytes();
        let doc: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        anyhow::ensure!(status.is_success(), "POST {path} answered {status}: {doc}");
        Ok(doc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcast_ids() {
        assert_eq!(broadcast_of("avs-sim-load-3-17"), Some(3));
        assert_eq!(broadcast_of("avs-sim-load-0"), Some(0));
        assert_eq!(broadcast_of("other-3-17"), None);
        assert_eq!(broadcast_of("avs-sim-load-x-1"), None);
    }
}
