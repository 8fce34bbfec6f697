//! `{{name}}` templating in scenario strings.
//!
//! Built-ins: `{{uuid}}` (a fresh UUID each time), `{{now}}` (RFC 3339),
//! `{{avs_url}}`, `{{plain_url}}`, `{{control_url}}`, `{{region.NAME.url}}`,
//! `{{device.NAME.id}}`; anything else is a variable a `capture` set.

use serde_json::Value;
use std::collections::HashMap;

/// The names a text refers to, in order.
pub fn names(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else { break };
        out.push(after[..end].trim().to_string());
        rest = &after[end + 2..];
    }
    out
}

/// Whether `name` is provided by the runner rather than a capture.
pub fn is_builtin(name: &str) -> bool {
    matches!(name, "uuid" | "now" | "avs_url" | "plain_url" | "control_url")
        || (name.starts_with("region.") && name.ends_with(".url"))
        || (name.starts_with("device.") && name.ends_with(".id"))
}

/// Values for templates: captures plus the runner's built-ins.
#[derive(Debug, Clone, Default)]
pub struct Vars {
    pub values: HashMap<String, Value>,
}

impl Vars {
    pub fn set(&mut self, name: &str, value: Value) {
        self.values.insert(name.to_string(), value);
    }

    fn lookup(&self, name: &str) -> Option<String> {
        match name {
            "uuid" => Some(uuid::Uuid::new_v4().to_string()),
            "now" => Some(crate::clock::wall_rfc3339()),
            _ => self.values.get(name).map(|v| match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            }),
        }
    }

    /// Expand every `{{name}}` in `text`; unknown names are left as written.
    pub fn expand(&self, text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(start) = rest.find("{{") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let Some(end) = after.find("}}") else {
                out.push_str(&rest[start..]);
                return out;
            };
            let name = after[..end].trim();
            match self.lookup(name) {
                Some(v) => out.push_str(&v),
                None => out.push_str(&rest[start..start + 2 + end + 2]),
            }
            rest = &after[end + 2..];
        }
        out.push_str(rest);
        out
    }

    /// Expand in every string of a JSON value. A string that is exactly one
    /// `{{var}}` holding a non-string value becomes that value.
    pub fn expand_json(&self, v: &Value) -> Value {
        match v {
            Value::String(s) => {
                let names = names(s);
                if names.len() == 1 && s.trim() == format!("{{{{{}}}}}", names[0]) {
                    if let Some(value) = self.values.get(&names[0]).filter(|v| !v.is_string()) {
                        return value.clone();
                    }
                }
                Value::String(self.expand(s))
            }
            Value::Array(a) => Value::Array(a.iter().map(|x| self.expand_json(x)).collect()),
            Value::Object(o) => Value::Object(o.iter().map(|(k, x)| (k.clone(), self.expand_json(x))).collect()),
            other => other.clone(),
        }
    }
}

/// TOML to JSON (datetimes become strings).
pub fn toml_to_json(v: &toml::Value) -> Value {
    match v {
        toml::Value::String(s) => Value::String(s.clone()),
        toml::Value::Integer(i) => Value::from(*i),
        toml::Value::Float(f) => serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number),
        toml::Value::Boolean(b) => Value::Bool(*b),
        toml::Value::Datetime(d) => Value::String(d.to_string()),
        toml::Value::Array(a) => Value::Array(a.iter().map(toml_to_json).collect()),
        toml::Value::Table(t) => Value::Object(t.iter().map(|(k, v)| (k.clone(), toml_to_json(v))).collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn expands_captures_and_builtins() {
        let mut vars = Vars::default();
        vars.set("fw", json!("123"));
        vars.set("n", json!(5));
        assert_eq!(vars.expand("v{{fw}}-{{ n }}"), "v123-5");
        assert_eq!(vars.expand("{{missing}}"), "{{missing}}");
        assert_eq!(vars.expand("{{uuid}}").len(), 36);
        assert_eq!(
            vars.expand_json(&json!({"a": "{{n}}", "b": ["x{{fw}}"]})),
            json!({"a": 5, "b": ["x123"]})
        );
        assert_eq!(names("a {{x}} b {{ y.z }}"), vec!["x", "y.z"]);
        assert!(is_builtin("region.EU.url") && is_builtin("now") && !is_builtin("fw"));
    }
}
