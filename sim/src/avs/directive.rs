//! Directives the simulator sends: building them and turning control-API
//! requests into downchannel pushes.

use crate::avs::devices::Push;
use bytes::Bytes;
use serde_json::{Value, json};

/// A directive JSON document with a fresh messageId.
pub fn build(namespace: &str, name: &str, payload: Value, dialog_request_id: Option<&str>) -> Value {
    let mut header = json!({
        "namespace": namespace,
        "name": name,
        "messageId": uuid::Uuid::new_v4().to_string(),
    });
    if let Some(d) = dialog_request_id {
        header["dialogRequestId"] = json!(d);
    }
    json!({ "directive": { "header": header, "payload": payload } })
}

/// Why a directive request could not be turned into a push.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DirectiveError {
    #[error("{0}")]
    Invalid(String),
}

/// A push from one of the three control-API forms:
/// `{"directive":{...}}` (sent as given, messageId filled in if missing),
/// `{"namespace","name","payload"}` (built), or `{"raw":"..."}` (bytes as the part body).
pub fn from_request(body: &Value) -> Result<Push, DirectiveError> {
    let Value::Object(map) = body else {
        return Err(DirectiveError::Invalid("body must be a JSON object".into()));
    };
    if let Some(raw) = map.get("raw") {
        let raw = raw
            .as_str()
            .ok_or_else(|| DirectiveError::Invalid("raw must be a string".into()))?;
        return Ok(Push {
            body: Bytes::from(raw.to_string()),
            name: "raw".into(),
            message_id: None,
            well_formed: false,
            attachments: Vec::new(),
            attachments_elsewhere: false,
        });
    }
    let doc = if let Some(directive) = map.get("directive") {
        let mut doc = json!({ "directive": directive.clone() });
        let header = doc
            .pointer_mut("/directive/header")
            .and_then(Value::as_object_mut)
            .ok_or_else(|| DirectiveError::Invalid("directive.header must be an object".into()))?;
        header
            .entry("messageId")
            .or_insert_with(|| json!(uuid::Uuid::new_v4().to_string()));
        doc
    } else {
        let field = |k: &str| {
            map.get(k)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .ok_or_else(|| {
                    DirectiveError::Invalid(format!(
                        "{k} must be a non-empty string (or send \"directive\" or \"raw\")"
                    ))
                })
        };
        let payload = map.get("payload").cloned().unwrap_or_else(|| json!({}));
        if !payload.is_object() {
            return Err(DirectiveError::Invalid("payload must be an object".into()));
        }
        let dialog = map.get("dialogRequestId").and_then(Value::as_str);
        build(field("namespace")?, field("name")?, payload, dialog)
    };
    let mut push = push_of(&doc);
    push.attachments = attachments(map)?;
    push.attachments_elsewhere = map
        .get("attachment_elsewhere")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    Ok(push)
}

/// `"attachment": {"cid", "text"}` or `"attachments": [...]`: binary parts
/// sent with the directive (text as UTF-8 bytes).
fn attachments(map: &serde_json::Map<String, Value>) -> Result<Vec<(String, Bytes)>, DirectiveError> {
    let list: Vec<&Value> = match (map.get("attachment"), map.get("attachments")) {
        (Some(one), None) => vec![one],
        (None, Some(Value::Array(many))) => many.iter().collect(),
        (None, None) => return Ok(Vec::new()),
        _ => {
            return Err(DirectiveError::Invalid(
                "give `attachment` (an object) or `attachments` (an array)".into(),
            ));
        }
    };
    list.into_iter()
        .map(|a| {
            let cid = a.get("cid").and_then(Value::as_str).filter(|c| !c.is_empty());
            let text = a.get("text").and_then(Value::as_str);
            match (cid, text) {
                (Some(cid), Some(text)) => Ok((cid.to_string(), Bytes::from(text.to_string()))),
                _ => Err(DirectiveError::Invalid("an attachment needs `cid` and `text`".into())),
            }
        })
        .collect()
}

/// A push request as the journal keeps it: attachment texts are replaced by
/// their size, so a thousand pushes of large attachments cost the journal
/// a thousand small entries (the downchannel journals each attachment sent,
/// by size, too).
pub fn journal_view(request: &Value) -> Value {
    let mut view = request.clone();
    let shrink = |a: &mut Value| {
        if let Some(text) = a.get("text").and_then(Value::as_str) {
            let bytes = text.len();
            a["text"] = json!(format!("({bytes} bytes)"));
        }
    };
    if let Some(one) = view.get_mut("attachment") {
        shrink(one);
    }
    if let Some(Value::Array(many)) = view.get_mut("attachments") {
        many.iter_mut().for_each(shrink);
    }
    view
}

/// A push carrying a directive document.
pub fn push_of(doc: &Value) -> Push {
    let header = &doc["directive"]["header"];
    let name = format!(
        "{}.{}",
        header["namespace"].as_str().unwrap_or("?"),
        header["name"].as_str().unwrap_or("?")
    );
    Push {
        body: Bytes::from(doc.to_string()),
        name,
        message_id: header["messageId"].as_str().map(str::to_string),
        well_formed: true,
        attachments: Vec::new(),
        attachments_elsewhere: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_request_forms() {
        let p = from_request(&json!({"namespace":"System","name":"ReportSoftwareInfo"})).unwrap();
        assert_eq!(p.name, "System.ReportSoftwareInfo");
        let doc: Value = serde_json::from_slice(&p.body).unwrap();
        assert_eq!(doc["directive"]["payload"], json!({}));
        assert_eq!(
            doc["directive"]["header"]["messageId"].as_str(),
            p.message_id.as_deref()
        );

        let p = from_request(&json!({"directive":{"header":{"namespace":"A","name":"B"},"payload":{"x":1}}})).unwrap();
        assert_eq!(p.name, "A.B");
        assert!(p.message_id.is_some());

        let p = from_request(&json!({"raw":"{not json"})).unwrap();
        assert_eq!(&p.body[..], b"{not json");
        assert!(!p.well_formed);

        assert!(from_request(&json!({"name":"X"})).is_err());

        let big = "x".repeat(65536);
        let view = journal_view(
            &json!({"name":"B","attachments":[{"cid":"a","text":big}],"attachment":{"cid":"b","text":"hi"}}),
        );
        assert_eq!(view["attachments"][0], json!({"cid":"a","text":"(65536 bytes)"}));
        assert_eq!(view["attachment"]["text"], "(2 bytes)");
        assert!(from_request(&json!([1])).is_err());
    }
}
