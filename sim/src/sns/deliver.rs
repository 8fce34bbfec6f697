//! Delivery: one queue per subscription, worked in order, apart from
//! Publish, with SNS's retry policy, throttle and the dead-letter list
//! (reference sns.md §7–9).
//!
//! `enqueue` never waits: it puts the message on its subscription's
//! bounded queue, starting that subscription's worker task if none runs.
//! Each worker POSTs its messages one at a time, so a subscriber that
//! hangs, resets or dribbles only ever holds up its own queue. A worker
//! ends once its queue has stayed empty for `IDLE`. A message that cannot
//! be queued (queue full) or is given up on (retries exhausted, its
//! subscription gone, the simulator stopping) goes to the dead-letter list
//! with a journal entry saying why: nothing is dropped silently.

use super::model::{MessageType, Outgoing};
use super::policy::{self, DeliveryPolicy};
use super::{message, publish};
use crate::journal::{Face, Kind, Record};
use crate::state::State;
use bytes::Bytes;
use http_body_util::BodyExt;
use parking_lot::Mutex;
use serde_json::{Value, json};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::sync::mpsc;

/// Messages waiting per subscription; one more goes to the dead letters.
pub const QUEUE: usize = 1_000;
/// How long SNS waits for a subscriber's answer.
pub const TIMEOUT: Duration = Duration::from_secs(15);
/// Most of a subscriber's answer body that is read (the rest is not).
pub const MAX_RESPONSE: usize = 64 * 1024;
/// Dead letters kept (the newest); older ones are evicted with a journal entry.
pub const MAX_DEAD_LETTERS: usize = 10_000;
/// Attempts kept for `GET /api/sns/deliveries` (the newest).
pub const MAX_ATTEMPTS_LOG: usize = 10_000;
/// A worker with nothing to do for this long ends.
pub const IDLE: Duration = Duration::from_secs(30);

/// The delivery side of the SNS store: workers, dead letters, the attempt log.
#[derive(Default)]
pub struct Deliveries {
    /// Subscription ARN → the queue of its running worker and that worker's number.
    workers: Mutex<HashMap<String, (u64, mpsc::Sender<Outgoing>)>>,
    next_worker: std::sync::atomic::AtomicU64,
    dead: Mutex<VecDeque<Value>>,
    attempts: Mutex<VecDeque<Value>>,
    tls: OnceLock<Arc<rustls::ClientConfig>>,
}

/// Queue `out` for its subscription; returns at once.
pub fn enqueue(state: &Arc<State>, out: Outgoing) {
    let d = &state.sns.deliveries;
    let mut workers = d.workers.lock();
    if let Some((_, tx)) = workers.get(&out.subscription_arn) {
        match tx.try_send(out) {
            Ok(()) => return,
            Err(mpsc::error::TrySendError::Full(out)) => {
                drop(workers);
                let reason = format!("delivery queue full ({QUEUE} messages waiting)");
                dead_letter(state, &out, 0, &reason, &reason);
                return;
            }
            // The worker has ended: start another below.
            Err(mpsc::error::TrySendError::Closed(out)) => return start(state, &mut workers, out),
        }
    }
    start(state, &mut workers, out);
}

/// Start a worker for `out`'s subscription with `out` queued (the lock on
/// the worker table is held, so no message can slip between two workers).
fn start(state: &Arc<State>, workers: &mut HashMap<String, (u64, mpsc::Sender<Outgoing>)>, out: Outgoing) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        let why = "no async runtime to deliver on";
        dead_letter(state, &out, 0, why, why);
        return;
    };
    let (tx, rx) = mpsc::channel(QUEUE);
    let id = state
        .sns
        .deliveries
        .next_worker
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let arn = out.subscription_arn.clone();
    // A fresh channel has room for one.
    let _ = tx.try_send(out);
    workers.insert(arn.clone(), (id, tx));
    runtime.spawn(worker(state.clone(), arn, id, rx));
}

/// Work one subscription's queue in order until it stays empty for `IDLE`
/// (or the simulator stops: what is left becomes dead letters).
async fn worker(state: Arc<State>, arn: String, id: u64, mut rx: mpsc::Receiver<Outgoing>) {
    let mut last_start: Option<crate::clock::Instant> = None;
    loop {
        let next = tokio::select! {
            m = rx.recv() => m,
            _ = tokio::time::sleep(IDLE) => None,
            _ = state.shutdown.cancelled() => None,
        };
        let out = match next {
            Some(out) => out,
            None => {
                // Leave only with an empty queue, decided under the table's lock.
                let mut workers = state.sns.deliveries.workers.lock();
                match rx.try_recv() {
                    Ok(out) if !state.shutdown.is_cancelled() => out,
                    Ok(out) => {
                        drop(workers);
                        let why = "the simulator is shutting down";
                        dead_letter(&state, &out, 0, why, why);
                        continue;
                    }
                    Err(_) => {
                        if workers.get(&arn).is_some_and(|(w, _)| *w == id) {
                            workers.remove(&arn);
                        }
                        return;
                    }
                }
            }
        };
        tokio::select! {
            _ = deliver(&state, out.clone(), &mut last_start) => {}
            _ = state.shutdown.cancelled() => {
                let why = "the simulator is shutting down";
                dead_letter(&state, &out, 0, why, why);
            }
        }
    }
}

/// The inputs of one message's delivery, read once when its first attempt starts.
struct Plan {
    policy: DeliveryPolicy,
    signature_version: String,
    raw: bool,
}

fn plan(state: &State, out: &Outgoing) -> Result<Plan, String> {
    let topic = state.sns.topic(&out.topic_arn).ok();
    let topic_policy = topic.as_ref().and_then(|t| t.attributes.get("DeliveryPolicy"));
    let signature_version = topic.as_ref().map_or("1", |t| t.signature_version()).to_string();
    match out.kind {
        // Sent after its subscription is gone, on the topic's policy.
        MessageType::UnsubscribeConfirmation => Ok(Plan {
            policy: policy::effective(topic_policy.map(String::as_str), None),
            signature_version,
            raw: false,
        }),
        _ => {
            let sub = state
                .sns
                .subscription(&out.subscription_arn)
                .map_err(|_| "the subscription is gone".to_string())?;
            Ok(Plan {
                policy: policy::effective(
                    topic_policy.map(String::as_str),
                    sub.attributes.get("DeliveryPolicy").map(String::as_str),
                ),
                signature_version,
                raw: sub.raw() && out.kind == MessageType::Notification,
            })
        }
    }
}

/// Deliver one message: attempts per its policy, each journaled, until
/// delivered or given up on.
async fn deliver(state: &Arc<State>, out: Outgoing, last_start: &mut Option<crate::clock::Instant>) {
    let plan = match plan(state, &out) {
        Ok(p) => p,
        Err(why) => return dead_letter(state, &out, 0, &why, &why),
    };
    let unsubscribe_url = format!(
        "{}/?Action=Unsubscribe&SubscriptionArn={}",
        publish::base_url(state),
        out.subscription_arn
    );
    let signer = crate::sns::sign::signer(state);
    let mut rendered = message::render(
        signer.as_deref(),
        &out,
        &plan.signature_version,
        plan.raw,
        &unsubscribe_url,
        &message::cert_url(state),
    );
    if let (Some(ct), MessageType::Notification) = (&plan.policy.header_content_type, out.kind) {
        rendered
            .headers
            .retain(|(k, _)| !k.eq_ignore_ascii_case("content-type"));
        rendered.headers.push(("content-type".into(), ct.clone()));
    }
    let body = Bytes::from(rendered.body);
    let delays = plan.policy.retry.delays();
    let attempts = delays.len() + 1;
    let mut last_error = String::new();
    for n in 1..=attempts {
        if n > 1 {
            tokio::time::sleep(delays[n - 2]).await;
            if out.kind != MessageType::UnsubscribeConfirmation
                && state.sns.subscription(&out.subscription_arn).is_err()
            {
                let why = "the subscription is gone";
                return dead_letter(state, &out, n - 1, why, &last_error);
            }
        }
        if let Some(rate) = plan.policy.max_receives_per_second {
            if let Some(prev) = *last_start {
                let gap = Duration::from_secs(1) / u32::try_from(rate).unwrap_or(u32::MAX).max(1);
                tokio::time::sleep_until(prev + gap).await;
            }
        }
        *last_start = Some(crate::clock::now());
        let deadline = crate::clock::deadline_in(TIMEOUT);
        let head = tokio::time::timeout_at(deadline, post(state, &out.endpoint, &rendered.headers, body.clone())).await;
        let result = match head {
            Ok(Ok((status, answer, _conn))) => {
                // The status decides; the answer is read (bounded) only so the
                // subscriber is not cut off mid-write, and never past the deadline.
                let _ = tokio::time::timeout_at(deadline, drain(answer)).await;
                Ok(status)
            }
            Ok(Err(e)) => Err(e),
            Err(_) => Err(format!("no answer within {} s", TIMEOUT.as_secs())),
        };
        let (status, error, delivered) = match result {
            Ok(s) if (200..500).contains(&s) => (Some(s), None, true),
            Ok(s) => (Some(s), Some(format!("HTTP {s}")), false),
            Err(e) => (None, Some(e), false),
        };
        let last = delivered || n == attempts;
        record_attempt(state, &out, n, status, error.as_deref(), delivered, last);
        if delivered {
            return;
        }
        last_error = error.unwrap_or_default();
    }
    let why = format!("retries exhausted after {attempts} attempts");
    dead_letter(state, &out, attempts, &why, &last_error);
}

fn record_attempt(
    state: &State,
    out: &Outgoing,
    n: usize,
    status: Option<u16>,
    error: Option<&str>,
    delivered: bool,
    last: bool,
) {
    let what = match (status, error) {
        (Some(s), _) => s.to_string(),
        (None, Some(e)) => e.to_string(),
        (None, None) => "?".into(),
    };
    let body = json!({
        "subscription": out.subscription_arn,
        "message_id": out.message_id,
        "type": out.kind.as_str(),
        "attempt": n,
        "status": status,
        "error": error,
        "delivered": delivered,
        "final": last,
    });
    state.journal.record(
        Record::new(
            Face::Sns,
            Kind::Response,
            format!("attempt {n} of {} to {}: {what}", out.message_id, out.endpoint),
        )
        .body(body.clone()),
    );
    let mut log = state.sns.deliveries.attempts.lock();
    if log.len() >= MAX_ATTEMPTS_LOG {
        log.pop_front();
    }
    let mut entry = body;
    entry["endpoint"] = json!(out.endpoint);
    entry["time"] = json!(crate::clock::wall_rfc3339());
    log.push_back(entry);
}

/// Give up on `out`: a journal entry and a dead letter.
fn dead_letter(state: &State, out: &Outgoing, attempts: usize, reason: &str, last_error: &str) {
    state.journal.record(
        Record::new(
            Face::Sns,
            Kind::Error,
            format!("{} to {} given up: {reason}", out.message_id, out.endpoint),
        )
        .body(json!({
            "subscription": out.subscription_arn,
            "message_id": out.message_id,
            "dead_letter": true,
            "reason": reason,
        })),
    );
    let letter = json!({
        "subscription": out.subscription_arn,
        "message_id": out.message_id,
        "type": out.kind.as_str(),
        "attempts": attempts,
        "last_error": last_error,
        "reason": reason,
        "endpoint": out.endpoint,
        "topic": out.topic_arn,
        "time": crate::clock::wall_rfc3339(),
    });
    let evicted = {
        let mut dead = state.sns.deliveries.dead.lock();
        dead.push_back(letter);
        if dead.len() > MAX_DEAD_LETTERS {
            dead.pop_front()
        } else {
            None
        }
    };
    if let Some(old) = evicted {
        state.journal.record(
            Record::new(
                Face::Sns,
                Kind::Evicted,
                format!(
                    "dead letter of {} evicted (more than {MAX_DEAD_LETTERS} kept)",
                    old["message_id"].as_str().unwrap_or("?")
                ),
            )
            .body(old),
        );
    }
}

/// The dead letters, oldest first: `{subscription, message_id, type,
/// attempts, last_error, reason, endpoint, topic, time}`.
pub fn dead_letters(state: &State) -> Vec<Value> {
    state.sns.deliveries.dead.lock().iter().cloned().collect()
}

/// Recent delivery attempts (of one subscription, or all), oldest first.
pub fn attempts(state: &State, subscription: Option<&str>) -> Vec<Value> {
    state
        .sns
        .deliveries
        .attempts
        .lock()
        .iter()
        .filter(|a| subscription.is_none_or(|s| a["subscription"] == s))
        .cloned()
        .collect()
}

/// Send SubscriptionConfirmations for the subscriptions declared pending in
/// `[[sns.subscriptions]]` (called once the listeners are up, so the
/// SubscribeURL they carry answers).
pub fn confirm_declared(state: &Arc<State>) {
    for sub in state.sns.subscriptions(None) {
        if sub.pending {
            publish::confirmation(state, &sub, MessageType::SubscriptionConfirmation);
        }
    }
}

/// TLS for https subscribers: the simulator's own CA and the public web roots.
fn tls_config(state: &State) -> Arc<rustls::ClientConfig> {
    state
        .sns
        .deliveries
        .tls
        .get_or_init(|| {
            use rustls_pki_types::pem::PemObject;
            let mut roots = rustls::RootCertStore::empty();
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            let ca = crate::tls::CertPaths::in_dir(&state.config.certs.dir).ca_cert;
            if let Ok(certs) = rustls_pki_types::CertificateDer::pem_file_iter(&ca) {
                for cert in certs.flatten() {
                    let _ = roots.add(cert);
                }
            }
            let mut config = rustls::ClientConfig::builder_with_provider(crate::tls::provider())
                .with_safe_default_protocol_versions()
                .map(|b| b.with_root_certificates(roots).with_no_client_auth())
                .unwrap_or_else(|_| {
                    rustls::ClientConfig::builder_with_provider(crate::tls::provider())
                        .with_protocol_versions(rustls::DEFAULT_VERSIONS)
                        .expect("the provider supports the default versions")
                        .with_root_certificates(rustls::RootCertStore::empty())
                        .with_no_client_auth()
                });
            config.alpn_protocols = vec![b"http/1.1".to_vec()];
            Arc::new(config)
        })
        .clone()
}

/// An answer's status, its body still to read, and its connection (ended when dropped).
type Head = (u16, hyper::body::Incoming, AbortOnDrop);

/// One POST over a fresh HTTP/1.1 connection: the answer's head, or why none came.
async fn post(state: &State, url: &str, headers: &[(String, String)], body: Bytes) -> Result<Head, String> {
    let uri: http::Uri = url.parse().map_err(|e| format!("bad endpoint URL: {e}"))?;
    let tls = match uri.scheme_str() {
        Some("https") => true,
        Some("http") => false,
        _ => return Err("endpoint is not an http:// or https:// URL".into()),
    };
    let host = uri.host().ok_or("endpoint URL has no host")?.to_string();
    let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
    let bare = host.trim_matches(['[', ']']).to_string();
    let tcp = tokio::net::TcpStream::connect((bare.as_str(), port))
        .await
        .map_err(|e| format!("cannot connect to {host}:{port}: {e}"))?;
    let _ = tcp.set_nodelay(true);
    let authority = match uri.port_u16() {
        Some(p) => format!("{host}:{p}"),
        None => host.clone(),
    };
    let path = uri.path_and_query().map_or("/", |p| p.as_str()).to_string();
    let mut req = http::Request::post(path)
        .header(http::header::HOST, authority)
        .header(http::header::CONNECTION, "Keep-Alive");
    let has = |name: &str| headers.iter().any(|(k, _)| k.eq_ignore_ascii_case(name));
    if !has("user-agent") {
        req = req.header(http::header::USER_AGENT, "Amazon Simple Notification Service Agent");
    }
    if !has("accept-encoding") {
        req = req.header(http::header::ACCEPT_ENCODING, "gzip,deflate");
    }
    for (k, v) in headers {
        req = req.header(k.as_str(), v.as_str());
    }
    let req = req
        .body(http_body_util::Full::new(body))
        .map_err(|e| format!("cannot build the request: {e}"))?;
    if tls {
        let name = rustls_pki_types::ServerName::try_from(bare).map_err(|e| format!("bad TLS name {host}: {e}"))?;
        let stream = tokio_rustls::TlsConnector::from(tls_config(state))
            .connect(name, tcp)
            .await
            .map_err(|e| format!("TLS handshake with {host}:{port} failed: {e}"))?;
        exchange(stream, req).await
    } else {
        exchange(tcp, req).await
    }
}

async fn exchange<IO>(io: IO, req: http::Request<http_body_util::Full<Bytes>>) -> Result<Head, String>
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(io))
        .await
        .map_err(|e| format!("HTTP handshake failed: {e}"))?;
    // The connection lives as long as this exchange (dropped with it).
    let conn = AbortOnDrop(tokio::spawn(conn));
    let resp = sender
        .send_request(req)
        .await
        .map_err(|e| format!("request failed: {e}"))?;
    Ok((resp.status().as_u16(), resp.into_body(), conn))
}

/// Read an answer's body up to `MAX_RESPONSE` bytes (the rest is left unread).
async fn drain(mut body: hyper::body::Incoming) {
    let mut read = 0usize;
    while read < MAX_RESPONSE {
        match body.frame().await {
            Some(Ok(frame)) => read = read.saturating_add(frame.data_ref().map_or(0, |d| d.len())),
            _ => break,
        }
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<Result<(), hyper::Error>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    //! Retry timing under a paused clock, against a real local subscriber
    //! (an axum server on port 0 in the same runtime, so the clock only
    //! moves when both sides wait).
    use super::*;
    use crate::config::Config;
    use crate::journal::{Entry, Journal, Query};
    use crate::sns::{Publish, SubscriptionDecl, TopicDecl};
    use axum::http::{HeaderMap, StatusCode};
    use std::collections::BTreeMap;

    /// What the subscriber saw: when (virtual time) and which message id.
    type Seen = Arc<Mutex<Vec<(crate::clock::Instant, String)>>>;

    /// A subscriber answering `script` in turn (then 200); `None` never answers.
    async fn subscriber(script: Vec<Option<u16>>) -> (String, Seen) {
        let seen: Seen = Default::default();
        let script = Arc::new(Mutex::new(VecDeque::from(script)));
        let log = seen.clone();
        let app = axum::Router::new().fallback(move |headers: HeaderMap| {
            let (log, script) = (log.clone(), script.clone());
            async move {
                let id = headers
                    .get("x-amz-sns-message-id")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_string();
                log.lock().push((crate::clock::now(), id));
                let next = script.lock().pop_front().unwrap_or(Some(200));
                match next {
                    Some(s) => StatusCode::from_u16(s).unwrap_or(StatusCode::OK),
                    None => std::future::pending().await,
                }
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (url, seen)
    }

    fn state(endpoint: &str, delivery_policy: Option<&str>) -> Arc<State> {
        let mut config = Config::default();
        // The signing key is made here on first use, not in the source tree.
        config.certs.dir = std::env::temp_dir().join(format!("avs-sim-deliver-{}", uuid::Uuid::new_v4().simple()));
        config.sns.topics.push(TopicDecl {
            name: "t".into(),
            attributes: BTreeMap::new(),
        });
        let mut attributes = BTreeMap::new();
        if let Some(p) = delivery_policy {
            attributes.insert("DeliveryPolicy".to_string(), p.to_string());
        }
        config.sns.subscriptions.push(SubscriptionDecl {
            topic: "t".into(),
            endpoint: endpoint.into(),
            attributes,
            confirmed: true,
        });
        State::new(config, Arc::new(Journal::new(10_000)))
    }

    fn publish(state: &Arc<State>, message: &str) -> String {
        let arn = state.sns.topic_arn("t");
        crate::sns::publish::publish(
            state,
            &arn,
            Publish {
                message: message.into(),
                ..Publish::default()
            },
        )
        .unwrap()
    }

    /// The first `sns` journal entry matching `pred` (an hour of virtual time at most).
    async fn until(state: &State, pred: impl Fn(&Entry) -> bool) -> Arc<Entry> {
        let mut rx = state.journal.subscribe();
        let deadline = crate::clock::deadline_in(Duration::from_secs(3600));
        loop {
            let q = Query {
                face: Some(Face::Sns),
                limit: Some(usize::MAX),
                ..Query::default()
            };
            if let Some(e) = state.journal.query(&q).into_iter().find(|e| pred(e)) {
                return e;
            }
            tokio::time::timeout_at(deadline, rx.changed())
                .await
                .expect("the entry comes within the deadline")
                .unwrap();
        }
    }

    fn gaps(seen: &Seen) -> Vec<f64> {
        let seen = seen.lock();
        seen.windows(2)
            .map(|w| w[1].0.duration_since(w[0].0).as_secs_f64())
            .collect()
    }

    #[tokio::test(start_paused = true)]
    async fn three_failures_then_success_is_delivered_on_attempt_four_twenty_seconds_apart() {
        let (url, seen) = subscriber(vec![Some(500), Some(500), Some(503)]).await;
        let state = state(&url, None);
        let id = publish(&state, "hello");
        let last = until(&state, |e| e.body["final"] == true).await;
        assert_eq!(last.body["attempt"], 4);
        assert_eq!(last.body["delivered"], true);
        assert_eq!(last.body["status"], 200);
        assert_eq!(gaps(&seen), [20.0, 20.0, 20.0], "SNS's default: 20 s apart");
        assert!(
            seen.lock().iter().all(|(_, m)| *m == id),
            "the same message id every time"
        );
        assert!(dead_letters(&state).is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn the_four_phases_space_retries_and_a_dead_subscriber_ends_in_the_dead_letters() {
        let policy = r#"{"healthyRetryPolicy":{"numRetries":5,"numNoDelayRetries":1,"numMinDelayRetries":1,
            "numMaxDelayRetries":1,"minDelayTarget":2,"maxDelayTarget":8,"backoffFunction":"linear"}}"#;
        let (url, seen) = subscriber(vec![Some(500); 10]).await;
        let state = state(&url, Some(policy));
        let id = publish(&state, "hello");
        let dead = until(&state, |e| e.body["dead_letter"] == true).await;
        assert_eq!(dead.body["message_id"], id.as_str());
        assert_eq!(gaps(&seen), [0.0, 2.0, 5.0, 8.0, 8.0]);
        let letters = dead_letters(&state);
        assert_eq!(letters.len(), 1);
        assert_eq!(letters[0]["attempts"], 6);
        assert_eq!(letters[0]["last_error"], "HTTP 500");
        assert_eq!(letters[0]["endpoint"], url.as_str());
        assert_eq!(attempts(&state, None).len(), 6);
    }

    #[tokio::test(start_paused = true)]
    async fn a_4xx_is_delivered_and_not_retried() {
        let (url, seen) = subscriber(vec![Some(404)]).await;
        let state = state(&url, None);
        publish(&state, "hello");
        let last = until(&state, |e| e.body["final"] == true).await;
        assert_eq!(
            (last.body["attempt"].clone(), last.body["delivered"].clone()),
            (json!(1), json!(true))
        );
        assert_eq!(seen.lock().len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_subscriber_that_never_answers_times_out_after_fifteen_seconds() {
        let (url, seen) = subscriber(vec![None, None]).await;
        let state = state(
            &url,
            Some(r#"{"healthyRetryPolicy":{"numRetries":1,"minDelayTarget":1,"maxDelayTarget":1}}"#),
        );
        let started = crate::clock::now();
        publish(&state, "hello");
        until(&state, |e| e.body["dead_letter"] == true).await;
        let first = until(&state, |e| e.body["attempt"] == 1).await;
        assert_eq!(first.body["error"], "no answer within 15 s");
        assert_eq!(gaps(&seen), [16.0], "15 s timeout, then 1 s");
        assert_eq!(crate::clock::now().duration_since(started), Duration::from_secs(31));
    }

    #[tokio::test(start_paused = true)]
    async fn the_throttle_spaces_deliveries_and_order_is_kept() {
        let (url, seen) = subscriber(vec![]).await;
        let state = state(&url, Some(r#"{"throttlePolicy":{"maxReceivesPerSecond":4}}"#));
        let ids: Vec<String> = (0..5).map(|i| publish(&state, &format!("m{i}"))).collect();
        let last = ids.last().unwrap().clone();
        until(&state, |e| {
            e.body["message_id"] == last.as_str() && e.body["final"] == true
        })
        .await;
        assert_eq!(gaps(&seen), [0.25; 4]);
        let got: Vec<String> = seen.lock().iter().map(|(_, m)| m.clone()).collect();
        assert_eq!(got, ids, "in publish order");
    }

    #[tokio::test(start_paused = true)]
    async fn an_unsubscribe_confirmation_goes_out_after_the_subscription_is_gone() {
        let (url, seen) = subscriber(vec![]).await;
        let state = state(&url, None);
        let sub = state.sns.subscriptions(None).remove(0);
        let gone = state.sns.unsubscribe(&sub.arn).unwrap();
        publish::confirmation(&state, &gone, MessageType::UnsubscribeConfirmation);
        let last = until(&state, |e| e.body["final"] == true).await;
        assert_eq!(last.body["type"], "UnsubscribeConfirmation");
        assert_eq!(last.body["delivered"], true);
        assert_eq!(seen.lock().len(), 1);
        // A Notification for a subscription that is gone is a dead letter.
        enqueue(
            &state,
            Outgoing {
                kind: MessageType::Notification,
                message_id: "m".into(),
                ..gone_outgoing(&gone)
            },
        );
        let dead = until(&state, |e| e.body["dead_letter"] == true).await;
        assert_eq!(dead.body["reason"], "the subscription is gone");
    }

    fn gone_outgoing(sub: &crate::sns::Subscription) -> Outgoing {
        Outgoing {
            kind: MessageType::Notification,
            message_id: String::new(),
            topic_arn: sub.topic_arn.clone(),
            subscription_arn: sub.arn.clone(),
            endpoint: sub.endpoint.clone(),
            timestamp: crate::sns::timestamp(),
            message: "x".into(),
            subject: None,
            attributes: BTreeMap::new(),
            token: None,
            subscribe_url: None,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_dead_letter_list_and_the_attempt_log_are_bounded() {
        let state = state("http://127.0.0.1:1/", None);
        let sub = state.sns.subscriptions(None).remove(0);
        for i in 0..=MAX_DEAD_LETTERS {
            let out = Outgoing {
                message_id: format!("m{i}"),
                ..gone_outgoing(&sub)
            };
            dead_letter(&state, &out, 1, "test", "test");
            record_attempt(&state, &out, 1, Some(500), None, false, true);
        }
        let letters = dead_letters(&state);
        assert_eq!(letters.len(), MAX_DEAD_LETTERS);
        assert_eq!(letters[0]["message_id"], "m1", "the oldest was evicted");
        assert_eq!(attempts(&state, None).len(), MAX_ATTEMPTS_LOG);
        let evicted = until(&state, |e| e.kind == Kind::Evicted).await;
        assert_eq!(evicted.body["message_id"], "m0");
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_queue_sends_the_overflow_to_the_dead_letters() {
        let (url, _seen) = subscriber(vec![None]).await;
        let state = state(&url, Some(r#"{"healthyRetryPolicy":{"numRetries":0}}"#));
        // Publish returns before the worker runs: QUEUE wait, one overflows.
        let ids: Vec<String> = (0..=QUEUE).map(|i| publish(&state, &format!("m{i}"))).collect();
        let over = until(&state, |e| e.body["dead_letter"] == true).await;
        assert_eq!(over.body["message_id"], ids[QUEUE].as_str());
        assert!(over.body["reason"].as_str().unwrap().contains("queue full"));
        let letters = dead_letters(&state);
        assert_eq!(letters.len(), 1);
        assert_eq!(letters[0]["attempts"], 0);
        // The first (hanging) message times out, and the queue moves on.
        let next = until(&state, |e| {
            e.body["message_id"] == ids[1].as_str() && e.body["final"] == true
        })
        .await;
        assert_eq!(next.body["delivered"], true);
    }
}
