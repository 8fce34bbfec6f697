//! The SNS Query API subset (issue 9 item 4, reference sns.md §11): `POST /`
//! with a form body `Action=…&Version=2010-03-31`, as boto3 and the aws CLI
//! send it, on the plain and TLS listeners; and `GET /?Action=…`, which is
//! what a subscriber's GET on a `SubscribeURL` or `UnsubscribeURL` is.
//!
//! Any SigV4 `Authorization` is accepted and not checked; whether one was
//! present only matters for `AuthenticateOnUnsubscribe` (sns.md §6).
//! Every exchange is journaled under face `sns` here (the public router's
//! middleware skips `/`), and every failure is AWS's `<ErrorResponse>`.

pub mod actions;
pub mod attrs;
pub mod form;
pub mod xml;

use crate::journal::{Face, Kind, Record};
use crate::sns::SnsError;
use crate::state::State;
use axum::Router;
use axum::extract::{Request, State as AxState};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use http::{Method, StatusCode, header};
use serde_json::json;
use std::sync::Arc;

/// Largest request body read: a 256 KiB message percent-encodes to at most
/// three times its size, plus the other parameters.
pub const MAX_BODY: usize = 1024 * 1024;

/// A refused request: AWS's error code, HTTP status and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    pub status: u16,
    pub code: String,
    pub message: String,
}

impl Fault {
    pub fn new(status: u16, code: &str, message: impl Into<String>) -> Fault {
        Fault {
            status,
            code: code.into(),
            message: message.into(),
        }
    }

    /// 400 `InvalidParameter`.
    pub fn invalid(message: impl Into<String>) -> Fault {
        Fault::new(400, "InvalidParameter", message)
    }

    /// 400 `MissingParameter` naming the parameter.
    pub fn missing(name: &str) -> Fault {
        Fault::new(
            400,
            "MissingParameter",
            format!("The request must contain the parameter {name}"),
        )
    }
}

impl From<SnsError> for Fault {
    fn from(e: SnsError) -> Fault {
        Fault::new(e.status(), e.code(), e.to_string())
    }
}

/// The route, merged into the public router (plain and TLS listeners).
pub fn router() -> Router<Arc<State>> {
    Router::new().route("/", any(serve))
}

/// What the handler knows of the caller.
#[derive(Debug, Clone, Copy, Default)]
pub struct Caller {
    /// A SigV4 `Authorization` header was sent (never verified).
    pub signed: bool,
}

async fn serve(AxState(state): AxState<Arc<State>>, req: Request) -> Response {
    let request_id = uuid::Uuid::new_v4().to_string();
    let method = req.method().clone();
    let caller = Caller {
        signed: req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("AWS4-")),
    };
    let query = req.uri().query().unwrap_or("").to_string();
    let outcome = match method {
        Method::GET | Method::HEAD => form::Params::parse(query.as_bytes()),
        Method::POST => match axum::body::to_bytes(req.into_body(), MAX_BODY).await {
            Ok(body) if body.is_empty() && !query.is_empty() => form::Params::parse(query.as_bytes()),
            Ok(body) => form::Params::parse(&body),
            Err(_) => Err(Fault::new(
                413,
                "RequestEntityTooLarge",
                format!("Request body exceeds {MAX_BODY} bytes"),
            )),
        },
        _ => Err(Fault::new(
            405,
            "InvalidAction",
            format!("The SNS Query API takes GET or POST, not {method}"),
        )),
    };
    let (action, result) = match outcome {
        Ok(params) => {
            let action = params.get("Action").unwrap_or("").to_string();
            state.journal.record(
                Record::new(Face::Sns, Kind::Request, format!("{method} / Action={action}"))
                    .body(json!({"action": action, "params": params.to_json(), "request": request_id})),
            );
            let result = actions::dispatch(&state, caller, &params);
            (action, result)
        }
        Err(f) => {
            state.journal.record(
                Record::new(Face::Sns, Kind::Request, format!("{method} / (unreadable)"))
                    .body(json!({"error": f.message, "request": request_id})),
            );
            (String::new(), Err(f))
        }
    };
    let (status, code, xml) = match result {
        Ok(body) => (200, None, xml::response(&action, body.as_ref(), &request_id)),
        Err(f) => {
            let kind = if f.status >= 500 { "Receiver" } else { "Sender" };
            let xml = xml::error(kind, &f.code, &f.message, &request_id);
            (f.status, Some(f.code), xml)
        }
    };
    state.journal.record(
        Record::new(
            Face::Sns,
            if code.is_none() { Kind::Response } else { Kind::Error },
            match &code {
                Some(c) => format!("{status} {c} ({action})"),
                None => format!("{status} {action}"),
            },
        )
        .body(json!({"status": status, "action": action, "body": xml, "request": request_id})),
    );
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    (
        status,
        [
            (header::CONTENT_TYPE, "text/xml".to_string()),
            (header::HeaderName::from_static("x-amzn-requestid"), request_id),
        ],
        xml,
    )
        .into_response()
}
