//! The directives Alexa sends a smart home skill, built with every header
//! field filled: `messageId`, `payloadVersion` "3", a `correlationToken`
//! where the answer must echo one, and the customer's scope where Alexa
//! puts it (reference smarthome.md §1: in `payload.scope` for Discover, in
//! `directive.endpoint.scope` for control directives and ReportState).
//!
//! Payload shapes follow the interfaces' documentation pages
//! (developer.amazon.com/docs/alexa/device-apis/alexa-powercontroller.html,
//! -brightnesscontroller, -thermostatcontroller, -lockcontroller,
//! -scenecontroller); none of the official sample messages is copied.

use serde_json::{Value, json};

/// The largest setpoint magnitude a SetTargetTemperature may carry.
pub const MAX_SETPOINT: f64 = 1000.0;

/// The customer's credentials as Alexa sends them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    /// The account-linking token.
    pub token: String,
    /// `BearerTokenWithPartition`: the physical location (partition) and the
    /// user the request applies to (Alexa for Business, Smart Properties).
    pub partition: Option<(String, String)>,
}

impl Scope {
    /// `{"type": "BearerToken", "token"}` or the partitioned form.
    pub fn to_json(&self) -> Value {
        match &self.partition {
            None => json!({"type": "BearerToken", "token": self.token}),
            Some((partition, user)) => json!({
                "type": "BearerTokenWithPartition",
                "token": self.token,
                "partition": partition,
                "userId": user,
            }),
        }
    }
}

/// A control directive on one endpoint.
#[derive(Debug, Clone, PartialEq)]
pub enum Control {
    TurnOn,
    TurnOff,
    /// Percent, 0..=100.
    SetBrightness(u8),
    /// A target setpoint in `scale` (`CELSIUS`, `FAHRENHEIT`, `KELVIN`).
    SetTargetTemperature {
        value: f64,
        scale: String,
    },
    Lock,
    Unlock,
    Activate,
    Deactivate,
    /// Any directive: namespace, name and payload as given.
    Raw {
        namespace: String,
        name: String,
        payload: Value,
    },
}

impl Control {
    /// Namespace, name and payload; an error names a value out of range.
    fn parts(&self) -> Result<(String, String, Value), String> {
        let p = |ns: &str, name: &str, payload: Value| Ok((ns.to_string(), name.to_string(), payload));
        match self {
            Control::TurnOn => p("Alexa.PowerController", "TurnOn", json!({})),
            Control::TurnOff => p("Alexa.PowerController", "TurnOff", json!({})),
            Control::SetBrightness(b) if *b <= 100 => {
                p("Alexa.BrightnessController", "SetBrightness", json!({"brightness": b}))
            }
            Control::SetBrightness(b) => Err(format!("brightness must be in 0..=100, got {b}")),
            Control::SetTargetTemperature { value, scale } => {
                // Wider than any thermostat in any scale, narrow enough that no
                // skill's arithmetic on it can overflow.
                if !value.is_finite() || value.abs() > MAX_SETPOINT {
                    return Err(format!(
                        "targetSetpoint.value must be a number within ±{MAX_SETPOINT}, got {value}"
                    ));
                }
                if !["CELSIUS", "FAHRENHEIT", "KELVIN"].contains(&scale.as_str()) {
                    return Err(format!(
                        "targetSetpoint.scale must be CELSIUS, FAHRENHEIT or KELVIN, got {scale:?}"
                    ));
                }
                p(
                    "Alexa.ThermostatController",
                    "SetTargetTemperature",
                    json!({"targetSetpoint": {"value": value, "scale": scale}}),
                )
            }
            Control::Lock => p("Alexa.LockController", "Lock", json!({})),
            Control::Unlock => p("Alexa.LockController", "Unlock", json!({})),
            Control::Activate => p("Alexa.SceneController", "Activate", json!({})),
            Control::Deactivate => p("Alexa.SceneController", "Deactivate", json!({})),
            Control::Raw {
                namespace,
                name,
                payload,
            } => Ok((namespace.clone(), name.clone(), payload.clone())),
        }
    }
}

fn header(namespace: &str, name: &str, correlation: Option<&str>) -> Value {
    let mut h = json!({
        "namespace": namespace,
        "name": name,
        "payloadVersion": "3",
        "messageId": uuid::Uuid::new_v4().to_string(),
    });
    if let Some(token) = correlation {
        h["correlationToken"] = json!(token);
    }
    h
}

/// A fresh correlation token (opaque to the skill; echoed in its answer).
pub fn correlation_token() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// `Alexa.Discovery.Discover`, the scope in the payload, no correlation token.
pub fn discover(scope: &Scope) -> Value {
    json!({"directive": {
        "header": header("Alexa.Discovery", "Discover", None),
        "payload": {"scope": scope.to_json()},
    }})
}

/// `Alexa.Authorization.AcceptGrant`: synchronous, so no correlation token.
pub fn accept_grant(code: &str, grantee_token: &str) -> Value {
    json!({"directive": {
        "header": header("Alexa.Authorization", "AcceptGrant", None),
        "payload": {
            "grant": {"type": "OAuth2.AuthorizationCode", "code": code},
            "grantee": {"type": "BearerToken", "token": grantee_token},
        },
    }})
}

/// A directive to one endpoint with the scope in `directive.endpoint`.
fn to_endpoint(namespace: &str, name: &str, endpoint: &str, scope: &Scope, correlation: &str, payload: Value) -> Value {
    json!({"directive": {
        "header": header(namespace, name, Some(correlation)),
        "endpoint": {"scope": scope.to_json(), "endpointId": endpoint, "cookie": {}},
        "payload": payload,
    }})
}

/// `Alexa.ReportState` for one endpoint.
pub fn report_state(endpoint: &str, scope: &Scope, correlation: &str) -> Value {
    to_endpoint("Alexa", "ReportState", endpoint, scope, correlation, json!({}))
}

/// A control directive for one endpoint.
pub fn control(control: &Control, endpoint: &str, scope: &Scope, correlation: &str) -> Result<Value, String> {
    let (namespace, name, payload) = control.parts()?;
    Ok(to_endpoint(&namespace, &name, endpoint, scope, correlation, payload))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope() -> Scope {
        Scope {
            token: "user-token-u1".into(),
            partition: None,
        }
    }

    fn header_is_full(d: &Value, correlated: bool) {
        let h = &d["directive"]["header"];
        assert_eq!(h["payloadVersion"], "3");
        assert!(uuid::Uuid::parse_str(h["messageId"].as_str().unwrap()).is_ok());
        assert_eq!(h.get("correlationToken").is_some(), correlated, "{d}");
    }

    #[test]
    fn discover_puts_the_scope_in_the_payload_in_both_forms() {
        let d = discover(&scope());
        header_is_full(&d, false);
        assert_eq!(d["directive"]["header"]["namespace"], "Alexa.Discovery");
        assert_eq!(
            d["directive"]["payload"]["scope"],
            json!({"type": "BearerToken", "token": "user-token-u1"})
        );
        assert!(d["directive"].get("endpoint").is_none());
        let partitioned = Scope {
            partition: Some(("Room101".into(), "amzn1.account.X".into())),
            ..scope()
        };
        let d = discover(&partitioned);
        assert_eq!(d["directive"]["payload"]["scope"]["type"], "BearerTokenWithPartition");
        assert_eq!(d["directive"]["payload"]["scope"]["partition"], "Room101");
        assert_eq!(d["directive"]["payload"]["scope"]["userId"], "amzn1.account.X");
    }

    #[test]
    fn accept_grant_carries_the_code_and_the_grantee() {
        let d = accept_grant("code-1", "user-token-u1");
        header_is_full(&d, false);
        assert_eq!(d["directive"]["payload"]["grant"]["type"], "OAuth2.AuthorizationCode");
        assert_eq!(d["directive"]["payload"]["grant"]["code"], "code-1");
        assert_eq!(d["directive"]["payload"]["grantee"]["token"], "user-token-u1");
    }

    #[test]
    fn control_directives_name_the_endpoint_and_echo_nothing_twice() {
        let cases = [
            (Control::TurnOn, "Alexa.PowerController", "TurnOn", json!({})),
            (Control::TurnOff, "Alexa.PowerController", "TurnOff", json!({})),
            (
                Control::SetBrightness(42),
                "Alexa.BrightnessController",
                "SetBrightness",
                json!({"brightness": 42}),
            ),
            (
                Control::SetTargetTemperature {
                    value: 21.5,
                    scale: "CELSIUS".into(),
                },
                "Alexa.ThermostatController",
                "SetTargetTemperature",
                json!({"targetSetpoint": {"value": 21.5, "scale": "CELSIUS"}}),
            ),
            (Control::Lock, "Alexa.LockController", "Lock", json!({})),
            (Control::Unlock, "Alexa.LockController", "Unlock", json!({})),
            (Control::Activate, "Alexa.SceneController", "Activate", json!({})),
            (Control::Deactivate, "Alexa.SceneController", "Deactivate", json!({})),
            (
                Control::Raw {
                    namespace: "Alexa.ModeController".into(),
                    name: "SetMode".into(),
                    payload: json!({"mode": "Wash.Cold"}),
                },
                "Alexa.ModeController",
                "SetMode",
                json!({"mode": "Wash.Cold"}),
            ),
        ];
        for (c, namespace, name, payload) in cases {
            let d = control(&c, "lamp-1", &scope(), "ct-1").unwrap();
            header_is_full(&d, true);
            let dir = &d["directive"];
            assert_eq!(dir["header"]["namespace"], namespace);
            assert_eq!(dir["header"]["name"], name);
            assert_eq!(dir["header"]["correlationToken"], "ct-1");
            assert_eq!(dir["endpoint"]["endpointId"], "lamp-1");
            assert_eq!(dir["endpoint"]["scope"]["token"], "user-token-u1");
            assert_eq!(dir["payload"], payload);
        }
        let r = report_state("lamp-1", &scope(), "ct-2");
        header_is_full(&r, true);
        assert_eq!(r["directive"]["header"]["name"], "ReportState");
    }

    #[test]
    fn values_out_of_range_are_refused_with_the_field_named() {
        let e = control(&Control::SetBrightness(101), "x", &scope(), "c").unwrap_err();
        assert!(e.contains("brightness must be in 0..=100"), "{e}");
        let e = control(
            &Control::SetTargetTemperature {
                value: f64::NAN,
                scale: "CELSIUS".into(),
            },
            "x",
            &scope(),
            "c",
        )
        .unwrap_err();
        assert!(e.contains("targetSetpoint.value"), "{e}");
        let huge = Control::SetTargetTemperature {
            value: 1e300,
            scale: "KELVIN".into(),
        };
        let e = control(&huge, "x", &scope(), "c").unwrap_err();
        assert!(e.contains("within ±1000"), "{e}");
        let e = control(
            &Control::SetTargetTemperature {
                value: 20.0,
                scale: "RANKINE".into(),
            },
            "x",
            &scope(),
            "c",
        )
        .unwrap_err();
        assert!(e.contains("targetSetpoint.scale"), "{e}");
    }

    #[test]
    fn every_directive_gets_its_own_message_id() {
        let a = discover(&scope());
        let b = discover(&scope());
        assert_ne!(
            a["directive"]["header"]["messageId"],
            b["directive"]["header"]["messageId"]
        );
        assert_ne!(correlation_token(), correlation_token());
    }
}
