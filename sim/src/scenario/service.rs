//! Scenarios inside a long-running `serve`: each loaded scenario runs every
//! time one of its devices opens a downchannel (and on demand from the
//! control API); results go to the journal and to `GET /api/scenarios`.

use super::model::Scenario;
use super::runner::{self, ScenarioResult, StepResult};
use crate::journal::{Face, Kind, Record};
use crate::state::State;
use parking_lot::Mutex;
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::{BTreeSet, HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Finished runs kept for the control API.
const KEPT_RUNS: usize = 200;
/// Claims kept at most, whatever the journal's size: beyond it the oldest
/// are forgotten (an entry that old is matched again only by a run that
/// began before it and is still waiting).
pub const MAX_CLAIMS: usize = 100_000;

/// Journal entries some expectation has matched, bounded twice: claims of
/// entries the journal no longer holds are dropped (nothing can match
/// those again), and at most `cap` are kept, the oldest going first.
#[derive(Debug)]
pub struct Claims {
    ids: BTreeSet<u64>,
    cap: usize,
}

impl Default for Claims {
    fn default() -> Claims {
        Claims::new(MAX_CLAIMS)
    }
}

impl Claims {
    pub fn new(cap: usize) -> Claims {
        Claims {
            ids: BTreeSet::new(),
            cap: cap.max(1),
        }
    }

    /// Claim `id`; `oldest` is the oldest id the journal still holds.
    pub fn claim(&mut self, id: u64, oldest: u64) {
        if id < oldest {
            return;
        }
        self.ids.insert(id);
        if self.ids.first().is_some_and(|first| *first < oldest) {
            self.ids = self.ids.split_off(&oldest);
        }
        while self.ids.len() > self.cap {
            self.ids.pop_first();
        }
    }

    pub fn contains(&self, id: u64) -> bool {
        self.ids.contains(&id)
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

/// One run of one scenario.
#[derive(Debug, Serialize)]
pub struct Run {
    pub id: u64,
    pub scenario: String,
    pub file: String,
    /// The device whose connection started it, or `api`.
    pub trigger: String,
    pub started_at: String,
    /// `running`, `passed` or `failed`.
    pub status: String,
    pub steps: Vec<StepResult>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<ScenarioResult>,
}

/// The loaded scenarios and their runs.
#[derive(Default)]
pub struct Service {
    library: Vec<Arc<Scenario>>,
    runs: Mutex<VecDeque<Arc<Mutex<Run>>>>,
    /// Scenarios (by index) with a run in progress: one at a time each.
    active: Mutex<HashSet<usize>>,
    next_id: AtomicU64,
    /// Journal entries some expectation has matched already.
    claimed: Mutex<Claims>,
}

impl Service {
    pub fn new(library: Vec<Scenario>) -> Service {
        Service {
            library: library.into_iter().map(Arc::new).collect(),
            next_id: AtomicU64::new(1),
            ..Default::default()
        }
    }

    /// Mark a journal entry of `journal` as matched by an expectation.
    pub fn claim(&self, id: u64, journal: &crate::journal::Journal) {
        // Ids are given out one by one from 1 and evicted oldest first.
        let oldest = journal.evicted().saturating_add(1);
        self.claimed.lock().claim(id, oldest);
    }

    pub fn is_claimed(&self, id: u64) -> bool {
        self.claimed.lock().contains(id)
    }

    /// How many claims are held (for tests of the bound).
    pub fn claims(&self) -> usize {
        self.claimed.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.library.is_empty()
    }

    /// The loaded scenarios and a summary of every kept run.
    pub fn list(&self) -> Value {
        let scenarios: Vec<Value> = self
            .library
            .iter()
            .map(|s| json!({"name": s.name, "file": s.file, "devices": s.devices.iter().map(|a| a.device_id()).collect::<Vec<_>>()}))
            .collect();
        let runs: Vec<Value> = self
            .runs
            .lock()
            .iter()
            .map(|r| {
                let r = r.lock();
                json!({"id": r.id, "scenario": r.scenario, "trigger": r.trigger, "started_at": r.started_at, "status": r.status})
            })
            .collect();
        json!({"scenarios": scenarios, "runs": runs})
    }

    /// One run in full.
    pub fn get(&self, id: u64) -> Option<Value> {
        let runs = self.runs.lock();
        let run = runs.iter().find(|r| r.lock().id == id)?;
        Some(json!(&*run.lock()))
    }

    /// The index of a scenario by name or file.
    pub fn find(&self, key: &str) -> Option<usize> {
        self.library
            .iter()
            .position(|s| s.name == key || s.file == key || s.file.ends_with(&format!("/{key}")))
    }

    /// Start scenario `index` unless it is running; returns the run id.
    pub fn start(self: &Arc<Self>, state: &Arc<State>, index: usize, trigger: &str, since: u64) -> Option<u64> {
        if !self.active.lock().insert(index) {
            return None;
        }
        let scenario = self.library[index].clone();
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let run = Arc::new(Mutex::new(Run {
            id,
            scenario: scenario.name.clone(),
            file: scenario.file.clone(),
            trigger: trigger.to_string(),
            started_at: crate::clock::wall_rfc3339(),
            status: "running".into(),
            steps: Vec::new(),
            result: None,
        }));
        {
            let mut runs = self.runs.lock();
            if runs.len() == KEPT_RUNS {
                runs.pop_front();
            }
            runs.push_back(run.clone());
        }
        state.journal.record(
            Record::new(
                Face::Scenario,
                Kind::Run,
                format!("scenario {:?} run {id} started", scenario.name),
            )
            .body(json!({"run": id, "scenario": scenario.name, "trigger": trigger})),
        );
        let (svc, state) = (self.clone(), state.clone());
        tokio::spawn(async move {
            let (journal, live) = (state.journal.clone(), run.clone());
            let progress = Arc::new(move |r: &StepResult| {
                journal.record(
                    Record::new(
                        Face::Scenario,
                        Kind::Step,
                        format!(
                            "run {id} step {} {}",
                            r.path,
                            if r.passed { "passed" } else { "failed" }
                        ),
                    )
                    .body(json!({"run": id, "step": r})),
                );
                live.lock().steps.push(r.clone());
            });
            let result = runner::run(state.clone(), &scenario, since, progress).await;
            let verdict = if result.passed { "passed" } else { "failed" };
            state.journal.record(
                Record::new(
                    Face::Scenario,
                    Kind::Run,
                    format!("scenario {:?} run {id} {verdict}", scenario.name),
                )
                .body(json!({"run": id, "passed": result.passed, "failure": result.failure})),
            );
            {
                let mut r = run.lock();
                r.status = verdict.into();
                r.result = Some(result);
            }
            svc.active.lock().remove(&index);
        });
        Some(id)
    }

    /// Start the scenarios of every device that opens a downchannel, until shutdown.
    pub async fn watch(self: Arc<Self>, state: Arc<State>) {
        if self.is_empty() {
            return;
        }
        let mut changes = state.journal.subscribe();
        let mut seen = state.journal.latest();
        loop {
            let q = crate::journal::Query {
                since: Some(seen),
                limit: Some(usize::MAX),
                ..Default::default()
            };
            for e in state.journal.query(&q) {
                seen = e.id;
                if e.kind != Kind::Response || e.summary != "200 downchannel open" {
                    continue;
                }
                let Some(device) = e.device.as_deref() else { continue };
                for (i, s) in self.library.iter().enumerate() {
                    if s.devices.iter().any(|a| a.device_id() == device) {
                        self.start(&state, i, device, e.id - 1);
                    }
                }
            }
            tokio::select! {
                changed = changes.changed() => if changed.is_err() { return },
                _ = state.shutdown.cancelled() => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::{Face, Journal, Kind};

    #[test]
    fn claims_of_evicted_entries_are_dropped() {
        let journal = Journal::new(10);
        let service = Service::new(Vec::new());
        for _ in 0..1000 {
            let id = journal.record(Record::new(Face::Avs, Kind::Request, "A.B"));
            service.claim(id, &journal);
        }
        assert_eq!(service.claims(), 10, "only the journal's ten entries can be claimed");
        assert!(service.is_claimed(1000) && service.is_claimed(991));
        assert!(!service.is_claimed(990));
    }

    #[test]
    fn claims_are_capped_oldest_first() {
        let mut claims = Claims::new(3);
        for id in 1..=5 {
            claims.claim(id, 1);
        }
        assert_eq!(claims.len(), 3);
        assert!(!claims.contains(2) && claims.contains(3) && claims.contains(5));
        claims.claim(2, 1);
        assert!(!claims.contains(2), "older than everything kept: forgotten at once");
        claims.claim(9, 6);
        assert_eq!(claims.len(), 1, "below the journal's oldest entry: dropped");
        assert!(Claims::default().is_empty());
    }
}
