//! Per-device conformance: the System interface and connection rules a
//! device must keep, judged as it goes, each with journal ids as evidence.
//!
//! State is kept incrementally (a few words per rule) instead of re-reading
//! the journal, so verdicts survive journal eviction and cost nothing at
//! 10,000 devices.

use crate::clock::{self, Instant};
use serde::Serialize;
use std::collections::VecDeque;
use std::time::Duration;

/// Evidence ids kept per rule.
const MAX_EVIDENCE: usize = 8;
/// Recent messageIds remembered for the uniqueness rule.
const RECENT_IDS: usize = 128;

/// The rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    DownchannelBeforeEvents,
    SynchronizeStateFirst,
    Activity,
    SoftwareInfoAfterReport,
    ExceptionAfterMalformed,
    ReconnectAfterSetEndpoint,
    UniqueMessageIds,
    ValidFirmwareVersion,
    SoftwareInfoNeedsSystem11,
}

impl Rule {
    pub const ALL: [Rule; 9] = [
        Rule::DownchannelBeforeEvents,
        Rule::SynchronizeStateFirst,
        Rule::Activity,
        Rule::SoftwareInfoAfterReport,
        Rule::ExceptionAfterMalformed,
        Rule::ReconnectAfterSetEndpoint,
        Rule::UniqueMessageIds,
        Rule::ValidFirmwareVersion,
        Rule::SoftwareInfoNeedsSystem11,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Rule::DownchannelBeforeEvents => "downchannel_before_events",
            Rule::SynchronizeStateFirst => "synchronize_state_first",
            Rule::Activity => "activity",
            Rule::SoftwareInfoAfterReport => "software_info_after_report",
            Rule::ExceptionAfterMalformed => "exception_after_malformed",
            Rule::ReconnectAfterSetEndpoint => "reconnect_after_set_endpoint",
            Rule::UniqueMessageIds => "unique_message_ids",
            Rule::ValidFirmwareVersion => "valid_firmware_version",
            Rule::SoftwareInfoNeedsSystem11 => "software_info_needs_system_1_1",
        }
    }

    /// What the rule asks of the device, for reports.
    pub fn describe(self) -> &'static str {
        match self {
            Rule::DownchannelBeforeEvents => "open the downchannel before sending events on a connection",
            Rule::SynchronizeStateFirst => "send System.SynchronizeState first after every downchannel open",
            Rule::Activity => "show activity (GET /ping, a PING frame or a request) within the activity interval",
            Rule::SoftwareInfoAfterReport => "answer System.ReportSoftwareInfo with System.SoftwareInfo in time",
            Rule::ExceptionAfterMalformed => {
                "answer a malformed directive with ExceptionEncountered UNEXPECTED_INFORMATION_RECEIVED carrying it verbatim"
            }
            Rule::ReconnectAfterSetEndpoint => "reconnect to the new endpoint after System.SetEndpoint",
            Rule::UniqueMessageIds => "use a unique messageId for every event",
            Rule::ValidFirmwareVersion => "send firmwareVersion as a positive signed 32-bit decimal integer",
            Rule::SoftwareInfoNeedsSystem11 => {
                "send SoftwareInfo only after declaring System 1.1 (when capabilities were declared)"
            }
        }
    }

    fn index(self) -> usize {
        Rule::ALL.iter().position(|r| *r == self).expect("every rule is in ALL")
    }
}

/// A rule's standing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    #[default]
    NotExercised,
    Pass,
    Pending,
    Fail,
}

#[derive(Debug, Clone, Default)]
struct RuleState {
    verdict: Verdict,
    evidence: Vec<u64>,
    detail: Option<Box<str>>,
}

/// Something the device owes, with a deadline.
#[derive(Debug, Clone)]
struct Owed<T> {
    what: T,
    since: u64,
    deadline: Instant,
}

/// A rule's report.
#[derive(Debug, Clone, Serialize)]
pub struct RuleReport {
    pub rule: &'static str,
    pub description: &'static str,
    pub verdict: Verdict,
    pub evidence: Vec<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// Where SetEndpoint sent a device.
#[derive(Debug, Clone)]
pub struct EndpointTarget {
    pub url: String,
    pub port: Option<u16>,
}

/// A device's conformance state.
#[derive(Debug, Default)]
pub struct Conformance {
    rules: [RuleState; 9],
    /// Set at downchannel open until the first event arrives.
    awaiting_sync: Option<u64>,
    software_info: Option<Owed<()>>,
    exception: Option<Owed<Box<str>>>,
    endpoint: Option<Owed<EndpointTarget>>,
    recent_ids: VecDeque<u64>,
}

impl Conformance {
    fn rule(&mut self, rule: Rule) -> &mut RuleState {
        &mut self.rules[rule.index()]
    }

    /// The rule held on this occasion.
    pub fn pass(&mut self, rule: Rule, evidence: u64) {
        let r = self.rule(rule);
        if r.verdict != Verdict::Fail {
            r.verdict = Verdict::Pass;
            push_evidence(&mut r.evidence, evidence);
        }
    }

    /// The rule was broken; failures are sticky and keep the first evidence.
    pub fn fail(&mut self, rule: Rule, evidence: &[u64], detail: String) {
        let r = self.rule(rule);
        if r.verdict != Verdict::Fail {
            r.evidence.clear();
            r.detail = Some(detail.into());
        }
        r.verdict = Verdict::Fail;
        for e in evidence {
            push_evidence(&mut r.evidence, *e);
        }
    }

    fn pending(&mut self, rule: Rule, evidence: u64) {
        let r = self.rule(rule);
        if r.verdict != Verdict::Fail {
            r.verdict = Verdict::Pending;
            push_evidence(&mut r.evidence, evidence);
        }
    }

    /// A downchannel opened (journal id `evidence`) on a listener at `port`.
    pub fn downchannel_opened(&mut self, evidence: u64, port: u16) {
        self.awaiting_sync = Some(evidence);
        if let Some(owed) = self.endpoint.take() {
            match owed.what.port {
                Some(p) if p != port => {
                    // Reconnected, but not where it was sent.
                    self.fail(
                        Rule::ReconnectAfterSetEndpoint,
                        &[owed.since, evidence],
                        format!(
                            "SetEndpoint sent the device to {} but it reconnected on port {port}",
                            owed.what.url
                        ),
                    );
                }
                _ => self.pass(Rule::ReconnectAfterSetEndpoint, evidence),
            }
        }
    }

    /// An event arrived. `downchannel_open` says whether this connection has one.
    pub fn event(&mut self, ev: &EventFacts<'_>, evidence: u64) {
        self.resolve(clock::now());
        if ev.downchannel_open {
            self.pass(Rule::DownchannelBeforeEvents, evidence);
        } else {
            self.fail(
                Rule::DownchannelBeforeEvents,
                &[evidence],
                format!(
                    "{} arrived on a connection without an open downchannel",
                    ev.qualified_name
                ),
            );
        }
        if let Some(opened) = self.awaiting_sync {
            // VerifyGateway may precede SynchronizeState in newer SDKs.
            if ev.qualified_name == "System.SynchronizeState" {
                self.awaiting_sync = None;
                self.pass(Rule::SynchronizeStateFirst, evidence);
            } else if ev.qualified_name != "Alexa.ApiGateway.VerifyGateway" {
                self.awaiting_sync = None;
                self.fail(
                    Rule::SynchronizeStateFirst,
                    &[opened, evidence],
                    format!(
                        "first event after the downchannel opened was {}, not System.SynchronizeState",
                        ev.qualified_name
                    ),
                );
            }
        }
        self.message_id(ev.message_id, evidence);
    }

    fn message_id(&mut self, id: &str, evidence: u64) {
        if id.is_empty() {
            return;
        }
        let hash = fxhash(id);
        if self.recent_ids.contains(&hash) {
            self.fail(
                Rule::UniqueMessageIds,
                &[evidence],
                format!("messageId {id:?} was used before"),
            );
        } else {
            self.pass(Rule::UniqueMessageIds, evidence);
        }
        if self.recent_ids.len() == RECENT_IDS {
            self.recent_ids.pop_front();
        }
        self.recent_ids.push_back(hash);
    }

    /// A SoftwareInfo event: `valid` firmware, and whether System 1.1 was declared.
    pub fn software_info(&mut self, firmware: &str, valid: bool, system_1_1: Option<bool>, evidence: u64) {
        if valid {
            self.pass(Rule::ValidFirmwareVersion, evidence);
        } else {
            self.fail(
                Rule::ValidFirmwareVersion,
                &[evidence],
                format!("firmwareVersion {firmware:?} is invalid"),
            );
        }
        match system_1_1 {
            Some(false) => self.fail(
                Rule::SoftwareInfoNeedsSystem11,
                &[evidence],
                "SoftwareInfo sent but the declared capabilities lack System 1.1".into(),
            ),
            Some(true) => self.pass(Rule::SoftwareInfoNeedsSystem11, evidence),
            None => {}
        }
        if let Some(owed) = self.software_info.take() {
            if clock::now() <= owed.deadline {
                self.pass(Rule::SoftwareInfoAfterReport, evidence);
            } else {
                self.fail(
                    Rule::SoftwareInfoAfterReport,
                    &[owed.since, evidence],
                    "SoftwareInfo came after the deadline".into(),
                );
            }
        }
    }

    /// An ExceptionEncountered event.
    pub fn exception(&mut self, unparsed: &str, error_type: &str, evidence: u64) {
        let Some(owed) = self.exception.take() else {
            return;
        };
        let in_time = clock::now() <= owed.deadline;
        if in_time && error_type == "UNEXPECTED_INFORMATION_RECEIVED" && unparsed == &*owed.what {
            self.pass(Rule::ExceptionAfterMalformed, evidence);
        } else {
            let why = if !in_time {
                "ExceptionEncountered came after the deadline".to_string()
            } else if error_type != "UNEXPECTED_INFORMATION_RECEIVED" {
                format!("error.type was {error_type:?}, expected UNEXPECTED_INFORMATION_RECEIVED")
            } else {
                format!(
                    "unparsedDirective {unparsed:?} differs from the directive sent {:?}",
                    owed.what
                )
            };
            self.fail(Rule::ExceptionAfterMalformed, &[owed.since, evidence], why);
        }
    }

    /// The simulator pushed ReportSoftwareInfo.
    pub fn report_software_info_sent(&mut self, evidence: u64, within: Duration) {
        self.software_info = Some(Owed {
            what: (),
            since: evidence,
            deadline: clock::now() + within,
        });
        self.pending(Rule::SoftwareInfoAfterReport, evidence);
    }

    /// The simulator pushed a malformed directive (`raw` verbatim).
    pub fn malformed_sent(&mut self, raw: &str, evidence: u64, within: Duration) {
        self.exception = Some(Owed {
            what: raw.into(),
            since: evidence,
            deadline: clock::now() + within,
        });
        self.pending(Rule::ExceptionAfterMalformed, evidence);
    }

    /// The simulator pushed SetEndpoint.
    pub fn set_endpoint_sent(&mut self, target: EndpointTarget, evidence: u64, within: Duration) {
        self.endpoint = Some(Owed {
            what: target,
            since: evidence,
            deadline: clock::now() + within,
        });
        self.pending(Rule::ReconnectAfterSetEndpoint, evidence);
    }

    /// Turn overdue obligations into failures.
    pub fn resolve(&mut self, now: Instant) {
        if let Some(owed) = self.software_info.take_if(|o| now > o.deadline) {
            self.fail(
                Rule::SoftwareInfoAfterReport,
                &[owed.since],
                "no SoftwareInfo before the deadline".into(),
            );
        }
        if let Some(owed) = self.exception.take_if(|o| now > o.deadline) {
            self.fail(
                Rule::ExceptionAfterMalformed,
                &[owed.since],
                "no ExceptionEncountered before the deadline".into(),
            );
        }
        if let Some(owed) = self.endpoint.take_if(|o| now > o.deadline) {
            self.fail(
                Rule::ReconnectAfterSetEndpoint,
                &[owed.since],
                format!("no reconnect to {} before the deadline", owed.what.url),
            );
        }
    }

    /// The report for every rule, resolving deadlines first.
    pub fn report(&mut self) -> Vec<RuleReport> {
        self.resolve(clock::now());
        Rule::ALL
            .iter()
            .map(|rule| {
                let r = &self.rules[rule.index()];
                RuleReport {
                    rule: rule.name(),
                    description: rule.describe(),
                    verdict: r.verdict,
                    evidence: r.evidence.clone(),
                    detail: r.detail.as_deref().map(str::to_string),
                }
            })
            .collect()
    }
}

/// What the conformance rules need to know about an event.
pub struct EventFacts<'a> {
    pub qualified_name: &'a str,
    pub message_id: &'a str,
    pub downchannel_open: bool,
}

fn push_evidence(list: &mut Vec<u64>, id: u64) {
    if list.len() == MAX_EVIDENCE {
        list.remove(1); // keep the first, which usually explains the rest
    }
    list.push(id);
}

/// A small non-cryptographic hash (FNV-1a), enough to spot repeats.
fn fxhash(s: &str) -> u64 {
    s.bytes().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100000001b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(c: &mut Conformance, rule: Rule) -> Verdict {
        c.report().into_iter().find(|r| r.rule == rule.name()).unwrap().verdict
    }

    fn ev<'a>(name: &'a str, id: &'a str, dc: bool) -> EventFacts<'a> {
        EventFacts {
            qualified_name: name,
            message_id: id,
            downchannel_open: dc,
        }
    }

    #[test]
    fn synchronize_state_must_come_first() {
        let mut c = Conformance::default();
        c.downchannel_opened(1, 443);
        c.event(&ev("System.SynchronizeState", "a", true), 2);
        assert_eq!(verdict(&mut c, Rule::SynchronizeStateFirst), Verdict::Pass);
        c.downchannel_opened(3, 443);
        c.event(&ev("System.UserInactivityReport", "b", true), 4);
        assert_eq!(verdict(&mut c, Rule::SynchronizeStateFirst), Verdict::Fail);
        let report = c.report();
        let r = report.iter().find(|r| r.rule == "synchronize_state_first").unwrap();
        assert_eq!(r.evidence, vec![3, 4]);
    }

    #[test]
    fn duplicate_message_ids_fail() {
        let mut c = Conformance::default();
        c.event(&ev("A.B", "x", true), 1);
        c.event(&ev("A.B", "y", true), 2);
        assert_eq!(verdict(&mut c, Rule::UniqueMessageIds), Verdict::Pass);
        c.event(&ev("A.B", "x", true), 3);
        assert_eq!(verdict(&mut c, Rule::UniqueMessageIds), Verdict::Fail);
    }

    #[test]
    fn event_without_downchannel_fails() {
        let mut c = Conformance::default();
        c.event(&ev("A.B", "x", false), 1);
        assert_eq!(verdict(&mut c, Rule::DownchannelBeforeEvents), Verdict::Fail);
    }

    #[tokio::test(start_paused = true)]
    async fn software_info_deadline() {
        let mut c = Conformance::default();
        c.report_software_info_sent(1, Duration::from_secs(5));
        assert_eq!(verdict(&mut c, Rule::SoftwareInfoAfterReport), Verdict::Pending);
        c.software_info("123", true, None, 2);
        assert_eq!(verdict(&mut c, Rule::SoftwareInfoAfterReport), Verdict::Pass);
        c.report_software_info_sent(3, Duration::from_secs(5));
        tokio::time::advance(Duration::from_secs(6)).await;
        assert_eq!(verdict(&mut c, Rule::SoftwareInfoAfterReport), Verdict::Fail);
    }

    #[test]
    fn exception_must_echo_the_directive() {
        let mut c = Conformance::default();
        c.malformed_sent("{bad", 1, Duration::from_secs(5));
        c.exception("{bad", "UNEXPECTED_INFORMATION_RECEIVED", 2);
        assert_eq!(verdict(&mut c, Rule::ExceptionAfterMalformed), Verdict::Pass);
        c.malformed_sent("{bad", 3, Duration::from_secs(5));
        c.exception("{other", "UNEXPECTED_INFORMATION_RECEIVED", 4);
        assert_eq!(verdict(&mut c, Rule::ExceptionAfterMalformed), Verdict::Fail);
    }

    #[test]
    fn set_endpoint_needs_the_right_port() {
        let mut c = Conformance::default();
        let target = EndpointTarget {
            url: "https://localhost:9444".into(),
            port: Some(9444),
        };
        c.set_endpoint_sent(target.clone(), 1, Duration::from_secs(5));
        c.downchannel_opened(2, 9444);
        assert_eq!(verdict(&mut c, Rule::ReconnectAfterSetEndpoint), Verdict::Pass);
        c.set_endpoint_sent(target, 3, Duration::from_secs(5));
        c.downchannel_opened(4, 8443);
        assert_eq!(verdict(&mut c, Rule::ReconnectAfterSetEndpoint), Verdict::Fail);
    }

    #[test]
    fn system_1_1_is_needed_when_declared() {
        let mut c = Conformance::default();
        c.software_info("12", true, Some(false), 1);
        assert_eq!(verdict(&mut c, Rule::SoftwareInfoNeedsSystem11), Verdict::Fail);
        assert_eq!(verdict(&mut c, Rule::ValidFirmwareVersion), Verdict::Pass);
        c.software_info("0", false, None, 2);
        assert_eq!(verdict(&mut c, Rule::ValidFirmwareVersion), Verdict::Fail);
    }
}
