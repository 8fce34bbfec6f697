//! Subscription filter policies (reference sns.md §10).
//!
//! A policy is a JSON object. Every key must match (AND); within a key any
//! listed condition may match (OR); keys the policy does not name are
//! ignored; `$or` takes a list of policies of which one must match. With
//! `FilterPolicyScope` `MessageAttributes` (the default) the keys name
//! message attributes (`String`, `Number`, and each element of a
//! `String.Array`; `Binary` never matches); with `MessageBody` the message
//! must be a JSON object, keys nest as the payload does, and a payload
//! array matches when any element does.
//!
//! Conditions: an exact string, number (compared to 5 decimals), boolean or
//! null; `{"prefix"}`, `{"suffix"}`, `{"equals-ignore-case"}`,
//! `{"anything-but": value | [values] | {"prefix"|"suffix": s}}`,
//! `{"numeric": [op, n (, op, n)]}`, `{"exists": bool}` and
//! `{"cidr": "10.0.0.0/24"}`.

use super::model::{Publish, Subscription};
use serde_json::{Map, Value};
use std::net::IpAddr;

/// Largest policy: 256 KB.
pub const MAX_POLICY: usize = 256 * 1024;
/// Most keys in a MessageAttributes-scope policy.
pub const MAX_KEYS: usize = 5;
/// Most value combinations in a policy.
pub const MAX_COMBINATIONS: u64 = 150;
/// Numbers a policy may name: ±10⁹.
const MAX_NUMBER: f64 = 1e9;

/// Whether a policy reads message attributes or the message body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    MessageAttributes,
    MessageBody,
}

impl Scope {
    /// The `FilterPolicyScope` attribute's value (absent: MessageAttributes).
    pub fn parse(s: Option<&str>) -> Result<Scope, String> {
        match s {
            None | Some("MessageAttributes") => Ok(Scope::MessageAttributes),
            Some("MessageBody") => Ok(Scope::MessageBody),
            Some(other) => Err(format!(
                "FilterPolicyScope: must be MessageAttributes or MessageBody, got {other:?}"
            )),
        }
    }
}

/// Whether `sub`'s filter policy lets `msg` through. No policy lets all
/// through; a stored policy that is not valid (the API would have refused
/// it) lets nothing through, so the publish journals it as filtered out.
pub fn matches(sub: &Subscription, msg: &Publish) -> bool {
    let Some(policy) = sub.attributes.get("FilterPolicy") else {
        return true;
    };
    let Ok(scope) = Scope::parse(sub.attributes.get("FilterPolicyScope").map(String::as_str)) else {
        return false;
    };
    if validate(policy, scope).is_err() {
        return false;
    }
    let Ok(Value::Object(policy)) = serde_json::from_str::<Value>(policy) else {
        return false;
    };
    match scope {
        Scope::MessageAttributes => {
            let lookup = |key: &str| attribute_values(msg, key);
            object_matches(&policy, &lookup)
        }
        Scope::MessageBody => match serde_json::from_str::<Value>(&msg.message) {
            Ok(body @ Value::Object(_)) => body_matches(&policy, &body),
            _ => false,
        },
    }
}

/// The values an attribute offers a policy: none when absent or Binary.
fn attribute_values(msg: &Publish, key: &str) -> Option<Vec<Value>> {
    let a = msg.attributes.get(key)?;
    match a.data_type.split('.').next().unwrap_or("") {
        "String" if a.data_type == "String.Array" => match serde_json::from_str::<Value>(&a.value) {
            Ok(Value::Array(items)) => Some(items),
            _ => Some(vec![Value::String(a.value.clone())]),
        },
        "String" => Some(vec![Value::String(a.value.clone())]),
        "Number" => Some(vec![
            a.value
                .trim()
                .parse::<f64>()
                .ok()
                .and_then(serde_json::Number::from_f64)
                .map_or_else(|| Value::String(a.value.clone()), Value::Number),
        ]),
        _ => None,
    }
}

/// Attribute scope: each key's conditions against the attribute's values.
fn object_matches(policy: &Map<String, Value>, lookup: &dyn Fn(&str) -> Option<Vec<Value>>) -> bool {
    policy.iter().all(|(key, conditions)| {
        if key == "$or" {
            return conditions.as_array().is_some_and(|alts| {
                alts.iter()
                    .any(|alt| alt.as_object().is_some_and(|o| object_matches(o, lookup)))
            });
        }
        let values = lookup(key);
        conditions
            .as_array()
            .is_some_and(|cs| cs.iter().any(|c| condition_matches(c, values.as_deref())))
    })
}

/// Body scope: keys nest like the payload; arrays are flattened.
fn body_matches(policy: &Map<String, Value>, body: &Value) -> bool {
    policy.iter().all(|(key, rule)| {
        if key == "$or" {
            return rule.as_array().is_some_and(|alts| {
                alts.iter()
                    .any(|alt| alt.as_object().is_some_and(|o| body_matches(o, body)))
            });
        }
        let mut found = Vec::new();
        collect(body, key, &mut found);
        match rule {
            Value::Object(nested) => {
                // Missing nested object: only `exists: false` leaves can match.
                if found.is_empty() {
                    return body_matches(nested, &Value::Null);
                }
                found.iter().any(|v| body_matches(nested, v))
            }
            Value::Array(cs) => {
                let mut leaves = Vec::new();
                for v in found {
                    flatten(v, &mut leaves);
                }
                let values = (!leaves.is_empty()).then_some(leaves);
                cs.iter().any(|c| condition_matches(c, values.as_deref()))
            }
            _ => false,
        }
    })
}

/// `key` of `v`, or of each element when `v` is an array.
fn collect<'a>(v: &'a Value, key: &str, out: &mut Vec<&'a Value>) {
    match v {
        Value::Object(o) => {
            if let Some(x) = o.get(key) {
                out.push(x);
            }
        }
        Value::Array(items) => items.iter().for_each(|i| collect(i, key, out)),
        _ => {}
    }
}

fn flatten(v: &Value, out: &mut Vec<Value>) {
    match v {
        Value::Array(items) => items.iter().for_each(|i| flatten(i, out)),
        other => out.push(other.clone()),
    }
}

/// Numbers as SNS compares them: to 5 decimals.
fn same_number(a: f64, b: f64) -> bool {
    (a * 1e5).round() == (b * 1e5).round()
}

fn condition_matches(c: &Value, values: Option<&[Value]>) -> bool {
    if let Some(exists) = c.get("exists").and_then(Value::as_bool) {
        return exists == values.is_some_and(|v| !v.is_empty());
    }
    let Some(values) = values else { return false };
    values.iter().any(|v| value_matches(c, v))
}

fn value_matches(c: &Value, v: &Value) -> bool {
    match c {
        Value::String(s) => v.as_str() == Some(s),
        Value::Number(n) => match (n.as_f64(), v.as_f64()) {
            (Some(a), Some(b)) => same_number(a, b),
            _ => false,
        },
        Value::Bool(_) | Value::Null => c == v,
        Value::Object(o) => {
            let Some((op, arg)) = o.iter().next() else { return false };
            match op.as_str() {
                "prefix" => str_op(arg, v, |s, p| s.starts_with(p)),
                "suffix" => str_op(arg, v, |s, p| s.ends_with(p)),
                "equals-ignore-case" => str_op(arg, v, |s, p| s.to_lowercase() == p.to_lowercase()),
                "anything-but" => match arg {
                    Value::Array(list) => !list.iter().any(|x| value_matches(x, v)),
                    Value::Object(_) => !value_matches(arg, v),
                    scalar => !value_matches(scalar, v),
                },
                "numeric" => v.as_f64().is_some_and(|x| numeric(arg, x)),
                "cidr" => str_op(arg, v, cidr_contains),
                _ => false,
            }
        }
        Value::Array(_) => false,
    }
}

fn str_op(arg: &Value, v: &Value, f: impl Fn(&str, &str) -> bool) -> bool {
    match (arg.as_str(), v.as_str()) {
        (Some(p), Some(s)) => f(s, p),
        _ => false,
    }
}

fn numeric(arg: &Value, x: f64) -> bool {
    let Some(parts) = arg.as_array() else { return false };
    parts.chunks(2).all(|pair| {
        let (Some(op), Some(n)) = (pair[0].as_str(), pair.get(1).and_then(Value::as_f64)) else {
            return false;
        };
        match op {
            "=" => same_number(x, n),
            "<" => x < n && !same_number(x, n),
            "<=" => x < n || same_number(x, n),
            ">" => x > n && !same_number(x, n),
            ">=" => x > n || same_number(x, n),
            _ => false,
        }
    })
}

/// Whether `ip` is inside `net` (`a.b.c.d/len` or an IPv6 prefix).
fn cidr_contains(ip: &str, net: &str) -> bool {
    let Some((base, len)) = net.split_once('/') else {
        return false;
    };
    let (Ok(ip), Ok(base), Ok(len)) = (ip.parse::<IpAddr>(), base.parse::<IpAddr>(), len.parse::<u32>()) else {
        return false;
    };
    match (ip, base) {
        (IpAddr::V4(a), IpAddr::V4(b)) if len <= 32 => {
            let mask = u32::MAX.checked_shl(32 - len).unwrap_or(0);
            u32::from(a) & mask == u32::from(b) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(b)) if len <= 128 => {
            let mask = u128::MAX.checked_shl(128 - len).unwrap_or(0);
            u128::from(a) & mask == u128::from(b) & mask
        }
        _ => false,
    }
}

/// Check a `FilterPolicy` for `scope`; the error says what is wrong and
/// where (the Query API answers it as `InvalidParameter`).
pub fn validate(policy: &str, scope: Scope) -> Result<(), String> {
    if policy.len() > MAX_POLICY {
        return Err(format!("FilterPolicy: longer than {MAX_POLICY} bytes"));
    }
    let v: Value = serde_json::from_str(policy).map_err(|e| format!("FilterPolicy: not JSON: {e}"))?;
    let obj = v.as_object().ok_or("FilterPolicy: must be a JSON object")?;
    if obj.is_empty() {
        return Err("FilterPolicy: must name at least one key".into());
    }
    let mut keys = 0usize;
    let combos = check_object(obj, scope, "", 0, &mut keys)?;
    if scope == Scope::MessageAttributes && keys > MAX_KEYS {
        return Err(format!(
            "FilterPolicy: {keys} keys, at most {MAX_KEYS} in MessageAttributes scope"
        ));
    }
    if combos > MAX_COMBINATIONS {
        return Err(format!(
            "FilterPolicy: {combos} combinations of values, at most {MAX_COMBINATIONS}"
        ));
    }
    Ok(())
}

/// Nesting deeper than this is refused (and keeps recursion bounded).
const MAX_DEPTH: usize = 32;

/// Check an object of the policy; its number of value combinations.
fn check_object(
    obj: &Map<String, Value>,
    scope: Scope,
    path: &str,
    depth: usize,
    keys: &mut usize,
) -> Result<u64, String> {
    if depth > MAX_DEPTH {
        return Err(format!("FilterPolicy: {path}: nested deeper than {MAX_DEPTH}"));
    }
    let mut combos: u64 = 1;
    for (key, rule) in obj {
        let here = if path.is_empty() {
            key.clone()
        } else {
            format!("{path}.{key}")
        };
        let n = if key == "$or" {
            let alts = rule
                .as_array()
                .filter(|a| a.len() >= 2)
                .ok_or_else(|| format!("FilterPolicy: {here}: must be a list of at least two policies"))?;
            let mut sum: u64 = 0;
            for alt in alts {
                let o = alt
                    .as_object()
                    .filter(|o| !o.is_empty())
                    .ok_or_else(|| format!("FilterPolicy: {here}: each alternative must be a non-empty object"))?;
                sum = sum.saturating_add(check_object(o, scope, path, depth + 1, keys)?);
            }
            sum
        } else {
            match rule {
                Value::Array(cs) => {
                    *keys = keys.saturating_add(1);
                    if cs.is_empty() {
                        return Err(format!("FilterPolicy: {here}: empty list of conditions"));
                    }
                    for c in cs {
                        check_condition(c, &here)?;
                    }
                    cs.len() as u64
                }
                Value::Object(nested) if scope == Scope::MessageBody => {
                    if nested.is_empty() {
                        return Err(format!("FilterPolicy: {here}: empty object"));
                    }
                    check_object(nested, scope, &here, depth + 1, keys)?
                }
                Value::Object(_) => {
                    return Err(format!(
                        "FilterPolicy: {here}: nested keys need FilterPolicyScope MessageBody"
                    ));
                }
                _ => return Err(format!("FilterPolicy: {here}: must be a list of conditions")),
            }
        };
        combos = combos.saturating_mul(n.max(1));
    }
    Ok(combos)
}

fn number_in_range(n: &serde_json::Number, here: &str) -> Result<f64, String> {
    let x = n.as_f64().unwrap_or(f64::INFINITY);
    if x.abs() > MAX_NUMBER {
        return Err(format!("FilterPolicy: {here}: {n} is outside ±10^9"));
    }
    Ok(x)
}

fn check_condition(c: &Value, here: &str) -> Result<(), String> {
    match c {
        Value::String(_) | Value::Bool(_) | Value::Null => Ok(()),
        Value::Number(n) => number_in_range(n, here).map(|_| ()),
        Value::Array(_) => Err(format!("FilterPolicy: {here}: a condition cannot be a list")),
        Value::Object(o) => {
            if o.len() != 1 {
                return Err(format!(
                    "FilterPolicy: {here}: a condition object has exactly one operator"
                ));
            }
            let (op, arg) = o.iter().next().ok_or("unreachable")?;
            let string = |what: &str| match arg {
                Value::String(s) if !s.is_empty() => Ok(()),
                _ => Err(format!("FilterPolicy: {here}: {what} takes a non-empty string")),
            };
            match op.as_str() {
                "prefix" | "suffix" | "equals-ignore-case" => string(op),
                "exists" => match arg {
                    Value::Bool(_) => Ok(()),
                    _ => Err(format!("FilterPolicy: {here}: exists takes true or false")),
                },
                "cidr" => {
                    let ok = arg.as_str().is_some_and(|s| {
                        s.split_once('/')
                            .is_some_and(|(ip, len)| match (ip.parse::<IpAddr>(), len.parse::<u32>()) {
                                (Ok(IpAddr::V4(_)), Ok(l)) => l <= 32,
                                (Ok(IpAddr::V6(_)), Ok(l)) => l <= 128,
                                _ => false,
                            })
                    });
                    if ok {
                        Ok(())
                    } else {
                        Err(format!(
                            "FilterPolicy: {here}: cidr takes an IP prefix like \"10.0.0.0/24\""
                        ))
                    }
                }
                "anything-but" => match arg {
                    Value::String(_) => Ok(()),
                    Value::Number(n) => number_in_range(n, here).map(|_| ()),
                    Value::Array(list) if !list.is_empty() => {
                        for x in list {
                            match x {
                                Value::String(_) => {}
                                Value::Number(n) => {
                                    number_in_range(n, here)?;
                                }
                                _ => {
                                    return Err(format!("FilterPolicy: {here}: anything-but lists strings or numbers"));
                                }
                            }
                        }
                        Ok(())
                    }
                    Value::Object(inner) if inner.len() == 1 => {
                        let (k, v) = inner.iter().next().ok_or("unreachable")?;
                        if matches!(k.as_str(), "prefix" | "suffix") && v.as_str().is_some_and(|s| !s.is_empty()) {
                            Ok(())
                        } else {
                            Err(format!(
                                "FilterPolicy: {here}: anything-but takes a value, a list, or {{\"prefix\"|\"suffix\": string}}"
                            ))
                        }
                    }
                    _ => Err(format!(
                        "FilterPolicy: {here}: anything-but takes a value, a list, or {{\"prefix\"|\"suffix\": string}}"
                    )),
                },
                "numeric" => check_numeric(arg, here),
                other => Err(format!("FilterPolicy: {here}: unrecognized match type {other:?}")),
            }
        }
    }
}

fn check_numeric(arg: &Value, here: &str) -> Result<(), String> {
    let bad = || format!("FilterPolicy: {here}: numeric takes [op, number] or [lower-op, number, upper-op, number]");
    let parts = arg.as_array().ok_or_else(bad)?;
    let pair = |i: usize| -> Result<(&str, f64), String> {
        let op = parts.get(i).and_then(Value::as_str).ok_or_else(bad)?;
        let n = match parts.get(i + 1) {
            Some(Value::Number(n)) => number_in_range(n, here)?,
            _ => return Err(bad()),
        };
        Ok((op, n))
    };
    match parts.len() {
        2 => {
            let (op, _) = pair(0)?;
            if matches!(op, "=" | "<" | "<=" | ">" | ">=") {
                Ok(())
            } else {
                Err(bad())
            }
        }
        4 => {
            let (lo, a) = pair(0)?;
            let (hi, b) = pair(2)?;
            if !matches!(lo, ">" | ">=") || !matches!(hi, "<" | "<=") {
                return Err(bad());
            }
            if a >= b {
                return Err(format!(
                    "FilterPolicy: {here}: numeric range bottom must be below its top"
                ));
            }
            Ok(())
        }
        _ => Err(bad()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sns::model::Attribute;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    fn sub(policy: &str, scope: Option<&str>) -> Subscription {
        let mut attributes = BTreeMap::from([("FilterPolicy".to_string(), policy.to_string())]);
        if let Some(s) = scope {
            attributes.insert("FilterPolicyScope".into(), s.into());
        }
        Subscription {
            arn: "arn:aws:sns:us-east-1:000000000000:t:1".into(),
            topic_arn: "arn:aws:sns:us-east-1:000000000000:t".into(),
            protocol: "http".into(),
            endpoint: "http://127.0.0.1:1/".into(),
            attributes,
            pending: false,
            token: String::new(),
            token_expires: crate::clock::now(),
        }
    }

    fn attrs(list: &[(&str, &str, &str)]) -> Publish {
        Publish {
            message: "m".into(),
            subject: None,
            attributes: list
                .iter()
                .map(|(k, t, v)| {
                    (
                        k.to_string(),
                        Attribute {
                            data_type: t.to_string(),
                            value: v.to_string(),
                        },
                    )
                })
                .collect(),
        }
    }

    fn body(json: &str) -> Publish {
        Publish {
            message: json.into(),
            ..Publish::default()
        }
    }

    #[test]
    fn attribute_scope_conditions() {
        let m = attrs(&[
            ("store", "String", "example_corp"),
            ("price", "Number", "210.75"),
            ("colors", "String.Array", r#"["red","green"]"#),
            ("ip", "String", "10.0.0.7"),
            ("blob", "Binary", "AAAA"),
        ]);
        let yes = [
            r#"{"store":["example_corp"]}"#,
            r#"{"store":["other","example_corp"]}"#,
            r#"{"store":[{"prefix":"example"}]}"#,
            r#"{"store":[{"suffix":"_corp"}]}"#,
            r#"{"store":[{"equals-ignore-case":"EXAMPLE_CORP"}]}"#,
            r#"{"store":[{"anything-but":["other"]}]}"#,
            r#"{"store":[{"anything-but":{"prefix":"x"}}]}"#,
            r#"{"price":[210.75]}"#,
            r#"{"price":[{"numeric":[">",0,"<=",210.75]}]}"#,
            r#"{"price":[{"numeric":["=",210.750001]}]}"#,
            r#"{"colors":["green"]}"#,
            r#"{"store":[{"exists":true}],"missing":[{"exists":false}]}"#,
            r#"{"ip":[{"cidr":"10.0.0.0/24"}]}"#,
            r#"{"$or":[{"store":["nope"]},{"price":[{"numeric":[">",200]}]}]}"#,
        ];
        let no = [
            r#"{"store":["Example_corp"]}"#,
            r#"{"store":[{"prefix":"corp"}]}"#,
            r#"{"store":[{"anything-but":["example_corp"]}]}"#,
            r#"{"store":[{"anything-but":{"prefix":"example"}}]}"#,
            r#"{"price":[{"numeric":["<",210.75]}]}"#,
            r#"{"price":["210.75"]}"#,
            r#"{"colors":["blue"]}"#,
            r#"{"missing":["x"]}"#,
            r#"{"store":[{"exists":false}]}"#,
            r#"{"blob":[{"exists":true}]}"#,
            r#"{"ip":[{"cidr":"10.0.1.0/24"}]}"#,
            r#"{"store":["example_corp"],"price":[1]}"#,
            r#"{"$or":[{"store":["nope"]},{"price":[1]}]}"#,
        ];
        for p in yes {
            assert!(matches(&sub(p, None), &m), "should match: {p}");
        }
        for p in no {
            assert!(!matches(&sub(p, None), &m), "should not match: {p}");
        }
        assert!(!matches(&sub("{}", None), &m), "an invalid policy lets nothing through");
    }

    #[test]
    fn body_scope_nests_and_arrays_match_any_element() {
        let m = body(
            r#"{"header":{"eventType":{"namespace":"Alexa.Skill.Interaction","name":"Failure"}},
                "entities":[{"type":"unit","id":"u1"},{"type":"skill","id":"s1"}],"n":5,"ok":true,"z":null}"#,
        );
        let scope = Some("MessageBody");
        let yes = [
            r#"{"header":{"eventType":{"namespace":["Alexa.Skill.Interaction"]}}}"#,
            r#"{"header":{"eventType":{"namespace":[{"prefix":"Alexa.Skill"}]}}}"#,
            r#"{"entities":{"type":["skill"]}}"#,
            r#"{"n":[{"numeric":[">=",5]}],"ok":[true],"z":[null]}"#,
            r#"{"header":{"missing":[{"exists":false}]}}"#,
            r#"{"nothere":{"deeper":[{"exists":false}]}}"#,
        ];
        let no = [
            r#"{"header":{"eventType":{"namespace":["Alexa.Automation"]}}}"#,
            r#"{"entities":{"type":["device"]}}"#,
            r#"{"header":[{"exists":false}]}"#,
        ];
        for p in yes {
            assert!(matches(&sub(p, scope), &m), "should match: {p}");
        }
        for p in no {
            assert!(!matches(&sub(p, scope), &m), "should not match: {p}");
        }
        assert!(
            !matches(&sub(r#"{"n":[5]}"#, scope), &body("[1]")),
            "a body that is not a JSON object never matches"
        );
    }

    #[test]
    fn invalid_policies_are_named() {
        let attr = Scope::MessageAttributes;
        let cases = [
            ("[]", attr, "JSON object"),
            ("{}", attr, "at least one key"),
            (
                r#"{"a":["x"],"b":["x"],"c":["x"],"d":["x"],"e":["x"],"f":["x"]}"#,
                attr,
                "6 keys",
            ),
            (r#"{"a":{"b":["x"]}}"#, attr, "a: nested keys need"),
            (r#"{"a":[{"prefx":"x"}]}"#, attr, "unrecognized match type"),
            (r#"{"a":[{"numeric":["<",5,">",1]}]}"#, attr, "numeric takes"),
            (r#"{"a":[{"numeric":[">",5,"<",1]}]}"#, attr, "bottom must be below"),
            (r#"{"a":[1e10]}"#, attr, "outside"),
            (r#"{"a":[{"cidr":"10.0.0.0/33"}]}"#, attr, "cidr"),
            (r#"{"a":[]}"#, attr, "empty list"),
            (r#"{"$or":[{"a":["x"]}]}"#, attr, "$or"),
        ];
        for (p, scope, want) in cases {
            let e = validate(p, scope).unwrap_err();
            assert!(e.contains(want), "{p}: {e}");
        }
        let many: Vec<String> = (0..13).map(|i| format!("\"v{i}\"")).collect();
        let p = format!(r#"{{"a":[{0}],"b":[{0}]}}"#, many.join(","));
        assert!(validate(&p, attr).unwrap_err().contains("169 combinations"));
        let big = format!(r#"{{"a":["{}"]}}"#, "x".repeat(MAX_POLICY));
        assert!(validate(&big, attr).unwrap_err().contains("longer than"));
        assert!(validate(r#"{"a":{"b":["x"]}}"#, Scope::MessageBody).is_ok());
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
            any::<i64>().prop_map(|i| Value::Number(i.into())),
            prop_oneof![
                "[a-z]{0,4}",
                Just("prefix".to_string()),
                Just("numeric".to_string()),
                Just("anything-but".to_string()),
                Just("exists".to_string()),
                Just("cidr".to_string()),
                Just("$or".to_string()),
                Just("<=".to_string()),
                Just("10.0.0.0/8".to_string()),
            ]
            .prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 32, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map(
                    prop_oneof![
                        "[a-z]{1,3}",
                        Just("prefix".to_string()),
                        Just("numeric".to_string()),
                        Just("anything-but".to_string()),
                        Just("exists".to_string()),
                        Just("$or".to_string()),
                        Just("cidr".to_string()),
                    ],
                    inner,
                    0..4
                )
                .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn arbitrary_policies_and_messages_never_panic(
            policy in json_value(),
            message in json_value(),
            raw in ".{0,40}",
            attr_value in ".{0,20}",
            data_type in prop_oneof![Just("String"), Just("Number"), Just("String.Array"), Just("Binary"), Just("x")],
        ) {
            let p = policy.to_string();
            for scope in [Scope::MessageAttributes, Scope::MessageBody] {
                let _ = validate(&p, scope);
                let _ = validate(&raw, scope);
            }
            for scope in [None, Some("MessageBody")] {
                let s = sub(&p, scope);
                let _ = matches(&s, &body(&message.to_string()));
                let _ = matches(&s, &body(&raw));
                let _ = matches(&s, &attrs(&[("a", data_type, &attr_value), ("b", "String.Array", &message.to_string())]));
            }
        }
    }
}
