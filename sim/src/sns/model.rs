//! What SNS keeps: topics, subscriptions, and the messages it delivers.

use crate::clock::Instant;
use serde::Serialize;
use std::collections::BTreeMap;

/// A topic and its attributes (`SignatureVersion` "1" or "2",
/// `DeliveryPolicy` JSON, `DisplayName`...), as the Query API shows them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Topic {
    pub arn: String,
    pub name: String,
    pub attributes: BTreeMap<String, String>,
}

impl Topic {
    /// `"1"` (the default) or `"2"`.
    pub fn signature_version(&self) -> &str {
        self.attributes.get("SignatureVersion").map_or("1", String::as_str)
    }
}

/// An HTTP/S subscription. Attributes: `RawMessageDelivery`, `FilterPolicy`,
/// `FilterPolicyScope`, `DeliveryPolicy`, `RedrivePolicy`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Subscription {
    pub arn: String,
    pub topic_arn: String,
    /// `http` or `https`.
    pub protocol: String,
    pub endpoint: String,
    pub attributes: BTreeMap<String, String>,
    /// Nothing is delivered until it is confirmed.
    pub pending: bool,
    /// The confirmation token (valid `TOKEN_LIFETIME`).
    #[serde(skip)]
    pub token: String,
    #[serde(skip)]
    pub token_expires: Instant,
}

impl Subscription {
    pub fn raw(&self) -> bool {
        self.attributes
            .get("RawMessageDelivery")
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    }
}

/// The three kinds of message SNS POSTs to an HTTP/S endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum MessageType {
    SubscriptionConfirmation,
    Notification,
    UnsubscribeConfirmation,
}

impl MessageType {
    pub fn as_str(self) -> &'static str {
        match self {
            MessageType::SubscriptionConfirmation => "SubscriptionConfirmation",
            MessageType::Notification => "Notification",
            MessageType::UnsubscribeConfirmation => "UnsubscribeConfirmation",
        }
    }
}

/// A message attribute as published: `DataType` `String`, `Number`,
/// `String.Array` or `Binary` (value base64 for Binary).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Attribute {
    #[serde(rename = "Type")]
    pub data_type: String,
    #[serde(rename = "Value")]
    pub value: String,
}

/// What a Publish (or PublishBatch entry) carries.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Publish {
    pub message: String,
    pub subject: Option<String>,
    pub attributes: BTreeMap<String, Attribute>,
}

/// One message on its way to one subscription: everything its body,
/// headers and signature are made of. The same `message_id` on every
/// attempt.
#[derive(Debug, Clone, PartialEq)]
pub struct Outgoing {
    pub kind: MessageType,
    pub message_id: String,
    pub topic_arn: String,
    pub subscription_arn: String,
    /// Where it goes (kept here so an UnsubscribeConfirmation can go out
    /// after its subscription is gone).
    pub endpoint: String,
    /// RFC 3339 UTC with milliseconds, e.g. `2012-05-02T00:54:06.655Z`.
    pub timestamp: String,
    pub message: String,
    pub subject: Option<String>,
    pub attributes: BTreeMap<String, Attribute>,
    /// Confirmations: the token and the URL that confirms with it.
    pub token: Option<String>,
    pub subscribe_url: Option<String>,
}
