//! SNS message signatures end to end: messages the running simulator
//! renders verify with a subscriber written apart from it (tests/src/sns.rs)
//! against the certificate fetched from `SigningCertURL` over HTTPS, and
//! with AWS's own validator, the npm package `sns-validator`
//! (tests/interop/sns-validator; install it with
//! `npm ci --prefix tests/interop/sns-validator`, as `.ci/run` does).

use avs_sim::sns::message::{self, Rendered};
use avs_sim::sns::{Attribute, CertUrlMode, MessageType, Outgoing, TopicDecl};
use avs_sim_tests::{DEADLINE, TestSim, sns};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Stdio;
use tokio::io::AsyncWriteExt;

const TOPIC: &str = "events";

async fn start(tweak: impl FnOnce(&mut avs_sim::Config)) -> TestSim {
    TestSim::start(|c| {
        c.sns.topics.push(TopicDecl {
            name: TOPIC.into(),
            attributes: BTreeMap::new(),
        });
        tweak(c);
    })
    .await
}

/// A message of `kind` for the simulator's topic, as publish/confirmation make them.
fn outgoing(sim: &TestSim, kind: MessageType, subject: Option<&str>) -> Outgoing {
    let state = &sim.handle.state;
    let topic_arn = state.sns.topic_arn(TOPIC);
    let base = avs_sim::sns::publish::base_url(state);
    let confirmation = kind != MessageType::Notification;
    let mut attributes = BTreeMap::new();
    attributes.insert(
        "event".to_string(),
        Attribute {
            data_type: "String".into(),
            value: "Alexa.Automation".into(),
        },
    );
    Outgoing {
        kind,
        message_id: uuid::Uuid::new_v4().to_string(),
        topic_arn: topic_arn.clone(),
        subscription_arn: format!("{topic_arn}:{}", uuid::Uuid::new_v4()),
        endpoint: "http://127.0.0.1:9/".into(),
        timestamp: avs_sim::sns::timestamp(),
        message: match kind {
            MessageType::Notification => {
                "{\"header\":{\"eventId\":\"e\"},\"text\":\"ünïcode \\\"quoted\\\"\\nand a line\"}".into()
            }
            _ => format!(
                "You have chosen to subscribe to the topic {topic_arn}.\nTo confirm the subscription, visit the SubscribeURL included in this message."
            ),
        },
        subject: subject.map(str::to_string),
        attributes: if confirmation { BTreeMap::new() } else { attributes },
        token: confirmation.then(|| "2336412f37fb687f5d51e6e2425f004aed".into()),
        subscribe_url: confirmation.then(|| {
            format!("{base}/?Action=ConfirmSubscription&TopicArn={topic_arn}&Token=2336412f37fb687f5d51e6e2425f004aed")
        }),
    }
}

fn render(sim: &TestSim, out: &Outgoing, version: &str) -> Rendered {
    let state = &sim.handle.state;
    let unsubscribe = format!(
        "{}/?Action=Unsubscribe&SubscriptionArn={}",
        avs_sim::sns::publish::base_url(state),
        out.subscription_arn
    );
    let signer = avs_sim::sns::sign::signer(state);
    message::render(
        signer.as_deref(),
        out,
        version,
        false,
        &unsubscribe,
        &message::cert_url(state),
    )
}

/// The certificate at the simulator's `SigningCertURL`, fetched over HTTPS.
async fn certificate(sim: &TestSim) -> String {
    let url = message::cert_url(&sim.handle.state);
    let (status, content_type, pem) = sns::fetch(&url, &sim.handle.ca).await.unwrap();
    assert_eq!(status, 200, "{url}: {pem}");
    assert_eq!(content_type, "application/x-pem-file");
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"), "{pem}");
    pem
}

fn tamper(body: &str, field: &str, value: &str) -> String {
    let mut json: Value = serde_json::from_str(body).unwrap();
    json[field] = value.into();
    json.to_string()
}

#[tokio::test]
async fn every_type_and_version_verifies_with_an_independent_subscriber_and_tampering_fails() {
    let sim = start(|_| {}).await;
    let url = message::cert_url(&sim.handle.state);
    let prefix = format!(
        "https://127.0.0.1:{}/SimpleNotificationService-",
        sim.handle.addrs.avs.port()
    );
    let id = url
        .strip_prefix(&prefix)
        .and_then(|rest| rest.strip_suffix(".pem"))
        .unwrap_or_else(|| panic!("{url} is not on the TLS listener"));
    assert!(id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()), "{url}");
    let cert = certificate(&sim).await;
    let ca = std::fs::read_to_string(&sim.handle.ca).unwrap();

    let cases = [
        (MessageType::Notification, None),
        (MessageType::Notification, Some("A subject")),
        (MessageType::SubscriptionConfirmation, None),
        (MessageType::UnsubscribeConfirmation, None),
    ];
    for version in ["1", "2"] {
        for (kind, subject) in cases {
            let what = format!("{kind:?} v{version} subject {subject:?}");
            let out = outgoing(&sim, kind, subject);
            let r = render(&sim, &out, version);
            sns::verify_delivery(&r.headers, &r.body, &cert, &ca).unwrap_or_else(|e| panic!("{what}: {e}"));
            let body: Value = serde_json::from_str(&r.body).unwrap();
            assert_eq!(body["SignatureVersion"], version, "{what}");
            assert_eq!(body["SigningCertURL"], url.as_str(), "{what}");
            assert_eq!(body.get("Subject").and_then(Value::as_str), subject, "{what}");

            // Any signed field changed, and the signature no longer holds.
            let mut changed = vec![
                tamper(&r.body, "Message", "something else"),
                tamper(&r.body, "Timestamp", "2001-01-01T00:00:00.000Z"),
            ];
            if subject.is_some() {
                changed.push(tamper(&r.body, "Subject", "Another subject"));
            }
            if kind != MessageType::Notification {
                changed.push(tamper(&r.body, "Token", "0000"));
            }
            changed.push(tamper(
                &r.body,
                "SignatureVersion",
                if version == "1" { "2" } else { "1" },
            ));
            for bad in changed {
                assert!(
                    sns::verify_body(&bad, &cert).is_err(),
                    "{what}: tampered body verified: {bad}"
                );
            }
        }
    }

    // Raw delivery: the message itself, flagged, no signature to check.
    let out = outgoing(&sim, MessageType::Notification, Some("s"));
    let state = &sim.handle.state;
    let signer = avs_sim::sns::sign::signer(state);
    let raw = message::render(signer.as_deref(), &out, "2", true, "u", &message::cert_url(state));
    assert_eq!(raw.body, out.message);
    sns::verify_delivery(&raw.headers, &raw.body, &cert, &ca).unwrap();

    // Some other certificate's name is not served; the plain listener serves the same PEM.
    let other = url.replace(id, &"0".repeat(32));
    let (status, _, _) = sns::fetch(&other, &sim.handle.ca).await.unwrap();
    assert_eq!(status, 404, "{other}");
    let plain = format!("http://{}/SimpleNotificationService-{id}.pem", sim.handle.addrs.plain);
    let resp = sim.http.get(&plain).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().await.unwrap(), cert);
    sim.stop().await;
}

#[tokio::test]
async fn the_key_and_certificate_survive_a_restart_and_the_aws_url_mode_names_the_same_file() {
    let dir = avs_sim_tests::temp_dir("sns-certs");
    let first = start(|c| c.certs.dir = dir.clone()).await;
    let out = outgoing(&first, MessageType::Notification, Some("kept"));
    let signed = render(&first, &out, "2");
    let file = message::cert_url(&first.handle.state)
        .rsplit('/')
        .next()
        .unwrap()
        .to_string();
    first.stop().await;

    let second = start(|c| {
        c.certs.dir = dir.clone();
        c.sns.cert_url = CertUrlMode::Aws;
        c.sns.region = "eu-west-1".into();
    })
    .await;
    assert_eq!(
        message::cert_url(&second.handle.state),
        format!("https://sns.eu-west-1.amazonaws.com/{file}")
    );
    // A message signed before the restart verifies with the certificate served after it.
    let url = format!("https://127.0.0.1:{}/{file}", second.handle.addrs.avs.port());
    let (status, _, cert) = sns::fetch(&url, &second.handle.ca).await.unwrap();
    assert_eq!(status, 200, "{url}");
    let ca = std::fs::read_to_string(&second.handle.ca).unwrap();
    sns::verify_delivery(&signed.headers, &signed.body, &cert, &ca).unwrap();
    second.stop().await;
}

/// Where the validator lives, and a clear failure when it is not installed.
fn validator_dir() -> std::path::PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("interop/sns-validator");
    assert!(
        dir.join("node_modules/sns-validator/index.js").exists(),
        "sns-validator is not installed: run `npm ci --prefix tests/interop/sns-validator` (needs node and npm; .ci/run does this)"
    );
    dir
}

/// Run AWS's validator on `bodies`: per body, None when valid, else the error.
async fn aws_validator(ca: &Path, bodies: &[String]) -> Vec<Option<String>> {
    let dir = validator_dir();
    let mut child = tokio::process::Command::new("node")
        .arg(dir.join("verify.js"))
        .env("NODE_EXTRA_CA_CERTS", ca)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("node runs (install nodejs)");
    let input = serde_json::to_vec(bodies).unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(&input).await.unwrap();
    drop(stdin);
    let out = tokio::time::timeout(DEADLINE, child.wait_with_output())
        .await
        .expect("the validator finishes")
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "validator failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let results: Vec<Value> = stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(results.len(), bodies.len(), "{stdout}");
    results
        .iter()
        .enumerate()
        .map(|(i, r)| {
            assert_eq!(r["index"], i);
            (r["ok"] != true).then(|| r["error"].as_str().unwrap_or("?").to_string())
        })
        .collect()
}

#[tokio::test]
async fn aws_sns_validator_accepts_notifications_and_confirmations_of_both_versions() {
    let sim = start(|_| {}).await;
    let mut bodies = Vec::new();
    let mut what = Vec::new();
    for version in ["1", "2"] {
        for (kind, subject) in [
            (MessageType::Notification, None),
            (MessageType::Notification, Some("A subject")),
            (MessageType::SubscriptionConfirmation, None),
        ] {
            bodies.push(render(&sim, &outgoing(&sim, kind, subject), version).body);
            what.push(format!("{kind:?} v{version} subject {subject:?}"));
        }
    }
    // And one the validator must refuse, so a validator that accepts anything fails this test.
    bodies.push(tamper(&bodies[1], "Subject", "Changed"));
    what.push("tampered Notification".into());

    let results = aws_validator(&sim.handle.ca, &bodies).await;
    for (i, (result, what)) in results.iter().zip(&what).enumerate() {
        if i + 1 == bodies.len() {
            let error = result.as_deref().expect("the tampered message is refused");
            assert!(error.contains("signature"), "{what}: {error}");
        } else {
            assert_eq!(result, &None, "{what}: {}", bodies[i]);
        }
    }
    sim.stop().await;
}
