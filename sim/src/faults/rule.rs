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

impl Rule {
    /// Check what serde cannot: probabilities, code names, statuses.
    pub fn validate(&self) -> Result<(), String> {
        if let Some(p) = self.when.probability {
            if !(0.0..=1.0).contains(&p) {
                return Err(format!("when.probability {p} must be between 0 and 1"));
            }
        }
        if self.when.nth == Some(0) || self.when.connection == Some(0) {
            return Err("when.nth and when.connection count from 1".into());
        }
        match &self.then {
            Action::Status { status, .. } if !(100..=599).contains(status) => {
                Err(format!("then.status {status} is not an HTTP status"))
            }
            Action::Delay { .. } if self.then.delay().is_none() => Err(
                "a delay needs `ms` (fixed), `min_ms` and `max_ms` (uniform), or `median_ms` and `sigma` (log-normal)"
                    .into(),
            ),
            Action::Reset { code, .. } | Action::Goaway { code, .. } if reason(code).is_none() => Err(format!(
                "then.code {code:?} is not an HTTP/2 error code ({})",
                REASONS.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
            )),
            _ => Ok(()),
        }
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
}
