//! The `[smarthome]` config section.

use super::judge::Mode;
use serde::{Deserialize, Serialize};

/// The most events per second per user the gateway can be set to allow:
/// beyond it the setting means "no limit" and should say so (0).
pub const MAX_RATE: u32 = 100_000;

/// How the smart home face judges and paces.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmartHomeConfig {
    /// `default` follows the documentation (recommendations warn);
    /// `strict` makes warnings errors and applies the schema-era limits.
    pub validation: Mode,
    /// Gateway events per second allowed per user before 429
    /// THROTTLING_EXCEPTION; 0 means no limit.
    pub events_per_second: u32,
    /// How many events a user may send at once before the rate applies.
    pub burst: u32,
}

impl Default for SmartHomeConfig {
    fn default() -> Self {
        SmartHomeConfig {
            validation: Mode::Default,
            events_per_second: 0,
            burst: 10,
        }
    }
}

impl SmartHomeConfig {
    /// Every out-of-range number, named.
    pub fn validate(&self) -> Vec<String> {
        let mut errors = Vec::new();
        if self.events_per_second > MAX_RATE {
            errors.push(format!(
                "smarthome.events_per_second: must be in 0..={MAX_RATE} (0 = no limit), got {}",
                self.events_per_second
            ));
        }
        if self.burst == 0 || self.burst > MAX_RATE {
            errors.push(format!(
                "smarthome.burst: must be in 1..={MAX_RATE}, got {}",
                self.burst
            ));
        }
        errors
    }
}
