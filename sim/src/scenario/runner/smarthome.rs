//! The smart home steps: they act through the same functions as the control
//! API (`smarthome::alexa`) and read the gateway's journal entries and the
//! registry, waiting on the journal's change signal like `expect`.

use super::{DEFAULT_WITHIN, Done, Failed, Runner, failed};
use crate::clock;
use crate::journal::{Entry, Face, Kind, Query};
use crate::scenario::model::{Discover, ExpectGatewayEvent, ExpectRegistry, PropertyWant, SkillDirective};
use crate::scenario::template::toml_to_json;
use crate::smarthome::alexa::{self, DirectiveRequest, Exchange, Verdict};
use crate::smarthome::judge::{AnswerKind, Finding};
use serde_json::Value;
use std::collections::BTreeSet;
use std::sync::Arc;

/// `"15"` names rule 15, `"15 Alexa interface"` names it in full, and
/// `"Alexa interface"` by its subject.
fn rule_matches(want: &str, rule: &str) -> bool {
    let (number, subject) = rule.split_once(' ').unwrap_or((rule, ""));
    rule == want || number == want || subject == want
}

fn endpoint_name(id: &Option<String>) -> String {
    id.as_deref()
        .map_or_else(|| "(no endpointId)".into(), |id| format!("{id:?}"))
}

fn verdict_name(v: Verdict) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// The checks `discover` and `skill_directive` share: verdict and findings.
fn check_exchange(ex: &Exchange, verdict: Option<&str>, rules: &[String]) -> Result<(), String> {
    let want = verdict.unwrap_or("ok");
    let got = verdict_name(ex.verdict);
    if got != want {
        return Err(format!(
            "expected verdict {want}, got {got}{}; findings: {}",
            ex.detail.as_ref().map(|d| format!(" ({d})")).unwrap_or_default(),
            describe(&ex.findings)
        ));
    }
    for rule in rules {
        if !ex.findings.iter().any(|f| rule_matches(rule, f.rule)) {
            return Err(format!(
                "expected a finding of rule {rule}, got: {}",
                describe(&ex.findings)
            ));
        }
    }
    Ok(())
}

fn describe(findings: &[Finding]) -> String {
    if findings.is_empty() {
        return "none".into();
    }
    findings
        .iter()
        .take(8)
        .map(|f| format!("[{:?} {} at {}: {}]", f.severity, f.rule, f.pointer, f.message))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A property object with this name (namespace) and value among `props`.
fn has_property(props: &[&Value], want: &PropertyWant) -> bool {
    let value = toml_to_json(&want.value);
    props.iter().any(|p| {
        p["name"] == want.name.as_str()
            && want.namespace.as_deref().is_none_or(|n| p["namespace"] == n)
            && p["value"] == value
    })
}

impl Runner {
    pub(super) async fn discover(&self, d: &Discover) -> Result<Done, Failed> {
        let report = alexa::discover(&self.state, &d.user)
            .await
            .map_err(|e| failed(e.to_string()))?;
        let ids = report.exchange.journal.to_vec();
        let fail = |text: String| Failed { text, ids: ids.clone() };
        check_exchange(&report.exchange, d.verdict.as_deref(), &d.findings).map_err(fail)?;
        let dropped_text = || {
            report
                .dropped
                .iter()
                .map(|x| format!("{} ({})", endpoint_name(&x.endpoint_id), describe(&x.findings)))
                .collect::<Vec<_>>()
                .join(", ")
        };
        if let Some(want) = &d.accepted {
            let want: BTreeSet<&str> = want.iter().map(String::as_str).collect();
            let got: BTreeSet<&str> = report.accepted.iter().map(String::as_str).collect();
            if want != got {
                return Err(fail(format!(
                    "expected accepted {want:?}, got {got:?}; dropped: {}",
                    dropped_text()
                )));
            }
        }
        // Alexa would not show a dropped endpoint: that fails the step
        // unless the scenario says it expects that endpoint dropped.
        let unexpected: Vec<_> = report
            .dropped
            .iter()
            .filter(|x| {
                !d.dropped
                    .iter()
                    .any(|w| x.endpoint_id.as_deref() == Some(w.endpoint.as_str()))
            })
            .collect();
        if report.exchange.verdict == Verdict::Ok && !unexpected.is_empty() {
            return Err(fail(format!(
                "Alexa would drop {} endpoint(s) the step does not expect dropped: {}",
                unexpected.len(),
                dropped_text()
            )));
        }
        for want in &d.dropped {
            let hit = report
                .dropped
                .iter()
                .find(|x| x.endpoint_id.as_deref() == Some(&want.endpoint));
            let Some(hit) = hit else {
                return Err(fail(format!("expected {:?} dropped; it was not", want.endpoint)));
            };
            if let Some(rule) = &want.rule {
                if !hit.findings.iter().any(|f| rule_matches(rule, f.rule)) {
                    return Err(fail(format!(
                        "{:?} was dropped, but not for rule {rule}: {}",
                        want.endpoint,
                        describe(&hit.findings)
                    )));
                }
            }
        }
        Ok(Done::ids(ids))
    }

    pub(super) async fn skill_directive(&self, d: &SkillDirective) -> Result<Done, Failed> {
        let (namespace, name) = d
            .directive
            .rsplit_once('.')
            .ok_or_else(|| failed(format!("directive {:?} must be Namespace.Name", d.directive)))?;
        let payload = d
            .payload
            .as_ref()
            .map(|p| toml_to_json(&toml::Value::Table(p.clone())))
            .unwrap_or_else(|| serde_json::json!({}));
        let vars = self.shared().vars.clone();
        let req = DirectiveRequest {
            user: d.user.clone(),
            endpoint: d.endpoint.as_deref().map(|e| vars.expand(e)),
            namespace: namespace.into(),
            name: name.into(),
            payload: vars.expand_json(&payload),
        };
        let report = alexa::send(&self.state, &req)
            .await
            .map_err(|e| failed(e.to_string()))?;
        let ids = report.exchange.journal.to_vec();
        let fail = |text: String| Failed { text, ids: ids.clone() };
        check_exchange(&report.exchange, d.verdict.as_deref(), &d.findings).map_err(fail)?;
        let answer_name = report
            .exchange
            .answer
            .as_ref()
            .and_then(|a| a["event"]["header"]["name"].as_str())
            .unwrap_or("");
        if let Some(want) = &d.answer {
            if answer_name != want {
                return Err(fail(format!("expected a {want} answer, got {answer_name:?}")));
            }
        }
        if let Some(want) = &d.error_type {
            match &report.kind {
                Some(AnswerKind::ErrorResponse { error_type, .. }) if error_type == want => {}
                other => return Err(fail(format!("expected ErrorResponse {want}, got {other:?}"))),
            }
        }
        Ok(Done::ids(ids))
    }

    /// Gateway answers after the scenario started, not yet claimed, each
    /// with its request entry.
    fn gateway_exchanges(&self) -> Vec<(Arc<Entry>, Arc<Entry>)> {
        let q = Query {
            face: Some(Face::Gateway),
            since: Some(self.since),
            limit: Some(usize::MAX),
            device: None,
        };
        let journal = &self.state.journal;
        journal
            .query(&q)
            .into_iter()
            .filter(|e| e.kind == Kind::Response && !self.state.scenarios.is_claimed(e.id))
            .filter_map(|resp| Some((journal.get(resp.body["request"].as_u64()?)?, resp)))
            .collect()
    }

    pub(super) async fn expect_gateway_event(&self, e: &ExpectGatewayEvent) -> Result<Done, Failed> {
        let window = e.within.map_or(DEFAULT_WITHIN, |d| d.0);
        let deadline = clock::deadline_in(window);
        let status = e.status.unwrap_or(202);
        let fits = |req: &Entry, resp: &Entry| {
            let b = &req.body;
            let event = format!(
                "{}.{}",
                b["namespace"].as_str().unwrap_or(""),
                b["name"].as_str().unwrap_or("")
            );
            let message = &b["message"];
            let props: Vec<&Value> = ["/event/payload/change/properties", "/context/properties"]
                .iter()
                .filter_map(|p| message.pointer(p).and_then(Value::as_array))
                .flatten()
                .collect();
            b["user"] == e.user.as_str()
                && e.event.as_deref().is_none_or(|w| w == event)
                && e.endpoint.as_deref().is_none_or(|w| b["endpoint"] == w)
                && resp.body["status"] == status
                && e.code.as_deref().is_none_or(|c| resp.body["code"] == c)
                && e.property.as_ref().is_none_or(|p| has_property(&props, p))
        };
        let found = self
            .until(deadline, || {
                self.gateway_exchanges().into_iter().find(|(req, resp)| fits(req, resp))
            })
            .await;
        let Some((req, resp)) = found else {
            let seen: Vec<String> = self
                .gateway_exchanges()
                .iter()
                .filter(|(req, _)| req.body["user"] == e.user.as_str())
                .take(5)
                .map(|(req, resp)| format!("  journal #{} {} → {}\n", req.id, req.summary, resp.summary))
                .collect();
            return Err(failed(format!(
                "no gateway event {} for {} within {}; what {} sent:\n{}",
                e.event.as_deref().unwrap_or("(any)"),
                e.user,
                crate::duration::format(window),
                e.user,
                if seen.is_empty() {
                    "  nothing\n".into()
                } else {
                    seen.concat()
                }
            )));
        };
        self.state.scenarios.claim(resp.id, &self.state.journal);
        Ok(Done {
            ids: vec![req.id, resp.id],
            mark: Some(resp.id),
        })
    }

    pub(super) async fn expect_registry(&self, r: &ExpectRegistry) -> Result<Done, Failed> {
        let window = r.within.map_or(DEFAULT_WITHIN, |d| d.0);
        let deadline = clock::deadline_in(window);
        let registry = &self.state.smarthome.registry;
        let present = r.present.unwrap_or(true);
        let holds = || {
            let known = registry.declaration(&r.user, &r.endpoint).is_some();
            let property = r.property.as_ref().is_none_or(|p| {
                let ns = p.namespace.as_deref();
                let value = registry.property(&r.user, &r.endpoint, ns, &p.name);
                value == Some(toml_to_json(&p.value))
            });
            (known == present && property).then_some(())
        };
        if self.until(deadline, holds).await.is_some() {
            return Ok(Done::ids(Vec::new()));
        }
        let snapshot = registry.snapshot(&r.user);
        let known: Vec<&str> = snapshot["endpoints"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| e["endpointId"].as_str())
            .collect();
        let state = snapshot["endpoints"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|e| e["endpointId"] == r.endpoint.as_str())
            .map(|e| e["state"].to_string())
            .unwrap_or_else(|| "-".into());
        Err(failed(format!(
            "registry of {} after {}: {} is {}expected {}; known endpoints {known:?}; its state {state}",
            r.user,
            crate::duration::format(window),
            r.endpoint,
            if known.contains(&r.endpoint.as_str()) {
                "known, "
            } else {
                "unknown, "
            },
            match (&r.property, present) {
                (Some(p), _) => format!("{} = {}", p.name, toml_to_json(&p.value)),
                (None, true) => "known".into(),
                (None, false) => "gone".into(),
            }
        )))
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

    /// A state whose user "u" has a skill answering `answer` (a shell
    /// script standing in for a handler: the real sample skill is
    /// exercised by the integration tests and the library scenarios).
    fn state_with_skill(answer: &serde_json::Value) -> Arc<State> {
        let text = format!(
            "[[skills]]\nid = 's'\ncommand = ['sh', '-c', 'cat >/dev/null; printf %s \"$0\"', '{}']\ntimeout = '5s'\n\
             [[users]]\nid = 'u'\nskill = 's'\ntoken = 't'\n",
            answer.to_string().replace('\'', "")
        );
        let config = Config::from_toml(&text, "t").unwrap();
        config.validate().unwrap();
        State::new(config, Arc::new(Journal::new(1000)))
    }

    fn discover_response(ids: &[&str]) -> serde_json::Value {
        let endpoints: Vec<_> = ids
            .iter()
            .map(|id| {
                json!({"endpointId": id, "manufacturerName": "M", "description": "D", "friendlyName": "Lamp",
                       "displayCategories": ["LIGHT"],
                       "capabilities": [{"type": "AlexaInterface", "interface": "Alexa", "version": "3"}]})
            })
            .collect();
        json!({"event": {"header": {"namespace": "Alexa.Discovery", "name": "Discover.Response",
               "payloadVersion": "3", "messageId": "m-1"}, "payload": {"endpoints": endpoints}}})
    }

    async fn run_text(state: &Arc<State>, steps: &str) -> super::super::ScenarioResult {
        let s = crate::scenario::load::parse(&format!("name = 't'\n{steps}"), "t.toml").unwrap();
        run(state.clone(), &s, 0, Arc::new(|_| {})).await
    }

    #[tokio::test]
    async fn discover_checks_the_accepted_set_and_expect_registry_sees_it() {
        let state = state_with_skill(&discover_response(&["a", "b", "bad id\\\\"]));
        let r = run_text(
            &state,
            "[[steps]]\nkind = 'discover'\nuser = 'u'\naccepted = ['a', 'b']\n\
             dropped = [{ endpoint = 'bad id\\\\', rule = '6' }]\n\
             [[steps]]\nkind = 'expect_registry'\nuser = 'u'\nendpoint = 'a'\n\
             [[steps]]\nkind = 'expect_registry'\nuser = 'u'\nendpoint = 'zz'\npresent = false\nwithin = '10ms'\n",
        )
        .await;
        assert!(r.passed, "{r:#?}");
        // Without `dropped`, an endpoint Alexa would drop fails the step,
        // naming it and the rule.
        let r = run_text(&state, "[[steps]]\nkind = 'discover'\nuser = 'u'\n").await;
        let failure = r.failure.unwrap();
        assert!(
            failure.contains("Alexa would drop 1 endpoint(s) the step does not expect dropped: \"bad id\\\\\\\\\" ([Error 6 endpointId"),
            "{failure}"
        );
        // Rules are named by number, full name or subject.
        for rule in ["6", "6 endpointId", "endpointId"] {
            let steps = format!(
                "[[steps]]\nkind = 'discover'\nuser = 'u'\nfindings = ['{rule}']\ndropped = [{{ endpoint = 'bad id\\\\', rule = '{rule}' }}]\n"
            );
            let r = run_text(&state, &steps).await;
            assert!(r.passed, "{rule}: {r:#?}");
        }
        let r = run_text(&state, "[[steps]]\nkind = 'discover'\nuser = 'u'\naccepted = ['a']\n").await;
        assert!(!r.passed);
        let failure = r.failure.unwrap();
        assert!(
            failure.contains("expected accepted {\"a\"}, got {\"a\", \"b\"}"),
            "{failure}"
        );
        let r = run_text(
            &state,
            "[[steps]]\nkind = 'discover'\nuser = 'u'\nverdict = 'timeout'\n",
        )
        .await;
        assert!(r.failure.unwrap().contains("expected verdict timeout, got ok"));
        let r = run_text(&state, "[[steps]]\nkind = 'discover'\nuser = 'nobody'\n").await;
        assert!(r.failure.unwrap().contains("no user \"nobody\""));
    }

    #[tokio::test(start_paused = true)]
    async fn expect_registry_fails_naming_what_alexa_knows() {
        let state = state_with_skill(&json!({}));
        let r = run_text(
            &state,
            "[[steps]]\nkind = 'expect_registry'\nuser = 'u'\nendpoint = 'a'\nwithin = '1s'\n",
        )
        .await;
        let failure = r.failure.unwrap();
        assert!(
            failure.contains("a is unknown, expected known; known endpoints []"),
            "{failure}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn expect_gateway_event_matches_user_event_endpoint_status_and_property() {
        let state = state_with_skill(&json!({}));
        let message = json!({"event": {"header": {"namespace": "Alexa", "name": "ChangeReport"},
            "payload": {"change": {"properties": [{"namespace": "Alexa.PowerController", "name": "powerState", "value": "ON"}]}}}});
        let gateway = |user: &str, status: u16| {
            let req = state.journal.record(
                Record::new(Face::Gateway, Kind::Request, "POST /v3/events").body(json!({
                    "user": user, "namespace": "Alexa", "name": "ChangeReport", "endpoint": "a", "message": message,
                })),
            );
            state.journal.record(
                Record::new(Face::Gateway, Kind::Response, status.to_string())
                    .body(json!({"status": status, "request": req})),
            );
        };
        gateway("other", 202);
        gateway("u", 400);
        let steps = "[[steps]]\nkind = 'expect_gateway_event'\nuser = 'u'\nevent = 'Alexa.ChangeReport'\nendpoint = 'a'\n\
                     property = { name = 'powerState', value = 'ON' }\nwithin = '1s'\n";
        let r = run_text(&state, steps).await;
        let failure = r.failure.unwrap();
        assert!(
            failure.contains("no gateway event Alexa.ChangeReport for u"),
            "{failure}"
        );
        assert!(failure.contains("→ 400"), "{failure}");
        gateway("u", 202);
        let r = run_text(&state, steps).await;
        assert!(r.passed, "{r:#?}");
        // Each gateway answer satisfies one expectation only.
        let r = run_text(&state, steps).await;
        assert!(!r.passed);
    }
}
