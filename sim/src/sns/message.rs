//! What is POSTed to a subscriber: the headers, the JSON body in AWS's
//! exact field order (or the raw message), and the signature over the
//! string to sign (reference sns.md §1–5).
//!
//! FIRST CUT: the signature and exact formatting are being written.

use super::model::Outgoing;

/// A delivery request, ready to send.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    /// Header name → value, `x-amz-sns-*` and `Content-Type` included.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

/// Render `out`, signed with `signature_version` ("1" or "2", the topic's);
/// `raw` is the subscription's RawMessageDelivery (Notifications only);
/// `unsubscribe_url` is the Notification's `UnsubscribeURL`, `cert_url`
/// the `SigningCertURL`. Needs no live topic or subscription, so an
/// UnsubscribeConfirmation renders after its subscription is gone.
pub fn render(out: &Outgoing, signature_version: &str, raw: bool, unsubscribe_url: &str, cert_url: &str) -> Rendered {
    let _ = (signature_version, raw, unsubscribe_url, cert_url);
    let body = serde_json::json!({
        "Type": out.kind.as_str(),
        "MessageId": out.message_id,
        "TopicArn": out.topic_arn,
        "Message": out.message,
        "Timestamp": out.timestamp,
    })
    .to_string();
    Rendered {
        headers: vec![
            ("x-amz-sns-message-type".into(), out.kind.as_str().into()),
            ("x-amz-sns-message-id".into(), out.message_id.clone()),
            ("x-amz-sns-topic-arn".into(), out.topic_arn.clone()),
            ("content-type".into(), "text/plain; charset=UTF-8".into()),
        ],
        body,
    }
}
