//! A journal entry's body: JSON, held either as a value or as the text it
//! arrived as.
//!
//! An event's metadata is recorded on every event, but read only when
//! someone asks (a query, a scenario's matcher, the JSONL writer). Keeping
//! the text and parsing it on first read takes the tree out of the event
//! path (parsing it was about a third of an event's instructions, callgrind)
//! and keeps the journal several times smaller in memory.

use bytes::Bytes;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use std::sync::{Arc, OnceLock};

/// A shared JSON body; cheap to clone, reads as a `serde_json::Value`.
#[derive(Clone)]
pub struct Body(Arc<Inner>);

struct Inner {
    /// The JSON text, when the body was recorded as text (already checked
    /// to be one valid JSON document by whoever recorded it).
    text: Option<Bytes>,
    /// The value: given, or parsed from `text` on first read.
    value: OnceLock<Value>,
}

impl Body {
    /// A body from a value.
    pub fn value(v: Value) -> Body {
        Body(Arc::new(Inner {
            text: None,
            value: OnceLock::from(v),
        }))
    }

    /// A body from a value, kept as its JSON text: a small object's text
    /// is tens of bytes where its tree is hundreds (a B-tree node per
    /// object), and most entries are never read. Parsed again when read.
    pub fn compact(v: Value) -> Body {
        if v.is_null() {
            return Body::default();
        }
        match serde_json::to_vec(&v) {
            Ok(text) => Body::json_text(Bytes::from(text)),
            Err(_) => Body::value(v),
        }
    }

    /// A body from JSON text the caller has validated; parsed when read.
    /// Text that does not parse after all reads as a string holding it.
    pub fn json_text(text: Bytes) -> Body {
        Body(Arc::new(Inner {
            text: Some(text),
            value: OnceLock::new(),
        }))
    }

    /// The JSON text's length, for a body recorded as text.
    pub fn text_len(&self) -> Option<usize> {
        self.0.text.as_ref().map(Bytes::len)
    }

    /// Whether the body is JSON `null` (a text body is a document, never
    /// null here, so this does not parse it).
    pub fn is_null(&self) -> bool {
        match &self.0.text {
            Some(_) => false,
            None => self.0.value.get().is_none_or(Value::is_null),
        }
    }

    fn get(&self) -> &Value {
        self.0.value.get_or_init(|| {
            let text = self.0.text.as_deref().unwrap_or_default();
            serde_json::from_slice(text).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(text).into_owned()))
        })
    }
}

impl Default for Body {
    fn default() -> Body {
        Body::value(Value::Null)
    }
}

impl From<Value> for Body {
    fn from(v: Value) -> Body {
        Body::value(v)
    }
}

impl std::ops::Deref for Body {
    type Target = Value;
    fn deref(&self) -> &Value {
        self.get()
    }
}

impl PartialEq<Value> for Body {
    fn eq(&self, other: &Value) -> bool {
        self.get() == other
    }
}

impl std::fmt::Debug for Body {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.get().fmt(f)
    }
}

impl Serialize for Body {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.get().serialize(s)
    }
}

impl<'de> Deserialize<'de> for Body {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Body, D::Error> {
        Value::deserialize(d).map(Body::value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn text_reads_as_its_value_and_serialises_the_same() {
        let b = Body::json_text(Bytes::from_static(br#"{"a": [1, {"b": "c"}]}"#));
        assert!(!b.is_null());
        assert_eq!(b["a"][1]["b"], "c");
        assert_eq!(b.pointer("/a/0"), Some(&json!(1)));
        assert_eq!(serde_json::to_string(&b).unwrap(), r#"{"a":[1,{"b":"c"}]}"#);
        assert_eq!(b.text_len(), Some(22));
    }

    #[test]
    fn compact_bodies_read_back_as_their_value() {
        let v = json!({"status": 204, "peer": "127.0.0.1:1", "n": [1.5, null, true], "s": "é\"x"});
        let b = Body::compact(v.clone());
        assert_eq!(b, v);
        assert!(b.text_len().is_some());
        assert!(Body::compact(Value::Null).is_null());
        assert_eq!(*Body::compact(json!("text")), json!("text"));
    }

    #[test]
    fn values_and_null() {
        assert!(Body::default().is_null());
        let b = Body::value(json!({"x": 1}));
        assert_eq!(b, json!({"x": 1}));
        let back: Body = serde_json::from_str(r#"{"x":1}"#).unwrap();
        assert_eq!(back, json!({"x": 1}));
    }

    #[test]
    fn text_that_is_not_json_reads_as_a_string() {
        let b = Body::json_text(Bytes::from_static(b"{nope"));
        assert_eq!(*b, json!("{nope"));
    }
}
