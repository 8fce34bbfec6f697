//! Smart Properties events end to end, over the real control API: each
//! trigger raises its event, and the event is what SNS publishes on the
//! `[asp] topic` (asserted on the journal's `sns` Publish entry).

use avs_sim::asp::{ActionDecl, AutomationDecl, UnitDecl};
use avs_sim::smarthome::SkillDecl;
use avs_sim_tests::TestSim;
use avs_sim_tests::skill;
use serde_json::{Value, json};
use std::time::Duration;

const UNIT: &str = "amzn1.alexa.unit.did.101";
const BUILDING: &str = "amzn1.alexa.unit.did.1";

/// A building and a unit in it holding appliance-001, with `skill`.
fn units(c: &mut avs_sim::Config, skill: Option<&str>) {
    c.units.push(UnitDecl {
        id: BUILDING.into(),
        parent: None,
        devices: Vec::new(),
        skill: None,
    });
    c.units.push(UnitDecl {
        id: UNIT.into(),
        parent: Some(BUILDING.into()),
        devices: vec!["appliance-001".into()],
        skill: skill.map(String::from),
    });
}

/// The SNS Publish of the event `event_id` on the asp topic: its message, parsed.
async fn published(sim: &TestSim, event_id: &str) -> Value {
    let topic = sim.handle.state.sns.topic_arn("asp-events");
    let entry = sim
        .await_entry(None, |e| {
            e["face"] == "sns"
                && e["kind"] == "request"
                && e["body"]["topic"] == topic.as_str()
                && e["body"]["message"].as_str().is_some_and(|m| m.contains(event_id))
        })
        .await;
    let event: Value = serde_json::from_str(entry["body"]["message"].as_str().unwrap()).unwrap();
    assert_eq!(event["header"]["eventId"]["id"], event_id, "{event}");
    // And the face asp entry names the event, the topic and the MessageId.
    let asp = sim
        .await_entry(None, |e| {
            e["face"] == "asp" && e["body"]["event"]["header"]["eventId"]["id"] == event_id
        })
        .await;
    assert_eq!(asp["body"]["topic"], topic.as_str());
    assert_eq!(asp["body"]["MessageId"], entry["body"]["message_id"]);
    event
}

#[tokio::test]
async fn a_hanging_custom_skill_raises_skill_interaction_failure_endpoint_timeout() {
    let sim = TestSim::start(|c| {
        c.skills.push(SkillDecl {
            command: Some(vec!["sh".into(), "-c".into(), "sleep 30".into()]),
            timeout: Duration::from_secs(1),
            ..SkillDecl::new("hangs")
        });
        units(c, Some("hangs"));
    })
    .await;
    let (status, out) = sim
        .post_json(
            "/api/asp/intents",
            &json!({"unit": UNIT, "skill": "hangs", "intent": "AMAZON.HelpIntent", "locale": "de-DE"}),
        )
        .await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(out["outcome"], "timeout", "{out}");
    let event = published(&sim, out["event"]["eventId"].as_str().unwrap()).await;
    assert_eq!(
        event["header"]["eventType"],
        json!({"namespace": "Alexa.Skill.Interaction", "name": "Failure"})
    );
    assert_eq!(
        event["header"]["entities"]["skill"],
        json!({"type": "Skill", "id": "hangs"})
    );
    assert_eq!(event["header"]["entities"]["unit"]["id"], UNIT);
    let p = &event["payload"];
    assert_eq!(p["error"]["type"], "ENDPOINT_TIMEOUT", "{event}");
    assert_eq!(
        p["interaction"],
        json!({"type": "IntentRequest", "locale": "de-DE", "intent": {"name": "AMAZON.HelpIntent"}})
    );
    assert_eq!(p["session"]["id"], out["sessionId"]);
    assert_eq!(p["requestId"], out["requestId"]);
    assert!(
        out["sessionId"]
            .as_str()
            .unwrap()
            .starts_with("amzn1.echo-api.session.")
    );
    assert!(
        out["requestId"]
            .as_str()
            .unwrap()
            .starts_with("amzn1.echo-api.request.")
    );
    sim.stop().await;
}

#[tokio::test]
async fn a_custom_skill_answer_without_version_and_response_is_invalid_response() {
    // The command echoes the request envelope back: JSON, but no `response`.
    let sim = TestSim::start(|c| {
        c.skills.push(SkillDecl {
            command: Some(vec!["cat".into()]),
            timeout: Duration::from_secs(5),
            ..SkillDecl::new("echo")
        });
        c.skills.push(SkillDecl {
            command: Some(vec![
                "sh".into(),
                "-c".into(),
                r#"cat >/dev/null; echo '{"version":"1.0","response":{"shouldEndSession":true}}'"#.into(),
            ]),
            timeout: Duration::from_secs(5),
            ..SkillDecl::new("good")
        });
        units(c, Some("echo"));
    })
    .await;
    let (status, out) = sim
        .post_json(
            "/api/asp/intents",
            &json!({"unit": UNIT, "skill": "echo", "intent": "Hello"}),
        )
        .await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(out["outcome"], "invalid", "{out}");
    // The envelope Alexa sends a custom skill, as the skill got it.
    let request = &out["answer"];
    assert_eq!(request["version"], "1.0");
    assert_eq!(request["request"]["type"], "IntentRequest");
    assert_eq!(request["request"]["intent"]["confirmationStatus"], "NONE");
    assert_eq!(request["session"]["new"], true);
    assert_eq!(request["context"]["System"]["application"]["applicationId"], "echo");
    let event = published(&sim, out["event"]["eventId"].as_str().unwrap()).await;
    assert_eq!(event["payload"]["error"]["type"], "INVALID_RESPONSE");

    let (status, ok) = sim
        .post_json(
            "/api/asp/intents",
            &json!({"unit": UNIT, "skill": "good", "intent": "Hello"}),
        )
        .await;
    assert_eq!(status, 200, "{ok}");
    assert_eq!(ok["outcome"], "answered", "{ok}");
    assert!(ok.get("event").is_none(), "an answered request raises nothing: {ok}");
    let (status, err) = sim
        .post_json(
            "/api/asp/intents",
            &json!({"unit": "nowhere", "skill": "good", "intent": "Hello"}),
        )
        .await;
    assert_eq!(status, 404);
    assert!(err["error"].as_str().unwrap().contains("nowhere"), "{err}");
    sim.stop().await;
}

#[tokio::test]
async fn activation_succeeds_or_fails_as_a_fault_says_and_an_unknown_unit_is_404() {
    let sim = TestSim::start(|c| units(c, None)).await;
    let (status, out) = sim
        .post_json("/api/asp/subscriptions/activate", &json!({"unit": UNIT}))
        .await;
    assert_eq!(status, 200, "{out}");
    let event = published(&sim, out["eventId"].as_str().unwrap()).await;
    assert_eq!(
        event["header"]["eventType"]["namespace"],
        "Alexa.Enterprise.Subscription"
    );
    assert_eq!(
        event["header"]["entities"]["unit"],
        json!({"type": "Unit", "id": UNIT, "parent": {"type": "Unit", "id": BUILDING}})
    );
    assert_eq!(event["payload"]["result"], json!({"status": "SUCCEEDED"}));
    assert_eq!(
        event["payload"]["subscription"]["id"],
        format!("amzn1.alexa.subscription.{UNIT}")
    );

    sim.add_fault(
        json!({"when": {"face": "asp", "path": UNIT}, "then": {"action": "status", "status": 500}, "times": 1}),
    )
    .await;
    let (status, out) = sim
        .post_json("/api/asp/subscriptions/activate", &json!({"unit": UNIT}))
        .await;
    assert_eq!(status, 200, "{out}");
    let event = published(&sim, out["eventId"].as_str().unwrap()).await;
    assert_eq!(event["payload"]["result"]["status"], "FAILED", "{event}");
    assert_eq!(
        event["payload"]["result"]["error"]["type"], "INTERNAL_SERVER_ERROR",
        "{event}"
    );

    let (status, err) = sim
        .post_json(
            "/api/asp/subscriptions/activate",
            &json!({"unit": "amzn1.alexa.unit.did.nope"}),
        )
        .await;
    assert_eq!(status, 404, "{err}");
    assert!(
        err["error"].as_str().unwrap().contains("amzn1.alexa.unit.did.nope"),
        "{err}"
    );
    sim.stop().await;
}

#[tokio::test]
async fn an_automation_succeeds_after_discovery_and_reports_an_unknown_endpoint() {
    let sim = TestSim::start(|c| {
        skill::command(c, "u", &[], Duration::from_secs(8));
        units(c, Some("u"));
        let action = |endpoint: &str| ActionDecl {
            endpoint: endpoint.into(),
            directive: "Alexa.PowerController.TurnOn".into(),
            payload: None,
        };
        c.automations.push(AutomationDecl {
            id: "amzn1.alexa.automation.lights".into(),
            unit: UNIT.into(),
            user: "u".into(),
            actions: vec![action("appliance-001")],
        });
        c.automations.push(AutomationDecl {
            id: "amzn1.alexa.automation.ghost".into(),
            unit: UNIT.into(),
            user: "u".into(),
            actions: vec![action("appliance-001"), action("ghost-lamp")],
        });
    })
    .await;
    let (status, report) = sim.discover("u").await;
    assert_eq!(status, 200, "{report}");

    let (status, run) = sim
        .post_json("/api/asp/automations/amzn1.alexa.automation.lights/run", &json!({}))
        .await;
    assert_eq!(status, 200, "{run}");
    assert_eq!(run["status"], "SUCCESS", "{run}");
    let event = published(&sim, run["event"]["eventId"].as_str().unwrap()).await;
    assert_eq!(
        event["payload"],
        json!({"automation": {"id": "amzn1.alexa.automation.lights"}, "result": {"status": "SUCCESS"}})
    );

    let (status, run) = sim
        .post_json("/api/asp/automations/amzn1.alexa.automation.ghost/run", &json!({}))
        .await;
    assert_eq!(status, 200, "{run}");
    let event = published(&sim, run["event"]["eventId"].as_str().unwrap()).await;
    let result = &event["payload"]["result"];
    assert_eq!(result["status"], "FAILURE", "{event}");
    let errors = result["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{event}");
    assert_eq!(errors[0]["type"], "ENDPOINT_NOT_FOUND");
    assert_eq!(errors[0]["id"], "ghost-lamp");

    let (status, err) = sim.post_json("/api/asp/automations/nope/run", &json!({})).await;
    assert_eq!(status, 404, "{err}");
    sim.stop().await;
}

#[tokio::test]
async fn a_hand_published_event_is_checked_first_naming_the_field() {
    let sim = TestSim::start(|c| units(c, None)).await;
    // Built from fields: an error type outside the enum is refused.
    let (status, err) = sim
        .post_json(
            "/api/asp/events",
            &json!({"type": "Alexa.Skill.Interaction.Failure", "unit": UNIT, "skill": "amzn1.ask.skill.1", "error_type": "SLOW"}),
        )
        .await;
    assert_eq!(status, 400, "{err}");
    assert!(err["error"].as_str().unwrap().contains("/payload/error/type"), "{err}");

    // A whole document missing a required field.
    let (status, ok) = sim
        .post_json(
            "/api/asp/events",
            &json!({"type": "Alexa.Automation.Execution.Completion", "unit": UNIT, "errors": [{"type": "ENDPOINT_NOT_FOUND", "id": "lamp"}]}),
        )
        .await;
    assert_eq!(status, 200, "{ok}");
    let mut event = published(&sim, ok["eventId"].as_str().unwrap()).await;
    assert_eq!(event["payload"]["result"]["status"], "FAILURE");
    event["payload"]["result"].as_object_mut().unwrap().remove("status");
    let (status, err) = sim.post_json("/api/asp/events", &json!({"event": event})).await;
    assert_eq!(status, 400, "{err}");
    assert!(
        err["error"].as_str().unwrap().contains("/payload/result/status"),
        "{err}"
    );

    // The same document whole and valid is published as given.
    event["payload"]["result"]["status"] = json!("FAILURE");
    event["header"]["eventId"]["id"] = json!("hand-made-1");
    let (status, ok) = sim.post_json("/api/asp/events", &json!({"event": event})).await;
    assert_eq!(status, 200, "{ok}");
    assert_eq!(published(&sim, "hand-made-1").await, event);

    // A topic that does not exist, and a key the route does not take.
    let (status, err) = sim
        .post_json("/api/asp/events", &json!({"event": event, "topic": "nowhere"}))
        .await;
    assert_eq!(status, 404, "{err}");
    assert!(err["error"].as_str().unwrap().contains("nowhere"), "{err}");
    let (status, err) = sim
        .post_json("/api/asp/events", &json!({"event": event, "subject": "x"}))
        .await;
    assert_eq!(status, 400, "{err}");
    assert!(err["error"].as_str().unwrap().contains("\"subject\""), "{err}");
    sim.stop().await;
}

#[tokio::test]
async fn smart_home_failures_raise_the_event_only_when_opted_in() {
    let sim = TestSim::start(|c| {
        skill::command(c, "u", &["--crash"], Duration::from_secs(8));
        units(c, Some("u"));
        c.asp.skill_failures_for_smart_home = true;
    })
    .await;
    let (status, report) = sim.discover("u").await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["verdict"], "crashed", "{report}");
    let entry = sim
        .await_entry(None, |e| {
            e["face"] == "asp" && e["body"]["event"]["header"]["eventType"]["name"] == "Failure"
        })
        .await;
    let event = &entry["body"]["event"];
    assert_eq!(event["header"]["entities"]["unit"]["id"], UNIT);
    assert_eq!(event["payload"]["error"]["type"], "INVALID_RESPONSE");
    assert_eq!(
        event["payload"]["interaction"]["intent"]["name"],
        "Alexa.Discovery.Discover"
    );
    sim.stop().await;

    // Off (the default): the same failure raises nothing.
    let sim = TestSim::start(|c| {
        skill::command(c, "u", &["--crash"], Duration::from_secs(8));
        units(c, Some("u"));
    })
    .await;
    let (_, report) = sim.discover("u").await;
    assert_eq!(report["verdict"], "crashed", "{report}");
    assert!(
        sim.handle
            .state
            .journal
            .query(&Default::default())
            .iter()
            .all(|e| e.face != avs_sim::journal::Face::Asp)
    );
    sim.stop().await;
}

#[tokio::test]
async fn intents_share_the_skills_bound_on_running_invocations() {
    let sim = TestSim::start(|c| {
        c.skills.push(SkillDecl {
            command: Some(vec!["sh".into(), "-c".into(), "sleep 30".into()]),
            timeout: Duration::from_secs(2),
            ..SkillDecl::new("hangs")
        });
        c.smarthome.max_invocations = 1;
        units(c, Some("hangs"));
    })
    .await;
    let body = json!({"unit": UNIT, "skill": "hangs", "intent": "Hello"});
    let first = {
        let http = sim.http.clone();
        let url = sim.control("/api/asp/intents");
        let body = body.clone();
        tokio::spawn(async move { http.post(url).json(&body).send().await.unwrap().status().as_u16() })
    };
    // Once the first IntentRequest is journaled, it holds the only place.
    sim.await_entry(None, |e| {
        e["face"] == "skill" && e["kind"] == "directive" && e["body"]["skill"] == "hangs"
    })
    .await;
    let (status, err) = sim.post_json("/api/asp/intents", &body).await;
    assert_eq!(status, 503, "{err}");
    assert!(err["error"].as_str().unwrap().contains("busy"), "{err}");
    assert_eq!(first.await.unwrap(), 200);
    sim.stop().await;
}

/// A subscriber answering 200 to every POST (one request per connection).
async fn subscriber() -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/asp", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut seen = Vec::new();
                let mut chunk = [0u8; 8192];
                loop {
                    let text = String::from_utf8_lossy(&seen).to_string();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let len = text[..end]
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().to_string())
                            })
                            .and_then(|v| v.parse::<usize>().ok())
                            .unwrap_or(0);
                        if seen.len() >= end + 4 + len {
                            break;
                        }
                    }
                    match tcp.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => seen.extend_from_slice(&chunk[..n]),
                    }
                }
                let _ = tcp
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                    .await;
            });
        }
    });
    url
}

/// The scenario steps see what SNS really did with an event: delivered to
/// a live subscriber on attempt 1, given up on for a dead one.
#[tokio::test]
async fn scenario_steps_see_real_deliveries_and_dead_letters() {
    let live = subscriber().await;
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/gone", l.local_addr().unwrap())
    }; // closed: connection refused
    let (live_c, dead_c) = (live.clone(), dead.clone());
    let sim = TestSim::start(move |c| {
        units(c, None);
        let sub = |endpoint: &str| avs_sim::sns::SubscriptionDecl {
            topic: "asp-events".into(),
            endpoint: endpoint.into(),
            attributes: [(
                "DeliveryPolicy".to_string(),
                r#"{"healthyRetryPolicy":{"numRetries":0,"numNoDelayRetries":0}}"#.to_string(),
            )]
            .into(),
            confirmed: true,
        };
        c.sns.topics.push(avs_sim::sns::TopicDecl {
            name: "asp-events".into(),
            attributes: Default::default(),
        });
        c.sns.subscriptions = vec![sub(&live_c), sub(&dead_c)];
    })
    .await;
    let text = format!(
        "name = 't'\n\
         [[steps]]\nkind = 'activate_subscription'\nunit = '{UNIT}'\nstatus = 'SUCCEEDED'\n\
         [[steps]]\nkind = 'expect_delivery'\nsubscription = '{live}'\nstatus = 200\nattempts = 1\nwithin = '10s'\n\
         [[steps]]\nkind = 'expect_dead_letter'\nsubscription = '{dead}'\nwithin = '10s'\n\
         [[steps]]\nkind = 'expect_subscription_confirmed'\nsubscription = '{live}'\n"
    );
    let scenario = avs_sim::scenario::load::parse(&text, "t.toml").unwrap();
    let state = sim.handle.state.clone();
    let result = avs_sim::scenario::runner::run(state.clone(), &scenario, 0, std::sync::Arc::new(|_| {})).await;
    assert!(result.passed, "{result:#?}");
    // The dead-letter list holds the message the step saw.
    let letters = avs_sim::sns::deliver::dead_letters(&state);
    assert!(letters.iter().any(|l| l["endpoint"] == dead.as_str()), "{letters:#?}");
    sim.stop().await;
}
