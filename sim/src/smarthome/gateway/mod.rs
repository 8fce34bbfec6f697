//! The Alexa event gateway: `POST /v3/events`, where a skill sends
//! proactive reports and deferred answers (reference smarthome.md §3, §5).
//!
//! `serve` reads, journals and checks each event; `apply` merges what was
//! accepted into the registry; `error` is the `System.Exception` answer.

pub mod apply;
pub mod error;
pub mod serve;

pub use error::GatewayError;
pub use serve::journal_faulted;

use crate::state::State;
use std::sync::Arc;

/// The gateway's path on every AVS listener (TLS and plain).
pub const PATH: &str = "/v3/events";

/// The gateway's route, merged into the public router.
pub fn router() -> axum::Router<Arc<State>> {
    axum::Router::new().route(PATH, axum::routing::any(serve::events))
}
