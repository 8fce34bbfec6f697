//! The `[smarthome]` config section.

use super::judge::Mode;
use serde::{Deserialize, Serialize};

/// The most events per second per user the gateway can be set to allow:
/// beyond it the setting means "no limit" and should say so (0).
pub const MAX_RATE: u32 = 100_000;

/// The most concurrent invocations of one skill the setting allows.
pub const MAX_INVOCATIONS: u32 = 1024;

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
    /// Invocations of one skill running at once (each may be a process);
    /// beyond it a directive is refused as busy instead of queued.
    pub max_invocations: u32,
}

impl Default for SmartHomeConfig {
    fn default() -> Self {
        SmartHomeConfig {
            validation: Mode::Default,
            events_per_second: 0,
            burst: 10,
            max_invocations: 16,
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
        if !(1..=MAX_INVOCATIONS).contains(&self.max_invocations) {
            errors.push(format!(
                "smarthome.max_invocations: must be in 1..={MAX_INVOCATIONS}, got {}",
                self.max_invocations
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_number_is_range_checked() {
        assert!(SmartHomeConfig::default().validate().is_empty());
        let bad = SmartHomeConfig {
            validation: Mode::Strict,
            events_per_second: MAX_RATE + 1,
            burst: 0,
            max_invocations: 0,
        };
        let errors = bad.validate();
        assert_eq!(errors.len(), 3, "{errors:#?}");
        assert!(errors[0].starts_with("smarthome.events_per_second: must be in 0..=100000"));
        assert!(errors[1].starts_with("smarthome.max_invocations: must be in 1..=1024"));
        assert!(errors[2].starts_with("smarthome.burst: must be in 1..=100000"));
    }
}
