//! The HTTP/S delivery policy (reference sns.md §7–8): how often and how
//! far apart a failed delivery is retried, how fast a subscription may be
//! fed, and which `Content-Type` it gets.
//!
//! A subscription's `DeliveryPolicy` attribute is
//! `{"healthyRetryPolicy":{..},"throttlePolicy":{..},"requestPolicy":{..}}`;
//! a topic's is `{"http":{"defaultHealthyRetryPolicy":{..},
//! "disableSubscriptionOverrides":bool,"defaultThrottlePolicy":{..},
//! "defaultRequestPolicy":{..}}}`. The subscription's parts override the
//! topic's unless the topic disables overrides.
//!
//! The retry schedule has four phases: `numNoDelayRetries` back to back,
//! `numMinDelayRetries` at `minDelayTarget`, the backoff phase (the
//! remaining retries) and `numMaxDelayRetries` at `maxDelayTarget`. AWS
//! publishes the backoff curves only as graphs; the simulator's own
//! formulas, for the k-th of n backoff retries (k = 1..=n), min and max the
//! targets, are:
//!
//! - `linear`: `min + (max − min)·k/n`
//! - `arithmetic`: `min + (max − min)·k(k+1) / (n(n+1))` (increments growing
//!   by a constant step)
//! - `geometric`: `min·(max/min)^(k/n)` (a constant ratio between delays)
//! - `exponential`: `min + (max − min)·(2^k − 1)/(2^n − 1)` (doubling increments)
//!
//! so each curve ends at `max`, and with `min == max` every one is flat
//! (SNS's default: 3 retries 20 s apart). Delays are whole milliseconds.

use serde_json::{Map, Value};
use std::time::Duration;

/// Most retries SNS allows.
pub const MAX_RETRIES: u64 = 100;
/// Longest delay target and longest total retry time for HTTP/S, seconds.
pub const MAX_DELAY: u64 = 3600;
/// `Content-Type`s a `requestPolicy` may ask for.
pub const CONTENT_TYPES: &[&str] = &[
    "text/plain",
    "text/plain; charset=UTF-8",
    "application/json",
    "application/json; charset=UTF-8",
    "application/xml",
    "application/xml; charset=UTF-8",
    "text/xml",
    "text/csv",
    "text/html",
];

/// How the backoff phase grows from `minDelayTarget` to `maxDelayTarget`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backoff {
    Linear,
    Arithmetic,
    Geometric,
    Exponential,
}

/// `healthyRetryPolicy`, with SNS's defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub min_delay: u64,
    pub max_delay: u64,
    pub num_retries: u64,
    pub num_no_delay: u64,
    pub num_min_delay: u64,
    pub num_max_delay: u64,
    pub backoff: Backoff,
}

impl Default for RetryPolicy {
    /// SNS's HTTP/S default: 4 attempts 20 s apart.
    fn default() -> Self {
        RetryPolicy {
            min_delay: 20,
            max_delay: 20,
            num_retries: 3,
            num_no_delay: 0,
            num_min_delay: 0,
            num_max_delay: 0,
            backoff: Backoff::Linear,
        }
    }
}

impl RetryPolicy {
    /// The wait before each retry, in order (`num_retries` of them).
    pub fn delays(&self) -> Vec<Duration> {
        let backoff = self
            .num_retries
            .saturating_sub(self.num_no_delay)
            .saturating_sub(self.num_min_delay)
            .saturating_sub(self.num_max_delay);
        let ms = |s: f64| Duration::from_millis((s * 1000.0).round().max(0.0) as u64);
        let (min, max) = (self.min_delay as f64, self.max_delay as f64);
        let mut out = Vec::new();
        out.extend((0..self.num_no_delay.min(MAX_RETRIES)).map(|_| Duration::ZERO));
        out.extend((0..self.num_min_delay.min(MAX_RETRIES)).map(|_| ms(min)));
        let n = backoff.min(MAX_RETRIES) as f64;
        for k in 1..=backoff.min(MAX_RETRIES) {
            let k = k as f64;
            let d = match self.backoff {
                Backoff::Linear => min + (max - min) * k / n,
                Backoff::Arithmetic => min + (max - min) * k * (k + 1.0) / (n * (n + 1.0)),
                Backoff::Geometric => min * (max / min.max(1.0)).powf(k / n),
                Backoff::Exponential => min + (max - min) * (2f64.powf(k) - 1.0) / (2f64.powf(n) - 1.0),
            };
            out.push(ms(d.clamp(min, max.max(min))));
        }
        out.extend((0..self.num_max_delay.min(MAX_RETRIES)).map(|_| ms(max)));
        out
    }
}

/// What delivery to one subscription follows.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeliveryPolicy {
    pub retry: RetryPolicy,
    /// `throttlePolicy.maxReceivesPerSecond` (none: unlimited).
    pub max_receives_per_second: Option<u64>,
    /// `requestPolicy.headerContentType`.
    pub header_content_type: Option<String>,
}

/// A subscription's `DeliveryPolicy`, parsed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Parts {
    pub retry: Option<RetryPolicy>,
    pub throttle: Option<u64>,
    pub content_type: Option<String>,
    /// Topic policies only.
    pub disable_overrides: bool,
}

/// Check a `DeliveryPolicy` attribute (a subscription's, or a topic's when
/// it has an `http` key). The error names the field, e.g.
/// `healthyRetryPolicy.numRetries: must be 0-100, got 101`; the Query API
/// answers it as `InvalidParameter`.
pub fn validate(json: &str) -> Result<(), String> {
    let v: Value = serde_json::from_str(json).map_err(|e| format!("not JSON: {e}"))?;
    let obj = v.as_object().ok_or("must be a JSON object")?;
    if obj.contains_key("http") {
        parse_topic_value(&v).map(|_| ())
    } else {
        parse_subscription_value(&v).map(|_| ())
    }
}

/// Check a subscription's `DeliveryPolicy` (SetSubscriptionAttributes, Subscribe).
pub fn validate_subscription(json: &str) -> Result<(), String> {
    parse_subscription(json).map(|_| ())
}

/// Check a topic's `DeliveryPolicy` (CreateTopic, SetTopicAttributes): the
/// `{"http": {...}}` shape.
pub fn validate_topic(json: &str) -> Result<(), String> {
    parse_topic(json).map(|_| ())
}

/// A subscription's `DeliveryPolicy`.
pub fn parse_subscription(json: &str) -> Result<Parts, String> {
    let v: Value = serde_json::from_str(json).map_err(|e| format!("not JSON: {e}"))?;
    parse_subscription_value(&v)
}

/// A topic's `DeliveryPolicy` (its `http` part).
pub fn parse_topic(json: &str) -> Result<Parts, String> {
    let v: Value = serde_json::from_str(json).map_err(|e| format!("not JSON: {e}"))?;
    parse_topic_value(&v)
}

fn parse_subscription_value(v: &Value) -> Result<Parts, String> {
    let obj = v.as_object().ok_or("must be a JSON object")?;
    for k in obj.keys() {
        if !matches!(
            k.as_str(),
            "healthyRetryPolicy" | "throttlePolicy" | "requestPolicy" | "sicklyRetryPolicy" | "guaranteed"
        ) {
            return Err(format!("{k}: unknown field"));
        }
    }
    Ok(Parts {
        retry: obj
            .get("healthyRetryPolicy")
            .map(|r| retry("healthyRetryPolicy", r))
            .transpose()?,
        throttle: obj
            .get("throttlePolicy")
            .map(|t| throttle("throttlePolicy", t))
            .transpose()?
            .flatten(),
        content_type: obj
            .get("requestPolicy")
            .map(|r| request("requestPolicy", r))
            .transpose()?
            .flatten(),
        disable_overrides: false,
    })
}

fn parse_topic_value(v: &Value) -> Result<Parts, String> {
    let obj = v.as_object().ok_or("must be a JSON object")?;
    for k in obj.keys() {
        // Other protocols' sections are SNS's business, not an HTTP subscriber's.
        if !matches!(
            k.as_str(),
            "http" | "https" | "sqs" | "lambda" | "email" | "sms" | "application"
        ) {
            return Err(format!("{k}: unknown field"));
        }
    }
    let Some(http) = obj.get("http") else {
        return Ok(Parts::default());
    };
    let http = http.as_object().ok_or("http: must be a JSON object")?;
    for k in http.keys() {
        if !matches!(
            k.as_str(),
            "defaultHealthyRetryPolicy"
                | "defaultThrottlePolicy"
                | "defaultRequestPolicy"
                | "disableSubscriptionOverrides"
                | "defaultSicklyRetryPolicy"
        ) {
            return Err(format!("http.{k}: unknown field"));
        }
    }
    let disable_overrides = match http.get("disableSubscriptionOverrides") {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(other) => {
            return Err(format!(
                "http.disableSubscriptionOverrides: must be true or false, got {other}"
            ));
        }
    };
    Ok(Parts {
        retry: http
            .get("defaultHealthyRetryPolicy")
            .map(|r| retry("http.defaultHealthyRetryPolicy", r))
            .transpose()?,
        throttle: http
            .get("defaultThrottlePolicy")
            .map(|t| throttle("http.defaultThrottlePolicy", t))
            .transpose()?
            .flatten(),
        content_type: http
            .get("defaultRequestPolicy")
            .map(|r| request("http.defaultRequestPolicy", r))
            .transpose()?
            .flatten(),
        disable_overrides,
    })
}

fn object<'a>(path: &str, v: &'a Value) -> Result<&'a Map<String, Value>, String> {
    v.as_object().ok_or_else(|| format!("{path}: must be a JSON object"))
}

/// A non-negative whole number (given as a number or a numeric string, as
/// SNS accepts both), or an error naming `path`.
fn count(path: &str, v: &Value) -> Result<u64, String> {
    let n = match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse::<u64>().ok(),
        _ => None,
    };
    n.ok_or_else(|| format!("{path}: must be a non-negative whole number, got {v}"))
}

fn retry(path: &str, v: &Value) -> Result<RetryPolicy, String> {
    let obj = object(path, v)?;
    let mut p = RetryPolicy::default();
    for (k, val) in obj {
        let field = format!("{path}.{k}");
        match k.as_str() {
            "minDelayTarget" => p.min_delay = count(&field, val)?,
            "maxDelayTarget" => p.max_delay = count(&field, val)?,
            "numRetries" => p.num_retries = count(&field, val)?,
            "numNoDelayRetries" => p.num_no_delay = count(&field, val)?,
            "numMinDelayRetries" => p.num_min_delay = count(&field, val)?,
            "numMaxDelayRetries" => p.num_max_delay = count(&field, val)?,
            "backoffFunction" => {
                p.backoff = match val.as_str() {
                    Some("linear") => Backoff::Linear,
                    Some("arithmetic") => Backoff::Arithmetic,
                    Some("geometric") => Backoff::Geometric,
                    Some("exponential") => Backoff::Exponential,
                    _ => {
                        return Err(format!(
                            "{field}: must be linear, arithmetic, geometric or exponential, got {val}"
                        ));
                    }
                }
            }
            _ => return Err(format!("{field}: unknown field")),
        }
    }
    if p.num_retries > MAX_RETRIES {
        return Err(format!(
            "{path}.numRetries: must be 0-{MAX_RETRIES}, got {}",
            p.num_retries
        ));
    }
    if p.min_delay < 1 {
        return Err(format!(
            "{path}.minDelayTarget: must be at least 1, got {}",
            p.min_delay
        ));
    }
    if p.max_delay > MAX_DELAY {
        return Err(format!(
            "{path}.maxDelayTarget: must be at most {MAX_DELAY}, got {}",
            p.max_delay
        ));
    }
    if p.min_delay > p.max_delay {
        return Err(format!(
            "{path}.minDelayTarget: must not exceed maxDelayTarget ({} > {})",
            p.min_delay, p.max_delay
        ));
    }
    let phases = p
        .num_no_delay
        .saturating_add(p.num_min_delay)
        .saturating_add(p.num_max_delay);
    if phases > p.num_retries {
        return Err(format!(
            "{path}.numRetries: must be at least numNoDelayRetries + numMinDelayRetries + numMaxDelayRetries ({phases}), got {}",
            p.num_retries
        ));
    }
    let total: Duration = p.delays().iter().sum();
    if total > Duration::from_secs(MAX_DELAY) {
        return Err(format!(
            "{path}: total retry time {} s is over the {MAX_DELAY} s HTTP/S limit",
            total.as_secs()
        ));
    }
    Ok(p)
}

fn throttle(path: &str, v: &Value) -> Result<Option<u64>, String> {
    let obj = object(path, v)?;
    let mut out = None;
    for (k, val) in obj {
        match k.as_str() {
            "maxReceivesPerSecond" => {
                let n = count(&format!("{path}.maxReceivesPerSecond"), val)?;
                if n < 1 {
                    return Err(format!("{path}.maxReceivesPerSecond: must be at least 1, got {n}"));
                }
                out = Some(n);
            }
            _ => return Err(format!("{path}.{k}: unknown field")),
        }
    }
    Ok(out)
}

fn request(path: &str, v: &Value) -> Result<Option<String>, String> {
    let obj = object(path, v)?;
    let mut out = None;
    for (k, val) in obj {
        match k.as_str() {
            "headerContentType" => {
                let ct = val
                    .as_str()
                    .filter(|s| CONTENT_TYPES.iter().any(|c| c.eq_ignore_ascii_case(s)))
                    .ok_or_else(|| {
                        format!(
                            "{path}.headerContentType: must be one of {}, got {val}",
                            CONTENT_TYPES.join(", ")
                        )
                    })?;
                out = Some(ct.to_string());
            }
            _ => return Err(format!("{path}.{k}: unknown field")),
        }
    }
    Ok(out)
}

/// The policy a subscription's deliveries follow, from the topic's and the
/// subscription's `DeliveryPolicy` attributes (either may be absent). A
/// stored policy that does not parse (one the API would have refused) is
/// ignored in favour of the defaults.
pub fn effective(topic_policy: Option<&str>, subscription_policy: Option<&str>) -> DeliveryPolicy {
    let topic = topic_policy.and_then(|j| parse_topic(j).ok()).unwrap_or_default();
    let sub = if topic.disable_overrides {
        Parts::default()
    } else {
        subscription_policy
            .and_then(|j| parse_subscription(j).ok())
            .unwrap_or_default()
    };
    DeliveryPolicy {
        retry: sub.retry.or(topic.retry).unwrap_or_default(),
        max_receives_per_second: sub.throttle.or(topic.throttle),
        header_content_type: sub.content_type.or(topic.content_type),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(v: &[Duration]) -> Vec<f64> {
        v.iter().map(|d| d.as_secs_f64()).collect()
    }

    #[test]
    fn the_default_is_four_attempts_twenty_seconds_apart() {
        assert_eq!(secs(&RetryPolicy::default().delays()), [20.0, 20.0, 20.0]);
        assert_eq!(effective(None, None), DeliveryPolicy::default());
    }

    #[test]
    fn the_four_phases_in_order() {
        // The AWS documentation's example: 3 immediate, 2 × 1 s, 10 exponential 1 → 60 s, 35 × 60 s.
        let p = parse_subscription(
            r#"{"healthyRetryPolicy":{"minDelayTarget":1,"maxDelayTarget":60,"numRetries":50,
                "numNoDelayRetries":3,"numMinDelayRetries":2,"numMaxDelayRetries":35,"backoffFunction":"exponential"},
                "throttlePolicy":{"maxReceivesPerSecond":10}}"#,
        )
        .unwrap();
        let d = secs(&p.retry.unwrap().delays());
        assert_eq!(d.len(), 50);
        assert_eq!(&d[..5], &[0.0, 0.0, 0.0, 1.0, 1.0]);
        assert_eq!(d[14], 60.0, "the backoff ends at maxDelayTarget");
        assert!(d[5..15].windows(2).all(|w| w[0] <= w[1]), "{d:?}");
        assert!(d[15..].iter().all(|&x| x == 60.0));
        assert_eq!(p.throttle, Some(10));
    }

    #[test]
    fn backoff_curves_run_from_min_to_max() {
        for f in ["linear", "arithmetic", "geometric", "exponential"] {
            let p = parse_subscription(&format!(
                r#"{{"healthyRetryPolicy":{{"minDelayTarget":2,"maxDelayTarget":40,"numRetries":5,"backoffFunction":"{f}"}}}}"#
            ))
            .unwrap();
            let d = secs(&p.retry.unwrap().delays());
            assert_eq!(d.len(), 5, "{f}");
            assert!(d.windows(2).all(|w| w[0] < w[1]), "{f}: {d:?}");
            assert!(d[0] >= 2.0 && d[4] == 40.0, "{f}: {d:?}");
        }
        let linear = RetryPolicy {
            min_delay: 10,
            max_delay: 50,
            num_retries: 4,
            ..RetryPolicy::default()
        };
        assert_eq!(secs(&linear.delays()), [20.0, 30.0, 40.0, 50.0]);
    }

    #[test]
    fn invalid_policies_name_the_field() {
        let cases = [
            (
                r#"{"healthyRetryPolicy":{"numRetries":101}}"#,
                "healthyRetryPolicy.numRetries",
            ),
            (
                r#"{"healthyRetryPolicy":{"minDelayTarget":0}}"#,
                "healthyRetryPolicy.minDelayTarget",
            ),
            (
                r#"{"healthyRetryPolicy":{"maxDelayTarget":3601}}"#,
                "healthyRetryPolicy.maxDelayTarget",
            ),
            (
                r#"{"healthyRetryPolicy":{"minDelayTarget":30,"maxDelayTarget":20}}"#,
                "healthyRetryPolicy.minDelayTarget",
            ),
            (
                r#"{"healthyRetryPolicy":{"numRetries":2,"numNoDelayRetries":3}}"#,
                "healthyRetryPolicy.numRetries",
            ),
            (
                r#"{"healthyRetryPolicy":{"minDelayTarget":3600,"maxDelayTarget":3600,"numRetries":2}}"#,
                "total retry time",
            ),
            (
                r#"{"healthyRetryPolicy":{"backoffFunction":"cubic"}}"#,
                "healthyRetryPolicy.backoffFunction",
            ),
            (
                r#"{"healthyRetryPolicy":{"numRetries":-1}}"#,
                "healthyRetryPolicy.numRetries",
            ),
            (
                r#"{"healthyRetryPolicy":{"numRetrys":1}}"#,
                "healthyRetryPolicy.numRetrys",
            ),
            (
                r#"{"throttlePolicy":{"maxReceivesPerSecond":0}}"#,
                "throttlePolicy.maxReceivesPerSecond",
            ),
            (
                r#"{"requestPolicy":{"headerContentType":"image/png"}}"#,
                "requestPolicy.headerContentType",
            ),
            (
                r#"{"http":{"defaultHealthyRetryPolicy":{"numRetries":1000}}}"#,
                "http.defaultHealthyRetryPolicy.numRetries",
            ),
            (
                r#"{"http":{"disableSubscriptionOverrides":"yes"}}"#,
                "http.disableSubscriptionOverrides",
            ),
            ("[]", "JSON object"),
            ("{", "not JSON"),
        ];
        for (json, field) in cases {
            let e = validate(json).unwrap_err();
            assert!(e.contains(field), "{json}: {e}");
        }
        assert!(validate(r#"{"healthyRetryPolicy":{"numRetries":"5"}}"#).is_ok());
        let sub_shaped = r#"{"healthyRetryPolicy":{"numRetries":5}}"#;
        assert!(validate_subscription(sub_shaped).is_ok());
        assert!(
            validate_topic(sub_shaped)
                .unwrap_err()
                .contains("healthyRetryPolicy: unknown field")
        );
        assert!(validate_topic(r#"{"http":{"defaultHealthyRetryPolicy":{"numRetries":5}}}"#).is_ok());
        assert!(
            validate_subscription(r#"{"http":{}}"#)
                .unwrap_err()
                .contains("http: unknown field")
        );
    }

    #[test]
    fn the_topic_sets_defaults_and_may_disable_overrides() {
        let topic = r#"{"http":{"defaultHealthyRetryPolicy":{"minDelayTarget":5,"maxDelayTarget":5,"numRetries":1},
            "defaultRequestPolicy":{"headerContentType":"application/json"}}}"#;
        let sub = r#"{"healthyRetryPolicy":{"minDelayTarget":1,"maxDelayTarget":1,"numRetries":2}}"#;
        let p = effective(Some(topic), Some(sub));
        assert_eq!(secs(&p.retry.delays()), [1.0, 1.0]);
        assert_eq!(p.header_content_type.as_deref(), Some("application/json"));
        let locked = topic.replacen("{\"http\":{", "{\"http\":{\"disableSubscriptionOverrides\":true,", 1);
        let p = effective(Some(&locked), Some(sub));
        assert_eq!(secs(&p.retry.delays()), [5.0]);
    }
}
