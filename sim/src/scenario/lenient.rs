//! Deserializing with every mistake reported, not just the first.
//!
//! serde stops at a table's first unknown key or wrong type. So after each
//! error the offending key (or array element) is reported at its own
//! location, taken out of the spanned document, and the value is tried
//! again, until it deserializes or nothing more can be taken out. What is
//! left then goes on to the semantic checks.

use super::load::Diagnostics;
use serde::de::DeserializeOwned;
use std::ops::Range;
use toml::Spanned;
use toml::de::{DeArray, DeValue, ValueDeserializer};

/// Tries per value; each try takes one key out, so this only bounds a
/// pathological document (its keys run out first).
const MAX_TRIES: usize = 1000;

/// What came of deserializing one value.
pub struct Outcome<T> {
    /// `None` when a mistake could not be worked around (a required key missing).
    pub value: Option<T>,
    /// Byte offsets of the mistakes reported (empty: it was clean).
    pub errors_at: Vec<usize>,
}

impl<T> Outcome<T> {
    pub fn is_clean(&self) -> bool {
        self.errors_at.is_empty()
    }
}

/// Deserialize `value` as `T`, reporting every unknown key and wrong type
/// to `diags` (each message prefixed with `prefix`).
pub fn deserialize<T: DeserializeOwned>(
    mut value: Spanned<DeValue<'_>>,
    prefix: &str,
    diags: &mut Diagnostics<'_>,
) -> Outcome<T> {
    let root = value.span();
    let mut errors_at = Vec::new();
    // Keys taken out so far, with the span of the table they were in.
    let mut taken: Vec<(String, Range<usize>)> = Vec::new();
    // Known keys suggested for unknown ones: their absence is that same mistake.
    let mut suggested: Vec<String> = Vec::new();
    let mut report = |at: usize, message: &str, diags: &mut Diagnostics<'_>| {
        errors_at.push(at);
        diags.at(at, format!("{prefix}{message}"));
    };
    for _ in 0..MAX_TRIES {
        let err = match T::deserialize(ValueDeserializer::from(value.clone())) {
            Ok(v) => {
                return Outcome {
                    value: Some(v),
                    errors_at,
                };
            }
            Err(e) => e,
        };
        let message = err.message().trim().to_string();
        let span = err.span().unwrap_or(root.clone());
        if let Some(key) = quoted(&message, "missing field `") {
            // Missing because its wrong value was taken out: reported already.
            let was_taken = taken.iter().any(|(k, t)| *k == key && contains(&span, t));
            if !was_taken && !suggested.contains(&key) {
                report(span.start, &message, diags);
            }
            // The table cannot be built: take it out whole, unless it is the value itself.
            if span == root || take_at(&mut value, &span).is_none() {
                return Outcome { value: None, errors_at };
            }
            continue;
        }
        let unknown = quoted(&message, "unknown field `");
        let culprit = match &unknown {
            Some(key) => take_key(&mut value, key, &span),
            None => take_at(&mut value, &span),
        };
        let mut message = message;
        if let Some(key) = &unknown {
            let expected = expected_names(&message);
            if let Some(known) = super::check::closest(key, expected.iter().map(String::as_str)) {
                message.push_str(&format!("; did you mean `{known}`?"));
                suggested.push(known.to_string());
            }
        }
        match culprit {
            Some(Taken { key, at, table }) => {
                report(at, &message, diags);
                if let Some(key) = key {
                    taken.push((key, table));
                }
            }
            None => {
                report(span.start, &message, diags);
                return Outcome { value: None, errors_at };
            }
        }
    }
    Outcome { value: None, errors_at }
}

/// The text between `prefix` and the next backtick.
fn quoted(message: &str, prefix: &str) -> Option<String> {
    let rest = message.strip_prefix(prefix)?;
    rest.split('`').next().map(str::to_string)
}

/// The names serde lists after "expected" in an unknown-field message.
fn expected_names(message: &str) -> Vec<String> {
    let Some((_, list)) = message.split_once("expected") else {
        return Vec::new();
    };
    list.split('`').skip(1).step_by(2).map(str::to_string).collect()
}

fn contains(outer: &Range<usize>, inner: &Range<usize>) -> bool {
    outer.start <= inner.start && inner.end <= outer.end
}

/// What was taken out of the document.
struct Taken {
    /// The key, when a table entry was taken (not an array element).
    key: Option<String>,
    /// Where to report it: the key for an unknown key, else the value.
    at: usize,
    /// The span of the table (or array) it was in.
    table: Range<usize>,
}

/// Take out `key` from the smallest table around `span` that has it (or,
/// failing that, from the first table that has it).
fn take_key(value: &mut Spanned<DeValue<'_>>, key: &str, span: &Range<usize>) -> Option<Taken> {
    take_key_within(value, key, Some(span)).or_else(|| take_key_within(value, key, None))
}

fn take_key_within(value: &mut Spanned<DeValue<'_>>, key: &str, span: Option<&Range<usize>>) -> Option<Taken> {
    let outer = value.span();
    let around = |v: &Spanned<DeValue<'_>>| span.is_none_or(|s| contains(&v.span(), s));
    match value.get_mut() {
        DeValue::Table(t) => {
            for (_, v) in t.iter_mut().filter(|(_, v)| around(v)) {
                if let Some(found) = take_key_within(v, key, span) {
                    return Some(found);
                }
            }
            let (k, _) = t.remove_entry(key)?;
            Some(Taken {
                key: Some(key.to_string()),
                at: k.span().start,
                table: outer,
            })
        }
        DeValue::Array(a) => a
            .iter_mut()
            .filter(|v| around(v))
            .find_map(|v| take_key_within(v, key, span)),
        _ => None,
    }
}

/// Take out the smallest entry or element whose value spans `span`.
fn take_at(value: &mut Spanned<DeValue<'_>>, span: &Range<usize>) -> Option<Taken> {
    let outer = value.span();
    match value.get_mut() {
        DeValue::Table(t) => {
            let key = t
                .iter()
                .find(|(_, v)| contains(&v.span(), span))
                .map(|(k, _)| k.get_ref().to_string())?;
            let v = t.get_mut(key.as_str())?;
            if v.span() != *span || matches!(v.get_ref(), DeValue::Table(_) | DeValue::Array(_)) {
                if let Some(inner) = take_at(v, span) {
                    return Some(inner);
                }
            }
            let at = t.get(key.as_str()).map_or(span.start, |v| v.span().start);
            t.remove(key.as_str());
            Some(Taken {
                key: Some(key),
                at,
                table: outer,
            })
        }
        DeValue::Array(a) => {
            let i = a.iter().position(|v| contains(&v.span(), span))?;
            let items: &mut [Spanned<DeValue<'_>>] = a;
            if let Some(inner) = take_at(&mut items[i], span) {
                return Some(inner);
            }
            let at = items[i].span().start;
            let mut kept = DeArray::new();
            for (j, v) in a.iter().enumerate() {
                if j != i {
                    kept.push(v.clone());
                }
            }
            *a = kept;
            Some(Taken {
                key: None,
                at,
                table: outer,
            })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_misspelt_key_is_one_mistake_with_a_suggestion() {
        let text = "name = 'x'\n[[devices]]\nname = 'd'\n[[steps]]\nkind = 'expect'\ndevic = 'd'\nevent = 'A.B'\n";
        let errs = super::super::load::parse(text, "s.toml").unwrap_err();
        assert_eq!(errs.len(), 1, "{errs:#?}");
        assert_eq!((errs[0].line, errs[0].column), (6, 1));
        assert!(
            errs[0].message.starts_with("unknown field `devic`"),
            "{}",
            errs[0].message
        );
        assert!(
            errs[0].message.ends_with("; did you mean `device`?"),
            "{}",
            errs[0].message
        );
        assert_eq!(
            expected_names("unknown field `x`, expected one of `a`, `bc`"),
            vec!["a".to_string(), "bc".to_string()]
        );
        assert_eq!(expected_names("unknown field `x`, expected `a`"), vec!["a".to_string()]);
    }
}
