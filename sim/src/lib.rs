//! avs-sim: an offline stand-in for the Alexa cloud.
//!
//! # Layout
//! - `cli`, `config`, `config_env`: the command line and the one config model.
//! - `server`: listeners, TLS/ALPN and h2c detection, drain; `spawn` for tests.
//! - `health`: whether each listener is accepting (`/healthz`).
//! - `healthcheck`: `avs-sim health`, the client side of `/healthz`.
//! - `tls`: the generated CA and server certificate.
//! - `avs`: the device face (downchannel, events, System rules, conformance,
//!   the HTTP/2 connection loop and its frame filter).
//! - `public`, `bridge`: request/response routes (ping, LWA, Capabilities)
//!   served over HTTP/2 streams and HTTP/1.1 alike.
//! - `lwa`: Login With Amazon and the token store.
//! - `capabilities`: the Capabilities API.
//! - `control`: the control API and the dashboard it serves at `/`.
//! - `journal`: the record of every exchange.
//! - `faults`: fault rules (when/then/times) and the byte-level socket shaping;
//!   the HTTP/2 stream and frame actions live in `avs`.
//! - `scenario`: the TOML scenario format, its checks, the runner, reports and
//!   the `serve --scenario` service.
//! - `smarthome`: Alexa toward smart home skills (skills and users, invoking a
//!   skill's handler, the directives, judging answers, the registry) and the
//!   event gateway skills post to.
//! - `sns`: the SNS face: topics, HTTP/S subscriptions, signed delivery with
//!   SNS's retries, the Query API.
//! - `asp`: Smart Properties events (automations, skill failures,
//!   subscription activations) published to an SNS topic.
//! - `device`: the reference device (`avs-sim device`), an AVS Device SDK look-alike.
//! - `load`: `avs-sim load`, many devices in one process for the benchmarks
//!   (devices held, server RSS per device, broadcast delivery latency).
//! - `state`: what the faces share.
//! - `clock`, `duration`: time, read in one place; durations as strings.

pub mod asp;
pub mod avs;
pub mod bridge;
pub mod capabilities;
pub mod cli;
pub mod clock;
pub mod config;
pub mod config_env;
pub mod control;
pub mod device;
pub mod duration;
pub mod faults;
pub mod health;
pub mod healthcheck;
pub mod journal;
pub mod load;
pub mod lwa;
pub mod public;
pub mod scenario;
pub mod server;
pub mod smarthome;
pub mod sns;
pub mod state;
pub mod tls;

pub use config::Config;
pub use server::{SimHandle, spawn};
