//! The simulator's configuration: one serde model for every face.
//!
//! Precedence, lowest first: built-in defaults, the TOML file (`--config`),
//! `AVS_SIM_*` environment variables, command-line flags. Every key has a
//! default, so no file is needed. `validate` reports every problem at once.

use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The whole configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// How AVS, LWA and Capabilities requests are authorized.
    pub auth: AuthMode,
    pub listen: Listen,
    pub certs: Certs,
    pub avs: Avs,
    pub lwa: Lwa,
    pub conformance: Conformance,
    pub journal: JournalConfig,
    /// Bounds on every listener: connections, header sizes, handshake and
    /// header deadlines.
    pub limits: Limits,
    /// Devices known before they connect: an id and the bearer token they use.
    pub devices: Vec<DeviceDecl>,
    /// Extra AVS TLS listeners, one per simulated region, so `SetEndpoint`
    /// can send a device to another local port.
    pub regions: Vec<Region>,
    /// Scenario files `serve` runs each time one of their devices connects.
    pub scenarios: Vec<PathBuf>,
    /// Seed of fault probabilities (rules may set their own): the same seed
    /// and traffic give the same fire pattern.
    pub seed: u64,
    /// A chaos profile: fault rules active from the start.
    pub faults: Vec<crate::faults::Rule>,
    /// Smart home skills Alexa can invoke (a local command or an HTTP endpoint).
    pub skills: Vec<crate::smarthome::SkillDecl>,
    /// Customers who enabled a skill: the token Alexa puts in directives.
    pub users: Vec<crate::smarthome::UserDecl>,
    /// How the smart home face judges answers and paces the event gateway.
    pub smarthome: crate::smarthome::SmartHomeConfig,
    /// The SNS face: region and account of ARNs, topics and subscriptions.
    pub sns: crate::sns::SnsConfig,
    /// Smart Properties events: the topic they go to, opt-ins.
    pub asp: crate::asp::AspConfig,
    /// Units of the property (Smart Properties events name them).
    pub units: Vec<crate::asp::UnitDecl>,
    /// Named lists of smart home directives run for a unit.
    pub automations: Vec<crate::asp::AutomationDecl>,
}

/// `lenient` accepts any non-empty token (the token is the device id);
/// `strict` accepts only tokens it minted or that `[[devices]]` declares, and
/// honours their expiry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    #[default]
    Lenient,
    Strict,
}

/// Listener addresses. Port 0 picks a free port (the bound one is printed).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Listen {
    /// TLS with ALPN `h2` and `http/1.1`.
    pub avs: SocketAddr,
    /// Plaintext: h2c with prior knowledge and HTTP/1.1 on one port.
    pub plain: SocketAddr,
    /// The control API (HTTP/1.1 and h2c).
    pub control: SocketAddr,
    /// The region name reported for devices on the two main listeners.
    pub region: String,
}

impl Default for Listen {
    fn default() -> Self {
        Listen {
            avs: SocketAddr::from(([127, 0, 0, 1], 8443)),
            plain: SocketAddr::from(([127, 0, 0, 1], 8080)),
            control: SocketAddr::from(([127, 0, 0, 1], 9090)),
            region: "NA".into(),
        }
    }
}

/// Where the generated CA and server certificate live.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Certs {
    pub dir: PathBuf,
    /// Host names or IP addresses added to the server certificate's SANs.
    pub extra_hosts: Vec<String>,
    /// The certificate the main TLS listener serves: `valid`, or a broken
    /// one (`wrong_host`, `expired`) to test a device's TLS checks.
    pub serve: crate::tls::CertKind,
}

impl Default for Certs {
    fn default() -> Self {
        Certs {
            dir: PathBuf::from("certs"),
            extra_hosts: Vec::new(),
            serve: crate::tls::CertKind::Valid,
        }
    }
}

/// AVS device-face limits.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Avs {
    /// SETTINGS_MAX_CONCURRENT_STREAMS; the SDK uses up to 10.
    pub max_concurrent_streams: u32,
    /// Largest event body (metadata plus audio), streamed, never buffered.
    pub max_event_bytes: u64,
    /// Largest JSON part of an event (it is buffered to be parsed).
    pub max_json_bytes: usize,
    /// Directives waiting for a device's downchannel; beyond it a push is refused.
    pub directive_queue: usize,
    /// How long open streams may finish after SIGINT/SIGTERM.
    #[serde(with = "crate::duration")]
    pub drain_grace: Duration,
    /// Send GOAWAY to connections older than this, as AVS does after about an
    /// hour; "0s" (the default) never does.
    #[serde(with = "crate::duration")]
    pub max_connection_age: Duration,
    /// A downchannel with bytes waiting that the device grants no flow-control
    /// window for this long is reset (the device stopped reading it); "0s" never.
    #[serde(with = "crate::duration")]
    pub downchannel_stall_timeout: Duration,
    /// A device with no open connection is forgotten after this long (its
    /// journal entries stay); "0s" keeps every device forever.
    #[serde(with = "crate::duration")]
    pub device_idle_timeout: Duration,
}

impl Default for Avs {
    fn default() -> Self {
        Avs {
            max_concurrent_streams: 10,
            max_event_bytes: 64 * 1024 * 1024,
            max_json_bytes: 1024 * 1024,
            directive_queue: 32,
            drain_grace: Duration::from_secs(5),
            max_connection_age: Duration::ZERO,
            downchannel_stall_timeout: Duration::from_secs(30),
            device_idle_timeout: Duration::from_secs(3600),
        }
    }
}

/// Limits and timeouts every listener applies, so a slow or hostile client
/// costs a bounded amount of memory and time.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Open connections each listener (avs, plain, control, every region)
    /// accepts at once; beyond it a new connection is closed at accept and
    /// the refusal is journaled.
    pub max_connections: usize,
    /// SETTINGS_MAX_HEADER_LIST_SIZE announced on HTTP/2 (and the HTTP/1.1
    /// header buffer): larger header lists are refused (431 or a stream error).
    pub max_header_list_size: u32,
    /// Deadline for each step of a connection's start: the h2c preface (or
    /// the first bytes on the plain listener), the TLS handshake, and the
    /// HTTP/2 handshake. A client that is silent past it is disconnected.
    #[serde(with = "crate::duration")]
    pub handshake_timeout: Duration,
    /// How long an HTTP/1.1 client may take to send a request's headers.
    #[serde(with = "crate::duration")]
    pub header_read_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 10_000,
            max_header_list_size: 64 * 1024,
            handshake_timeout: Duration::from_secs(10),
            header_read_timeout: Duration::from_secs(10),
        }
    }
}

/// Login With Amazon token lifetimes.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Lwa {
    /// `expires_in` of access tokens, in seconds (LWA: 3600).
    pub expires_in: u64,
    /// `expires_in` of a code pair, in seconds (LWA doc example: 600).
    pub codepair_expires_in: u64,
    /// `interval` a device should poll a code pair at, in seconds (doc example: 30).
    pub codepair_interval: u64,
    /// A refresh token the simulator minted expires after this many seconds
    /// without use (each refresh restarts it); 0 never. Declared ones never expire.
    pub refresh_expires_in: u64,
}

impl Default for Lwa {
    fn default() -> Self {
        Lwa {
            expires_in: 3600,
            codepair_expires_in: 600,
            codepair_interval: 30,
            refresh_expires_in: 14 * 24 * 3600,
        }
    }
}

/// Deadlines the per-device conformance rules use.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Conformance {
    /// A connection must show activity at least this often (AVS: 5 minutes).
    #[serde(with = "crate::duration")]
    pub activity_interval: Duration,
    /// SoftwareInfo must follow ReportSoftwareInfo within this.
    #[serde(with = "crate::duration")]
    pub software_info_deadline: Duration,
    /// ExceptionEncountered must follow a malformed directive within this.
    #[serde(with = "crate::duration")]
    pub exception_deadline: Duration,
    /// A device must reconnect to the new endpoint within this after SetEndpoint.
    #[serde(with = "crate::duration")]
    pub reconnect_deadline: Duration,
}

impl Default for Conformance {
    fn default() -> Self {
        Conformance {
            activity_interval: Duration::from_secs(300),
            software_info_deadline: Duration::from_secs(10),
            exception_deadline: Duration::from_secs(10),
            reconnect_deadline: Duration::from_secs(30),
        }
    }
}

/// The journal of every exchange.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JournalConfig {
    /// Entries kept in memory; older ones are evicted (and counted).
    pub capacity: usize,
    /// Append every entry to this JSONL file too.
    pub file: Option<PathBuf>,
    /// Bytes of entries kept in memory (estimated heap size); older ones are
    /// evicted (and counted) past it, whichever of the two bounds is hit first.
    pub max_bytes: usize,
}

impl Default for JournalConfig {
    fn default() -> Self {
        JournalConfig {
            capacity: 50_000,
            file: None,
            max_bytes: 64 * 1024 * 1024,
        }
    }
}

/// A device declared in config.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceDecl {
    pub id: String,
    /// The access token the device sends as `Authorization: Bearer`.
    pub token: String,
    /// A refresh token that LWA maps to this device.
    #[serde(default)]
    pub refresh_token: Option<String>,
}

/// An extra regional AVS listener (TLS).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Region {
    pub name: String,
    pub listen: SocketAddr,
    /// The certificate this listener serves (see `certs.serve`).
    #[serde(default)]
    pub certificate: crate::tls::CertKind,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            auth: AuthMode::Lenient,
            listen: Listen::default(),
            certs: Certs::default(),
            avs: Avs::default(),
            lwa: Lwa::default(),
            conformance: Conformance::default(),
            journal: JournalConfig::default(),
            limits: Limits::default(),
            devices: Vec::new(),
            regions: Vec::new(),
            scenarios: Vec::new(),
            seed: 0,
            faults: Vec::new(),
            skills: Vec::new(),
            users: Vec::new(),
            smarthome: Default::default(),
            sns: Default::default(),
            asp: Default::default(),
            units: Vec::new(),
            automations: Vec::new(),
        }
    }
}

/// The smallest `journal.max_bytes`: room for a few ordinary entries.
pub const MIN_JOURNAL_BYTES: usize = 64 * 1024;

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{0}")]
    Parse(String),
    #[error("invalid configuration:\n  {}", .0.join("\n  "))]
    Invalid(Vec<String>),
}

impl Config {
    /// Parse TOML text, reporting the location of the first syntax or type error.
    pub fn from_toml(text: &str, origin: &str) -> Result<Config, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Parse(located(origin, text, &e)))
    }

    /// Load defaults, then `file` if given, then `AVS_SIM_*` variables from `env`.
    pub fn load(file: Option<&Path>, env: impl IntoIterator<Item = (String, String)>) -> Result<Config, ConfigError> {
        let mut table = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.into(),
                    source,
                })?;
                let origin = path.display().to_string();
                // Parse once as the model to get located errors for typos.
                Config::from_toml(&text, &origin)?;
                toml::from_str::<toml::Table>(&text).map_err(|e| ConfigError::Parse(located(&origin, &text, &e)))?
            }
            None => toml::Table::new(),
        };
        crate::config_env::apply(&mut table, env).map_err(ConfigError::Invalid)?;
        let config: Config = toml::Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| ConfigError::Parse(format!("environment: {e}")))?;
        Ok(config)
    }

    /// Check the whole configuration and report every problem at once.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut errors = Vec::new();
        let mut names = std::collections::HashSet::new();
        names.insert(self.listen.region.clone());
        for region in &self.regions {
            if region.name.is_empty() {
                errors.push("regions: a region needs a non-empty name".to_string());
            }
            if !names.insert(region.name.clone()) {
                errors.push(format!("regions: name {:?} is used twice", region.name));
            }
        }
        let mut tokens = std::collections::HashSet::new();
        for (i, d) in self.devices.iter().enumerate() {
            if d.id.is_empty() || d.token.is_empty() {
                errors.push(format!("devices[{i}]: id and token must be non-empty"));
            }
            if !tokens.insert(d.token.clone()) {
                errors.push(format!("devices[{i}]: token of {:?} is declared twice", d.id));
            }
        }
        if self.journal.capacity == 0 {
            errors.push("journal.capacity: must be at least 1".into());
        }
        self.validate_ranges(&mut errors);
        if self.journal.max_bytes < MIN_JOURNAL_BYTES {
            errors.push(format!("journal.max_bytes: must be at least {MIN_JOURNAL_BYTES}"));
        }
        for (i, f) in self.faults.iter().enumerate() {
            if let Err(e) = f.validate() {
                errors.push(format!("faults[{i}]: {e}"));
            }
        }
        errors.extend(crate::smarthome::skills::validate(&self.skills, &self.users));
        errors.extend(self.smarthome.validate());
        errors.extend(self.sns.validate(&[&self.asp.topic]));
        errors.extend(crate::asp::validate(self));
        if errors.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Invalid(errors))
        }
    }
}

impl Config {
    /// Numbers that feed deadlines and buffers: bounded so arithmetic on them
    /// cannot overflow and a typo cannot make a listener useless.
    fn validate_ranges(&self, errors: &mut Vec<String>) {
        const HOUR: Duration = Duration::from_secs(3600);
        const DAY: Duration = Duration::from_secs(24 * 3600);
        let mut within = |key: &str, d: Duration, lo: Duration, hi: Duration| {
            if d < lo || d > hi {
                errors.push(format!(
                    "{key}: must be in {}..={}, got {}",
                    crate::duration::format(lo),
                    crate::duration::format(hi),
                    crate::duration::format(d)
                ));
            }
        };
        let ms = Duration::from_millis(1);
        within("limits.handshake_timeout", self.limits.handshake_timeout, ms, HOUR);
        within("limits.header_read_timeout", self.limits.header_read_timeout, ms, HOUR);
        within("avs.drain_grace", self.avs.drain_grace, Duration::ZERO, HOUR);
        within(
            "avs.max_connection_age",
            self.avs.max_connection_age,
            Duration::ZERO,
            30 * DAY,
        );
        within(
            "conformance.activity_interval",
            self.conformance.activity_interval,
            Duration::ZERO,
            DAY,
        );
        within(
            "conformance.software_info_deadline",
            self.conformance.software_info_deadline,
            Duration::ZERO,
            DAY,
        );
        within(
            "conformance.exception_deadline",
            self.conformance.exception_deadline,
            Duration::ZERO,
            DAY,
        );
        within(
            "conformance.reconnect_deadline",
            self.conformance.reconnect_deadline,
            Duration::ZERO,
            DAY,
        );
        within(
            "avs.downchannel_stall_timeout",
            self.avs.downchannel_stall_timeout,
            Duration::ZERO,
            DAY,
        );
        within(
            "avs.device_idle_timeout",
            self.avs.device_idle_timeout,
            Duration::ZERO,
            30 * DAY,
        );
        let mut count = |key: &str, v: u64, lo: u64, hi: u64| {
            if v < lo || v > hi {
                errors.push(format!("{key}: must be in {lo}..={hi}, got {v}"));
            }
        };
        count(
            "limits.max_connections",
            self.limits.max_connections as u64,
            1,
            1_000_000,
        );
        count(
            "limits.max_header_list_size",
            u64::from(self.limits.max_header_list_size),
            1024,
            16 * 1024 * 1024,
        );
        const YEAR_S: u64 = 365 * 24 * 3600;
        count("lwa.expires_in", self.lwa.expires_in, 1, YEAR_S);
        count("lwa.codepair_expires_in", self.lwa.codepair_expires_in, 1, YEAR_S);
        count("lwa.codepair_interval", self.lwa.codepair_interval, 0, YEAR_S);
        // At least 3: a device needs a downchannel, an event and a ping at once.
        count(
            "avs.max_concurrent_streams",
            u64::from(self.avs.max_concurrent_streams),
            3,
            10_000,
        );
        // The queue is what a device that never reads can cost: keep it modest.
        count("avs.directive_queue", self.avs.directive_queue as u64, 1, 100_000);
        count("avs.max_event_bytes", self.avs.max_event_bytes, 1024, 1 << 40);
        count("avs.max_json_bytes", self.avs.max_json_bytes as u64, 1024, 64 << 20);
        count("lwa.refresh_expires_in", self.lwa.refresh_expires_in, 1, 10 * YEAR_S);
    }
}

/// `file:line:column: message` for a TOML error.
pub fn located(origin: &str, text: &str, err: &toml::de::Error) -> String {
    match err.span() {
        Some(span) => {
            let (line, col) = line_col(text, span.start);
            format!("{origin}:{line}:{col}: {}", err.message())
        }
        None => format!("{origin}: {}", err.message()),
    }
}

/// One-based line and column of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_gives_defaults() {
        let c = Config::from_toml("", "t").unwrap();
        assert_eq!(c.listen.avs.port(), 8443);
        assert_eq!(c.listen.plain.port(), 8080);
        assert_eq!(c.listen.control.port(), 9090);
        assert_eq!(c.auth, AuthMode::Lenient);
        assert_eq!(c.avs.max_concurrent_streams, 10);
        assert_eq!(c.lwa.expires_in, 3600);
        c.validate().unwrap();
    }

    #[test]
    fn unknown_key_is_located() {
        let err = Config::from_toml("[listen]\navs = \"127.0.0.1:1\"\nplian = 3\n", "c.toml").unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("c.toml:3:1:"), "{text}");
        assert!(text.contains("plian"), "{text}");
    }

    #[test]
    fn full_example_parses() {
        let c = Config::from_toml(
            r#"
auth = "strict"
[listen]
avs = "0.0.0.0:443"
[certs]
extra_hosts = ["avs.test"]
[conformance]
activity_interval = "30s"
[[devices]]
id = "kitchen"
token = "tok-1"
[[regions]]
name = "EU"
listen = "127.0.0.1:8444"
"#,
            "t",
        )
        .unwrap();
        assert_eq!(c.auth, AuthMode::Strict);
        assert_eq!(c.conformance.activity_interval, Duration::from_secs(30));
        assert_eq!(c.devices[0].id, "kitchen");
        assert_eq!(c.regions[0].listen.port(), 8444);
    }

    #[test]
    fn bounds_of_state_have_defaults_and_are_checked() {
        let c = Config::from_toml("[journal]\nmax_bytes = 1000\n", "t").unwrap();
        let err = c.validate().unwrap_err().to_string();
        assert!(err.contains("journal.max_bytes: must be at least 65536"), "{err}");
        let c = Config::from_toml(
            "[avs]\ndownchannel_stall_timeout = \"2s\"\ndevice_idle_timeout = \"0s\"\n",
            "t",
        )
        .unwrap();
        assert_eq!(c.avs.downchannel_stall_timeout, Duration::from_secs(2));
        assert!(c.avs.device_idle_timeout.is_zero());
        let d = Config::default();
        assert_eq!(d.avs.downchannel_stall_timeout, Duration::from_secs(30));
        assert_eq!(d.journal.max_bytes, 64 * 1024 * 1024);
        assert_eq!(d.lwa.refresh_expires_in, 14 * 24 * 3600);
    }

    #[test]
    fn validate_collects_every_error() {
        let mut c = Config::default();
        c.regions.push(Region {
            name: "NA".into(),
            listen: "127.0.0.1:1".parse().unwrap(),
            certificate: Default::default(),
        });
        c.devices.push(DeviceDecl {
            id: "".into(),
            token: "t".into(),
            refresh_token: None,
        });
        c.devices.push(DeviceDecl {
            id: "b".into(),
            token: "t".into(),
            refresh_token: None,
        });
        let ConfigError::Invalid(errors) = c.validate().unwrap_err() else {
            panic!()
        };
        assert_eq!(errors.len(), 3, "{errors:?}");
    }

    #[test]
    fn limits_have_defaults_and_env_overrides() {
        let c = Config::default();
        assert_eq!(c.limits.max_header_list_size, 64 * 1024, "not h2's 16 MiB");
        assert_eq!(c.limits.max_connections, 10_000);
        let env = [
            ("AVS_SIM_LIMITS_MAX_CONNECTIONS", "7"),
            ("AVS_SIM_LIMITS_MAX_HEADER_LIST_SIZE", "4096"),
            ("AVS_SIM_LIMITS_HANDSHAKE_TIMEOUT", "250ms"),
            ("AVS_SIM_LIMITS_HEADER_READ_TIMEOUT", "2s"),
        ];
        let c = Config::load(None, env.iter().map(|(k, v)| (k.to_string(), v.to_string()))).unwrap();
        assert_eq!(c.limits.max_connections, 7);
        assert_eq!(c.limits.max_header_list_size, 4096);
        assert_eq!(c.limits.handshake_timeout, Duration::from_millis(250));
        assert_eq!(c.limits.header_read_timeout, Duration::from_secs(2));
        c.validate().unwrap();
    }

    #[test]
    fn skills_and_users_are_checked_with_the_rest() {
        let c = Config::from_toml(
            "[[skills]]\nid = 'lights'\ncommand = ['python3', 'skill.py']\n[[users]]\nid = 'u1'\nskill = 'lights'\ntoken = 't'\n",
            "t",
        )
        .unwrap();
        c.validate().unwrap();
        let c = Config::from_toml("[[users]]\nid = 'u1'\nskill = 'nope'\ntoken = 't'\n", "t").unwrap();
        let ConfigError::Invalid(errors) = c.validate().unwrap_err() else {
            panic!()
        };
        assert!(
            errors.iter().any(|e| e.contains("skill \"nope\" is not declared")),
            "{errors:?}"
        );
    }

    #[test]
    fn numbers_feeding_deadlines_are_bounded() {
        let c = Config::from_toml(
            "[limits]\nmax_connections = 0\nmax_header_list_size = 100\nhandshake_timeout = \"0s\"\nheader_read_timeout = \"2h\"\n[avs]\ndrain_grace = \"99999h\"\nmax_connection_age = \"999999h\"\ndirective_queue = 4294967296\nmax_concurrent_streams = 0\nmax_json_bytes = 0\nmax_event_bytes = 18446744073709551615\ndevice_idle_timeout = \"99999h\"\ndownchannel_stall_timeout = \"99999h\"\n[lwa]\nexpires_in = 18446744073709551615\n",
            "t",
        )
        .unwrap();
        let ConfigError::Invalid(errors) = c.validate().unwrap_err() else {
            panic!()
        };
        for key in [
            "limits.max_connections: must be in 1..=1000000, got 0",
            "limits.max_header_list_size: must be in 1024..=16777216, got 100",
            "limits.handshake_timeout",
            "limits.header_read_timeout",
            "avs.drain_grace",
            "avs.max_connection_age",
            "lwa.expires_in",
            "avs.directive_queue: must be in 1..=100000, got 4294967296",
            "avs.max_concurrent_streams",
            "avs.max_json_bytes",
            "avs.max_event_bytes",
            "avs.device_idle_timeout",
            "avs.downchannel_stall_timeout",
        ] {
            assert!(errors.iter().any(|e| e.starts_with(key)), "{key}: {errors:#?}");
        }
    }
}
