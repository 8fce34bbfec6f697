//! What an accepted gateway event changes in what Alexa knows (the
//! registry) and in the customer's link (the grants).

use super::GatewayError;
use crate::smarthome::judge::EventKind;
use crate::state::State;

/// ErrorResponse types that make Alexa discard the customer's tokens, in
/// effect unlinking the account (reference smarthome.md §2).
pub const UNLINKING: [&str; 2] = ["EXPIRED_AUTHORIZATION_CREDENTIAL", "INVALID_AUTHORIZATION_CREDENTIAL"];

/// Apply an event that passed every rule; the description of what changed
/// (the journal's response entry carries it).
pub fn apply(state: &State, user: &str, kind: &EventKind) -> Result<String, GatewayError> {
    let registry = &state.smarthome.registry;
    match kind {
        EventKind::AddOrUpdateReport { endpoints, dropped } => {
            let n = endpoints.len();
            registry
                .add_or_update(user, endpoints.clone())
                .map_err(|e| GatewayError::TooLarge(e.to_string()))?;
            let mut said = format!("accepted: {n} endpoint(s) added or updated");
            if !dropped.is_empty() {
                said.push_str(&format!(", {} dropped (see findings)", dropped.len()));
            }
            Ok(said)
        }
        EventKind::DeleteReport { ids } => {
            let unknown = registry.delete(user, ids);
            let mut said = format!(
                "accepted: {} endpoint(s) deleted",
                ids.len().saturating_sub(unknown.len())
            );
            if !unknown.is_empty() {
                said.push_str(&format!("; unknown, nothing to delete: {}", unknown.join(", ")));
            }
            Ok(said)
        }
        EventKind::ChangeReport { endpoint, properties } => {
            let known = registry.report(user, endpoint, properties);
            Ok(if known {
                format!(
                    "accepted: {} property value(s) of {endpoint:?} recorded",
                    properties.len()
                )
            } else {
                format!("accepted, but Alexa does not know endpoint {endpoint:?}: nothing recorded")
            })
        }
        EventKind::Response {
            endpoint,
            correlation,
            properties,
        } => {
            let pending = registry.take_pending(user, correlation);
            let endpoint = endpoint
                .clone()
                .or_else(|| pending.as_ref().and_then(|p| p.endpoint.clone()));
            let recorded = endpoint
                .as_deref()
                .is_some_and(|e| registry.report(user, e, properties));
            Ok(format!(
                "accepted: {}; {}",
                match &pending {
                    Some(p) => format!("answers the deferred {}.{}", p.namespace, p.name),
                    None => "no deferred directive waited for this correlationToken".into(),
                },
                if recorded {
                    format!("{} property value(s) recorded", properties.len())
                } else {
                    "no property recorded".into()
                }
            ))
        }
        EventKind::ErrorResponse {
            correlation,
            error_type,
            ..
        } => {
            let pending = registry.take_pending(user, correlation);
            let mut said = format!(
                "accepted: ErrorResponse {error_type}{}",
                match &pending {
                    Some(p) => format!(" answers the deferred {}.{}", p.namespace, p.name),
                    None => String::new(),
                }
            );
            if UNLINKING.contains(&error_type.as_str()) {
                let gone = state.smarthome.grants.unlink(user);
                said.push_str(&format!(
                    "; Alexa discards the customer's tokens (account unlinked, {gone} token(s) forgotten)"
                ));
            }
            Ok(said)
        }
        EventKind::DeferredResponse { correlation } => Ok(format!(
            "accepted: DeferredResponse for {correlation:?} (the Response follows)"
        )),
        EventKind::Other { namespace, name, .. } => Ok(format!("accepted: {namespace}.{name}")),
    }
}
