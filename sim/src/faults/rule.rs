//! The fault rule format, shared by config, control API and scenarios.

use crate::journal::Face;
use crate::scenario::model::Dur;
use serde::{Deserialize, Serialize, Serializer};

/// `when` + `then` + `times`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Names the rule in the journal and the control API (made up if absent).
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub when: When,
    pub then: Action,
    /// Fire at most this many times (default: every time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub times: Option<u32>,
}

/// Which requests a rule applies to; every given field must hold.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct When {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub face: Option<Face>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    /// Request path, exact (e.g. `/v20160207/events`, `/ping`, `/auth/o2/token`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Event `Namespace.Name` (decided once the event's metadata is read).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    /// Only the nth matching request (1-based).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nth: Option<u32>,
    /// Only on the device's nth connection (1-based).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection: Option<u64>,
    /// Only the nth stream of a connection (1-based; client stream ids 1, 3, 5, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<u32>,
    /// Fire with this probability (0..1), drawn from a seeded generator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probability: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// Active only from this long after the rule was added...
    #[serde(default, skip_serializing_if = "Option::is_none", serialize_with = "ser_dur")]
    pub after: Option<Dur>,
    /// ...and until this long after it was added.
    #[serde(default, skip_serializing_if = "Option::is_none", serialize_with = "ser_dur")]
    pub until: Option<Dur>,
}

fn ser_dur<S: Serializer>(d: &Option<Dur>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_str(&crate::duration::format(d.0)),
        None => s.serialize_none(),
    }
}

impl When {
    /// Whether the request's identity fits (counters and chance aside).
    pub fn matches(&self, p: &super::Point<'_>) -> bool {
        // Connection-level decisions (at accept) only consider rules that ask for them.
        if (p.face == Face::Server) != (self.face == Some(Face::Server)) {
            return false;
        }
        // A skill invocation (or a Smart Properties activation) is not an
        // HTTP request: only rules written for it (`face = "skill"`, `"asp"`) see it, so a device rule without a face is
        // neither spent nor journaled on one.
        if matches!(p.face, Face::Skill | Face::Asp) && self.face != Some(p.face) {
            return false;
        }
        self.face.is_none_or(|f| f == p.face)
            && self.device.as_deref().is_none_or(|d| p.device == Some(d))
            && self.path.as_deref().is_none_or(|x| x == p.path)
            && match (&self.event, p.event) {
                (Some(want), Some(got)) => want == got,
                (Some(_), None) => false,
                // A rule without `event` is decided at the request's start only.
                (None, Some(_)) => false,
                (None, None) => true,
            }
            && self.connection.is_none_or(|n| p.connection == Some(n))
            && self.stream.is_none_or(|n| p.stream == Some(n))
    }
}

/// A delay's distribution, resolved from a `delay` action's fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Delay {
    Fixed { ms: u64 },
    Uniform { min_ms: u64, max_ms: u64 },
    LogNormal { median_ms: u64, sigma: f64 },
}

/// Where a stream reset happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ResetAt {
    /// Instead of the response headers.
    #[default]
    BeforeHeaders,
    /// After sending 200 headers.
    AfterHeaders,
    /// After this many bytes of the request body arrived.
    AfterRequestBytes,
}

/// What a fired rule does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
pub enum Action {
    /// Answer with this status and the face's own error body (AVS exception
    /// JSON, OAuth error JSON), or `body` verbatim.
    Status {
        status: u16,
        /// OAuth `error` (LWA face) or AVS `payload.code` override.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        body: Option<String>,
    },
    /// Delay the answer, then answer normally: `ms` (fixed), `min_ms` +
    /// `max_ms` (uniform), or `median_ms` + `sigma` (log-normal).
    Delay {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ms: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        min_ms: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_ms: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        median_ms: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sigma: Option<f64>,
    },
    /// Never answer: hold the stream open.
    Hold,
    /// RST_STREAM with `code` (an HTTP/2 error code name) at `at`.
    Reset {
        #[serde(default = "cancel")]
        code: String,
        #[serde(default)]
        at: ResetAt,
        #[serde(default)]
        bytes: u64,
    },
    /// End the device's downchannel cleanly (END_STREAM).
    EndDownchannel,
    /// GOAWAY on the request's connection: graceful (NO_ERROR, drain) or abrupt with `code`.
    /// With `last_stream_id`, a raw GOAWAY frame carries exactly that id, and the
    /// connection is dropped after it.
    Goaway {
        #[serde(default = "no_error")]
        code: String,
        #[serde(default = "yes")]
        graceful: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        last_stream_id: Option<u32>,
    },
    /// Stop answering HTTP/2 PING frames on the connection.
    StopPingAcks,
    /// Send a new SETTINGS_MAX_CONCURRENT_STREAMS mid-connection.
    MaxConcurrentStreams { value: u32 },
    /// Revoke the device's tokens: this request and later ones get 403 until it refreshes.
    RevokeToken,
    /// As `revoke_token`, reported as expiry.
    ExpireToken,
    /// Reset the TCP connection (RST).
    TcpReset,
    /// Close the connection after this many more bytes from the simulator.
    CloseAfter { bytes: u64 },
    /// Delay every write to the device by `ms` plus up to `jitter_ms`.
    Latency {
        ms: u64,
        #[serde(default)]
        jitter_ms: u64,
    },
    /// Cap what the simulator sends to the device.
    Bandwidth { bytes_per_second: u64 },
    /// Move no bytes either way for `ms`.
    Stall { ms: u64 },
    /// Fail the TLS handshake (connection-level rules on TLS listeners).
    TlsFail,
    /// Answer slowly: the response body in `chunk_bytes` pieces, `every_ms` apart.
    Dribble { chunk_bytes: usize, every_ms: u64 },
    /// Cut the response body after `bytes` (the stream then ends).
    Truncate { bytes: usize },
    /// Read the request body without releasing flow-control window: uploads stall.
    WithholdWindowUpdate,
    /// Frame the downchannel the way some servers do and the AVS Device SDK
    /// cannot parse: `quoted_boundary` or `boundary_last` in the content-type.
    DirectiveFraming { style: FramingStyle },
}

/// A downchannel content-type variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FramingStyle {
    /// `boundary="B"`: the SDK keeps the quotes.
    QuotedBoundary,
    /// `...; boundary=B` last: the SDK's raw header line still ends in CRLF.
    BoundaryLast,
}

fn cancel() -> String {
    "CANCEL".into()
}
fn no_error() -> String {
    "NO_ERROR".into()
}
fn yes() -> bool {
    true
}

/// HTTP/2 error code names (RFC 9113 §7) and their values.
pub const REASONS: &[(&str, u32)] = &[
    ("NO_ERROR", 0x0),
    ("PROTOCOL_ERROR", 0x1),
    ("INTERNAL_ERROR", 0x2),
    ("FLOW_CONTROL_ERROR", 0x3),
    ("SETTINGS_TIMEOUT", 0x4),
    ("STREAM_CLOSED", 0x5),
    ("FRAME_SIZE_ERROR", 0x6),
    ("REFUSED_STREAM", 0x7),
    ("CANCEL", 0x8),
    ("COMPRESSION_ERROR", 0x9),
    ("CONNECT_ERROR", 0xa),
    ("ENHANCE_YOUR_CALM", 0xb),
    ("INADEQUATE_SECURITY", 0xc),
    ("HTTP_1_1_REQUIRED", 0xd),
];

/// The `h2::Reason` for a code name.
pub fn reason(name: &str) -> Option<h2::Reason> {
    REASONS
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| h2::Reason::from(*v))
}

impl Action {
    /// The distribution of a `delay` action.
    pub fn delay(&self) -> Option<Delay> {
        let Action::Delay {
            ms,
            min_ms,
            max_ms,
            median_ms,
            sigma,
        } = self
        else {
            return None;
        };
        match (ms, min_ms, max_ms, median_ms, sigma) {
            (Some(ms), None, None, None, None) => Some(Delay::Fixed { ms: *ms }),
            (None, Some(min_ms), Some(max_ms), None, None) => Some(Delay::Uniform {
                min_ms: *min_ms,
                max_ms: *max_ms,
            }),
            (None, None, None, Some(median_ms), Some(sigma)) => Some(Delay::LogNormal {
                median_ms: *median_ms,
                sigma: *sigma,
            }),
            _ => None,
        }
    }

    /// One line for the journal.
    pub fn describe(&self) -> String {
        match self {
            Action::Status { status, .. } => format!("answer {status}"),
            Action::Delay { .. } => match self.delay() {
                Some(d) => format!("delay ({d:?})"),
                None => "delay".into(),
            },
            Action::Hold => "hold the stream".into(),
            Action::Reset { code, at, bytes } => match at {
                ResetAt::AfterRequestBytes => format!("RST_STREAM {code} after {bytes} request bytes"),
                other => format!("RST_STREAM {code} {other:?}"),
            },
            Action::EndDownchannel => "end the downchannel".into(),
            Action::Goaway {
                code,
                graceful,
                last_stream_id,
            } => match last_stream_id {
                Some(id) => format!("GOAWAY {code} with last-stream-id {id}"),
                None => format!("GOAWAY {code} ({})", if *graceful { "graceful" } else { "abrupt" }),
            },
            Action::StopPingAcks => "stop answering PING frames".into(),
            Action::MaxConcurrentStreams { value } => format!("SETTINGS_MAX_CONCURRENT_STREAMS {value}"),
            Action::RevokeToken => "revoke the token".into(),
            Action::ExpireToken => "expire the token".into(),
            Action::TcpReset => "reset the TCP connection".into(),
            Action::CloseAfter { bytes } => format!("close the connection after {bytes} bytes"),
            Action::Latency { ms, jitter_ms } => format!("add {ms} ms latency (+ up to {jitter_ms} ms jitter)"),
            Action::Bandwidth { bytes_per_second } => format!("cap bandwidth at {bytes_per_second} bytes/s"),
            Action::Stall { ms } => format!("stall the connection for {ms} ms"),
            Action::TlsFail => "fail the TLS handshake".into(),
            Action::Dribble { chunk_bytes, every_ms } => {
                format!("dribble the answer, {chunk_bytes} bytes every {every_ms} ms")
            }
            Action::Truncate { bytes } => format!("truncate the answer after {bytes} bytes"),
            Action::WithholdWindowUpdate => "withhold WINDOW_UPDATE".into(),
            Action::DirectiveFraming { style } => format!("frame the downchannel with {style:?}"),
        }
    }
}

/// Allowed ranges of every number in a rule, checked at all three doors
/// (config `[[faults]]`, the control API, scenario `fault` steps) by
/// [`Rule::validate`] and [`Action::validate`]. They keep every duration,
/// deadline and sample a rule can produce far from overflow, so applying a
/// rule never panics.
pub mod limits {
    /// Longest duration any action may ask for (delays, latency, jitter,
    /// stalls, dribble intervals): one hour.
    pub const MAX_MS: u64 = 3_600_000;
    /// Largest log-normal `sigma`.
    pub const MAX_SIGMA: f64 = 10.0;
    /// Largest byte count (`close_after`, `reset` after bytes, `truncate`,
    /// `dribble` chunks): 1 TiB.
    pub const MAX_BYTES: u64 = 1 << 40;
    /// Fastest `bandwidth` cap: 10 GB/s.
    pub const MAX_BYTES_PER_SECOND: u64 = 10_000_000_000;
    /// Largest HTTP/2 stream identifier (31 bits, RFC 9113 §5.1.1).
    pub const MAX_STREAM_ID: u32 = (1 << 31) - 1;
    /// Latest `when.after` / `when.until`: 30 days.
    pub const MAX_WINDOW_MS: u64 = 30 * 24 * 3_600_000;
}

/// `field` must lie in `lo..=hi`.
fn in_range<T: PartialOrd + std::fmt::Display>(field: &str, v: T, lo: T, hi: T) -> Result<(), String> {
    if v < lo || v > hi {
        return Err(format!("{field} must be in {lo}..={hi}, got {v}"));
    }
    Ok(())
}

/// `field` must be a finite number in `lo..=hi` (NaN and infinities fail).
fn finite_in(field: &str, v: f64, lo: f64, hi: f64) -> Result<(), String> {
    if !v.is_finite() || v < lo || v > hi {
        // `{:?}` keeps 1e308 short (Display would print 309 digits).
        return Err(format!("{field} must be a finite number in {lo}..={hi}, got {v:?}"));
    }
    Ok(())
}

fn ms(field: &str, v: u64) -> Result<(), String> {
    in_range(field, v, 0, limits::MAX_MS)
}

fn bytes(field: &str, v: u64) -> Result<(), String> {
    in_range(field, v, 0, limits::MAX_BYTES)
}

impl When {
    /// Range-check every number of the matcher (see [`limits`]).
    pub fn validate(&self) -> Result<(), String> {
        if let Some(p) = self.probability {
            finite_in("when.probability", p, 0.0, 1.0)?;
        }
        if let Some(n) = self.nth {
            in_range("when.nth", n, 1, u32::MAX)?;
        }
        if let Some(n) = self.connection {
            in_range("when.connection", n, 1, u64::MAX)?;
        }
        if let Some(n) = self.stream {
            in_range("when.stream", n, 1, u32::MAX)?;
        }
        let window = |field: &str, d: &Option<Dur>| match d {
            Some(d) => {
                in_range(field, crate::clock::as_ms(d.0), 0, limits::MAX_WINDOW_MS).map_err(|e| format!("{e} ms"))
            }
            None => Ok(()),
        };
        window("when.after", &self.after)?;
        window("when.until", &self.until)?;
        if let (Some(a), Some(u)) = (self.after, self.until) {
            if a.0 >= u.0 {
                return Err(format!(
                    "when.after ({}) must be before when.until ({})",
                    crate::duration::format(a.0),
                    crate::duration::format(u.0)
                ));
            }
        }
        Ok(())
    }
}

impl Action {
    /// Range-check every number of the action (see [`limits`]); also
    /// statuses, code names and the delay's shape. Field names are given as
    /// `then.<field>`.
    pub fn validate(&self) -> Result<(), String> {
        match self {
            Action::Status { status, .. } => {
                in_range("then.status", *status, 100, 599).map_err(|e| format!("{e}: not an HTTP status"))
            }
            Action::Delay {
                ms: fixed,
                min_ms,
                max_ms,
                median_ms,
                sigma,
            } => {
                let Some(shape) = self.delay() else {
                    return Err("a delay needs `ms` (fixed), `min_ms` and `max_ms` (uniform), or `median_ms` and `sigma` (log-normal)".into());
                };
                for (field, v) in [
                    ("then.ms", fixed),
                    ("then.min_ms", min_ms),
                    ("then.max_ms", max_ms),
                    ("then.median_ms", median_ms),
                ] {
                    if let Some(v) = v {
                        ms(field, *v)?;
                    }
                }
                if let Some(s) = sigma {
                    finite_in("then.sigma", *s, 0.0, limits::MAX_SIGMA)?;
                }
                if let Delay::Uniform { min_ms, max_ms } = shape {
                    if min_ms > max_ms {
                        return Err(format!("then.min_ms ({min_ms}) must not exceed then.max_ms ({max_ms})"));
                    }
                }
                Ok(())
            }
            Action::Reset { code, bytes: b, .. } => {
                code_name(code)?;
                bytes("then.bytes", *b)
            }
            Action::Goaway {
                code, last_stream_id, ..
            } => {
                code_name(code)?;
                match last_stream_id {
                    Some(id) => in_range("then.last_stream_id", *id, 0, limits::MAX_STREAM_ID),
                    None => Ok(()),
                }
            }
            // Any u32 is a legal SETTINGS_MAX_CONCURRENT_STREAMS value (RFC 9113 §6.5.2).
            Action::MaxConcurrentStreams { .. } => Ok(()),
            Action::CloseAfter { bytes: b } => bytes("then.bytes", *b),
            Action::Latency { ms: l, jitter_ms } => {
                ms("then.ms", *l)?;
                ms("then.jitter_ms", *jitter_ms)
            }
            Action::Bandwidth { bytes_per_second } => in_range(
                "then.bytes_per_second",
                *bytes_per_second,
                1,
                limits::MAX_BYTES_PER_SECOND,
            ),
            Action::Stall { ms: s } => ms("then.ms", *s),
            Action::Dribble { chunk_bytes, every_ms } => {
                in_range("then.chunk_bytes", *chunk_bytes as u64, 1, limits::MAX_BYTES)?;
                ms("then.every_ms", *every_ms)
            }
            Action::Truncate { bytes: b } => bytes("then.bytes", *b as u64),
            Action::Hold
            | Action::EndDownchannel
            | Action::StopPingAcks
            | Action::RevokeToken
            | Action::ExpireToken
            | Action::TcpReset
            | Action::TlsFail
            | Action::WithholdWindowUpdate
            | Action::DirectiveFraming { .. } => Ok(()),
        }
    }
}

fn code_name(code: &str) -> Result<(), String> {
    match reason(code) {
        Some(_) => Ok(()),
        None => Err(format!(
            "then.code {code:?} is not an HTTP/2 error code ({})",
            REASONS.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
        )),
    }
}

impl Rule {
    /// Check what serde cannot: every number against [`limits`], code
    /// names, statuses. The one check all three doors call.
    pub fn validate(&self) -> Result<(), String> {
        self.when.validate()?;
        if let Some(t) = self.times {
            in_range("times", t, 1, u32::MAX)?;
        }
        self.then.validate()?;
        self.fits_face()
    }

    /// A skill invocation is not an HTTP/2 stream: only answering with an
    /// error status, delaying and never answering make sense there.
    fn fits_face(&self) -> Result<(), String> {
        let skill_ok = matches!(self.then, Action::Status { .. } | Action::Delay { .. } | Action::Hold);
        if self.when.face == Some(Face::Skill) && !skill_ok {
            return Err(format!(
                "then.action {:?} does not apply to face \"skill\" (status, delay or hold do)",
                self.then.describe()
            ));
        }
        if self.when.face == Some(Face::Asp) && !matches!(self.then, Action::Status { .. }) {
            return Err(format!(
                "then.action {:?} does not apply to face \"asp\" (status makes an activation fail)",
                self.then.describe()
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_action_parses_from_toml_and_json() {
        let cases = [
            (
                "action = 'status'\nstatus = 503",
                Action::Status {
                    status: 503,
                    error: None,
                    body: None,
                },
            ),
            (
                "action = 'delay'\nms = 100",
                Action::Delay {
                    ms: Some(100),
                    min_ms: None,
                    max_ms: None,
                    median_ms: None,
                    sigma: None,
                },
            ),
            (
                "action = 'delay'\nmedian_ms = 100\nsigma = 0.5",
                Action::Delay {
                    ms: None,
                    min_ms: None,
                    max_ms: None,
                    median_ms: Some(100),
                    sigma: Some(0.5),
                },
            ),
            ("action = 'hold'", Action::Hold),
            (
                "action = 'reset'\ncode = 'REFUSED_STREAM'\nat = 'after_request_bytes'\nbytes = 100",
                Action::Reset {
                    code: "REFUSED_STREAM".into(),
                    at: ResetAt::AfterRequestBytes,
                    bytes: 100,
                },
            ),
            ("action = 'end_downchannel'", Action::EndDownchannel),
            (
                "action = 'goaway'\ngraceful = false\ncode = 'ENHANCE_YOUR_CALM'",
                Action::Goaway {
                    code: "ENHANCE_YOUR_CALM".into(),
                    graceful: false,
                    last_stream_id: None,
                },
            ),
            ("action = 'stop_ping_acks'", Action::StopPingAcks),
            (
                "action = 'max_concurrent_streams'\nvalue = 1",
                Action::MaxConcurrentStreams { value: 1 },
            ),
            ("action = 'revoke_token'", Action::RevokeToken),
            ("action = 'tcp_reset'", Action::TcpReset),
            ("action = 'close_after'\nbytes = 10", Action::CloseAfter { bytes: 10 }),
            (
                "action = 'latency'\nms = 50\njitter_ms = 10",
                Action::Latency { ms: 50, jitter_ms: 10 },
            ),
            (
                "action = 'bandwidth'\nbytes_per_second = 1000",
                Action::Bandwidth { bytes_per_second: 1000 },
            ),
            ("action = 'stall'\nms = 100", Action::Stall { ms: 100 }),
            ("action = 'tls_fail'", Action::TlsFail),
        ];
        for (text, want) in cases {
            let got: Action = toml::from_str(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(got, want);
            let json = serde_json::to_value(&got).unwrap();
            assert_eq!(serde_json::from_value::<Action>(json).unwrap(), want);
        }
        assert!(
            toml::from_str::<Action>("action = 'status'\nstatus = 503\nstatsu = 1").is_err(),
            "unknown keys are refused"
        );
        assert!(toml::from_str::<Action>("action = 'explode'").is_err());
    }

    #[test]
    fn validation_names_the_problem() {
        let r: Rule = toml::from_str("[when]\nprobability = 2.0\n[then]\naction = 'hold'").unwrap();
        assert!(r.validate().unwrap_err().contains("probability"));
        let r: Rule = toml::from_str("[then]\naction = 'reset'\ncode = 'OOPS'").unwrap();
        assert!(r.validate().unwrap_err().contains("not an HTTP/2 error code"));
        assert_eq!(reason("cancel"), Some(h2::Reason::CANCEL));
        let r: Rule = toml::from_str("[then]\naction = 'delay'\nms = 5\nsigma = 1.0").unwrap();
        assert!(r.validate().unwrap_err().contains("a delay needs"));
        let r: Rule = toml::from_str("[then]\naction = 'delay'\nmin_ms = 5\nmax_ms = 9").unwrap();
        assert_eq!(r.then.delay(), Some(Delay::Uniform { min_ms: 5, max_ms: 9 }));
    }

    fn invalid(text: &str) -> String {
        let json: serde_json::Value = serde_json::from_str(text).unwrap();
        let rule: Rule = serde_json::from_value(json).unwrap_or_else(|e| panic!("{text}: {e}"));
        rule.validate().expect_err(text)
    }

    #[test]
    fn every_number_is_range_checked_and_named() {
        assert_eq!(
            invalid(r#"{"then":{"action":"delay","median_ms":100,"sigma":1e308}}"#),
            "then.sigma must be a finite number in 0..=10, got 1e308"
        );
        let cases = [
            (
                r#"{"then":{"action":"delay","median_ms":100,"sigma":-1}}"#,
                "then.sigma",
            ),
            (
                r#"{"then":{"action":"delay","median_ms":18446744073709551615,"sigma":1}}"#,
                "then.median_ms must be in 0..=3600000",
            ),
            (
                r#"{"then":{"action":"delay","ms":3600001}}"#,
                "then.ms must be in 0..=3600000, got 3600001",
            ),
            (
                r#"{"then":{"action":"delay","min_ms":5,"max_ms":99999999}}"#,
                "then.max_ms",
            ),
            (
                r#"{"then":{"action":"delay","min_ms":9,"max_ms":5}}"#,
                "then.min_ms (9) must not exceed then.max_ms (5)",
            ),
            (r#"{"then":{"action":"latency","ms":18446744073709551615}}"#, "then.ms"),
            (
                r#"{"then":{"action":"latency","ms":1,"jitter_ms":18446744073709551615}}"#,
                "then.jitter_ms",
            ),
            (r#"{"then":{"action":"stall","ms":18446744073709551615}}"#, "then.ms"),
            (
                r#"{"then":{"action":"bandwidth","bytes_per_second":0}}"#,
                "then.bytes_per_second must be in 1..=",
            ),
            (
                r#"{"then":{"action":"dribble","chunk_bytes":0,"every_ms":1}}"#,
                "then.chunk_bytes",
            ),
            (
                r#"{"then":{"action":"dribble","chunk_bytes":1,"every_ms":18446744073709551615}}"#,
                "then.every_ms",
            ),
            (
                r#"{"then":{"action":"close_after","bytes":18446744073709551615}}"#,
                "then.bytes",
            ),
            (
                r#"{"then":{"action":"truncate","bytes":18446744073709551615}}"#,
                "then.bytes",
            ),
            (
                r#"{"then":{"action":"reset","at":"after_request_bytes","bytes":18446744073709551615}}"#,
                "then.bytes",
            ),
            (
                r#"{"then":{"action":"goaway","last_stream_id":4294967295}}"#,
                "then.last_stream_id must be in 0..=2147483647",
            ),
            (r#"{"then":{"action":"status","status":1000}}"#, "then.status"),
            (
                r#"{"when":{"probability":1.5},"then":{"action":"hold"}}"#,
                "when.probability must be a finite number in 0..=1, got 1.5",
            ),
            (
                r#"{"when":{"nth":0},"then":{"action":"hold"}}"#,
                "when.nth must be in 1..",
            ),
            (
                r#"{"when":{"connection":0},"then":{"action":"hold"}}"#,
                "when.connection",
            ),
            (r#"{"when":{"stream":0},"then":{"action":"hold"}}"#, "when.stream"),
            (r#"{"times":0,"then":{"action":"hold"}}"#, "times must be in 1.."),
            (
                r#"{"when":{"after":"10s","until":"5s"},"then":{"action":"hold"}}"#,
                "when.after (10s) must be before when.until (5s)",
            ),
        ];
        // Too long a window is refused already when the duration is read.
        let long = serde_json::from_str::<Rule>(r#"{"when":{"until":"9999h"},"then":{"action":"hold"}}"#);
        assert!(long.unwrap_err().to_string().contains("at most 720h"));
        for (text, want) in cases {
            let got = invalid(text);
            assert!(got.contains(want), "{text}: {got:?} should contain {want:?}");
        }
        let nan: Rule = toml::from_str("[when]\nprobability = nan\n[then]\naction = 'hold'").unwrap();
        assert!(
            nan.validate()
                .unwrap_err()
                .contains("when.probability must be a finite number")
        );
    }

    #[test]
    fn the_largest_allowed_values_fire_without_panicking() {
        let f = super::super::Faults::new(1);
        for text in [
            r#"{"then":{"action":"delay","median_ms":3600000,"sigma":10}}"#,
            r#"{"then":{"action":"delay","min_ms":0,"max_ms":3600000}}"#,
        ] {
            let rule: Rule = serde_json::from_str(text).unwrap();
            let id = f.add(rule).unwrap();
            let point = super::super::Point {
                face: Face::Avs,
                device: Some("d"),
                path: "/ping",
                event: None,
                connection: Some(1),
                stream: Some(1),
            };
            for _ in 0..200 {
                let fired = f.decide(&point).unwrap();
                let Some(Delay::Fixed { ms }) = fired.action.delay() else {
                    panic!("a fired delay is resolved to a fixed one")
                };
                assert!(ms <= limits::MAX_MS, "{ms}");
            }
            f.remove(&id);
        }
    }
}
