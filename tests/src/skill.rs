//! The sample smart home skill (`scenarios/skills/sample_skill.py`) as a
//! test fixture: declare it in a config as a `command` skill or as a `url`
//! skill (a `--serve` process this module starts and stops), and call the
//! control routes that make Alexa talk to it.

use crate::{DEADLINE, TestSim};
use avs_sim::Config;
use avs_sim::smarthome::{SkillDecl, UserDecl};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};

/// The sample skill's script, absolute.
pub fn path() -> PathBuf {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scenarios/skills/sample_skill.py");
    p.canonicalize().unwrap_or(p)
}

/// The token Alexa puts in the scope of `user`'s directives.
pub fn user_token(user: &str) -> String {
    format!("user-token-{user}")
}

/// The `[[users]] gateway_token` of `user`: the sample skill uses it at
/// the gateway when given `--gateway-token`.
pub fn gateway_token(user: &str) -> String {
    format!("gateway-token-{user}")
}

/// Declare skill `id`, run as `python3 sample_skill.py <flags>`, and user
/// `id` who enabled it.
pub fn command(config: &mut Config, id: &str, flags: &[&str], timeout: Duration) {
    let mut argv = vec!["python3".to_string(), path().display().to_string()];
    argv.extend(flags.iter().map(|f| f.to_string()));
    declare(
        config,
        SkillDecl {
            command: Some(argv),
            timeout,
            ..SkillDecl::new(id)
        },
    );
}

/// Declare skill `id` reached over HTTP at `url`, and user `id`.
pub fn by_url(config: &mut Config, id: &str, url: &str, timeout: Duration) {
    declare(
        config,
        SkillDecl {
            url: Some(url.to_string()),
            timeout,
            ..SkillDecl::new(id)
        },
    );
}

fn declare(config: &mut Config, skill: SkillDecl) {
    let id = skill.id.clone();
    config.skills.push(skill);
    config.users.push(UserDecl {
        id: id.clone(),
        skill: id.clone(),
        token: user_token(&id),
        gateway_token: Some(gateway_token(&id)),
        enabled: true,
        partition: None,
        user_id: None,
    });
}

/// `python3 sample_skill.py --serve 0 <flags>`: the skill behind a URL, as
/// the Lambda Runtime Interface Emulator serves one. Killed when dropped.
pub struct Served {
    /// The invocation URL (the emulator's path; the sample answers any).
    pub url: String,
    _child: tokio::process::Child,
}

impl Served {
    pub async fn start(flags: &[&str]) -> Served {
        let mut child = tokio::process::Command::new("python3")
            .arg(path())
            .args(["--serve", "0"])
            .args(flags)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("python3 runs the sample skill");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut first = String::new();
        tokio::time::timeout(DEADLINE, BufReader::new(stdout).read_line(&mut first))
            .await
            .expect("the sample skill prints its port in time")
            .expect("read the port");
        let port: u16 = first
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("a port number, got {first:?}"));
        Served {
            url: format!("http://127.0.0.1:{port}/2015-03-31/functions/function/invocations"),
            _child: child,
        }
    }
}

impl TestSim {
    /// `POST` JSON to a control path: (status, JSON body).
    pub async fn post_json(&self, path: &str, body: &Value) -> (u16, Value) {
        let resp = self.http.post(self.control(path)).json(body).send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// `POST /api/smarthome/discover {"user"}`.
    pub async fn discover(&self, user: &str) -> (u16, Value) {
        self.post_json("/api/smarthome/discover", &json!({"user": user})).await
    }

    /// `POST /api/smarthome/directives` for one endpoint.
    pub async fn directive(
        &self,
        user: &str,
        endpoint: &str,
        namespace: &str,
        name: &str,
        payload: Value,
    ) -> (u16, Value) {
        let body =
            json!({"user": user, "endpoint": endpoint, "namespace": namespace, "name": name, "payload": payload});
        self.post_json("/api/smarthome/directives", &body).await
    }
}
