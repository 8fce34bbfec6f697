//! The smart home face end to end: the simulator plays Alexa toward the
//! sample skill (`scenarios/skills/sample_skill.py`, a real Python process
//! reached through `command` or over `url`), over the real control API.

use avs_sim_tests::TestSim;
use avs_sim_tests::skill::{self, Served};
use serde_json::{Value, json};
use std::time::Duration;

const SEED_IDS: [&str; 6] = [
    "appliance-001",
    "appliance-002",
    "appliance-003",
    "appliance-004",
    "appliance-005",
    "appliance-006",
];

/// Alexa's budget, for skills that are meant to answer.
const BUDGET: Duration = Duration::from_secs(8);

/// A simulator with user (and skill) `u` run as a command with `flags`.
async fn with_command(flags: &[&str], timeout: Duration) -> TestSim {
    TestSim::start(|c| skill::command(c, "u", flags, timeout)).await
}

fn errors(findings: &Value) -> Vec<Value> {
    findings
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["severity"] == "error")
        .cloned()
        .collect()
}

/// The seed's six devices are all accepted, without an error finding, and
/// are what the registry knows.
async fn assert_seed_discovered(sim: &TestSim) {
    let (status, report) = sim.discover("u").await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["verdict"], "ok", "{report}");
    assert_eq!(report["accepted"], json!(SEED_IDS), "{report}");
    assert_eq!(report["dropped"], json!([]), "{report}");
    assert!(errors(&report["findings"]).is_empty(), "{report}");
    assert_eq!(report["answer"]["event"]["header"]["name"], "Discover.Response");

    // The registry holds the six, as the judged answer declared them.
    let known = sim.handle.state.smarthome.registry.snapshot("u");
    let mut ids: Vec<&str> = known["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["endpointId"].as_str().unwrap())
        .collect();
    ids.sort();
    assert_eq!(ids, SEED_IDS, "{known}");
    let (status, known) = sim.get("/api/smarthome/users/u/endpoints").await;
    assert_eq!(status, 200, "{known}");
    assert_eq!(known["endpoints"].as_array().unwrap().len(), 6, "{known}");

    // The journal's skill entries: the Discover directive, then the answer
    // linked to it, naming the accepted endpoints.
    let directive = sim
        .await_entry(None, |e| {
            e["face"] == "skill" && e["kind"] == "directive" && e["body"]["user"] == "u"
        })
        .await;
    assert_eq!(
        directive["body"]["directive"]["directive"]["header"]["name"],
        "Discover"
    );
    let answer = sim
        .await_entry(None, |e| {
            e["face"] == "skill" && e["kind"] == "response" && e["body"]["directive"] == directive["id"]
        })
        .await;
    assert!(answer["id"].as_u64() > directive["id"].as_u64());
    assert_eq!(answer["body"]["verdict"], "ok", "{answer}");
    assert_eq!(answer["body"]["accepted"], json!(SEED_IDS), "{answer}");
}

#[tokio::test]
async fn the_seeds_discover_response_through_a_command_is_accepted_whole() {
    let sim = with_command(&[], BUDGET).await;
    assert_seed_discovered(&sim).await;
    sim.stop().await;
}

#[tokio::test]
async fn the_seeds_discover_response_over_a_url_is_accepted_whole() {
    let served = Served::start(&[]).await;
    let sim = TestSim::start(|c| skill::by_url(c, "u", &served.url, BUDGET)).await;
    assert_seed_discovered(&sim).await;
    sim.stop().await;
}

/// The one finding of `report` with `rule`.
fn finding<'a>(findings: &'a Value, rule: &str) -> &'a Value {
    findings
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rule"] == rule)
        .unwrap_or_else(|| panic!("no finding of rule {rule:?}: {findings}"))
}

#[tokio::test]
async fn a_slow_skill_times_out_and_its_handler_is_killed() {
    let dir = avs_sim_tests::temp_dir("slow-skill");
    let pid_file = dir.join("pid");
    let pid_arg = pid_file.display().to_string();
    // 30 s: the handler is certainly still sleeping when the budget ends.
    // A 5 s budget: room for Python to start and write its pid on a busy machine.
    let sim = with_command(&["--slow", "30", "--pid-file", &pid_arg], Duration::from_secs(5)).await;
    let (status, report) = sim.discover("u").await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["verdict"], "timeout", "{report}");
    assert_eq!(report["accepted"], json!([]));
    let f = finding(&report["findings"], "20 answer");
    assert_eq!(f["severity"], "error");
    assert!(
        f["message"]
            .as_str()
            .unwrap()
            .contains("SKILL_RESPONSE_TIMEOUT_EXCEPTION"),
        "{f}"
    );
    let pid = std::fs::read_to_string(&pid_file).expect("the handler wrote its pid before the deadline");
    // The simulator kills the handler's group and reaps it before it
    // answers, so the process is gone by the time the report arrives.
    let proc = std::path::Path::new("/proc").join(pid.trim());
    assert!(!proc.exists(), "handler {pid} lives on after its deadline");
    sim.stop().await;
}

#[tokio::test]
async fn a_crashing_skill_is_recorded_as_crashed_with_its_stderr() {
    let sim = with_command(&["--crash"], BUDGET).await;
    let (status, report) = sim.discover("u").await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["verdict"], "crashed", "{report}");
    let detail = report["detail"].as_str().unwrap();
    assert!(detail.contains("exit status: 3"), "{detail}");
    assert!(detail.contains("Traceback"), "{detail}");
    assert!(detail.contains("RuntimeError: sample skill: --crash"), "{detail}");
    assert_eq!(finding(&report["findings"], "20 answer")["severity"], "error");
    sim.stop().await;
}

#[tokio::test]
async fn a_skill_answering_text_is_recorded_as_not_json() {
    let sim = with_command(&["--not-json"], BUDGET).await;
    let (status, report) = sim.discover("u").await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["verdict"], "not_json", "{report}");
    assert!(
        report["detail"].as_str().unwrap().contains("this is not JSON"),
        "{report}"
    );
    sim.stop().await;
}

#[tokio::test]
async fn a_broken_endpoint_is_dropped_with_its_rule_and_the_others_kept() {
    let sim = with_command(&["--invalid"], BUDGET).await;
    let (status, report) = sim.discover("u").await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["verdict"], "ok", "{report}");
    assert_eq!(report["accepted"], json!(SEED_IDS), "{report}");
    let dropped = report["dropped"].as_array().unwrap();
    assert_eq!(dropped.len(), 1, "{report}");
    assert_eq!(dropped[0]["endpointId"], "appliance 007\\broken");
    let f = finding(&dropped[0]["findings"], "6 endpointId");
    assert_eq!(f["severity"], "error");
    assert_eq!(f["pointer"], "/event/payload/endpoints/6/endpointId");
    assert!(f["message"].as_str().unwrap().contains('\\'), "{f}");
    // The pointer names a place in the answer, and that place is the bad id.
    assert_eq!(
        report["answer"].pointer(f["pointer"].as_str().unwrap()),
        Some(&json!("appliance 007\\broken"))
    );

    // The user's conformance view lists the broken rule with its evidence.
    let (status, view) = sim.get("/api/smarthome/users/u/conformance").await;
    assert_eq!(status, 200, "{view}");
    let rule = &view["rules"]["6 endpointId"];
    assert_eq!(rule["verdict"], "fail", "{view}");
    assert_eq!(rule["evidence"][0]["pointer"], "/event/payload/endpoints/6/endpointId");
    assert_eq!(rule["evidence"][0]["face"], "skill");
    sim.stop().await;
}

/// Discover first, so Alexa knows the endpoints the directives name.
async fn discovered(flags: &[&str], timeout: Duration) -> TestSim {
    let sim = with_command(flags, timeout).await;
    let (status, report) = sim.discover("u").await;
    assert_eq!((status, &report["verdict"]), (200, &json!("ok")), "{report}");
    sim
}

#[tokio::test]
async fn turn_on_is_answered_with_a_response_echoing_the_correlation_token() {
    let sim = discovered(&[], BUDGET).await;
    let (status, report) = sim
        .directive("u", "appliance-001", "Alexa.PowerController", "TurnOn", json!({}))
        .await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["verdict"], "ok", "{report}");
    assert_eq!(report["kind"], "Response", "{report}");
    assert_eq!(report["endpoint"], "appliance-001");
    let sent = &report["directive"]["directive"];
    let event = &report["answer"]["event"];
    let token = sent["header"]["correlationToken"].as_str().unwrap();
    assert!(!token.is_empty());
    assert_eq!(event["header"]["correlationToken"], token, "{report}");
    assert_eq!(event["endpoint"]["endpointId"], "appliance-001");
    assert_eq!(sent["endpoint"]["scope"]["token"], skill::user_token("u"));
    let power = &report["answer"]["context"]["properties"][0];
    assert_eq!(power["name"], "powerState");
    assert_eq!(power["value"], "ON");
    assert!(errors(&report["findings"]).is_empty(), "{report}");

    // Journaled under face skill: the TurnOn directive, then its answer linked by id.
    let directive = sim
        .await_entry(None, |e| {
            e["face"] == "skill"
                && e["kind"] == "directive"
                && e["body"]["directive"]["directive"]["header"]["name"] == "TurnOn"
        })
        .await;
    assert_eq!(directive["id"], report["journal"][0]);
    let answer = sim
        .await_entry(None, |e| {
            e["face"] == "skill" && e["kind"] == "response" && e["body"]["directive"] == directive["id"]
        })
        .await;
    assert_eq!(answer["id"], report["journal"][1]);
    assert_eq!(answer["body"]["kind"], "Response", "{answer}");
    sim.stop().await;
}

#[tokio::test]
async fn a_brightness_out_of_range_is_refused_by_the_control_api() {
    let sim = discovered(&[], BUDGET).await;
    let (status, body) = sim
        .directive(
            "u",
            "appliance-001",
            "Alexa.BrightnessController",
            "SetBrightness",
            json!({"brightness": 101}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    let message = body["error"].as_str().unwrap();
    assert!(message.contains("0..=100") && message.contains("101"), "{message}");
    // In range it reaches the skill, which reports the new brightness.
    let (status, report) = sim
        .directive(
            "u",
            "appliance-001",
            "Alexa.BrightnessController",
            "SetBrightness",
            json!({"brightness": 40}),
        )
        .await;
    assert_eq!((status, &report["verdict"]), (200, &json!("ok")), "{report}");
    assert_eq!(report["answer"]["context"]["properties"][0]["value"], 40);
    sim.stop().await;
}

#[tokio::test]
async fn an_unknown_user_is_404_on_every_route() {
    let sim = with_command(&[], BUDGET).await;
    let (status, body) = sim.discover("nobody").await;
    assert_eq!(status, 404, "{body}");
    assert!(body["error"].as_str().unwrap().contains("nobody"), "{body}");
    let (status, body) = sim
        .directive("nobody", "appliance-001", "Alexa.PowerController", "TurnOn", json!({}))
        .await;
    assert_eq!(status, 404, "{body}");
    let (status, body) = sim.get("/api/smarthome/users/nobody/conformance").await;
    assert_eq!(status, 404, "{body}");
    sim.stop().await;
}

fn skill_rule(then: Value) -> Value {
    json!({"when": {"face": "skill"}, "then": then})
}

#[tokio::test]
async fn a_status_fault_on_face_skill_is_a_crash() {
    let sim = with_command(&[], BUDGET).await;
    sim.add_fault(skill_rule(json!({"action": "status", "status": 500})))
        .await;
    let (status, report) = sim.discover("u").await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["verdict"], "crashed", "{report}");
    assert!(report["detail"].as_str().unwrap().contains("500"), "{report}");
    sim.stop().await;
}

#[tokio::test]
async fn a_delay_past_the_budget_and_a_hold_on_face_skill_are_timeouts() {
    let sim = with_command(&[], Duration::from_secs(1)).await;
    let delay = sim
        .add_fault(json!({"when": {"face": "skill"}, "then": {"action": "delay", "ms": 5000}, "times": 1}))
        .await;
    let (_, report) = sim.discover("u").await;
    assert_eq!(report["verdict"], "timeout", "{report}");
    assert!(
        finding(&report["findings"], "20 answer")["message"]
            .as_str()
            .unwrap()
            .contains("SKILL_RESPONSE_TIMEOUT_EXCEPTION")
    );
    assert!(!delay.is_empty());
    sim.add_fault(json!({"when": {"face": "skill"}, "then": {"action": "hold"}, "times": 1}))
        .await;
    let (_, report) = sim.discover("u").await;
    assert_eq!(report["verdict"], "timeout", "{report}");
    // Both rules fired once each (the skill itself never had to answer
    // within the short budget).
    let (_, rules) = sim.get("/api/faults").await;
    let fired: Vec<u64> = rules
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["fired"].as_u64().unwrap())
        .collect();
    assert_eq!(fired, [1, 1], "{rules}");
    sim.stop().await;
}

/// A discovery that fails leaves what Alexa knew in place, as Alexa keeps
/// a customer's devices when a rediscovery fails.
#[tokio::test]
async fn a_failed_rediscovery_keeps_the_devices_alexa_knew() {
    let sim = discovered(&[], BUDGET).await;
    sim.add_fault(json!({"when": {"face": "skill"}, "then": {"action": "status", "status": 500}, "times": 1}))
        .await;
    let (_, report) = sim.discover("u").await;
    assert_eq!(report["verdict"], "crashed", "{report}");
    let (status, known) = sim.get("/api/smarthome/users/u/endpoints").await;
    assert_eq!(status, 200, "{known}");
    assert_eq!(known["endpoints"].as_array().unwrap().len(), 6, "{known}");
    // Discover sent as a directive is judged and reported as discovery.
    let (status, report) = sim
        .post_json(
            "/api/smarthome/directives",
            &json!({"user": "u", "namespace": "Alexa.Discovery", "name": "Discover"}),
        )
        .await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["kind"], "DiscoverResponse", "{report}");
    assert_eq!(report["accepted"].as_array().unwrap().len(), 6, "{report}");
    sim.stop().await;
}

/// The sample skill refuses what a real one would: an endpoint it does not
/// have, an interface the endpoint lacks, a setpoint out of its range.
#[tokio::test]
async fn the_sample_skill_answers_errors_alexa_accepts() {
    let sim = discovered(&[], BUDGET).await;
    let cases = [
        ("nope", "Alexa.PowerController", "TurnOn", json!({}), "NO_SUCH_ENDPOINT"),
        (
            "appliance-002",
            "Alexa.BrightnessController",
            "SetBrightness",
            json!({"brightness": 5}),
            "INVALID_DIRECTIVE",
        ),
        (
            "appliance-002",
            "Alexa.ThermostatController",
            "SetTargetTemperature",
            json!({"targetSetpoint": {"value": 90.0, "scale": "CELSIUS"}}),
            "TEMPERATURE_VALUE_OUT_OF_RANGE",
        ),
    ];
    for (endpoint, ns, name, payload, want) in cases {
        let (status, report) = sim.directive("u", endpoint, ns, name, payload).await;
        assert_eq!(status, 200, "{report}");
        assert_eq!(report["kind"], "ErrorResponse", "{report}");
        assert_eq!(report["type"], want, "{report}");
        assert_eq!(report["verdict"], "ok", "{report}");
    }
    sim.stop().await;
}

#[tokio::test]
async fn a_skill_runs_at_most_max_invocations_at_once() {
    let sim = TestSim::start(|c| {
        skill::command(c, "u", &[], Duration::from_secs(2));
        c.smarthome.max_invocations = 1;
    })
    .await;
    sim.add_fault(json!({"when": {"face": "skill"}, "then": {"action": "hold"}, "times": 1}))
        .await;
    let first = {
        let url = sim.control("/api/smarthome/discover");
        let http = sim.http.clone();
        tokio::spawn(async move {
            let resp = http.post(url).json(&json!({"user": "u"})).send().await.unwrap();
            resp.json::<Value>().await.unwrap()
        })
    };
    // The hold fired: the first invocation holds the only place.
    sim.await_entry(None, |e| e["face"] == "skill" && e["kind"] == "fault")
        .await;
    let (status, body) = sim.discover("u").await;
    assert_eq!(status, 503, "{body}");
    assert!(body["error"].as_str().unwrap().contains("busy"), "{body}");
    let report = first.await.unwrap();
    assert_eq!(report["verdict"], "timeout", "{report}");
    sim.stop().await;
}

#[tokio::test]
async fn a_skill_fault_with_an_event_hits_only_that_directive() {
    let sim = discovered(&[], BUDGET).await;
    sim.add_fault(json!({
        "when": {"face": "skill", "event": "Alexa.PowerController.TurnOn"},
        "then": {"action": "status", "status": 500},
    }))
    .await;
    let send = |name: &'static str| {
        let sim = &sim;
        async move {
            let (status, report) = sim
                .directive("u", "appliance-001", "Alexa.PowerController", name, json!({}))
                .await;
            assert_eq!(status, 200, "{report}");
            report["verdict"].as_str().unwrap().to_string()
        }
    };
    assert_eq!(send("TurnOff").await, "ok");
    assert_eq!(send("TurnOn").await, "crashed");
    assert_eq!(send("TurnOff").await, "ok");
    let (_, report) = sim.discover("u").await;
    assert_eq!(report["verdict"], "ok", "{report}");
    // The fault fired once, journaled.
    let fired = sim.await_entry(None, |e| e["kind"] == "fault").await;
    assert!(fired["summary"].as_str().is_some(), "{fired}");
    sim.stop().await;
}

#[tokio::test]
async fn a_connection_fault_on_face_skill_is_refused() {
    let sim = with_command(&[], BUDGET).await;
    let (status, body) = sim
        .post_json("/api/faults", &skill_rule(json!({"action": "tcp_reset"})))
        .await;
    assert_eq!(status, 400, "{body}");
    let message = body["error"].as_str().unwrap();
    assert!(message.contains("face \"skill\""), "{message}");
    sim.stop().await;
}

/// A DeferredResponse is recorded as such; the skill's detached child posts
/// the real Response to the gateway about a second later, and the gateway
/// accepts it (202) for this user.
#[tokio::test]
async fn a_deferred_answer_reaches_the_gateway_and_matches() {
    let token = skill::gateway_token("u");
    let sim = discovered(&["--deferred", "--gateway-token", &token], BUDGET).await;
    let (status, report) = sim
        .directive("u", "appliance-001", "Alexa.PowerController", "TurnOn", json!({}))
        .await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["verdict"], "ok", "{report}");
    assert_eq!(report["kind"], "DeferredResponse", "{report}");
    assert_eq!(report["estimatedDeferralInSeconds"], 7, "{report}");
    let correlation = report["directive"]["directive"]["header"]["correlationToken"].clone();
    assert_eq!(report["answer"]["event"]["header"]["correlationToken"], correlation);
    let posted = sim
        .await_entry(None, |e| {
            e["face"] == "gateway"
                && e["kind"] == "request"
                && e["body"]["user"] == "u"
                && e["body"]["namespace"] == "Alexa"
                && e["body"]["name"] == "Response"
        })
        .await;
    assert_eq!(posted["body"]["correlationToken"], correlation, "{posted}");
    assert_eq!(posted["body"]["endpoint"], "appliance-001");
    let answered = sim
        .await_entry(None, |e| {
            e["face"] == "gateway" && e["kind"] == "response" && e["body"]["request"] == posted["id"]
        })
        .await;
    assert_eq!(answered["body"]["status"], 202, "{answered}");
    // Matched: no directive waits any more, and the state is the Response's.
    let (status, known) = sim.get("/api/smarthome/users/u/endpoints").await;
    assert_eq!(status, 200, "{known}");
    assert_eq!(known["pending"], json!([]), "{known}");
    let lamp = known["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["endpointId"] == "appliance-001")
        .unwrap_or_else(|| panic!("appliance-001 is known: {known}"));
    let power = lamp["state"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "powerState")
        .unwrap_or_else(|| panic!("a powerState: {lamp}"));
    assert_eq!(power["value"], "ON", "{lamp}");
    sim.stop().await;
}

#[tokio::test]
async fn every_directive_the_sample_handles_is_answered_without_an_error() {
    let sim = discovered(&[], BUDGET).await;
    let cases = [
        ("appliance-001", "Alexa.PowerController", "TurnOff", json!({})),
        (
            "appliance-001",
            "Alexa.BrightnessController",
            "SetBrightness",
            json!({"brightness": 0}),
        ),
        (
            "appliance-002",
            "Alexa.ThermostatController",
            "SetTargetTemperature",
            json!({"targetSetpoint": {"value": 22.5, "scale": "CELSIUS"}}),
        ),
        ("appliance-003", "Alexa.LockController", "Lock", json!({})),
        ("appliance-003", "Alexa.LockController", "Unlock", json!({})),
        ("appliance-004", "Alexa.SceneController", "Activate", json!({})),
        ("appliance-005", "Alexa.SceneController", "Deactivate", json!({})),
        ("appliance-002", "Alexa", "ReportState", json!({})),
    ];
    for (endpoint, namespace, name, payload) in cases {
        let (status, report) = sim.directive("u", endpoint, namespace, name, payload).await;
        assert_eq!(status, 200, "{name}: {report}");
        assert_eq!(report["verdict"], "ok", "{name}: {report}");
        assert_eq!(report["findings"], json!([]), "{name}: {report}");
    }
    sim.stop().await;
}

/// The gateway's request entry for `user`'s `namespace.name` event and the
/// gateway's answer to it.
async fn at_gateway(sim: &TestSim, user: &str, namespace: &str, name: &str) -> (Value, Value) {
    let posted = sim
        .await_entry(None, |e| {
            e["face"] == "gateway"
                && e["kind"] == "request"
                && e["body"]["user"] == user
                && e["body"]["namespace"] == namespace
                && e["body"]["name"] == name
        })
        .await;
    let answered = sim
        .await_entry(None, |e| {
            e["face"] == "gateway" && e["kind"] == "response" && e["body"]["request"] == posted["id"]
        })
        .await;
    (posted, answered)
}

/// `--change-report` posts a ChangeReport after TurnOn.
#[tokio::test]
async fn a_change_report_follows_turn_on_and_is_accepted_cleanly() {
    let token = skill::gateway_token("u");
    let sim = discovered(&["--change-report", "--gateway-token", &token], BUDGET).await;
    let (_, report) = sim
        .directive("u", "appliance-001", "Alexa.PowerController", "TurnOn", json!({}))
        .await;
    assert_eq!(report["verdict"], "ok", "{report}");
    let (posted, answered) = at_gateway(&sim, "u", "Alexa", "ChangeReport").await;
    assert_eq!(posted["body"]["endpoint"], "appliance-001");
    let change = &posted["body"]["message"]["event"]["payload"]["change"];
    assert_eq!(change["cause"]["type"], "VOICE_INTERACTION");
    assert_eq!(change["properties"][0]["value"], "ON");
    // The unchanged retrievable properties ride along in context.
    let context = posted["body"]["message"]["context"]["properties"].as_array().unwrap();
    let names: Vec<&str> = context.iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert!(
        names.contains(&"connectivity") && names.contains(&"brightness"),
        "{names:?}"
    );
    assert!(!names.contains(&"powerState"), "{names:?}");
    assert_eq!(answered["body"]["status"], 202, "{answered}");
    assert_eq!(answered["body"]["findings"], json!([]), "{answered}");
    sim.stop().await;
}

/// AcceptGrant's code is swapped at LWA for gateway tokens, then `--proactive` adds appliance-007 and deletes it.
#[tokio::test]
async fn accept_grant_then_a_proactive_add_and_delete_are_accepted() {
    let sim = discovered(&["--proactive"], BUDGET).await;
    let (status, report) = sim
        .post_json(
            "/api/smarthome/directives",
            &json!({"user": "u", "namespace": "Alexa.Authorization", "name": "AcceptGrant"}),
        )
        .await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["verdict"], "ok", "{report}");
    assert_eq!(report["kind"], "AcceptGrantResponse", "{report}");
    let (added, answered) = at_gateway(&sim, "u", "Alexa.Discovery", "AddOrUpdateReport").await;
    assert_eq!(answered["body"]["status"], 202, "{answered}");
    assert_eq!(answered["body"]["findings"], json!([]), "{answered}");
    assert_eq!(
        added["body"]["message"]["event"]["payload"]["endpoints"][0]["endpointId"],
        "appliance-007"
    );
    let (_, answered) = at_gateway(&sim, "u", "Alexa.Discovery", "DeleteReport").await;
    assert_eq!(answered["body"]["status"], 202, "{answered}");
    let (_, known) = sim.get("/api/smarthome/users/u/endpoints").await;
    let ids: Vec<&str> = known["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["endpointId"].as_str().unwrap())
        .collect();
    assert_eq!(ids, SEED_IDS, "{known}");
    sim.stop().await;
}

/// LWA refuses a skill's code exchange without the permission's client
/// credentials, and the skill answers ACCEPT_GRANT_FAILED.
#[tokio::test]
async fn accept_grant_fails_cleanly_when_the_code_cannot_be_swapped() {
    // A client id the skill's LWA permission does not have: LWA refuses the
    // swap, and the skill answers ACCEPT_GRANT_FAILED as the docs ask.
    let sim = TestSim::start(|c| {
        skill::command(c, "u", &["--client-id", "not-this-skill"], BUDGET);
        c.skills[0].client_id = Some("the-skill".into());
        c.skills[0].client_secret = Some("its-secret".into());
    })
    .await;
    let (status, report) = sim
        .post_json(
            "/api/smarthome/directives",
            &json!({"user": "u", "namespace": "Alexa.Authorization", "name": "AcceptGrant"}),
        )
        .await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["kind"], "ErrorResponse", "{report}");
    assert_eq!(report["type"], "ACCEPT_GRANT_FAILED", "{report}");
    assert_eq!(report["answer"]["event"]["header"]["namespace"], "Alexa.Authorization");
    sim.stop().await;
}
