//! What every face shares: config, journal, devices, tokens, listeners.
//!
//! One `State` per running simulator, behind an `Arc`. Each face owns its
//! own part (the AVS face the devices, LWA the tokens); this only holds
//! them together so one journal and one control API see everything.

use crate::avs::devices::Devices;
use crate::config::Config;
use crate::journal::Journal;
use crate::lwa::tokens::Tokens;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// A listener the simulator serves, as devices see it.
#[derive(Debug, Clone)]
pub struct ListenerInfo {
    /// `avs`, `plain`, `control`, or a region's listener name.
    pub name: Arc<str>,
    /// The region devices on this listener are in.
    pub region: Arc<str>,
    pub addr: SocketAddr,
    pub tls: bool,
}

impl ListenerInfo {
    /// The base URL a device would use for this listener.
    pub fn url(&self) -> String {
        format!("{}://{}", if self.tls { "https" } else { "http" }, self.addr)
    }
}

/// Marks which device a response belonged to, for the journal middleware.
#[derive(Debug, Clone)]
pub struct DeviceTag(pub Arc<str>);

/// Shared simulator state.
pub struct State {
    pub config: Arc<Config>,
    pub journal: Arc<Journal>,
    pub devices: Devices,
    pub tokens: Tokens,
    /// Listeners that accept device connections (filled in at start).
    pub listeners: parking_lot::RwLock<Vec<ListenerInfo>>,
    /// Cancelled when the simulator starts shutting down.
    pub shutdown: CancellationToken,
    /// Scenarios `serve` runs when their devices connect.
    pub scenarios: Arc<crate::scenario::service::Service>,
    /// Installed fault rules.
    pub faults: crate::faults::Faults,
    /// Whether each listener's accept loop runs (`/healthz`).
    pub listener_health: Arc<crate::server::ListenerHealth>,
}

impl State {
    pub fn new(config: Config, journal: Arc<Journal>) -> Arc<State> {
        State::with_scenarios(config, journal, Default::default())
    }

    /// A state whose scenario service holds `scenarios`.
    pub fn with_scenarios(
        config: Config,
        journal: Arc<Journal>,
        scenarios: crate::scenario::service::Service,
    ) -> Arc<State> {
        let config = Arc::new(config);
        let faults = crate::faults::Faults::new(config.seed);
        for rule in &config.faults {
            // validate() already accepted every rule.
            let _ = faults.add(rule.clone());
        }
        Arc::new(State {
            faults,
            devices: Devices::new(config.avs.directive_queue),
            tokens: Tokens::new(&config),
            journal,
            config,
            listeners: Default::default(),
            shutdown: CancellationToken::new(),
            scenarios: Arc::new(scenarios),
            listener_health: Default::default(),
        })
    }

    /// The listener bound to `port`, if any (for SetEndpoint targets).
    pub fn listener_on_port(&self, port: u16) -> Option<ListenerInfo> {
        self.listeners.read().iter().find(|l| l.addr.port() == port).cloned()
    }
}
