//! Skills and users as the config (and scenarios) declare them.

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Alexa's budget for a smart home skill's answer (reference smarthome.md §6).
pub const ALEXA_BUDGET: Duration = Duration::from_secs(8);

/// The longest `timeout` a skill may be given: a skill slower than this is
/// broken, and a longer wait would only hide it.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(300);

const fn alexa_budget() -> Duration {
    ALEXA_BUDGET
}

/// A smart home skill: how Alexa reaches its handler.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SkillDecl {
    pub id: String,
    /// A local handler, spawned without a shell: directive JSON on stdin,
    /// answer JSON on stdout.
    #[serde(default)]
    pub command: Option<Vec<String>>,
    /// An HTTP endpoint taking the directive as the POST body and answering
    /// with the handler's result (the Lambda Runtime Interface Emulator's
    /// `/2015-03-31/functions/function/invocations`, or any adapter).
    #[serde(default)]
    pub url: Option<String>,
    /// How long Alexa waits; then SKILL_RESPONSE_TIMEOUT_EXCEPTION.
    #[serde(default = "alexa_budget", with = "crate::duration")]
    pub timeout: Duration,
    /// Whether the skill has the "send Alexa events" permission; without it
    /// the gateway answers 403 INSUFFICIENT_PERMISSION_EXCEPTION.
    #[serde(default = "yes")]
    pub send_events: bool,
    /// The permission's LWA client id and secret; when given, the
    /// authorization_code and refresh_token grants must present them.
    #[serde(default)]
    pub client_id: Option<String>,
    #[serde(default)]
    pub client_secret: Option<String>,
}

const fn yes() -> bool {
    true
}

impl SkillDecl {
    /// A skill with neither command nor url yet, and every default.
    pub fn new(id: impl Into<String>) -> SkillDecl {
        SkillDecl {
            id: id.into(),
            command: None,
            url: None,
            timeout: ALEXA_BUDGET,
            send_events: true,
            client_id: None,
            client_secret: None,
        }
    }
}

/// A customer who enabled a skill and linked an account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserDecl {
    pub id: String,
    /// The skill this user enabled.
    pub skill: String,
    /// The token Alexa puts in each directive's scope.
    pub token: String,
    /// A token the skill may use at the event gateway without AcceptGrant.
    #[serde(default)]
    pub gateway_token: Option<String>,
    /// Whether the skill is enabled; a disabled skill's events get 403
    /// SKILL_DISABLED_EXCEPTION (the control API can change it).
    #[serde(default = "yes")]
    pub enabled: bool,
    /// With `partition` (and `user_id`), Discover carries a
    /// `BearerTokenWithPartition` scope instead of `BearerToken`.
    #[serde(default)]
    pub partition: Option<String>,
    #[serde(default)]
    pub user_id: Option<String>,
}

/// Every problem with the declared skills and users, each naming its place.
pub fn validate(skills: &[SkillDecl], users: &[UserDecl]) -> Vec<String> {
    let mut errors = Vec::new();
    let mut ids = std::collections::HashSet::new();
    for (i, s) in skills.iter().enumerate() {
        let at = format!("skills[{i}] ({:?})", s.id);
        if s.id.is_empty() || !ids.insert(s.id.as_str()) {
            errors.push(format!("{at}: id must be non-empty and unique"));
        }
        match (&s.command, &s.url) {
            (Some(c), None) if c.is_empty() || c[0].is_empty() => {
                errors.push(format!("{at}: command needs a program to run"))
            }
            (Some(_), None) => {}
            (None, Some(u)) if !u.starts_with("http://") => errors.push(format!(
                "{at}: url must be http://host:port/path (the handler runs locally), got {u:?}"
            )),
            (None, Some(_)) => {}
            _ => errors.push(format!("{at}: give exactly one of command or url")),
        }
        if s.client_id.is_some() != s.client_secret.is_some() {
            errors.push(format!("{at}: give both client_id and client_secret, or neither"));
        }
        if s.timeout.is_zero() || s.timeout > MAX_TIMEOUT {
            errors.push(format!(
                "{at}: timeout must be in 1ms..={}, got {}",
                crate::duration::format(MAX_TIMEOUT),
                crate::duration::format(s.timeout)
            ));
        }
    }
    let mut user_ids = std::collections::HashSet::new();
    let mut gateway_tokens = std::collections::HashSet::new();
    for (i, u) in users.iter().enumerate() {
        let at = format!("users[{i}] ({:?})", u.id);
        if u.id.is_empty() || !user_ids.insert(u.id.as_str()) {
            errors.push(format!("{at}: id must be non-empty and unique"));
        }
        if u.token.is_empty() {
            errors.push(format!("{at}: token must be non-empty"));
        }
        match u.gateway_token.as_deref() {
            Some("") => errors.push(format!("{at}: gateway_token must be non-empty when given")),
            Some(t) if !gateway_tokens.insert(t) => errors.push(format!(
                "{at}: gateway_token is also another user's: each stands for one user"
            )),
            _ => {}
        }
        if !skills.iter().any(|s| s.id == u.skill) {
            errors.push(format!("{at}: skill {:?} is not declared in [[skills]]", u.skill));
        }
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Doc {
        #[serde(default)]
        skills: Vec<SkillDecl>,
        #[serde(default)]
        users: Vec<UserDecl>,
    }

    #[test]
    fn the_issue_example_loads_with_alexas_budget() {
        let doc: Doc = toml::from_str(
            "[[skills]]\nid = 'lights'\ncommand = ['python3', 'skill.py']\n[[users]]\nid = 'u1'\nskill = 'lights'\ntoken = 'user-token-u1'\n",
        )
        .unwrap();
        assert_eq!(doc.skills[0].timeout, ALEXA_BUDGET);
        assert!(validate(&doc.skills, &doc.users).is_empty());
    }

    #[test]
    fn every_mistake_is_named() {
        let doc: Doc = toml::from_str(
            "[[skills]]\nid = 'a'\n[[skills]]\nid = 'a'\ncommand = []\n[[skills]]\nid = 'b'\nurl = 'https://x'\ntimeout = '1h'\nclient_id = 'c'\n[[users]]\nid = 'u'\nskill = 'nope'\ntoken = ''\ngateway_token = 'g'\n[[users]]\nid = 'v'\nskill = 'b'\ntoken = 't'\ngateway_token = 'g'\n[[users]]\nid = 'w'\nskill = 'b'\ntoken = 't'\ngateway_token = ''\n",
        )
        .unwrap();
        let errors = validate(&doc.skills, &doc.users);
        for want in [
            "skills[0] (\"a\"): give exactly one of command or url",
            "skills[1] (\"a\"): id must be non-empty and unique",
            "skills[1] (\"a\"): command needs a program",
            "skills[2] (\"b\"): url must be http://",
            "skills[2] (\"b\"): timeout must be in 1ms..=5m",
            "skills[2] (\"b\"): give both client_id and client_secret",
            "users[1] (\"v\"): gateway_token is also another user's",
            "users[2] (\"w\"): gateway_token must be non-empty",
            "users[0] (\"u\"): token must be non-empty",
            "users[0] (\"u\"): skill \"nope\" is not declared",
        ] {
            assert!(errors.iter().any(|e| e.starts_with(want)), "{want}: {errors:#?}");
        }
    }
}
