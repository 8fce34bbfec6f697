//! Publish and the confirmation messages: from a topic to each of its
//! subscriptions' delivery queues, journaled under face `sns`.

use super::model::{MessageType, Outgoing, Publish, Subscription};
use super::{SnsError, deliver, filter};
use crate::journal::{Face, Kind, Record};
use crate::state::State;
use serde_json::json;
use std::sync::Arc;

/// Largest message SNS takes: 256 KiB.
pub const MAX_MESSAGE: usize = 256 * 1024;
/// Longest Subject: 100 characters, printable ASCII, no line breaks.
pub const MAX_SUBJECT: usize = 100;

/// Check a publish the way SNS does.
pub fn check(p: &Publish) -> Result<(), SnsError> {
    if p.message.is_empty() {
        return Err(SnsError::InvalidParameter("Invalid parameter: Empty message".into()));
    }
    if p.message.len() > MAX_MESSAGE {
        return Err(SnsError::InvalidParameter("Invalid parameter: Message too long".into()));
    }
    if let Some(s) = &p.subject {
        if s.is_empty() || s.chars().count() > MAX_SUBJECT || s.chars().any(|c| !(' '..='~').contains(&c)) {
            return Err(SnsError::InvalidParameter("Invalid parameter: Subject".into()));
        }
    }
    Ok(())
}

/// Publish to a topic: the MessageId. Each confirmed subscription whose
/// filter policy matches gets it queued; the others are journaled as
/// filtered out.
pub fn publish(state: &Arc<State>, topic_arn: &str, p: Publish) -> Result<String, SnsError> {
    check(&p)?;
    let topic = state.sns.topic(topic_arn)?;
    let message_id = uuid::Uuid::new_v4().to_string();
    let timestamp = super::timestamp();
    state.journal.record(
        Record::new(
            Face::Sns,
            Kind::Request,
            format!("Publish to {} ({message_id})", topic.name),
        )
        .body(json!({
            "topic": topic.arn,
            "message_id": message_id,
            "subject": p.subject,
            "message": p.message,
            "attributes": p.attributes,
        })),
    );
    for sub in state.sns.subscriptions(Some(&topic.arn)) {
        if sub.pending {
            continue;
        }
        if !filter::matches(&sub, &p) {
            state.journal.record(
                Record::new(
                    Face::Sns,
                    Kind::Error,
                    format!("{message_id} filtered out for {}", sub.arn),
                )
                .body(json!({"message_id": message_id, "subscription": sub.arn, "reason": "FilterPolicy"})),
            );
            continue;
        }
        deliver::enqueue(
            state,
            Outgoing {
                kind: MessageType::Notification,
                message_id: message_id.clone(),
                topic_arn: topic.arn.clone(),
                subscription_arn: sub.arn.clone(),
                endpoint: sub.endpoint.clone(),
                timestamp: timestamp.clone(),
                message: p.message.clone(),
                subject: p.subject.clone(),
                attributes: p.attributes.clone(),
                token: None,
                subscribe_url: None,
            },
        );
    }
    Ok(message_id)
}

/// The base URL SNS's own links point at: the TLS listener, as SNS's are https.
pub fn base_url(state: &State) -> String {
    let listeners = state.listeners.read();
    listeners
        .iter()
        .find(|l| &*l.name == "avs")
        .or_else(|| listeners.first())
        .map(|l| l.url())
        .unwrap_or_else(|| "https://127.0.0.1".into())
}

/// Queue a SubscriptionConfirmation (after Subscribe) or an
/// UnsubscribeConfirmation (after Unsubscribe) for `sub`.
pub fn confirmation(state: &Arc<State>, sub: &Subscription, kind: MessageType) {
    let base = base_url(state);
    let (message, what) = match kind {
        MessageType::UnsubscribeConfirmation => (
            format!(
                "You have chosen to deactivate subscription {}.\nTo cancel this operation and restore the subscription, visit the SubscribeURL included in this message.",
                sub.arn
            ),
            "UnsubscribeConfirmation",
        ),
        _ => (
            format!(
                "You have chosen to subscribe to the topic {}.\nTo confirm the subscription, visit the SubscribeURL included in this message.",
                sub.topic_arn
            ),
            "SubscriptionConfirmation",
        ),
    };
    let subscribe_url = format!(
        "{base}/?Action=ConfirmSubscription&TopicArn={}&Token={}",
        sub.topic_arn, sub.token
    );
    let message_id = uuid::Uuid::new_v4().to_string();
    state.journal.record(
        Record::new(Face::Sns, Kind::Request, format!("{what} for {}", sub.arn))
            .body(json!({"subscription": sub.arn, "message_id": message_id, "endpoint": sub.endpoint})),
    );
    deliver::enqueue(
        state,
        Outgoing {
            kind,
            message_id,
            topic_arn: sub.topic_arn.clone(),
            subscription_arn: sub.arn.clone(),
            endpoint: sub.endpoint.clone(),
            timestamp: super::timestamp(),
            message,
            subject: None,
            attributes: Default::default(),
            token: Some(sub.token.clone()),
            subscribe_url: Some(subscribe_url),
        },
    );
}
