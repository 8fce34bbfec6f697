//! What the reference device does on one connection, in the order the SDK
//! does it: capabilities, downchannel, SynchronizeState, then a `select!`
//! over directives, the ping timer, the inactivity timer and the
//! connection's end.

use super::transport::{Downchannel, Transport};
use super::{DeviceArgs, Misbehave, Next};
use crate::avs::multipart::form;
use bytes::Bytes;
use http::Method;
use serde_json::{Value, json};
use tokio::time::Instant;

/// The SDK's event boundary.
const BOUNDARY: &str = "WhooHooZeerOoonie!";

/// The device's state across connections.
pub struct Device {
    args: DeviceArgs,
    token: String,
    capabilities_sent: bool,
    /// The last user activity (reset by ResetUserInactivity).
    last_activity: Instant,
    /// The messageId reused by `--misbehave duplicate-message-ids`.
    fixed_id: String,
    /// A SoftwareInfo the cloud has not accepted yet: the SDK retries it
    /// with backoff until it gets 200/204 (SoftwareInfoSendRequest.cpp).
    software_info_owed: bool,
    software_info_failures: usize,
    software_info_retry: Option<Instant>,
}

impl Device {
    pub fn new(args: DeviceArgs) -> Device {
        let token = if args.refresh_token.is_some() {
            String::new()
        } else {
            args.token.clone()
        };
        Device {
            args,
            token,
            capabilities_sent: false,
            last_activity: Instant::now(),
            fixed_id: uuid::Uuid::new_v4().to_string(),
            software_info_owed: false,
            software_info_failures: 0,
            software_info_retry: None,
        }
    }

    fn misbehaves(&self, m: Misbehave) -> bool {
        self.args.misbehave == Some(m)
    }

    pub fn needs_token(&self) -> bool {
        self.token.is_empty()
    }

    pub fn forget_token(&mut self) {
        if self.args.refresh_token.is_some() {
            self.token.clear();
        }
    }

    /// LWA refresh grant against the same host (as the simulator serves LWA there).
    pub async fn refresh(&mut self, endpoint: &str) -> anyhow::Result<()> {
        let rt = self.args.refresh_token.clone().unwrap_or_default();
        let mut t = Transport::connect(endpoint, self.args.ca.as_deref(), self.args.h2c).await?;
        let body = format!(
            "grant_type=refresh_token&refresh_token={}&client_id=avs-sim-device",
            urlencode(&rt)
        );
        let a = t
            .call(
                Method::POST,
                "/auth/O2/token",
                "",
                Some("application/x-www-form-urlencoded"),
                Bytes::from(body),
            )
            .await?;
        let doc: Value = serde_json::from_slice(&a.body).unwrap_or_default();
        anyhow::ensure!(a.status == 200, "LWA answered {}: {doc}", a.status);
        anyhow::ensure!(
            doc["token_type"] == "bearer",
            "token_type is not lowercase bearer: {doc}"
        );
        self.token = doc["access_token"].as_str().unwrap_or_default().to_string();
        println!("device: LWA refresh ok, expires_in {}", doc["expires_in"]);
        Ok(())
    }

    fn event(&self, namespace: &str, name: &str, payload: Value, context: Option<Value>) -> Value {
        let id = if self.misbehaves(Misbehave::DuplicateMessageIds) {
            self.fixed_id.clone()
        } else {
            uuid::Uuid::new_v4().to_string()
        };
        let mut doc =
            json!({"event": {"header": {"namespace": namespace, "name": name, "messageId": id}, "payload": payload}});
        if let Some(c) = context {
            doc["context"] = c;
        }
        doc
    }

    fn context(&self) -> Value {
        json!([
            {"header": {"namespace": "Speaker", "name": "VolumeState"}, "payload": {"volume": 50, "muted": false}},
            {"header": {"namespace": "SpeechSynthesizer", "name": "SpeechState"}, "payload": {"token": "", "offsetInMilliseconds": 0, "playerActivity": "FINISHED"}}
        ])
    }

    async fn send(&self, t: &mut Transport, doc: &Value) -> anyhow::Result<u16> {
        let name = format!(
            "{}.{}",
            doc["event"]["header"]["namespace"].as_str().unwrap_or("?"),
            doc["event"]["header"]["name"].as_str().unwrap_or("?")
        );
        let body = form::event_body(BOUNDARY, doc.to_string().as_bytes(), None);
        let ct = format!("multipart/form-data; boundary={BOUNDARY}");
        let a = t
            .call(Method::POST, "/v20160207/events", &self.token, Some(&ct), body)
            .await?;
        println!("device: sent {name} -> {}", a.status);
        Ok(a.status)
    }

    async fn declare_capabilities(&mut self, t: &mut Transport) -> anyhow::Result<()> {
        if self.capabilities_sent {
            return Ok(());
        }
        let system = if self.misbehaves(Misbehave::DeclareSystem10) {
            "1.0"
        } else {
            "1.1"
        };
        let caps = json!({"envelopeVersion": "20160207", "capabilities": [
            {"type": "AlexaInterface", "interface": "System", "version": system},
            {"type": "AlexaInterface", "interface": "SpeechRecognizer", "version": "2.1"},
            {"type": "AlexaInterface", "interface": "SpeechSynthesizer", "version": "1.3"},
            {"type": "AlexaInterface", "interface": "Speaker", "version": "1.0"}]});
        let a = t
            .call(
                Method::PUT,
                "/v1/devices/@self/capabilities",
                &self.token,
                Some("application/json"),
                Bytes::from(caps.to_string()),
            )
            .await?;
        println!("device: capabilities -> {}", a.status);
        self.capabilities_sent = a.status == 204;
        Ok(())
    }

    /// One connection's life.
    pub async fn session(&mut self, endpoint: &str) -> anyhow::Result<Next> {
        let mut t = Transport::connect(endpoint, self.args.ca.as_deref(), self.args.h2c).await?;
        println!("device: connected to {endpoint}");
        self.declare_capabilities(&mut t).await?;
        if self.misbehaves(Misbehave::EventsBeforeDownchannel) {
            let sync = self.event("System", "SynchronizeState", json!({}), Some(self.context()));
            self.send(&mut t, &sync).await?;
        }
        let (status, dc) = t.downchannel(&self.token).await?;
        if status == 403 {
            return Ok(Next::Refresh);
        }
        let Some(mut dc) = dc else {
            return Ok(Next::Reconnect(format!("downchannel answered {status}")));
        };
        println!("device: downchannel open");
        if !self.misbehaves(Misbehave::SkipSynchronizeState) && !self.misbehaves(Misbehave::EventsBeforeDownchannel) {
            let sync = self.event("System", "SynchronizeState", json!({}), Some(self.context()));
            match self.send(&mut t, &sync).await? {
                200 | 204 => {}
                403 => return Ok(Next::Refresh),
                // The SDK retries SynchronizeState with backoff (PostConnectSynchronizer).
                other => return Ok(Next::Backoff(format!("SynchronizeState answered {other}"))),
            }
        }
        self.serve(&mut t, &mut dc).await
    }

    /// Send the owed SoftwareInfo; on failure schedule a retry with backoff.
    /// A reset event stream fails that event only, not the connection.
    async fn send_software_info(&mut self, t: &mut Transport) -> anyhow::Result<Option<Next>> {
        let fw = if self.misbehaves(Misbehave::BadFirmwareVersion) {
            "0".to_string()
        } else {
            self.args.firmware.clone()
        };
        let ev = self.event("System", "SoftwareInfo", json!({"firmwareVersion": fw}), None);
        match self.send(t, &ev).await {
            Ok(200 | 204) => {
                self.software_info_owed = false;
                self.software_info_failures = 0;
                self.software_info_retry = None;
                Ok(None)
            }
            Ok(403) => Ok(Some(Next::Refresh)),
            Ok(_) | Err(_) if !t.is_closed() => {
                self.software_info_failures += 1;
                let wait = super::backoff(self.software_info_failures - 1);
                self.software_info_retry = Some(Instant::now() + wait);
                println!("device: SoftwareInfo failed; retrying in {wait:?}");
                Ok(None)
            }
            Ok(status) => Ok(Some(Next::Reconnect(format!("SoftwareInfo answered {status}")))),
            Err(e) => Err(e),
        }
    }

    async fn serve(&mut self, t: &mut Transport, dc: &mut Downchannel) -> anyhow::Result<Next> {
        let mut last_io = Instant::now();
        let mut next_report = self.last_activity + self.args.inactivity_interval;
        if self.software_info_owed {
            if let Some(next) = self.send_software_info(t).await? {
                return Ok(next);
            }
        }
        loop {
            let ping_at = last_io + self.args.ping_interval;
            let retry_at = self.software_info_retry.unwrap_or(ping_at);
            tokio::select! {
                _ = tokio::time::sleep_until(retry_at), if self.software_info_retry.is_some() => {
                    self.software_info_retry = None;
                    if let Some(next) = self.send_software_info(t).await? {
                        return Ok(next);
                    }
                }
                part = dc.next() => {
                    last_io = Instant::now();
                    match part? {
                        Some(body) => {
                            if let Some(next) = self.directive(t, body).await? {
                                return Ok(next);
                            }
                            next_report = next_report.max(self.last_activity + self.args.inactivity_interval);
                        }
                        None => return Ok(Next::Reconnect("the downchannel ended".into())),
                    }
                }
                _ = tokio::time::sleep_until(ping_at), if !self.misbehaves(Misbehave::NoPing) => {
                    let ping = t.call(Method::GET, "/ping", &self.token, None, Bytes::new());
                    let Ok(a) = tokio::time::timeout(self.args.ping_timeout, ping).await else {
                        return Ok(Next::Reconnect("ping timed out".into()));
                    };
                    let a = a?;
                    last_io = Instant::now();
                    match a.status {
                        204 => println!("device: ping -> 204"),
                        403 => return Ok(Next::Refresh),
                        other => return Ok(Next::Reconnect(format!("ping answered {other}"))),
                    }
                }
                _ = tokio::time::sleep_until(next_report), if !self.misbehaves(Misbehave::NoInactivityReport) => {
                    let secs = self.last_activity.elapsed().as_secs();
                    let ev = self.event("System", "UserInactivityReport", json!({"inactiveTimeInSeconds": secs}), None);
                    if self.send(t, &ev).await? == 403 {
                        return Ok(Next::Refresh);
                    }
                    last_io = Instant::now();
                    next_report = Instant::now() + self.args.inactivity_interval;
                }
                _ = &mut t.closed => return Ok(Next::Reconnect("the connection closed (GOAWAY)".into())),
            }
        }
    }

    /// Act on one directive part; `Some` ends the session.
    async fn directive(&mut self, t: &mut Transport, body: Vec<u8>) -> anyhow::Result<Option<Next>> {
        let text = String::from_utf8_lossy(&body).into_owned();
        let doc: Option<Value> = serde_json::from_slice(&body).ok();
        let header = doc
            .as_ref()
            .map(|d| &d["directive"]["header"])
            .filter(|h| h["namespace"].is_string() && h["name"].is_string() && h["messageId"].is_string());
        let Some(header) = header else {
            println!("device: received a malformed directive: {text}");
            if self.misbehaves(Misbehave::NoException) {
                return Ok(None);
            }
            let unparsed = if self.misbehaves(Misbehave::WrongUnparsedDirective) {
                format!("{text} ")
            } else {
                text
            };
            let payload = json!({"unparsedDirective": unparsed, "error": {"type": "UNEXPECTED_INFORMATION_RECEIVED", "message": "directive is not valid JSON or lacks header fields"}});
            let ev = self.event("System", "ExceptionEncountered", payload, Some(self.context()));
            return Ok((self.send(t, &ev).await? == 403).then_some(Next::Refresh));
        };
        let name = format!(
            "{}.{}",
            header["namespace"].as_str().unwrap_or(""),
            header["name"].as_str().unwrap_or("")
        );
        println!("device: received {name}");
        let payload = doc
            .as_ref()
            .map(|d| d["directive"]["payload"].clone())
            .unwrap_or_default();
        match name.as_str() {
            "System.ReportSoftwareInfo" if !self.misbehaves(Misbehave::NoSoftwareInfo) => {
                self.software_info_owed = true;
                self.software_info_failures = 0;
                return self.send_software_info(t).await;
            }
            "System.ResetUserInactivity" if !self.misbehaves(Misbehave::IgnoreResetInactivity) => {
                self.last_activity = Instant::now();
            }
            "System.SetEndpoint" if !self.misbehaves(Misbehave::IgnoreSetEndpoint) => {
                if let Some(url) = payload["endpoint"].as_str() {
                    let url = if url.contains("://") {
                        url.to_string()
                    } else {
                        format!("https://{url}")
                    };
                    return Ok(Some(Next::MoveTo(url)));
                }
            }
            _ => {}
        }
        Ok(None)
    }
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
