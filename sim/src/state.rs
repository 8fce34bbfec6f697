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
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Bounds of the sweep period: often enough for short test timeouts, rare
/// enough to cost nothing.
const SWEEP_MIN: Duration = Duration::from_millis(50);
const SWEEP_MAX: Duration = Duration::from_secs(60);

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
    pub listener_health: Arc<crate::health::ListenerHealth>,
    /// The smart home face: registry, gateway tokens, pacing.
    pub smarthome: crate::smarthome::SmartHome,
    /// The SNS face: topics and subscriptions.
    pub sns: crate::sns::Sns,
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
        let state = Arc::new(State {
            faults,
            devices: Devices::new(config.avs.directive_queue),
            tokens: Tokens::new(&config),
            smarthome: crate::smarthome::SmartHome::new(&config),
            sns: crate::sns::Sns::new(&config.sns, &[&config.asp.topic]),
            journal,
            config,
            listeners: Default::default(),
            shutdown: CancellationToken::new(),
            scenarios: Arc::new(scenarios),
            listener_health: Default::default(),
        });
        crate::asp::init(&state);
        state
    }

    /// Forget what has outlived its use: idle devices nothing holds, expired
    /// tokens and code pairs. Each forgotten device, and each sweep that
    /// forgot tokens, is journaled (`kind: evicted`).
    pub fn sweep(&self) {
        use crate::journal::{Face, Kind, Record};
        let idle = self.config.avs.device_idle_timeout;
        if !idle.is_zero() {
            for id in self.devices.sweep(idle) {
                let why = format!(
                    "device forgotten after {} without a connection (avs.device_idle_timeout)",
                    crate::duration::format(idle)
                );
                self.journal
                    .record(Record::new(Face::Avs, Kind::Evicted, why).device(&*id));
            }
        }
        for arn in self.sns.sweep() {
            let why = format!("subscription {arn} deleted: not confirmed within its token's life (2 days)");
            self.journal
                .record(Record::new(Face::Sns, Kind::Evicted, why).body(serde_json::json!({"subscription": arn})));
        }
        let swept = self.tokens.sweep();
        if swept.total() > 0 {
            let why = format!(
                "forgot {} expired access tokens, {} refresh tokens, {} code pairs",
                swept.access, swept.refresh, swept.codepairs
            );
            let body =
                serde_json::json!({"access": swept.access, "refresh": swept.refresh, "codepairs": swept.codepairs});
            self.journal
                .record(Record::new(Face::Lwa, Kind::Evicted, why).body(body));
        }
    }

    /// How often `sweep` runs: a quarter of the shortest timeout it enforces,
    /// within [50 ms, 60 s], so nothing outlives its timeout by much more
    /// than a quarter.
    pub fn sweep_period(&self) -> Duration {
        let lwa = &self.config.lwa;
        [
            self.config.avs.device_idle_timeout,
            Duration::from_secs(lwa.expires_in),
            Duration::from_secs(lwa.refresh_expires_in),
            Duration::from_secs(lwa.codepair_expires_in),
        ]
        .into_iter()
        .filter(|d| !d.is_zero())
        .min()
        .map_or(SWEEP_MAX, |d| d / 4)
        .clamp(SWEEP_MIN, SWEEP_MAX)
    }

    /// Run `sweep` every `sweep_period` until shutdown. A periodic task, not a
    /// sweep on insert: devices go idle without anything being inserted, and
    /// the control API should stop listing them on time whether or not new
    /// devices arrive; request paths never pay for a sweep.
    pub async fn sweep_periodically(self: Arc<State>) {
        let mut tick = tokio::time::interval(self.sweep_period());
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => self.sweep(),
                _ = self.shutdown.cancelled() => return,
            }
        }
    }

    /// The listener bound to `port`, if any (for SetEndpoint targets).
    pub fn listener_on_port(&self, port: u16) -> Option<ListenerInfo> {
        self.listeners.read().iter().find(|l| l.addr.port() == port).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_sweep_deletes_unconfirmed_subscriptions_and_says_so() {
        let state = State::new(Config::default(), Arc::new(Journal::new(100)));
        let topic = state.sns.create_topic("t", Default::default()).unwrap();
        let sub = state
            .sns
            .subscribe(&topic, "http", "http://127.0.0.1:9/", Default::default())
            .unwrap();
        state.sweep();
        assert_eq!(state.sns.subscriptions(None).len(), 1, "still within its token's life");
        tokio::time::advance(crate::sns::TOKEN_LIFETIME + Duration::from_secs(1)).await;
        state.sweep();
        assert!(state.sns.subscriptions(None).is_empty());
        let q = crate::journal::Query {
            face: Some(crate::journal::Face::Sns),
            ..Default::default()
        };
        let entries = state.journal.query(&q);
        let gone = entries
            .iter()
            .find(|e| e.kind == crate::journal::Kind::Evicted)
            .unwrap();
        assert_eq!(gone.body["subscription"], sub.arn);
    }

    #[test]
    fn a_declared_subscription_may_name_the_asp_topic() {
        let config = Config::from_toml(
            "[[sns.subscriptions]]\ntopic = 'asp-events'\nendpoint = 'http://127.0.0.1:9/'\n",
            "t",
        )
        .unwrap();
        config.validate().unwrap();
        let state = State::new(config, Arc::new(Journal::new(100)));
        let subs = state.sns.subscriptions(None);
        assert_eq!(subs.len(), 1);
        assert!(subs[0].topic_arn.ends_with(":asp-events"));
    }
}
