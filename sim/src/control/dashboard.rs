//! The dashboard: one page at `GET /` on the control listener that shows
//! what the simulator sees right now (devices and their conformance, the
//! journal live, faults, the smart home registry, SNS deliveries) and lets
//! a person push a directive.
//!
//! Plain HTML, CSS and JavaScript in `dashboard/`, compiled into the
//! binary with `include_str!`: no CDN, no network, no build step, so the
//! page works offline and is exactly what the repository holds. The page
//! only calls the control API (the same JSON routes tests use) and the
//! journal stream (`journal_stream`); it has no routes of its own beyond
//! its three files.

use super::journal_stream;
use crate::state::State;
use axum::Router;
use axum::response::IntoResponse;
use axum::routing::get;
use http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE};
use std::sync::Arc;

const INDEX: &str = include_str!("dashboard/index.html");
const SCRIPT: &str = include_str!("dashboard/app.js");
const STYLE: &str = include_str!("dashboard/style.css");

/// Only this origin's own files and API: the page cannot load anything else.
const CSP: &str = "default-src 'self'; img-src 'self' data:; connect-src 'self'";

/// The dashboard's files and the journal stream, merged into the control router.
pub fn router() -> Router<Arc<State>> {
    Router::new()
        .route("/", get(index))
        .route("/dashboard/app.js", get(script))
        .route("/dashboard/style.css", get(style))
        .route("/api/journal/stream", get(journal_stream::stream))
}

/// One embedded file with its type; never cached, so a new binary's page
/// is what a reload shows.
fn asset(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    (
        [
            (CONTENT_TYPE, content_type),
            (CACHE_CONTROL, "no-cache"),
            (CONTENT_SECURITY_POLICY, CSP),
        ],
        body,
    )
}

async fn index() -> impl IntoResponse {
    asset("text/html; charset=utf-8", INDEX)
}

async fn script() -> impl IntoResponse {
    asset("text/javascript; charset=utf-8", SCRIPT)
}

async fn style() -> impl IntoResponse {
    asset("text/css; charset=utf-8", STYLE)
}
