//! The SNS Query API subset (issue 9 items 1, 4, 7, 8) over real sockets:
//! form posts on the plain listener (reqwest, HTTP/1.1) and on the TLS
//! listener (HTTP/2), the XML parsed and its shape asserted, the
//! SubscribeURL / UnsubscribeURL GETs, the control API for topics and
//! subscriptions, a proptest over arbitrary bodies, and boto3 itself.

use avs_sim_tests::{DEADLINE, TestSim};
use bytes::Bytes;
use proptest::prelude::*;
use quick_xml::events::Event;
use serde_json::{Value, json};

const NS: &str = "http://sns.amazonaws.com/doc/2010-03-31/";

/// An XML element: name, attributes, text, children.
#[derive(Debug, Clone, Default)]
struct El {
    name: String,
    attrs: Vec<(String, String)>,
    text: String,
    children: Vec<El>,
}

impl El {
    fn parse(xml: &str) -> El {
        let mut r = quick_xml::Reader::from_str(xml);
        let mut stack = vec![El::default()];
        loop {
            match r.read_event().unwrap_or_else(|e| panic!("XML {xml:?}: {e}")) {
                Event::Start(s) => stack.push(El {
                    name: String::from_utf8(s.name().as_ref().to_vec()).unwrap(),
                    attrs: s
                        .attributes()
                        .map(|a| {
                            let a = a.unwrap();
                            (
                                String::from_utf8(a.key.as_ref().to_vec()).unwrap(),
                                a.unescape_value().unwrap().into_owned(),
                            )
                        })
                        .collect(),
                    ..El::default()
                }),
                Event::Empty(s) => {
                    let el = El {
                        name: String::from_utf8(s.name().as_ref().to_vec()).unwrap(),
                        ..El::default()
                    };
                    stack.last_mut().unwrap().children.push(el);
                }
                Event::Text(t) => stack.last_mut().unwrap().text.push_str(&t.decode().unwrap()),
                Event::GeneralRef(g) => {
                    let name = g.decode().unwrap();
                    let s = match &*name {
                        "amp" => "&".to_string(),
                        "lt" => "<".to_string(),
                        "gt" => ">".to_string(),
                        "quot" => "\"".to_string(),
                        "apos" => "'".to_string(),
                        n if n.starts_with("#") => char::from_u32(
                            u32::from_str_radix(
                                n.trim_start_matches("#x").trim_start_matches('#'),
                                if n.starts_with("#x") { 16 } else { 10 },
                            )
                            .unwrap(),
                        )
                        .unwrap()
                        .to_string(),
                        n => panic!("unknown entity {n}"),
                    };
                    stack.last_mut().unwrap().text.push_str(&s);
                }
                Event::End(_) => {
                    let el = stack.pop().unwrap();
                    stack.last_mut().unwrap().children.push(el);
                }
                Event::Eof => break,
                _ => {}
            }
        }
        assert_eq!(stack.len(), 1, "unbalanced XML {xml:?}");
        let mut root = stack.pop().unwrap();
        assert_eq!(root.children.len(), 1, "one root element in {xml:?}");
        root.children.pop().unwrap()
    }

    fn child(&self, name: &str) -> &El {
        self.children
            .iter()
            .find(|c| c.name == name)
            .unwrap_or_else(|| panic!("no <{name}> in <{}>: {self:#?}", self.name))
    }

    /// The text at a `/`-separated path below this element.
    fn at(&self, path: &str) -> &str {
        path.split('/').fold(self, |e, n| e.child(n)).text.as_str()
    }

    fn all(&self, name: &str) -> Vec<&El> {
        self.children.iter().filter(|c| c.name == name).collect()
    }

    /// `<Attributes><entry><key/><value/></entry>…` as pairs.
    fn map(&self) -> std::collections::BTreeMap<String, String> {
        self.all("entry")
            .into_iter()
            .map(|e| (e.at("key").to_string(), e.at("value").to_string()))
            .collect()
    }
}

/// A success answer: 200, `<{action}Response xmlns=NS>` with a RequestId; the `<{action}Result>` (or the root).
fn ok(action: &str, (status, xml): (u16, String)) -> El {
    assert_eq!(status, 200, "{action}: {xml}");
    let doc = El::parse(&xml);
    assert_eq!(doc.name, format!("{action}Response"), "{xml}");
    assert_eq!(doc.attrs, vec![("xmlns".to_string(), NS.to_string())]);
    assert_eq!(doc.at("ResponseMetadata/RequestId").len(), 36, "{xml}");
    doc.children
        .iter()
        .find(|c| c.name == format!("{action}Result"))
        .cloned()
        .unwrap_or(doc)
}

/// An error answer: the status, `<ErrorResponse>` with Type Sender, the code; the message.
fn err(want_status: u16, want_code: &str, (status, xml): (u16, String)) -> String {
    assert_eq!(status, want_status, "{xml}");
    let doc = El::parse(&xml);
    assert_eq!(doc.name, "ErrorResponse", "{xml}");
    assert_eq!(doc.attrs, vec![("xmlns".to_string(), NS.to_string())]);
    assert_eq!(doc.at("Error/Type"), "Sender", "{xml}");
    assert_eq!(doc.at("Error/Code"), want_code, "{xml}");
    assert_eq!(doc.at("RequestId").len(), 36, "{xml}");
    doc.at("Error/Message").to_string()
}

fn form(pairs: &[(&str, &str)]) -> String {
    let mut s = String::new();
    for (k, v) in pairs {
        if !s.is_empty() {
            s.push('&');
        }
        s.push_str(&urlencode(k));
        s.push('=');
        s.push_str(&urlencode(v));
    }
    s
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            b' ' => "+".to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `POST /` on the plain listener with a SigV4-looking Authorization (not checked).
async fn post_raw(sim: &TestSim, body: impl Into<reqwest::Body>) -> (u16, String) {
    let resp = sim
        .http
        .post(format!("http://{}/", sim.handle.addrs.plain))
        .header("content-type", "application/x-www-form-urlencoded; charset=utf-8")
        .header(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=x/20260101/us-east-1/sns/aws4_request, SignedHeaders=host, Signature=00",
        )
        .body(body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    assert_eq!(resp.headers()["content-type"], "text/xml");
    (status, resp.text().await.unwrap())
}

async fn call(sim: &TestSim, action: &str, params: &[(&str, &str)]) -> (u16, String) {
    let mut all = vec![("Action", action), ("Version", "2010-03-31")];
    all.extend_from_slice(params);
    post_raw(sim, form(&all)).await
}

/// `GET {path_and_query}` on the plain listener.
async fn get_plain(sim: &TestSim, path_and_query: &str) -> (u16, String) {
    let resp = sim
        .http
        .get(format!("http://{}{path_and_query}", sim.handle.addrs.plain))
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

/// The path and query of an absolute URL.
fn path_of(url: &str) -> &str {
    let rest = url.split_once("://").unwrap().1;
    &rest[rest.find('/').unwrap()..]
}

async fn control(sim: &TestSim, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut req = sim.http.request(method.parse().unwrap(), sim.control(path));
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap_or(Value::Null))
}

async fn create(sim: &TestSim, name: &str) -> String {
    ok("CreateTopic", call(sim, "CreateTopic", &[("Name", name)]).await)
        .at("TopicArn")
        .to_string()
}

#[tokio::test]
async fn topics_lifecycle_and_attributes() {
    let sim = TestSim::start(|_| {}).await;
    let r = ok(
        "CreateTopic",
        call(
            &sim,
            "CreateTopic",
            &[
                ("Name", "orders"),
                ("Attributes.entry.1.key", "SignatureVersion"),
                ("Attributes.entry.1.value", "2"),
                ("Attributes.entry.2.key", "DisplayName"),
                ("Attributes.entry.2.value", "Orders & <more>"),
                ("Tags.member.1.Key", "team"),
                ("Tags.member.1.Value", "x"),
            ],
        )
        .await,
    );
    let arn = r.at("TopicArn").to_string();
    assert_eq!(arn, "arn:aws:sns:us-east-1:000000000000:orders");
    assert_eq!(create(&sim, "orders").await, arn, "same name, same ARN");
    let attrs = ok(
        "GetTopicAttributes",
        call(&sim, "GetTopicAttributes", &[("TopicArn", &arn)]).await,
    )
    .child("Attributes")
    .map();
    assert_eq!(attrs["TopicArn"], arn);
    assert_eq!(attrs["Owner"], "000000000000");
    assert_eq!(attrs["SignatureVersion"], "2");
    assert_eq!(attrs["DisplayName"], "Orders & <more>", "escaped and read back");
    assert_eq!(attrs["SubscriptionsConfirmed"], "0");
    assert_eq!(attrs["SubscriptionsPending"], "0");
    let eff: Value = serde_json::from_str(&attrs["EffectiveDeliveryPolicy"]).unwrap();
    assert_eq!(eff["http"]["defaultHealthyRetryPolicy"]["numRetries"], 3);
    assert_eq!(eff["http"]["defaultHealthyRetryPolicy"]["minDelayTarget"], 20);
    let policy: Value = serde_json::from_str(&attrs["Policy"]).unwrap();
    assert_eq!(policy["Statement"][0]["Resource"], arn);

    ok(
        "SetTopicAttributes",
        call(
            &sim,
            "SetTopicAttributes",
            &[
                ("TopicArn", &arn),
                ("AttributeName", "DeliveryPolicy"),
                (
                    "AttributeValue",
                    r#"{"http":{"defaultHealthyRetryPolicy":{"numRetries":5}}}"#,
                ),
            ],
        )
        .await,
    );
    let attrs = ok(
        "GetTopicAttributes",
        call(&sim, "GetTopicAttributes", &[("TopicArn", &arn)]).await,
    )
    .child("Attributes")
    .map();
    let eff: Value = serde_json::from_str(&attrs["EffectiveDeliveryPolicy"]).unwrap();
    assert_eq!(eff["http"]["defaultHealthyRetryPolicy"]["numRetries"], 5);
    assert_eq!(eff["http"]["defaultHealthyRetryPolicy"]["maxDelayTarget"], 20);
    let set = |name: &'static str, value: &'static str| {
        let arn = arn.clone();
        let sim = &sim;
        async move {
            call(
                sim,
                "SetTopicAttributes",
                &[("TopicArn", &arn), ("AttributeName", name), ("AttributeValue", value)],
            )
            .await
        }
    };
    assert!(err(400, "InvalidParameter", set("SignatureVersion", "3").await).contains("SignatureVersion"));
    assert!(err(400, "InvalidParameter", set("DeliveryPolicy", "{not json").await).contains("DeliveryPolicy"));
    assert!(err(400, "InvalidParameter", set("Bogus", "1").await).contains("Bogus"));
    ok("SetTopicAttributes", set("SignatureVersion", "1").await);

    // ListTopics pages by 100 with NextToken.
    for i in 0..150 {
        create(&sim, &format!("t{i:03}")).await;
    }
    let first = ok("ListTopics", call(&sim, "ListTopics", &[]).await);
    assert_eq!(first.child("Topics").all("member").len(), 100);
    let next = first.at("NextToken").to_string();
    let second = ok("ListTopics", call(&sim, "ListTopics", &[("NextToken", &next)]).await);
    // 150 + the test's topic + `[asp] topic` (asp-events, created at start).
    assert_eq!(second.child("Topics").all("member").len(), 52);
    assert!(second.children.iter().all(|c| c.name != "NextToken"));

    ok("DeleteTopic", call(&sim, "DeleteTopic", &[("TopicArn", &arn)]).await);
    let m = err(
        404,
        "NotFound",
        call(&sim, "GetTopicAttributes", &[("TopicArn", &arn)]).await,
    );
    assert!(m.contains("Topic does not exist"), "{m}");
    err(
        400,
        "InvalidParameter",
        call(&sim, "CreateTopic", &[("Name", "bad name")]).await,
    );
    assert!(err(400, "MissingParameter", call(&sim, "CreateTopic", &[]).await).contains("Name"));
    assert!(
        err(
            400,
            "InvalidParameter",
            call(&sim, "GetTopicAttributes", &[("TopicArn", "nope")]).await
        )
        .contains("TopicArn")
    );
    sim.stop().await;
}

/// The SubscribeURL the control API shows for a pending subscription.
async fn pending_url(sim: &TestSim, sub: &str) -> String {
    let (status, topics) = control(sim, "GET", "/api/sns/topics", None).await;
    assert_eq!(status, 200);
    topics["topics"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|t| t["subscriptions"].as_array().unwrap().clone())
        .find(|s| s["arn"] == sub)
        .and_then(|s| s["subscribe_url"].as_str().map(str::to_string))
        .unwrap_or_else(|| panic!("{sub} pending with a subscribe_url in {topics}"))
}

#[tokio::test]
async fn subscriptions_over_tls_and_confirmation_by_subscribe_url() {
    let sim = TestSim::start(|_| {}).await;
    let topic = create(&sim, "events").await;
    // Over TLS (HTTP/2), unsigned.
    let mut tls = sim.tls_device("").await;
    let mut tls_call = async |pairs: &[(&str, &str)]| {
        let a = tls
            .call(
                http::Method::POST,
                "/",
                Some("application/x-www-form-urlencoded; charset=utf-8"),
                Bytes::from(form(pairs)),
            )
            .await
            .unwrap();
        (a.status, String::from_utf8(a.body.to_vec()).unwrap())
    };
    let r = ok(
        "Subscribe",
        tls_call(&[
            ("Action", "Subscribe"),
            ("TopicArn", &topic),
            ("Protocol", "http"),
            ("Endpoint", "http://127.0.0.1:9/a"),
        ])
        .await,
    );
    assert_eq!(r.at("SubscriptionArn"), "pending confirmation");
    let r = ok(
        "Subscribe",
        tls_call(&[
            ("Action", "Subscribe"),
            ("TopicArn", &topic),
            ("Protocol", "http"),
            ("Endpoint", "http://127.0.0.1:9/b"),
            ("Attributes.entry.1.key", "RawMessageDelivery"),
            ("Attributes.entry.1.value", "true"),
            ("ReturnSubscriptionArn", "true"),
        ])
        .await,
    );
    let sub = r.at("SubscriptionArn").to_string();
    assert!(sub.starts_with(&format!("{topic}:")), "{sub}");
    // Subscribing the same endpoint again with other attributes is refused.
    let m = err(
        400,
        "InvalidParameter",
        tls_call(&[
            ("Action", "Subscribe"),
            ("TopicArn", &topic),
            ("Protocol", "http"),
            ("Endpoint", "http://127.0.0.1:9/b"),
        ])
        .await,
    );
    assert!(m.contains("different attributes"), "{m}");
    err(
        400,
        "InvalidParameter",
        tls_call(&[
            ("Action", "Subscribe"),
            ("TopicArn", &topic),
            ("Protocol", "sms"),
            ("Endpoint", "1"),
        ])
        .await,
    );
    err(
        404,
        "NotFound",
        tls_call(&[
            ("Action", "Subscribe"),
            ("TopicArn", "arn:aws:sns:us-east-1:000000000000:nope"),
            ("Protocol", "http"),
            ("Endpoint", "http://h/"),
        ])
        .await,
    );

    let attrs = ok(
        "GetSubscriptionAttributes",
        call(&sim, "GetSubscriptionAttributes", &[("SubscriptionArn", &sub)]).await,
    )
    .child("Attributes")
    .map();
    assert_eq!(attrs["PendingConfirmation"], "true");
    assert_eq!(attrs["RawMessageDelivery"], "true");
    assert_eq!(attrs["Protocol"], "http");
    assert_eq!(attrs["Endpoint"], "http://127.0.0.1:9/b");
    assert_eq!(attrs["TopicArn"], topic);
    assert_eq!(attrs["ConfirmationWasAuthenticated"], "false");
    let eff: Value = serde_json::from_str(&attrs["EffectiveDeliveryPolicy"]).unwrap();
    assert_eq!(eff["healthyRetryPolicy"]["numRetries"], 3);

    let listed = ok("ListSubscriptions", call(&sim, "ListSubscriptions", &[]).await);
    let members = listed.child("Subscriptions").all("member");
    assert_eq!(members.len(), 2);
    assert!(members.iter().all(|m| m.at("SubscriptionArn") == "PendingConfirmation"));
    assert!(
        members
            .iter()
            .all(|m| m.at("TopicArn") == topic && m.at("Owner") == "000000000000")
    );

    // Token errors, then the GET on the SubscribeURL (plain listener).
    let url = pending_url(&sim, &sub).await;
    let path = path_of(&url);
    assert!(path.starts_with("/?Action=ConfirmSubscription&TopicArn="), "{url}");
    assert_eq!(
        err(
            400,
            "InvalidParameter",
            get_plain(
                &sim,
                &format!("/?Action=ConfirmSubscription&TopicArn={topic}&Token=nope")
            )
            .await
        ),
        "Invalid parameter: Token"
    );
    let elsewhere = topic.replace("us-east-1", "eu-west-1");
    let token = path.rsplit_once("Token=").unwrap().1;
    assert_eq!(
        err(
            400,
            "InvalidParameter",
            call(
                &sim,
                "ConfirmSubscription",
                &[("TopicArn", &elsewhere), ("Token", token)]
            )
            .await
        ),
        "Invalid parameter: Topic"
    );
    let r = ok("ConfirmSubscription", get_plain(&sim, path).await);
    assert_eq!(r.at("SubscriptionArn"), sub);
    sim.await_entry(None, |e| {
        e["face"] == "sns" && e["summary"] == format!("subscription {sub} confirmed") && e["body"]["confirmed"] == true
    })
    .await;
    // Confirming again is idempotent; a same-region ARN of another topic still confirms (sns.md §6).
    let other = topic.replace(":events", ":other");
    let r = ok(
        "ConfirmSubscription",
        call(&sim, "ConfirmSubscription", &[("TopicArn", &other), ("Token", token)]).await,
    );
    assert_eq!(r.at("SubscriptionArn"), sub);
    let attrs = ok(
        "GetSubscriptionAttributes",
        call(&sim, "GetSubscriptionAttributes", &[("SubscriptionArn", &sub)]).await,
    )
    .child("Attributes")
    .map();
    assert_eq!(attrs["PendingConfirmation"], "false");

    let by_topic = ok(
        "ListSubscriptionsByTopic",
        call(&sim, "ListSubscriptionsByTopic", &[("TopicArn", &topic)]).await,
    );
    assert!(
        by_topic
            .child("Subscriptions")
            .all("member")
            .iter()
            .any(|m| m.at("SubscriptionArn") == sub)
    );

    let set = |name: &'static str, value: &'static str| {
        let (sim, sub) = (&sim, sub.clone());
        async move {
            call(
                sim,
                "SetSubscriptionAttributes",
                &[
                    ("SubscriptionArn", &sub),
                    ("AttributeName", name),
                    ("AttributeValue", value),
                ],
            )
            .await
        }
    };
    ok(
        "SetSubscriptionAttributes",
        set("FilterPolicy", r#"{"kind":["a"]}"#).await,
    );
    ok("SetSubscriptionAttributes", set("RawMessageDelivery", "false").await);
    assert!(err(400, "InvalidParameter", set("Endpoint", "http://x/").await).contains("Endpoint"));
    assert!(err(400, "InvalidParameter", set("FilterPolicyScope", "Nope").await).contains("FilterPolicyScope"));
    let attrs = ok(
        "GetSubscriptionAttributes",
        call(&sim, "GetSubscriptionAttributes", &[("SubscriptionArn", &sub)]).await,
    )
    .child("Attributes")
    .map();
    assert_eq!(attrs["FilterPolicy"], r#"{"kind":["a"]}"#);
    assert_eq!(attrs["FilterPolicyScope"], "MessageAttributes");
    assert_eq!(attrs["RawMessageDelivery"], "false");

    // The UnsubscribeURL.
    ok(
        "Unsubscribe",
        get_plain(&sim, &format!("/?Action=Unsubscribe&SubscriptionArn={sub}")).await,
    );
    err(
        404,
        "NotFound",
        call(&sim, "GetSubscriptionAttributes", &[("SubscriptionArn", &sub)]).await,
    );
    sim.await_entry(None, |e| {
        e["face"] == "sns" && e["summary"] == format!("UnsubscribeConfirmation for {sub}")
    })
    .await;
    sim.stop().await;
}

#[tokio::test]
async fn publish_and_publish_batch() {
    let sim = TestSim::start(|_| {}).await;
    let topic = create(&sim, "pub").await;
    let r = ok(
        "Publish",
        call(
            &sim,
            "Publish",
            &[
                ("TopicArn", &topic),
                ("Message", "hello & <world>"),
                ("Subject", "greeting"),
                ("MessageAttributes.entry.1.Name", "kind"),
                ("MessageAttributes.entry.1.Value.DataType", "String"),
                ("MessageAttributes.entry.1.Value.StringValue", "a"),
                ("MessageAttributes.entry.2.Name", "n"),
                ("MessageAttributes.entry.2.Value.DataType", "Number"),
                ("MessageAttributes.entry.2.Value.StringValue", "7"),
                ("MessageAttributes.entry.3.Name", "bin"),
                ("MessageAttributes.entry.3.Value.DataType", "Binary"),
                ("MessageAttributes.entry.3.Value.BinaryValue", "AAEC"),
            ],
        )
        .await,
    );
    let id = r.at("MessageId").to_string();
    assert_eq!(id.len(), 36);
    let e = sim
        .await_entry(None, |e| e["face"] == "sns" && e["body"]["message_id"] == id.as_str())
        .await;
    assert_eq!(e["body"]["message"], "hello & <world>");
    assert_eq!(e["body"]["subject"], "greeting");
    assert_eq!(e["body"]["attributes"]["n"], json!({"Type": "Number", "Value": "7"}));
    assert_eq!(
        e["body"]["attributes"]["bin"],
        json!({"Type": "Binary", "Value": "AAEC"})
    );
    // TargetArn and MessageStructure=json.
    ok(
        "Publish",
        call(
            &sim,
            "Publish",
            &[
                ("TargetArn", &topic),
                ("MessageStructure", "json"),
                ("Message", r#"{"default":"d"}"#),
            ],
        )
        .await,
    );
    err(
        400,
        "InvalidParameter",
        call(
            &sim,
            "Publish",
            &[
                ("TopicArn", &topic),
                ("MessageStructure", "json"),
                ("Message", r#"{"x":"d"}"#),
            ],
        )
        .await,
    );
    err(
        404,
        "NotFound",
        call(
            &sim,
            "Publish",
            &[
                ("TopicArn", "arn:aws:sns:us-east-1:000000000000:gone"),
                ("Message", "m"),
            ],
        )
        .await,
    );
    assert_eq!(
        err(
            400,
            "InvalidParameter",
            call(&sim, "Publish", &[("TopicArn", &topic), ("Message", "")]).await
        ),
        "Invalid parameter: Empty message"
    );
    err(
        400,
        "ParameterValueInvalid",
        call(
            &sim,
            "Publish",
            &[
                ("TopicArn", &topic),
                ("Message", "m"),
                ("MessageAttributes.entry.1.Name", "n"),
                ("MessageAttributes.entry.1.Value.DataType", "Number"),
                ("MessageAttributes.entry.1.Value.StringValue", "seven"),
            ],
        )
        .await,
    );

    let r = ok(
        "PublishBatch",
        call(
            &sim,
            "PublishBatch",
            &[
                ("TopicArn", &topic),
                ("PublishBatchRequestEntries.member.1.Id", "one"),
                ("PublishBatchRequestEntries.member.1.Message", "m1"),
                (
                    "PublishBatchRequestEntries.member.1.MessageAttributes.entry.1.Name",
                    "k",
                ),
                (
                    "PublishBatchRequestEntries.member.1.MessageAttributes.entry.1.Value.DataType",
                    "String",
                ),
                (
                    "PublishBatchRequestEntries.member.1.MessageAttributes.entry.1.Value.StringValue",
                    "v",
                ),
                ("PublishBatchRequestEntries.member.2.Id", "two"),
                ("PublishBatchRequestEntries.member.2.Message", "m2"),
                ("PublishBatchRequestEntries.member.2.Subject", "bad\nsubject"),
            ],
        )
        .await,
    );
    let good = r.child("Successful").all("member");
    assert_eq!(good.len(), 1);
    assert_eq!(good[0].at("Id"), "one");
    assert_eq!(good[0].at("MessageId").len(), 36);
    let bad = r.child("Failed").all("member");
    assert_eq!(bad.len(), 1);
    assert_eq!(bad[0].at("Id"), "two");
    assert_eq!(bad[0].at("Code"), "InvalidParameter");
    assert_eq!(bad[0].at("Message"), "Invalid parameter: Subject");
    assert_eq!(bad[0].at("SenderFault"), "true");

    let mut eleven: Vec<(String, String)> = Vec::new();
    for i in 1..=11 {
        eleven.push((format!("PublishBatchRequestEntries.member.{i}.Id"), format!("e{i}")));
        eleven.push((format!("PublishBatchRequestEntries.member.{i}.Message"), "m".into()));
    }
    let mut pairs: Vec<(&str, &str)> = vec![("TopicArn", &topic)];
    pairs.extend(eleven.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    err(
        400,
        "TooManyEntriesInBatchRequest",
        call(&sim, "PublishBatch", &pairs).await,
    );
    err(
        400,
        "BatchEntryIdsNotDistinct",
        call(
            &sim,
            "PublishBatch",
            &[
                ("TopicArn", &topic),
                ("PublishBatchRequestEntries.member.1.Id", "same"),
                ("PublishBatchRequestEntries.member.1.Message", "a"),
                ("PublishBatchRequestEntries.member.2.Id", "same"),
                ("PublishBatchRequestEntries.member.2.Message", "b"),
            ],
        )
        .await,
    );
    err(
        400,
        "InvalidBatchEntryId",
        call(
            &sim,
            "PublishBatch",
            &[
                ("TopicArn", &topic),
                ("PublishBatchRequestEntries.member.1.Id", "has space"),
                ("PublishBatchRequestEntries.member.1.Message", "a"),
            ],
        )
        .await,
    );
    let big = "x".repeat(200 * 1024);
    err(
        400,
        "BatchRequestTooLong",
        call(
            &sim,
            "PublishBatch",
            &[
                ("TopicArn", &topic),
                ("PublishBatchRequestEntries.member.1.Id", "a"),
                ("PublishBatchRequestEntries.member.1.Message", &big),
                ("PublishBatchRequestEntries.member.2.Id", "b"),
                ("PublishBatchRequestEntries.member.2.Message", &big),
            ],
        )
        .await,
    );
    err(
        400,
        "EmptyBatchRequest",
        call(&sim, "PublishBatch", &[("TopicArn", &topic)]).await,
    );
    sim.stop().await;
}

#[tokio::test]
async fn bad_requests_get_aws_errors() {
    let sim = TestSim::start(|_| {}).await;
    assert!(err(400, "InvalidAction", call(&sim, "DeleteEverything", &[]).await).contains("DeleteEverything"));
    assert!(err(400, "MissingParameter", post_raw(&sim, "Version=2010-03-31").await).contains("Action"));
    assert!(err(400, "MissingParameter", get_plain(&sim, "/").await).contains("Action"));
    assert!(
        err(
            400,
            "InvalidParameter",
            post_raw(&sim, "Action=ListTopics&Action=ListTopics").await
        )
        .contains("more than once")
    );
    assert!(
        err(
            400,
            "InvalidParameter",
            call(
                &sim,
                "CreateTopic",
                &[
                    ("Name", "t"),
                    ("Attributes.entry.101.key", "DisplayName"),
                    ("Attributes.entry.101.value", "x")
                ]
            )
            .await
        )
        .contains("Attributes.entry.101")
    );
    // The body bound: 1 MiB, answered with 413 in AWS's shape.
    let huge = format!("Action=Publish&Message={}", "a".repeat(avs_sim::sns::query::MAX_BODY));
    err(413, "RequestEntityTooLarge", post_raw(&sim, huge).await);
    // The simulator still answers afterwards.
    ok("ListTopics", call(&sim, "ListTopics", &[]).await);
    // Another path on the listener is still the AVS face.
    let (status, _) = get_plain(&sim, "/nothing-here").await;
    assert_eq!(status, 404);
    sim.stop().await;
}

#[tokio::test]
async fn control_api_topics_and_subscriptions() {
    let sim = TestSim::start(|_| {}).await;
    let (s, b) = control(
        &sim,
        "POST",
        "/api/sns/topics",
        Some(json!({"name": "ctl", "attributes": {"SignatureVersion": "2"}})),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    let topic = b["arn"].as_str().unwrap().to_string();
    let (s, b) = control(
        &sim,
        "POST",
        "/api/sns/topics",
        Some(json!({"name": "x", "attributes": {"SignatureVersion": "9"}})),
    )
    .await;
    assert_eq!(s, 400);
    assert!(b["error"].as_str().unwrap().contains("SignatureVersion"), "{b}");
    let (s, b) = control(
        &sim,
        "POST",
        "/api/sns/subscriptions",
        Some(json!({"topic": "ctl", "endpoint": "http://127.0.0.1:9/p"})),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(b["pending"], true);
    let pending = b["arn"].as_str().unwrap().to_string();
    let (s, b) = control(
        &sim,
        "POST",
        "/api/sns/subscriptions",
        Some(json!({"topic": topic, "endpoint": "http://127.0.0.1:9/c", "confirmed": true, "attributes": {"RawMessageDelivery": "true"}})),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(b["pending"], false);
    let confirmed = b["arn"].as_str().unwrap().to_string();
    sim.await_entry(None, |e| e["summary"] == format!("subscription {confirmed} confirmed"))
        .await;
    let (s, b) = control(
        &sim,
        "POST",
        "/api/sns/subscriptions",
        Some(json!({"topic": "nope", "endpoint": "http://h/"})),
    )
    .await;
    assert_eq!(s, 404);
    assert!(b["error"].as_str().unwrap().contains("nope"), "{b}");
    let (s, _) = control(
        &sim,
        "POST",
        "/api/sns/subscriptions",
        Some(json!({"topic": "ctl", "endpoint": "ftp://h/"})),
    )
    .await;
    assert_eq!(s, 400);
    let (s, b) = control(
        &sim,
        "POST",
        "/api/sns/subscriptions",
        Some(json!({"topic": "ctl", "endpoint": "http://h/", "attributes": {"FilterPolicy": "[1"}})),
    )
    .await;
    assert_eq!(s, 400, "{b}");

    let (s, b) = control(&sim, "GET", "/api/sns/topics", None).await;
    assert_eq!(s, 200);
    let t = b["topics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["arn"] == topic)
        .unwrap()
        .clone();
    assert_eq!(t["attributes"]["SignatureVersion"], "2");
    let subs = t["subscriptions"].as_array().unwrap();
    let p = subs.iter().find(|s| s["arn"] == pending).unwrap();
    assert_eq!(p["pending"], true);
    assert_eq!(p["token"].as_str().unwrap().len(), 64);
    let c = subs.iter().find(|s| s["arn"] == confirmed).unwrap();
    assert_eq!(c["pending"], false);
    assert!(c.get("token").is_none(), "a confirmed subscription shows no token");
    // The pending token confirms through the Query API.
    let url = pending_url(&sim, &pending).await;
    ok("ConfirmSubscription", get_plain(&sim, path_of(&url)).await);

    let (s, b) = control(&sim, "DELETE", &format!("/api/sns/subscriptions/{confirmed}"), None).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["deleted"], confirmed.as_str());
    let (s, _) = control(&sim, "DELETE", &format!("/api/sns/subscriptions/{confirmed}"), None).await;
    assert_eq!(s, 404);
    sim.stop().await;
}

/// A subscriber on a real socket: each POST's headers and body.
async fn subscriber() -> (String, tokio::sync::mpsc::UnboundedReceiver<(http::HeaderMap, Value)>) {
    use axum::routing::post;
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let app = axum::Router::new().route(
        "/hook",
        post(move |headers: http::HeaderMap, body: String| {
            let tx = tx.clone();
            async move {
                let _ = tx.send((headers, serde_json::from_str(&body).unwrap_or(Value::String(body))));
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, rx)
}

#[tokio::test]
async fn a_real_subscriber_confirms_through_the_subscribe_url() {
    let sim = TestSim::start(|_| {}).await;
    let topic = create(&sim, "real").await;
    let (endpoint, mut rx) = subscriber().await;
    let r = ok(
        "Subscribe",
        call(
            &sim,
            "Subscribe",
            &[("TopicArn", &topic), ("Protocol", "http"), ("Endpoint", &endpoint)],
        )
        .await,
    );
    assert_eq!(r.at("SubscriptionArn"), "pending confirmation");
    let (headers, body) = tokio::time::timeout(DEADLINE, rx.recv())
        .await
        .expect("a SubscriptionConfirmation within the deadline")
        .unwrap();
    assert_eq!(headers["x-amz-sns-message-type"], "SubscriptionConfirmation");
    assert_eq!(body["Type"], "SubscriptionConfirmation");
    assert_eq!(body["TopicArn"], topic);
    let url = body["SubscribeURL"].as_str().unwrap();
    assert!(
        url.contains(&format!("Token={}", body["Token"].as_str().unwrap())),
        "{url}"
    );
    // Follow it as a subscriber would: over TLS, at the listener it names.
    let mut tls = sim.tls_device("").await;
    let a = tls
        .call(http::Method::GET, path_of(url), None, Bytes::new())
        .await
        .unwrap();
    let r = ok(
        "ConfirmSubscription",
        (a.status, String::from_utf8(a.body.to_vec()).unwrap()),
    );
    let sub = r.at("SubscriptionArn").to_string();
    sim.await_entry(None, |e| e["summary"] == format!("subscription {sub} confirmed"))
        .await;
    // Now a publish reaches it.
    ok(
        "Publish",
        call(&sim, "Publish", &[("TopicArn", &topic), ("Message", "after")]).await,
    );
    let (headers, body) = tokio::time::timeout(DEADLINE, rx.recv()).await.unwrap().unwrap();
    assert_eq!(headers["x-amz-sns-message-type"], "Notification");
    assert_eq!(body["Message"], "after");
    sim.stop().await;
}

/// One simulator for every proptest case, on a runtime that outlives them.
fn shared() -> &'static (tokio::runtime::Runtime, TestSim) {
    static SHARED: std::sync::OnceLock<(tokio::runtime::Runtime, TestSim)> = std::sync::OnceLock::new();
    SHARED.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let sim = rt.block_on(async {
            let sim = TestSim::start(|_| {}).await;
            create(&sim, "p").await;
            sim
        });
        (rt, sim)
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Arbitrary bodies, and arbitrary parameters of every action, get
    /// either a success or AWS's XML error shape; the simulator never drops
    /// the connection and keeps answering.
    #[test]
    fn arbitrary_requests_get_aws_shaped_answers(
        raw in proptest::collection::vec(any::<u8>(), 0..400),
        action in prop::sample::select(vec![
            "CreateTopic", "DeleteTopic", "ListTopics", "GetTopicAttributes", "SetTopicAttributes",
            "Subscribe", "GetSubscriptionAttributes", "ConfirmSubscription", "Unsubscribe",
            "ListSubscriptions", "ListSubscriptionsByTopic", "SetSubscriptionAttributes",
            "Publish", "PublishBatch", "Nope",
        ]),
        params in proptest::collection::vec(
            (prop::sample::select(vec![
                "Name", "TopicArn", "TargetArn", "Message", "Subject", "Token", "Protocol", "Endpoint",
                "SubscriptionArn", "AttributeName", "AttributeValue", "NextToken", "MessageStructure",
                "Attributes.entry.1.key", "Attributes.entry.1.value", "Attributes.entry.0.key",
                "MessageAttributes.entry.1.Name", "MessageAttributes.entry.1.Value.DataType",
                "MessageAttributes.entry.1.Value.StringValue", "PublishBatchRequestEntries.member.1.Id",
                "PublishBatchRequestEntries.member.1.Message", "PublishBatchRequestEntries.member.999.Id",
            ]), "\\PC{0,40}"),
            0..8,
        ),
    ) {
        let (rt, sim) = shared();
        rt.block_on(async {
            let (status, xml) = post_raw(sim, raw.clone()).await;
            shape(status, &xml);
            let mut pairs: Vec<(&str, &str)> = vec![("Action", action)];
            pairs.extend(params.iter().map(|(k, v)| (*k, v.as_str())));
            let (status, xml) = post_raw(sim, form(&pairs)).await;
            shape(status, &xml);
            ok("ListTopics", call(sim, "ListTopics", &[]).await);
        });
    }
}

/// A success document or AWS's error document, and nothing else.
fn shape(status: u16, xml: &str) {
    let doc = El::parse(xml);
    if status == 200 {
        assert!(doc.name.ends_with("Response") && doc.name != "ErrorResponse", "{xml}");
    } else {
        assert!((400..500).contains(&status), "{status} {xml}");
        assert_eq!(doc.name, "ErrorResponse", "{xml}");
        assert_eq!(doc.at("Error/Type"), "Sender");
        assert!(!doc.at("Error/Code").is_empty());
        assert!(!doc.at("Error/Message").is_empty());
    }
}

#[tokio::test]
async fn boto3_drives_the_query_api() {
    let python = avs_sim_tests::sns::boto3_python();
    let sim = TestSim::start(|_| {}).await;
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("interop/boto3/sns_client.py");
    let out = tokio::time::timeout(
        DEADLINE * 6,
        tokio::process::Command::new(&python)
            .arg(&script)
            .arg(format!("http://{}", sim.handle.addrs.plain))
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("the boto3 script finishes")
    .expect("python runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "boto3 script failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("boto3 interop: ok"), "{stdout}\n{stderr}");
    // What boto3 did is what the simulator recorded.
    sim.await_entry(None, |e| e["face"] == "sns" && e["body"]["action"] == "PublishBatch")
        .await;
    sim.await_entry(None, |e| {
        e["face"] == "sns" && e["summary"].as_str().is_some_and(|s| s.ends_with(" confirmed"))
    })
    .await;
    sim.stop().await;
}
