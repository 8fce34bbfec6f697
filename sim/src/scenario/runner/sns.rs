//! The SNS and Smart Properties steps. Events are raised through the same
//! functions as the control API (`crate::asp`); deliveries, confirmations
//! and dead letters are read from the journal entries face `sns` writes
//! (the contract in SNS-CONTRACT.md), waiting on the journal's change
//! signal like `expect`. Each matched entry is claimed, so one delivery
//! satisfies one step.

use super::{DEFAULT_WITHIN, Done, Failed, Runner, failed};
use crate::asp;
use crate::clock;
use crate::journal::{Entry, Face, Kind, Query};
use crate::scenario::load::Diagnostics;
use crate::scenario::model::*;
use crate::scenario::template::toml_to_json;
use serde_json::{Map, Value};
use std::sync::Arc;

/// The progress label of an SNS step.
pub(super) fn label(a: &Action) -> String {
    match a {
        Action::PublishEvent(p) => match (&p.event_type, &p.event) {
            (Some(t), _) => format!("publish {t} for {}", p.unit.as_deref().unwrap_or("?")),
            (None, _) => "publish an event".into(),
        },
        Action::ExpectDelivery(d) => format!(
            "{} delivered to {}",
            d.message_type.as_deref().unwrap_or("Notification"),
            d.subscription
        ),
        Action::ExpectSubscriptionConfirmed(c) => format!("{} confirmed", c.subscription),
        Action::ExpectDeadLetter(d) => format!("a dead letter for {}", d.subscription),
        Action::ActivateSubscription(a) => format!("activate the subscription of {}", a.unit),
        Action::RunAutomation(r) => format!("run automation {}", r.automation),
        _ => String::new(),
    }
}

/// What `load` cannot check by shape alone.
pub(crate) fn check(a: &Action, at: usize, diags: &mut Diagnostics<'_>) {
    match a {
        Action::PublishEvent(p) => {
            if p.event.is_some() == p.event_type.is_some() {
                diags.at(at, "publish_event takes exactly one of `event` or `type` (with `unit`)");
            }
            if p.event_type.is_some() && p.unit.is_none() {
                diags.at(at, "publish_event with `type` needs `unit`");
            }
            if let Some(t) = p.event_type.as_deref().filter(|t| asp::EventType::parse(t).is_none()) {
                let all = asp::EventType::ALL.map(|t| t.full_name()).join(", ");
                diags.at(
                    at,
                    format!("type `{t}` is not an event type of the seed (one of {all})"),
                );
            }
        }
        Action::ExpectDelivery(d) => {
            if let Some(t) = d.message_type.as_deref().filter(|t| !MESSAGE_TYPES.contains(t)) {
                diags.at(
                    at,
                    format!("message_type `{t}` is not one of {}", MESSAGE_TYPES.join(", ")),
                );
            }
            if let Some(s) = d.status.filter(|s| !(100..=599).contains(s)) {
                diags.at(at, format!("status {s} is not an HTTP status"));
            }
            if d.attempts == Some(0) {
                diags.at(at, "attempts counts from 1");
            }
        }
        Action::ActivateSubscription(a) => {
            if let Some(s) = a
                .status
                .as_deref()
                .filter(|s| !asp::validate::ACTIVATION_STATUS.contains(s))
            {
                let all = asp::validate::ACTIVATION_STATUS.join(", ");
                diags.at(at, format!("status `{s}` is not one of {all}"));
            }
        }
        Action::RunAutomation(r) => {
            if let Some(s) = r
                .status
                .as_deref()
                .filter(|s| !asp::validate::AUTOMATION_STATUS.contains(s))
            {
                let all = asp::validate::AUTOMATION_STATUS.join(", ");
                diags.at(at, format!("status `{s}` is not one of {all}"));
            }
        }
        _ => {}
    }
}

/// The hand-event request a `publish_event` step stands for.
fn hand_request(p: &PublishEvent) -> Value {
    let mut m = Map::new();
    let mut put = |k: &str, v: &Option<String>| {
        if let Some(v) = v {
            m.insert(k.into(), Value::String(v.clone()));
        }
    };
    put("type", &p.event_type);
    put("unit", &p.unit);
    put("automation", &p.automation);
    put("skill", &p.skill);
    put("stage", &p.stage);
    put("locale", &p.locale);
    put("intent", &p.intent);
    put("session", &p.session);
    put("request", &p.request);
    put("error_type", &p.error_type);
    put("message", &p.message);
    put("subscription", &p.subscription);
    if let Some(e) = &p.errors {
        m.insert("errors".into(), toml_to_json(e));
    }
    Value::Object(m)
}

impl Runner {
    pub(super) async fn sns_step(&self, a: &Action) -> Result<Done, Failed> {
        match a {
            Action::PublishEvent(p) => self.publish_event(p),
            Action::ExpectDelivery(d) => self.expect_delivery(d).await,
            Action::ExpectSubscriptionConfirmed(c) => self.expect_confirmed(c).await,
            Action::ExpectDeadLetter(d) => self.expect_dead_letter(d).await,
            Action::ActivateSubscription(s) => {
                let vars = self.shared().vars.clone();
                let raised =
                    asp::activation::activate(&self.state, &vars.expand(&s.unit)).map_err(|e| failed(e.to_string()))?;
                self.event_status(&raised, "/payload/result/status", s.status.as_deref())
            }
            Action::RunAutomation(r) => {
                let run = asp::automation::run(&self.state, &r.automation)
                    .await
                    .map_err(|e| failed(e.to_string()))?;
                self.event_status(&run.event, "/payload/result/status", r.status.as_deref())
            }
            _ => Err(failed("not an SNS step")),
        }
    }

    /// The raised event's status, checked against `want`.
    fn event_status(&self, raised: &asp::Raised, pointer: &str, want: Option<&str>) -> Result<Done, Failed> {
        let ids = vec![raised.journal];
        let Some(want) = want else {
            return Ok(Done::ids(ids));
        };
        let entry = self.state.journal.get(raised.journal);
        let got = entry
            .as_ref()
            .and_then(|e| {
                e.body["event"]
                    .pointer(pointer)
                    .and_then(Value::as_str)
                    .map(str::to_string)
            })
            .unwrap_or_default();
        if got == want {
            Ok(Done::ids(ids))
        } else {
            Err(Failed {
                text: format!("expected {} with status {want}, got {got:?}", raised.event_type),
                ids,
            })
        }
    }

    fn publish_event(&self, p: &PublishEvent) -> Result<Done, Failed> {
        let vars = self.shared().vars.clone();
        let result = match &p.event {
            Some(table) => {
                let doc = vars.expand_json(&toml_to_json(&toml::Value::Table(table.clone())));
                asp::raise(&self.state, &doc, p.topic.as_deref())
            }
            None => serde_json::from_value::<asp::hand::HandEvent>(vars.expand_json(&hand_request(p)))
                .map_err(|e| asp::AspError::BadRequest(e.to_string()))
                .and_then(|hand| asp::hand::build(&self.state, &hand))
                .and_then(|doc| asp::raise(&self.state, &doc, p.topic.as_deref())),
        };
        match (result, &p.refused) {
            (Ok(raised), None) => Ok(Done::ids(vec![raised.journal])),
            (Ok(raised), Some(want)) => Err(Failed {
                text: format!("expected the event refused at {want}; it was published"),
                ids: vec![raised.journal],
            }),
            (Err(e), Some(want)) if e.to_string().contains(want.as_str()) => Ok(Done::ids(Vec::new())),
            (Err(e), _) => Err(failed(format!("the event was refused: {e}"))),
        }
    }

    /// ARNs `wanted` (an endpoint URL or an ARN) names among the store's subscriptions.
    fn subscription_arns(&self, wanted: &str) -> Vec<String> {
        let mut arns: Vec<String> = self
            .state
            .sns
            .subscriptions(None)
            .into_iter()
            .filter(|s| s.endpoint == wanted || s.arn == wanted)
            .map(|s| s.arn)
            .collect();
        if wanted.starts_with("arn:") && !arns.iter().any(|a| a == wanted) {
            arns.push(wanted.to_string());
        }
        arns
    }

    /// Unclaimed face `sns` entries of `kind` since the scenario started.
    fn sns_entries(&self, kind: Kind) -> Vec<Arc<Entry>> {
        let q = Query {
            face: Some(Face::Sns),
            since: Some(self.since),
            limit: Some(usize::MAX),
            device: None,
        };
        self.state
            .journal
            .query(&q)
            .into_iter()
            .filter(|e| e.kind == kind && !self.state.scenarios.is_claimed(e.id))
            .collect()
    }

    /// Whether entry `e` is about the subscription `wanted` names.
    fn about(&self, e: &Entry, wanted: &str) -> bool {
        let sub = e.body["subscription"].as_str().unwrap_or("");
        self.subscription_arns(wanted).iter().any(|a| a == sub) || e.summary.contains(&format!(" to {wanted}:"))
    }

    async fn expect_delivery(&self, d: &ExpectDelivery) -> Result<Done, Failed> {
        let window = d.within.map_or(DEFAULT_WITHIN, |w| w.0);
        let deadline = clock::deadline_in(window);
        let wanted = self.shared().vars.expand(&d.subscription);
        let kind = d.message_type.as_deref().unwrap_or("Notification");
        let fits = |e: &Entry| {
            let b = &e.body;
            let status = b["status"].as_u64();
            self.about(e, &wanted)
                && b["type"] == kind
                && match d.status {
                    Some(s) => status == Some(u64::from(s)),
                    None => b["delivered"] == true && status.is_some_and(|s| (200..300).contains(&s)),
                }
                && d.attempts.is_none_or(|n| b["attempt"].as_u64() == Some(u64::from(n)))
        };
        let found = self
            .until(deadline, || {
                self.sns_entries(Kind::Response).into_iter().find(|e| fits(e))
            })
            .await;
        let Some(hit) = found else {
            let seen: Vec<String> = self
                .sns_entries(Kind::Response)
                .iter()
                .filter(|e| self.about(e, &wanted))
                .take(8)
                .map(|e| format!("  journal #{} {}\n", e.id, e.summary))
                .collect();
            return Err(failed(format!(
                "no {kind} delivery to {wanted}{}{} within {}; attempts seen:\n{}",
                d.status.map(|s| format!(" with status {s}")).unwrap_or_default(),
                d.attempts.map(|n| format!(" on attempt {n}")).unwrap_or_default(),
                crate::duration::format(window),
                if seen.is_empty() {
                    "  none\n".into()
                } else {
                    seen.concat()
                }
            )));
        };
        self.state.scenarios.claim(hit.id, &self.state.journal);
        Ok(Done {
            ids: vec![hit.id],
            mark: Some(hit.id),
        })
    }

    async fn expect_confirmed(&self, c: &ExpectSubscriptionConfirmed) -> Result<Done, Failed> {
        let window = c.within.map_or(DEFAULT_WITHIN, |w| w.0);
        let deadline = clock::deadline_in(window);
        let wanted = self.shared().vars.expand(&c.subscription);
        let confirmed = || {
            let entry = self
                .sns_entries(Kind::Request)
                .into_iter()
                .find(|e| e.body["confirmed"] == true && self.about(e, &wanted));
            if let Some(e) = entry {
                return Some(vec![e.id]);
            }
            let store = self.state.sns.subscriptions(None);
            store
                .iter()
                .any(|s| (s.endpoint == wanted || s.arn == wanted) && !s.pending)
                .then(Vec::new)
        };
        match self.until(deadline, confirmed).await {
            Some(ids) => Ok(Done::ids(ids)),
            None => Err(failed(format!(
                "{wanted} was not confirmed within {} (subscriptions: {:?})",
                crate::duration::format(window),
                self.state
                    .sns
                    .subscriptions(None)
                    .iter()
                    .map(|s| format!("{} {}", s.endpoint, if s.pending { "pending" } else { "confirmed" }))
                    .collect::<Vec<_>>()
            ))),
        }
    }

    /// Read from the journal's `dead_letter` entries (the dead-letter list
    /// of `sns::deliver` holds the same messages).
    async fn expect_dead_letter(&self, d: &ExpectDeadLetter) -> Result<Done, Failed> {
        let window = d.within.map_or(DEFAULT_WITHIN, |w| w.0);
        let deadline = clock::deadline_in(window);
        let wanted = self.shared().vars.expand(&d.subscription);
        let found = self
            .until(deadline, || {
                self.sns_entries(Kind::Error)
                    .into_iter()
                    .find(|e| e.body["dead_letter"] == true && self.about(e, &wanted))
            })
            .await;
        let Some(hit) = found else {
            return Err(failed(format!(
                "no dead letter for {wanted} within {}",
                crate::duration::format(window)
            )));
        };
        self.state.scenarios.claim(hit.id, &self.state.journal);
        Ok(Done {
            ids: vec![hit.id],
            mark: Some(hit.id),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::run;
    use crate::config::Config;
    use crate::journal::{Face, Journal, Kind, Record};
    use crate::state::State;
    use serde_json::json;
    use std::sync::Arc;

    const HOOK: &str = "http://127.0.0.1:9/hook";

    /// Units `b` (a building) and `r` in it, an automation on an endpoint
    /// Alexa never discovered, and a subscription to the asp topic.
    fn state() -> (Arc<State>, String) {
        let text = "[[skills]]\nid = 's'\ncommand = ['true']\n[[users]]\nid = 'u'\nskill = 's'\ntoken = 't'\n\
                    [[units]]\nid = 'b'\n[[units]]\nid = 'r'\nparent = 'b'\nskill = 's'\n\
                    [[automations]]\nid = 'ghost'\nunit = 'r'\nuser = 'u'\nactions = [{endpoint = 'nowhere'}]\n";
        let config = Config::from_toml(text, "t").unwrap();
        config.validate().unwrap();
        let state = State::new(config, Arc::new(Journal::new(1000)));
        let topic = state.sns.topic_arn("asp-events");
        let sub = state.sns.subscribe(&topic, "http", HOOK, Default::default()).unwrap();
        (state, sub.arn)
    }

    async fn run_text(state: &Arc<State>, steps: &str) -> super::super::ScenarioResult {
        let s = crate::scenario::load::parse(&format!("name = 't'\n{steps}"), "t.toml").unwrap();
        run(state.clone(), &s, 0, Arc::new(|_| {})).await
    }

    fn asp_events(state: &State) -> Vec<serde_json::Value> {
        state
            .journal
            .query(&Default::default())
            .iter()
            .filter(|e| e.face == Face::Asp)
            .map(|e| e.body["event"].clone())
            .collect()
    }

    #[tokio::test]
    async fn event_steps_raise_and_check_their_events() {
        let (state, _) = state();
        let r = run_text(
            &state,
            "[[steps]]\nkind = 'activate_subscription'\nunit = 'r'\nstatus = 'SUCCEEDED'\n\
             [[steps]]\nkind = 'run_automation'\nautomation = 'ghost'\nstatus = 'FAILURE'\n\
             [[steps]]\nkind = 'publish_event'\ntype = 'Alexa.Skill.Interaction.Failure'\nunit = 'r'\nerror_type = 'ENDPOINT_TIMEOUT'\n\
             [[steps]]\nkind = 'publish_event'\ntype = 'Alexa.Skill.Interaction.Failure'\nunit = 'r'\nerror_type = 'LATE'\nrefused = '/payload/error/type'\n",
        )
        .await;
        assert!(r.passed, "{r:#?}");
        let events = asp_events(&state);
        assert_eq!(events.len(), 3, "{events:#?}");
        assert_eq!(events[0]["header"]["entities"]["unit"]["parent"]["id"], "b");
        assert_eq!(
            events[1]["payload"]["result"]["errors"][0]["type"],
            "ENDPOINT_NOT_FOUND"
        );
        assert_eq!(events[1]["payload"]["result"]["errors"][0]["id"], "nowhere");
        assert_eq!(events[2]["payload"]["error"]["type"], "ENDPOINT_TIMEOUT");

        let r = run_text(
            &state,
            "[[steps]]\nkind = 'run_automation'\nautomation = 'ghost'\nstatus = 'SUCCESS'\n",
        )
        .await;
        let failure = r.failure.unwrap();
        assert!(
            failure.contains("expected Alexa.Automation.Execution.Completion with status SUCCESS, got \"FAILURE\""),
            "{failure}"
        );
        let r = run_text(&state, "[[steps]]\nkind = 'activate_subscription'\nunit = 'nope'\n").await;
        assert!(r.failure.unwrap().contains("unknown unit \"nope\""));
    }

    #[test]
    fn step_mistakes_are_named_at_load() {
        for (steps, want) in [
            ("kind = 'publish_event'\nunit = 'r'", "exactly one of `event` or `type`"),
            (
                "kind = 'publish_event'\ntype = 'A.B.C'\nunit = 'r'",
                "type `A.B.C` is not an event type",
            ),
            (
                "kind = 'expect_delivery'\nsubscription = 'x'\nmessage_type = 'Note'",
                "message_type `Note`",
            ),
            (
                "kind = 'expect_delivery'\nsubscription = 'x'\nattempts = 0",
                "attempts counts from 1",
            ),
            (
                "kind = 'run_automation'\nautomation = 'a'\nstatus = 'OK'",
                "status `OK` is not one of SUCCESS, FAILURE",
            ),
            (
                "kind = 'activate_subscription'\nunit = 'a'\nstatus = 'OK'",
                "status `OK` is not one of SUCCEEDED, FAILED",
            ),
        ] {
            let err = crate::scenario::load::parse(&format!("name = 't'\n[[steps]]\n{steps}\n"), "t.toml").unwrap_err();
            assert!(format!("{err:?}").contains(want), "{want}: {err:?}");
        }
    }

    /// An attempt entry as the delivery worker journals it (SNS-CONTRACT.md §2).
    fn attempt(state: &State, sub: &str, n: u64, status: u16) {
        let delivered = (200..300).contains(&status);
        state.journal.record(
            Record::new(
                Face::Sns,
                Kind::Response,
                format!("attempt {n} of m1 to {HOOK}: {status}"),
            )
            .body(json!({
                "subscription": sub, "message_id": "m1", "type": "Notification", "attempt": n,
                "status": status, "error": null, "delivered": delivered, "final": delivered,
            })),
        );
    }

    #[tokio::test(start_paused = true)]
    async fn delivery_steps_read_the_sns_journal() {
        let (state, sub) = state();
        let delivered =
            format!("[[steps]]\nkind = 'expect_delivery'\nsubscription = '{HOOK}'\nattempts = 2\nwithin = '1s'\n");
        let r = run_text(&state, &delivered).await;
        let failure = r.failure.unwrap();
        assert!(
            failure.contains(&format!("no Notification delivery to {HOOK} on attempt 2")),
            "{failure}"
        );
        attempt(&state, &sub, 1, 500);
        attempt(&state, &sub, 2, 200);
        let steps = format!(
            "[[steps]]\nkind = 'expect_delivery'\nsubscription = '{sub}'\nstatus = 500\nattempts = 1\n{delivered}"
        );
        let r = run_text(&state, &steps).await;
        assert!(r.passed, "{r:#?}");
        // Each attempt entry satisfies one step only.
        let r = run_text(&state, &delivered).await;
        assert!(!r.passed);

        let dead = format!("[[steps]]\nkind = 'expect_dead_letter'\nsubscription = '{HOOK}'\nwithin = '1s'\n");
        assert!(!run_text(&state, &dead).await.passed);
        state
            .journal
            .record(Record::new(Face::Sns, Kind::Error, "m2 dead-lettered").body(
                json!({"subscription": sub, "message_id": "m2", "dead_letter": true, "reason": "retries exhausted"}),
            ));
        assert!(run_text(&state, &dead).await.passed);

        let confirmed =
            format!("[[steps]]\nkind = 'expect_subscription_confirmed'\nsubscription = '{HOOK}'\nwithin = '1s'\n");
        let r = run_text(&state, &confirmed).await;
        assert!(r.failure.unwrap().contains("pending"));
        state.journal.record(
            Record::new(Face::Sns, Kind::Request, format!("subscription {sub} confirmed"))
                .body(json!({"subscription": sub, "confirmed": true})),
        );
        assert!(run_text(&state, &confirmed).await.passed);
    }
}
