//! Delivery: one queue per subscription, worked in order, apart from
//! Publish, with SNS's retry policy, throttle and the dead-letter list
//! (reference sns.md §7–9).
//!
//! FIRST CUT: a single attempt per message; the policy is being written.

use super::model::Outgoing;
use crate::state::State;
use std::sync::Arc;

/// Queue `out` for its subscription; returns at once.
pub fn enqueue(state: &Arc<State>, out: Outgoing) {
    let _ = (state, out);
}
