//! The System interface's rules, applied to every event a device sends.
//!
//! Facts from the System 1.0/1.1 page (seed `avs-system-interface.txt`) and
//! reference avs.md §11: SynchronizeState carries the full context and is
//! stored as the device's state; SoftwareInfo's firmwareVersion must be a
//! positive signed 32-bit integer in decimal (else HTTP 400);
//! UserInactivityReport carries a non-negative `inactiveTimeInSeconds`;
//! ExceptionEncountered is recorded.

use crate::avs::connection::Connection;
use crate::avs::devices::{Device, ExceptionRecord};
use crate::avs::event::EventMessage;
use crate::avs::exception::AvsError;
use crate::config::AuthMode;
use crate::state::State;
use serde_json::Value;

/// What the simulator answers an event with.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// 204, once the request body has ended.
    NoContent,
    /// 200 `multipart/related`, written at once (before the body ends).
    Directives(Vec<Value>),
}

/// Whether `v` is a valid firmwareVersion: decimal digits only, value
/// 1..=2147483647. Leading zeros are accepted unless `strict`.
pub fn firmware_version_valid(v: &str, strict: bool) -> bool {
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) || (strict && v.starts_with('0')) {
        return false;
    }
    matches!(v.parse::<i32>(), Ok(n) if n > 0)
        || (!strict && v.trim_start_matches('0').parse::<i32>().is_ok_and(|n| n > 0))
}

/// Apply the rules to one event; the journal id `evidence` is the event's request entry.
pub fn handle(
    state: &State,
    device: &Device,
    conn: &Connection,
    ev: &EventMessage,
    evidence: u64,
) -> Result<Reply, AvsError> {
    let strict = state.config.auth == AuthMode::Strict;
    {
        let mut s = device.lock();
        let downchannel_open = s.downchannel_on(conn.id);
        let name = ev.qualified();
        s.conformance.event(
            &crate::avs::conformance::EventFacts {
                qualified_name: &name,
                message_id: &ev.message_id,
                downchannel_open,
            },
            evidence,
        );
        s.last_event = Some((name, crate::clock::wall_rfc3339()));
    }
    match (ev.namespace.as_str(), ev.name.as_str()) {
        ("System", "SynchronizeState") => synchronize_state(device, ev),
        ("System", "SoftwareInfo") => software_info(device, ev, strict, evidence),
        ("System", "UserInactivityReport") => user_inactivity(device, ev),
        ("System", "ExceptionEncountered") => exception_encountered(device, ev, evidence),
        ("SpeechRecognizer", "Recognize") => Ok(recognize(ev)),
        _ => Ok(Reply::NoContent),
    }
}

fn synchronize_state(device: &Device, ev: &EventMessage) -> Result<Reply, AvsError> {
    device.lock().last_state = Some(ev.text.clone());
    Ok(Reply::NoContent)
}

fn software_info(device: &Device, ev: &EventMessage, strict: bool, evidence: u64) -> Result<Reply, AvsError> {
    let version = match ev.payload().get("firmwareVersion") {
        Some(Value::String(v)) => v.clone(),
        Some(other) => {
            return Err(AvsError::InvalidRequest(format!(
                "payload.firmwareVersion must be a string, got {other}"
            )));
        }
        None => {
            return Err(AvsError::InvalidRequest("payload.firmwareVersion is missing".into()));
        }
    };
    let valid = firmware_version_valid(&version, strict);
    let mut s = device.lock();
    let system_1_1 = s.declares_system_1_1();
    s.conformance.software_info(&version, valid, system_1_1, evidence);
    if !valid {
        return Err(AvsError::InvalidRequest(format!(
            "payload.firmwareVersion {version:?} is not a positive signed 32-bit integer in decimal (1 to 2147483647)"
        )));
    }
    s.firmware = Some(version);
    Ok(Reply::NoContent)
}

fn user_inactivity(device: &Device, ev: &EventMessage) -> Result<Reply, AvsError> {
    let seconds = ev
        .payload()
        .get("inactiveTimeInSeconds")
        .and_then(Value::as_u64)
        .ok_or_else(|| {
            AvsError::InvalidRequest("payload.inactiveTimeInSeconds must be a non-negative integer".into())
        })?;
    device.lock().inactive_seconds = Some(seconds);
    Ok(Reply::NoContent)
}

fn exception_encountered(device: &Device, ev: &EventMessage, evidence: u64) -> Result<Reply, AvsError> {
    let payload = ev.payload();
    let unparsed = payload
        .get("unparsedDirective")
        .and_then(Value::as_str)
        .ok_or_else(|| AvsError::InvalidRequest("payload.unparsedDirective must be a string".into()))?;
    let error_type = payload
        .pointer("/error/type")
        .and_then(Value::as_str)
        .ok_or_else(|| AvsError::InvalidRequest("payload.error.type must be a string".into()))?;
    let message = payload
        .pointer("/error/message")
        .and_then(Value::as_str)
        .map(str::to_string);
    let mut s = device.lock();
    s.conformance.exception(unparsed, error_type, evidence);
    s.record_exception(ExceptionRecord {
        unparsed_directive: unparsed.to_string(),
        error_type: error_type.to_string(),
        message,
        journal_id: evidence,
    });
    Ok(Reply::NoContent)
}

/// A Recognize is answered while its audio still streams: StopCapture with
/// the event's dialogRequestId, as AVS does (alexa-avs-sample-app#1060).
fn recognize(ev: &EventMessage) -> Reply {
    let stop = crate::avs::directive::build(
        "SpeechRecognizer",
        "StopCapture",
        serde_json::json!({}),
        ev.dialog_request_id.as_deref(),
    );
    Reply::Directives(vec![stop])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn firmware_versions_of_the_seed_and_issue() {
        for valid in ["123", "8701", "20170207", "1", "2147483647"] {
            assert!(firmware_version_valid(valid, false), "{valid}");
            assert!(firmware_version_valid(valid, true), "{valid}");
        }
        for invalid in [
            "50.3",
            "avs-123.4x",
            "ask.201-(1.23.4-test)",
            "0",
            "",
            "-5",
            "2147483648",
            " 12",
            "+12",
            "12 ",
            "00",
        ] {
            assert!(!firmware_version_valid(invalid, false), "{invalid}");
            assert!(!firmware_version_valid(invalid, true), "{invalid}");
        }
        assert!(firmware_version_valid("012", false));
        assert!(!firmware_version_valid("012", true));
    }
}
