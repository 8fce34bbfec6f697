//! The AVS error answer: one `System.Exception` JSON document (not
//! multipart) with the status/code table of reference avs.md §6.

use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::StatusCode;
use serde_json::json;

/// Every way an AVS request can fail, each mapped to its status and code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AvsError {
    /// 400: malformed multipart or JSON, missing fields, broken System rules.
    #[error("{0}")]
    InvalidRequest(String),
    /// 403: missing, unknown or expired token.
    #[error("{0}")]
    Unauthorized(String),
    /// 404: no such path (AVS's table has no code for it; we reuse 400's).
    #[error("{0}")]
    NotFound(String),
    /// 415: the event is not multipart.
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{0}")]
    Throttling(String),
    #[error("{0}")]
    Internal(String),
    #[error("{0}")]
    Unavailable(String),
    /// Any status a fault rule asks for, with an optional `payload.code`.
    #[error("{description}")]
    Injected {
        status: u16,
        code: Option<String>,
        description: String,
    },
}

impl AvsError {
    pub fn status(&self) -> StatusCode {
        match self {
            AvsError::InvalidRequest(_) => StatusCode::BAD_REQUEST,
            AvsError::Unauthorized(_) => StatusCode::FORBIDDEN,
            AvsError::NotFound(_) => StatusCode::NOT_FOUND,
            AvsError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            AvsError::Throttling(_) => StatusCode::TOO_MANY_REQUESTS,
            AvsError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            AvsError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            AvsError::Injected { status, .. } => {
                StatusCode::from_u16(*status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
            }
        }
    }

    /// `payload.code`; AVS documents none for 503.
    pub fn code(&self) -> Option<&str> {
        match self {
            AvsError::Injected { code: Some(code), .. } => Some(code.as_str()),
            AvsError::Injected { status, .. } => Self::code_for(*status),
            AvsError::InvalidRequest(_) | AvsError::NotFound(_) => Some("INVALID_REQUEST_EXCEPTION"),
            AvsError::Unauthorized(_) => Some("UNAUTHORIZED_REQUEST_EXCEPTION"),
            AvsError::UnsupportedMediaType(_) => Some("UNSUPPORTED_MEDIA_TYPE"),
            AvsError::Throttling(_) => Some("THROTTLING_EXCEPTION"),
            AvsError::Internal(_) => Some("INTERNAL_SERVICE_EXCEPTION"),
            AvsError::Unavailable(_) => None,
        }
    }

    /// The code AVS uses for a status (reference avs.md §6).
    pub fn code_for(status: u16) -> Option<&'static str> {
        match status {
            400 | 404 => Some("INVALID_REQUEST_EXCEPTION"),
            403 => Some("UNAUTHORIZED_REQUEST_EXCEPTION"),
            415 => Some("UNSUPPORTED_MEDIA_TYPE"),
            429 => Some("THROTTLING_EXCEPTION"),
            500 => Some("INTERNAL_SERVICE_EXCEPTION"),
            _ => None,
        }
    }

    /// The exception document.
    pub fn to_json(&self) -> serde_json::Value {
        let mut payload = json!({ "description": self.to_string() });
        if let Some(code) = self.code() {
            payload["code"] = json!(code);
        }
        json!({
            "header": {
                "namespace": "System",
                "name": "Exception",
                "messageId": uuid::Uuid::new_v4().to_string(),
            },
            "payload": payload,
        })
    }

    pub fn body(&self) -> Bytes {
        Bytes::from(self.to_json().to_string())
    }
}

impl IntoResponse for AvsError {
    fn into_response(self) -> Response {
        (
            self.status(),
            [(http::header::CONTENT_TYPE, "application/json")],
            self.body(),
        )
            .into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_matches_the_reference() {
        let cases = [
            (
                AvsError::InvalidRequest("x".into()),
                400,
                Some("INVALID_REQUEST_EXCEPTION"),
            ),
            (
                AvsError::Unauthorized("x".into()),
                403,
                Some("UNAUTHORIZED_REQUEST_EXCEPTION"),
            ),
            (
                AvsError::UnsupportedMediaType("x".into()),
                415,
                Some("UNSUPPORTED_MEDIA_TYPE"),
            ),
            (AvsError::Throttling("x".into()), 429, Some("THROTTLING_EXCEPTION")),
            (AvsError::Internal("x".into()), 500, Some("INTERNAL_SERVICE_EXCEPTION")),
            (AvsError::Unavailable("x".into()), 503, None),
        ];
        for (err, status, code) in cases {
            assert_eq!(err.status().as_u16(), status);
            let doc = err.to_json();
            assert_eq!(doc["header"]["namespace"], "System");
            assert_eq!(doc["header"]["name"], "Exception");
            assert_eq!(doc["payload"]["code"].as_str(), code);
            assert_eq!(doc["payload"]["description"], "x");
        }
    }
}
