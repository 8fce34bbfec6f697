//! The request/response routes a device reaches on the AVS listeners:
//! ping, LWA, the Capabilities API, and clear errors for the rest.
//!
//! A journal middleware records each exchange (after the handler, so it
//! knows the device) and counts it as connection activity.

use crate::avs::connection::Connection;
use crate::avs::exception::AvsError;
use crate::journal::{Face, Kind, Record};
use crate::state::{DeviceTag, State};
use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State as AxState};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use http::{HeaderMap, StatusCode};
use serde_json::{Value, json};
use std::sync::Arc;

/// Largest body the journal middleware buffers.
const MAX_BODY: usize = 1024 * 1024;

/// The public router.
pub fn router(state: Arc<State>) -> Router {
    Router::new()
        .route("/ping", get(ping))
        .route("/v20160207/ping", get(ping))
        .route("/v20160207/directives", any(needs_h2))
        .route("/v20160207/events", any(needs_h2))
        .merge(crate::lwa::router())
        .merge(crate::capabilities::router())
        .merge(crate::smarthome::gateway::router())
        .merge(crate::sns::sign::router())
        .merge(crate::sns::query::router())
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(state.clone(), journal))
        .with_state(state)
}

/// `GET /ping`: exactly 204 for an authorized device (the SDK requires 204).
async fn ping(
    AxState(state): AxState<Arc<State>>,
    conn: Option<axum::Extension<Arc<Connection>>>,
    headers: HeaderMap,
) -> Response {
    match crate::avs::auth::device(&state, &headers) {
        Ok(device) => {
            if let Some(axum::Extension(conn)) = conn {
                conn.bind_device(&device);
            }
            let mut resp = StatusCode::NO_CONTENT.into_response();
            resp.extensions_mut().insert(DeviceTag(device.id.clone()));
            resp
        }
        Err(e) => e.into_response(),
    }
}

async fn needs_h2() -> AvsError {
    AvsError::InvalidRequest("the downchannel and events need HTTP/2 (ALPN h2 or h2c prior knowledge)".into())
}

async fn not_found(req: Request) -> AvsError {
    AvsError::NotFound(format!("no route for {} {}", req.method(), req.uri().path()))
}

/// The face a request path belongs to.
pub fn face_of(path: &str) -> Face {
    if path.starts_with("/auth/o2/") {
        Face::Lwa
    } else if path.starts_with("/v1/devices/") {
        Face::Capabilities
    } else if path == crate::smarthome::gateway::PATH {
        Face::Gateway
    } else if path == "/" {
        Face::Sns
    } else {
        Face::Avs
    }
}

/// A body as the journal shows it: JSON when it parses, else text.
pub fn body_for_journal(bytes: &[u8]) -> Value {
    if bytes.is_empty() {
        return Value::Null;
    }
    serde_json::from_slice(bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(bytes).into_owned()))
}

async fn journal(AxState(state): AxState<Arc<State>>, req: Request, next: Next) -> Response {
    let face = face_of(req.uri().path());
    if face == Face::Gateway || face == Face::Sns {
        // The gateway and the SNS Query API journal their own traffic and
        // bound their own bodies (413 in their protocols' shapes).
        return next.run(req).await;
    }
    let conn = req.extensions().get::<Arc<Connection>>().cloned();
    let summary = format!("{} {}", req.method(), req.uri().path());
    let (parts, body) = req.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_BODY).await else {
        return AvsError::InvalidRequest(format!("request body exceeds {MAX_BODY} bytes")).into_response();
    };
    let request_body = body_for_journal(&bytes);
    let resp = next.run(Request::from_parts(parts, Body::from(bytes))).await;
    let device = resp.extensions().get::<DeviceTag>().map(|t| t.0.to_string());
    let (parts, body) = resp.into_parts();
    let resp_bytes = axum::body::to_bytes(body, MAX_BODY).await.unwrap_or_default();
    let record = |kind, summary: String, body| {
        let mut r = Record::new(face, kind, summary)
            .maybe_device(device.as_deref())
            .body(body);
        if let Some(c) = &conn {
            r = r.connection(c.id);
        }
        state.journal.record(r)
    };
    let id = record(Kind::Request, summary, request_body);
    let status = parts.status.as_u16();
    record(
        Kind::Response,
        status.to_string(),
        json!({"status": status, "body": body_for_journal(&resp_bytes)}),
    );
    if let Some(c) = &conn {
        c.touch(&state, id);
    }
    let mut resp = Response::from_parts(parts, Body::from(resp_bytes));
    resp.headers_mut().insert(
        "x-amzn-requestid",
        uuid::Uuid::new_v4()
            .simple()
            .to_string()
            .parse()
            .expect("hex is a valid header"),
    );
    resp
}
