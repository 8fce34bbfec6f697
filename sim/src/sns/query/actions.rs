//! The actions of the Query API subset, each from its parameters to the
//! inside of its `<XResult>` (or a `Fault`).

use super::form::Params;
use super::xml::Body;
use super::{Caller, Fault, attrs};
use crate::journal::{Face, Kind, Record};
use crate::sns::publish::{self, MAX_MESSAGE};
use crate::sns::{Attribute, MessageType, Publish, Subscription};
use crate::state::State;
use serde_json::json;
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

/// Entries per ListTopics / ListSubscriptions page, as in SNS.
pub const PAGE: usize = 100;
/// Most PublishBatch entries.
pub const MAX_BATCH: usize = 10;
/// Most message attributes on one message.
pub const MAX_MESSAGE_ATTRIBUTES: usize = 10;

type Answer = Result<Option<Body>, Fault>;

/// Run the request's `Action`.
pub fn dispatch(state: &Arc<State>, caller: Caller, p: &Params) -> Answer {
    let action = p.get("Action").ok_or_else(|| Fault::missing("Action"))?;
    match action {
        "CreateTopic" => create_topic(state, p),
        "DeleteTopic" => delete_topic(state, p),
        "ListTopics" => list_topics(state, p),
        "GetTopicAttributes" => get_topic_attributes(state, p),
        "SetTopicAttributes" => set_topic_attributes(state, p),
        "Subscribe" => subscribe(state, p),
        "GetSubscriptionAttributes" => get_subscription_attributes(state, p),
        "SetSubscriptionAttributes" => set_subscription_attributes(state, p),
        "ConfirmSubscription" => confirm_subscription(state, caller, p),
        "Unsubscribe" => unsubscribe(state, caller, p),
        "ListSubscriptions" => list_subscriptions(state, p, None),
        "ListSubscriptionsByTopic" => {
            let topic = topic_arn(state, p.required("TopicArn")?, "TopicArn")?;
            state.sns.topic(&topic)?;
            list_subscriptions(state, p, Some(&topic))
        }
        "Publish" => publish_one(state, p),
        "PublishBatch" => publish_batch(state, p),
        other => Err(Fault::new(
            400,
            "InvalidAction",
            format!("The action {other} is not valid for this web service (this simulator serves a subset of SNS)"),
        )),
    }
}

/// A topic ARN of this simulator's region and account: 400 naming `param`
/// when it is not an SNS topic ARN at all.
fn topic_arn(state: &State, arn: &str, param: &str) -> Result<String, Fault> {
    let parts: Vec<&str> = arn.split(':').collect();
    if parts.len() != 6 || parts[0] != "arn" || parts[2] != "sns" || !crate::sns::valid_name(parts[5]) {
        return Err(Fault::invalid(format!(
            "Invalid parameter: {param} Reason: {arn:?} is not a topic ARN"
        )));
    }
    if parts[3] != state.sns.region {
        return Err(Fault::invalid("Invalid parameter: TopicArn"));
    }
    Ok(arn.to_string())
}

fn subscription_arn(arn: &str) -> Result<&str, Fault> {
    let parts: Vec<&str> = arn.split(':').collect();
    if parts.len() != 7 || parts[0] != "arn" || parts[2] != "sns" {
        return Err(Fault::invalid(format!(
            "Invalid parameter: SubscriptionArn Reason: {arn:?} is not a subscription ARN"
        )));
    }
    Ok(arn)
}

fn create_topic(state: &Arc<State>, p: &Params) -> Answer {
    let name = p.required("Name")?;
    let attributes = p.key_values("Attributes")?;
    for (k, v) in &attributes {
        attrs::check_topic(k, v)?;
    }
    // Tags.member.N.Key/Value are read (bounded) and ignored.
    p.indexed("Tags.member")?;
    let arn = state.sns.create_topic(name, attributes)?;
    let mut b = Body::new();
    b.field("TopicArn", &arn);
    Ok(Some(b))
}

fn delete_topic(state: &Arc<State>, p: &Params) -> Answer {
    let arn = topic_arn(state, p.required("TopicArn")?, "TopicArn")?;
    state.sns.delete_topic(&arn);
    Ok(None)
}

/// A page after `NextToken` (the last ARN of the previous page).
fn page<T>(items: Vec<T>, next: Option<&str>, key: impl Fn(&T) -> &str) -> (Vec<T>, Option<String>) {
    let mut rest: Vec<T> = items.into_iter().filter(|i| next.is_none_or(|n| key(i) > n)).collect();
    let more = rest.len() > PAGE;
    rest.truncate(PAGE);
    let token = more.then(|| rest.last().map(|i| key(i).to_string())).flatten();
    (rest, token)
}

fn list_topics(state: &Arc<State>, p: &Params) -> Answer {
    let (topics, next) = page(state.sns.topics(), p.get("NextToken"), |t| &t.arn);
    let mut b = Body::new();
    b.group("Topics", |b| {
        for t in &topics {
            b.group("member", |b| {
                b.field("TopicArn", &t.arn);
            });
        }
    });
    if let Some(n) = next {
        b.field("NextToken", &n);
    }
    Ok(Some(b))
}

fn default_policy(state: &State, arn: &str) -> String {
    json!({
        "Version": "2008-10-17",
        "Id": "__default_policy_ID",
        "Statement": [{
            "Sid": "__default_statement_ID",
            "Effect": "Allow",
            "Principal": {"AWS": "*"},
            "Action": ["SNS:GetTopicAttributes", "SNS:SetTopicAttributes", "SNS:AddPermission",
                       "SNS:RemovePermission", "SNS:DeleteTopic", "SNS:Subscribe",
                       "SNS:ListSubscriptionsByTopic", "SNS:Publish"],
            "Resource": arn,
            "Condition": {"StringEquals": {"AWS:SourceOwner": state.sns.account}}
        }]
    })
    .to_string()
}

fn get_topic_attributes(state: &Arc<State>, p: &Params) -> Answer {
    let arn = topic_arn(state, p.required("TopicArn")?, "TopicArn")?;
    let topic = state.sns.topic(&arn)?;
    let subs = state.sns.subscriptions(Some(&arn));
    let pending = subs.iter().filter(|s| s.pending).count();
    let mut a: BTreeMap<String, String> = BTreeMap::new();
    a.insert("TopicArn".into(), topic.arn.clone());
    a.insert("Owner".into(), state.sns.account.clone());
    a.insert("Policy".into(), default_policy(state, &topic.arn));
    a.insert("DisplayName".into(), String::new());
    a.insert("SignatureVersion".into(), "1".into());
    a.insert("SubscriptionsConfirmed".into(), (subs.len() - pending).to_string());
    a.insert("SubscriptionsPending".into(), pending.to_string());
    // The store forgets deleted subscriptions; SNS's own count is eventual.
    a.insert("SubscriptionsDeleted".into(), "0".into());
    a.extend(topic.attributes.clone());
    a.insert(
        "EffectiveDeliveryPolicy".into(),
        attrs::effective_topic_policy(topic.attributes.get("DeliveryPolicy").map(String::as_str)),
    );
    let mut b = Body::new();
    b.map("Attributes", a.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    Ok(Some(b))
}

fn set_topic_attributes(state: &Arc<State>, p: &Params) -> Answer {
    let arn = topic_arn(state, p.required("TopicArn")?, "TopicArn")?;
    let name = p.required("AttributeName")?;
    let value = p.get("AttributeValue").unwrap_or("");
    attrs::check_topic(name, value)?;
    state.sns.set_topic_attribute(&arn, name, value)?;
    Ok(None)
}

fn subscribe(state: &Arc<State>, p: &Params) -> Answer {
    let arn = topic_arn(state, p.required("TopicArn")?, "TopicArn")?;
    let protocol = p.required("Protocol")?;
    let endpoint = p.get("Endpoint").unwrap_or("");
    let attributes = p.key_values("Attributes")?;
    let return_arn = p.flag("ReturnSubscriptionArn")?;
    let sub = subscribe_checked(state, &arn, protocol, endpoint, attributes)?;
    let mut b = Body::new();
    b.field(
        "SubscriptionArn",
        if sub.pending && !return_arn {
            "pending confirmation"
        } else {
            &sub.arn
        },
    );
    Ok(Some(b))
}

/// Subscribe as SNS does, for the Query and control APIs: attributes
/// checked; the same endpoint again with the same attributes is the same
/// subscription (its confirmation sent again while pending), with other
/// attributes a 400; a new one is pending and gets its SubscriptionConfirmation.
pub fn subscribe_checked(
    state: &Arc<State>,
    topic: &str,
    protocol: &str,
    endpoint: &str,
    attributes: BTreeMap<String, String>,
) -> Result<Subscription, Fault> {
    for (k, v) in &attributes {
        attrs::check_subscription(k, v)?;
    }
    state.sns.topic(topic)?;
    let uri = endpoint.parse::<http::Uri>().ok();
    if endpoint.is_empty() || uri.as_ref().and_then(|u| u.host()).is_none() {
        return Err(Fault::invalid(format!(
            "Invalid parameter: Endpoint Reason: {endpoint:?} is not an http:// or https:// URL"
        )));
    }
    if let Some(existing) = state
        .sns
        .subscriptions(Some(topic))
        .into_iter()
        .find(|s| s.protocol == protocol && s.endpoint == endpoint)
    {
        let mine: BTreeMap<_, _> = existing
            .attributes
            .iter()
            .filter(|(k, _)| attrs::SUBSCRIPTION.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if mine != attributes {
            return Err(Fault::invalid(
                "Invalid parameter: Attributes Reason: Subscription already exists with different attributes",
            ));
        }
        if existing.pending {
            publish::confirmation(state, &existing, MessageType::SubscriptionConfirmation);
        }
        return Ok(existing);
    }
    let sub = state.sns.subscribe(topic, protocol, endpoint, attributes)?;
    publish::confirmation(state, &sub, MessageType::SubscriptionConfirmation);
    Ok(sub)
}

fn get_subscription_attributes(state: &Arc<State>, p: &Params) -> Answer {
    let arn = subscription_arn(p.required("SubscriptionArn")?)?;
    let sub = state.sns.subscription(arn)?;
    let topic_policy = state
        .sns
        .topic(&sub.topic_arn)
        .ok()
        .and_then(|t| t.attributes.get("DeliveryPolicy").cloned());
    let mut a: BTreeMap<String, String> = BTreeMap::new();
    a.insert("SubscriptionArn".into(), sub.arn.clone());
    a.insert("TopicArn".into(), sub.topic_arn.clone());
    a.insert("Owner".into(), state.sns.account.clone());
    a.insert("Protocol".into(), sub.protocol.clone());
    a.insert("Endpoint".into(), sub.endpoint.clone());
    a.insert("PendingConfirmation".into(), sub.pending.to_string());
    a.insert("ConfirmationWasAuthenticated".into(), "false".into());
    a.insert("RawMessageDelivery".into(), sub.raw().to_string());
    for (k, v) in &sub.attributes {
        if !v.is_empty() {
            a.insert(k.clone(), v.clone());
        }
    }
    if a.contains_key("FilterPolicy") {
        a.entry("FilterPolicyScope".into())
            .or_insert_with(|| "MessageAttributes".into());
    }
    a.insert(
        "EffectiveDeliveryPolicy".into(),
        attrs::effective_subscription_policy(
            topic_policy.as_deref(),
            sub.attributes.get("DeliveryPolicy").map(String::as_str),
        ),
    );
    let mut b = Body::new();
    b.map("Attributes", a.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    Ok(Some(b))
}

fn set_subscription_attributes(state: &Arc<State>, p: &Params) -> Answer {
    let arn = subscription_arn(p.required("SubscriptionArn")?)?;
    let name = p.required("AttributeName")?;
    let value = p.get("AttributeValue").unwrap_or("");
    attrs::check_subscription(name, value)?;
    state.sns.set_subscription_attribute(arn, name, value)?;
    Ok(None)
}

/// Journal a subscription's confirmation (the contract's entry).
pub fn journal_confirmed(state: &State, arn: &str) {
    state.journal.record(
        Record::new(Face::Sns, Kind::Request, format!("subscription {arn} confirmed"))
            .body(json!({"subscription": arn, "confirmed": true})),
    );
}

fn confirm_subscription(state: &Arc<State>, caller: Caller, p: &Params) -> Answer {
    let topic = p.required("TopicArn")?;
    let token = p.required("Token")?;
    // A topic ARN of another region is refused; one of this region that
    // names another topic still confirms (recorded AWS behaviour, sns.md §6).
    let topic = topic_arn(state, topic, "Topic").map_err(|_| Fault::invalid("Invalid parameter: Topic"))?;
    let authenticate = p.flag("AuthenticateOnUnsubscribe")?;
    let bad_token = || Fault::invalid("Invalid parameter: Token");
    let sub = state
        .sns
        .subscriptions(None)
        .into_iter()
        .find(|s| s.token == token)
        .ok_or_else(bad_token)?;
    let _ = topic;
    let arn = state.sns.confirm(&sub.topic_arn, token)?;
    if authenticate && caller.signed {
        state
            .sns
            .set_subscription_attribute(&arn, "ConfirmationWasAuthenticated", "true")?;
    }
    if sub.pending {
        journal_confirmed(state, &arn);
    }
    let mut b = Body::new();
    b.field("SubscriptionArn", &arn);
    Ok(Some(b))
}

fn unsubscribe(state: &Arc<State>, caller: Caller, p: &Params) -> Answer {
    let arn = subscription_arn(p.required("SubscriptionArn")?)?;
    let sub = state.sns.subscription(arn)?;
    let owner_only = sub
        .attributes
        .get("ConfirmationWasAuthenticated")
        .is_some_and(|v| v == "true");
    if owner_only && !caller.signed {
        return Err(Fault::new(
            403,
            "AuthorizationError",
            "Not authorized: the subscription was confirmed with AuthenticateOnUnsubscribe, so only a signed request may unsubscribe it",
        ));
    }
    unsubscribe_checked(state, arn)?;
    Ok(None)
}

/// Remove a subscription and send its UnsubscribeConfirmation.
pub fn unsubscribe_checked(state: &Arc<State>, arn: &str) -> Result<Subscription, Fault> {
    let sub = state.sns.unsubscribe(arn)?;
    publish::confirmation(state, &sub, MessageType::UnsubscribeConfirmation);
    Ok(sub)
}

fn list_subscriptions(state: &Arc<State>, p: &Params, topic: Option<&str>) -> Answer {
    let (subs, next) = page(state.sns.subscriptions(topic), p.get("NextToken"), |s| &s.arn);
    let mut b = Body::new();
    b.group("Subscriptions", |b| {
        for s in &subs {
            b.group("member", |b| {
                b.field(
                    "SubscriptionArn",
                    if s.pending { "PendingConfirmation" } else { &s.arn },
                )
                .field("Owner", &state.sns.account)
                .field("Protocol", &s.protocol)
                .field("Endpoint", &s.endpoint)
                .field("TopicArn", &s.topic_arn);
            });
        }
    });
    if let Some(n) = next {
        b.field("NextToken", &n);
    }
    Ok(Some(b))
}

/// A message attribute name as SNS allows it.
fn valid_attribute_name(name: &str) -> bool {
    (1..=256).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
        && !name.starts_with('.')
        && !name.ends_with('.')
        && !name.contains("..")
        && !name.to_ascii_lowercase().starts_with("aws.")
        && !name.to_ascii_lowercase().starts_with("amazon.")
}

/// `MessageAttributes.entry.N.{Name, Value.DataType, Value.StringValue, Value.BinaryValue}`.
fn message_attributes(p: &Params) -> Result<BTreeMap<String, Attribute>, Fault> {
    let entries = p.indexed("MessageAttributes.entry")?;
    if entries.len() > MAX_MESSAGE_ATTRIBUTES {
        return Err(Fault::new(
            400,
            "InvalidParameterValue",
            format!(
                "Number of message attributes [{}] exceeds the allowed maximum [{MAX_MESSAGE_ATTRIBUTES}].",
                entries.len()
            ),
        ));
    }
    let mut out = BTreeMap::new();
    for (n, e) in entries {
        let bad = |m: String| Fault::new(400, "ParameterValueInvalid", m);
        let name = e
            .get("Name")
            .ok_or_else(|| Fault::missing(&format!("MessageAttributes.entry.{n}.Name")))?;
        if !valid_attribute_name(name) {
            return Err(bad(format!("The message attribute name '{name}' is invalid.")));
        }
        let data_type = e.get("Value.DataType").ok_or_else(|| {
            bad(format!(
                "The message attribute '{name}' must contain non-empty message attribute type."
            ))
        })?;
        let base = data_type.split('.').next().unwrap_or("");
        let value = if base == "Binary" {
            e.get("Value.BinaryValue")
        } else {
            e.get("Value.StringValue")
        }
        .filter(|v| !v.is_empty())
        .ok_or_else(|| bad(format!("The message attribute '{name}' must contain non-empty message attribute value for message attribute type '{data_type}'.")))?;
        match data_type {
            "String" | "Binary" => {}
            "Number" => {
                if value.parse::<f64>().map_or(true, |v| !v.is_finite()) {
                    return Err(bad(format!(
                        "Could not cast message attribute '{name}' value to number."
                    )));
                }
            }
            "String.Array" => {
                if !serde_json::from_str::<serde_json::Value>(value).is_ok_and(|v| v.is_array()) {
                    return Err(bad(format!(
                        "The message attribute '{name}' with type 'String.Array' has an invalid value: it must be a JSON array."
                    )));
                }
            }
            _ if matches!(base, "String" | "Number" | "Binary") && data_type.len() > base.len() + 1 => {}
            _ => {
                return Err(bad(format!(
                    "The message attribute '{name}' has an invalid message attribute type, the set of supported type prefixes is Binary, Number, and String."
                )));
            }
        }
        if out
            .insert(
                name.to_string(),
                Attribute {
                    data_type: data_type.to_string(),
                    value: value.to_string(),
                },
            )
            .is_some()
        {
            return Err(bad(format!("Message attribute name '{name}' has already been used.")));
        }
    }
    Ok(out)
}

/// One message's parameters (Publish itself, or a batch entry) as a `Publish`.
fn message(p: &Params) -> Result<Publish, Fault> {
    let mut message = p.get("Message").ok_or_else(|| Fault::missing("Message"))?.to_string();
    match p.get("MessageStructure") {
        None => {}
        Some("json") => {
            let v: serde_json::Value = serde_json::from_str(&message).map_err(|_| {
                Fault::invalid("Invalid parameter: Message Structure - JSON message body failed to parse")
            })?;
            message = v
                .get("default")
                .and_then(|d| d.as_str())
                .ok_or_else(|| {
                    Fault::invalid("Invalid parameter: Message Structure - No default entry in JSON message body")
                })?
                .to_string();
        }
        Some(_) => return Err(Fault::invalid("Invalid parameter: MessageStructure")),
    }
    let out = Publish {
        message,
        subject: p.get("Subject").map(str::to_string),
        attributes: message_attributes(p)?,
    };
    publish::check(&out)?;
    Ok(out)
}

/// The topic a Publish goes to: TopicArn or TargetArn (topics only here).
fn publish_target(state: &State, p: &Params) -> Result<String, Fault> {
    match (p.get("TopicArn"), p.get("TargetArn"), p.get("PhoneNumber")) {
        (Some(t), _, _) => topic_arn(state, t, "TopicArn"),
        (None, Some(t), _) => topic_arn(state, t, "TargetArn"),
        (None, None, Some(_)) => Err(Fault::invalid(
            "Invalid parameter: PhoneNumber Reason: this simulator publishes to topics only",
        )),
        _ => Err(Fault::invalid(
            "Invalid parameter: TopicArn or TargetArn Reason: no value for required parameter",
        )),
    }
}

fn publish_one(state: &Arc<State>, p: &Params) -> Answer {
    let topic = publish_target(state, p)?;
    state.sns.topic(&topic)?;
    let msg = message(p)?;
    let id = publish::publish(state, &topic, msg)?;
    let mut b = Body::new();
    b.field("MessageId", &id);
    Ok(Some(b))
}

fn publish_batch(state: &Arc<State>, p: &Params) -> Answer {
    let topic = topic_arn(state, p.required("TopicArn")?, "TopicArn")?;
    let entries = p.indexed("PublishBatchRequestEntries.member")?;
    if entries.is_empty() {
        return Err(Fault::new(
            400,
            "EmptyBatchRequest",
            "The batch request doesn't contain any entries",
        ));
    }
    if entries.len() > MAX_BATCH {
        return Err(Fault::new(
            400,
            "TooManyEntriesInBatchRequest",
            format!("The batch request contains more entries than permissible ({MAX_BATCH})."),
        ));
    }
    let mut ids = HashSet::new();
    let mut total = 0usize;
    for (n, e) in &entries {
        let id = e
            .get("Id")
            .ok_or_else(|| Fault::missing(&format!("PublishBatchRequestEntries.member.{n}.Id")))?;
        if id.is_empty() || id.len() > 80 || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
            return Err(Fault::new(
                400,
                "InvalidBatchEntryId",
                format!("The Id of a batch entry in a batch request doesn't abide by the specification: {id:?}"),
            ));
        }
        if !ids.insert(id) {
            return Err(Fault::new(
                400,
                "BatchEntryIdsNotDistinct",
                format!("Two or more batch entries in the request have the same Id: {id}"),
            ));
        }
        total = total.saturating_add(e.get("Message").map_or(0, str::len));
        for (_, a) in e.indexed("MessageAttributes.entry")? {
            for k in ["Name", "Value.DataType", "Value.StringValue", "Value.BinaryValue"] {
                total = total.saturating_add(a.get(k).map_or(0, str::len));
            }
        }
    }
    if total > MAX_MESSAGE {
        return Err(Fault::new(
            400,
            "BatchRequestTooLong",
            format!("The length of all the messages put together is more than the limit ({MAX_MESSAGE} bytes)."),
        ));
    }
    state.sns.topic(&topic)?;
    let mut ok = Vec::new();
    let mut failed = Vec::new();
    for e in entries.values() {
        let id = e.get("Id").unwrap_or_default().to_string();
        match message(e).and_then(|m| publish::publish(state, &topic, m).map_err(Fault::from)) {
            Ok(message_id) => ok.push((id, message_id)),
            Err(f) => failed.push((id, f)),
        }
    }
    let mut b = Body::new();
    b.group("Successful", |b| {
        for (id, mid) in &ok {
            b.group("member", |b| {
                b.field("Id", id).field("MessageId", mid);
            });
        }
    });
    b.group("Failed", |b| {
        for (id, f) in &failed {
            b.group("member", |b| {
                b.field("Id", id)
                    .field("Code", &f.code)
                    .field("Message", &f.message)
                    .field("SenderFault", if f.status < 500 { "true" } else { "false" });
            });
        }
    });
    Ok(Some(b))
}
