//! What Alexa knows of each user's home: the endpoints discovery and
//! proactive reports declared, each with its last reported property state,
//! and the directives still waiting for a deferred answer.
//!
//! Set by a Discover.Response (replacing the user's endpoints, as a
//! rediscovery does), merged by AddOrUpdateReport, trimmed by DeleteReport,
//! and updated by the context properties of ChangeReports and answers.

use crate::clock::{self, Instant};
use parking_lot::Mutex;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};

/// Most endpoints kept per user: a discovery holds 300, and reports add to
/// them; beyond this an AddOrUpdateReport is refused.
pub const MAX_ENDPOINTS: usize = 5_000;

/// Most property states kept per endpoint (an endpoint declares a few
/// dozen at most); reports of further new names are not kept.
pub const MAX_PROPERTIES: usize = 256;

/// Most directives awaiting a deferred answer per user; the oldest is
/// forgotten (and reported) beyond it.
pub const MAX_PENDING: usize = 1_024;

/// One endpoint as Alexa knows it.
#[derive(Debug, Clone)]
pub struct Known {
    /// The endpoint object as the skill last declared it.
    pub declaration: Value,
    /// Last reported property objects, keyed `namespace/instance/name`.
    pub state: BTreeMap<String, Value>,
    /// What last set the declaration: `discovery` or `AddOrUpdateReport`.
    pub source: &'static str,
}

/// A directive sent to the skill whose answer was a DeferredResponse.
#[derive(Debug, Clone, PartialEq)]
pub struct Pending {
    pub endpoint: Option<String>,
    pub namespace: String,
    pub name: String,
    pub sent: Instant,
}

#[derive(Default)]
struct Home {
    endpoints: BTreeMap<String, Known>,
    pending: HashMap<String, (u64, Pending)>,
    seq: u64,
}

/// Every user's home.
#[derive(Default)]
pub struct Registry {
    homes: Mutex<HashMap<String, Home>>,
}

/// Why a merge was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    #[error("user {user:?} would have {count} endpoints; at most {MAX_ENDPOINTS} are kept")]
    Full { user: String, count: usize },
}

/// The key a property's state is kept under.
pub fn property_key(p: &Value) -> String {
    format!(
        "{}/{}/{}",
        p["namespace"].as_str().unwrap_or(""),
        p["instance"].as_str().unwrap_or(""),
        p["name"].as_str().unwrap_or("")
    )
}

impl Registry {
    /// Replace `user`'s endpoints with a discovery's accepted ones, keeping
    /// the state of endpoints that stay (their ids are stable).
    pub fn discovered(&self, user: &str, endpoints: Vec<Value>) {
        let mut homes = self.homes.lock();
        let home = homes.entry(user.into()).or_default();
        let mut old = std::mem::take(&mut home.endpoints);
        for e in endpoints.into_iter().take(MAX_ENDPOINTS) {
            let Some(id) = e["endpointId"].as_str().map(str::to_string) else {
                continue;
            };
            let state = old.remove(&id).map(|k| k.state).unwrap_or_default();
            home.endpoints.insert(
                id,
                Known {
                    declaration: e,
                    state,
                    source: "discovery",
                },
            );
        }
    }

    /// Add or update endpoints (AddOrUpdateReport); all or none.
    pub fn add_or_update(&self, user: &str, endpoints: Vec<Value>) -> Result<(), RegistryError> {
        let mut homes = self.homes.lock();
        let home = homes.entry(user.into()).or_default();
        let new = endpoints
            .iter()
            .filter_map(|e| e["endpointId"].as_str())
            .filter(|id| !home.endpoints.contains_key(*id))
            .count();
        let count = home.endpoints.len().saturating_add(new);
        if count > MAX_ENDPOINTS {
            return Err(RegistryError::Full {
                user: user.into(),
                count,
            });
        }
        for e in endpoints {
            let Some(id) = e["endpointId"].as_str().map(str::to_string) else {
                continue;
            };
            let state = home.endpoints.remove(&id).map(|k| k.state).unwrap_or_default();
            home.endpoints.insert(
                id,
                Known {
                    declaration: e,
                    state,
                    source: "AddOrUpdateReport",
                },
            );
        }
        Ok(())
    }

    /// Remove endpoints (DeleteReport); returns the ids that were unknown.
    pub fn delete(&self, user: &str, ids: &[String]) -> Vec<String> {
        let mut homes = self.homes.lock();
        let home = homes.entry(user.into()).or_default();
        ids.iter()
            .filter(|id| home.endpoints.remove(id.as_str()).is_none())
            .cloned()
            .collect()
    }

    /// Record reported property objects for an endpoint Alexa knows;
    /// `false` when it does not know the endpoint.
    pub fn report(&self, user: &str, endpoint: &str, properties: &[Value]) -> bool {
        let mut homes = self.homes.lock();
        let Some(known) = homes.get_mut(user).and_then(|h| h.endpoints.get_mut(endpoint)) else {
            return false;
        };
        for p in properties {
            let key = property_key(p);
            // Updates always land; a new property only while there is room,
            // so a skill inventing names cannot grow the registry without end.
            if known.state.len() < MAX_PROPERTIES || known.state.contains_key(&key) {
                known.state.insert(key, p.clone());
            }
        }
        true
    }

    /// The declaration of an endpoint Alexa knows.
    pub fn declaration(&self, user: &str, endpoint: &str) -> Option<Value> {
        let homes = self.homes.lock();
        Some(homes.get(user)?.endpoints.get(endpoint)?.declaration.clone())
    }

    /// The ids Alexa knows for `user`.
    pub fn endpoint_ids(&self, user: &str) -> Vec<String> {
        let homes = self.homes.lock();
        homes
            .get(user)
            .map(|h| h.endpoints.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// Remember a directive answered with DeferredResponse; returns the
    /// correlation token forgotten to make room, if any.
    pub fn defer(&self, user: &str, correlation: &str, pending: Pending) -> Option<String> {
        let mut homes = self.homes.lock();
        let home = homes.entry(user.into()).or_default();
        home.seq = home.seq.wrapping_add(1);
        let seq = home.seq;
        home.pending.insert(correlation.into(), (seq, pending));
        if home.pending.len() <= MAX_PENDING {
            return None;
        }
        let oldest = home
            .pending
            .iter()
            .min_by_key(|(_, (s, _))| *s)
            .map(|(k, _)| k.clone())?;
        home.pending.remove(&oldest);
        Some(oldest)
    }

    /// Match an asynchronous answer to its deferred directive (once).
    pub fn take_pending(&self, user: &str, correlation: &str) -> Option<Pending> {
        let mut homes = self.homes.lock();
        homes.get_mut(user)?.pending.remove(correlation).map(|(_, p)| p)
    }

    /// Whether a deferred directive with this token waits.
    pub fn is_pending(&self, user: &str, correlation: &str) -> bool {
        self.pending(user, correlation).is_some()
    }

    /// The directive waiting with this token, if any.
    pub fn pending(&self, user: &str, correlation: &str) -> Option<Pending> {
        let homes = self.homes.lock();
        homes.get(user)?.pending.get(correlation).map(|(_, p)| p.clone())
    }

    /// The user's registry as the control API shows it.
    pub fn snapshot(&self, user: &str) -> Value {
        let homes = self.homes.lock();
        let Some(home) = homes.get(user) else {
            return json!({"user": user, "endpoints": [], "pending": []});
        };
        let now = clock::now();
        let endpoints: Vec<Value> = home
            .endpoints
            .iter()
            .map(|(id, k)| {
                json!({
                    "endpointId": id,
                    "friendlyName": k.declaration["friendlyName"],
                    "displayCategories": k.declaration["displayCategories"],
                    "source": k.source,
                    "state": k.state.values().collect::<Vec<_>>(),
                    "declaration": k.declaration,
                })
            })
            .collect();
        let pending: Vec<Value> = home
            .pending
            .iter()
            .map(|(c, (_, p))| {
                json!({
                    "correlationToken": c,
                    "endpointId": p.endpoint,
                    "directive": format!("{}.{}", p.namespace, p.name),
                    "waiting_ms": now.duration_since(p.sent).as_millis() as u64,
                })
            })
            .collect();
        json!({"user": user, "endpoints": endpoints, "pending": pending})
    }

    /// The last reported value of a property, for expectations.
    pub fn property(&self, user: &str, endpoint: &str, namespace: Option<&str>, name: &str) -> Option<Value> {
        let homes = self.homes.lock();
        let known = homes.get(user)?.endpoints.get(endpoint)?;
        known
            .state
            .values()
            .find(|p| namespace.is_none_or(|n| p["namespace"] == n) && p["name"] == name)
            .map(|p| p["value"].clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(id: &str, name: &str) -> Value {
        json!({"endpointId": id, "friendlyName": name})
    }

    fn power(value: &str) -> Value {
        json!({"namespace": "Alexa.PowerController", "name": "powerState", "value": value,
               "timeOfSample": "2026-01-01T00:00:00Z", "uncertaintyInMilliseconds": 0})
    }

    #[test]
    fn discovery_replaces_reports_merge_and_delete() {
        let r = Registry::default();
        r.discovered("u", vec![ep("a", "A"), ep("b", "B")]);
        assert!(r.report("u", "a", &[power("ON")]));
        assert!(!r.report("u", "zz", &[power("ON")]));
        // Rediscovery keeps the state of endpoints that stay, forgets the rest.
        r.discovered("u", vec![ep("a", "A2"), ep("c", "C")]);
        assert_eq!(r.endpoint_ids("u"), ["a", "c"]);
        assert_eq!(
            r.property("u", "a", Some("Alexa.PowerController"), "powerState"),
            Some(json!("ON"))
        );
        r.add_or_update("u", vec![ep("c", "C2"), ep("d", "D")]).unwrap();
        assert_eq!(r.endpoint_ids("u"), ["a", "c", "d"]);
        assert_eq!(r.declaration("u", "c").unwrap()["friendlyName"], "C2");
        let snap = r.snapshot("u");
        assert_eq!(snap["endpoints"][1]["source"], "AddOrUpdateReport");
        assert_eq!(r.delete("u", &["d".into(), "nope".into()]), ["nope"]);
        assert_eq!(r.endpoint_ids("u"), ["a", "c"]);
        assert_eq!(r.endpoint_ids("other"), Vec::<String>::new());
    }

    #[test]
    fn property_states_per_endpoint_are_bounded_but_updates_land() {
        let r = Registry::default();
        r.discovered("u", vec![ep("a", "A")]);
        let named = |i: usize, v: &str| {
            json!({"namespace": "N", "name": format!("p{i}"), "value": v,
                   "timeOfSample": "2026-01-01T00:00:00Z", "uncertaintyInMilliseconds": 0})
        };
        let many: Vec<Value> = (0..MAX_PROPERTIES + 10).map(|i| named(i, "x")).collect();
        assert!(r.report("u", "a", &many));
        let snap = r.snapshot("u");
        assert_eq!(snap["endpoints"][0]["state"].as_array().unwrap().len(), MAX_PROPERTIES);
        assert!(r.report("u", "a", &[named(0, "updated")]));
        assert_eq!(r.property("u", "a", Some("N"), "p0"), Some(json!("updated")));
    }

    #[test]
    fn a_merge_beyond_the_bound_is_refused_whole() {
        let r = Registry::default();
        let many: Vec<Value> = (0..MAX_ENDPOINTS).map(|i| ep(&format!("e{i}"), "x")).collect();
        r.add_or_update("u", many).unwrap();
        let err = r.add_or_update("u", vec![ep("e0", "y"), ep("new", "z")]).unwrap_err();
        assert!(matches!(err, RegistryError::Full { count, .. } if count == MAX_ENDPOINTS + 1));
        assert_eq!(r.declaration("u", "e0").unwrap()["friendlyName"], "x");
    }

    #[tokio::test(start_paused = true)]
    async fn deferred_directives_match_once_and_stay_bounded() {
        let r = Registry::default();
        let p = Pending {
            endpoint: Some("a".into()),
            namespace: "Alexa.PowerController".into(),
            name: "TurnOn".into(),
            sent: clock::now(),
        };
        assert_eq!(r.defer("u", "c0", p.clone()), None);
        assert!(r.is_pending("u", "c0"));
        assert_eq!(r.take_pending("u", "c0"), Some(p.clone()));
        assert_eq!(r.take_pending("u", "c0"), None);
        for i in 0..MAX_PENDING {
            assert_eq!(r.defer("u", &format!("k{i}"), p.clone()), None);
        }
        assert_eq!(r.defer("u", "last", p), Some("k0".into()));
    }
}
