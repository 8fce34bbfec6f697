//! Test support for avs-sim's black-box tests: start the simulator on port
//! 0, talk to it like a device does (`device`), read `multipart/related`
//! answers (`related`), call the control API, and drive the real binary.

pub mod binary;
pub mod device;
pub mod gateway;
pub mod raw;
pub mod related;
pub mod skill;
pub mod sns;

use avs_sim::Config;
use serde_json::Value;
use std::path::PathBuf;
use std::time::Duration;

/// How long a test waits for anything before failing.
/// The fenced code blocks of `lang` in a Markdown `text` after the heading
/// `section` (up to the next `## ` heading): the README's examples, which
/// tests run as written.
pub fn readme_blocks(text: &str, section: &str, lang: &str) -> Vec<String> {
    let start = text.find(section).unwrap_or_else(|| panic!("no section {section:?}"));
    let rest = &text[start + section.len()..];
    let rest = &rest[..rest.find("\n## ").unwrap_or(rest.len())];
    let fence = format!("```{lang}\n");
    rest.split(fence.as_str())
        .skip(1)
        .map(|b| b[..b.find("```").expect("closed block")].to_string())
        .collect()
}

pub const DEADLINE: Duration = Duration::from_secs(10);

/// A fresh directory under the system temp dir.
pub fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("avs-sim-{tag}-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

/// A simulator running in this process on port 0.
pub struct TestSim {
    pub handle: avs_sim::SimHandle,
    pub http: reqwest::Client,
}

impl TestSim {
    /// Start with defaults changed by `tweak` (listeners always on port 0).
    pub async fn start(tweak: impl FnOnce(&mut Config)) -> TestSim {
        let mut config = Config::default();
        let any = "127.0.0.1:0".parse().unwrap();
        config.listen.avs = any;
        config.listen.plain = any;
        config.listen.control = any;
        config.certs.dir = temp_dir("certs");
        tweak(&mut config);
        let handle = avs_sim::spawn(config).await.expect("simulator starts");
        TestSim {
            handle,
            http: reqwest::Client::new(),
        }
    }

    pub fn control(&self, path: &str) -> String {
        format!("http://{}{path}", self.handle.addrs.control)
    }

    /// A device client over TLS (ALPN h2), trusting the generated CA.
    pub async fn tls_device(&self, token: &str) -> device::Device {
        device::Device::tls(self.handle.addrs.avs, &self.handle.ca, token)
            .await
            .expect("TLS device connects")
    }

    /// A TLS device with its downchannel open (status 200 checked).
    pub async fn connected(&self, token: &str) -> (device::Device, device::Downchannel) {
        let mut dev = self.tls_device(token).await;
        let dc = dev.downchannel().await.expect("downchannel opens");
        assert_eq!(dc.status, 200, "downchannel of {token}");
        (dev, dc)
    }

    /// A device client over h2c prior knowledge.
    pub async fn h2c_device(&self, token: &str) -> device::Device {
        device::Device::h2c(self.handle.addrs.plain, token)
            .await
            .expect("h2c device connects")
    }

    /// `POST /api/devices/{id}/directives`: (status, JSON body).
    pub async fn push(&self, device: &str, body: Value) -> (u16, Value) {
        let resp = self
            .http
            .post(self.control(&format!("/api/devices/{device}/directives")))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// Push a System directive with an empty payload; it must be accepted (202).
    pub async fn push_system(&self, device: &str, name: &str) -> Value {
        let (status, body) = self
            .push(device, serde_json::json!({"namespace": "System", "name": name}))
            .await;
        assert_eq!(status, 202, "push {name} to {device}: {body}");
        body
    }

    /// `GET` a control path as JSON.
    pub async fn get(&self, path: &str) -> (u16, Value) {
        let resp = self.http.get(self.control(path)).send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// Wait (long-polling the control API) until a journal entry matching
    /// `pred` exists among those with `device`; returns it.
    pub async fn await_entry(&self, device: Option<&str>, mut pred: impl FnMut(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + DEADLINE;
        let mut since = 0u64;
        loop {
            let mut path = format!("/api/journal?since={since}&wait=2s");
            if let Some(d) = device {
                path.push_str(&format!("&device={d}"));
            }
            let (_, body) = self.get(&path).await;
            for e in body["entries"].as_array().cloned().unwrap_or_default() {
                since = since.max(e["id"].as_u64().unwrap_or(0));
                if pred(&e) {
                    return e;
                }
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no journal entry matched within {DEADLINE:?}"
            );
        }
    }

    /// `POST /api/faults`: the rule must be accepted (201); its id.
    pub async fn add_fault(&self, rule: Value) -> String {
        let resp = self
            .http
            .post(self.control("/api/faults"))
            .json(&rule)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 201, "{rule}");
        resp.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string()
    }

    /// `POST /api/devices/{id}/faults`: apply `action` now; the status.
    pub async fn fault_now(&self, device: &str, action: Value) -> u16 {
        let resp = self
            .http
            .post(self.control(&format!("/api/devices/{device}/faults")))
            .json(&action)
            .send()
            .await
            .unwrap();
        resp.status().as_u16()
    }

    /// The verdict of one conformance rule of a device.
    pub async fn verdict(&self, device: &str, rule: &str) -> (String, Value) {
        let (status, body) = self.get(&format!("/api/devices/{device}/conformance")).await;
        assert_eq!(status, 200, "{body}");
        let r = body["rules"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["rule"] == rule)
            .cloned()
            .unwrap();
        (r["verdict"].as_str().unwrap().to_string(), r)
    }

    pub async fn stop(self) {
        self.handle.stop().await;
    }
}

/// An event metadata document.
pub fn event(namespace: &str, name: &str, payload: Value) -> Value {
    serde_json::json!({
        "context": [],
        "event": {
            "header": {"namespace": namespace, "name": name, "messageId": uuid::Uuid::new_v4().to_string()},
            "payload": payload,
        }
    })
}
