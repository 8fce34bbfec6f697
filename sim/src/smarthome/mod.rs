//! The smart home face: Alexa toward a smart home skill, and the event
//! gateway the skill posts to.
//!
//! Alexa invokes a smart home skill as a Lambda function: the event is the
//! directive envelope, the return value the answer (reference smarthome.md
//! §6). This face owns the skills and users declared in config, how a skill
//! is reached (`invoke`), the directives Alexa sends (`directive`), the
//! rules answers and events are judged by (`judge`), the gateway tokens LWA
//! mints for a skill (`grants`), the event gateway (`gateway`) and what
//! Alexa knows of each home (`registry`).

pub mod alexa;
pub mod directive;
pub mod gateway;
pub mod grants;
pub mod invoke;
pub mod judge;
pub mod registry;
pub mod settings;
pub mod skills;
pub mod throttle;

pub use gateway::GatewayError;
pub use invoke::{Invocation, Outcome};
pub use settings::SmartHomeConfig;
pub use skills::{SkillDecl, UserDecl};

use crate::config::Config;
use parking_lot::Mutex;
use std::collections::HashMap;

/// The smart home face's live state, one per simulator.
pub struct SmartHome {
    pub registry: registry::Registry,
    pub grants: grants::Grants,
    pub throttle: throttle::Throttle,
    /// Whether each user's skill is enabled (config, then the control API).
    enabled: Mutex<HashMap<String, bool>>,
    /// Per declared skill, the invocations that may run at once.
    invocations: HashMap<String, std::sync::Arc<tokio::sync::Semaphore>>,
}

impl SmartHome {
    pub fn new(config: &Config) -> SmartHome {
        SmartHome {
            registry: Default::default(),
            grants: grants::Grants::new(&config.users, std::time::Duration::from_secs(config.lwa.expires_in)),
            throttle: throttle::Throttle::new(config.smarthome.events_per_second, config.smarthome.burst),
            enabled: Mutex::new(config.users.iter().map(|u| (u.id.clone(), u.enabled)).collect()),
            invocations: config
                .skills
                .iter()
                .map(|s| {
                    let n = config.smarthome.max_invocations as usize;
                    (s.id.clone(), std::sync::Arc::new(tokio::sync::Semaphore::new(n)))
                })
                .collect(),
        }
    }

    /// A place among `skill`'s running invocations, or `None` when all
    /// `smarthome.max_invocations` are taken.
    pub fn invocation_slot(&self, skill: &str) -> Option<tokio::sync::OwnedSemaphorePermit> {
        self.invocations.get(skill)?.clone().try_acquire_owned().ok()
    }

    /// Whether `user`'s skill is enabled (unknown users: no).
    pub fn is_enabled(&self, user: &str) -> bool {
        self.enabled.lock().get(user).copied().unwrap_or(false)
    }

    /// Enable or disable a declared user's skill; `false` for unknown users.
    pub fn set_enabled(&self, user: &str, on: bool) -> bool {
        match self.enabled.lock().get_mut(user) {
            Some(v) => {
                *v = on;
                true
            }
            None => false,
        }
    }
}
