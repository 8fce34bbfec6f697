//! Reported property objects, in `context.properties` of an answer or an
//! event and in a ChangeReport's `payload.change.properties` (reference
//! smarthome.md §3 and §4 rules 26–28): the common fields, `timeOfSample`
//! and the value each known property takes.

use super::Report;
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Judge the property list at `at` (absent is fine unless `required`);
/// returns the well-formed property objects, for the registry.
pub(super) fn list(r: &mut Report, v: Option<&Value>, at: &str, required: bool) -> Vec<Value> {
    let rule = "26 property";
    let Some(v) = v else {
        if required {
            r.error(at.into(), rule, format!("{} is required", name_of(at)));
        }
        return Vec::new();
    };
    let Some(items) = v.as_array() else {
        r.error(at.into(), rule, format!("{} must be an array", name_of(at)));
        return Vec::new();
    };
    if required && items.is_empty() {
        r.error(at.into(), rule, format!("{} must not be empty", name_of(at)));
    }
    let mut good = Vec::new();
    for (i, p) in items.iter().enumerate() {
        if property(r, p, &format!("{at}/{i}")) {
            good.push(p.clone());
        }
    }
    good
}

/// `context/properties` from its pointer, for messages.
fn name_of(at: &str) -> String {
    at.trim_start_matches('/').replace('/', ".")
}

/// Rules 26–28 for one property object; whether it is well formed.
pub(super) fn property(r: &mut Report, p: &Value, at: &str) -> bool {
    let before = r.findings.len();
    let rule = "26 property";
    if !p.is_object() {
        r.error(at.into(), rule, "a property is an object".into());
        return false;
    }
    for key in ["namespace", "name"] {
        if p[key].as_str().is_none_or(|s| s.is_empty()) {
            r.error(
                format!("{at}/{key}"),
                rule,
                format!("property {key} is required, a string"),
            );
        }
    }
    let ns = p["namespace"].as_str().unwrap_or_default();
    let instanced = [
        "Alexa.ModeController",
        "Alexa.RangeController",
        "Alexa.ToggleController",
    ];
    if instanced.contains(&ns) && !p["instance"].is_string() {
        r.error(
            format!("{at}/instance"),
            rule,
            format!("a {ns} property names its instance"),
        );
    }
    match p.get("value") {
        None => r.error(format!("{at}/value"), rule, "property value is required".into()),
        Some(v) => value(r, ns, p["name"].as_str().unwrap_or_default(), v, &format!("{at}/value")),
    }
    time_of_sample(r, &p["timeOfSample"], &format!("{at}/timeOfSample"));
    if !p["uncertaintyInMilliseconds"].as_f64().is_some_and(|u| u >= 0.0) {
        r.error(
            format!("{at}/uncertaintyInMilliseconds"),
            rule,
            format!(
                "uncertaintyInMilliseconds must be a number >= 0, got {}",
                p["uncertaintyInMilliseconds"]
            ),
        );
    }
    !r.findings[before..]
        .iter()
        .any(|f| f.severity == super::Severity::Error)
}

/// Rule 27: an RFC 3339 UTC time. The documented form
/// `YYYY-MM-DDThh:mm:ss[.f{1,3}]Z` is fine; other UTC forms (`+00:00`,
/// more fraction digits) warn, since only the schema refused them; any
/// other offset or a non-date is an error.
pub(super) fn time_of_sample(r: &mut Report, v: &Value, at: &str) {
    let rule = "27 timeOfSample";
    let Some(s) = v.as_str() else {
        return r.error(
            at.into(),
            rule,
            format!("timeOfSample is required, an RFC 3339 UTC time, got {v}"),
        );
    };
    match OffsetDateTime::parse(s, &Rfc3339) {
        Err(e) => r.error(
            at.into(),
            rule,
            format!("timeOfSample {s:?} is not an RFC 3339 time: {e}"),
        ),
        Ok(t) if !t.offset().is_utc() => r.error(at.into(), rule, format!("timeOfSample {s:?} must be in UTC (Z)")),
        Ok(_) if !documented_form(s) => r.warn(
            at.into(),
            rule,
            format!("timeOfSample {s:?} should read YYYY-MM-DDThh:mm:ss with 0-3 fraction digits and Z"),
        ),
        Ok(_) => {}
    }
}

/// `YYYY-MM-DDThh:mm:ss`, an optional `.` and 1–3 digits, then `Z`.
fn documented_form(s: &str) -> bool {
    let b = s.as_bytes();
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    let fixed = b.len() >= 20
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && b[10] == b'T'
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19)
        && b[b.len() - 1] == b'Z';
    fixed
        && match b.len() {
            20 => true,
            22..=24 => b[19] == b'.' && digits(20..b.len() - 1),
            _ => false,
        }
}

/// Rule 28: the value of a property this simulator knows, by interface
/// and name (the interfaces' pages); others are not checked.
fn value(r: &mut Report, ns: &str, name: &str, v: &Value, at: &str) {
    match (ns, name) {
        ("Alexa.PowerController", "powerState") | ("Alexa.ToggleController", "toggleState") => {
            one_of(r, v, at, &["ON", "OFF"])
        }
        ("Alexa.BrightnessController", "brightness")
        | ("Alexa.PercentageController", "percentage")
        | ("Alexa.PowerLevelController", "powerLevel")
        | ("Alexa.Speaker", "volume") => integer(r, v, at, 0, 100),
        ("Alexa.ColorTemperatureController", "colorTemperatureInKelvin") => integer(r, v, at, 1000, 10000),
        ("Alexa.ColorController", "color") => color(r, v, at),
        ("Alexa.LockController", "lockState") => one_of(r, v, at, &["LOCKED", "UNLOCKED", "JAMMED"]),
        ("Alexa.ThermostatController", "targetSetpoint" | "lowerSetpoint" | "upperSetpoint")
        | ("Alexa.TemperatureSensor", "temperature") => temperature(r, v, at),
        ("Alexa.ThermostatController", "thermostatMode") => {
            one_of(r, v, at, &["AUTO", "COOL", "HEAT", "ECO", "OFF", "CUSTOM"])
        }
        ("Alexa.EndpointHealth", "connectivity") => {
            object_of(r, v, at, "value", |r, v, at| one_of(r, v, at, &["OK", "UNREACHABLE"]))
        }
        ("Alexa.ContactSensor" | "Alexa.MotionSensor", "detectionState") => {
            one_of(r, v, at, &["DETECTED", "NOT_DETECTED"])
        }
        ("Alexa.Speaker", "muted") if !v.is_boolean() => {
            r.error(at.into(), "28 value", format!("muted is a boolean, got {v}"))
        }
        _ => {}
    }
}

fn one_of(r: &mut Report, v: &Value, at: &str, allowed: &[&str]) {
    if !v.as_str().is_some_and(|s| allowed.contains(&s)) {
        r.error(
            at.into(),
            "28 value",
            format!("must be one of {}, got {v}", allowed.join(", ")),
        );
    }
}

fn integer(r: &mut Report, v: &Value, at: &str, min: i64, max: i64) {
    if !v.as_i64().is_some_and(|n| (min..=max).contains(&n)) {
        r.error(
            at.into(),
            "28 value",
            format!("must be an integer in {min}..={max}, got {v}"),
        );
    }
}

fn number(r: &mut Report, v: &Value, at: &str, min: f64, max: f64) {
    if !v.as_f64().is_some_and(|n| (min..=max).contains(&n)) {
        r.error(
            at.into(),
            "28 value",
            format!("must be a number in {min}..={max}, got {v}"),
        );
    }
}

/// `{key: …}` with `key` judged by `inner`.
fn object_of(r: &mut Report, v: &Value, at: &str, key: &str, inner: impl Fn(&mut Report, &Value, &str)) {
    if !v.is_object() {
        return r.error(at.into(), "28 value", format!("must be an object with {key}, got {v}"));
    }
    inner(r, &v[key], &format!("{at}/{key}"));
}

/// ColorController: hue 0–360, saturation and brightness 0–1.
fn color(r: &mut Report, v: &Value, at: &str) {
    if !v.is_object() {
        return r.error(
            at.into(),
            "28 value",
            format!("color is {{hue, saturation, brightness}}, got {v}"),
        );
    }
    number(r, &v["hue"], &format!("{at}/hue"), 0.0, 360.0);
    number(r, &v["saturation"], &format!("{at}/saturation"), 0.0, 1.0);
    number(r, &v["brightness"], &format!("{at}/brightness"), 0.0, 1.0);
}

/// A temperature: `{value: number, scale: CELSIUS|FAHRENHEIT|KELVIN}`.
fn temperature(r: &mut Report, v: &Value, at: &str) {
    if !v.is_object() {
        return r.error(
            at.into(),
            "28 value",
            format!("a temperature is {{value, scale}}, got {v}"),
        );
    }
    number(r, &v["value"], &format!("{at}/value"), f64::MIN, f64::MAX);
    one_of(
        r,
        &v["scale"],
        &format!("{at}/scale"),
        &["CELSIUS", "FAHRENHEIT", "KELVIN"],
    );
}

/// The capability of the endpoint declaration `decl` that lists the
/// property `p` (same interface, instance and name).
pub(super) fn declaring<'a>(decl: &'a Value, p: &Value) -> Option<&'a Value> {
    decl["capabilities"].as_array()?.iter().find(|c| {
        c["interface"] == p["namespace"]
            && c["instance"] == p["instance"]
            && c["properties"]["supported"]
                .as_array()
                .is_some_and(|s| s.iter().any(|n| n["name"] == p["name"]))
    })
}

/// Warn when the endpoint never declared a reported property (an answer's
/// or event's context; the registry keeps it anyway).
pub(super) fn declared(r: &mut Report, decl: &Value, props: Option<&Value>, at: &str) {
    for (i, p) in props.and_then(Value::as_array).into_iter().flatten().enumerate() {
        if p.is_object() && declaring(decl, p).is_none() {
            r.warn(
                format!("{at}/{i}"),
                "26 property declared",
                format!(
                    "{}.{} is not declared by the endpoint's capabilities",
                    p["namespace"].as_str().unwrap_or("?"),
                    p["name"].as_str().unwrap_or("?")
                ),
            );
        }
    }
}
