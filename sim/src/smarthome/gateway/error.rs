//! The event gateway's error answer: HTTP status plus a `System.Exception`
//! document whose `payload.code` is one of Alexa's codes (reference
//! smarthome.md §5). One type for the whole gateway surface, so every
//! refusal, injected faults included, has the same shape.

use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde_json::{Value, json};

/// Every way the gateway refuses an event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GatewayError {
    /// 400: bad JSON, missing fields, a broken rule (the message names it).
    #[error("{0}")]
    InvalidRequest(String),
    /// 401: the bearer token is missing, unknown, expired or revoked.
    #[error("{0}")]
    InvalidAccessToken(String),
    /// 403: the customer disabled the skill.
    #[error("{0}")]
    SkillDisabled(String),
    /// 403: the skill lacks the "send Alexa events" permission.
    #[error("{0}")]
    InsufficientPermission(String),
    /// 413: body over 256 KB or more than 300 endpoints.
    #[error("{0}")]
    TooLarge(String),
    /// 429: over the user's configured rate.
    #[error("{0}")]
    Throttling(String),
    /// Any status a fault rule asks for, with an optional code.
    #[error("{description}")]
    Injected {
        status: u16,
        code: Option<String>,
        description: String,
    },
}

impl GatewayError {
    pub fn status(&self) -> StatusCode {
        match self {
            GatewayError::InvalidRequest(_) => StatusCode::BAD_REQUEST,
            GatewayError::InvalidAccessToken(_) => StatusCode::UNAUTHORIZED,
            GatewayError::SkillDisabled(_) | GatewayError::InsufficientPermission(_) => StatusCode::FORBIDDEN,
            GatewayError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            GatewayError::Throttling(_) => StatusCode::TOO_MANY_REQUESTS,
            GatewayError::Injected { status, .. } => {
                StatusCode::from_u16(*status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
            }
        }
    }

    /// `payload.code`, from the gateway's table.
    pub fn code(&self) -> &str {
        match self {
            GatewayError::InvalidRequest(_) => "INVALID_REQUEST_EXCEPTION",
            GatewayError::InvalidAccessToken(_) => "INVALID_ACCESS_TOKEN_EXCEPTION",
            GatewayError::SkillDisabled(_) => "SKILL_DISABLED_EXCEPTION",
            GatewayError::InsufficientPermission(_) => "INSUFFICIENT_PERMISSION_EXCEPTION",
            GatewayError::TooLarge(_) => "REQUEST_ENTITY_TOO_LARGE_EXCEPTION",
            GatewayError::Throttling(_) => "THROTTLING_EXCEPTION",
            GatewayError::Injected { code: Some(code), .. } => code,
            GatewayError::Injected { status, .. } => Self::code_for(*status),
        }
    }

    /// The table's code for a status a fault rule gives without one.
    fn code_for(status: u16) -> &'static str {
        match status {
            401 => "INVALID_ACCESS_TOKEN_EXCEPTION",
            403 => "SKILL_DISABLED_EXCEPTION",
            404 => "SKILL_NOT_FOUND_EXCEPTION",
            413 => "REQUEST_ENTITY_TOO_LARGE_EXCEPTION",
            429 => "THROTTLING_EXCEPTION",
            503 => "SERVICE_UNAVAILABLE_EXCEPTION",
            s if s >= 500 => "INTERNAL_SERVICE_EXCEPTION",
            _ => "INVALID_REQUEST_EXCEPTION",
        }
    }

    /// The `System.Exception` document.
    pub fn to_json(&self) -> Value {
        json!({
            "header": {
                "namespace": "System",
                "name": "Exception",
                "messageId": uuid::Uuid::new_v4().to_string(),
            },
            "payload": {"code": self.code(), "description": self.to_string()},
        })
    }
}

impl IntoResponse for GatewayError {
    fn into_response(self) -> Response {
        (self.status(), axum::Json(self.to_json())).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_codes_follow_the_table() {
        let cases = [
            (
                GatewayError::InvalidRequest("x".into()),
                400,
                "INVALID_REQUEST_EXCEPTION",
            ),
            (
                GatewayError::InvalidAccessToken("x".into()),
                401,
                "INVALID_ACCESS_TOKEN_EXCEPTION",
            ),
            (GatewayError::SkillDisabled("x".into()), 403, "SKILL_DISABLED_EXCEPTION"),
            (
                GatewayError::InsufficientPermission("x".into()),
                403,
                "INSUFFICIENT_PERMISSION_EXCEPTION",
            ),
            (
                GatewayError::TooLarge("x".into()),
                413,
                "REQUEST_ENTITY_TOO_LARGE_EXCEPTION",
            ),
            (GatewayError::Throttling("x".into()), 429, "THROTTLING_EXCEPTION"),
        ];
        for (e, status, code) in cases {
            assert_eq!(e.status().as_u16(), status);
            assert_eq!(e.code(), code);
            let doc = e.to_json();
            assert_eq!(doc["header"]["namespace"], "System");
            assert_eq!(doc["header"]["name"], "Exception");
            assert_eq!(doc["payload"]["code"], code);
            assert_eq!(doc["payload"]["description"], "x");
        }
        for (status, code) in [
            (500, "INTERNAL_SERVICE_EXCEPTION"),
            (503, "SERVICE_UNAVAILABLE_EXCEPTION"),
        ] {
            let e = GatewayError::Injected {
                status,
                code: None,
                description: "d".into(),
            };
            assert_eq!(e.code(), code);
        }
    }
}
