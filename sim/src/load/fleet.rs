//! The fleet: devices started at a steady rate with a bound on setups under
//! way, what became of each, and the events they send during the hold.

use super::LoadArgs;
use super::broadcast::Deliveries;
use super::device::{self, Failure, Shared};
use super::report::{ConnectReport, EventsReport, Failures};
use crate::clock;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::sync::{Semaphore, mpsc, watch};

/// Events waiting per device before the generator counts the next as
/// backlogged instead of queueing it (the device is still sending one).
const EVENT_QUEUE: usize = 4;

/// Tries to set one device up (a first one and two retries).
const SETUP_ATTEMPTS: usize = 3;

/// How often the event generator hands out events.
const EVENT_TICK: Duration = Duration::from_millis(10);

/// Every device of the run.
pub struct Fleet {
    pub shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    /// One event queue per held device.
    events: Vec<mpsc::Sender<()>>,
}

/// What one device's setup came to.
type Outcome = Result<mpsc::Sender<()>, Failure>;

impl Fleet {
    pub fn start(args: &LoadArgs) -> anyhow::Result<Fleet> {
        let tls = if crate::device::transport::uses_tls(&args.url, false)? {
            Some(crate::device::transport::client_config(args.ca.as_deref())?)
        } else {
            None
        };
        let (stop, stop_rx) = watch::channel(false);
        let deliveries = Arc::new(Deliveries::new(args.broadcasts, args.devices));
        let shared = Arc::new(Shared {
            url: args.url.clone(),
            tls,
            deliveries,
            stop: stop_rx,
            dropped: Default::default(),
            first_drop: Default::default(),
            retries: Default::default(),
            first_retry: Default::default(),
            events_ok: Default::default(),
            events_failed: Default::default(),
        });
        Ok(Fleet {
            shared,
            stop,
            events: Vec::new(),
        })
    }

    /// Start every device at `--rate`, at most `--concurrency` setting up at
    /// once; returns once each is held or has failed.
    pub async fn connect_all(&mut self, args: &LoadArgs) -> ConnectReport {
        let total = args.devices as usize;
        let (tx, mut rx) = mpsc::channel::<Outcome>(total);
        let start = clock::now();
        tokio::spawn(pace(args.clone(), self.shared.clone(), tx));
        let mut failures = Failures::default();
        let mut last_held = start;
        for _ in 0..total {
            match rx.recv().await {
                Some(Ok(events)) => {
                    self.events.push(events);
                    last_held = clock::now();
                }
                Some(Err(f)) => failures.add(&f),
                None => break,
            }
        }
        let seconds = last_held.saturating_duration_since(start).as_secs_f64();
        let held = self.events.len();
        ConnectReport {
            held,
            failed: failures.total,
            seconds_to_hold_all: seconds,
            devices_per_second: if seconds > 0.0 { held as f64 / seconds } else { 0.0 },
            failures,
            retries: self.shared.retries.load(Ordering::Relaxed),
            first_retry: self.shared.first_retry.lock().clone(),
        }
    }

    /// Devices currently held (connected and not dropped since).
    pub fn holding(&self) -> usize {
        let dropped = self.shared.dropped.load(Ordering::Relaxed);
        self.events
            .len()
            .saturating_sub(usize::try_from(dropped).unwrap_or(usize::MAX))
    }

    /// Hold for `--hold`, handing out `--events-per-second` round-robin.
    pub async fn hold(&self, args: &LoadArgs) -> EventsReport {
        let start = clock::now();
        let end = clock::deadline_in(args.hold);
        let mut ticker = tokio::time::interval(EVENT_TICK);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let (mut owed, mut asked, mut backlogged, mut next) = (0.0f64, 0u64, 0u64, 0usize);
        let mut last = start;
        while clock::now() < end {
            tokio::select! {
                _ = ticker.tick() => {}
                _ = tokio::time::sleep_until(end) => break,
            }
            if args.events_per_second <= 0.0 || self.events.is_empty() {
                continue;
            }
            let now = clock::now();
            owed += args.events_per_second * now.saturating_duration_since(last).as_secs_f64();
            last = now;
            while owed >= 1.0 {
                owed -= 1.0;
                asked = asked.saturating_add(1);
                if self.events[next].try_send(()).is_err() {
                    backlogged = backlogged.saturating_add(1);
                }
                next = (next + 1) % self.events.len();
            }
        }
        let seconds = clock::now().saturating_duration_since(start).as_secs_f64();
        let ok = self.shared.events_ok.load(Ordering::Relaxed);
        EventsReport {
            seconds,
            asked,
            ok,
            failed: self.shared.events_failed.load(Ordering::Relaxed),
            backlogged,
            ok_per_second: if seconds > 0.0 { ok as f64 / seconds } else { 0.0 },
        }
    }

    /// Devices dropped while held, and the first reason.
    pub fn dropped(&self) -> (u64, Option<String>) {
        (
            self.shared.dropped.load(Ordering::Relaxed),
            self.shared.first_drop.lock().clone(),
        )
    }

    /// Tell every device to stop (their connections close with the runtime).
    pub fn stop(&self) {
        let _ = self.stop.send(true);
    }
}

/// Set a device up, retrying transient failures as the SDK reconnects
/// (its backoff: 0.25 s, 1 s, ... ±50 %), at most `SETUP_ATTEMPTS` times.
async fn setup(shared: &Shared, token: String) -> Result<device::Connected, Failure> {
    let mut attempt = 0;
    loop {
        match device::connect(shared, token.clone()).await {
            Err(f) if f.transient && attempt + 1 < SETUP_ATTEMPTS => {
                shared.retries.fetch_add(1, Ordering::Relaxed);
                shared
                    .first_retry
                    .lock()
                    .get_or_insert_with(|| format!("{}: {}", f.step, f.reason));
                tokio::time::sleep(crate::device::backoff(attempt)).await;
                attempt += 1;
            }
            outcome => return outcome,
        }
    }
}

/// Start device n at `start + (n-1)/rate`, each setup holding a permit.
async fn pace(args: LoadArgs, shared: Arc<Shared>, tx: mpsc::Sender<Outcome>) {
    let permits = Arc::new(Semaphore::new(args.concurrency as usize));
    let start = clock::now();
    for n in 1..=args.devices {
        let due = start + Duration::from_secs_f64(f64::from(n - 1) / args.rate);
        tokio::time::sleep_until(due).await;
        let Ok(permit) = permits.clone().acquire_owned().await else {
            return;
        };
        let (shared, tx, token, limit) = (shared.clone(), tx.clone(), args.token(n), args.setup_timeout);
        tokio::spawn(async move {
            let setup = tokio::time::timeout(limit, setup(&shared, token)).await;
            drop(permit);
            let connected = match setup {
                Ok(Ok(c)) => c,
                Ok(Err(f)) => return drop(tx.send(Err(f)).await),
                Err(_) => {
                    let f = Failure {
                        step: "setup",
                        reason: format!("not done within {limit:?}"),
                        transient: true,
                    };
                    return drop(tx.send(Err(f)).await);
                }
            };
            let (events, events_rx) = mpsc::channel(EVENT_QUEUE);
            let _ = tx.send(Ok(events)).await;
            drop(tx);
            device::hold(shared, connected, events_rx).await;
        });
    }
}
