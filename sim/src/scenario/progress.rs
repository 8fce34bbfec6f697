//! Live counters for long `avs-sim run` jobs, on stderr: scenarios done of
//! the total, steps passed and failed, time elapsed.
//!
//! Kept apart from `report` (what a run *produced*) because this is about
//! the run *while* it goes, and apart from stdout, whose step lines and
//! summary scripts and CI logs read unchanged whatever `--progress` says.
//!
//! On a terminal it is one line rewritten in place with `\r` (cleared before
//! a step line goes to stdout and drawn again after it, so the two never
//! mix). Anywhere else it is a plain line after each scenario and at most
//! every [`PLAIN_EVERY`] while one runs: no `\r`, no escape codes, so a log
//! file stays readable.

use parking_lot::Mutex;
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// How often a plain (non-terminal) progress line is written while a long
/// scenario runs; one is also written after each scenario.
pub const PLAIN_EVERY: Duration = Duration::from_secs(5);

/// How often the terminal line is redrawn with no step to report, so the
/// elapsed time moves.
const TTY_EVERY: Duration = Duration::from_secs(1);

/// `--progress`: when to show live counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ProgressMode {
    /// On a terminal only (stderr is a TTY); nothing in files and pipes.
    #[default]
    Auto,
    /// Also when stderr is not a terminal, as plain lines.
    Always,
    /// Never.
    Never,
}

/// The counters so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    pub scenarios_done: usize,
    pub scenarios_total: usize,
    pub steps_passed: u64,
    pub steps_failed: u64,
}

impl Counters {
    /// The counters as one line, with the time elapsed.
    pub fn line(&self, elapsed: Duration) -> String {
        format!(
            "avs-sim: progress: scenarios {}/{}, steps {} passed, {} failed, {:.1}s elapsed",
            self.scenarios_done,
            self.scenarios_total,
            self.steps_passed,
            self.steps_failed,
            elapsed.as_secs_f64()
        )
    }
}

/// Width of the terminal progress line on screen (0: none), to blank it
/// before rewriting. Global because the log writer blanks it too
/// ([`clear_line`]), and there is one stderr.
static DRAWN: std::sync::Mutex<usize> = std::sync::Mutex::new(0);

fn drawn() -> std::sync::MutexGuard<'static, usize> {
    DRAWN.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Blank the terminal progress line if one is on screen, leaving the cursor
/// at its start: for anything else about to write a line to stderr.
pub fn clear_line() {
    let mut drawn = drawn();
    if *drawn > 0 {
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r{:width$}\r", "", width = *drawn);
        let _ = err.flush();
        *drawn = 0;
    }
}

struct Shared {
    counters: Counters,
    /// When the last plain line was written.
    last_plain: Instant,
}

/// Where progress goes for one run; cheap to clone into step callbacks.
#[derive(Clone)]
pub struct Progress {
    /// `None`: progress is off.
    out: Option<Out>,
}

#[derive(Clone)]
struct Out {
    tty: bool,
    started: Instant,
    shared: Arc<Mutex<Shared>>,
}

impl Progress {
    /// Progress for `total` scenarios; `tty` is whether stderr is a terminal.
    pub fn new(mode: ProgressMode, tty: bool, total: usize) -> Progress {
        let on = match mode {
            ProgressMode::Auto => tty,
            ProgressMode::Always => true,
            ProgressMode::Never => false,
        };
        let now = crate::clock::now();
        let out = on.then(|| Out {
            tty,
            started: now,
            shared: Arc::new(Mutex::new(Shared {
                counters: Counters {
                    scenarios_total: total,
                    ..Counters::default()
                },
                last_plain: now,
            })),
        });
        Progress { out }
    }

    /// No progress at all.
    pub fn off() -> Progress {
        Progress { out: None }
    }

    /// Print `line` on stdout with the terminal line moved out of its way.
    pub fn println(&self, line: &str) {
        let Some(out) = &self.out else {
            println!("{line}");
            return;
        };
        let mut shared = out.shared.lock();
        if out.tty {
            clear_line();
            println!("{line}");
            let _ = std::io::stdout().flush();
            draw(out, &mut shared);
        } else {
            println!("{line}");
        }
    }

    /// A step finished.
    pub fn step(&self, passed: bool) {
        self.update(|c| {
            if passed {
                c.steps_passed = c.steps_passed.saturating_add(1);
            } else {
                c.steps_failed = c.steps_failed.saturating_add(1);
            }
        });
    }

    /// A scenario finished: a plain line is written at once.
    pub fn scenario_done(&self) {
        self.update(|c| c.scenarios_done = c.scenarios_done.saturating_add(1).min(c.scenarios_total));
        if let Some(out) = &self.out {
            if !out.tty {
                plain(out, &mut out.shared.lock());
            }
        }
    }

    /// The counters so far (`None` when progress is off).
    pub fn counters(&self) -> Option<Counters> {
        self.out.as_ref().map(|o| o.shared.lock().counters)
    }

    /// Keep the output alive while a scenario runs with no step to report:
    /// the terminal line's clock, or a plain line every [`PLAIN_EVERY`].
    /// Runs until dropped (cancel-safe: every branch only sleeps).
    pub async fn tick(self) -> std::convert::Infallible {
        let Some(out) = self.out else {
            return std::future::pending().await;
        };
        let every = if out.tty { TTY_EVERY } else { PLAIN_EVERY };
        let mut interval = tokio::time::interval_at(out.started + every, every);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            interval.tick().await;
            let mut shared = out.shared.lock();
            if out.tty {
                draw(&out, &mut shared);
            } else if crate::clock::now().saturating_duration_since(shared.last_plain) >= every {
                plain(&out, &mut shared);
            }
        }
    }

    /// The run is over: end the terminal line so what follows starts on a
    /// fresh one.
    pub fn finish(&self) {
        if let Some(out) = &self.out {
            let mut shared = out.shared.lock();
            if out.tty {
                draw(out, &mut shared);
                let mut drawn = drawn();
                eprintln!();
                *drawn = 0;
            }
        }
    }

    fn update(&self, f: impl FnOnce(&mut Counters)) {
        if let Some(out) = &self.out {
            let mut shared = out.shared.lock();
            f(&mut shared.counters);
            if out.tty {
                draw(out, &mut shared);
            }
        }
    }
}

/// Rewrite the terminal line in place.
fn draw(out: &Out, shared: &mut Shared) {
    let line = shared
        .counters
        .line(crate::clock::now().saturating_duration_since(out.started));
    let mut drawn = drawn();
    let pad = drawn.saturating_sub(line.len());
    let mut err = std::io::stderr().lock();
    let _ = write!(err, "\r{line}{:pad$}", "");
    let _ = err.flush();
    *drawn = line.len();
}

fn plain(out: &Out, shared: &mut Shared) {
    let now = crate::clock::now();
    eprintln!("{}", shared.counters.line(now.saturating_duration_since(out.started)));
    shared.last_plain = now;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_steps_and_scenarios_up_to_the_total() {
        let p = Progress::new(ProgressMode::Always, false, 1);
        p.step(true);
        p.step(false);
        p.scenario_done();
        p.scenario_done();
        let c = p.counters().unwrap();
        assert_eq!((c.scenarios_done, c.steps_passed, c.steps_failed), (1, 1, 1));
        let line = c.line(Duration::from_millis(2500));
        assert_eq!(
            line,
            "avs-sim: progress: scenarios 1/1, steps 1 passed, 1 failed, 2.5s elapsed"
        );
    }

    /// While a long scenario runs with stderr not a terminal, a plain line
    /// is written once per [`PLAIN_EVERY`], not more often.
    #[tokio::test(start_paused = true)]
    async fn plain_lines_come_at_most_every_period() {
        let p = Progress::new(ProgressMode::Always, false, 1);
        let last = || p.out.as_ref().unwrap().shared.lock().last_plain;
        let start = last();
        let ticking = tokio::spawn(p.clone().tick());
        tokio::time::sleep(PLAIN_EVERY / 2).await;
        assert_eq!(last(), start, "nothing before the period");
        tokio::time::sleep(PLAIN_EVERY).await;
        assert_eq!(last(), start + PLAIN_EVERY, "one line at the period");
        p.scenario_done();
        let after_scenario = last();
        tokio::time::sleep(PLAIN_EVERY / 2).await;
        assert_eq!(last(), after_scenario, "the period counts from the last line");
        ticking.abort();
    }

    #[test]
    fn auto_is_on_only_on_a_terminal_and_never_is_off() {
        assert!(Progress::new(ProgressMode::Auto, false, 1).counters().is_none());
        assert!(Progress::new(ProgressMode::Auto, true, 1).counters().is_some());
        assert!(Progress::new(ProgressMode::Never, true, 1).counters().is_none());
        assert!(Progress::off().counters().is_none());
    }
}
