//! Who a bearer token belongs to: the token store shared by AVS, LWA and
//! the Capabilities API.
//!
//! A device keeps its id across refreshes: every refresh token maps to one
//! device, access tokens minted for it map to the same device, and a code
//! pair maps to the device named by its product id and serial number.

use crate::clock::{self, Instant};
use crate::config::{AuthMode, Config};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("missing bearer token: send `authorization: Bearer <access token>`")]
    Missing,
    #[error("unknown access token")]
    Unknown,
    #[error("access token expired")]
    Expired,
    #[error("access token revoked")]
    Revoked,
}

#[derive(Debug, Clone)]
struct Grant {
    device: Arc<str>,
    /// `None` for tokens declared in config: they never expire.
    expires: Option<Instant>,
    /// Set by faults: the error every later use of the token gets.
    blocked: Option<AuthError>,
}

/// A pending code-based-linking pair.
#[derive(Debug, Clone)]
pub struct CodePair {
    pub user_code: String,
    pub device: Arc<str>,
    pub expires: Instant,
}

/// Tokens the simulator issued, as LWA answers them.
#[derive(Debug, Clone)]
pub struct Issued {
    pub access_token: String,
    pub refresh_token: String,
    pub expires_in: u64,
    pub device: Arc<str>,
}

#[derive(Default)]
struct Store {
    access: HashMap<String, Grant>,
    refresh: HashMap<String, Arc<str>>,
    codepairs: HashMap<String, CodePair>,
    /// Access-token count at which expired ones are next swept.
    sweep_at: usize,
}

/// The token store.
pub struct Tokens {
    mode: AuthMode,
    lifetime: Duration,
    store: Mutex<Store>,
}

impl Tokens {
    /// A store seeded with the config's `[[devices]]`.
    pub fn new(config: &Config) -> Tokens {
        let mut store = Store {
            sweep_at: 1024,
            ..Default::default()
        };
        for d in &config.devices {
            let device: Arc<str> = d.id.as_str().into();
            store.access.insert(
                d.token.clone(),
                Grant {
                    device: device.clone(),
                    expires: None,
                    blocked: None,
                },
            );
            if let Some(rt) = &d.refresh_token {
                store.refresh.insert(rt.clone(), device);
            }
        }
        Tokens {
            mode: config.auth,
            lifetime: Duration::from_secs(config.lwa.expires_in),
            store: Mutex::new(store),
        }
    }

    pub fn mode(&self) -> AuthMode {
        self.mode
    }

    /// The device a bearer token identifies.
    pub fn authenticate(&self, token: &str) -> Result<Arc<str>, AuthError> {
        if token.is_empty() {
            return Err(AuthError::Missing);
        }
        let store = self.store.lock();
        match store.access.get(token) {
            Some(Grant { blocked: Some(e), .. }) => Err(e.clone()),
            Some(g) if self.mode == AuthMode::Strict && g.expires.is_some_and(|e| clock::now() >= e) => {
                Err(AuthError::Expired)
            }
            Some(g) => Ok(g.device.clone()),
            None if self.mode == AuthMode::Lenient => Ok(token.into()),
            None => Err(AuthError::Unknown),
        }
    }

    /// The device a refresh token belongs to, if known.
    pub fn refresh_owner(&self, refresh_token: &str) -> Option<Arc<str>> {
        self.store.lock().refresh.get(refresh_token).cloned()
    }

    /// Mint an access token for `device`, reusing `refresh_token` or minting one.
    pub fn issue(&self, device: Arc<str>, refresh_token: Option<String>) -> Issued {
        let access_token = format!("Atza|{}", uuid::Uuid::new_v4().simple());
        let refresh_token = refresh_token.unwrap_or_else(|| format!("Atzr|{}", uuid::Uuid::new_v4().simple()));
        let now = clock::now();
        let mut store = self.store.lock();
        if store.access.len() >= store.sweep_at {
            store.access.retain(|_, g| g.expires.is_none_or(|e| e > now));
            store.sweep_at = (store.access.len() * 2).max(1024);
        }
        store.access.insert(
            access_token.clone(),
            Grant {
                device: device.clone(),
                expires: Some(now + self.lifetime),
                blocked: None,
            },
        );
        store.refresh.insert(refresh_token.clone(), device.clone());
        Issued {
            access_token,
            refresh_token,
            expires_in: self.lifetime.as_secs(),
            device,
        }
    }

    /// Revoke every access token of `device` (and, in lenient mode, the device
    /// id used as a token); `expire` reports them expired rather than revoked.
    pub fn block_device(&self, device: &Arc<str>, expire: bool) {
        let why = if expire { AuthError::Expired } else { AuthError::Revoked };
        let mut store = self.store.lock();
        for g in store.access.values_mut().filter(|g| &g.device == device) {
            g.blocked = Some(why.clone());
        }
        let grant = Grant {
            device: device.clone(),
            expires: None,
            blocked: None,
        };
        store.access.entry(device.to_string()).or_insert(grant).blocked = Some(why);
    }

    /// Remember a code pair under its device code.
    pub fn add_codepair(&self, device_code: String, pair: CodePair) {
        let mut store = self.store.lock();
        let now = clock::now();
        store.codepairs.retain(|_, p| p.expires > now);
        store.codepairs.insert(device_code, pair);
    }

    /// The code pair for a device code (removed once redeemed).
    pub fn take_codepair(&self, device_code: &str, user_code: &str) -> Result<CodePair, CodePairError> {
        let mut store = self.store.lock();
        let pair = store.codepairs.get(device_code).ok_or(CodePairError::Unknown)?;
        if pair.user_code != user_code {
            return Err(CodePairError::Unknown);
        }
        if pair.expires <= clock::now() {
            store.codepairs.remove(device_code);
            return Err(CodePairError::Expired);
        }
        Ok(store.codepairs.remove(device_code).expect("present above"))
    }
}

/// Why a device code could not be redeemed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodePairError {
    Unknown,
    Expired,
}

/// The bearer token of a request: `authorization: Bearer <t>`, or the
/// Capabilities API's `x-amz-access-token: <t>` when `allow_amz` is set.
pub fn bearer(headers: &http::HeaderMap, allow_amz: bool) -> Option<&str> {
    let from_auth = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, token) = v.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        });
    let from_amz = || {
        headers
            .get("x-amz-access-token")
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    from_auth
        .or_else(|| if allow_amz { from_amz() } else { None })
        .filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DeviceDecl;

    fn config(mode: AuthMode) -> Config {
        let mut c = Config {
            auth: mode,
            ..Default::default()
        };
        c.devices.push(DeviceDecl {
            id: "kitchen".into(),
            token: "tok".into(),
            refresh_token: Some("rt".into()),
        });
        c
    }

    #[test]
    fn lenient_accepts_any_token_as_its_own_device() {
        let t = Tokens::new(&config(AuthMode::Lenient));
        assert_eq!(&*t.authenticate("whatever").unwrap(), "whatever");
        assert_eq!(&*t.authenticate("tok").unwrap(), "kitchen");
        assert_eq!(t.authenticate(""), Err(AuthError::Missing));
    }

    #[tokio::test(start_paused = true)]
    async fn strict_accepts_known_tokens_until_expiry() {
        let t = Tokens::new(&config(AuthMode::Strict));
        assert_eq!(t.authenticate("whatever"), Err(AuthError::Unknown));
        assert_eq!(&*t.authenticate("tok").unwrap(), "kitchen");
        let issued = t.issue(t.refresh_owner("rt").unwrap(), Some("rt".into()));
        assert_eq!(&*t.authenticate(&issued.access_token).unwrap(), "kitchen");
        tokio::time::advance(Duration::from_secs(3601)).await;
        assert_eq!(t.authenticate(&issued.access_token), Err(AuthError::Expired));
        assert_eq!(
            &*t.authenticate("tok").unwrap(),
            "kitchen",
            "declared tokens never expire"
        );
    }

    #[test]
    fn bearer_forms() {
        let mut h = http::HeaderMap::new();
        h.insert("authorization", "Bearer abc".parse().unwrap());
        assert_eq!(bearer(&h, false), Some("abc"));
        let mut h = http::HeaderMap::new();
        h.insert("x-amz-access-token", "xyz".parse().unwrap());
        assert_eq!(bearer(&h, false), None);
        assert_eq!(bearer(&h, true), Some("xyz"));
    }
}
