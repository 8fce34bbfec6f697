//! The SNS face: topics and HTTP/S subscriptions, delivered exactly as
//! Amazon SNS delivers (reference sns.md), for the Smart Properties events
//! (`crate::asp`) and for anything a test publishes through the Query API.
//!
//! This module owns the store (topics, subscriptions, confirmation
//! tokens). `message` renders and signs what is POSTed, `deliver` runs the
//! per-subscription queues with SNS's retry policy and the dead-letter
//! list, `filter` evaluates filter policies, and `query` is the Query API
//! (`POST /` with `Action=...`) that boto3 and the aws CLI speak.

pub mod deliver;
pub mod filter;
pub mod message;
pub mod model;
pub mod policy;
pub mod publish;
pub mod query;
pub mod sign;

pub use model::{Attribute, MessageType, Outgoing, Publish, Subscription, Topic};

use crate::clock;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

/// How long a confirmation token confirms (the current API reference: 2 days).
pub const TOKEN_LIFETIME: Duration = Duration::from_secs(2 * 24 * 3600);

/// Most topics and subscriptions held: SNS's own default quotas are far
/// above what a test uses; these keep a runaway script from growing the
/// store without bound.
pub const MAX_TOPICS: usize = 1_000;
pub const MAX_SUBSCRIPTIONS: usize = 10_000;

/// Why an SNS operation was refused; the Query API renders each as AWS's
/// XML error with the code named here.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnsError {
    /// 404 `NotFound`.
    #[error("{0}")]
    NotFound(String),
    /// 400 `InvalidParameter` ("Invalid parameter: Token", ...).
    #[error("{0}")]
    InvalidParameter(String),
    /// 400 `InvalidParameterValue`.
    #[error("{0}")]
    InvalidParameterValue(String),
    /// 403 `AuthorizationError`-free quota refusal: 400 `SubscriptionLimitExceeded` / `TopicLimitExceeded`.
    #[error("{0}")]
    LimitExceeded(&'static str, String),
}

impl SnsError {
    /// AWS's error code.
    pub fn code(&self) -> &str {
        match self {
            SnsError::NotFound(_) => "NotFound",
            SnsError::InvalidParameter(_) => "InvalidParameter",
            SnsError::InvalidParameterValue(_) => "InvalidParameterValue",
            SnsError::LimitExceeded(code, _) => code,
        }
    }

    /// The HTTP status AWS answers with.
    pub fn status(&self) -> u16 {
        match self {
            SnsError::NotFound(_) => 404,
            _ => 400,
        }
    }
}

/// Where `SigningCertURL` points (reference sns.md §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CertUrlMode {
    /// The simulator's own TLS listener.
    #[default]
    Local,
    /// `https://sns.<region>.amazonaws.com/SimpleNotificationService-<hex>.pem`,
    /// for validators that pin AWS's host.
    Aws,
}

/// `[sns]`: the region and account ARNs are made of, topics and
/// subscriptions present from the start.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SnsConfig {
    pub region: String,
    pub account: String,
    pub cert_url: CertUrlMode,
    pub topics: Vec<TopicDecl>,
    pub subscriptions: Vec<SubscriptionDecl>,
}

impl Default for SnsConfig {
    fn default() -> Self {
        SnsConfig {
            region: "us-east-1".into(),
            account: "000000000000".into(),
            cert_url: CertUrlMode::Local,
            topics: Vec::new(),
            subscriptions: Vec::new(),
        }
    }
}

/// `[[sns.topics]]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopicDecl {
    pub name: String,
    /// Topic attributes by their API names (`SignatureVersion = "2"`, `DeliveryPolicy = "{...}"`).
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
}

/// `[[sns.subscriptions]]`: an HTTP/S endpoint on a declared topic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubscriptionDecl {
    /// The topic's name.
    pub topic: String,
    pub endpoint: String,
    /// Subscription attributes by their API names (`RawMessageDelivery = "true"`, `FilterPolicy`, ...).
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
    /// Start confirmed (no SubscriptionConfirmation is sent).
    #[serde(default)]
    pub confirmed: bool,
}

impl SnsConfig {
    /// Every problem, named. `also`: topics other faces create (a
    /// subscription may name them without a `[[sns.topics]]`).
    pub fn validate(&self, also: &[&str]) -> Vec<String> {
        let mut errors = Vec::new();
        if !valid_name(&self.region) {
            errors.push(format!("sns.region: {:?} is not a region name", self.region));
        }
        if self.account.len() != 12 || !self.account.bytes().all(|b| b.is_ascii_digit()) {
            errors.push(format!("sns.account: must be 12 digits, got {:?}", self.account));
        }
        for (i, t) in self.topics.iter().enumerate() {
            if !valid_name(&t.name) {
                errors.push(format!(
                    "sns.topics[{i}]: name {:?} must be 1-256 letters, digits, '-' or '_'",
                    t.name
                ));
            }
        }
        for (i, s) in self.subscriptions.iter().enumerate() {
            if !self.topics.iter().any(|t| t.name == s.topic) && !also.contains(&s.topic.as_str()) {
                errors.push(format!(
                    "sns.subscriptions[{i}]: topic {:?} is neither in [[sns.topics]] nor the [asp] topic ({})",
                    s.topic,
                    also.join(", ")
                ));
            }
            if !(s.endpoint.starts_with("http://") || s.endpoint.starts_with("https://")) {
                errors.push(format!(
                    "sns.subscriptions[{i}]: endpoint must be an http:// or https:// URL, got {:?}",
                    s.endpoint
                ));
            }
        }
        errors
    }
}

/// A topic name as SNS allows it: 1–256 of `[A-Za-z0-9_-]`.
pub fn valid_name(name: &str) -> bool {
    (1..=256).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[derive(Default)]
struct Store {
    topics: BTreeMap<String, Topic>,
    subscriptions: BTreeMap<String, Subscription>,
    /// Confirmation token → subscription ARN.
    tokens: HashMap<String, String>,
}

/// The SNS store, one per simulator.
pub struct Sns {
    pub region: String,
    pub account: String,
    store: Mutex<Store>,
    /// Delivery workers, dead letters and the attempt log (`deliver`).
    pub deliveries: deliver::Deliveries,
    /// The signing key and certificate, made or loaded on first use (see `sign::signer`).
    signer: std::sync::OnceLock<Option<std::sync::Arc<sign::Signer>>>,
}

fn token() -> String {
    format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple())
}

impl Sns {
    /// A store with the config's topics and subscriptions (confirmed ones
    /// as such; the others pending, their confirmations sent at start).
    /// `also` names topics other faces create (the Smart Properties topic),
    /// made first so declared subscriptions may name them.
    pub fn new(config: &SnsConfig, also: &[&str]) -> Sns {
        let sns = Sns {
            region: config.region.clone(),
            account: config.account.clone(),
            store: Mutex::new(Store::default()),
            deliveries: Default::default(),
            signer: std::sync::OnceLock::new(),
        };
        // Declared topics first: their attributes win over the bare `also`.
        for t in &config.topics {
            let _ = sns.create_topic(&t.name, t.attributes.clone());
        }
        for name in also {
            let _ = sns.create_topic(name, BTreeMap::new());
        }
        for s in &config.subscriptions {
            let arn = sns.topic_arn(&s.topic);
            let protocol = if s.endpoint.starts_with("https://") {
                "https"
            } else {
                "http"
            };
            if let Ok(sub) = sns.subscribe(&arn, protocol, &s.endpoint, s.attributes.clone()) {
                if s.confirmed {
                    let _ = sns.confirm(&arn, &sub.token);
                }
            }
        }
        sns
    }

    /// Where `sign::signer` keeps this simulator's signer.
    pub fn signer_cell(&self) -> &std::sync::OnceLock<Option<std::sync::Arc<sign::Signer>>> {
        &self.signer
    }

    /// The ARN of the topic named `name` (whether or not it exists).
    pub fn topic_arn(&self, name: &str) -> String {
        format!("arn:aws:sns:{}:{}:{name}", self.region, self.account)
    }

    /// CreateTopic: idempotent by name (same name, same ARN); the same name
    /// with other attributes is refused, as SNS does.
    pub fn create_topic(&self, name: &str, attributes: BTreeMap<String, String>) -> Result<String, SnsError> {
        if !valid_name(name) {
            return Err(SnsError::InvalidParameter("Invalid parameter: Topic Name".into()));
        }
        let arn = self.topic_arn(name);
        let mut store = self.store.lock();
        if !store.topics.contains_key(&arn) && store.topics.len() >= MAX_TOPICS {
            return Err(SnsError::LimitExceeded(
                "TopicLimitExceeded",
                "Topic limit exceeded".into(),
            ));
        }
        if let Some(topic) = store.topics.get(&arn) {
            if attributes.iter().any(|(k, v)| topic.attributes.get(k) != Some(v)) {
                return Err(SnsError::InvalidParameter(
                    "Invalid parameter: Attributes Reason: Topic already exists with different attributes".into(),
                ));
            }
            return Ok(arn);
        }
        store.topics.insert(
            arn.clone(),
            Topic {
                arn: arn.clone(),
                name: name.into(),
                attributes,
            },
        );
        Ok(arn)
    }

    /// DeleteTopic: the topic and its subscriptions (idempotent, as in SNS).
    pub fn delete_topic(&self, arn: &str) {
        let mut store = self.store.lock();
        store.topics.remove(arn);
        store.subscriptions.retain(|_, s| s.topic_arn != arn);
        let Store {
            tokens, subscriptions, ..
        } = &mut *store;
        tokens.retain(|_, sub| subscriptions.contains_key(sub));
    }

    pub fn topics(&self) -> Vec<Topic> {
        self.store.lock().topics.values().cloned().collect()
    }

    pub fn topic(&self, arn: &str) -> Result<Topic, SnsError> {
        self.store
            .lock()
            .topics
            .get(arn)
            .cloned()
            .ok_or_else(|| SnsError::NotFound("Topic does not exist".into()))
    }

    pub fn set_topic_attribute(&self, arn: &str, name: &str, value: &str) -> Result<(), SnsError> {
        let mut store = self.store.lock();
        let topic = store
            .topics
            .get_mut(arn)
            .ok_or_else(|| SnsError::NotFound("Topic does not exist".into()))?;
        topic.attributes.insert(name.into(), value.into());
        Ok(())
    }

    /// Subscribe: a pending subscription with a fresh token (the caller
    /// sends the SubscriptionConfirmation).
    pub fn subscribe(
        &self,
        topic_arn: &str,
        protocol: &str,
        endpoint: &str,
        attributes: BTreeMap<String, String>,
    ) -> Result<Subscription, SnsError> {
        if !matches!(protocol, "http" | "https") {
            return Err(SnsError::InvalidParameter(format!(
                "Invalid parameter: Protocol {protocol:?} (this simulator delivers over http and https)"
            )));
        }
        if !endpoint.starts_with(&format!("{protocol}://")) {
            return Err(SnsError::InvalidParameter(
                "Invalid parameter: Endpoint must match the specified protocol".into(),
            ));
        }
        let mut store = self.store.lock();
        if !store.topics.contains_key(topic_arn) {
            return Err(SnsError::NotFound("Topic does not exist".into()));
        }
        if store.subscriptions.len() >= MAX_SUBSCRIPTIONS {
            return Err(SnsError::LimitExceeded(
                "SubscriptionLimitExceeded",
                "Subscription limit exceeded".into(),
            ));
        }
        let sub = Subscription {
            arn: format!("{topic_arn}:{}", uuid::Uuid::new_v4()),
            topic_arn: topic_arn.into(),
            protocol: protocol.into(),
            endpoint: endpoint.into(),
            attributes,
            pending: true,
            token: token(),
            token_expires: clock::deadline_in(TOKEN_LIFETIME),
        };
        store.tokens.insert(sub.token.clone(), sub.arn.clone());
        store.subscriptions.insert(sub.arn.clone(), sub.clone());
        Ok(sub)
    }

    /// ConfirmSubscription (or a GET on the SubscribeURL): idempotent.
    pub fn confirm(&self, topic_arn: &str, token: &str) -> Result<String, SnsError> {
        let mut store = self.store.lock();
        if !store.topics.contains_key(topic_arn) {
            return Err(SnsError::NotFound("Topic does not exist".into()));
        }
        let bad_token = || SnsError::InvalidParameter("Invalid parameter: Token".into());
        let arn = store.tokens.get(token).cloned().ok_or_else(bad_token)?;
        let sub = store.subscriptions.get_mut(&arn).ok_or_else(bad_token)?;
        if sub.pending && clock::now() >= sub.token_expires {
            return Err(bad_token());
        }
        sub.pending = false;
        Ok(arn)
    }

    /// Unsubscribe: the subscription as it was.
    pub fn unsubscribe(&self, arn: &str) -> Result<Subscription, SnsError> {
        let mut store = self.store.lock();
        let sub = store
            .subscriptions
            .remove(arn)
            .ok_or_else(|| SnsError::NotFound("Subscription does not exist".into()))?;
        store.tokens.remove(&sub.token);
        Ok(sub)
    }

    /// Subscriptions, of one topic or all.
    pub fn subscriptions(&self, topic_arn: Option<&str>) -> Vec<Subscription> {
        let store = self.store.lock();
        store
            .subscriptions
            .values()
            .filter(|s| topic_arn.is_none_or(|t| s.topic_arn == t))
            .cloned()
            .collect()
    }

    pub fn subscription(&self, arn: &str) -> Result<Subscription, SnsError> {
        self.store
            .lock()
            .subscriptions
            .get(arn)
            .cloned()
            .ok_or_else(|| SnsError::NotFound("Subscription does not exist".into()))
    }

    pub fn set_subscription_attribute(&self, arn: &str, name: &str, value: &str) -> Result<(), SnsError> {
        let mut store = self.store.lock();
        let sub = store
            .subscriptions
            .get_mut(arn)
            .ok_or_else(|| SnsError::NotFound("Subscription does not exist".into()))?;
        sub.attributes.insert(name.into(), value.into());
        Ok(())
    }

    /// Forget subscriptions left unconfirmed past their token's life (SNS
    /// deletes them after 48 h); the ARNs forgotten.
    pub fn sweep(&self) -> Vec<String> {
        let now = clock::now();
        let mut store = self.store.lock();
        let gone: Vec<String> = store
            .subscriptions
            .values()
            .filter(|s| s.pending && now >= s.token_expires)
            .map(|s| s.arn.clone())
            .collect();
        for arn in &gone {
            if let Some(s) = store.subscriptions.remove(arn) {
                store.tokens.remove(&s.token);
            }
        }
        gone
    }
}

/// `now` as SNS writes `Timestamp`: UTC with milliseconds and `Z`.
pub fn timestamp() -> String {
    let t = clock::wall();
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sns() -> Sns {
        Sns::new(&SnsConfig::default(), &[])
    }

    #[tokio::test(start_paused = true)]
    async fn topics_subscriptions_and_confirmation() {
        let s = sns();
        let arn = s.create_topic("t", BTreeMap::new()).unwrap();
        assert_eq!(arn, "arn:aws:sns:us-east-1:000000000000:t");
        assert_eq!(
            s.create_topic("t", BTreeMap::new()).unwrap(),
            arn,
            "same name, same ARN"
        );
        let v2 = BTreeMap::from([("SignatureVersion".to_string(), "2".to_string())]);
        assert!(
            s.create_topic("t", v2)
                .unwrap_err()
                .to_string()
                .contains("different attributes")
        );
        assert!(s.create_topic("bad name", BTreeMap::new()).is_err());
        let sub = s
            .subscribe(&arn, "http", "http://127.0.0.1:1/x", BTreeMap::new())
            .unwrap();
        assert!(sub.pending && sub.arn.starts_with(&format!("{arn}:")));
        assert_eq!(
            s.subscribe(&arn, "https", "http://x", BTreeMap::new())
                .unwrap_err()
                .code(),
            "InvalidParameter"
        );
        assert_eq!(
            s.confirm(&arn, "nope").unwrap_err().to_string(),
            "Invalid parameter: Token"
        );
        assert_eq!(s.confirm(&arn, &sub.token).unwrap(), sub.arn);
        assert_eq!(
            s.confirm(&arn, &sub.token).unwrap(),
            sub.arn,
            "confirming twice is idempotent"
        );
        assert!(!s.subscription(&sub.arn).unwrap().pending);
        s.delete_topic(&arn);
        assert!(s.subscriptions(None).is_empty());
        assert_eq!(s.topic(&arn).unwrap_err().code(), "NotFound");
    }

    #[tokio::test(start_paused = true)]
    async fn tokens_expire_and_unconfirmed_subscriptions_are_swept() {
        let s = sns();
        let arn = s.create_topic("t", BTreeMap::new()).unwrap();
        let sub = s.subscribe(&arn, "http", "http://h/", BTreeMap::new()).unwrap();
        tokio::time::advance(TOKEN_LIFETIME + Duration::from_secs(1)).await;
        assert!(s.confirm(&arn, &sub.token).is_err());
        assert_eq!(s.sweep(), std::slice::from_ref(&sub.arn));
        assert!(s.subscriptions(None).is_empty());
    }

    #[test]
    fn config_mistakes_are_named() {
        let c = SnsConfig {
            region: "".into(),
            account: "12".into(),
            topics: vec![TopicDecl {
                name: "a b".into(),
                attributes: BTreeMap::new(),
            }],
            subscriptions: vec![SubscriptionDecl {
                topic: "x".into(),
                endpoint: "ftp://h".into(),
                attributes: BTreeMap::new(),
                confirmed: false,
            }],
            ..SnsConfig::default()
        };
        let e = c.validate(&["asp-events"]);
        assert_eq!(e.len(), 5, "{e:#?}");
        assert!(
            e.iter().any(|m| m.contains("nor the [asp] topic (asp-events)")),
            "{e:#?}"
        );
    }
}
