//! Fault injection: rules of `when` (a matcher) + `then` (an action) +
//! `times` (how often), each with an id.
//!
//! Rules come from the config's `[[faults]]` (a chaos profile), the control
//! API and scenario `fault` steps; all live in one `Faults` set. A face asks
//! `decide` at each decision point (a request's start; for events, once the
//! event's name is known) and carries out the action itself, because only
//! it can reset its stream or answer in its protocol's error format. Every
//! firing is journaled with the rule id. Probabilities draw from a per-rule
//! generator seeded from the rule's seed (or the config's), so the same
//! traffic gives the same fire pattern on every run.
//!
//! Every number in a rule is range-checked by `Rule::validate` (one place,
//! called by all three doors; ranges in `rule::limits`), and the samples a
//! firing needs (delays, jitter) are drawn after the rules lock is released,
//! from a seed taken under it, clamped so no sample can overflow a `Duration`.

pub mod io;
pub mod rule;

use crate::clock::{self, Instant};
use crate::journal::{Face, Kind, Record};
use parking_lot::Mutex;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
pub use rule::{Action, Rule, When};
use serde::Serialize;
use std::time::Duration;

/// What a decision point knows about a request.
#[derive(Debug, Clone, Copy)]
pub struct Point<'a> {
    pub face: Face,
    pub device: Option<&'a str>,
    pub path: &'a str,
    /// `Namespace.Name` once an event's metadata is read; `None` at the request's start.
    pub event: Option<&'a str>,
    /// The connection's sequence number among this device's connections (1-based).
    pub connection: Option<u64>,
    /// The stream's sequence number on its connection (1-based).
    pub stream: Option<u32>,
}

/// A rule as installed, with its counters.
struct Active {
    rule: Rule,
    added: Instant,
    /// Requests that matched `when` (before `nth` and probability).
    seen: u32,
    fired: u32,
    rng: StdRng,
    /// Its place in the install order: it only sees requests whose ticket
    /// (taken when the request became visible) is at least this.
    since: u64,
}

/// A rule as listed by the control API.
#[derive(Debug, Clone, Serialize)]
pub struct Listed {
    #[serde(flatten)]
    pub rule: Rule,
    pub seen: u32,
    pub fired: u32,
}

/// A fired fault: the rule id and what to do.
#[derive(Debug, Clone, PartialEq)]
pub struct Fired {
    pub rule: String,
    pub action: Action,
    /// Drawn from the rule's seeded generator, for randomness the action
    /// needs later (latency jitter), so a run replays exactly.
    pub seed: u64,
}

/// Why a rule could not be added.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FaultError {
    #[error("a fault rule with id {0:?} exists already")]
    Duplicate(String),
    #[error("{0}")]
    Invalid(String),
}

/// Every installed rule.
pub struct Faults {
    rules: Mutex<Vec<Active>>,
    seed: u64,
    next_id: std::sync::atomic::AtomicU64,
    /// Orders rule installs against requests (see `ticket`).
    order: std::sync::atomic::AtomicU64,
    /// How many rules are installed, kept in step under the lock: most
    /// requests meet no rule at all, and then take no lock (see `decide_at`).
    installed: std::sync::atomic::AtomicUsize,
}

impl Faults {
    /// An empty set; `seed` is used by rules without their own.
    pub fn new(seed: u64) -> Faults {
        Faults {
            rules: Mutex::new(Vec::new()),
            seed,
            next_id: std::sync::atomic::AtomicU64::new(1),
            order: std::sync::atomic::AtomicU64::new(0),
            installed: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    /// A request's place in the install order. Take it the moment the
    /// request becomes visible (an event: just before its metadata is
    /// journaled) and decide with `fire_at`: a rule installed after that
    /// moment does not apply, however long the decision takes. Without it
    /// a scenario that sees an event and then installs a rule could fault
    /// that very event.
    pub fn ticket(&self) -> u64 {
        self.order.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Install a rule (an id is made up when it has none); returns the id.
    pub fn add(&self, mut rule: Rule) -> Result<String, FaultError> {
        rule.validate().map_err(FaultError::Invalid)?;
        let mut rules = self.rules.lock();
        let id = match rule.id.take() {
            Some(id) => id,
            None => format!(
                "fault-{}",
                self.next_id.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            ),
        };
        if rules.iter().any(|a| a.rule.id.as_deref() == Some(id.as_str())) {
            return Err(FaultError::Duplicate(id));
        }
        let seed = rule.when.seed.unwrap_or(self.seed) ^ fnv(&id);
        rule.id = Some(id.clone());
        // Counted before the rule's place in the order is taken: a request
        // whose ticket is at or after that place then sees the count.
        self.installed
            .store(rules.len().saturating_add(1), std::sync::atomic::Ordering::SeqCst);
        let since = self
            .order
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
            .saturating_add(1);
        rules.push(Active {
            rule,
            added: clock::now(),
            seen: 0,
            fired: 0,
            rng: StdRng::seed_from_u64(seed),
            since,
        });
        Ok(id)
    }

    /// Whether no rule is installed (then nothing can fire; callers skip
    /// the work of describing the request to `fire`).
    pub fn none_installed(&self) -> bool {
        self.installed.load(std::sync::atomic::Ordering::SeqCst) == 0
    }

    /// Remove a rule; whether it existed.
    pub fn remove(&self, id: &str) -> bool {
        let mut rules = self.rules.lock();
        let before = rules.len();
        rules.retain(|a| a.rule.id.as_deref() != Some(id));
        self.installed.store(rules.len(), std::sync::atomic::Ordering::SeqCst);
        rules.len() != before
    }

    pub fn list(&self) -> Vec<Listed> {
        let rules = self.rules.lock();
        rules
            .iter()
            .map(|a| Listed {
                rule: a.rule.clone(),
                seen: a.seen,
                fired: a.fired,
            })
            .collect()
    }

    /// The first rule that fires for `point`, if any (its counters advance).
    pub fn decide(&self, point: &Point<'_>) -> Option<Fired> {
        self.decide_at(point, self.ticket())
    }

    /// `decide` for a request that became visible at `ticket` (see `ticket`).
    pub fn decide_at(&self, point: &Point<'_>, ticket: u64) -> Option<Fired> {
        // No rule installed: nothing can fire, and a rule installed from now
        // on comes after `ticket` anyway (its `since` is past the ticket).
        if self.installed.load(std::sync::atomic::Ordering::SeqCst) == 0 {
            return None;
        }
        let now = clock::now();
        // Only matching, counters and one seed happen under the lock (none of
        // it can panic); the action's samples are drawn after it is released.
        let (rule, action, seed) = {
            let mut rules = self.rules.lock();
            let mut fired = None;
            for a in rules.iter_mut() {
                // A rule installed after the request became visible never sees it.
                if a.since > ticket || !a.rule.when.matches(point) || !in_window(&a.rule.when, a.added, now) {
                    continue;
                }
                if a.rule.times.is_some_and(|t| a.fired >= t) {
                    continue;
                }
                a.seen = a.seen.saturating_add(1);
                if a.rule.when.nth.is_some_and(|n| a.seen != n) {
                    continue;
                }
                if let Some(p) = a.rule.when.probability {
                    if a.rng.random::<f64>() >= p {
                        continue;
                    }
                }
                a.fired = a.fired.saturating_add(1);
                fired = Some((
                    a.rule.id.clone().unwrap_or_default(),
                    a.rule.then.clone(),
                    a.rng.random(),
                ));
                break;
            }
            fired?
        };
        Some(resolve(rule, action, seed))
    }

    /// `decide`, and journal the firing.
    pub fn fire(&self, journal: &crate::journal::Journal, point: &Point<'_>, connection: Option<u64>) -> Option<Fired> {
        self.fire_at(journal, point, connection, self.ticket())
    }

    /// `fire` for a request that became visible at `ticket` (see `ticket`).
    pub fn fire_at(
        &self,
        journal: &crate::journal::Journal,
        point: &Point<'_>,
        connection: Option<u64>,
        ticket: u64,
    ) -> Option<Fired> {
        let fired = self.decide_at(point, ticket)?;
        let mut record = Record::new(
            point.face,
            Kind::Fault,
            format!("fault {} fired: {}", fired.rule, fired.action.describe()),
        )
        .maybe_device(point.device)
        .body(
            serde_json::json!({"rule": fired.rule, "action": fired.action, "path": point.path, "event": point.event}),
        );
        if let Some(c) = connection {
            record = record.connection(c);
        }
        journal.record(record);
        Some(fired)
    }
}

fn in_window(when: &When, added: Instant, now: Instant) -> bool {
    let age = now.duration_since(added);
    when.after.is_none_or(|d| age >= d.0) && when.until.is_none_or(|d| age < d.0)
}

fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100000001b3)
    })
}

/// A fired rule with its random parts drawn: a `delay` becomes a fixed one,
/// sampled from a generator seeded by the firing's own seed, so a run
/// replays exactly. Runs outside the rules lock.
fn resolve(rule: String, action: Action, seed: u64) -> Fired {
    let mut rng = StdRng::seed_from_u64(seed);
    let action = match action.delay() {
        Some(d) => Action::Delay {
            ms: Some(clock::as_ms(sample_delay_with(&d, &mut rng))),
            min_ms: None,
            max_ms: None,
            median_ms: None,
            sigma: None,
        },
        None => action,
    };
    Fired {
        rule,
        action,
        seed: rng.random(),
    }
}

/// Longest delay a sample can give, whatever the parameters.
const MAX_DELAY: Duration = Duration::from_millis(rule::limits::MAX_MS);

/// Sample a delay action's duration.
pub fn sample_delay(d: &rule::Delay) -> Duration {
    sample_delay_with(d, &mut rand::rng())
}

/// Sample a delay from `rng` (a rule's seeded generator, for reproducible runs).
pub fn sample_delay_with(d: &rule::Delay, rng: &mut impl Rng) -> Duration {
    match d {
        rule::Delay::Fixed { ms } => Duration::from_millis(*ms).min(MAX_DELAY),
        rule::Delay::Uniform { min_ms, max_ms } => {
            Duration::from_millis(rng.random_range(*min_ms..=(*max_ms).max(*min_ms))).min(MAX_DELAY)
        }
        rule::Delay::LogNormal { median_ms, sigma } => {
            // Box–Muller: a standard normal from two uniforms.
            let (u1, u2): (f64, f64) = (rng.random::<f64>().max(f64::MIN_POSITIVE), rng.random());
            let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
            // Validation bounds sigma, but a sample must never panic: clamp
            // whatever the product is (NaN and negatives give zero).
            let secs = (*median_ms as f64 / 1000.0) * (sigma * z).exp();
            Duration::try_from_secs_f64(secs.clamp(0.0, MAX_DELAY.as_secs_f64())).unwrap_or(Duration::ZERO)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(toml_text: &str) -> Rule {
        toml::from_str(toml_text).unwrap()
    }

    fn point(device: &str) -> Point<'_> {
        Point {
            face: Face::Avs,
            device: Some(device),
            path: "/v20160207/events",
            event: None,
            connection: Some(1),
            stream: None,
        }
    }

    #[test]
    fn matchers_times_and_nth() {
        let f = Faults::new(0);
        f.add(rule(
            "id = 'third'\n[when]\nnth = 3\n[then]\naction = 'status'\nstatus = 503",
        ))
        .unwrap();
        let fired: Vec<bool> = (0..5).map(|_| f.decide(&point("d")).is_some()).collect();
        assert_eq!(fired, vec![false, false, true, false, false]);
        let f = Faults::new(0);
        f.add(rule(
            "times = 2\n[when]\ndevice = 'a'\npath = '/v20160207/events'\n[then]\naction = 'status'\nstatus = 429",
        ))
        .unwrap();
        assert!(f.decide(&point("b")).is_none());
        assert!(f.decide(&point("a")).is_some());
        assert!(f.decide(&point("a")).is_some());
        assert!(f.decide(&point("a")).is_none(), "times bounds the firings");
        assert_eq!(f.list()[0].fired, 2);
        let id = f.list()[0].rule.id.clone().unwrap();
        assert!(f.remove(&id));
        assert!(f.list().is_empty());
    }

    /// Skill invocations only see rules written for them, and those rules
    /// only see skill invocations.
    #[test]
    fn skill_rules_and_other_rules_stay_apart() {
        let f = Faults::new(0);
        f.add(rule("times = 1\n[then]\naction = 'status'\nstatus = 503"))
            .unwrap();
        let skill = Point {
            face: Face::Skill,
            device: Some("u1"),
            path: "lights",
            event: None,
            connection: None,
            stream: None,
        };
        assert!(
            f.decide(&skill).is_none(),
            "a rule without a face is not spent on a skill"
        );
        assert_eq!(f.list()[0].seen, 0);
        assert!(f.decide(&point("d")).is_some());
        let f = Faults::new(0);
        f.add(rule("[when]\nface = 'skill'\n[then]\naction = 'hold'")).unwrap();
        assert!(f.decide(&point("d")).is_none());
        assert!(f.decide(&skill).is_some());
    }

    /// A rule installed after a request became visible (its ticket) does not
    /// apply to it, even when the decision comes later; later requests see it.
    #[test]
    fn a_rule_only_sees_requests_after_its_install() {
        let f = Faults::new(0);
        let mut p = point("d");
        p.event = Some("System.SynchronizeState");
        let before = f.ticket();
        f.add(rule(
            "[when]\nevent = 'System.SynchronizeState'\n[then]\naction = 'status'\nstatus = 503",
        ))
        .unwrap();
        assert!(f.decide_at(&p, before).is_none(), "visible before the install");
        assert_eq!(f.list()[0].seen, 0, "not even counted");
        let after = f.ticket();
        assert!(after > before);
        assert!(f.decide_at(&p, after).is_some(), "visible after the install");
        // Without a ticket, the decision itself is the moment.
        f.add(rule("[then]\naction = 'hold'")).unwrap();
        assert!(f.decide(&point("d")).is_some());
    }

    #[test]
    fn the_nth_stream_of_a_connection() {
        let f = Faults::new(0);
        f.add(rule("[when]\nstream = 2\n[then]\naction = 'status'\nstatus = 503"))
            .unwrap();
        let at = |n: u32| Point {
            stream: Some(n),
            ..point("d")
        };
        assert!(f.decide(&at(1)).is_none());
        assert!(f.decide(&at(2)).is_some());
        assert!(f.decide(&at(3)).is_none());
    }

    #[test]
    fn event_rules_wait_for_the_event_name() {
        let f = Faults::new(0);
        f.add(rule(
            "[when]\nevent = 'System.SoftwareInfo'\n[then]\naction = 'status'\nstatus = 500",
        ))
        .unwrap();
        assert!(f.decide(&point("d")).is_none(), "no event name yet");
        let mut p = point("d");
        p.event = Some("System.SynchronizeState");
        assert!(f.decide(&p).is_none());
        p.event = Some("System.SoftwareInfo");
        assert_eq!(
            f.decide(&p).unwrap().action,
            Action::Status {
                status: 500,
                error: None,
                body: None
            }
        );
    }

    #[test]
    fn a_seed_gives_the_same_pattern_every_run() {
        let pattern = |seed: u64| {
            let f = Faults::new(seed);
            f.add(rule(
                "id = 'chaos'\n[when]\nprobability = 0.3\n[then]\naction = 'status'\nstatus = 503",
            ))
            .unwrap();
            (0..200).map(|_| f.decide(&point("d")).is_some()).collect::<Vec<_>>()
        };
        assert_eq!(pattern(7), pattern(7));
        assert_ne!(pattern(7), pattern(8));
        let hits = pattern(7).iter().filter(|b| **b).count();
        assert!((30..90).contains(&hits), "{hits} of 200 at p=0.3");
    }

    #[tokio::test(start_paused = true)]
    async fn time_windows() {
        let f = Faults::new(0);
        f.add(rule(
            "[when]\nafter = '10s'\nuntil = '20s'\n[then]\naction = 'status'\nstatus = 503",
        ))
        .unwrap();
        assert!(f.decide(&point("d")).is_none());
        tokio::time::advance(Duration::from_secs(11)).await;
        assert!(f.decide(&point("d")).is_some());
        tokio::time::advance(Duration::from_secs(10)).await;
        assert!(f.decide(&point("d")).is_none());
    }

    #[test]
    fn seeded_delays_replay() {
        let draws = || {
            let f = Faults::new(3);
            f.add(rule(
                "id = 'slow'\n[then]\naction = 'delay'\nmedian_ms = 100\nsigma = 0.8",
            ))
            .unwrap();
            (0..20)
                .map(|_| f.decide(&point("d")).unwrap().action)
                .collect::<Vec<_>>()
        };
        assert_eq!(draws(), draws());
    }

    #[test]
    fn delays_follow_their_distribution() {
        assert_eq!(
            sample_delay(&rule::Delay::Fixed { ms: 250 }),
            Duration::from_millis(250)
        );
        for _ in 0..100 {
            let d = sample_delay(&rule::Delay::Uniform { min_ms: 10, max_ms: 20 });
            assert!(d >= Duration::from_millis(10) && d <= Duration::from_millis(20));
        }
        let mut samples: Vec<Duration> = (0..2001)
            .map(|_| {
                sample_delay(&rule::Delay::LogNormal {
                    median_ms: 100,
                    sigma: 0.5,
                })
            })
            .collect();
        samples.sort();
        let median = samples[1000].as_millis();
        assert!((70..140).contains(&median), "log-normal median {median} ms");
    }

    #[test]
    fn samples_are_clamped_whatever_the_parameters() {
        // Parameters validation refuses still must not panic here (the old
        // code panicked in Duration::from_secs_f64 while holding the rules lock).
        for sigma in [1e308, f64::INFINITY, f64::NAN, -1e308] {
            for _ in 0..50 {
                let d = sample_delay(&rule::Delay::LogNormal {
                    median_ms: u64::MAX,
                    sigma,
                });
                assert!(d <= MAX_DELAY, "{d:?}");
            }
        }
        assert_eq!(sample_delay(&rule::Delay::Fixed { ms: u64::MAX }), MAX_DELAY);
    }
}
