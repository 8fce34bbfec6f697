//! Whether each listener is accepting, for `/healthz`.
//!
//! Each accept loop holds a guard from `ListenerHealth::up`; when the loop
//! ends (returned, panicked or aborted) the guard marks the listener down,
//! or stopped when the simulator is shutting down. Kept apart from the
//! accept loops so the control API reads it without knowing about them.

use std::sync::Arc;

/// Whether each listener's accept loop runs, for `/healthz`.
#[derive(Debug, Default)]
pub struct ListenerHealth {
    states: parking_lot::Mutex<std::collections::BTreeMap<String, ListenerState>>,
}

/// One listener's accept loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ListenerState {
    /// Accepting.
    Up,
    /// The accept loop ended while the simulator was not shutting down.
    Down,
    /// Ended by shutdown.
    Stopped,
}

impl ListenerHealth {
    /// Mark `name` up; the returned guard marks it down (or stopped, once
    /// `shutdown` is cancelled) when dropped, including by a panic or abort.
    pub fn up(self: &Arc<Self>, name: &str, shutdown: tokio_util::sync::CancellationToken) -> HealthGuard {
        self.states.lock().insert(name.to_string(), ListenerState::Up);
        HealthGuard {
            health: self.clone(),
            name: name.to_string(),
            shutdown,
        }
    }

    /// Every listener's state, by name.
    pub fn snapshot(&self) -> std::collections::BTreeMap<String, ListenerState> {
        self.states.lock().clone()
    }

    /// Whether a listener is down.
    pub fn any_down(&self) -> bool {
        self.states.lock().values().any(|s| *s == ListenerState::Down)
    }
}

/// Marks a listener down (or stopped) when its accept loop ends.
pub struct HealthGuard {
    health: Arc<ListenerHealth>,
    name: String,
    shutdown: tokio_util::sync::CancellationToken,
}

impl Drop for HealthGuard {
    fn drop(&mut self) {
        let state = if self.shutdown.is_cancelled() {
            ListenerState::Stopped
        } else {
            tracing::error!(listener = %self.name, "accept loop ended while not shutting down");
            ListenerState::Down
        };
        self.health.states.lock().insert(std::mem::take(&mut self.name), state);
    }
}
