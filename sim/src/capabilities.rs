//! The Capabilities API: `PUT /v1/devices/@self/capabilities`.
//!
//! Accepts `authorization: Bearer` and the SDK's `x-amz-access-token`
//! (reference avs.md §10). A valid envelope gets 204 and the declared
//! interfaces are kept per device (System 1.1 decides whether SoftwareInfo
//! applies); an invalid one gets 400 with a `message` naming the problem.

use crate::avs::devices::Interface;
use crate::lwa::tokens::bearer;
use crate::state::{DeviceTag, State};
use axum::Json;
use axum::Router;
use axum::extract::State as AxState;
use axum::response::{IntoResponse, Response};
use axum::routing::put;
use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use serde_json::{Value, json};
use std::sync::Arc;

/// The Capabilities API's error answer: a status and `{"message": ...}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapabilitiesError {
    pub status: StatusCode,
    pub message: String,
}

impl IntoResponse for CapabilitiesError {
    fn into_response(self) -> Response {
        (self.status, Json(json!({ "message": self.message }))).into_response()
    }
}

fn invalid(message: impl Into<String>) -> CapabilitiesError {
    CapabilitiesError {
        status: StatusCode::BAD_REQUEST,
        message: message.into(),
    }
}

pub fn router() -> Router<Arc<State>> {
    Router::new().route("/v1/devices/@self/capabilities", put(declare))
}

async fn declare(AxState(state): AxState<Arc<State>>, headers: HeaderMap, body: Bytes) -> Response {
    let token = bearer(&headers, true).unwrap_or("");
    let id = match state.tokens.authenticate(token) {
        Ok(id) => id,
        Err(e) => {
            return CapabilitiesError {
                status: StatusCode::FORBIDDEN,
                message: e.to_string(),
            }
            .into_response();
        }
    };
    let device = state.devices.get_or_create(&id);
    let mut resp = match validate(&body) {
        Ok(interfaces) => {
            device.lock().capabilities = Some(interfaces);
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) => e.into_response(),
    };
    resp.extensions_mut().insert(DeviceTag(id));
    resp
}

/// Check a capabilities envelope and return its interfaces.
pub fn validate(body: &[u8]) -> Result<Vec<Interface>, CapabilitiesError> {
    let doc: Value = serde_json::from_slice(body).map_err(|e| invalid(format!("body is not valid JSON: {e}")))?;
    match doc.get("envelopeVersion").and_then(Value::as_str) {
        Some("20160207") => {}
        Some(other) => {
            return Err(invalid(format!(
                "envelopeVersion {other:?} is not supported; use \"20160207\""
            )));
        }
        None => return Err(invalid("envelopeVersion is missing")),
    }
    let caps = doc
        .get("capabilities")
        .and_then(Value::as_array)
        .ok_or_else(|| invalid("capabilities must be an array"))?;
    if caps.is_empty() {
        return Err(invalid("capabilities must not be empty"));
    }
    caps.iter().enumerate().map(|(i, c)| interface(i, c)).collect()
}

fn interface(i: usize, c: &Value) -> Result<Interface, CapabilitiesError> {
    let field = |k: &str| c.get(k).and_then(Value::as_str).filter(|s| !s.is_empty());
    if field("type") != Some("AlexaInterface") {
        return Err(invalid(format!("capabilities[{i}].type must be \"AlexaInterface\"")));
    }
    let interface = field("interface").ok_or_else(|| invalid(format!("capabilities[{i}].interface is missing")))?;
    let version = field("version").ok_or_else(|| invalid(format!("capabilities[{i}].version is missing")))?;
    let well_formed = version
        .split_once('.')
        .is_some_and(|(a, b)| !a.is_empty() && !b.is_empty() && a.bytes().chain(b.bytes()).all(|x| x.is_ascii_digit()));
    if !well_formed {
        return Err(invalid(format!(
            "capabilities[{i}].version {version:?} must look like \"1.0\""
        )));
    }
    if c.get("configurations").is_some_and(|v| !v.is_object()) {
        return Err(invalid(format!("capabilities[{i}].configurations must be an object")));
    }
    Ok(Interface {
        interface: interface.to_string(),
        version: version.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_validation() {
        let ok = br#"{"envelopeVersion":"20160207","capabilities":[{"type":"AlexaInterface","interface":"System","version":"1.1"}]}"#;
        assert_eq!(
            validate(ok).unwrap(),
            vec![Interface {
                interface: "System".into(),
                version: "1.1".into()
            }]
        );
        let cases: [(&[u8], &str); 5] = [
            (b"{", "not valid JSON"),
            (br#"{"capabilities":[]}"#, "envelopeVersion is missing"),
            (br#"{"envelopeVersion":"20160207","capabilities":[]}"#, "must not be empty"),
            (br#"{"envelopeVersion":"20160207","capabilities":[{"type":"X","interface":"A","version":"1.0"}]}"#, "type must be"),
            (br#"{"envelopeVersion":"20160207","capabilities":[{"type":"AlexaInterface","interface":"A","version":"one"}]}"#, "version \"one\""),
        ];
        for (body, want) in cases {
            let err = validate(body).unwrap_err();
            assert!(err.message.contains(want), "{} lacks {want}", err.message);
        }
    }
}
