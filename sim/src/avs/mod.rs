//! The AVS device face: what AVS device firmware talks to.
//!
//! - `h2conn`: the HTTP/2 connection loop (h2 driven directly) and routing.
//! - `downchannel`, `events`: the two streaming paths.
//! - `multipart`, `event`: the framing and the event body (pure).
//! - `system`, `conformance`: the System interface's rules, per device.
//! - `devices`, `connection`: who is connected where, and their queues.
//! - `frames`: the frame layer under `h2`: PINGs seen (activity), frames hidden
//!   or injected by faults, the announced stream limit, close after GOAWAY.
//! - `fault`: carrying out fired fault rules on streams and connections.
//! - `outbox`: writes a stream's body no faster than the peer's window.
//! - `exception`, `respond`, `auth`, `directive`: answers, tokens, directives.

pub mod auth;
pub mod conformance;
pub mod connection;
pub mod devices;
pub mod directive;
pub mod downchannel;
pub mod event;
pub mod events;
pub mod exception;
pub mod fault;
pub mod frames;
pub mod h2conn;
pub mod multipart;
pub mod outbox;
pub mod respond;
pub mod system;
