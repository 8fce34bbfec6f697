//! One test per gateway event rule (1–3, 5–19 reused, 21, 23–31), each
//! breaking only that rule of a valid event.

use super::tests::{collect, json_value};
use super::tests_answer::{declaration, health, power, response};
use super::*;
use proptest::prelude::*;
use serde_json::json;

/// Judge `body` as posted with bearer `tok` by a user whose Alexa knows
/// lamp-1 (`declaration()`) and awaits correlationToken `corr-9`.
fn judge_with(body: &Value, mode: Mode, decl: Value) -> Event {
    let known = move |id: &str| (id == "lamp-1").then(|| decl.clone());
    let pending = |c: &str| (c == "corr-9").then(|| Some("lamp-1".to_string()));
    event(
        body,
        &Context {
            bearer: "tok",
            known: &known,
            pending: &pending,
            received: None,
            mode,
        },
    )
}

fn judge(body: &Value, mode: Mode) -> Event {
    judge_with(body, mode, declaration())
}

fn scope() -> Value {
    json!({"type": "BearerToken", "token": "tok"})
}

fn header(ns: &str, name: &str) -> Value {
    json!({"namespace": ns, "name": name, "payloadVersion": "3", "messageId": "e-1"})
}

fn add_or_update() -> Value {
    json!({"event": {"header": header("Alexa.Discovery", "AddOrUpdateReport"),
                     "payload": {"endpoints": [declaration()], "scope": scope()}}})
}

fn delete_report() -> Value {
    json!({"event": {"header": header("Alexa.Discovery", "DeleteReport"),
                     "payload": {"endpoints": [{"endpointId": "lamp-1"}], "scope": scope()}}})
}

fn change_report() -> Value {
    json!({"event": {"header": header("Alexa", "ChangeReport"),
                     "endpoint": {"scope": scope(), "endpointId": "lamp-1"},
                     "payload": {"change": {"cause": {"type": "PHYSICAL_INTERACTION"}, "properties": [power("ON")]}}},
           "context": {"properties": [health()]}})
}

/// The Response that follows a DeferredResponse, posted to the gateway.
fn async_response() -> Value {
    let mut r = response();
    r["event"]["header"]["correlationToken"] = json!("corr-9");
    r
}

fn doorbell() -> Value {
    json!({"event": {"header": header("Alexa.DoorbellEventSource", "DoorbellPress"),
                     "endpoint": {"scope": scope(), "endpointId": "lamp-1"},
                     "payload": {"cause": {"type": "PHYSICAL_INTERACTION"}, "timestamp": "2024-05-01T12:00:00Z"}}})
}

/// `doc` with the value at `pointer` replaced.
fn set(mut doc: Value, pointer: &str, value: Value) -> Value {
    *doc.pointer_mut(pointer).unwrap_or_else(|| panic!("{pointer}")) = value;
    doc
}

fn has(e: &Event, rule: &str, severity: Severity, pointer: &str) {
    assert!(
        e.findings
            .iter()
            .any(|f| f.rule == rule && f.severity == severity && f.pointer == pointer),
        "want {rule} {severity:?} at {pointer}: {:#?}",
        e.findings
    );
}

#[test]
fn valid_events_have_no_findings() {
    for body in [
        add_or_update(),
        delete_report(),
        change_report(),
        async_response(),
        doorbell(),
    ] {
        let e = judge(&body, Mode::Strict);
        assert!(e.findings.is_empty(), "{body}: {:#?}", e.findings);
    }
    let e = judge(&change_report(), Mode::Default);
    let EventKind::ChangeReport { endpoint, properties } = e.kind else {
        panic!("{:?}", e.kind)
    };
    assert_eq!((endpoint.as_str(), properties), ("lamp-1", vec![power("ON"), health()]));
    let e = judge(&add_or_update(), Mode::Default);
    assert_eq!(
        e.kind,
        EventKind::AddOrUpdateReport {
            endpoints: vec![declaration()],
            dropped: vec![]
        }
    );
    let e = judge(&delete_report(), Mode::Default);
    assert_eq!(
        e.kind,
        EventKind::DeleteReport {
            ids: vec!["lamp-1".into()]
        }
    );
}

#[test]
fn rules_1_to_3_event_header() {
    let e = judge(
        &set(change_report(), "/event/header/payloadVersion", json!(3)),
        Mode::Default,
    );
    has(&e, "1 header", Severity::Error, "/event/header/payloadVersion");
    assert!(e.first_error().is_some());
    let e = judge(
        &set(change_report(), "/event/header/messageId", json!(null)),
        Mode::Default,
    );
    has(&e, "2 messageId", Severity::Error, "/event/header/messageId");
    let e = judge(
        &set(change_report(), "/event/header/messageId", json!("e_1")),
        Mode::Default,
    );
    has(&e, "3 messageId format", Severity::Warning, "/event/header/messageId");
    assert!(e.first_error().is_none());
    let e = judge(&set(change_report(), "/event/header", json!("x")), Mode::Default);
    has(&e, "1 header", Severity::Error, "/event/header");
}

#[test]
fn rule_5_add_or_update_endpoints_array() {
    let e = judge(
        &set(add_or_update(), "/event/payload/endpoints", json!({})),
        Mode::Default,
    );
    has(&e, "5 endpoints", Severity::Error, "/event/payload/endpoints");
}

#[test]
fn rules_6_to_19_an_invalid_reported_endpoint_is_dropped_and_refuses_the_event() {
    let mut body = add_or_update();
    let mut bad = declaration();
    bad["endpointId"] = json!("lamp-2");
    bad["capabilities"][1]["version"] = json!(3);
    body["event"]["payload"]["endpoints"] = json!([declaration(), bad]);
    let e = judge(&body, Mode::Default);
    has(
        &e,
        "14 version",
        Severity::Error,
        "/event/payload/endpoints/1/capabilities/1/version",
    );
    assert_eq!(e.first_error().map(|f| f.rule), Some("14 version"));
    let EventKind::AddOrUpdateReport { endpoints, dropped } = e.kind else {
        panic!()
    };
    assert_eq!(endpoints, [declaration()]);
    assert_eq!(dropped[0].endpoint_id.as_deref(), Some("lamp-2"));
}

#[test]
fn rule_21_scope() {
    let at = "/event/payload/scope";
    let mut body = add_or_update();
    body["event"]["payload"].as_object_mut().unwrap().remove("scope");
    has(
        &judge(&body, Mode::Default),
        "21 scope",
        Severity::Error,
        "/event/payload",
    );
    let e = judge(
        &set(add_or_update(), &format!("{at}/token"), json!("other")),
        Mode::Default,
    );
    has(&e, "21 scope", Severity::Error, &format!("{at}/token"));
    let e = judge(
        &set(delete_report(), &format!("{at}/type"), json!("Basic")),
        Mode::Default,
    );
    has(&e, "21 scope", Severity::Error, &format!("{at}/type"));
    let e = judge(
        &set(
            add_or_update(),
            &format!("{at}/type"),
            json!("BearerTokenWithPartition"),
        ),
        Mode::Default,
    );
    has(&e, "21 scope", Severity::Error, at);
    let partitioned = json!({"type": "BearerTokenWithPartition", "token": "tok", "partition": "room-1", "userId": "u"});
    assert!(
        judge(&set(add_or_update(), at, partitioned), Mode::Strict)
            .findings
            .is_empty()
    );
    let e = judge(
        &set(change_report(), "/event/endpoint/scope/token", json!("")),
        Mode::Default,
    );
    has(&e, "21 scope", Severity::Error, "/event/endpoint/scope/token");
}

#[test]
fn rule_23_delete_report_endpoints() {
    let at = "/event/payload/endpoints";
    let e = judge(&set(delete_report(), at, json!([])), Mode::Default);
    has(&e, "23 DeleteReport endpoints", Severity::Error, at);
    let e = judge(
        &set(delete_report(), &format!("{at}/0/endpointId"), json!("lamp-7")),
        Mode::Default,
    );
    has(
        &e,
        "23 DeleteReport endpoints",
        Severity::Warning,
        &format!("{at}/0/endpointId"),
    );
    assert!(e.first_error().is_none());
    let e = judge(
        &set(delete_report(), &format!("{at}/0/endpointId"), json!("lamp-7")),
        Mode::Strict,
    );
    has(
        &e,
        "23 DeleteReport endpoints",
        Severity::Error,
        &format!("{at}/0/endpointId"),
    );
    let e = judge(
        &set(delete_report(), &format!("{at}/0/endpointId"), json!("lamp/1")),
        Mode::Default,
    );
    has(&e, "6 endpointId", Severity::Error, &format!("{at}/0/endpointId"));
    assert_eq!(e.kind, EventKind::DeleteReport { ids: vec![] });
}

#[test]
fn rule_24_change_report_endpoint_known() {
    let e = judge(
        &set(change_report(), "/event/endpoint/endpointId", json!("lamp-7")),
        Mode::Default,
    );
    has(&e, "24 endpoint", Severity::Error, "/event/endpoint/endpointId");
    let mut body = change_report();
    body["event"]["endpoint"].as_object_mut().unwrap().remove("endpointId");
    has(
        &judge(&body, Mode::Default),
        "24 endpoint",
        Severity::Error,
        "/event/endpoint",
    );
}

#[test]
fn rule_25_cause() {
    let at = "/event/payload/change/cause/type";
    let e = judge(&set(change_report(), at, json!("BECAUSE")), Mode::Default);
    has(&e, "25 cause", Severity::Warning, at);
    assert!(e.first_error().is_none());
    has(
        &judge(&set(change_report(), at, json!("BECAUSE")), Mode::Strict),
        "25 cause",
        Severity::Error,
        at,
    );
}

#[test]
fn rule_26_change_properties_are_declared_proactively_reported() {
    let at = "/event/payload/change/properties";
    let e = judge(&set(change_report(), at, json!([])), Mode::Default);
    has(&e, "26 property", Severity::Error, at);
    let mut quiet = declaration();
    quiet["capabilities"][1]["properties"]["proactivelyReported"] = json!(false);
    let e = judge_with(&change_report(), Mode::Default, quiet);
    has(&e, "26 proactivelyReported", Severity::Error, &format!("{at}/0"));
    let e = judge(
        &set(
            change_report(),
            &format!("{at}/0/uncertaintyInMilliseconds"),
            json!("0"),
        ),
        Mode::Default,
    );
    has(
        &e,
        "26 property",
        Severity::Error,
        &format!("{at}/0/uncertaintyInMilliseconds"),
    );
}

#[test]
fn rules_27_and_28_in_events() {
    let at = "/event/payload/change/properties/0";
    let e = judge(
        &set(
            change_report(),
            &format!("{at}/timeOfSample"),
            json!("2024-05-01 12:00"),
        ),
        Mode::Default,
    );
    has(&e, "27 timeOfSample", Severity::Error, &format!("{at}/timeOfSample"));
    let e = judge(
        &set(change_report(), &format!("{at}/value"), json!("DIM")),
        Mode::Default,
    );
    has(&e, "28 value", Severity::Error, &format!("{at}/value"));
    let e = judge(
        &set(change_report(), "/context/properties/0/value/value", json!("SO-SO")),
        Mode::Default,
    );
    has(&e, "28 value", Severity::Error, "/context/properties/0/value/value");
}

#[test]
fn rule_29_connectivity_is_advised_in_both_modes() {
    let mut body = change_report();
    body.as_object_mut().unwrap().remove("context");
    for mode in [Mode::Default, Mode::Strict] {
        let e = judge(&body, mode);
        has(&e, "29 connectivity", Severity::Warning, "");
        assert!(e.first_error().is_none(), "{mode:?}");
    }
}

#[test]
fn rule_29_a_change_report_more_than_3_s_after_the_change_is_advised() {
    use time::format_description::well_known::Rfc3339;
    let body = change_report();
    let sampled = body["event"]["payload"]["change"]["properties"][0]["timeOfSample"]
        .as_str()
        .unwrap()
        .to_string();
    let sampled = time::OffsetDateTime::parse(&sampled, &Rfc3339).unwrap();
    let decl = declaration();
    let known = move |id: &str| (id == "lamp-1").then(|| decl.clone());
    let pending = |_: &str| None;
    let at = |after: i64| {
        event(
            &body,
            &Context {
                bearer: "tok",
                known: &known,
                pending: &pending,
                received: Some(sampled + time::Duration::seconds(after)),
                mode: Mode::Strict,
            },
        )
    };
    let late = at(10);
    has(
        &late,
        "29 within 3 s",
        Severity::Warning,
        "/event/payload/change/properties/0/timeOfSample",
    );
    assert!(late.first_error().is_none(), "advice, even in strict mode");
    assert!(!at(1).findings.iter().any(|f| f.rule == "29 within 3 s"));
}

#[test]
fn rule_30_async_answers_carry_an_awaited_correlation_token() {
    let at = "/event/header/correlationToken";
    let e = judge(&set(async_response(), at, json!("corr-1")), Mode::Default);
    has(&e, "30 correlationToken", Severity::Error, at);
    assert!(e.first_error().unwrap().message.contains("no directive awaits"));
    let mut body = async_response();
    body["event"]["header"]
        .as_object_mut()
        .unwrap()
        .remove("correlationToken");
    has(
        &judge(&body, Mode::Default),
        "30 correlationToken",
        Severity::Error,
        "/event/header",
    );
    let deferred = json!({"event": {"header": header("Alexa", "DeferredResponse"), "payload": {}}});
    let deferred = set(deferred, "/event/header/messageId", json!("e-2"));
    has(
        &judge(&deferred, Mode::Default),
        "30 correlationToken",
        Severity::Error,
        "/event/header",
    );
    // The answer must be about the endpoint the directive went to (lamp-1).
    let other = set(async_response(), "/event/endpoint/endpointId", json!("lamp-2"));
    let e = judge(&other, Mode::Default);
    has(&e, "30 endpointId", Severity::Error, "/event/endpoint/endpointId");
    assert!(e.first_error().unwrap().message.contains("went to endpoint \"lamp-1\""));
    let e = judge(&async_response(), Mode::Default);
    assert!(matches!(e.kind, EventKind::Response { ref correlation, .. } if correlation == "corr-9"));
}

#[test]
fn rule_31_async_error_response_with_context() {
    let body = json!({"event": {"header": {"namespace": "Alexa", "name": "ErrorResponse", "payloadVersion": "3",
                                           "messageId": "e-3", "correlationToken": "corr-9"},
                                "endpoint": {"scope": scope(), "endpointId": "lamp-1"},
                                "payload": {"type": "ENDPOINT_UNREACHABLE", "message": "gone"}},
                      "context": {"properties": [health()]}});
    let e = judge(&body, Mode::Default);
    assert!(e.findings.is_empty(), "{:#?}", e.findings);
    has(
        &judge(&body, Mode::Strict),
        "31 ErrorResponse context",
        Severity::Error,
        "/context",
    );
}

#[test]
fn interface_events_name_a_known_endpoint() {
    let e = judge(
        &set(doorbell(), "/event/endpoint/endpointId", json!("bell-9")),
        Mode::Default,
    );
    has(&e, "24 endpoint", Severity::Error, "/event/endpoint/endpointId");
    let e = judge(
        &set(doorbell(), "/event/endpoint/scope/token", json!("stolen")),
        Mode::Default,
    );
    has(&e, "21 scope", Severity::Error, "/event/endpoint/scope/token");
}

proptest! {
    #[test]
    fn arbitrary_events_never_panic(doc in json_value()) {
        let _ = judge(&doc, Mode::Default);
        let _ = judge(&json!({"event": doc}), Mode::Strict);
    }

    /// Replace any one value of a valid ChangeReport, AddOrUpdateReport or
    /// async Response: each finding points at a place the event has.
    #[test]
    fn mutated_events_are_judged_with_pointers_into_them(
        base in 0usize..3, which in 0usize..256, value in json_value()
    ) {
        let mut doc = [change_report(), add_or_update(), async_response()][base].clone();
        let mut pointers = Vec::new();
        collect(&doc, String::new(), &mut pointers);
        if let Some(slot) = doc.pointer_mut(&pointers[which % pointers.len()]) {
            *slot = value;
        }
        let e = judge(&doc, Mode::Default);
        for f in &e.findings {
            prop_assert!(doc.pointer(&f.pointer).is_some(), "{f:?} in {doc}");
        }
    }
}
