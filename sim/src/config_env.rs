//! `AVS_SIM_*` environment variables as config overrides.
//!
//! The variable name is the key path in upper case joined by `_`
//! (`AVS_SIM_LISTEN_AVS` → `listen.avs`, `AVS_SIM_AVS_MAX_EVENT_BYTES` →
//! `avs.max_event_bytes`). Key names contain `_` themselves, so the path is
//! resolved against the known sections instead of split blindly. Values are
//! read as TOML (numbers, booleans, arrays) and fall back to a string.

use serde::Serialize;

/// Variables that are not config keys: they are handed to devices under test.
const NOT_CONFIG: &[&str] = &["AVS_URL", "PLAIN_URL", "CONTROL_URL", "CA"];

/// Apply every `AVS_SIM_*` variable in `env` to `table`.
pub fn apply(table: &mut toml::Table, env: impl IntoIterator<Item = (String, String)>) -> Result<(), Vec<String>> {
    let shape = defaults_shape();
    let mut errors = Vec::new();
    for (name, value) in env {
        let Some(rest) = name.strip_prefix("AVS_SIM_") else {
            continue;
        };
        if NOT_CONFIG.contains(&rest) {
            continue;
        }
        match resolve(&shape, &rest.to_ascii_lowercase()) {
            Some(path) => set(table, &path, parse_value(&value)),
            None => errors.push(format!("{name}: no config key matches this variable")),
        }
    }
    if errors.is_empty() { Ok(()) } else { Err(errors) }
}

/// The default config as a TOML table: the set of known key paths.
fn defaults_shape() -> toml::Table {
    let mut shape = toml::Table::try_from(crate::config::Config::default()).unwrap_or_default();
    // Optional keys are absent from the defaults; name them here.
    if let Some(toml::Value::Table(journal)) = shape.get_mut("journal") {
        journal.insert("file".into(), toml::Value::String(String::new()));
    }
    shape
}

/// Find the key path that `flat` (lowercase, `_`-joined) names.
fn resolve(shape: &toml::Table, flat: &str) -> Option<Vec<String>> {
    if shape.contains_key(flat) {
        return Some(vec![flat.to_string()]);
    }
    shape.iter().find_map(|(key, value)| {
        let rest = flat.strip_prefix(key.as_str())?.strip_prefix('_')?;
        let toml::Value::Table(inner) = value else {
            return None;
        };
        let mut path = resolve(inner, rest)?;
        path.insert(0, key.clone());
        Some(path)
    })
}

fn parse_value(text: &str) -> toml::Value {
    #[derive(serde::Deserialize, Serialize)]
    struct Wrap {
        v: toml::Value,
    }
    toml::from_str::<Wrap>(&format!("v = {text}"))
        .map(|w| w.v)
        .unwrap_or_else(|_| toml::Value::String(text.to_string()))
}

fn set(table: &mut toml::Table, path: &[String], value: toml::Value) {
    let (last, parents) = path.split_last().expect("resolve returns a non-empty path");
    let mut cursor = table;
    for key in parents {
        let entry = cursor
            .entry(key.clone())
            .or_insert_with(|| toml::Value::Table(Default::default()));
        if !entry.is_table() {
            *entry = toml::Value::Table(Default::default());
        }
        cursor = entry.as_table_mut().expect("just made a table");
    }
    cursor.insert(last.clone(), value);
}

#[cfg(test)]
mod tests {
    use crate::config::{AuthMode, Config};

    fn load(vars: &[(&str, &str)]) -> Result<Config, crate::config::ConfigError> {
        Config::load(None, vars.iter().map(|(k, v)| (k.to_string(), v.to_string())))
    }

    #[test]
    fn nested_keys_with_underscores_resolve() {
        let c = load(&[
            ("AVS_SIM_LISTEN_AVS", "127.0.0.1:1443"),
            ("AVS_SIM_AVS_MAX_EVENT_BYTES", "1000"),
            ("AVS_SIM_AUTH", "strict"),
            ("AVS_SIM_CERTS_EXTRA_HOSTS", "[\"a.test\"]"),
            ("AVS_SIM_JOURNAL_FILE", "/tmp/j.jsonl"),
            ("AVS_SIM_AVS_URL", "ignored: handed to devices"),
            ("PATH", "/bin"),
        ])
        .unwrap();
        assert_eq!(c.listen.avs.port(), 1443);
        assert_eq!(c.avs.max_event_bytes, 1000);
        assert_eq!(c.auth, AuthMode::Strict);
        assert_eq!(c.certs.extra_hosts, vec!["a.test"]);
        assert_eq!(c.journal.file.unwrap().to_str(), Some("/tmp/j.jsonl"));
    }

    #[test]
    fn unknown_variable_is_an_error() {
        let err = load(&[("AVS_SIM_LISTEN_AVZ", "x")]).unwrap_err().to_string();
        assert!(err.contains("AVS_SIM_LISTEN_AVZ"), "{err}");
    }
}
