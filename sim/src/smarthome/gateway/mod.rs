//! The Alexa event gateway: `POST /v3/events`, where a skill sends
//! proactive reports and deferred answers (reference smarthome.md §3, §5).

pub mod error;

pub use error::GatewayError;

/// The gateway's path on every AVS listener (TLS and plain).
pub const PATH: &str = "/v3/events";
