//! The Query API's parameters: a form body (or a GET's query string)
//! decoded by `form_urlencoded` (percent-escapes and `+`), then looked up
//! by name, with the `Prefix.N.rest` lists and maps that botocore sends
//! (`Attributes.entry.1.key`, `PublishBatchRequestEntries.member.2.Id`)
//! grouped by index.
//!
//! Everything here is bounded: the pairs a request may carry and the
//! index a list may reach, so a hostile body cannot make the simulator
//! build huge maps.

use super::Fault;
use std::collections::BTreeMap;

/// Most name=value pairs in one request: a full PublishBatch (10 entries,
/// each with 10 message attributes of 4 fields) is about 500.
pub const MAX_PAIRS: usize = 1_000;
/// Highest index a list or map entry may have (`Attributes.entry.100.key`).
pub const MAX_INDEX: usize = 100;

/// A request's parameters by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params {
    map: BTreeMap<String, String>,
}

impl Params {
    /// Decode a form body or query string. A name given twice is refused:
    /// botocore never repeats one, and either choice would hide a mistake.
    pub fn parse(bytes: &[u8]) -> Result<Params, Fault> {
        let mut map = BTreeMap::new();
        for (i, (k, v)) in form_urlencoded::parse(bytes).enumerate() {
            if i >= MAX_PAIRS {
                return Err(Fault::invalid(format!(
                    "Invalid parameter: the request carries more than {MAX_PAIRS} parameters"
                )));
            }
            if k.is_empty() {
                continue;
            }
            if map.insert(k.to_string(), v.into_owned()).is_some() {
                return Err(Fault::invalid(format!(
                    "Invalid parameter: {k} is given more than once"
                )));
            }
        }
        Ok(Params { map })
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.map.get(name).map(String::as_str)
    }

    /// A parameter the action needs: 400 MissingParameter naming it.
    pub fn required(&self, name: &str) -> Result<&str, Fault> {
        self.get(name).ok_or_else(|| Fault::missing(name))
    }

    /// A boolean parameter ("true"/"false", any case); absent is false.
    pub fn flag(&self, name: &str) -> Result<bool, Fault> {
        match self.get(name) {
            None => Ok(false),
            Some(v) if v.eq_ignore_ascii_case("true") => Ok(true),
            Some(v) if v.eq_ignore_ascii_case("false") => Ok(false),
            Some(_) => Err(Fault::invalid(format!("Invalid parameter: {name}"))),
        }
    }

    /// The entries of the list or map `prefix` (`Attributes.entry`,
    /// `PublishBatchRequestEntries.member`), by index, each as its own
    /// parameters with the `prefix.N.` part taken off. Indexes must be
    /// 1..=MAX_INDEX.
    pub fn indexed(&self, prefix: &str) -> Result<BTreeMap<usize, Params>, Fault> {
        let mut out: BTreeMap<usize, Params> = BTreeMap::new();
        let head = format!("{prefix}.");
        for (k, v) in self.map.range(head.clone()..) {
            let Some(rest) = k.strip_prefix(&head) else { break };
            let (n, field) = rest.split_once('.').unwrap_or((rest, ""));
            let index = n
                .parse::<usize>()
                .ok()
                .filter(|i| (1..=MAX_INDEX).contains(i))
                .ok_or_else(|| {
                    Fault::invalid(format!("Invalid parameter: {k} (the index must be 1 to {MAX_INDEX})"))
                })?;
            if field.is_empty() {
                return Err(Fault::invalid(format!("Invalid parameter: {k}")));
            }
            out.entry(index).or_default().map.insert(field.to_string(), v.clone());
        }
        Ok(out)
    }

    /// A `Prefix.entry.N.key` / `.value` map (`Attributes`): each entry
    /// needs both; a key given twice is refused.
    pub fn key_values(&self, prefix: &str) -> Result<BTreeMap<String, String>, Fault> {
        let mut out = BTreeMap::new();
        for (n, entry) in self.indexed(&format!("{prefix}.entry"))? {
            let key = entry
                .get("key")
                .ok_or_else(|| Fault::missing(&format!("{prefix}.entry.{n}.key")))?;
            let value = entry
                .get("value")
                .ok_or_else(|| Fault::missing(&format!("{prefix}.entry.{n}.value")))?;
            if out.insert(key.to_string(), value.to_string()).is_some() {
                return Err(Fault::invalid(format!(
                    "Invalid parameter: {prefix} names {key} more than once"
                )));
            }
        }
        Ok(out)
    }

    /// Every name, for the journal.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::Value::Object(
            self.map
                .iter()
                .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_percent_plus_and_groups_entries() {
        let p = Params::parse(
            b"Action=Subscribe&Endpoint=http%3A%2F%2Fh%2Fa+b&Attributes.entry.2.key=RawMessageDelivery\
              &Attributes.entry.2.value=true&Attributes.entry.1.key=FilterPolicy&Attributes.entry.1.value=%7B%7D",
        )
        .unwrap();
        assert_eq!(p.get("Endpoint"), Some("http://h/a b"));
        let m = p.key_values("Attributes").unwrap();
        assert_eq!(m["RawMessageDelivery"], "true");
        assert_eq!(m["FilterPolicy"], "{}");
    }

    #[test]
    fn refuses_repeats_indexes_out_of_range_and_half_entries() {
        assert_eq!(Params::parse(b"A=1&A=2").unwrap_err().code, "InvalidParameter");
        let p = Params::parse(b"Attributes.entry.101.key=a&Attributes.entry.101.value=b").unwrap();
        let e = p.key_values("Attributes").unwrap_err();
        assert!(e.message.contains("Attributes.entry.101.key"), "{e:?}");
        let p = Params::parse(b"Attributes.entry.0.key=a").unwrap();
        assert!(p.key_values("Attributes").is_err());
        let p = Params::parse(b"Attributes.entry.1.key=a").unwrap();
        assert_eq!(p.key_values("Attributes").unwrap_err().code, "MissingParameter");
        let many = "a=b&".repeat(MAX_PAIRS + 1);
        assert!(
            Params::parse(many.as_bytes()).is_err(),
            "a repeat or the pair bound refuses it"
        );
        let distinct: String = (0..=MAX_PAIRS).map(|i| format!("k{i}=v&")).collect();
        assert!(
            Params::parse(distinct.as_bytes())
                .unwrap_err()
                .message
                .contains("more than")
        );
    }
}
