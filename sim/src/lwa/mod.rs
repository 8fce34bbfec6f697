//! Login With Amazon: `POST /auth/o2/token` and `POST /auth/o2/create/codepair`.
//!
//! Bodies may be form-encoded (the SDK, avs 0.5.5) or JSON (alexa-client);
//! the path is matched case-insensitively because the SDK uses `/auth/O2/`
//! (reference avs.md §9). Errors are the OAuth JSON `{error, error_description}`.

pub mod tokens;

use crate::state::State;
use axum::extract::State as AxState;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use tokens::{CodePair, CodePairError};

/// The OAuth error answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthError {
    pub status: StatusCode,
    pub error: &'static str,
    pub description: String,
}

impl OAuthError {
    fn bad(error: &'static str, description: impl Into<String>) -> OAuthError {
        OAuthError {
            status: StatusCode::BAD_REQUEST,
            error,
            description: description.into(),
        }
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let body = json!({ "error": self.error, "error_description": self.description });
        (self.status, Json(body)).into_response()
    }
}

/// LWA routes, relative to the root (paths already lower-cased).
pub fn router() -> Router<Arc<State>> {
    Router::new()
        .route("/auth/o2/token", post(token))
        .route("/auth/o2/create/codepair", post(codepair))
}

/// Read a form or JSON body into string parameters.
fn params(headers: &HeaderMap, body: &[u8]) -> Result<HashMap<String, String>, OAuthError> {
    let ct = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let looks_json = ct.contains("json") || body.trim_ascii_start().starts_with(b"{");
    if looks_json {
        let value: Value = serde_json::from_slice(body)
            .map_err(|e| OAuthError::bad("invalid_request", format!("request body is not valid JSON: {e}")))?;
        let Value::Object(map) = value else {
            return Err(OAuthError::bad("invalid_request", "request body must be a JSON object"));
        };
        Ok(map
            .into_iter()
            .map(|(k, v)| (k, v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string())))
            .collect())
    } else {
        serde_urlencoded_like(body)
    }
}

/// `application/x-www-form-urlencoded`, decoded with the `url` grammar.
fn serde_urlencoded_like(body: &[u8]) -> Result<HashMap<String, String>, OAuthError> {
    let text = std::str::from_utf8(body).map_err(|_| OAuthError::bad("invalid_request", "form body is not UTF-8"))?;
    let mut out = HashMap::new();
    for pair in text.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        out.insert(percent_decode(k)?, percent_decode(v)?);
    }
    Ok(out)
}

fn percent_decode(text: &str) -> Result<String, OAuthError> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = text.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(h, 16).ok());
                let byte =
                    hex.ok_or_else(|| OAuthError::bad("invalid_request", format!("bad percent escape in {text:?}")))?;
                out.push(byte);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| OAuthError::bad("invalid_request", "form value is not UTF-8"))
}

fn required<'a>(p: &'a HashMap<String, String>, key: &str) -> Result<&'a str, OAuthError> {
    p.get(key)
        .map(String::as_str)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| OAuthError::bad("invalid_request", format!("missing required parameter {key}")))
}

/// The device id a refresh token stands for when the store has never seen
/// it (lenient mode): stable, so a device keeps its id across restarts.
fn device_for_new_refresh_token(rt: &str) -> Arc<str> {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(rt.as_bytes());
    format!("rt-{}", hex::encode(&digest[..6])).into()
}

/// Tokens LWA granted: to a device, or to a smart home skill for a user.
enum Granted {
    Device(tokens::Issued),
    Skill(crate::smarthome::grants::Minted),
}

async fn token(AxState(state): AxState<Arc<State>>, headers: HeaderMap, body: Bytes) -> Response {
    match grant(&state, &headers, &body) {
        Ok(Granted::Device(issued)) => {
            let body = json!({
                "access_token": issued.access_token,
                "refresh_token": issued.refresh_token,
                "token_type": "bearer",
                "expires_in": issued.expires_in,
            });
            let mut resp = Json(body).into_response();
            resp.extensions_mut().insert(crate::state::DeviceTag(issued.device));
            resp
        }
        Ok(Granted::Skill(minted)) => Json(json!({
            "access_token": minted.access_token,
            "refresh_token": minted.refresh_token,
            "token_type": "bearer",
            "expires_in": minted.expires_in,
        }))
        .into_response(),
        Err(e) => e.into_response(),
    }
}

/// A skill's grant: the code AcceptGrant carried, or the skill's refresh
/// token, swapped for gateway tokens of the user it stands for. The skill's
/// declared client id and secret (its "send Alexa events" permission) must
/// come with it.
fn skill_grant(
    state: &State,
    p: &HashMap<String, String>,
    user: Option<String>,
    swap: impl FnOnce() -> Result<(String, crate::smarthome::grants::Minted), crate::smarthome::grants::GrantError>,
) -> Result<Granted, OAuthError> {
    use crate::smarthome::grants::GrantError;
    if let Some(skill) = user
        .as_deref()
        .and_then(|u| state.config.users.iter().find(|d| d.id == u))
        .and_then(|u| state.config.skills.iter().find(|s| s.id == u.skill))
    {
        let given = |key: &str| p.get(key).map(String::as_str);
        let id_ok = skill
            .client_id
            .as_deref()
            .is_none_or(|id| given("client_id") == Some(id));
        let secret_ok = skill
            .client_secret
            .as_deref()
            .is_none_or(|secret| given("client_secret") == Some(secret));
        if !id_ok || !secret_ok {
            return Err(OAuthError {
                status: StatusCode::UNAUTHORIZED,
                error: "invalid_client",
                description: format!(
                    "client_id and client_secret must be those of skill {:?}'s \"send Alexa events\" permission",
                    skill.id
                ),
            });
        }
    }
    match swap() {
        Ok((_, minted)) => Ok(Granted::Skill(minted)),
        Err(GrantError::Used) => Err(OAuthError::bad(
            "invalid_grant",
            "the authorization code was already used (codes are single use)",
        )),
        Err(GrantError::Expired) => Err(OAuthError::bad(
            "invalid_grant",
            "the authorization code has expired (codes live 5 minutes)",
        )),
        Err(GrantError::Unknown) => Err(OAuthError::bad(
            "invalid_grant",
            "unknown authorization code or refresh token",
        )),
        Err(GrantError::Unlinked) => Err(OAuthError::bad(
            "invalid_grant",
            "the refresh token was discarded when the account was unlinked (ErrorResponse EXPIRED_AUTHORIZATION_CREDENTIAL or INVALID_AUTHORIZATION_CREDENTIAL)",
        )),
    }
}

fn grant(state: &State, headers: &HeaderMap, body: &[u8]) -> Result<Granted, OAuthError> {
    let p = params(headers, body)?;
    let strict = state.tokens.mode() == crate::config::AuthMode::Strict;
    let grants = &state.smarthome.grants;
    let issued = match required(&p, "grant_type")? {
        "refresh_token" if grants.is_refresh(required(&p, "refresh_token")?) => {
            let rt = required(&p, "refresh_token")?;
            return skill_grant(state, &p, grants.refresh_owner(rt), || grants.refresh(rt));
        }
        "authorization_code" if grants.is_code(required(&p, "code")?) => {
            let code = required(&p, "code")?;
            return skill_grant(state, &p, grants.code_owner(code), || grants.exchange(code));
        }
        "refresh_token" => {
            let rt = required(&p, "refresh_token")?;
            let device = match state.tokens.refresh_owner(rt) {
                Some(d) => d,
                None if strict => {
                    return Err(OAuthError::bad("invalid_grant", "unknown refresh token"));
                }
                None => device_for_new_refresh_token(rt),
            };
            state.tokens.issue(device, Some(rt.to_string()))
        }
        "authorization_code" => {
            let code = required(&p, "code")?;
            state.tokens.issue(device_for_new_refresh_token(code), None)
        }
        "device_code" => {
            let device_code = required(&p, "device_code")?;
            let user_code = required(&p, "user_code")?;
            match state.tokens.take_codepair(device_code, user_code) {
                Ok(pair) => state.tokens.issue(pair.device, None),
                Err(CodePairError::Unknown) => {
                    return Err(OAuthError::bad(
                        "invalid_code_pair",
                        "unknown device_code / user_code pair",
                    ));
                }
                Err(CodePairError::Expired) => {
                    return Err(OAuthError::bad("expired_token", "the code pair has expired"));
                }
            }
        }
        other => {
            return Err(OAuthError::bad(
                "unsupported_grant_type",
                format!("grant_type {other:?} is not supported"),
            ));
        }
    };
    Ok(Granted::Device(issued))
}

async fn codepair(AxState(state): AxState<Arc<State>>, headers: HeaderMap, body: Bytes) -> Response {
    match make_codepair(&state, &headers, &body) {
        Ok(v) => Json(v).into_response(),
        Err(e) => e.into_response(),
    }
}

fn make_codepair(state: &State, headers: &HeaderMap, body: &[u8]) -> Result<Value, OAuthError> {
    let p = params(headers, body)?;
    if required(&p, "response_type")? != "device_code" {
        return Err(OAuthError::bad(
            "unsupported_response_type",
            "response_type must be device_code",
        ));
    }
    required(&p, "client_id")?;
    let scope_data: Value = serde_json::from_str(required(&p, "scope_data")?)
        .map_err(|e| OAuthError::bad("invalid_request", format!("scope_data is not valid JSON: {e}")))?;
    let product = scope_data.pointer("/alexa:all/productID").and_then(Value::as_str);
    let serial = scope_data
        .pointer("/alexa:all/productInstanceAttributes/deviceSerialNumber")
        .and_then(Value::as_str);
    let (Some(product), Some(serial)) = (product, serial) else {
        return Err(OAuthError::bad(
            "invalid_request",
            "scope_data needs alexa:all.productID and alexa:all.productInstanceAttributes.deviceSerialNumber",
        ));
    };
    let user_code: String = uuid::Uuid::new_v4().simple().to_string()[..6].to_ascii_uppercase();
    let device_code = uuid::Uuid::new_v4().to_string();
    let lwa = &state.config.lwa;
    state.tokens.add_codepair(
        device_code.clone(),
        CodePair {
            user_code: user_code.clone(),
            device: format!("{product}:{serial}").into(),
            expires: tokens::expiry_after(std::time::Duration::from_secs(lwa.codepair_expires_in)),
        },
    );
    Ok(json!({
        "user_code": user_code,
        "device_code": device_code,
        "verification_uri": "https://amazon.com/us/code",
        "expires_in": lwa.codepair_expires_in,
        "interval": lwa.codepair_interval,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_decoding() {
        let p = serde_urlencoded_like(b"grant_type=refresh_token&refresh_token=Atzr%7Cabc&x=a+b").unwrap();
        assert_eq!(p["refresh_token"], "Atzr|abc");
        assert_eq!(p["x"], "a b");
        assert!(serde_urlencoded_like(b"a=%zz").is_err());
    }
}
