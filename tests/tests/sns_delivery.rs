//! SNS delivery over real sockets: retries, the success rule, dead letters,
//! isolation between subscriptions, order, the bounded queue and filter
//! policies. Each test runs its own subscriber (a small HTTP/1.1 server on
//! port 0) scripted per request. Retry *timing* is proven under a paused
//! clock in `sim/src/sns/deliver.rs`; here the policies retry at once
//! (`numNoDelayRetries`) so nothing waits on the wall clock.

use avs_sim::sns::{Attribute, Publish, SubscriptionDecl, TopicDecl};
use avs_sim_tests::{DEADLINE, TestSim};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// How the subscriber answers one request.
#[derive(Debug, Clone, Copy)]
enum Answer {
    Status(u16),
    /// Read the request, then never answer (the connection stays open).
    Hang,
    /// Read the request, then reset the connection.
    Reset,
    /// Answer 200 with a body that never ends.
    Endless,
}

/// A request the subscriber received.
#[derive(Debug)]
struct Received {
    headers: HashMap<String, String>,
    body: String,
}

impl Received {
    fn message_id(&self) -> &str {
        &self.headers["x-amz-sns-message-id"]
    }
}

struct Hook {
    url: String,
    rx: mpsc::UnboundedReceiver<Received>,
}

impl Hook {
    /// A subscriber answering `script` in turn, then `then` for ever.
    async fn start(script: Vec<Answer>, then: Answer) -> Hook {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/sns/hook?x=1", listener.local_addr().unwrap());
        let (tx, rx) = mpsc::unbounded_channel();
        let n = Arc::new(AtomicUsize::new(0));
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let answer = *script.get(n.fetch_add(1, Ordering::SeqCst)).unwrap_or(&then);
                tokio::spawn(serve(tcp, answer, tx.clone()));
            }
        });
        Hook { url, rx }
    }

    /// The next request, within the deadline.
    async fn next(&mut self) -> Received {
        tokio::time::timeout(DEADLINE, self.rx.recv())
            .await
            .expect("a delivery arrives within the deadline")
            .expect("the subscriber runs")
    }
}

/// Read one request (head and Content-Length body), then answer as told.
async fn serve(mut tcp: TcpStream, answer: Answer, tx: mpsc::UnboundedSender<Received>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        match tcp.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let headers: HashMap<String, String> = head
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let len: usize = headers.get("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
    while buf.len() < head_end + len {
        match tcp.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let body = String::from_utf8_lossy(&buf[head_end..head_end + len]).to_string();
    let _ = tx.send(Received { headers, body });
    match answer {
        Answer::Status(s) => {
            let reply = format!("HTTP/1.1 {s} X\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok");
            let _ = tcp.write_all(reply.as_bytes()).await;
            let _ = tcp.shutdown().await;
        }
        Answer::Hang => {
            // Held open until the simulator gives up on it.
            let _ = tcp.read(&mut chunk).await;
        }
        Answer::Endless => {
            let head = "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n";
            if tcp.write_all(head.as_bytes()).await.is_err() {
                return;
            }
            let chunk = format!("4000\r\n{}\r\n", "x".repeat(0x4000));
            while tcp.write_all(chunk.as_bytes()).await.is_ok() {}
        }
        Answer::Reset => {
            let _ = tcp.set_zero_linger();
            drop(tcp);
        }
    }
}

/// A policy retrying `n` times at once.
fn immediate(n: u32) -> String {
    format!(r#"{{"healthyRetryPolicy":{{"numRetries":{n},"numNoDelayRetries":{n}}}}}"#)
}

/// A simulator with topic `t` and confirmed subscriptions (endpoint, attributes).
async fn sim(subs: Vec<(&str, Vec<(&str, &str)>)>) -> TestSim {
    let subs: Vec<SubscriptionDecl> = subs
        .into_iter()
        .map(|(endpoint, attrs)| SubscriptionDecl {
            topic: "t".into(),
            endpoint: endpoint.into(),
            attributes: attrs.into_iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            confirmed: true,
        })
        .collect();
    TestSim::start(move |c| {
        c.sns.topics.push(TopicDecl {
            name: "t".into(),
            attributes: BTreeMap::new(),
        });
        c.sns.subscriptions = subs;
    })
    .await
}

fn publish_with(sim: &TestSim, message: &str, attributes: &[(&str, &str, &str)]) -> String {
    let state = &sim.handle.state;
    let p = Publish {
        message: message.into(),
        subject: None,
        attributes: attributes
            .iter()
            .map(|(k, t, v)| {
                (
                    k.to_string(),
                    Attribute {
                        data_type: t.to_string(),
                        value: v.to_string(),
                    },
                )
            })
            .collect(),
    };
    avs_sim::sns::publish::publish(state, &state.sns.topic_arn("t"), p).expect("publish accepted")
}

fn publish(sim: &TestSim, message: &str) -> String {
    publish_with(sim, message, &[])
}

/// The subscription ARN whose endpoint is `url`.
fn sub_arn(sim: &TestSim, url: &str) -> String {
    sim.handle
        .state
        .sns
        .subscriptions(None)
        .into_iter()
        .find(|s| s.endpoint == url)
        .expect("subscription exists")
        .arn
}

fn is_final(e: &Value, message_id: &str) -> bool {
    e["face"] == "sns" && e["body"]["message_id"] == message_id && e["body"]["final"] == true
}

#[tokio::test]
async fn three_failures_then_success_delivers_once_on_attempt_four_with_one_message_id() {
    let mut hook = Hook::start(
        vec![Answer::Status(500), Answer::Status(502), Answer::Status(503)],
        Answer::Status(200),
    )
    .await;
    let policy = immediate(3);
    let sim = sim(vec![(&hook.url, vec![("DeliveryPolicy", &policy)])]).await;
    let id = publish(&sim, "hello");
    for _ in 0..4 {
        let r = hook.next().await;
        assert_eq!(r.message_id(), id, "the same x-amz-sns-message-id on every attempt");
        assert_eq!(r.headers["x-amz-sns-message-type"], "Notification");
    }
    let last = sim.await_entry(None, |e| is_final(e, &id)).await;
    assert_eq!(last["body"]["attempt"], 4);
    assert_eq!(last["body"]["delivered"], true);
    assert_eq!(last["body"]["status"], 200);
    assert_eq!(
        last["summary"],
        format!("attempt 4 of {id} to {}: 200", hook.url).as_str()
    );
    let (_, deliveries) = sim
        .get(&format!(
            "/api/sns/deliveries?subscription={}",
            sub_arn(&sim, &hook.url)
        ))
        .await;
    let statuses: Vec<&Value> = deliveries["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| &d["status"])
        .collect();
    assert_eq!(statuses, [500, 502, 503, 200]);
    let (_, dead) = sim.get("/api/sns/dead-letters").await;
    assert_eq!(dead["dead_letters"], serde_json::json!([]));
    sim.stop().await;
}

#[tokio::test]
async fn a_dead_subscriber_ends_in_the_dead_letter_list() {
    // A port nothing listens on: every attempt is a connection error.
    let dead_url = {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        format!("http://{}/gone", l.local_addr().unwrap())
    };
    let policy = immediate(2);
    let sim = sim(vec![(&dead_url, vec![("DeliveryPolicy", &policy)])]).await;
    let id = publish(&sim, "hello");
    let entry = sim
        .await_entry(None, |e| e["face"] == "sns" && e["body"]["dead_letter"] == true)
        .await;
    assert_eq!(entry["kind"], "error");
    assert_eq!(entry["body"]["message_id"], id.as_str());
    assert!(entry["body"]["reason"].as_str().unwrap().contains("retries exhausted"));
    let (status, dead) = sim.get("/api/sns/dead-letters").await;
    assert_eq!(status, 200);
    let letters = dead["dead_letters"].as_array().unwrap();
    assert_eq!(letters.len(), 1, "{dead}");
    let l = &letters[0];
    assert_eq!(l["message_id"], id.as_str());
    assert_eq!(l["subscription"], sub_arn(&sim, &dead_url).as_str());
    assert_eq!(l["type"], "Notification");
    assert_eq!(l["attempts"], 3);
    assert_eq!(l["endpoint"], dead_url.as_str());
    assert!(l["last_error"].as_str().unwrap().contains("cannot connect"), "{l}");
    let (_, none) = sim.get("/api/sns/dead-letters?subscription=nope").await;
    assert_eq!(none["dead_letters"], serde_json::json!([]));
    sim.stop().await;
}

#[tokio::test]
async fn a_4xx_answer_is_delivered_and_not_retried() {
    let mut hook = Hook::start(vec![Answer::Status(400)], Answer::Status(200)).await;
    let policy = immediate(3);
    let sim = sim(vec![(&hook.url, vec![("DeliveryPolicy", &policy)])]).await;
    let id = publish(&sim, "one");
    assert_eq!(hook.next().await.message_id(), id);
    let last = sim.await_entry(None, |e| is_final(e, &id)).await;
    assert_eq!(
        (last["body"]["attempt"].as_u64(), last["body"]["status"].as_u64()),
        (Some(1), Some(400))
    );
    assert_eq!(last["body"]["delivered"], true);
    // The next message comes through next: nothing was retried in between.
    let id2 = publish(&sim, "two");
    assert_eq!(hook.next().await.message_id(), id2);
    sim.stop().await;
}

#[tokio::test]
async fn hanging_and_resetting_subscribers_do_not_hold_up_another_subscription() {
    let mut hang = Hook::start(vec![], Answer::Hang).await;
    let mut reset = Hook::start(vec![], Answer::Reset).await;
    let mut good = Hook::start(vec![], Answer::Status(200)).await;
    let policy = immediate(0);
    let sim = sim(vec![
        (&hang.url, vec![("DeliveryPolicy", &policy)]),
        (&reset.url, vec![("DeliveryPolicy", &policy)]),
        (&good.url, vec![]),
    ])
    .await;
    let ids: Vec<String> = (0..3).map(|i| publish(&sim, &format!("m{i}"))).collect();
    assert_eq!(
        hang.next().await.message_id(),
        ids[0],
        "the hanging subscriber got the first"
    );
    assert_eq!(reset.next().await.message_id(), ids[0]);
    for id in &ids {
        assert_eq!(good.next().await.message_id(), id, "the healthy one gets all, in order");
        sim.await_entry(None, |e| {
            is_final(e, id) && e["summary"].as_str().unwrap().contains(&good.url)
        })
        .await;
    }
    // The reset is a failed attempt (and, with no retries, a dead letter).
    let reset_arn = sub_arn(&sim, &reset.url);
    let e = sim
        .await_entry(None, |e| {
            e["body"]["subscription"] == reset_arn.as_str() && e["body"]["attempt"] == 1
        })
        .await;
    assert_eq!(e["body"]["delivered"], false);
    assert!(e["body"]["error"].is_string(), "{e}");
    // The hanging one is still on its first message (15 s timeout).
    let hang_arn = sub_arn(&sim, &hang.url);
    let attempts = sim.handle.state.journal.query(&avs_sim::journal::Query {
        face: Some(avs_sim::journal::Face::Sns),
        limit: Some(usize::MAX),
        ..Default::default()
    });
    assert!(
        !attempts
            .iter()
            .any(|e| e.body["subscription"] == hang_arn.as_str() && e.body["attempt"].is_number()),
        "the hanging subscriber has not answered yet, and the others were served"
    );
    sim.stop().await;
}

#[tokio::test]
async fn an_endless_answer_is_read_only_up_to_its_bound() {
    let mut hook = Hook::start(vec![Answer::Endless], Answer::Status(200)).await;
    let sim = sim(vec![(&hook.url, vec![])]).await;
    let first = publish(&sim, "one");
    let second = publish(&sim, "two");
    assert_eq!(hook.next().await.message_id(), first);
    // Reading the endless body to the 15 s timeout would miss this deadline.
    assert_eq!(hook.next().await.message_id(), second);
    let e = sim.await_entry(None, |e| is_final(e, &first)).await;
    assert_eq!(e["body"]["status"], 200);
    sim.stop().await;
}

#[tokio::test]
async fn an_https_subscriber_is_reached_trusting_the_simulators_ca() {
    let sim = sim(vec![]).await;
    // The simulator's own TLS listener stands in for an https subscriber:
    // its certificate comes from the simulator's CA.
    let url = format!("https://{}/sns-https-probe", sim.handle.addrs.avs);
    let sns = &sim.handle.state.sns;
    let sub = sns
        .subscribe(&sns.topic_arn("t"), "https", &url, BTreeMap::new())
        .unwrap();
    sns.confirm(&sub.topic_arn, &sub.token).unwrap();
    let id = publish(&sim, "over TLS");
    let e = sim.await_entry(None, |e| is_final(e, &id)).await;
    assert_eq!(e["body"]["attempt"], 1, "{e}");
    assert!(e["body"]["status"].is_u64(), "an HTTP answer came back over TLS: {e}");
    sim.stop().await;
}

#[tokio::test]
async fn twenty_messages_arrive_in_publish_order() {
    // Some attempts fail: a retried message still comes before the next.
    let mut hook = Hook::start(
        vec![Answer::Status(500), Answer::Status(200), Answer::Reset],
        Answer::Status(200),
    )
    .await;
    let policy = immediate(2);
    let sim = sim(vec![(&hook.url, vec![("DeliveryPolicy", &policy)])]).await;
    let ids: Vec<String> = (0..20).map(|i| publish(&sim, &format!("m{i}"))).collect();
    let mut got: Vec<String> = Vec::new();
    while got.len() < 22 {
        got.push(hook.next().await.message_id().to_string());
    }
    got.dedup();
    assert_eq!(got, ids);
    sim.stop().await;
}

#[tokio::test]
async fn an_overflowing_queue_goes_to_the_dead_letters_with_a_journal_entry() {
    let mut hang = Hook::start(vec![], Answer::Hang).await;
    let policy = immediate(0);
    let sim = sim(vec![(&hang.url, vec![("DeliveryPolicy", &policy)])]).await;
    // This test's runtime is single-threaded: the worker cannot take any
    // message before these publishes return, so exactly one overflows.
    let ids: Vec<String> = (0..=avs_sim::sns::deliver::QUEUE)
        .map(|i| publish(&sim, &format!("m{i}")))
        .collect();
    let over = ids.last().unwrap().clone();
    let e = sim
        .await_entry(None, |e| {
            e["body"]["dead_letter"] == true && e["body"]["message_id"] == over.as_str()
        })
        .await;
    assert!(e["body"]["reason"].as_str().unwrap().contains("queue full"), "{e}");
    let (_, dead) = sim.get("/api/sns/dead-letters").await;
    let letters = dead["dead_letters"].as_array().unwrap();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0]["message_id"], over.as_str());
    assert_eq!(letters[0]["attempts"], 0);
    assert_eq!(hang.next().await.message_id(), ids[0], "the queue is still worked");
    sim.stop().await;
}

#[tokio::test]
async fn filter_policies_let_through_or_filter_out() {
    let mut red = Hook::start(vec![], Answer::Status(200)).await;
    let mut body = Hook::start(vec![], Answer::Status(200)).await;
    let sim = sim(vec![
        (
            &red.url,
            vec![("FilterPolicy", r#"{"color":["red"],"size":[{"numeric":[">",2]}]}"#)],
        ),
        (
            &body.url,
            vec![
                (
                    "FilterPolicy",
                    r#"{"header":{"eventType":{"namespace":[{"prefix":"Alexa.Skill"}]}}}"#,
                ),
                ("FilterPolicyScope", "MessageBody"),
            ],
        ),
    ])
    .await;
    let blue = publish_with(&sim, "b", &[("color", "String", "blue"), ("size", "Number", "5")]);
    let e = sim
        .await_entry(None, |e| {
            e["body"]["message_id"] == blue.as_str() && e["body"]["subscription"] == sub_arn(&sim, &red.url).as_str()
        })
        .await;
    assert_eq!(
        e["summary"],
        format!("{blue} filtered out for {}", sub_arn(&sim, &red.url)).as_str()
    );
    assert_eq!(e["body"]["reason"], "FilterPolicy");
    let event = r#"{"header":{"eventType":{"namespace":"Alexa.Skill.Interaction","name":"Failure"}}}"#;
    let through = publish_with(&sim, event, &[("color", "String", "red"), ("size", "Number", "3")]);
    assert_eq!(red.next().await.message_id(), through, "red, size 3 passes");
    assert_eq!(
        body.next().await.message_id(),
        through,
        "the payload's namespace passes"
    );
    let r = serde_json::from_str::<Value>(&publish_body_of(&mut red, &sim).await).unwrap();
    assert_eq!(r["Message"], "last");
    sim.stop().await;
}

/// Publish "last" (red, big) and return the body `hook` receives.
async fn publish_body_of(hook: &mut Hook, sim: &TestSim) -> String {
    let id = publish_with(sim, "last", &[("color", "String", "red"), ("size", "Number", "9")]);
    let r = hook.next().await;
    assert_eq!(r.message_id(), id, "the filtered-out blue message never arrived");
    r.body
}

#[tokio::test]
async fn declared_subscriptions_not_confirmed_get_a_subscription_confirmation_at_start() {
    let mut hook = Hook::start(vec![], Answer::Status(200)).await;
    let url = hook.url.clone();
    let sim = TestSim::start(move |c| {
        c.sns.topics.push(TopicDecl {
            name: "t".into(),
            attributes: BTreeMap::new(),
        });
        c.sns.subscriptions.push(SubscriptionDecl {
            topic: "t".into(),
            endpoint: url,
            attributes: BTreeMap::new(),
            confirmed: false,
        });
    })
    .await;
    let r = hook.next().await;
    assert_eq!(r.headers["x-amz-sns-message-type"], "SubscriptionConfirmation");
    let sub = sim.handle.state.sns.subscriptions(None).remove(0);
    assert!(sub.pending);
    // Nothing is delivered to it until it is confirmed.
    let id = publish(&sim, "not yet");
    sim.handle.state.sns.confirm(&sub.topic_arn, &sub.token).unwrap();
    let id2 = publish(&sim, "now");
    assert_eq!(hook.next().await.message_id(), id2, "{id} was not delivered");
    sim.stop().await;
}
