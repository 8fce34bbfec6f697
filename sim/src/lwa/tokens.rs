//! Who a bearer token belongs to: the token store shared by AVS, LWA and
//! the Capabilities API.
//!
//! A device keeps its id across refreshes: every refresh token maps to one
//! device, access tokens minted for it map to the same device, and a code
//! pair maps to the device named by its product id and serial number.
//!
//! The store stays bounded by time: `sweep` (run periodically, and on a
//! burst of minting) forgets access tokens that expired and then went
//! unused for another lifetime, refresh tokens unused for
//! `lwa.refresh_expires_in`, and expired code pairs. Tokens declared in the
//! config are never forgotten.

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
    /// When the token was last presented (lenient mode keeps using expired
    /// tokens, so expiry alone does not make one forgettable).
    last_used: Instant,
}

/// A refresh token's owner.
#[derive(Debug, Clone)]
struct Refresh {
    device: Arc<str>,
    /// `None` for tokens declared in config: never forgotten.
    last_used: Option<Instant>,
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
    refresh: HashMap<String, Refresh>,
    codepairs: HashMap<String, CodePair>,
    /// Access-token count at which the store is next swept between periodic sweeps.
    sweep_at: usize,
}

/// What one sweep forgot.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Swept {
    /// Access tokens past their expiry and unused for a lifetime.
    pub access: usize,
    /// Refresh tokens unused for `lwa.refresh_expires_in`.
    pub refresh: usize,
    /// Code pairs past their expiry.
    pub codepairs: usize,
}

impl Swept {
    /// Everything forgotten in one sweep.
    pub fn total(&self) -> usize {
        self.access + self.refresh + self.codepairs
    }
}

/// Token counts, for tests and the journal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    /// Access tokens held.
    pub access: usize,
    /// Refresh tokens held.
    pub refresh: usize,
    /// Code pairs waiting to be redeemed.
    pub codepairs: usize,
}

/// The token store.
pub struct Tokens {
    mode: AuthMode,
    lifetime: Duration,
    /// Unused refresh tokens are forgotten after this; `None`: never.
    refresh_idle: Option<Duration>,
    store: Mutex<Store>,
}

/// Now plus `d`, saturating at a century (config values may be huge).
pub fn expiry_after(d: Duration) -> Instant {
    let now = clock::now();
    later(now, d.min(Duration::from_secs(100 * 365 * 24 * 3600))).unwrap_or(now)
}

/// `at + d`, or `None` when that is beyond what the clock can hold (never).
fn later(at: Instant, d: Duration) -> Option<Instant> {
    at.checked_add(d)
}

impl Tokens {
    /// A store seeded with the config's `[[devices]]`.
    pub fn new(config: &Config) -> Tokens {
        let mut store = Store {
            sweep_at: 1024,
            ..Default::default()
        };
        let now = clock::now();
        for d in &config.devices {
            let device: Arc<str> = d.id.as_str().into();
            store.access.insert(
                d.token.clone(),
                Grant {
                    device: device.clone(),
                    expires: None,
                    blocked: None,
                    last_used: now,
                },
            );
            if let Some(rt) = &d.refresh_token {
                let owner = Refresh {
                    device,
                    last_used: None,
                };
                store.refresh.insert(rt.clone(), owner);
            }
        }
        let refresh = config.lwa.refresh_expires_in;
        Tokens {
            mode: config.auth,
            lifetime: Duration::from_secs(config.lwa.expires_in),
            refresh_idle: (refresh > 0).then(|| Duration::from_secs(refresh)),
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
        let now = clock::now();
        let mut store = self.store.lock();
        if let Some(g) = store.access.get_mut(token) {
            g.last_used = now;
        }
        match store.access.get(token) {
            Some(Grant { blocked: Some(e), .. }) => Err(e.clone()),
            Some(g) if self.mode == AuthMode::Strict && g.expires.is_some_and(|e| now >= e) => Err(AuthError::Expired),
            Some(g) => Ok(g.device.clone()),
            None if self.mode == AuthMode::Lenient => Ok(token.into()),
            None => Err(AuthError::Unknown),
        }
    }

    /// The device a refresh token belongs to, if known and not expired.
    pub fn refresh_owner(&self, refresh_token: &str) -> Option<Arc<str>> {
        let now = clock::now();
        let store = self.store.lock();
        let r = store.refresh.get(refresh_token)?;
        (!self.refresh_expired(r, now)).then(|| r.device.clone())
    }

    fn refresh_expired(&self, r: &Refresh, now: Instant) -> bool {
        match (r.last_used, self.refresh_idle) {
            (Some(used), Some(idle)) => later(used, idle).is_some_and(|end| end <= now),
            _ => false,
        }
    }

    /// Forget expired tokens and code pairs (see the module doc).
    pub fn sweep(&self) -> Swept {
        let now = clock::now();
        let mut store = self.store.lock();
        self.sweep_store(&mut store, now)
    }

    fn sweep_store(&self, store: &mut Store, now: Instant) -> Swept {
        let before = self.counts_of(store);
        let lifetime = self.lifetime;
        // Kept one more lifetime after expiry or its last use, whichever is
        // later: strict mode answers "expired" for a while before "unknown";
        // lenient mode (which ignores expiry) keeps a token in use.
        store.access.retain(|_, g| match g.expires {
            None => true,
            Some(e) => later(e.max(g.last_used), lifetime).is_none_or(|end| now < end),
        });
        store.refresh.retain(|_, r| !self.refresh_expired(r, now));
        store.codepairs.retain(|_, p| p.expires > now);
        let after = self.counts_of(store);
        Swept {
            access: before.access - after.access,
            refresh: before.refresh - after.refresh,
            codepairs: before.codepairs - after.codepairs,
        }
    }

    fn counts_of(&self, store: &Store) -> Counts {
        Counts {
            access: store.access.len(),
            refresh: store.refresh.len(),
            codepairs: store.codepairs.len(),
        }
    }

    /// How many tokens and code pairs the store holds.
    pub fn counts(&self) -> Counts {
        self.counts_of(&self.store.lock())
    }

    /// Mint an access token for `device`, reusing `refresh_token` or minting one.
    pub fn issue(&self, device: Arc<str>, refresh_token: Option<String>) -> Issued {
        let access_token = format!("Atza|{}", uuid::Uuid::new_v4().simple());
        let refresh_token = refresh_token.unwrap_or_else(|| format!("Atzr|{}", uuid::Uuid::new_v4().simple()));
        let now = clock::now();
        let mut store = self.store.lock();
        if store.access.len() >= store.sweep_at {
            // A burst between periodic sweeps: sweep now, amortized by doubling.
            self.sweep_store(&mut store, now);
            store.sweep_at = store.access.len().saturating_mul(2).max(1024);
        }
        store.access.insert(
            access_token.clone(),
            Grant {
                device: device.clone(),
                // Beyond the clock's range: never expires.
                expires: later(now, self.lifetime),
                blocked: None,
                last_used: now,
            },
        );
        let declared = store.refresh.get(&refresh_token).is_some_and(|r| r.last_used.is_none());
        let owner = Refresh {
            device: device.clone(),
            last_used: (!declared).then_some(now),
        };
        store.refresh.insert(refresh_token.clone(), owner);
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
            last_used: clock::now(),
        };
        store.access.entry(device.to_string()).or_insert(grant).blocked = Some(why);
    }

    /// Remember a code pair under its device code.
    pub fn add_codepair(&self, device_code: String, pair: CodePair) {
        let now = clock::now();
        let mut store = self.store.lock();
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
        store.codepairs.remove(device_code).ok_or(CodePairError::Unknown)
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

    #[tokio::test(start_paused = true)]
    async fn sweeps_forget_expired_tokens_and_code_pairs_but_not_declared_ones() {
        let mut c = config(AuthMode::Strict);
        c.lwa.expires_in = 60;
        c.lwa.refresh_expires_in = 600;
        let t = Tokens::new(&c);
        let kitchen = t.refresh_owner("rt").unwrap();
        let used = t.issue(kitchen.clone(), Some("rt".into()));
        let idle = t.issue("hall".into(), None);
        let pair = CodePair {
            user_code: "ABC".into(),
            device: "p:s".into(),
            expires: clock::now() + Duration::from_secs(30),
        };
        t.add_codepair("dc".into(), pair);
        assert_eq!(t.sweep(), Swept::default(), "nothing expired yet");
        assert_eq!(
            t.counts(),
            Counts {
                access: 3,
                refresh: 2,
                codepairs: 1
            }
        );

        tokio::time::advance(Duration::from_secs(61)).await;
        assert_eq!(t.sweep().codepairs, 1);
        assert_eq!(
            t.authenticate(&idle.access_token),
            Err(AuthError::Expired),
            "kept a while to say so"
        );
        tokio::time::advance(Duration::from_secs(120)).await;
        let swept = t.sweep();
        assert_eq!(swept.access, 2, "both minted access tokens expired and went unused");
        assert_eq!(t.authenticate(&used.access_token), Err(AuthError::Unknown));
        assert_eq!(&*t.authenticate("tok").unwrap(), "kitchen", "declared tokens stay");

        // Refresh tokens: each use restarts the clock; declared ones never go.
        tokio::time::advance(Duration::from_secs(300)).await;
        let again = t.issue(
            t.refresh_owner(&idle.refresh_token).unwrap(),
            Some(idle.refresh_token.clone()),
        );
        tokio::time::advance(Duration::from_secs(400)).await;
        assert_eq!(t.sweep().refresh, 0, "used 400 s ago: still live");
        assert!(t.refresh_owner(&again.refresh_token).is_some());
        tokio::time::advance(Duration::from_secs(201)).await;
        assert!(
            t.refresh_owner(&again.refresh_token).is_none(),
            "expired before any sweep"
        );
        assert_eq!(t.sweep().refresh, 1);
        assert_eq!(&*t.refresh_owner("rt").unwrap(), "kitchen");
        assert_eq!(t.counts().refresh, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn lenient_mode_keeps_an_expired_token_in_use() {
        let mut c = config(AuthMode::Lenient);
        c.lwa.expires_in = 60;
        let t = Tokens::new(&c);
        let issued = t.issue("den".into(), None);
        for _ in 0..10 {
            tokio::time::advance(Duration::from_secs(50)).await;
            assert_eq!(&*t.authenticate(&issued.access_token).unwrap(), "den");
            t.sweep();
        }
        assert_eq!(t.counts().access, 2, "used every 50 s: the device keeps its id");
    }

    #[test]
    fn huge_lifetimes_never_overflow_the_clock() {
        let mut c = config(AuthMode::Strict);
        c.lwa.expires_in = u64::MAX;
        c.lwa.refresh_expires_in = u64::MAX;
        let t = Tokens::new(&c);
        let issued = t.issue("x".into(), None);
        assert_eq!(&*t.authenticate(&issued.access_token).unwrap(), "x");
        assert_eq!(t.sweep(), Swept::default());
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
