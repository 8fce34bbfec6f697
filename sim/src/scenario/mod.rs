//! Scenarios: what the simulated cloud does and what it expects back.
//!
//! - `model`: the file format (serde, `deny_unknown_fields`).
//! - `load`, `lenient`, `check`: parsing and validation with `file:line:column` for every mistake.
//! - `template`, `matcher`: `{{var}}` expansion; field matchers and near misses.
//! - `runner`: runs steps against a live simulator, reading its journal.
//! - `report`: step and scenario lines, the JSON report and JUnit XML.
//! - `progress`: live counters on stderr for long runs (`--progress`).
//! - `batch`: `avs-sim run`: load, merge configs, spawn the device, run in order.
//! - `service`: scenarios run by a serving simulator (on connect, control API).

pub mod batch;
pub mod check;
pub mod lenient;
pub mod load;
pub mod matcher;
pub mod model;
pub mod progress;
pub mod report;
pub mod runner;
pub mod service;
pub mod template;
