//! The builders and the validator against the seed's examples and tables.

use super::event::{self, AutomationError, EventType, InteractionFailure, UnitRef};
use super::validate::{Refusal, check};
use proptest::prelude::*;
use serde_json::{Value, json};

/// The seed's three examples, verbatim but for the Skill Interaction
/// example's trailing comma after `intent` (invalid JSON), removed here.
fn seed_automation() -> Value {
    json!({"header":{"version":"2.0","eventId":{"id":"12345-6789-1011-abcd-example"},
        "eventType":{"namespace":"Alexa.Automation.Execution","name":"Completion"},
        "eventTime":{"timestamp":"2017-09-20T12:04:03Z"},
        "entities":{"unit":{"type":"Unit","id":"amzn1.alexa.unit.did.12345"}}},
      "payload":{"automation":{"id":"amzn1.alexa.automation.12345"},
        "result":{"status":"FAILURE","errors":[{"type":"ENDPOINT_NOT_FOUND",
          "message":"Endpoint used in the automation was not found","id":"amzn1.alexa.endpoint.12345"}]}}})
}

fn seed_interaction() -> Value {
    json!({"header":{"version":"2.0","eventId":{"id":"12345-6789-1011-abcd-example"},
        "eventType":{"namespace":"Alexa.Skill.Interaction","name":"Failure"},
        "eventTime":{"timestamp":"2017-09-20T12:04:03Z"},
        "entities":{"unit":{"type":"Unit","id":"amzn1.alexa.unit.did.12345"},
                    "skill":{"type":"Skill","id":"amzn1.ask.skill.12345"}}},
      "payload":{"interaction":{"type":"IntentRequest","locale":"en-US","intent":{"name":"intentName"}},
        "skill":{"id":"amzn1.ask.skill.12345","stage":"live"},
        "unit":{"id":"amzn1.alexa.unit.did.12345"},
        "session":{"id":"amzn1.echo-api.session.12345"},
        "requestId":"amzn1.echo-api.request.12345",
        "error":{"type":"INVALID_RESPONSE","message":"Details about the error"}}})
}

fn seed_activation() -> Value {
    json!({"header":{"version":"2.0","eventId":{"id":"12345-6789-1011-abcd-example"},
        "eventType":{"namespace":"Alexa.Enterprise.Subscription","name":"Activation"},
        "eventTime":{"timestamp":"2017-09-20T12:04:03Z"},
        "entities":{"unit":{"type":"Unit","id":"amzn1.alexa.unit.did.12345",
            "parent":{"type":"Unit","id":"amzn1.alexa.unit.did.12345"}}}},
      "payload":{"subscription":{"id":"amzn1.ask.skill.12345"},
        "result":{"status":"SUCCEEDED","error":{"type":"INTERNAL_SERVER_ERROR","message":"Details about the error"}}}})
}

/// The seed's example with its trailing comma does not even parse: the
/// reason the fixture above is fixed.
#[test]
fn the_seed_interaction_example_verbatim_is_not_json() {
    let verbatim = r#"{"interaction":{"type":"IntentRequest","locale":"en-US","intent":{"name":"intentName"},},"x":1}"#;
    assert!(serde_json::from_str::<Value>(verbatim).is_err());
}

#[test]
fn the_seed_examples_pass() {
    assert_eq!(check(&seed_automation()), Ok(EventType::AutomationCompletion));
    assert_eq!(check(&seed_interaction()), Ok(EventType::SkillInteractionFailure));
    assert_eq!(check(&seed_activation()), Ok(EventType::SubscriptionActivation));
}

/// Every leaf and object of `v`, as JSON pointers.
fn pointers(v: &Value, at: String, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                let p = format!("{at}/{k}");
                out.push(p.clone());
                pointers(child, p, out);
            }
        }
        Value::Array(a) => {
            for (i, child) in a.iter().enumerate() {
                pointers(child, format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

fn remove(doc: &Value, pointer: &str) -> Value {
    let mut doc = doc.clone();
    let (parent, key) = pointer.rsplit_once('/').unwrap();
    doc.pointer_mut(parent).unwrap().as_object_mut().unwrap().remove(key);
    doc
}

/// Fields the seed marks optional (or that the example has and the tables
/// do not require).
const OPTIONAL: &[&str] = &[
    "/payload/result/errors",
    "/payload/interaction/intent",
    "/header/entities/unit/parent",
    "/payload/result/error",
];

#[test]
fn every_required_field_missing_is_refused_naming_it() {
    for doc in [seed_automation(), seed_interaction(), seed_activation()] {
        let mut all = Vec::new();
        pointers(&doc, String::new(), &mut all);
        for p in all {
            if OPTIONAL.iter().any(|o| p.starts_with(o)) {
                continue;
            }
            let got = check(&remove(&doc, &p));
            let Err(Refusal { pointer, message }) = got else {
                panic!("{p} removed, yet the event passed");
            };
            // The event type itself missing is named as its own field.
            assert_eq!(pointer, p, "{p} removed: refused at {pointer}: {message}");
            assert!(message.contains("missing"), "{p}: {message}");
        }
    }
}

#[test]
fn optional_fields_may_be_absent() {
    for (doc, p) in [
        (seed_automation(), "/payload/result/errors"),
        (seed_interaction(), "/payload/interaction/intent"),
        (seed_activation(), "/header/entities/unit/parent"),
        (seed_activation(), "/payload/result/error"),
    ] {
        assert!(check(&remove(&doc, p)).is_ok(), "{p}");
    }
}

fn set(doc: &Value, pointer: &str, v: Value) -> Value {
    let mut doc = doc.clone();
    *doc.pointer_mut(pointer).unwrap() = v;
    doc
}

#[test]
fn values_outside_an_enum_are_refused_naming_the_field() {
    let cases = [
        (seed_automation(), "/payload/result/status", json!("SUCCEEDED")),
        (seed_automation(), "/payload/result/errors/0/type", json!("NOPE")),
        (seed_interaction(), "/payload/interaction/type", json!("LaunchRequest")),
        (seed_interaction(), "/payload/skill/stage", json!("beta")),
        (
            seed_interaction(),
            "/payload/error/type",
            json!("INTERNAL_SERVER_ERROR"),
        ),
        (seed_interaction(), "/header/entities/skill/type", json!("Unit")),
        (seed_activation(), "/payload/result/status", json!("SUCCESS")),
        (
            seed_activation(),
            "/payload/result/error/type",
            json!("ENDPOINT_TIMEOUT"),
        ),
        (seed_activation(), "/header/entities/unit/type", json!("Skill")),
        (seed_activation(), "/header/entities/unit/parent/type", json!("Skill")),
        (seed_activation(), "/header/version", json!("1.0")),
    ];
    for (doc, p, v) in cases {
        let err = check(&set(&doc, p, v.clone())).expect_err(p);
        assert_eq!(err.pointer, p, "{v}: {err}");
    }
}

#[test]
fn wrong_types_and_times_are_refused_naming_the_field() {
    let cases = [
        ("/header/eventTime/timestamp", json!("2017-09-20T12:04:03.123Z")),
        ("/header/eventTime/timestamp", json!("2017-09-20T12:04:03+00:00")),
        ("/header/eventTime/timestamp", json!("2017-02-30T12:04:03Z")),
        ("/header/eventId/id", json!(12)),
        ("/header/entities", json!([])),
        ("/payload/result/errors", json!({})),
        ("/payload/automation/id", json!("")),
    ];
    for (p, v) in cases {
        let err = check(&set(&seed_automation(), p, v.clone())).expect_err(p);
        assert_eq!(err.pointer, p, "{v}: {err}");
    }
    let err = check(&set(&seed_automation(), "/header/eventType/name", json!("Start"))).unwrap_err();
    assert_eq!(err.pointer, "/header/eventType");
    assert_eq!(check(&json!([1])).unwrap_err().pointer, "");
}

fn unit() -> UnitRef {
    UnitRef {
        id: "amzn1.alexa.unit.did.101".into(),
        parent: Some("amzn1.alexa.unit.did.1".into()),
    }
}

#[test]
fn builders_make_the_example_shape() {
    let t = "2026-01-02T03:04:05Z";
    let a = event::automation_completion(&unit(), "amzn1.alexa.automation.1", &[], t);
    assert_eq!(a["payload"]["result"], json!({"status": "SUCCESS"}));
    assert_eq!(a["header"]["eventTime"]["timestamp"], t);
    assert_eq!(
        a["header"]["entities"]["unit"]["parent"],
        json!({"type": "Unit", "id": "amzn1.alexa.unit.did.1"})
    );
    uuid::Uuid::parse_str(a["header"]["eventId"]["id"].as_str().unwrap()).expect("a UUID event id");
    let errors = [AutomationError {
        kind: "ENDPOINT_NOT_FOUND".into(),
        id: "lamp".into(),
        message: "m".into(),
    }];
    let f = event::automation_completion(&unit(), "x", &errors, t);
    assert_eq!(
        f["payload"]["result"],
        json!({"status": "FAILURE", "errors": [{"type": "ENDPOINT_NOT_FOUND", "id": "lamp", "message": "m"}]})
    );
    let ok = event::subscription_activation(&unit(), "s", None, t);
    assert_eq!(ok["payload"]["result"], json!({"status": "SUCCEEDED"}));
    let failed = event::subscription_activation(&unit(), "s", Some(("INTERNAL_SERVER_ERROR", "why")), t);
    assert_eq!(
        failed["payload"]["result"],
        json!({"status": "FAILED", "error": {"type": "INTERNAL_SERVER_ERROR", "message": "why"}})
    );
    for doc in [a, f, ok, failed] {
        check(&doc).unwrap();
    }
    assert!(super::validate::is_event_time(&event::now()));
}

fn printable() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9._-]{1,40}"
}

fn arbitrary_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        ".{0,12}".prop_map(Value::String),
        prop::sample::select(vec![
            "2.0",
            "Unit",
            "Skill",
            "SUCCESS",
            "FAILURE",
            "SUCCEEDED",
            "IntentRequest",
            "live",
            "Alexa.Automation.Execution",
            "Completion",
            "2017-09-20T12:04:03Z",
        ])
        .prop_map(|s| json!(s)),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(
                prop::sample::select(vec![
                    "header",
                    "payload",
                    "version",
                    "eventId",
                    "id",
                    "eventType",
                    "namespace",
                    "name",
                    "eventTime",
                    "timestamp",
                    "entities",
                    "unit",
                    "skill",
                    "type",
                    "parent",
                    "result",
                    "status",
                    "errors",
                    "automation",
                    "error",
                    "message",
                ])
                .prop_map(String::from),
                inner,
                0..5
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Mutate one field of a valid event at random: the validator either
/// passes it or names a field.
fn mutated() -> impl Strategy<Value = Value> {
    (0usize..3, any::<prop::sample::Index>(), arbitrary_json()).prop_map(|(which, at, v)| {
        let doc = [seed_automation(), seed_interaction(), seed_activation()][which].clone();
        let mut all = Vec::new();
        pointers(&doc, String::new(), &mut all);
        set(&doc, &all[at.index(all.len())], v)
    })
}

proptest! {
    #[test]
    fn arbitrary_json_never_panics_the_validator(doc in prop_oneof![arbitrary_json(), mutated()]) {
        if let Err(e) = check(&doc) {
            // A refusal names a field that is a prefix of the document's paths or missing from it.
            prop_assert!(e.pointer.is_empty() || e.pointer.starts_with('/'), "{e}");
            prop_assert!(!e.message.is_empty());
        }
    }

    #[test]
    fn builder_outputs_always_validate(
        unit_id in printable(),
        parent in prop::option::of(printable()),
        automation in printable(),
        errors in prop::collection::vec((prop::sample::select(vec!["ENDPOINT_NOT_FOUND", "INTERNAL_SERVER_ERROR"]), printable(), ".{0,20}"), 0..4),
        skill in printable(),
        stage in prop::sample::select(vec!["development", "live", "certification"]),
        locale in printable(),
        intent in prop::option::of(printable()),
        error in prop::sample::select(vec!["INVALID_RESPONSE", "ENDPOINT_TIMEOUT"]),
        message in ".{0,40}",
        failed in any::<bool>(),
        secs in 0i64..4_102_444_800,
    ) {
        let time = event::timestamp(time::OffsetDateTime::from_unix_timestamp(secs).unwrap());
        let unit = UnitRef { id: unit_id, parent };
        let errors: Vec<AutomationError> = errors
            .into_iter()
            .map(|(k, id, m)| AutomationError { kind: k.into(), id, message: m })
            .collect();
        let a = event::automation_completion(&unit, &automation, &errors, &time);
        prop_assert_eq!(check(&a), Ok(EventType::AutomationCompletion));
        let f = InteractionFailure {
            unit: unit.clone(),
            skill,
            stage: stage.into(),
            locale,
            intent,
            session: "amzn1.echo-api.session.1".into(),
            request: "amzn1.echo-api.request.1".into(),
            error: error.into(),
            message: format!("m{message}"),
        };
        let i = event::skill_interaction_failure(&f, &time);
        prop_assert_eq!(check(&i), Ok(EventType::SkillInteractionFailure));
        let msg = format!("m{message}");
        let s = event::subscription_activation(&unit, "amzn1.ask.skill.1", failed.then_some(("INTERNAL_SERVER_ERROR", msg.as_str())), &time);
        prop_assert_eq!(check(&s), Ok(EventType::SubscriptionActivation));
    }
}

#[test]
fn config_units_and_automations_are_checked() {
    let config: crate::Config = toml::from_str(
        r#"
[asp]
topic = "bad topic"
skill_stage = "beta"
[[skills]]
id = "lights"
command = ["true"]
[[users]]
id = "u1"
skill = "lights"
token = "t"
[[units]]
id = "room"
parent = "building"
skill = "nope"
[[units]]
id = "room"
[[automations]]
id = "a"
unit = "nowhere"
user = "nobody"
actions = [{endpoint = "lamp", directive = "Alexa.BrightnessController.SetBrightness", payload = {brightness = 900}}]
[[automations]]
id = "a"
unit = "room"
user = "u1"
actions = []
"#,
    )
    .unwrap();
    let errors = super::validate(&config);
    for want in [
        "asp.topic: \"bad topic\"",
        "asp.skill_stage: must be one of",
        "units[0] (\"room\"): parent \"building\" is not another unit",
        "units[0] (\"room\"): skill \"nope\" is not declared",
        "units[1] (\"room\"): id must be non-empty and unique",
        "automations[0] (\"a\"): unit \"nowhere\" is not declared",
        "automations[0] (\"a\"): user \"nobody\" is not declared",
        "automations[0] (\"a\"): actions[0]: SetBrightness needs payload.brightness",
        "automations[1] (\"a\"): id must be non-empty and unique",
        "automations[1] (\"a\"): actions must number 1..=100",
    ] {
        assert!(errors.iter().any(|e| e.starts_with(want)), "{want}: {errors:#?}");
    }
    let ok: crate::Config = toml::from_str(
        "[[skills]]\nid = 'lights'\ncommand = ['true']\n[[users]]\nid = 'u1'\nskill = 'lights'\ntoken = 't'\n[[units]]\nid = 'b'\n[[units]]\nid = 'r'\nparent = 'b'\nskill = 'lights'\ndevices = ['lamp']\n[[automations]]\nid = 'a'\nunit = 'r'\nuser = 'u1'\nactions = [{endpoint = 'lamp'}]\n",
    )
    .unwrap();
    assert_eq!(super::validate(&ok), Vec::<String>::new());
    assert_eq!(ok.automations[0].actions[0].directive, "Alexa.PowerController.TurnOn");
    assert_eq!(ok.asp.topic, "asp-events");
}

#[test]
fn asp_fault_rules_take_only_status() {
    let rule = |action: &str| -> crate::faults::Rule {
        toml::from_str(&format!("[when]\nface = 'asp'\n[then]\n{action}\n")).unwrap()
    };
    assert!(rule("action = 'status'\nstatus = 500").validate().is_ok());
    let err = rule("action = 'hold'").validate().unwrap_err();
    assert!(err.contains("face \"asp\""), "{err}");
}

/// Hand-made events (the control route's and `publish_event`'s second
/// form): any field values build a document that either passes or is
/// refused naming a field under `/payload` or `/header` — never a panic.
#[test]
fn hand_made_events_from_any_fields_pass_or_name_a_field() {
    use proptest::test_runner::{Config as RunnerConfig, TestRunner};
    let config: crate::Config = toml::from_str(
        "[[skills]]\nid = 's'\ncommand = ['true']\n[[users]]\nid = 'u'\nskill = 's'\ntoken = 't'\n\
         [[units]]\nid = 'b'\n[[units]]\nid = 'r'\nparent = 'b'\nskill = 's'\n",
    )
    .unwrap();
    let state = crate::state::State::new(config, std::sync::Arc::new(crate::journal::Journal::new(100)));
    let field = || {
        prop::option::of(prop_oneof![
            ".{0,8}",
            Just("ENDPOINT_TIMEOUT".to_string()),
            Just("live".to_string())
        ])
    };
    let strategy = (
        prop::sample::select(EventType::ALL.map(|t| t.full_name()).to_vec()),
        prop::sample::select(vec!["r", "b"]),
        (field(), field(), field(), field()),
        (field(), field(), field(), field()),
        prop::collection::vec((".{0,6}", ".{0,6}"), 0..3),
    );
    let mut runner = TestRunner::new(RunnerConfig {
        cases: 256,
        failure_persistence: None,
        ..RunnerConfig::default()
    });
    runner
        .run(
            &strategy,
            |(kind, unit, (skill, stage, locale, intent), (session, error_type, message, subscription), errors)| {
                let hand = super::hand::HandEvent {
                    event_type: kind,
                    unit: unit.into(),
                    automation: None,
                    errors: errors
                        .into_iter()
                        .map(|(kind, id)| super::hand::HandError {
                            kind,
                            id,
                            message: None,
                        })
                        .collect(),
                    skill,
                    stage,
                    locale,
                    intent,
                    session,
                    request: None,
                    error_type,
                    message,
                    subscription,
                };
                let doc = match super::hand::build(&state, &hand) {
                    Ok(doc) => doc,
                    // A Skill failure for a unit without a skill, and no skill given.
                    Err(super::AspError::BadRequest(m)) => {
                        prop_assert!(
                            m.contains("skill is required") && hand.skill.is_none() && unit == "b",
                            "{m}"
                        );
                        return Ok(());
                    }
                    Err(other) => return Err(proptest::test_runner::TestCaseError::fail(other.to_string())),
                };
                if let Err(e) = check(&doc) {
                    prop_assert!(
                        e.pointer.starts_with("/payload") || e.pointer.starts_with("/header"),
                        "{e}"
                    );
                }
                Ok(())
            },
        )
        .unwrap();
}
