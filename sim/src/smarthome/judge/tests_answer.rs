//! One test per answer rule (1–3, 26–28, 30, 31 and the answer kinds of
//! reference §2), each breaking only that rule of a valid answer.

use super::tests::{collect, json_value};
use super::*;
use proptest::prelude::*;
use serde_json::json;

/// What Alexa sends: TurnOn on lamp-1.
pub(super) fn directive() -> Value {
    json!({"directive": {
        "header": {"namespace": "Alexa.PowerController", "name": "TurnOn", "payloadVersion": "3",
                   "messageId": "d-1", "correlationToken": "corr-1"},
        "endpoint": {"scope": {"type": "BearerToken", "token": "tok"}, "endpointId": "lamp-1", "cookie": {}},
        "payload": {}
    }})
}

pub(super) fn power(value: &str) -> Value {
    json!({"namespace": "Alexa.PowerController", "name": "powerState", "value": value,
           "timeOfSample": "2024-05-01T12:00:00.000Z", "uncertaintyInMilliseconds": 500})
}

pub(super) fn health() -> Value {
    json!({"namespace": "Alexa.EndpointHealth", "name": "connectivity", "value": {"value": "OK"},
           "timeOfSample": "2024-05-01T12:00:00Z", "uncertaintyInMilliseconds": 0})
}

/// lamp-1 as declared: power (proactively reported) and health.
pub(super) fn declaration() -> Value {
    json!({"endpointId": "lamp-1", "manufacturerName": "Example Lights", "description": "A test lamp",
           "friendlyName": "Desk lamp", "displayCategories": ["LIGHT"], "capabilities": [
        {"type": "AlexaInterface", "interface": "Alexa", "version": "3"},
        {"type": "AlexaInterface", "interface": "Alexa.PowerController", "version": "3",
         "properties": {"supported": [{"name": "powerState"}], "proactivelyReported": true, "retrievable": true}},
        {"type": "AlexaInterface", "interface": "Alexa.EndpointHealth", "version": "3",
         "properties": {"supported": [{"name": "connectivity"}], "proactivelyReported": true, "retrievable": true}}
    ]})
}

/// The skill's valid answer to `directive()`.
pub(super) fn response() -> Value {
    json!({"event": {
        "header": {"namespace": "Alexa", "name": "Response", "payloadVersion": "3",
                   "messageId": "a-1", "correlationToken": "corr-1"},
        "endpoint": {"scope": {"type": "BearerToken", "token": "tok"}, "endpointId": "lamp-1"},
        "payload": {}
    }, "context": {"properties": [power("ON"), health()]}})
}

fn error_response(ns: &str, ty: &str) -> Value {
    json!({"event": {
        "header": {"namespace": ns, "name": "ErrorResponse", "payloadVersion": "3",
                   "messageId": "a-2", "correlationToken": "corr-1"},
        "endpoint": {"endpointId": "lamp-1"},
        "payload": {"type": ty, "message": "it is unplugged"}
    }})
}

fn judge(a: &Value, mode: Mode) -> Answer {
    answer(a, &directive(), Some(&declaration()), mode)
}

/// `response()` with the value at `pointer` replaced.
fn with(pointer: &str, value: Value, mode: Mode) -> Answer {
    let mut a = response();
    *a.pointer_mut(pointer).unwrap_or_else(|| panic!("{pointer}")) = value;
    judge(&a, mode)
}

fn has(a: &Answer, rule: &str, severity: Severity, pointer: &str) {
    assert!(
        a.findings
            .iter()
            .any(|f| f.rule == rule && f.severity == severity && f.pointer == pointer),
        "want {rule} {severity:?} at {pointer}: {:#?}",
        a.findings
    );
}

#[test]
fn a_valid_response_has_no_findings_and_yields_its_properties() {
    let a = judge(&response(), Mode::Strict);
    assert_eq!(a.kind, AnswerKind::Response);
    assert!(a.findings.is_empty(), "{:#?}", a.findings);
    assert_eq!(a.properties, [power("ON"), health()]);
}

#[test]
fn rule_1_header_and_answer_kind() {
    let a = with("/event/header/payloadVersion", json!("3.0"), Mode::Default);
    has(&a, "1 header", Severity::Error, "/event/header/payloadVersion");
    let a = with("/event/header/name", json!("StateReport"), Mode::Default);
    has(&a, "1 header", Severity::Error, "/event/header/name");
    assert!(a.rejected());
}

#[test]
fn rules_2_and_3_message_id() {
    let a = with("/event/header/messageId", json!(""), Mode::Default);
    has(&a, "2 messageId", Severity::Error, "/event/header/messageId");
    let a = with("/event/header/messageId", json!("a_1"), Mode::Default);
    has(&a, "3 messageId format", Severity::Warning, "/event/header/messageId");
    assert!(!a.rejected());
    let a = with("/event/header/messageId", json!("a_1"), Mode::Strict);
    has(&a, "3 messageId format", Severity::Error, "/event/header/messageId");
}

#[test]
fn rule_26_property_fields() {
    let at = "/context/properties/0/uncertaintyInMilliseconds";
    let a = with(at, json!(-1), Mode::Default);
    has(&a, "26 property", Severity::Error, at);
    assert_eq!(a.properties, [health()], "the broken property is not kept");
    let mut p = power("ON");
    p.as_object_mut().unwrap().remove("namespace");
    let a = with("/context/properties/0", p, Mode::Default);
    has(&a, "26 property", Severity::Error, "/context/properties/0");
    let a = with("/context/properties", json!({}), Mode::Default);
    has(&a, "26 property", Severity::Error, "/context/properties");
}

#[test]
fn rule_26_undeclared_properties_warn() {
    let brightness = json!({"namespace": "Alexa.BrightnessController", "name": "brightness", "value": 5,
                            "timeOfSample": "2024-05-01T12:00:00Z", "uncertaintyInMilliseconds": 0});
    let a = with("/context/properties/0", brightness.clone(), Mode::Default);
    has(&a, "26 property declared", Severity::Warning, "/context/properties/0");
    assert_eq!(a.properties.len(), 2, "kept anyway");
    let a = with("/context/properties/0", brightness, Mode::Strict);
    has(&a, "26 property declared", Severity::Error, "/context/properties/0");
}

#[test]
fn rule_27_time_of_sample() {
    let at = "/context/properties/0/timeOfSample";
    for fine in [
        "2024-05-01T12:00:00Z",
        "2024-05-01T12:00:00.5Z",
        "2024-05-01T12:00:00.123Z",
    ] {
        assert!(with(at, json!(fine), Mode::Strict).findings.is_empty(), "{fine}");
    }
    for utc in ["2024-05-01T12:00:00+00:00", "2024-05-01T12:00:00.123456Z"] {
        has(
            &with(at, json!(utc), Mode::Default),
            "27 timeOfSample",
            Severity::Warning,
            at,
        );
        has(
            &with(at, json!(utc), Mode::Strict),
            "27 timeOfSample",
            Severity::Error,
            at,
        );
    }
    for bad in [
        json!("2024-05-01T12:00:00+02:00"),
        json!("yesterday"),
        json!("2024-13-01T12:00:00Z"),
        json!(1),
    ] {
        has(&with(at, bad, Mode::Default), "27 timeOfSample", Severity::Error, at);
    }
}

/// Judge one property with `value` as its value.
fn value_of(ns: &str, name: &str, value: Value) -> Vec<Finding> {
    let p = json!({"namespace": ns, "name": name, "value": value,
                   "timeOfSample": "2024-05-01T12:00:00Z", "uncertaintyInMilliseconds": 0});
    let mut a = response();
    a["context"]["properties"] = json!([p]);
    answer(&a, &directive(), None, Mode::Strict).findings
}

#[test]
fn rule_28_values_per_capability() {
    let cases = [
        (
            "Alexa.PowerController",
            "powerState",
            json!("ON"),
            json!("on"),
            "/value",
        ),
        (
            "Alexa.BrightnessController",
            "brightness",
            json!(100),
            json!(101),
            "/value",
        ),
        (
            "Alexa.PercentageController",
            "percentage",
            json!(0),
            json!(50.5),
            "/value",
        ),
        (
            "Alexa.ColorTemperatureController",
            "colorTemperatureInKelvin",
            json!(2700),
            json!(999),
            "/value",
        ),
        (
            "Alexa.ColorController",
            "color",
            json!({"hue": 350.5, "saturation": 0.7, "brightness": 1}),
            json!({"hue": 361, "saturation": 0.7, "brightness": 1}),
            "/value/hue",
        ),
        (
            "Alexa.LockController",
            "lockState",
            json!("JAMMED"),
            json!("OPEN"),
            "/value",
        ),
        (
            "Alexa.ThermostatController",
            "targetSetpoint",
            json!({"value": 21.5, "scale": "CELSIUS"}),
            json!({"value": 21.5, "scale": "RANKINE"}),
            "/value/scale",
        ),
        (
            "Alexa.TemperatureSensor",
            "temperature",
            json!({"value": -3, "scale": "FAHRENHEIT"}),
            json!({"value": "cold", "scale": "KELVIN"}),
            "/value/value",
        ),
        (
            "Alexa.ThermostatController",
            "thermostatMode",
            json!("ECO"),
            json!({"value": "ECO"}),
            "/value",
        ),
        (
            "Alexa.EndpointHealth",
            "connectivity",
            json!({"value": "UNREACHABLE"}),
            json!({"value": "DOWN"}),
            "/value/value",
        ),
        (
            "Alexa.ContactSensor",
            "detectionState",
            json!("NOT_DETECTED"),
            json!("OPEN"),
            "/value",
        ),
        (
            "Alexa.ToggleController",
            "toggleState",
            json!("OFF"),
            json!(false),
            "/value",
        ),
        ("Alexa.Speaker", "volume", json!(30), json!(-1), "/value"),
        ("Alexa.Speaker", "muted", json!(true), json!("true"), "/value"),
    ];
    for (ns, name, good, bad, at) in cases {
        let ok = value_of(ns, name, good);
        assert!(ok.iter().all(|f| f.rule != "28 value"), "{ns}.{name}: {ok:#?}");
        let f = value_of(ns, name, bad);
        let want = format!("/context/properties/0{at}");
        assert!(
            f.iter()
                .any(|f| f.rule == "28 value" && f.pointer == want && f.severity == Severity::Error),
            "{ns}.{name} at {want}: {f:#?}"
        );
    }
    assert!(
        value_of("Alexa.Unknown", "anything", json!({"x": 1})).is_empty(),
        "unknown: common fields only"
    );
}

#[test]
fn rule_30_correlation_token_and_endpoint_id_are_echoed() {
    let mut a = response();
    a["event"]["header"].as_object_mut().unwrap().remove("correlationToken");
    has(
        &judge(&a, Mode::Default),
        "30 correlationToken",
        Severity::Error,
        "/event/header",
    );
    let a = with("/event/header/correlationToken", json!("corr-2"), Mode::Default);
    has(
        &a,
        "30 correlationToken",
        Severity::Error,
        "/event/header/correlationToken",
    );
    let a = with("/event/endpoint/endpointId", json!("lamp-2"), Mode::Default);
    has(&a, "30 endpointId", Severity::Error, "/event/endpoint/endpointId");
}

#[test]
fn error_response_type_and_message() {
    let a = judge(&error_response("Alexa", "ENDPOINT_UNREACHABLE"), Mode::Strict);
    assert!(a.findings.is_empty(), "{:#?}", a.findings);
    assert!(matches!(a.kind, AnswerKind::ErrorResponse { ref error_type, .. } if error_type == "ENDPOINT_UNREACHABLE"));
    let a = judge(&error_response("Alexa", "BROKEN"), Mode::Default);
    has(&a, "1 ErrorResponse type", Severity::Error, "/event/payload/type");
    let a = judge(
        &error_response("Alexa.ThermostatController", "THERMOSTAT_IS_OFF"),
        Mode::Strict,
    );
    assert!(a.findings.is_empty(), "{:#?}", a.findings);
    let a = judge(&error_response("Alexa.Teleporter", "ENDPOINT_BUSY"), Mode::Default);
    has(&a, "1 ErrorResponse type", Severity::Warning, "/event/header/namespace");
    assert!(!a.rejected());
    let mut e = error_response("Alexa", "INTERNAL_ERROR");
    e["event"]["payload"].as_object_mut().unwrap().remove("message");
    has(
        &judge(&e, Mode::Default),
        "1 ErrorResponse message",
        Severity::Error,
        "/event/payload",
    );
}

#[test]
fn rule_31_error_response_with_context() {
    let mut e = error_response("Alexa", "ENDPOINT_UNREACHABLE");
    e["context"] = json!({"properties": [health()]});
    assert!(judge(&e, Mode::Default).findings.is_empty(), "the docs allow it");
    has(
        &judge(&e, Mode::Strict),
        "31 ErrorResponse context",
        Severity::Error,
        "/context",
    );
}

#[test]
fn deferred_response_estimate() {
    let deferred = |estimate: Value| {
        json!({"event": {"header": {"namespace": "Alexa", "name": "DeferredResponse", "payloadVersion": "3",
                                    "messageId": "a-3", "correlationToken": "corr-1"},
                         "payload": {"estimatedDeferralInSeconds": estimate}}})
    };
    let a = judge(&deferred(json!(7)), Mode::Strict);
    assert!(a.findings.is_empty(), "{:#?}", a.findings);
    assert_eq!(
        a.kind,
        AnswerKind::DeferredResponse {
            estimated_seconds: Some(7)
        }
    );
    let a = judge(&deferred(json!(-1)), Mode::Default);
    has(
        &a,
        "1 DeferredResponse payload",
        Severity::Error,
        "/event/payload/estimatedDeferralInSeconds",
    );
}

#[test]
fn accept_grant_answers() {
    let grant = json!({"directive": {"header": {"namespace": "Alexa.Authorization", "name": "AcceptGrant",
        "payloadVersion": "3", "messageId": "d-2"}, "payload": {"grant": {"type": "OAuth2.AuthorizationCode", "code": "c"},
        "grantee": {"type": "BearerToken", "token": "t"}}}});
    let ok = json!({"event": {"header": {"namespace": "Alexa.Authorization", "name": "AcceptGrant.Response",
                                         "payloadVersion": "3", "messageId": "a-4"}, "payload": {}}});
    let a = answer(&ok, &grant, None, Mode::Strict);
    assert_eq!((a.kind, a.findings), (AnswerKind::AcceptGrantResponse, vec![]));
    let failed = error_response("Alexa.Authorization", "ACCEPT_GRANT_FAILED");
    assert!(answer(&failed, &grant, None, Mode::Strict).findings.is_empty());
    let wrong = error_response("Alexa.Authorization", "INTERNAL_ERROR");
    let a = answer(&wrong, &grant, None, Mode::Default);
    has(&a, "1 ErrorResponse type", Severity::Error, "/event/payload/type");
    let a = answer(&response(), &grant, None, Mode::Default);
    has(&a, "1 header", Severity::Error, "/event/header/name");
}

#[test]
fn report_state_is_answered_with_a_state_report() {
    let mut d = directive();
    d["directive"]["header"]["namespace"] = json!("Alexa");
    d["directive"]["header"]["name"] = json!("ReportState");
    let mut report = response();
    report["event"]["header"]["name"] = json!("StateReport");
    let a = answer(&report, &d, Some(&declaration()), Mode::Strict);
    assert_eq!(a.kind, AnswerKind::StateReport);
    assert!(a.findings.is_empty(), "{:#?}", a.findings);
    let a = answer(&response(), &d, None, Mode::Default);
    has(&a, "1 header", Severity::Error, "/event/header/name");
}

#[test]
fn scene_activation_started_answers_activate() {
    let mut d = directive();
    d["directive"]["header"]["namespace"] = json!("Alexa.SceneController");
    d["directive"]["header"]["name"] = json!("Activate");
    let mut a = response();
    a["event"]["header"]["namespace"] = json!("Alexa.SceneController");
    a["event"]["header"]["name"] = json!("ActivationStarted");
    a["event"]["payload"] = json!({"cause": {"type": "VOICE_INTERACTION"}, "timestamp": "2024-05-01T12:00:00Z"});
    a["context"] = json!({});
    let v = answer(&a, &d, None, Mode::Strict);
    assert_eq!(v.kind, AnswerKind::Response);
    assert!(v.findings.is_empty(), "{:#?}", v.findings);
}

#[test]
fn a_discover_directive_is_judged_as_discovery() {
    let d = json!({"directive": {"header": {"namespace": "Alexa.Discovery", "name": "Discover",
        "payloadVersion": "3", "messageId": "d-3"}, "payload": {"scope": {"type": "BearerToken", "token": "t"}}}});
    let seed: Value = serde_json::from_str(super::tests::SEED).unwrap();
    let a = answer(&seed, &d, None, Mode::Default);
    assert!(!a.rejected());
    assert!(matches!(a.kind, AnswerKind::DiscoverResponse { ref accepted, .. } if accepted.len() == 6));
}

proptest! {
    #[test]
    fn arbitrary_answers_never_panic(doc in json_value(), dir in json_value()) {
        let _ = answer(&doc, &directive(), Some(&declaration()), Mode::Default);
        let _ = answer(&json!({"event": doc.clone(), "context": dir.clone()}), &directive(), None, Mode::Strict);
        let _ = answer(&doc, &dir, Some(&dir), Mode::Default);
    }

    /// Replace any one value of a valid Response: each finding points at a
    /// place the mutated answer has.
    #[test]
    fn a_mutated_response_is_judged_with_pointers_into_it(which in 0usize..128, value in json_value()) {
        let mut doc = response();
        let mut pointers = Vec::new();
        collect(&doc, String::new(), &mut pointers);
        if let Some(slot) = doc.pointer_mut(&pointers[which % pointers.len()]) {
            *slot = value;
        }
        let a = answer(&doc, &directive(), Some(&declaration()), Mode::Default);
        for f in &a.findings {
            prop_assert!(doc.pointer(&f.pointer).is_some(), "{f:?} in {doc}");
        }
    }
}
