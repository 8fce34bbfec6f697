use super::*;
use proptest::prelude::*;
use serde_json::json;

/// A Discover.Response with one valid light (written for these tests).
fn valid() -> Value {
    json!({"event": {
        "header": {"namespace": "Alexa.Discovery", "name": "Discover.Response", "payloadVersion": "3",
                   "messageId": "6d2b1e3c-0b7a-4a57-9d1e-5f1f8c3a2b10"},
        "payload": {"endpoints": [{
            "endpointId": "lamp-1",
            "manufacturerName": "Example Lights",
            "description": "A test lamp",
            "friendlyName": "Desk lamp",
            "displayCategories": ["LIGHT"],
            "cookie": {"room": "study"},
            "capabilities": [
                {"type": "AlexaInterface", "interface": "Alexa", "version": "3"},
                {"type": "AlexaInterface", "interface": "Alexa.PowerController", "version": "3",
                 "properties": {"supported": [{"name": "powerState"}], "proactivelyReported": true, "retrievable": true}}
            ]
        }]}
    }})
}

/// Judge `answer` with one change made at `pointer`.
fn with(pointer: &str, value: Value, mode: Mode) -> Discovery {
    let mut a = valid();
    *a.pointer_mut(pointer).unwrap_or_else(|| panic!("{pointer}")) = value;
    discovery(&a, mode)
}

fn only(d: &Discovery, rule: &str, severity: Severity, pointer: &str) {
    assert!(
        d.findings
            .iter()
            .any(|f| f.rule == rule && f.severity == severity && f.pointer == pointer),
        "want {rule} {severity:?} at {pointer}: {:#?}",
        d.findings
    );
}

#[test]
fn a_valid_answer_is_accepted_without_findings() {
    let d = discovery(&valid(), Mode::Strict);
    assert_eq!(d.accepted, ["lamp-1"]);
    assert!(d.findings.is_empty(), "{:#?}", d.findings);
}

#[test]
fn an_empty_endpoint_list_is_a_valid_answer() {
    let d = with("/event/payload/endpoints", json!([]), Mode::Strict);
    assert!(d.findings.is_empty() && d.accepted.is_empty());
}

#[test]
fn rule_1_payload_version_is_the_string_3() {
    for bad in [json!(3), json!("3.0")] {
        let d = with("/event/header/payloadVersion", bad, Mode::Default);
        only(&d, "1 header", Severity::Error, "/event/header/payloadVersion");
        assert!(d.accepted.is_empty(), "a broken answer shows nothing");
    }
    let d = with("/event/header/name", json!("Discover"), Mode::Default);
    only(&d, "1 header", Severity::Error, "/event/header/name");
}

#[test]
fn rules_2_and_3_message_id() {
    let d = with("/event/header/messageId", json!(""), Mode::Default);
    only(&d, "2 messageId", Severity::Error, "/event/header/messageId");
    let d = with("/event/header/messageId", json!("has_underscore"), Mode::Default);
    only(&d, "3 messageId format", Severity::Warning, "/event/header/messageId");
    assert_eq!(d.accepted, ["lamp-1"], "a warning drops nothing");
    let d = with("/event/header/messageId", json!("has_underscore"), Mode::Strict);
    only(&d, "3 messageId format", Severity::Error, "/event/header/messageId");
}

#[test]
fn rule_4_unknown_keys_warn() {
    let d = with("/event/payload", json!({"endpoints": [], "extra": 1}), Mode::Default);
    only(&d, "4 only known keys", Severity::Warning, "/event/payload/extra");
}

#[test]
fn rule_5_at_most_300_endpoints() {
    let d = with("/event/payload/endpoints", json!("none"), Mode::Default);
    only(&d, "5 endpoints", Severity::Error, "/event/payload/endpoints");
    let mut many = Vec::new();
    for i in 0..301 {
        let mut e = valid()["event"]["payload"]["endpoints"][0].clone();
        e["endpointId"] = json!(format!("e{i}"));
        many.push(e);
    }
    let d = with("/event/payload/endpoints", json!(many), Mode::Default);
    only(&d, "5 endpoints", Severity::Error, "/event/payload/endpoints");
}

#[test]
fn rule_6_endpoint_id_characters_and_length() {
    let at = "/event/payload/endpoints/0/endpointId";
    let d = with(at, json!("lamp/1"), Mode::Default);
    only(&d, "6 endpointId", Severity::Error, at);
    assert_eq!(d.dropped[0].endpoint_id.as_deref(), Some("lamp/1"));
    let d = with(at, json!("x".repeat(257)), Mode::Default);
    only(&d, "6 endpointId", Severity::Error, at);
    let d = with(at, json!("lamp 1"), Mode::Default);
    only(&d, "6 endpointId", Severity::Warning, at);
    assert_eq!(d.accepted, ["lamp 1"]);
}

#[test]
fn rule_7_duplicate_ids_drop_the_second_and_keep_the_first() {
    let e = valid()["event"]["payload"]["endpoints"][0].clone();
    let d = with("/event/payload/endpoints", json!([e, e]), Mode::Default);
    only(
        &d,
        "7 endpointId unique",
        Severity::Error,
        "/event/payload/endpoints/1/endpointId",
    );
    assert_eq!(d.accepted, ["lamp-1"]);
    assert_eq!(d.dropped.len(), 1);
}

#[test]
fn rule_8_manufacturer_and_description() {
    let at = "/event/payload/endpoints/0/description";
    let d = with(at, json!("d".repeat(129)), Mode::Default);
    only(&d, "8 manufacturerName, description", Severity::Error, at);
    let mut a = valid();
    a["event"]["payload"]["endpoints"][0]
        .as_object_mut()
        .unwrap()
        .remove("manufacturerName");
    let d = discovery(&a, Mode::Default);
    only(
        &d,
        "8 manufacturerName, description",
        Severity::Error,
        "/event/payload/endpoints/0",
    );
    assert!(d.findings[0].message.contains("manufacturerName"), "{:?}", d.findings);
}

#[test]
fn rule_9_friendly_name() {
    let at = "/event/payload/endpoints/0/friendlyName";
    let d = with(at, json!("Desk lamp!"), Mode::Default);
    only(&d, "9 friendlyName", Severity::Warning, at);
    let d = with(at, json!("Desk lamp!"), Mode::Strict);
    only(&d, "9 friendlyName", Severity::Error, at);
    let d = with(at, json!("a".repeat(200)), Mode::Default);
    only(&d, "9 friendlyName", Severity::Warning, at);
    let d = with(at, json!("a".repeat(257)), Mode::Default);
    only(&d, "9 friendlyName", Severity::Error, at);
}

#[test]
fn rule_10_display_categories() {
    let at = "/event/payload/endpoints/0/displayCategories";
    let d = with(at, json!([]), Mode::Default);
    only(&d, "10 displayCategories", Severity::Error, at);
    let d = with(at, json!(["LIGHT", "LIGHT"]), Mode::Default);
    only(&d, "10 displayCategories", Severity::Error, &format!("{at}/1"));
    let d = with(at, json!(["AIR_PURIFIER"]), Mode::Default);
    only(&d, "10 displayCategories", Severity::Warning, &format!("{at}/0"));
}

#[test]
fn rule_11_cookie() {
    let at = "/event/payload/endpoints/0/cookie";
    let d = with(at, json!({"n": 1}), Mode::Default);
    only(&d, "11 cookie", Severity::Error, &format!("{at}/n"));
    let d = with(at, json!({"big": "x".repeat(5000)}), Mode::Default);
    only(&d, "11 cookie", Severity::Error, at);
}

#[test]
fn rules_12_and_15_capabilities() {
    let at = "/event/payload/endpoints/0/capabilities";
    let d = with(at, json!([]), Mode::Default);
    only(&d, "12 capabilities", Severity::Error, at);
    let power = valid()["event"]["payload"]["endpoints"][0]["capabilities"][1].clone();
    let d = with(at, json!([power]), Mode::Default);
    only(&d, "15 Alexa interface", Severity::Warning, at);
    let d = with(at, json!([power, power]), Mode::Default);
    only(&d, "12 capabilities", Severity::Error, &format!("{at}/1"));
}

pub(super) fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        "[a-zA-Z0-9 _!/~-]{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
            proptest::collection::btree_map("[a-zA-Z/~]{1,10}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #[test]
    fn arbitrary_json_never_panics(doc in json_value()) {
        let _ = discovery(&doc, Mode::Default);
        let _ = discovery(&json!({"event": doc}), Mode::Strict);
    }

    /// Replace any one value of a valid answer: it is accepted, or each
    /// finding points into the document.
    #[test]
    fn a_mutated_answer_is_judged_with_pointers_into_it(which in 0usize..64, value in json_value()) {
        let mut doc = valid();
        let mut pointers = Vec::new();
        collect(&doc, String::new(), &mut pointers);
        let target = &pointers[which % pointers.len()];
        if let Some(slot) = doc.pointer_mut(target) {
            *slot = value;
        }
        let d = discovery(&doc, Mode::Default);
        for f in &d.findings {
            prop_assert!(doc.pointer(&f.pointer).is_some(), "{f:?} in {doc}");
        }
    }
}

proptest! {
    /// Replace any one value of the seed's example: each finding points at
    /// a place the mutated answer has, and strict mode never panics either.
    #[test]
    fn a_mutated_seed_example_is_judged_with_pointers_into_it(which in 0usize..512, value in json_value()) {
        let mut doc: Value = serde_json::from_str(SEED).unwrap();
        let mut pointers = Vec::new();
        collect(&doc, String::new(), &mut pointers);
        if let Some(slot) = doc.pointer_mut(&pointers[which % pointers.len()]) {
            *slot = value;
        }
        for mode in [Mode::Default, Mode::Strict] {
            let d = discovery(&doc, mode);
            for f in d.findings.iter().chain(d.dropped.iter().flat_map(|x| &x.findings)) {
                prop_assert!(doc.pointer(&f.pointer).is_some(), "{f:?} in {doc}");
            }
        }
    }
}

pub(super) fn collect(v: &Value, at: String, out: &mut Vec<String>) {
    out.push(at.clone());
    match v {
        Value::Object(m) => m
            .iter()
            .for_each(|(k, v)| collect(v, format!("{at}/{}", escape(k)), out)),
        Value::Array(a) => a
            .iter()
            .enumerate()
            .for_each(|(i, v)| collect(v, format!("{at}/{i}"), out)),
        _ => {}
    }
}

/// The seed's first example (six endpoints, appliance-001..006), the file
/// the sample skill answers Discover with.
pub(super) const SEED: &str = include_str!("../../../../scenarios/skills/seed-discover-response.json");

#[test]
fn the_seed_example_is_accepted_without_errors() {
    let doc: Value = serde_json::from_str(SEED).unwrap();
    let d = discovery(&doc, Mode::Default);
    assert_eq!(
        d.accepted,
        [
            "appliance-001",
            "appliance-002",
            "appliance-003",
            "appliance-004",
            "appliance-005",
            "appliance-006"
        ]
    );
    assert!(d.dropped.is_empty());
    assert!(
        d.findings.iter().all(|f| f.severity == Severity::Warning),
        "{:#?}",
        d.findings
    );
    // The lock and the scene omit the Alexa interface (rule 15).
    let warned: Vec<_> = d.findings.iter().map(|f| (f.rule, f.pointer.as_str())).collect();
    assert_eq!(
        warned,
        [
            ("15 Alexa interface", "/event/payload/endpoints/2/capabilities"),
            ("15 Alexa interface", "/event/payload/endpoints/3/capabilities")
        ]
    );
    let strict = discovery(&doc, Mode::Strict);
    assert_eq!(strict.dropped.len(), 2, "strict drops the two without Alexa");
}

/// Judge `valid()` with a key set on its endpoint.
fn with_key(key: &str, value: Value, mode: Mode) -> Discovery {
    let mut a = valid();
    a["event"]["payload"]["endpoints"][0][key] = value;
    discovery(&a, mode)
}

const POWER: &str = "/event/payload/endpoints/0/capabilities/1";

#[test]
fn rule_13_capability_type_and_interface() {
    let d = with(&format!("{POWER}/type"), json!("Interface"), Mode::Default);
    only(&d, "13 capability type", Severity::Error, &format!("{POWER}/type"));
    assert!(d.accepted.is_empty());
    let at = format!("{POWER}/interface");
    let d = with(&at, json!("Alexa.Teleporter"), Mode::Default);
    only(&d, "13 interface", Severity::Warning, &at);
    assert_eq!(d.accepted, ["lamp-1"]);
    let d = with(&at, json!("Alexa.Teleporter"), Mode::Strict);
    only(&d, "13 interface", Severity::Error, &at);
}

#[test]
fn rule_13_flags_the_seed_video_examples_trailing_space() {
    let playback = json!({"interface": "Alexa.PlaybackController ", "type": "AlexaInterface", "version": "3",
                          "supportedOperations": ["Play", "Pause", "Stop"]});
    let d = with(POWER, playback, Mode::Default);
    let at = format!("{POWER}/interface");
    only(&d, "13 interface", Severity::Warning, &at);
    assert!(
        d.findings.iter().any(|f| f.message.contains("trailing spaces")),
        "{:#?}",
        d.findings
    );
}

#[test]
fn rule_14_version() {
    let at = format!("{POWER}/version");
    let d = with(&at, json!(3), Mode::Default);
    only(&d, "14 version", Severity::Error, &at);
    let d = with(&at, json!("9"), Mode::Default);
    only(&d, "14 version", Severity::Warning, &at);
    let d = with(&at, json!("9"), Mode::Strict);
    only(&d, "14 version", Severity::Error, &at);
    let health = json!({"type": "AlexaInterface", "interface": "Alexa.EndpointHealth", "version": "3.1",
                        "properties": {"supported": [{"name": "connectivity"}], "retrievable": true}});
    let d = with(POWER, health.clone(), Mode::Default);
    assert!(
        d.findings.is_empty(),
        "EndpointHealth 3.1 is documented: {:#?}",
        d.findings
    );
    let d = with(POWER, health, Mode::Strict);
    only(&d, "14 version", Severity::Error, &at);
}

#[test]
fn rule_16_supported_property_names() {
    let at = format!("{POWER}/properties/supported/0/name");
    let d = with(&at, json!("brightness"), Mode::Default);
    only(&d, "16 supported properties", Severity::Error, &at);
    assert!(d.accepted.is_empty());
    let d = with(
        &format!("{POWER}/properties/supported/0"),
        json!("powerState"),
        Mode::Default,
    );
    only(
        &d,
        "16 supported properties",
        Severity::Error,
        &format!("{POWER}/properties/supported/0"),
    );
}

#[test]
fn rule_17_flags_are_booleans() {
    for flag in ["proactivelyReported", "retrievable"] {
        let at = format!("{POWER}/properties/{flag}");
        let d = with(&at, json!("true"), Mode::Default);
        only(&d, "17 proactivelyReported, retrievable", Severity::Error, &at);
    }
}

#[test]
fn rule_18_additional_attributes() {
    let good = json!({"manufacturer": "Example", "model": "L1", "serialNumber": "1", "firmwareVersion": "2",
                      "softwareVersion": "3", "customIdentifier": "c"});
    assert!(with_key("additionalAttributes", good, Mode::Strict).findings.is_empty());
    let at = "/event/payload/endpoints/0/additionalAttributes";
    let d = with_key("additionalAttributes", json!({"colour": "red"}), Mode::Default);
    only(
        &d,
        "18 additionalAttributes",
        Severity::Warning,
        &format!("{at}/colour"),
    );
    let d = with_key("additionalAttributes", json!({"model": "m".repeat(257)}), Mode::Default);
    only(&d, "18 additionalAttributes", Severity::Warning, &format!("{at}/model"));
    assert_eq!(d.accepted, ["lamp-1"]);
    let d = with_key("additionalAttributes", json!({"model": 7}), Mode::Strict);
    only(&d, "18 additionalAttributes", Severity::Error, &format!("{at}/model"));
}

#[test]
fn rule_19_connections() {
    let good = json!([{"type": "ZIGBEE", "macAddress": "00:11:22:AA:BB:33:44:55"}, {"type": "ZWAVE", "homeId": "1", "nodeId": "2"}]);
    assert!(with_key("connections", good, Mode::Strict).findings.is_empty());
    let at = "/event/payload/endpoints/0/connections/0";
    let d = with_key("connections", json!([{"type": "BLUETOOTH"}]), Mode::Default);
    only(&d, "19 connections", Severity::Warning, &format!("{at}/type"));
    let d = with_key("connections", json!([{"type": "TCP_IP", "ip": "1"}]), Mode::Strict);
    only(&d, "19 connections", Severity::Error, &format!("{at}/ip"));
}
