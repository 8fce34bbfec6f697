//! What is POSTed to a subscriber: the headers, the JSON body in AWS's
//! exact field order and layout (or the raw message), and the signature
//! over the string to sign (reference sns.md §1–5).

use super::model::{Attribute, MessageType, Outgoing};
use super::sign::{self, Signer};
use super::{CertUrlMode, publish};
use crate::state::State;
use std::collections::BTreeMap;

/// A delivery request, ready to send.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    /// Header name → value, `x-amz-sns-*` and `Content-Type` included.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

/// What SNS's agent calls itself.
pub const USER_AGENT: &str = "Amazon Simple Notification Service Agent";

/// Render `out`, signed by `signer` (`sign::signer(state)`; `None`: no key
/// could be made, the `Signature` is then empty) with `signature_version`
/// ("1" or "2", the topic's); `raw` is the subscription's RawMessageDelivery
/// (Notifications only); `unsubscribe_url` is the Notification's
/// `UnsubscribeURL`, `cert_url` the `SigningCertURL` (from [`cert_url`]).
/// Needs no live topic or subscription, so an UnsubscribeConfirmation
/// renders after its subscription is gone.
pub fn render(
    signer: Option<&Signer>,
    out: &Outgoing,
    signature_version: &str,
    raw: bool,
    unsubscribe_url: &str,
    cert_url: &str,
) -> Rendered {
    let notification = out.kind == MessageType::Notification;
    let raw = raw && notification;
    let mut headers: Vec<(String, String)> = vec![
        ("x-amz-sns-message-type".into(), out.kind.as_str().into()),
        ("x-amz-sns-message-id".into(), out.message_id.clone()),
        ("x-amz-sns-topic-arn".into(), out.topic_arn.clone()),
    ];
    // Recorded AWS deliveries carry the subscription ARN on these two only.
    if out.kind != MessageType::SubscriptionConfirmation {
        headers.push(("x-amz-sns-subscription-arn".into(), out.subscription_arn.clone()));
    }
    if raw {
        headers.push(("x-amz-sns-rawdelivery".into(), "true".into()));
    }
    headers.extend([
        ("Content-Type".into(), "text/plain; charset=UTF-8".into()),
        ("User-Agent".into(), USER_AGENT.into()),
        ("Accept-Encoding".into(), "gzip,deflate".into()),
    ]);
    if raw {
        return Rendered {
            headers,
            body: out.message.clone(),
        };
    }
    // Anything but "2" is signed, and labelled, as version 1 (the default).
    let version = if signature_version == "2" { "2" } else { "1" };
    let signature = signer.map_or_else(String::new, |s| s.sign(version, string_to_sign(out).as_bytes()));
    let token = out.token.as_deref().unwrap_or_default();
    let subscribe_url = out.subscribe_url.as_deref().unwrap_or_default();
    let mut fields: Vec<(&str, Value<'_>)> = vec![("Type", Value::Str(out.kind.as_str()))];
    fields.push(("MessageId", Value::Str(&out.message_id)));
    if notification {
        fields.push(("TopicArn", Value::Str(&out.topic_arn)));
        if let Some(subject) = &out.subject {
            fields.push(("Subject", Value::Str(subject)));
        }
        fields.push(("Message", Value::Str(&out.message)));
    } else {
        fields.extend([
            ("Token", Value::Str(token)),
            ("TopicArn", Value::Str(&out.topic_arn)),
            ("Message", Value::Str(&out.message)),
            ("SubscribeURL", Value::Str(subscribe_url)),
        ]);
    }
    fields.extend([
        ("Timestamp", Value::Str(&out.timestamp)),
        ("SignatureVersion", Value::Str(version)),
        ("Signature", Value::Str(&signature)),
        ("SigningCertURL", Value::Str(cert_url)),
    ]);
    if notification {
        fields.push(("UnsubscribeURL", Value::Str(unsubscribe_url)));
        if !out.attributes.is_empty() {
            fields.push(("MessageAttributes", Value::Attributes(&out.attributes)));
        }
    }
    Rendered {
        headers,
        body: pretty(&fields),
    }
}

/// The exact string SNS signs (sns.md §4): each signed field present,
/// in byte order of the names, as `Name\nvalue\n`.
pub fn string_to_sign(out: &Outgoing) -> String {
    let mut fields: Vec<(&str, &str)> = vec![("Message", &out.message), ("MessageId", &out.message_id)];
    if out.kind == MessageType::Notification {
        if let Some(subject) = &out.subject {
            fields.push(("Subject", subject));
        }
        fields.extend([("Timestamp", out.timestamp.as_str()), ("TopicArn", &out.topic_arn)]);
    } else {
        fields.extend([
            ("SubscribeURL", out.subscribe_url.as_deref().unwrap_or_default()),
            ("Timestamp", &out.timestamp),
            ("Token", out.token.as_deref().unwrap_or_default()),
            ("TopicArn", &out.topic_arn),
        ]);
    }
    fields.push(("Type", out.kind.as_str()));
    let mut s = String::new();
    for (name, value) in fields {
        s.push_str(name);
        s.push('\n');
        s.push_str(value);
        s.push('\n');
    }
    s
}

/// The `SigningCertURL` of this simulator, per `[sns] cert_url`: its own
/// TLS listener (`local`) or AWS's host for the region (`aws`, for
/// validators that pin it; the harness then routes that host here).
/// Makes or loads the signer on first use.
pub fn cert_url(state: &State) -> String {
    let file = sign::signer(state).map_or_else(|| format!("{}unavailable.pem", sign::FILE_PREFIX), |s| s.file_name());
    match state.config.sns.cert_url {
        CertUrlMode::Local => format!("{}/{file}", publish::base_url(state)),
        CertUrlMode::Aws => {
            let region = &state.sns.region;
            let domain = if region.starts_with("cn-") {
                "amazonaws.com.cn"
            } else {
                "amazonaws.com"
            };
            format!("https://sns.{region}.{domain}/{file}")
        }
    }
}

/// A value in a body: a string, or the message attributes map.
enum Value<'a> {
    Str(&'a str),
    Attributes(&'a BTreeMap<String, Attribute>),
}

/// The body as SNS lays it out: Jackson's default pretty printer, i.e.
/// two-space indent and `" : "` between name and value, with each
/// attribute's `{"Type":…,"Value":…}` kept on one line. serde_json's
/// `PrettyFormatter` can change the indent but not the `": "` separator,
/// and validators that compare bodies byte for byte (or people diffing
/// against a real delivery) see the difference, so this small writer
/// does it by hand; string escaping is serde_json's.
fn pretty(fields: &[(&str, Value<'_>)]) -> String {
    let mut s = String::from("{\n");
    for (i, (name, value)) in fields.iter().enumerate() {
        s.push_str("  ");
        s.push_str(&json_string(name));
        s.push_str(" : ");
        match value {
            Value::Str(v) => s.push_str(&json_string(v)),
            Value::Attributes(attrs) => {
                s.push_str("{\n");
                for (j, (key, attr)) in attrs.iter().enumerate() {
                    s.push_str("    ");
                    s.push_str(&json_string(key));
                    s.push_str(" : {\"Type\":");
                    s.push_str(&json_string(&attr.data_type));
                    s.push_str(",\"Value\":");
                    s.push_str(&json_string(&attr.value));
                    s.push('}');
                    if j + 1 < attrs.len() {
                        s.push(',');
                    }
                    s.push('\n');
                }
                s.push_str("  }");
            }
        }
        if i + 1 < fields.len() {
            s.push(',');
        }
        s.push('\n');
    }
    s.push('}');
    s
}

fn json_string(v: &str) -> String {
    serde_json::Value::from(v).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, OnceLock};

    /// One key for all the tests here: generating one per test is slow.
    fn signer() -> Arc<Signer> {
        static S: OnceLock<Arc<Signer>> = OnceLock::new();
        S.get_or_init(|| Arc::new(Signer::ephemeral().unwrap())).clone()
    }

    fn outgoing(kind: MessageType) -> Outgoing {
        let confirmation = kind != MessageType::Notification;
        Outgoing {
            kind,
            message_id: "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324".into(),
            topic_arn: "arn:aws:sns:us-west-2:123456789012:MyTopic".into(),
            subscription_arn: "arn:aws:sns:us-west-2:123456789012:MyTopic:c9135db0-26c4-47ec-8998-413945fb5a96".into(),
            endpoint: "http://127.0.0.1:1/".into(),
            timestamp: "2012-05-02T00:54:06.655Z".into(),
            message: "My \"first\" message\nline two".into(),
            subject: None,
            attributes: BTreeMap::new(),
            token: confirmation.then(|| "2336412f37f".into()),
            subscribe_url: confirmation.then(|| {
                "https://sns.us-west-2.amazonaws.com/?Action=ConfirmSubscription&TopicArn=arn:aws:sns:us-west-2:123456789012:MyTopic&Token=2336412f37f".into()
            }),
        }
    }

    fn body(r: &Rendered) -> serde_json::Value {
        serde_json::from_str(&r.body).unwrap()
    }

    /// The top-level names of a body, in the order written.
    fn names(body: &str) -> Vec<String> {
        body.lines()
            .filter(|l| l.starts_with("  \"") && !l.starts_with("    "))
            .map(|l| l[3..l[3..].find('"').unwrap() + 3].to_string())
            .collect()
    }

    fn header<'a>(r: &'a Rendered, name: &str) -> Option<&'a str> {
        r.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    const CERT: &str = "https://127.0.0.1:1/SimpleNotificationService-0123456789abcdef0123456789abcdef.pem";
    const UNSUB: &str = "https://127.0.0.1:1/?Action=Unsubscribe&SubscriptionArn=arn";

    #[test]
    fn notification_fields_in_aws_order_with_and_without_subject_and_attributes() {
        let s = signer();
        let mut out = outgoing(MessageType::Notification);
        let r = render(Some(&s), &out, "1", false, UNSUB, CERT);
        assert_eq!(
            names(&r.body),
            [
                "Type",
                "MessageId",
                "TopicArn",
                "Message",
                "Timestamp",
                "SignatureVersion",
                "Signature",
                "SigningCertURL",
                "UnsubscribeURL"
            ]
        );
        assert_eq!(body(&r)["Message"], out.message, "escaped in the body, decoded equal");
        assert_eq!(body(&r)["UnsubscribeURL"], UNSUB);
        out.subject = Some("Hello".into());
        out.attributes.insert(
            "kind".into(),
            Attribute {
                data_type: "String".into(),
                value: "a\"b".into(),
            },
        );
        out.attributes.insert(
            "n".into(),
            Attribute {
                data_type: "Number".into(),
                value: "7".into(),
            },
        );
        let r = render(Some(&s), &out, "2", false, UNSUB, CERT);
        assert_eq!(
            names(&r.body),
            [
                "Type",
                "MessageId",
                "TopicArn",
                "Subject",
                "Message",
                "Timestamp",
                "SignatureVersion",
                "Signature",
                "SigningCertURL",
                "UnsubscribeURL",
                "MessageAttributes"
            ]
        );
        let b = body(&r);
        assert_eq!(b["SignatureVersion"], "2");
        assert_eq!(
            b["MessageAttributes"]["kind"],
            serde_json::json!({"Type": "String", "Value": "a\"b"})
        );
        assert_eq!(
            b["MessageAttributes"]["n"],
            serde_json::json!({"Type": "Number", "Value": "7"})
        );
        assert!(
            r.body.contains("  \"MessageAttributes\" : {\n    \"kind\" : {\"Type\":\"String\",\"Value\":\"a\\\"b\"},\n    \"n\" : {\"Type\":\"Number\",\"Value\":\"7\"}\n  }\n}"),
            "{}",
            r.body
        );
    }

    #[test]
    fn layout_is_aws_pretty_print() {
        let out = outgoing(MessageType::Notification);
        let r = render(None, &out, "1", false, UNSUB, CERT);
        let expected = format!(
            "{{\n  \"Type\" : \"Notification\",\n  \"MessageId\" : \"22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324\",\n  \"TopicArn\" : \"arn:aws:sns:us-west-2:123456789012:MyTopic\",\n  \"Message\" : \"My \\\"first\\\" message\\nline two\",\n  \"Timestamp\" : \"2012-05-02T00:54:06.655Z\",\n  \"SignatureVersion\" : \"1\",\n  \"Signature\" : \"\",\n  \"SigningCertURL\" : \"{CERT}\",\n  \"UnsubscribeURL\" : \"{UNSUB}\"\n}}"
        );
        assert_eq!(r.body, expected);
    }

    #[test]
    fn confirmations_fields_in_aws_order() {
        let s = signer();
        for kind in [
            MessageType::SubscriptionConfirmation,
            MessageType::UnsubscribeConfirmation,
        ] {
            let r = render(Some(&s), &outgoing(kind), "1", true, UNSUB, CERT);
            assert_eq!(
                names(&r.body),
                [
                    "Type",
                    "MessageId",
                    "Token",
                    "TopicArn",
                    "Message",
                    "SubscribeURL",
                    "Timestamp",
                    "SignatureVersion",
                    "Signature",
                    "SigningCertURL"
                ],
                "{kind:?} (raw does not apply to confirmations)"
            );
            assert_eq!(body(&r)["Type"], kind.as_str());
            assert_eq!(header(&r, "x-amz-sns-rawdelivery"), None);
        }
    }

    #[test]
    fn headers_per_type() {
        let s = signer();
        let n = outgoing(MessageType::Notification);
        let r = render(Some(&s), &n, "1", false, UNSUB, CERT);
        assert_eq!(
            r.headers,
            [
                ("x-amz-sns-message-type", "Notification"),
                ("x-amz-sns-message-id", n.message_id.as_str()),
                ("x-amz-sns-topic-arn", n.topic_arn.as_str()),
                ("x-amz-sns-subscription-arn", n.subscription_arn.as_str()),
                ("Content-Type", "text/plain; charset=UTF-8"),
                ("User-Agent", "Amazon Simple Notification Service Agent"),
                ("Accept-Encoding", "gzip,deflate"),
            ]
            .map(|(a, b)| (a.to_string(), b.to_string()))
        );
        let sc = render(
            Some(&s),
            &outgoing(MessageType::SubscriptionConfirmation),
            "1",
            false,
            UNSUB,
            CERT,
        );
        assert_eq!(header(&sc, "x-amz-sns-subscription-arn"), None);
        assert_eq!(header(&sc, "x-amz-sns-message-type"), Some("SubscriptionConfirmation"));
        let uc = render(
            Some(&s),
            &outgoing(MessageType::UnsubscribeConfirmation),
            "1",
            false,
            UNSUB,
            CERT,
        );
        assert_eq!(
            header(&uc, "x-amz-sns-subscription-arn"),
            Some(n.subscription_arn.as_str())
        );
    }

    #[test]
    fn raw_delivery_is_the_message_itself() {
        let mut out = outgoing(MessageType::Notification);
        out.subject = Some("S".into());
        out.attributes.insert(
            "a".into(),
            Attribute {
                data_type: "String".into(),
                value: "v".into(),
            },
        );
        let r = render(Some(&signer()), &out, "2", true, UNSUB, CERT);
        assert_eq!(r.body, out.message);
        assert_eq!(header(&r, "x-amz-sns-rawdelivery"), Some("true"));
        assert_eq!(header(&r, "x-amz-sns-message-type"), Some("Notification"));
        assert_eq!(
            header(&r, "x-amz-sns-subscription-arn"),
            Some(out.subscription_arn.as_str())
        );
    }

    #[test]
    fn string_to_sign_exact_bytes() {
        let mut n = outgoing(MessageType::Notification);
        assert_eq!(
            string_to_sign(&n),
            "Message\nMy \"first\" message\nline two\nMessageId\n22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324\nTimestamp\n2012-05-02T00:54:06.655Z\nTopicArn\narn:aws:sns:us-west-2:123456789012:MyTopic\nType\nNotification\n"
        );
        n.subject = Some("Hi".into());
        assert_eq!(
            string_to_sign(&n),
            "Message\nMy \"first\" message\nline two\nMessageId\n22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324\nSubject\nHi\nTimestamp\n2012-05-02T00:54:06.655Z\nTopicArn\narn:aws:sns:us-west-2:123456789012:MyTopic\nType\nNotification\n"
        );
        let c = outgoing(MessageType::SubscriptionConfirmation);
        assert_eq!(
            string_to_sign(&c),
            "Message\nMy \"first\" message\nline two\nMessageId\n22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324\nSubscribeURL\nhttps://sns.us-west-2.amazonaws.com/?Action=ConfirmSubscription&TopicArn=arn:aws:sns:us-west-2:123456789012:MyTopic&Token=2336412f37f\nTimestamp\n2012-05-02T00:54:06.655Z\nToken\n2336412f37f\nTopicArn\narn:aws:sns:us-west-2:123456789012:MyTopic\nType\nSubscriptionConfirmation\n"
        );
        let u = outgoing(MessageType::UnsubscribeConfirmation);
        assert!(string_to_sign(&u).ends_with("Type\nUnsubscribeConfirmation\n"));
        assert!(string_to_sign(&u).contains("\nToken\n2336412f37f\n"));
    }

    #[test]
    fn signatures_verify_with_the_certificate_key_per_version() {
        use rsa::pkcs8::DecodePublicKey;
        use sha2::Digest;
        let s = signer();
        let der = rustls_pki_types::pem::PemObject::from_pem_slice(s.cert_pem().as_bytes())
            .map(|d: rustls_pki_types::CertificateDer<'static>| d.to_vec())
            .unwrap();
        let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
        let public = rsa::RsaPublicKey::from_public_key_der(cert.public_key().raw).unwrap();
        let out = outgoing(MessageType::Notification);
        let text = string_to_sign(&out);
        let b64 = |r: &Rendered| {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD
                .decode(body(r)["Signature"].as_str().unwrap())
                .unwrap()
        };
        let v1 = render(Some(&s), &out, "1", false, UNSUB, CERT);
        public
            .verify(
                rsa::Pkcs1v15Sign::new::<sha1::Sha1>(),
                &sha1::Sha1::digest(text.as_bytes()),
                &b64(&v1),
            )
            .expect("v1 is SHA1withRSA");
        let v2 = render(Some(&s), &out, "2", false, UNSUB, CERT);
        public
            .verify(
                rsa::Pkcs1v15Sign::new::<sha2::Sha256>(),
                &sha2::Sha256::digest(text.as_bytes()),
                &b64(&v2),
            )
            .expect("v2 is SHA256withRSA");
        assert!(
            public
                .verify(
                    rsa::Pkcs1v15Sign::new::<sha1::Sha1>(),
                    &sha1::Sha1::digest(text.as_bytes()),
                    &b64(&v2)
                )
                .is_err(),
            "the versions differ"
        );
        assert_eq!(
            body(&render(Some(&s), &out, "7", false, UNSUB, CERT))["SignatureVersion"],
            "1",
            "unknown versions sign as 1"
        );
    }
}
