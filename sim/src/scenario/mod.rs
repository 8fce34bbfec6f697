//! Scenarios: what the simulated cloud does and what it expects back.
//!
//! - `model`: the file format (serde, `deny_unknown_fields`).
//! - `load`, `lenient`, `check`: parsing and validation with `file:line:column` for every mistake.
//! - `template`, `matcher`: `{{var}}` expansion; field matchers and near misses.
//! - `runner`: runs steps against a live simulator, reading its journal.
//! - `report`: live progress, the JSON report and JUnit XML.

pub mod batch;
pub mod check;
pub mod lenient;
pub mod load;
pub mod matcher;
pub mod model;
pub mod report;
pub mod runner;
pub mod service;
pub mod template;
