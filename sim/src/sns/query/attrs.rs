//! Topic and subscription attributes: which names each takes, what their
//! values must be, and the computed ones (`EffectiveDeliveryPolicy`)
//! shown next to the stored ones. Shared by the Query API and the
//! control API so both refuse the same things.

use super::Fault;
use serde_json::{Value, json};

/// Topic attributes CreateTopic and SetTopicAttributes take.
pub const TOPIC: &[&str] = &[
    "DeliveryPolicy",
    "DisplayName",
    "Policy",
    "SignatureVersion",
    "TracingConfig",
    "KmsMasterKeyId",
    "FifoTopic",
];

/// Subscription attributes Subscribe and SetSubscriptionAttributes take.
pub const SUBSCRIPTION: &[&str] = &[
    "DeliveryPolicy",
    "FilterPolicy",
    "FilterPolicyScope",
    "RawMessageDelivery",
    "RedrivePolicy",
];

fn json_object(name: &str, value: &str) -> Result<Value, Fault> {
    match serde_json::from_str::<Value>(value) {
        Ok(v) if v.is_object() => Ok(v),
        Ok(_) => Err(Fault::invalid(format!(
            "Invalid parameter: {name}: must be a JSON object"
        ))),
        Err(e) => Err(Fault::invalid(format!("Invalid parameter: {name}: {e}"))),
    }
}

/// Check one topic attribute.
pub fn check_topic(name: &str, value: &str) -> Result<(), Fault> {
    match name {
        "SignatureVersion" if matches!(value, "1" | "2") => Ok(()),
        "SignatureVersion" => Err(Fault::invalid("Invalid parameter: SignatureVersion: must be 1 or 2")),
        "DeliveryPolicy" => {
            json_object(name, value)?;
            crate::sns::policy::validate_topic(value)
                .map_err(|e| Fault::invalid(format!("Invalid parameter: DeliveryPolicy: {e}")))
        }
        "Policy" => json_object(name, value).map(drop),
        "TracingConfig" if matches!(value, "PassThrough" | "Active") => Ok(()),
        "TracingConfig" => Err(Fault::invalid(
            "Invalid parameter: TracingConfig: must be PassThrough or Active",
        )),
        "FifoTopic" if value.eq_ignore_ascii_case("false") => Ok(()),
        "FifoTopic" => Err(Fault::invalid(
            "Invalid parameter: FifoTopic: FIFO topics cannot have HTTP(S) subscriptions, the only kind this simulator delivers",
        )),
        "DisplayName" if value.chars().count() <= 100 => Ok(()),
        "DisplayName" => Err(Fault::invalid("Invalid parameter: DisplayName: at most 100 characters")),
        "KmsMasterKeyId" => Ok(()),
        _ => Err(Fault::invalid(format!(
            "Invalid parameter: AttributeName: {name} is not a topic attribute (one of {})",
            TOPIC.join(", ")
        ))),
    }
}

/// Check one subscription attribute.
pub fn check_subscription(name: &str, value: &str) -> Result<(), Fault> {
    match name {
        "RawMessageDelivery" if value.eq_ignore_ascii_case("true") || value.eq_ignore_ascii_case("false") => Ok(()),
        "RawMessageDelivery" => Err(Fault::invalid(
            "Invalid parameter: RawMessageDelivery: must be true or false",
        )),
        // An empty FilterPolicy removes the policy, as in SNS.
        "FilterPolicy" if value.is_empty() => Ok(()),
        "FilterPolicy" => {
            json_object(name, value)?;
            // The scope may be set in the same call or later: a policy valid
            // in either scope is taken; matching uses the scope in force.
            use crate::sns::filter::{Scope, validate};
            validate(value, Scope::MessageAttributes)
                .or_else(|e| validate(value, Scope::MessageBody).map_err(|_| e))
                .map_err(|e| Fault::invalid(format!("Invalid parameter: FilterPolicy: {e}")))
        }
        "FilterPolicyScope" if matches!(value, "MessageAttributes" | "MessageBody") => Ok(()),
        "FilterPolicyScope" => Err(Fault::invalid(
            "Invalid parameter: FilterPolicyScope: must be MessageAttributes or MessageBody",
        )),
        "DeliveryPolicy" => {
            json_object(name, value)?;
            crate::sns::policy::validate_subscription(value)
                .map_err(|e| Fault::invalid(format!("Invalid parameter: DeliveryPolicy: {e}")))
        }
        "RedrivePolicy" => {
            let v = json_object(name, value)?;
            if v.get("deadLetterTargetArn").and_then(Value::as_str).is_none() {
                return Err(Fault::invalid(
                    "Invalid parameter: RedrivePolicy: deadLetterTargetArn is missing",
                ));
            }
            Ok(())
        }
        _ => Err(Fault::invalid(format!(
            "Invalid parameter: AttributeName: {name} is not a subscription attribute (one of {})",
            SUBSCRIPTION.join(", ")
        ))),
    }
}

/// The HTTP retry policy SNS applies when none is set (sns.md §7).
fn default_retry() -> Value {
    json!({
        "minDelayTarget": 20,
        "maxDelayTarget": 20,
        "numRetries": 3,
        "numMaxDelayRetries": 0,
        "numNoDelayRetries": 0,
        "numMinDelayRetries": 0,
        "backoffFunction": "linear"
    })
}

/// `b` laid over `a`, objects merged key by key.
fn overlay(a: &mut Value, b: &Value) {
    match (a, b) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                overlay(a.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
        (a, b) => *a = b.clone(),
    }
}

/// A topic's `EffectiveDeliveryPolicy`: SNS's defaults with its
/// `DeliveryPolicy` laid over them.
pub fn effective_topic_policy(set: Option<&str>) -> String {
    let mut v = json!({"http": {
        "defaultHealthyRetryPolicy": default_retry(),
        "disableSubscriptionOverrides": false,
        "defaultRequestPolicy": {"headerContentType": "text/plain; charset=UTF-8"}
    }});
    if let Some(p) = set.and_then(|s| serde_json::from_str::<Value>(s).ok()) {
        overlay(&mut v, &p);
    }
    v.to_string()
}

/// A subscription's `EffectiveDeliveryPolicy`: its own `DeliveryPolicy`,
/// else the topic's defaults (unless the topic disables overrides), else SNS's.
pub fn effective_subscription_policy(topic_policy: Option<&str>, set: Option<&str>) -> String {
    let topic: Value = serde_json::from_str(&effective_topic_policy(topic_policy)).unwrap_or(Value::Null);
    let http = &topic["http"];
    let mut v = json!({
        "healthyRetryPolicy": http["defaultHealthyRetryPolicy"],
        "sicklyRetryPolicy": null,
        "throttlePolicy": http.get("defaultThrottlePolicy").cloned().unwrap_or(Value::Null),
        "guaranteed": false
    });
    if http["disableSubscriptionOverrides"] != Value::Bool(true) {
        if let Some(p) = set.and_then(|s| serde_json::from_str::<Value>(s).ok()) {
            overlay(&mut v, &p);
        }
    }
    v.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_checked_and_unknown_names_refused() {
        assert!(check_topic("SignatureVersion", "2").is_ok());
        assert!(check_topic("SignatureVersion", "3").is_err());
        assert!(check_topic("DeliveryPolicy", "{").is_err());
        assert!(check_topic("Bogus", "x").unwrap_err().message.contains("Bogus"));
        assert!(check_subscription("RawMessageDelivery", "TRUE").is_ok());
        assert!(check_subscription("RawMessageDelivery", "yes").is_err());
        assert!(check_subscription("RedrivePolicy", "{}").is_err());
        assert!(check_subscription("Endpoint", "x").is_err());
    }

    #[test]
    fn effective_policies_lay_what_is_set_over_the_defaults() {
        let d: Value = serde_json::from_str(&effective_topic_policy(None)).unwrap();
        assert_eq!(d["http"]["defaultHealthyRetryPolicy"]["numRetries"], 3);
        let t = r#"{"http":{"defaultHealthyRetryPolicy":{"numRetries":5}}}"#;
        let s: Value = serde_json::from_str(&effective_subscription_policy(Some(t), None)).unwrap();
        assert_eq!(s["healthyRetryPolicy"]["numRetries"], 5);
        assert_eq!(s["healthyRetryPolicy"]["minDelayTarget"], 20);
        let own = r#"{"healthyRetryPolicy":{"numRetries":7}}"#;
        let s: Value = serde_json::from_str(&effective_subscription_policy(Some(t), Some(own))).unwrap();
        assert_eq!(s["healthyRetryPolicy"]["numRetries"], 7);
    }
}
