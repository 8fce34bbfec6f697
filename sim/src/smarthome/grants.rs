//! The tokens a skill uses at the event gateway, as LWA mints them.
//!
//! Alexa sends AcceptGrant with an authorization code; the skill swaps the
//! code at `/auth/o2/token` (grant_type `authorization_code`) for an access
//! and a refresh token that stand for that skill and user (reference
//! smarthome.md §1). A `[[users]] gateway_token` is accepted as well, for
//! skills tested without the grant dance. Codes are single use and expire;
//! access tokens expire after `lwa.expires_in`. An ErrorResponse with
//! EXPIRED/INVALID_AUTHORIZATION_CREDENTIAL makes Alexa discard the
//! customer's tokens, which `unlink` models.

use crate::clock::{self, Instant};
use crate::lwa::tokens::expiry_after;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::time::Duration;

/// How long an AcceptGrant code may wait to be swapped (LWA: 5 minutes).
pub const CODE_LIFETIME: Duration = Duration::from_secs(300);

/// Most grant codes and tokens held at once; the oldest go first beyond it,
/// so a skill that loops on refresh cannot grow the store without bound.
pub const MAX_HELD: usize = 10_000;

/// Why a token or code was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GrantError {
    #[error("unknown token")]
    Unknown,
    #[error("the token has expired")]
    Expired,
    #[error("the code was already used")]
    Used,
    /// Discarded when the account was unlinked (`unlink`).
    #[error("the token was discarded when the account was unlinked")]
    Unlinked,
}

/// Tokens minted for a skill + user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Minted {
    pub access_token: String,
    pub refresh_token: String,
    pub expires_in: u64,
}

#[derive(Debug, Clone)]
struct Held {
    user: String,
    expires: Option<Instant>,
    born: u64,
}

#[derive(Default)]
struct Store {
    codes: HashMap<String, Held>,
    used: HashMap<String, u64>,
    access: HashMap<String, Held>,
    refresh: HashMap<String, Held>,
    static_tokens: HashMap<String, String>,
    /// Access and refresh tokens `unlink` discarded, so that they are
    /// refused as such rather than as unknown (bounded like `used`).
    unlinked: HashMap<String, u64>,
    seq: u64,
}

/// The grant store.
pub struct Grants {
    lifetime: Duration,
    store: Mutex<Store>,
}

fn token(prefix: &str) -> String {
    format!("{prefix}|{}", uuid::Uuid::new_v4().simple())
}

impl Grants {
    /// A store with the config's `gateway_token`s; access tokens live `lifetime`.
    pub fn new(users: &[super::UserDecl], lifetime: Duration) -> Grants {
        let static_tokens = users
            .iter()
            .filter_map(|u| Some((u.gateway_token.clone()?, u.id.clone())))
            .collect();
        Grants {
            lifetime,
            store: Mutex::new(Store {
                static_tokens,
                ..Default::default()
            }),
        }
    }

    /// A fresh authorization code for `user` (what AcceptGrant carries).
    pub fn mint_code(&self, user: &str) -> String {
        let code = token("ANcode");
        let mut s = self.store.lock();
        let born = bump(&mut s);
        s.codes.insert(
            code.clone(),
            Held {
                user: user.into(),
                expires: Some(expiry_after(CODE_LIFETIME)),
                born,
            },
        );
        trim(&mut s.codes);
        code
    }

    /// Whether `code` is one of ours (used or not): the LWA route then
    /// answers as the skill's token endpoint rather than a device's.
    pub fn is_code(&self, code: &str) -> bool {
        let s = self.store.lock();
        s.codes.contains_key(code) || s.used.contains_key(code)
    }

    /// The user an unused code was minted for, without using it (LWA checks
    /// the skill's client credentials before the code is spent).
    pub fn code_owner(&self, code: &str) -> Option<String> {
        self.store.lock().codes.get(code).map(|h| h.user.clone())
    }

    /// The user a skill refresh token stands for.
    pub fn refresh_owner(&self, refresh: &str) -> Option<String> {
        self.store.lock().refresh.get(refresh).map(|h| h.user.clone())
    }

    /// Whether `refresh` is a skill refresh token (also one discarded by
    /// `unlink`: the LWA route then refuses it as a skill's).
    pub fn is_refresh(&self, refresh: &str) -> bool {
        let s = self.store.lock();
        s.refresh.contains_key(refresh) || s.unlinked.contains_key(refresh)
    }

    /// Swap a code (once) for tokens; returns the user they stand for.
    pub fn exchange(&self, code: &str) -> Result<(String, Minted), GrantError> {
        let mut s = self.store.lock();
        if s.used.contains_key(code) {
            return Err(GrantError::Used);
        }
        let held = s.codes.remove(code).ok_or(GrantError::Unknown)?;
        let born = bump(&mut s);
        s.used.insert(code.into(), born);
        trim_used(&mut s.used);
        if held.expires.is_some_and(|e| clock::now() >= e) {
            return Err(GrantError::Expired);
        }
        let minted = self.mint(&mut s, &held.user, None);
        Ok((held.user, minted))
    }

    /// A new access token for a refresh token (which stays valid).
    pub fn refresh(&self, refresh: &str) -> Result<(String, Minted), GrantError> {
        let mut s = self.store.lock();
        if s.unlinked.contains_key(refresh) {
            return Err(GrantError::Unlinked);
        }
        let user = s.refresh.get(refresh).ok_or(GrantError::Unknown)?.user.clone();
        let minted = self.mint(&mut s, &user, Some(refresh.to_string()));
        Ok((user, minted))
    }

    fn mint(&self, s: &mut Store, user: &str, refresh: Option<String>) -> Minted {
        let born = bump(s);
        let access = token("Atza");
        s.access.insert(
            access.clone(),
            Held {
                user: user.into(),
                expires: Some(expiry_after(self.lifetime)),
                born,
            },
        );
        trim(&mut s.access);
        let refresh = refresh.unwrap_or_else(|| {
            let r = token("Atzr");
            s.refresh.insert(
                r.clone(),
                Held {
                    user: user.into(),
                    expires: None,
                    born,
                },
            );
            trim(&mut s.refresh);
            r
        });
        Minted {
            access_token: access,
            refresh_token: refresh,
            expires_in: self.lifetime.as_secs(),
        }
    }

    /// The user a gateway bearer token stands for.
    pub fn authenticate(&self, bearer: &str) -> Result<String, GrantError> {
        let s = self.store.lock();
        if let Some(user) = s.static_tokens.get(bearer) {
            return Ok(user.clone());
        }
        if s.unlinked.contains_key(bearer) {
            return Err(GrantError::Unlinked);
        }
        let held = s.access.get(bearer).ok_or(GrantError::Unknown)?;
        if held.expires.is_some_and(|e| clock::now() >= e) {
            return Err(GrantError::Expired);
        }
        Ok(held.user.clone())
    }

    /// Forget every minted token of `user` (Alexa discards a customer's
    /// tokens after EXPIRED/INVALID_AUTHORIZATION_CREDENTIAL). Declared
    /// `gateway_token`s stay: config is the operator's word.
    pub fn unlink(&self, user: &str) -> usize {
        let mut guard = self.store.lock();
        let s = &mut *guard;
        let before = s.access.len() + s.refresh.len() + s.codes.len();
        let mut gone = Vec::new();
        for map in [&mut s.access, &mut s.refresh] {
            map.retain(|k, h| {
                let keep = h.user != user;
                if !keep {
                    gone.push(k.clone());
                }
                keep
            });
        }
        s.codes.retain(|_, h| h.user != user);
        let after = s.access.len() + s.refresh.len() + s.codes.len();
        for token in gone {
            let born = bump(s);
            s.unlinked.insert(token, born);
        }
        trim_used(&mut s.unlinked);
        before - after
    }
}

fn bump(s: &mut Store) -> u64 {
    s.seq = s.seq.wrapping_add(1);
    s.seq
}

/// Keep at most `MAX_HELD` entries, dropping expired ones first, then the oldest.
fn trim(map: &mut HashMap<String, Held>) {
    if map.len() <= MAX_HELD {
        return;
    }
    let now = clock::now();
    map.retain(|_, h| h.expires.is_none_or(|e| now < e));
    while map.len() > MAX_HELD {
        let Some(oldest) = map.iter().min_by_key(|(_, h)| h.born).map(|(k, _)| k.clone()) else {
            break;
        };
        map.remove(&oldest);
    }
}

fn trim_used(map: &mut HashMap<String, u64>) {
    while map.len() > MAX_HELD {
        let Some(oldest) = map.iter().min_by_key(|(_, b)| **b).map(|(k, _)| k.clone()) else {
            break;
        };
        map.remove(&oldest);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(id: &str, gateway_token: Option<&str>) -> super::super::UserDecl {
        toml::from_str(&format!(
            "id = '{id}'\nskill = 's'\ntoken = 't'\n{}",
            gateway_token
                .map(|t| format!("gateway_token = '{t}'"))
                .unwrap_or_default()
        ))
        .unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn a_code_is_swapped_once_and_its_token_expires() {
        let g = Grants::new(&[user("u1", Some("static"))], Duration::from_secs(60));
        assert_eq!(g.authenticate("static").unwrap(), "u1");
        let code = g.mint_code("u1");
        assert!(g.is_code(&code));
        let (who, minted) = g.exchange(&code).unwrap();
        assert_eq!(who, "u1");
        assert_eq!(g.exchange(&code), Err(GrantError::Used));
        assert_eq!(g.authenticate(&minted.access_token).unwrap(), "u1");
        tokio::time::advance(Duration::from_secs(61)).await;
        assert_eq!(g.authenticate(&minted.access_token), Err(GrantError::Expired));
        let (_, again) = g.refresh(&minted.refresh_token).unwrap();
        assert_eq!(again.refresh_token, minted.refresh_token);
        assert_eq!(g.authenticate(&again.access_token).unwrap(), "u1");
        assert_eq!(g.authenticate("nope"), Err(GrantError::Unknown));
        assert!(g.unlink("u1") >= 2);
        assert_eq!(g.authenticate(&again.access_token), Err(GrantError::Unlinked));
        assert!(g.is_refresh(&again.refresh_token));
        assert_eq!(g.refresh(&again.refresh_token), Err(GrantError::Unlinked));
        assert_eq!(g.authenticate("static").unwrap(), "u1");
    }

    #[tokio::test(start_paused = true)]
    async fn a_code_expires_and_the_store_stays_bounded() {
        let g = Grants::new(&[], Duration::from_secs(60));
        let code = g.mint_code("u");
        tokio::time::advance(CODE_LIFETIME + Duration::from_secs(1)).await;
        assert_eq!(g.exchange(&code).unwrap_err(), GrantError::Expired);
        let first = g.mint_code("u");
        for _ in 0..MAX_HELD + 5 {
            g.mint_code("u");
        }
        assert!(g.store.lock().codes.len() <= MAX_HELD);
        assert!(!g.is_code(&first));
    }
}
