//! Reaching a skill's handler and recording what happened.
//!
//! Alexa invokes a smart home skill's Lambda function with the directive
//! envelope and waits 8 s for the result (reference smarthome.md §6). Here
//! the handler is a local command (directive on stdin, answer on stdout) or
//! an HTTP endpoint (the Lambda Runtime Interface Emulator, `sam local`, any
//! adapter). Every way an invocation can go wrong is its own `Outcome`, so
//! a report can say what Alexa would have recorded.

use super::skills::SkillDecl;
use bytes::Bytes;
use http_body_util::BodyExt;
use serde_json::Value;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

/// The largest answer read from a handler: Lambda's limit for a synchronous
/// invocation's response payload (6 MB). Beyond it the handler is stopped.
pub const MAX_ANSWER: usize = 6 * 1024 * 1024;

/// How much of a command's stderr is kept (the end of it) for the report.
const MAX_STDERR: usize = 64 * 1024;

/// What came of one invocation.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The handler answered with a JSON document (judged elsewhere).
    Answered(Value),
    /// No answer within the skill's timeout: Alexa records
    /// SKILL_RESPONSE_TIMEOUT_EXCEPTION. The command was killed.
    Timeout,
    /// The command exited unsuccessfully (or was killed by a signal), or the
    /// endpoint answered with an error status.
    Crashed { status: String, stderr: String },
    /// The answer was not JSON.
    NotJson { text: String },
    /// The answer was larger than `MAX_ANSWER`; the handler was stopped.
    TooLarge,
    /// The handler could not be started or reached.
    Unreachable(String),
}

/// One invocation: its outcome and how long the handler took.
#[derive(Debug, Clone, PartialEq)]
pub struct Invocation {
    pub outcome: Outcome,
    pub duration: Duration,
}

/// Invoke `skill` with `directive` (the whole envelope), within its timeout.
pub async fn invoke(skill: &SkillDecl, directive: &Value) -> Invocation {
    invoke_with(skill, directive, &[], skill.timeout).await
}

/// As `invoke`, with `env` added to a command's environment (where the
/// simulator's gateway and LWA are, so a handler can post events) and
/// `budget` as the deadline (the skill's timeout less any injected delay).
pub async fn invoke_with(
    skill: &SkillDecl,
    directive: &Value,
    env: &[(String, String)],
    budget: Duration,
) -> Invocation {
    let started = crate::clock::now();
    let body = Bytes::from(directive.to_string());
    let outcome = match (&skill.command, &skill.url) {
        (Some(argv), _) => run_command(argv, body, env, budget).await,
        (None, Some(url)) => match tokio::time::timeout(budget, post(url, body)).await {
            Ok(outcome) => outcome,
            Err(_) => Outcome::Timeout,
        },
        (None, None) => Outcome::Unreachable(format!("skill {:?} has neither command nor url", skill.id)),
    };
    Invocation {
        outcome,
        duration: crate::clock::now().duration_since(started),
    }
}

/// Run `argv` (no shell), feed it `body`, read its answer within `timeout`.
async fn run_command(argv: &[String], body: Bytes, env: &[(String, String)], timeout: Duration) -> Outcome {
    let Some((program, args)) = argv.split_first() else {
        return Outcome::Unreachable("an empty command".into());
    };
    let spawned = tokio::process::Command::new(program)
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group, so the handler's children die with it.
        .process_group(0)
        .kill_on_drop(true)
        .spawn();
    let mut child = match spawned {
        Ok(c) => c,
        Err(e) => return Outcome::Unreachable(format!("cannot start {program:?}: {e}")),
    };
    let (stdin, stdout, stderr) = (child.stdin.take(), child.stdout.take(), child.stderr.take());
    let work = async {
        // Written beside the reads: a handler that answers before reading
        // all of stdin must not deadlock on a full pipe.
        let feed = async move {
            if let Some(mut stdin) = stdin {
                let _ = stdin.write_all(&body).await;
            } // dropped: the handler sees end of input
        };
        let (_, out, err) = tokio::join!(feed, read_bounded(stdout, MAX_ANSWER), read_tail(stderr, MAX_STDERR));
        let Some(out) = out else {
            return Outcome::TooLarge;
        };
        match child.wait().await {
            Ok(status) if status.success() => parse_answer(&out),
            Ok(status) => Outcome::Crashed {
                status: status.to_string(),
                stderr: err,
            },
            Err(e) => Outcome::Crashed {
                status: format!("wait failed: {e}"),
                stderr: err,
            },
        }
    };
    let outcome = tokio::time::timeout(timeout, work).await.unwrap_or(Outcome::Timeout);
    if matches!(outcome, Outcome::Timeout | Outcome::TooLarge) {
        // Killed at the deadline (or at the bound) with its whole group, and reaped.
        if let Some(pid) = child.id() {
            let _ = tokio::process::Command::new("kill")
                .args(["-KILL", "--", &format!("-{pid}")])
                .status()
                .await;
        }
        let _ = child.start_kill();
        let _ = child.wait().await;
    }
    outcome
}

/// All of `r`, or `None` once it passes `max` bytes.
async fn read_bounded(r: Option<impl AsyncRead + Unpin>, max: usize) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let Some(r) = r else { return Some(out) };
    let mut limited = r.take(max as u64 + 1);
    if limited.read_to_end(&mut out).await.is_err() || out.len() > max {
        return (out.len() <= max).then_some(out);
    }
    Some(out)
}

/// The last `max` bytes of `r`, as text.
async fn read_tail(r: Option<impl AsyncRead + Unpin>, max: usize) -> String {
    let mut kept: Vec<u8> = Vec::new();
    let Some(mut r) = r else { return String::new() };
    let mut buf = [0u8; 4096];
    while let Ok(n) = r.read(&mut buf).await {
        if n == 0 {
            break;
        }
        kept.extend_from_slice(&buf[..n]);
        if kept.len() > max {
            kept.drain(..kept.len() - max);
        }
    }
    String::from_utf8_lossy(&kept).into_owned()
}

fn parse_answer(bytes: &[u8]) -> Outcome {
    match serde_json::from_slice(bytes) {
        Ok(v) => Outcome::Answered(v),
        Err(_) => Outcome::NotJson {
            text: String::from_utf8_lossy(&bytes[..bytes.len().min(4096)]).into_owned(),
        },
    }
}

/// POST `body` to an `http://` URL and read the answer (bounded).
async fn post(url: &str, body: Bytes) -> Outcome {
    let uri: http::Uri = match url.parse() {
        Ok(u) => u,
        Err(e) => return Outcome::Unreachable(format!("bad url {url:?}: {e}")),
    };
    let (Some(host), port) = (uri.host(), uri.port_u16().unwrap_or(80)) else {
        return Outcome::Unreachable(format!("url {url:?} has no host"));
    };
    let tcp = match tokio::net::TcpStream::connect((host, port)).await {
        Ok(t) => t,
        Err(e) => return Outcome::Unreachable(format!("cannot connect to {host}:{port}: {e}")),
    };
    let io = hyper_util::rt::TokioIo::new(tcp);
    let (mut sender, conn) = match hyper::client::conn::http1::handshake(io).await {
        Ok(pair) => pair,
        Err(e) => return Outcome::Unreachable(format!("HTTP handshake with {host}:{port} failed: {e}")),
    };
    tokio::spawn(conn);
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let request = http::Request::post(path)
        .header(http::header::HOST, format!("{host}:{port}"))
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(http_body_util::Full::new(body));
    let request = match request {
        Ok(r) => r,
        Err(e) => return Outcome::Unreachable(format!("cannot build a request for {url:?}: {e}")),
    };
    let response = match sender.send_request(request).await {
        Ok(r) => r,
        Err(e) => return Outcome::Unreachable(format!("POST {url} failed: {e}")),
    };
    let status = response.status();
    let bytes = match http_body_util::Limited::new(response.into_body(), MAX_ANSWER)
        .collect()
        .await
    {
        Ok(b) => b.to_bytes(),
        Err(_) => return Outcome::TooLarge,
    };
    if !status.is_success() {
        return Outcome::Crashed {
            status: format!("HTTP {status}"),
            stderr: String::from_utf8_lossy(&bytes[..bytes.len().min(MAX_STDERR)]).into_owned(),
        };
    }
    parse_answer(&bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sh(script: &str, timeout_ms: u64) -> SkillDecl {
        SkillDecl {
            id: "t".into(),
            command: Some(vec!["sh".into(), "-c".into(), script.into()]),
            timeout: Duration::from_millis(timeout_ms),
            ..SkillDecl::new("t")
        }
    }

    fn directive() -> Value {
        json!({"directive": {"header": {"namespace": "Alexa.Discovery", "name": "Discover"}}})
    }

    #[tokio::test]
    async fn a_command_gets_the_directive_on_stdin_and_answers_on_stdout() {
        // The handler echoes what it read: the answer is the directive itself.
        let got = invoke(&sh("cat", 5000), &directive()).await;
        assert_eq!(got.outcome, Outcome::Answered(directive()));
    }

    #[tokio::test]
    async fn each_failure_is_recorded_as_itself() {
        let crash = invoke(&sh("echo broken >&2; exit 3", 5000), &directive()).await;
        assert!(
            matches!(&crash.outcome, Outcome::Crashed { status, stderr } if status.contains('3') && stderr.contains("broken")),
            "{crash:?}"
        );
        let text = invoke(&sh("cat >/dev/null; echo 'not json'", 5000), &directive()).await;
        assert_eq!(
            text.outcome,
            Outcome::NotJson {
                text: "not json\n".into()
            }
        );
        let gone = invoke(
            &SkillDecl {
                command: Some(vec!["/nonexistent/handler".into()]),
                ..sh("", 5000)
            },
            &directive(),
        )
        .await;
        assert!(matches!(gone.outcome, Outcome::Unreachable(_)), "{gone:?}");
    }

    #[tokio::test]
    async fn a_slow_command_times_out_and_is_killed() {
        let dir = std::env::temp_dir().join(format!("avs-sim-slow-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let pidfile = dir.join("pid");
        let script = format!("echo $$ > {}; exec sleep 30", pidfile.display());
        let got = invoke(&sh(&script, 1000), &directive()).await;
        assert_eq!(got.outcome, Outcome::Timeout);
        let pid = std::fs::read_to_string(&pidfile).expect("the handler started");
        // Killed and reaped by the time `invoke` returns.
        let proc = std::path::Path::new("/proc").join(pid.trim());
        assert!(!proc.exists(), "the handler lived on after its deadline");
    }

    #[tokio::test]
    async fn an_endless_answer_is_cut_at_the_bound() {
        let got = invoke(&sh("cat >/dev/null; yes", 20_000), &directive()).await;
        assert_eq!(got.outcome, Outcome::TooLarge);
    }

    /// A one-shot HTTP handler on port 0 answering `status` and `body`, after `delay`.
    async fn endpoint(status: u16, body: &'static str, delay: Duration) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut tcp, _) = listener.accept().await.unwrap();
            let mut buf = vec![0u8; 65536];
            let mut seen = Vec::new();
            // Read the request head and its body (the directive ends with "}}}").
            while !String::from_utf8_lossy(&seen).contains("}}}") {
                let n = tcp.read(&mut buf).await.unwrap();
                if n == 0 {
                    return;
                }
                seen.extend_from_slice(&buf[..n]);
            }
            tokio::time::sleep(delay).await;
            let answer = format!("HTTP/1.1 {status} X\r\ncontent-length: {}\r\n\r\n{body}", body.len());
            let _ = tcp.write_all(answer.as_bytes()).await;
        });
        format!(
            "http://127.0.0.1:{}/2015-03-31/functions/function/invocations",
            addr.port()
        )
    }

    fn http(url: String, timeout_ms: u64) -> SkillDecl {
        SkillDecl {
            id: "h".into(),
            url: Some(url),
            timeout: Duration::from_millis(timeout_ms),
            ..SkillDecl::new("h")
        }
    }

    #[tokio::test]
    async fn an_http_handler_answers_or_fails_as_itself() {
        let ok = invoke(
            &http(endpoint(200, r#"{"event":{}}"#, Duration::ZERO).await, 5000),
            &directive(),
        )
        .await;
        assert_eq!(ok.outcome, Outcome::Answered(json!({"event": {}})));
        let err = invoke(
            &http(endpoint(502, "bad gateway", Duration::ZERO).await, 5000),
            &directive(),
        )
        .await;
        assert!(
            matches!(&err.outcome, Outcome::Crashed { status, .. } if status.contains("502")),
            "{err:?}"
        );
        let refused = invoke(&http("http://127.0.0.1:1/x".into(), 5000), &directive()).await;
        assert!(matches!(refused.outcome, Outcome::Unreachable(_)), "{refused:?}");
    }

    #[tokio::test]
    async fn a_slow_http_handler_times_out() {
        let url = endpoint(200, "{}", Duration::from_secs(30)).await;
        let got = invoke(&http(url, 300), &directive()).await;
        assert_eq!(got.outcome, Outcome::Timeout);
    }
}
