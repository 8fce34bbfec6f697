//! Runs a scenario against a live simulator.
//!
//! Steps act through the same state the control API uses (pushes go to a
//! device's downchannel queue) and observe the journal: an expectation
//! waits on the journal's change signal with a deadline on tokio's clock,
//! never by polling or sleeping. Each journal entry satisfies at most one
//! expectation, across every scenario run on the simulator (so a later run
//! never re-uses what an earlier one matched). The first failing step ends
//! the scenario.

mod smarthome;
pub(crate) mod sns;

use super::matcher::{self, Want};
use super::model::*;
use super::template::{Vars, toml_to_json};
use crate::clock::{self, Instant};
use crate::journal::{Entry, Kind, Query};
use crate::state::State;
use parking_lot::Mutex;
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

/// Default `within` of await_connect, expect and expect_conformance.
pub const DEFAULT_WITHIN: Duration = Duration::from_secs(5);
/// Default bound of `repeat ... until`.
pub const DEFAULT_MAX_ROUNDS: u32 = 100;

/// The outcome of one step.
#[derive(Debug, Clone, Serialize)]
pub struct StepResult {
    /// Position, e.g. `3` or `5.2` for a nested step.
    pub path: String,
    pub kind: &'static str,
    pub label: String,
    pub passed: bool,
    /// Milliseconds since the scenario started.
    pub started_ms: u64,
    pub duration_ms: u64,
    /// Journal entries the step produced or matched.
    pub journal_ids: Vec<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
}

/// The outcome of a scenario.
#[derive(Debug, Clone, Serialize)]
pub struct ScenarioResult {
    pub name: String,
    pub file: String,
    pub passed: bool,
    pub duration_ms: u64,
    pub steps: Vec<StepResult>,
    /// The first failure, with its near-miss report.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
}

type Progress = Arc<dyn Fn(&StepResult) + std::marker::Send + Sync>;
type StepFuture<'a> = Pin<Box<dyn Future<Output = Result<(), ()>> + std::marker::Send + 'a>>;

/// What a passed leaf step produced.
struct Done {
    /// Journal entries it produced or matched.
    ids: Vec<u64>,
    /// The cut-off for `after = <its id>`, when it is not "the journal when
    /// the step was decided": a `send` or `fault` cuts just before it acted,
    /// so a fast device's answer is never skipped; an `expect` at its match;
    /// an `await_connect` at the downchannel's opening.
    mark: Option<u64>,
}

impl Done {
    fn ids(ids: Vec<u64>) -> Done {
        Done { ids, mark: None }
    }
}

struct Shared {
    vars: Vars,
    last_match: Option<Arc<Entry>>,
    by_id: HashMap<String, Arc<Entry>>,
    awaited: HashSet<String>,

    /// Fault rules this run installed; removed when it ends.
    faults: Vec<String>,
    /// Per step `id`, the journal position `after = <id>` cuts at (see `Done::mark`).
    marks: HashMap<String, u64>,
    /// Per device, the connection its latest `await_connect` saw.
    connections: HashMap<String, u64>,
    /// Per device, the downchannel opening its latest `await_connect` saw:
    /// the next one needs a newer connection.
    opened: HashMap<String, u64>,
    results: Vec<StepResult>,
}

/// Runs one scenario.
pub struct Runner {
    state: Arc<State>,
    actors: HashMap<String, String>,
    started: Instant,
    /// Journal entries up to this id are before the scenario.
    since: u64,
    shared: Mutex<Shared>,
    progress: Progress,
}

/// Run `scenario` on `state`, considering journal entries after `since`.
pub async fn run(state: Arc<State>, scenario: &Scenario, since: u64, progress: Progress) -> ScenarioResult {
    let mut vars = Vars::default();
    for l in state.listeners.read().iter() {
        let key = match &*l.name {
            "avs" => "avs_url".to_string(),
            "plain" => "plain_url".to_string(),
            _ => format!("region.{}.url", l.name),
        };
        vars.set(&key, json!(l.url()));
    }
    let actors: HashMap<String, String> = scenario
        .devices
        .iter()
        .map(|a| (a.name.clone(), a.device_id()))
        .collect();
    for (name, id) in &actors {
        vars.set(&format!("device.{name}.id"), json!(id));
    }
    let runner = Runner {
        state,
        actors,
        started: clock::now(),
        since,
        shared: Mutex::new(Shared {
            vars,
            last_match: None,
            by_id: HashMap::new(),
            awaited: HashSet::new(),

            faults: Vec::new(),
            marks: HashMap::new(),
            connections: HashMap::new(),
            opened: HashMap::new(),
            results: Vec::new(),
        }),
        progress,
    };
    let outcome = runner.steps(&scenario.steps, "").await;
    let shared = runner.shared.into_inner();
    for id in &shared.faults {
        runner.state.faults.remove(id);
    }
    let failure = shared
        .results
        .iter()
        .find(|r| !r.passed)
        .and_then(|r| r.failure.clone());
    ScenarioResult {
        name: scenario.name.clone(),
        file: scenario.file.clone(),
        passed: outcome.is_ok(),
        duration_ms: clock::as_ms(runner.started.elapsed()),
        steps: shared.results,
        failure,
    }
}

/// Why a step failed, and the journal ids that show it.
struct Failed {
    text: String,
    ids: Vec<u64>,
}

fn failed(text: impl Into<String>) -> Failed {
    Failed {
        text: text.into(),
        ids: Vec::new(),
    }
}

impl Runner {
    fn shared(&self) -> parking_lot::MutexGuard<'_, Shared> {
        self.shared.lock()
    }

    fn device(&self, actor: &str) -> String {
        self.actors.get(actor).cloned().unwrap_or_else(|| actor.to_string())
    }

    fn steps<'a>(&'a self, steps: &'a [Step], prefix: &'a str) -> StepFuture<'a> {
        Box::pin(async move {
            for (i, step) in steps.iter().enumerate() {
                self.step(step, format!("{prefix}{}", i + 1)).await?;
            }
            Ok(())
        })
    }

    fn step<'a>(&'a self, step: &'a Step, path: String) -> StepFuture<'a> {
        Box::pin(async move {
            let begun = clock::now();
            let start_id = self.state.journal.latest();
            let outcome = match &step.action {
                Action::Repeat(r, inner) => self.repeat(r, inner, &path, start_id).await.map(Done::ids),
                Action::Parallel(inner) => self.parallel(inner, &path).await.map(Done::ids),
                other => self.leaf(other, step.id.as_deref()).await,
            };
            // Taken as soon as the outcome is known, before any bookkeeping.
            let decided = self.state.journal.latest();
            let (passed, ids, mark, failure) = match outcome {
                Ok(done) => (true, done.ids, done.mark.unwrap_or(decided), None),
                Err(f) => (false, f.ids, decided, Some(f.text)),
            };
            let result = StepResult {
                path,
                kind: step.action.kind(),
                label: step.name.clone().unwrap_or_else(|| self.label(&step.action)),
                passed,
                started_ms: clock::as_ms(begun.duration_since(self.started)),
                duration_ms: clock::as_ms(begun.elapsed()),
                journal_ids: ids,
                failure,
            };
            (self.progress)(&result);
            let mut shared = self.shared();
            if let Some(id) = &step.id {
                shared.marks.insert(id.clone(), mark);
            }
            shared.results.push(result);
            drop(shared);
            if passed { Ok(()) } else { Err(()) }
        })
    }

    fn label(&self, action: &Action) -> String {
        match action {
            Action::AwaitConnect(a) if a.synchronized => {
                format!("{} connects and synchronizes", a.device.get_ref())
            }
            Action::AwaitConnect(a) => format!("{} connects", a.device.get_ref()),
            Action::Send(s) => {
                let what = s.directive.as_ref().map(|d| d.get_ref().clone()).unwrap_or_else(|| {
                    if s.raw.is_some() {
                        "raw bytes".into()
                    } else {
                        "a directive".into()
                    }
                });
                format!("send {what} to {}", s.device.get_ref())
            }
            Action::Expect(e) => {
                let what = e.event.clone().or_else(|| e.request.clone()).unwrap_or_default();
                let prefix = if e.never { "never " } else { "" };
                format!("{prefix}{what} from {}", e.device.get_ref())
            }
            Action::Capture(c) => format!("capture {} = {}", c.var.get_ref(), c.pointer),
            Action::Wait(w) => format!("wait {}", crate::duration::format(w.duration.0)),
            Action::Repeat(r, _) => match r.times {
                Some(n) => format!("repeat {n} times"),
                None => "repeat until".into(),
            },
            Action::Parallel(_) => "in parallel".into(),
            Action::Fault(f) => format!("fault: {}{}", f.then.describe(), if f.now { " now" } else { "" }),
            Action::ClearFault(c) => format!("clear fault {}", c.fault.get_ref()),
            Action::Discover(d) => format!("discover the devices of {}", d.user),
            Action::SkillDirective(d) => format!(
                "{} to {}{}",
                d.directive,
                d.user,
                d.endpoint.as_ref().map(|e| format!("'s {e}")).unwrap_or_default()
            ),
            Action::ExpectGatewayEvent(e) => format!(
                "{} from {}'s skill at the gateway",
                e.event.as_deref().unwrap_or("an event"),
                e.user
            ),
            Action::ExpectRegistry(r) if r.present == Some(false) => {
                format!("Alexa no longer knows {} of {}", r.endpoint, r.user)
            }
            Action::ExpectRegistry(r) => format!("Alexa knows {} of {}", r.endpoint, r.user),
            a @ (Action::PublishEvent(_)
            | Action::ExpectDelivery(_)
            | Action::ExpectSubscriptionConfirmed(_)
            | Action::ExpectDeadLetter(_)
            | Action::ActivateSubscription(_)
            | Action::RunAutomation(_)) => sns::label(a),
            Action::ExpectConformance(c) => format!(
                "{} of {} is {}",
                c.rule.get_ref(),
                c.device.get_ref(),
                c.verdict.as_ref().map_or("pass", |v| v.get_ref().as_str())
            ),
        }
    }

    async fn leaf(&self, action: &Action, id: Option<&str>) -> Result<Done, Failed> {
        match action {
            Action::AwaitConnect(a) => self.await_connect(a).await,
            Action::Send(s) => self.send(s).await,
            Action::Expect(e) => self.expect(e, id).await,
            Action::Capture(c) => self.capture(c).map(Done::ids),
            Action::Wait(w) => {
                tokio::time::sleep(w.duration.0).await;
                Ok(Done::ids(Vec::new()))
            }
            Action::ExpectConformance(c) => self.conformance(c).await.map(Done::ids),
            Action::Fault(f) => self.fault(f, id),
            Action::ClearFault(c) => {
                let fault = c.fault.get_ref();
                if self.state.faults.remove(fault) {
                    Ok(Done::ids(Vec::new()))
                } else {
                    Err(failed(format!("no fault rule {fault:?} to clear")))
                }
            }
            Action::Discover(d) => self.discover(d).await,
            Action::SkillDirective(d) => self.skill_directive(d).await,
            Action::ExpectGatewayEvent(e) => self.expect_gateway_event(e).await,
            Action::ExpectRegistry(r) => self.expect_registry(r).await,
            a @ (Action::PublishEvent(_)
            | Action::ExpectDelivery(_)
            | Action::ExpectSubscriptionConfirmed(_)
            | Action::ExpectDeadLetter(_)
            | Action::ActivateSubscription(_)
            | Action::RunAutomation(_)) => self.sns_step(a).await,
            Action::Repeat(..) | Action::Parallel(_) => unreachable!("handled in step"),
        }
    }

    /// Entries of `device` after the scenario start not yet used by a step.
    fn fresh(&self, device: &str) -> Vec<Arc<Entry>> {
        let q = Query {
            device: Some(device.to_string()),
            since: Some(self.since),
            limit: Some(usize::MAX),
            face: None,
        };
        let claimed = &self.state.scenarios;
        self.state
            .journal
            .query(&q)
            .into_iter()
            .filter(|e| !claimed.is_claimed(e.id))
            .collect()
    }

    /// Wait until `check` returns `Some`, re-checking on every journal change.
    async fn until<T>(&self, deadline: Instant, mut check: impl FnMut() -> Option<T>) -> Option<T> {
        let mut changes = self.state.journal.subscribe();
        loop {
            if let Some(found) = check() {
                return Some(found);
            }
            if tokio::time::timeout_at(deadline, changes.changed()).await.is_err() {
                return check();
            }
        }
    }

    async fn await_connect(&self, a: &AwaitConnect) -> Result<Done, Failed> {
        let device = self.device(a.device.get_ref());
        let deadline = clock::deadline_in(a.within.map_or(DEFAULT_WITHIN, |d| d.0));
        let (first, floor) = {
            let mut shared = self.shared();
            let first = shared.awaited.insert(device.clone());
            (first, shared.opened.get(&device).copied().unwrap_or(0))
        };
        let region_ok = |e: &Entry| {
            a.region
                .as_ref()
                .is_none_or(|r| e.body["region"].as_str() == Some(r.as_str()))
        };
        // With `synchronized`, an opening counts once its connection's SynchronizeState was accepted.
        let ready = |open: &Entry| -> Option<Vec<u64>> {
            if !a.synchronized {
                return Some(vec![open.id]);
            }
            let sync = self.synchronized_on(&device, open)?;
            Some(vec![open.id, sync])
        };
        let found = self
            .until(deadline, || {
                // The newest opening after the one the previous await_connect saw: the
                // device's current connection, even if it reconnected more than once.
                let fresh = self.fresh(&device);
                let opened = fresh
                    .iter()
                    .rev()
                    .filter(|e| e.id > floor && is_opening(e) && region_ok(e))
                    .find_map(|e| ready(e));
                if let Some(ids) = opened {
                    return Some(ids);
                }
                // Already connected before the scenario began: that counts the first time.
                let connected = first
                    && self.state.devices.get(&device).is_some_and(|d| {
                        d.connected()
                            && a.region
                                .as_deref()
                                .is_none_or(|r| d.lock().region.as_deref() == Some(r))
                    });
                // Its journal entry is written just after the link opens: wait for it.
                let entry = connected.then(|| self.connection_entry(&device)).flatten()?;
                ready(&entry)
            })
            .await;
        let where_ = a.region.as_ref().map(|r| format!(" in region {r}")).unwrap_or_default();
        let Some(ids) = found else {
            let what = if a.synchronized { " and synchronize" } else { "" };
            return Err(failed(format!(
                "{device} did not open a downchannel{where_}{what} in time"
            )));
        };
        // Claim what it used, so a later step needs a new connection (and a new SynchronizeState).
        ids.iter()
            .for_each(|id| self.state.scenarios.claim(*id, &self.state.journal));
        let open = ids[0];
        let mut shared = self.shared();
        shared.opened.insert(device.clone(), open);
        if let Some(conn) = self.state.journal.get(open).and_then(|e| e.connection) {
            shared.connections.insert(device, conn);
        }
        Ok(Done { ids, mark: Some(open) })
    }

    /// The device's accepted SynchronizeState (its journal id) on the connection `open` opened.
    fn synchronized_on(&self, device: &str, open: &Entry) -> Option<u64> {
        let conn = open.connection?;
        let q = Query {
            device: Some(device.to_string()),
            since: Some(open.id),
            limit: Some(usize::MAX),
            face: None,
        };
        let entries = self.state.journal.query(&q);
        let on_conn = || entries.iter().filter(|e| e.connection == Some(conn));
        on_conn()
            .filter(|e| e.kind == Kind::Request && e.summary == "System.SynchronizeState")
            .find(|sync| {
                on_conn().any(|r| {
                    r.id > sync.id
                        && r.kind == Kind::Response
                        && r.stream == sync.stream
                        && r.body["status"].as_u64().is_some_and(|s| (200..300).contains(&s))
                })
            })
            .map(|e| e.id)
    }

    fn fault(&self, f: &FaultStep, id: Option<&str>) -> Result<Done, Failed> {
        let device = f.device.as_ref().map(|d| self.device(d.get_ref()));
        // `after = <this id>` sees everything from just before the fault took effect.
        let before = self.state.journal.latest();
        if f.now {
            let device: Arc<str> = device.unwrap_or_default().into();
            let id = crate::avs::fault::apply_now(&self.state, &device, &f.then).map_err(failed)?;
            return Ok(Done {
                ids: vec![id],
                mark: Some(before),
            });
        }
        let mut when = f.when.clone();
        if when.device.is_none() {
            when.device = device;
        }
        let rule = crate::faults::Rule {
            id: id.map(str::to_string),
            when,
            then: f.then.clone(),
            times: f.times,
        };
        let installed = self.state.faults.add(rule).map_err(|e| failed(e.to_string()))?;
        self.shared().faults.push(installed.clone());
        if let Some(d) = f.duration {
            let state = self.state.clone();
            tokio::spawn(async move {
                tokio::time::sleep(d.0).await;
                state.faults.remove(&installed);
            });
        }
        Ok(Done {
            ids: Vec::new(),
            mark: Some(before),
        })
    }

    /// The journal entry of the device's current downchannel opening. The
    /// device counts as connected a moment before that entry is written:
    /// until it is, the newest opening is the previous connection's, and
    /// that one must not be taken for it.
    fn connection_entry(&self, device: &str) -> Option<Arc<Entry>> {
        let current = self.state.devices.get(device)?.connection()?.id;
        let q = Query {
            device: Some(device.to_string()),
            limit: Some(usize::MAX),
            ..Default::default()
        };
        let newest = self.state.journal.query(&q).into_iter().rev().find(|e| is_opening(e))?;
        (newest.connection == Some(current)).then_some(newest)
    }

    async fn send(&self, s: &Send) -> Result<Done, Failed> {
        let device_id = self.device(s.device.get_ref());
        let mut request = {
            let vars = &self.shared().vars;
            if let Some(name) = &s.directive {
                let (ns, n) = name.get_ref().rsplit_once('.').unwrap_or(("", name.get_ref()));
                let payload = s
                    .payload
                    .as_ref()
                    .map(|p| toml_to_json(&toml::Value::Table(p.clone())))
                    .unwrap_or(json!({}));
                let mut body = json!({"namespace": ns, "name": n, "payload": vars.expand_json(&payload)});
                if let Some(d) = &s.dialog_request_id {
                    body["dialogRequestId"] = json!(vars.expand(d));
                }
                body
            } else if let Some(doc) = &s.json {
                vars.expand_json(&toml_to_json(&toml::Value::Table(doc.clone())))
            } else {
                json!({"raw": vars.expand(s.raw.as_deref().unwrap_or_default())})
            }
        };
        if let (Some(a), Some(map)) = (&s.attachment, request.as_object_mut()) {
            map.insert("attachment".into(), json!({"cid": a.cid, "text": a.text}));
            map.insert("attachment_elsewhere".into(), json!(s.attachment_elsewhere));
        }
        let push = crate::avs::directive::from_request(&request).map_err(|e| failed(e.to_string()))?;
        // A device still starting gets the default window to open its downchannel.
        let connected = self
            .until(clock::deadline_in(DEFAULT_WITHIN), || {
                self.state.devices.get(&device_id).filter(|d| d.connected())
            })
            .await;
        let device = connected.ok_or_else(|| failed(format!("{device_id} has no open downchannel to send to")))?;
        // The cut-off of `after = <this id>`: just before the directive can be written.
        let before = self.state.journal.latest();
        device.push(push).map_err(|e| failed(e.to_string()))?;
        // Sent means written to the downchannel: wait for its journal entry.
        let written = self
            .until(clock::deadline_in(DEFAULT_WITHIN), || {
                self.fresh(&device_id)
                    .into_iter()
                    .find(|e| e.kind == Kind::Directive && e.id > before)
                    .map(|e| e.id)
            })
            .await;
        let id = written.ok_or_else(|| failed(format!("the directive was not written to {device_id}")))?;
        Ok(Done {
            ids: vec![id],
            mark: Some(before),
        })
    }

    async fn expect(&self, e: &Expect, id: Option<&str>) -> Result<Done, Failed> {
        let want = Want {
            device: self.device(e.device.get_ref()),
            event: e.event.clone(),
            request: e.request.clone(),
            fields: e.fields.clone(),
        };
        let window = e.within.map_or(DEFAULT_WITHIN, |d| d.0);
        let deadline = clock::deadline_in(window);
        let floor = e
            .after
            .as_ref()
            .and_then(|a| self.shared().marks.get(a.get_ref()).copied())
            .unwrap_or(0);
        let connection = if e.same_connection {
            self.shared().connections.get(&want.device).copied()
        } else {
            None
        };
        let matching = || {
            let vars = self.shared().vars.clone();
            let fresh = self.fresh(&want.device).into_iter().filter(|x| x.id > floor);
            let fresh = fresh.filter(|x| connection.is_none_or(|c| x.connection == Some(c)));
            fresh.filter(|x| want.matches(x, &vars)).collect::<Vec<_>>()
        };
        if e.never {
            tokio::time::sleep_until(deadline).await;
            let hits = matching();
            return match hits.first() {
                None => Ok(Done::ids(Vec::new())),
                Some(hit) => Err(Failed {
                    text: format!(
                        "expected no {} within {}, but journal #{} arrived",
                        want.describe(),
                        crate::duration::format(window),
                        hit.id
                    ),
                    ids: hits.iter().map(|h| h.id).collect(),
                }),
            };
        }
        let hits = match e.count {
            Some(n) => {
                tokio::time::sleep_until(deadline).await;
                let hits = matching();
                if hits.len() != n as usize {
                    return Err(Failed {
                        text: format!(
                            "expected exactly {n} × {} within {}, got {}",
                            want.describe(),
                            crate::duration::format(window),
                            hits.len()
                        ),
                        ids: hits.iter().map(|h| h.id).collect(),
                    });
                }
                hits
            }
            None => match self.until(deadline, || matching().into_iter().next()).await {
                Some(hit) => vec![hit],
                None => {
                    let vars = self.shared().vars.clone();
                    let fresh = self.fresh(&want.device);
                    let mut near = matcher::near_misses(&want, fresh.iter().map(|a| a.as_ref()), &vars, 3);
                    if let Some(after) = e.after.as_ref().filter(|_| floor > 0) {
                        for n in near.iter_mut().filter(|n| n.journal_id <= floor) {
                            n.misses.insert(
                                0,
                                matcher::Miss {
                                    what: "after".into(),
                                    expected: format!("after step {} (journal #{floor})", after.get_ref()),
                                    actual: format!("journal #{}", n.journal_id),
                                },
                            );
                        }
                    }
                    let mut text = format!(
                        "no match within {}: {}",
                        crate::duration::format(window),
                        matcher::render(&want, &near)
                    );
                    // Faults that fired for the device explain many a miss.
                    for f in fresh.iter().filter(|e| e.kind == Kind::Fault) {
                        text.push_str(&format!("  fault: journal #{} {}\n", f.id, f.summary));
                    }
                    return Err(Failed {
                        text,
                        ids: near.iter().map(|n| n.journal_id).collect(),
                    });
                }
            },
        };
        let mut shared = self.shared();
        for h in &hits {
            self.state.scenarios.claim(h.id, &self.state.journal);
        }
        // `count = 0` passed with nothing to capture from (check refuses captures with it).
        let Some(first) = hits.first().cloned() else {
            return Ok(Done::ids(Vec::new()));
        };
        for (var, pointer) in &e.capture {
            let value = first
                .body
                .pointer(pointer)
                .cloned()
                .ok_or_else(|| failed(format!("capture {var}: {pointer} is absent in journal #{}", first.id)))?;
            shared.vars.set(var, value);
        }
        if let Some(id) = id {
            shared.by_id.insert(id.to_string(), first.clone());
        }
        // `after = <this id>`: what arrived after the match (after the window with `count`).
        let mark = if e.count.is_some() { None } else { Some(first.id) };
        shared.last_match = Some(first);
        Ok(Done {
            ids: hits.iter().map(|h| h.id).collect(),
            mark,
        })
    }

    fn capture(&self, c: &Capture) -> Result<Vec<u64>, Failed> {
        let mut shared = self.shared();
        let entry = match &c.from {
            Some(from) => shared.by_id.get(from.get_ref()).cloned(),
            None => shared.last_match.clone(),
        };
        let entry = entry.ok_or_else(|| failed("nothing matched yet to capture from"))?;
        let value = entry
            .body
            .pointer(&c.pointer)
            .cloned()
            .ok_or_else(|| failed(format!("{} is absent in journal #{}", c.pointer, entry.id)))?;
        shared.vars.set(c.var.get_ref(), value);
        Ok(vec![entry.id])
    }

    async fn repeat(&self, r: &Repeat, inner: &[Step], path: &str, start_id: u64) -> Result<Vec<u64>, Failed> {
        let prefix = format!("{path}.");
        if let Some(n) = r.times {
            for _ in 0..n {
                self.steps(inner, &prefix)
                    .await
                    .map_err(|_| failed("a repeated step failed"))?;
            }
            return Ok(Vec::new());
        }
        let until = r.until.as_ref().expect("check ensures times or until");
        let want = Want {
            device: self.device(until.device.get_ref()),
            event: until.event.clone(),
            request: until.request.clone(),
            fields: until.fields.clone(),
        };
        let max = r.max.unwrap_or(DEFAULT_MAX_ROUNDS);
        for _ in 0..max {
            self.steps(inner, &prefix)
                .await
                .map_err(|_| failed("a repeated step failed"))?;
            let vars = self.shared().vars.clone();
            let hit = self
                .fresh(&want.device)
                .into_iter()
                .find(|e| e.id > start_id && want.matches(e, &vars));
            if let Some(hit) = hit {
                return Ok(vec![hit.id]);
            }
        }
        Err(failed(format!(
            "{} did not arrive within {max} rounds",
            want.describe()
        )))
    }

    async fn parallel(&self, inner: &[Step], path: &str) -> Result<Vec<u64>, Failed> {
        let branches = inner
            .iter()
            .enumerate()
            .map(|(i, s)| self.step(s, format!("{path}.{}", i + 1)));
        let outcomes = futures::future::join_all(branches).await;
        let failed_count = outcomes.iter().filter(|o| o.is_err()).count();
        if failed_count == 0 {
            Ok(Vec::new())
        } else {
            Err(failed(format!("{failed_count} parallel step(s) failed")))
        }
    }

    async fn conformance(&self, c: &ExpectConformance) -> Result<Vec<u64>, Failed> {
        let device_id = self.device(c.device.get_ref());
        let want = c.verdict.as_ref().map_or("pass", |v| v.get_ref().as_str()).to_string();
        let deadline = clock::deadline_in(c.within.map_or(DEFAULT_WITHIN, |d| d.0));
        let limit = clock::as_ms(self.state.config.conformance.activity_interval);
        let verdict = || {
            let device = self.state.devices.get(&device_id)?;
            device
                .conformance(limit)
                .into_iter()
                .find(|r| r.rule == c.rule.get_ref().as_str())
        };
        loop {
            let report = verdict();
            let now_verdict = report
                .as_ref()
                .map(|r| json!(r.verdict).as_str().unwrap_or_default().to_string());
            if now_verdict.as_deref() == Some(want.as_str()) {
                return Ok(report.map(|r| r.evidence).unwrap_or_default());
            }
            if clock::now() >= deadline {
                let got = now_verdict.unwrap_or_else(|| "unknown device".into());
                let detail = report
                    .as_ref()
                    .and_then(|r| r.detail.clone())
                    .map(|d| format!(" ({d})"))
                    .unwrap_or_default();
                return Err(Failed {
                    text: format!(
                        "rule {} of {device_id}: expected {want}, got {got}{detail}",
                        c.rule.get_ref()
                    ),
                    ids: report.map(|r| r.evidence).unwrap_or_default(),
                });
            }
            // Verdicts change with journal entries or with time (deadlines): wake on either.
            let mut changes = self.state.journal.subscribe();
            let tick = clock::deadline_in(Duration::from_millis(200)).min(deadline);
            let _ = tokio::time::timeout_at(tick, changes.changed()).await;
        }
    }
}

/// The journal entry of a downchannel opening.
fn is_opening(e: &Entry) -> bool {
    e.kind == Kind::Response && e.summary == "200 downchannel open"
}

/// Values of a JSON report for many scenarios.
pub fn report_json(results: &[ScenarioResult], extra: Value) -> Value {
    json!({ "passed": results.iter().all(|r| r.passed), "scenarios": results, "run": extra })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::journal::{Face, Journal, Record};

    fn state() -> Arc<State> {
        State::new(Config::default(), Arc::new(Journal::new(1000)))
    }

    fn scenario(text: &str) -> Scenario {
        super::super::load::parse(text, "t.toml").unwrap()
    }

    fn quiet() -> Progress {
        Arc::new(|_| {})
    }

    const HEAD: &str = "name = 't'\n[[devices]]\nname = 'dut'\nid = 'd1'\n";

    #[tokio::test(start_paused = true)]
    async fn waits_run_on_tokio_time() {
        let s = scenario(&format!(
            "{HEAD}[[steps]]\nkind='wait'\nduration='1h'\n[[steps]]\nkind='expect'\ndevice='dut'\nevent='A.B'\nnever=true\nwithin='10m'"
        ));
        let r = run(state(), &s, 0, quiet()).await;
        assert!(r.passed, "{r:?}");
        assert!(r.steps[0].duration_ms >= 3_600_000);
    }

    #[tokio::test(start_paused = true)]
    async fn expect_matches_captures_and_templates() {
        let st = state();
        let s = scenario(&format!(
            "{HEAD}[[steps]]\nkind='expect'\ndevice='dut'\nevent='System.SoftwareInfo'\ncapture={{fw='/event/payload/firmwareVersion'}}\n\
             [[steps]]\nkind='expect'\ndevice='dut'\nevent='System.SoftwareInfo'\nmatch.'/event/payload/firmwareVersion'={{equals='{{{{fw}}}}'}}\nwithin='1s'"
        ));
        let sw = |fw: &str| {
            Record::new(Face::Avs, Kind::Request, "System.SoftwareInfo")
                .device("d1")
                .body(json!({"event": {"payload": {"firmwareVersion": fw}}}))
        };
        st.journal.record(sw("42"));
        st.journal.record(sw("42"));
        let r = run(st.clone(), &s, 0, quiet()).await;
        assert!(r.passed, "{r:?}");
        assert_eq!(r.steps[0].journal_ids, vec![1]);
        assert_eq!(r.steps[1].journal_ids, vec![2], "each entry satisfies one expectation");
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_expect_reports_near_misses_and_stops() {
        let st = state();
        st.journal.record(
            Record::new(Face::Avs, Kind::Request, "System.SoftwareInfo")
                .device("d1")
                .body(json!({"event": {"payload": {"firmwareVersion": "0"}}})),
        );
        let s = scenario(&format!(
            "{HEAD}[[steps]]\nkind='expect'\ndevice='dut'\nevent='System.SoftwareInfo'\nwithin='5s'\nmatch.'/event/payload/firmwareVersion'={{regex='^[1-9]'}}\n\
             [[steps]]\nkind='wait'\nduration='1s'"
        ));
        let r = run(st, &s, 0, quiet()).await;
        assert!(!r.passed);
        assert_eq!(r.steps.len(), 1, "the first failure ends the scenario");
        let f = r.failure.unwrap();
        assert!(f.contains("closest: journal #1 System.SoftwareInfo"), "{f}");
        assert!(f.contains("regex: expected /^[1-9]/, got \"0\""), "{f}");
        assert_eq!(r.steps[0].journal_ids, vec![1]);
    }

    /// `count = 0` is "none in the window", and passes without a match to keep.
    #[tokio::test(start_paused = true)]
    async fn count_zero_passes_on_silence() {
        let s = scenario(&format!(
            "{HEAD}[[steps]]\nkind='expect'\ndevice='dut'\nevent='A.B'\ncount=0\nwithin='1s'"
        ));
        let r = run(state(), &s, 0, quiet()).await;
        assert!(r.passed, "{r:#?}");
    }

    /// A duration too long for the clock waits the longest a scenario may.
    #[tokio::test(start_paused = true)]
    async fn deadlines_never_overflow() {
        let far = clock::deadline_in(Duration::MAX);
        assert!(far > clock::now());
    }

    /// `min = "{{var}}"`: the bound comes from a capture when the matcher runs.
    #[tokio::test(start_paused = true)]
    async fn numeric_bounds_from_captures() {
        let st = state();
        let report = |secs: u64| {
            Record::new(Face::Avs, Kind::Request, "System.UserInactivityReport")
                .device("d1")
                .body(json!({"event": {"payload": {"inactiveTimeInSeconds": secs}}}))
        };
        st.journal.record(report(4));
        st.journal.record(report(3));
        st.journal.record(report(9));
        let s = scenario(&format!(
            "{HEAD}[[steps]]\nkind='expect'\ndevice='dut'\nevent='System.UserInactivityReport'\ncapture={{first='/event/payload/inactiveTimeInSeconds'}}\n\
             [[steps]]\nkind='expect'\ndevice='dut'\nevent='System.UserInactivityReport'\nwithin='1s'\n\
             match.'/event/payload/inactiveTimeInSeconds'={{min='{{{{first}}}}'}}"
        ));
        let r = run(st, &s, 0, quiet()).await;
        assert!(r.passed, "{r:#?}");
        assert_eq!(r.steps[1].journal_ids, vec![3], "3 < 4 does not match; 9 does");
    }

    /// What arrives while a step's outcome is being reported (progress,
    /// journaling) is after that step: `after` cuts when it was decided.
    #[tokio::test(start_paused = true)]
    async fn after_cuts_before_the_steps_bookkeeping() {
        let st = state();
        let journal = st.journal.clone();
        let progress: Progress = Arc::new(move |r: &StepResult| {
            if r.path == "1" {
                journal.record(
                    Record::new(Face::Avs, Kind::Request, "A.B")
                        .device("d1")
                        .body(json!({})),
                );
            }
        });
        let s = scenario(&format!(
            "{HEAD}[[steps]]\nkind='wait'\nid='w'\nduration='1s'\n\
             [[steps]]\nkind='expect'\ndevice='dut'\nevent='A.B'\nafter='w'\nwithin='1s'"
        ));
        let r = run(st, &s, 0, progress).await;
        assert!(r.passed, "{r:#?}");
        assert_eq!(r.steps[1].journal_ids, vec![1]);
    }

    /// `await_connect` takes the device's newest connection, and the next
    /// `await_connect` needs one newer still.
    #[tokio::test(start_paused = true)]
    async fn await_connect_takes_the_newest_opening_and_the_next_needs_a_newer_one() {
        let st = state();
        let open = |conn: u64| {
            Record::new(Face::Avs, Kind::Response, "200 downchannel open")
                .device("d1")
                .connection(conn)
                .body(json!({"status": 200}))
        };
        st.journal.record(open(1));
        st.journal.record(open(2));
        st.journal.record(
            Record::new(Face::Avs, Kind::Request, "System.SynchronizeState")
                .device("d1")
                .connection(1)
                .body(json!({})),
        );
        let s = scenario(&format!(
            "{HEAD}[[steps]]\nkind='await_connect'\ndevice='dut'\n\
             [[steps]]\nkind='expect'\ndevice='dut'\nevent='System.SynchronizeState'\nsame_connection=true\nnever=true\nwithin='1s'\n\
             [[steps]]\nkind='await_connect'\ndevice='dut'\nwithin='1s'"
        ));
        let r = run(st, &s, 0, quiet()).await;
        assert_eq!(r.steps[0].journal_ids, vec![2], "the newest connection");
        assert!(
            r.steps[1].passed,
            "the old connection's SynchronizeState is not this one's: {r:#?}"
        );
        assert!(!r.steps[2].passed, "no newer connection opened");
    }

    #[tokio::test(start_paused = true)]
    async fn count_never_repeat_and_parallel() {
        let st = state();
        let ev = |name: &str| Record::new(Face::Avs, Kind::Request, name).device("d1").body(json!({}));
        st.journal.record(ev("A.B"));
        st.journal.record(ev("A.B"));
        let s = scenario(&format!(
            "{HEAD}[[steps]]\nkind='expect'\ndevice='dut'\nevent='A.B'\ncount=2\nwithin='1s'\n\
             [[steps]]\nkind='repeat'\ntimes=3\n[[steps.steps]]\nkind='wait'\nduration='1s'\n\
             [[steps]]\nkind='parallel'\n[[steps.steps]]\nkind='wait'\nduration='2s'\n[[steps.steps]]\nkind='expect'\ndevice='dut'\nevent='C.D'\nnever=true\nwithin='1s'"
        ));
        let r = run(st.clone(), &s, 0, quiet()).await;
        assert!(r.passed, "{r:#?}");
        let paths: Vec<&str> = r.steps.iter().map(|s| s.path.as_str()).collect();
        assert!(paths.contains(&"2.1") && paths.contains(&"3.2"), "{paths:?}");
        // count is exact: three where two are expected fails.
        st.journal.record(ev("A.B"));
        st.journal.record(ev("A.B"));
        st.journal.record(ev("A.B"));
        let s = scenario(&format!(
            "{HEAD}[[steps]]\nkind='expect'\ndevice='dut'\nevent='A.B'\ncount=2\nwithin='1s'"
        ));
        let r = run(st, &s, 2, quiet()).await;
        assert!(!r.passed);
        assert!(r.failure.unwrap().contains("expected exactly 2"));
    }
}
