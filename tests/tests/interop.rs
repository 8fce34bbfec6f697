//! Interop with the real binary and real clients: curl and nghttp, the
//! libcurl/nghttp2 stack the AVS Device SDK is built on.

use avs_sim_tests::DEADLINE;
use avs_sim_tests::binary::Served;
use serde_json::{Value, json};
use std::process::Stdio;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::Command;

/// Read from `out` until `needle` appears; returns everything read.
async fn read_until(out: &mut (impl AsyncRead + Unpin), needle: &str) -> String {
    let mut seen = Vec::new();
    let read = async {
        let mut buf = [0u8; 4096];
        while !String::from_utf8_lossy(&seen).contains(needle) {
            let n = out.read(&mut buf).await.unwrap();
            assert!(
                n > 0,
                "stream ended before {needle:?}: {}",
                String::from_utf8_lossy(&seen)
            );
            seen.extend_from_slice(&buf[..n]);
        }
    };
    tokio::time::timeout(DEADLINE, read)
        .await
        .unwrap_or_else(|_| panic!("no {needle:?} within {DEADLINE:?}"));
    String::from_utf8_lossy(&seen).into_owned()
}

async fn run(cmd: &mut Command) -> (i32, String, String) {
    let out = tokio::time::timeout(DEADLINE, cmd.output())
        .await
        .expect("command finishes")
        .expect("command runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

async fn control(s: &Served, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let http = reqwest::Client::new();
    let mut req = http.request(method.parse().unwrap(), format!("{}{path}", s.control));
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap_or(Value::Null))
}

/// Wait until `device`'s downchannel is open (long-polling the journal).
async fn await_downchannel(s: &Served, device: &str) {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let (_, j) = control(s, "GET", &format!("/api/journal?device={device}&wait=1s"), None).await;
        if j["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["summary"] == "200 downchannel open")
        {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{device} never opened a downchannel"
        );
    }
}

fn https(s: &Served, path: &str) -> String {
    format!("https://localhost:{}{path}", Served::port(&s.avs))
}

#[tokio::test]
async fn curl_holding_the_downchannel_receives_a_pushed_directive() {
    let s = Served::start(&[], &[]).await;
    let mut curl = Command::new("curl")
        .args(["-sN", "--http2", "--cacert"])
        .arg(&s.ca)
        .args([
            "-H",
            "authorization: Bearer curl-dev",
            &https(&s, "/v20160207/directives"),
        ])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut out = curl.stdout.take().unwrap();
    await_downchannel(&s, "curl-dev").await;
    let (status, pushed) = control(
        &s,
        "POST",
        "/api/devices/curl-dev/directives",
        Some(json!({"namespace": "System", "name": "ReportSoftwareInfo"})),
    )
    .await;
    assert_eq!(status, 202);
    let text = read_until(&mut out, "ReportSoftwareInfo").await;
    assert!(text.contains(pushed["messageId"].as_str().unwrap()));
    assert!(text.contains("Content-Type: application/json; charset=UTF-8"));
    let devices = control(&s, "GET", "/api/devices", None).await.1;
    assert_eq!(devices[0]["id"], "curl-dev");
    assert_eq!(devices[0]["connected"], true);
    // SIGTERM drains the open downchannel and exits 0.
    let status = s.signal("TERM").await;
    assert!(status.success(), "{status:?}");
    tokio::time::timeout(DEADLINE, curl.wait())
        .await
        .expect("curl sees the downchannel end")
        .unwrap();
}

#[tokio::test]
async fn curl_events_ping_and_lwa() {
    let s = Served::start(&[], &[]).await;
    let dir = &s.dir;
    std::fs::write(dir.join("sync.json"), r#"{"context":[],"event":{"header":{"namespace":"System","name":"SynchronizeState","messageId":"c1"},"payload":{}}}"#).unwrap();
    std::fs::write(dir.join("sw0.json"), r#"{"event":{"header":{"namespace":"System","name":"SoftwareInfo","messageId":"c2"},"payload":{"firmwareVersion":"0"}}}"#).unwrap();
    std::fs::write(dir.join("audio.raw"), vec![7u8; 32000]).unwrap();
    let ca = s.ca.clone();
    let curl = |args: &[&str]| {
        let mut c = Command::new("curl");
        c.current_dir(dir)
            .args(["-s", "-w", "\n%{http_code} %{http_version}", "--cacert"])
            .arg(&ca)
            .args(args);
        c
    };
    // An event with metadata and audio over TLS h2.
    let events = https(&s, "/v20160207/events");
    let (code, out, err) = run(&mut curl(&[
        "--http2",
        "-H",
        "authorization: Bearer cdev",
        "-F",
        "metadata=<sync.json;type=application/json",
        "-F",
        "audio=@audio.raw;type=application/octet-stream",
        &events,
    ]))
    .await;
    assert_eq!(code, 0, "{err}");
    assert!(out.ends_with("204 2"), "{out}");
    // The same over h2c prior knowledge.
    let plain_events = format!("{}/v20160207/events", s.plain);
    let (_, out, _) = run(&mut curl(&[
        "--http2-prior-knowledge",
        "-H",
        "authorization: Bearer cdev",
        "-F",
        "metadata=<sync.json;type=application/json",
        &plain_events,
    ]))
    .await;
    assert!(out.ends_with("204 2"), "{out}");
    // SoftwareInfo "0" gets 400 INVALID_REQUEST_EXCEPTION.
    let (_, out, _) = run(&mut curl(&[
        "--http2",
        "-H",
        "authorization: Bearer cdev",
        "-F",
        "metadata=<sw0.json;type=application/json",
        &events,
    ]))
    .await;
    assert!(out.ends_with("400 2"), "{out}");
    assert!(out.contains("INVALID_REQUEST_EXCEPTION"), "{out}");
    // Ping: exactly 204 on both paths; no token: 403.
    let (_, out, _) = run(&mut curl(&[
        "--http2",
        "-H",
        "authorization: Bearer cdev",
        &https(&s, "/ping"),
    ]))
    .await;
    assert_eq!(out.trim(), "204 2");
    let (_, out, _) = run(&mut curl(&[
        "--http2-prior-knowledge",
        "-H",
        "authorization: Bearer cdev",
        &format!("{}/v20160207/ping", s.plain),
    ]))
    .await;
    assert_eq!(out.trim(), "204 2");
    let (_, out, _) = run(&mut curl(&["--http2", &https(&s, "/ping")])).await;
    assert!(
        out.ends_with("403 2") && out.contains("UNAUTHORIZED_REQUEST_EXCEPTION"),
        "{out}"
    );
    // LWA over HTTP/1.1 (as Python requests does) with the SDK's upper-case path.
    let (_, out, _) = run(&mut curl(&[
        "--http1.1",
        "-d",
        "grant_type=refresh_token&refresh_token=Atzr|x&client_id=c",
        &https(&s, "/auth/O2/token"),
    ]))
    .await;
    assert!(out.ends_with("200 1.1"), "{out}");
    let token: Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    assert_eq!(token["token_type"], "bearer");
    assert_eq!(token["expires_in"], 3600);
    // The audio was recorded by size and hash.
    let (_, j) = control(&s, "GET", "/api/journal?device=cdev", None).await;
    let att = j["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "attachment")
        .cloned()
        .unwrap();
    assert_eq!(att["body"]["bytes"], 32000);
    assert_eq!(att["body"]["name"], "audio");
    assert!(s.signal("INT").await.success());
}

#[tokio::test]
async fn nghttp_downchannel_event_and_ping() {
    let s = Served::start(&[], &[]).await;
    let port = Served::port(&s.avs);
    // nghttp holding the downchannel over TLS (ALPN h2).
    // stdbuf: nghttp writes bodies through stdio, which buffers on a pipe.
    let mut dc = Command::new("stdbuf")
        .args([
            "-o0",
            "nghttp",
            "-H",
            "authorization: Bearer ng",
            &format!("https://localhost:{port}/v20160207/directives"),
        ])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut out = dc.stdout.take().unwrap();
    await_downchannel(&s, "ng").await;
    let (status, _) = control(
        &s,
        "POST",
        "/api/devices/ng/directives",
        Some(json!({"namespace": "System", "name": "ResetUserInactivity"})),
    )
    .await;
    assert_eq!(status, 202);
    read_until(&mut out, "ResetUserInactivity").await;
    // An SDK-shaped event body (leading CRLF, `!` in the boundary) over h2c.
    let body = "\r\n--WhooHooZeerOoonie!\r\nContent-Disposition: form-data; name=\"metadata\"\r\nContent-Type: application/json\r\n\r\n{\"context\":[],\"event\":{\"header\":{\"namespace\":\"System\",\"name\":\"SynchronizeState\",\"messageId\":\"n1\"},\"payload\":{}}}\r\n--WhooHooZeerOoonie!\r\nContent-Disposition: form-data; name=\"audio\"\r\nContent-Type: application/octet-stream\r\n\r\nAUDIOAUDIO\r\n--WhooHooZeerOoonie!--\r\n";
    std::fs::write(s.dir.join("event.bin"), body).unwrap();
    let (code, out, err) = run(Command::new("nghttp").current_dir(&s.dir).args([
        "-v",
        "-d",
        "event.bin",
        "-H",
        "content-type: multipart/form-data; boundary=WhooHooZeerOoonie!",
        "-H",
        "authorization: Bearer ng",
        &format!("{}/v20160207/events", s.plain),
    ]))
    .await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(":status: 204"), "{out}");
    let (_, out, _) = run(Command::new("nghttp").args([
        "-v",
        "-H",
        "authorization: Bearer ng",
        &format!("https://localhost:{port}/ping"),
    ]))
    .await;
    assert!(out.contains(":status: 204"), "{out}");
    assert!(out.contains("SETTINGS_MAX_CONCURRENT_STREAMS(0x03):10"), "{out}");
    assert!(s.signal("TERM").await.success());
}

#[tokio::test]
async fn certificate_covers_the_avs_hosts_and_is_reused() {
    let dir = avs_sim_tests::temp_dir("reuse");
    let s = Served::start_in(&dir, &[], &[]).await;
    let ca1 = std::fs::read(&s.ca).unwrap();
    let port = Served::port(&s.avs);
    for host in [
        "alexa.na.gateway.devices.a2z.com",
        "avs-alexa-eu.amazon.com",
        "api.amazon.com",
    ] {
        let (code, out, err) = run(Command::new("curl")
            .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "--http2", "--cacert"])
            .arg(&s.ca)
            .args([
                "--resolve",
                &format!("{host}:{port}:127.0.0.1"),
                "-H",
                "authorization: Bearer h",
            ])
            .arg(format!("https://{host}:{port}/ping")))
        .await;
        assert_eq!((code, out.as_str()), (0, "204"), "{host}: {err}");
    }
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(dir.join("certs/ca.key"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    assert!(s.signal("TERM").await.success());
    let s = Served::start_in(&dir, &[], &[]).await;
    assert_eq!(std::fs::read(&s.ca).unwrap(), ca1, "the CA is reused on a later start");
    assert!(s.signal("TERM").await.success());
    // `avs-sim certs` on demand, with an extra host.
    let out_dir = avs_sim_tests::temp_dir("certs-cmd");
    let (code, _, err) = run(Command::new(avs_sim_tests::binary::path())
        .args(["certs", "--out"])
        .arg(&out_dir)
        .args(["--host", "avs.lab.test"]))
    .await;
    assert_eq!(code, 0, "{err}");
    for f in ["ca.pem", "ca.key", "server.pem", "server.key"] {
        assert!(out_dir.join(f).exists(), "{f}");
    }
    assert!(
        std::fs::read_to_string(out_dir.join("server.hosts"))
            .unwrap()
            .lines()
            .any(|h| h == "avs.lab.test")
    );
}

#[tokio::test]
async fn config_file_env_and_help() {
    let dir = avs_sim_tests::temp_dir("cfg");
    std::fs::write(
        dir.join("sim.toml"),
        "auth = \"strict\"\n[[devices]]\nid = \"den\"\ntoken = \"den-token\"\n[[regions]]\nname = \"FE\"\nlisten = \"127.0.0.1:0\"\n",
    )
    .unwrap();
    let s = Served::start_in(&dir, &["--config", "sim.toml"], &[("AVS_SIM_LISTEN_REGION", "EU")]).await;
    assert_eq!(s.regions.len(), 1, "{:?}", s.banner);
    assert_eq!(s.regions[0].0, "FE");
    let ping = |token: &str| {
        let mut c = Command::new("curl");
        c.args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--http2-prior-knowledge",
            "-H",
            &format!("authorization: Bearer {token}"),
        ])
        .arg(format!("{}/ping", s.plain));
        c
    };
    assert_eq!(run(&mut ping("den-token")).await.1, "204");
    assert_eq!(run(&mut ping("other")).await.1, "403", "strict mode from the file");
    let mut dc = Command::new("curl")
        .args([
            "-sN",
            "--http2-prior-knowledge",
            "-H",
            "authorization: Bearer den-token",
        ])
        .arg(format!("{}/v20160207/directives", s.plain))
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    await_downchannel(&s, "den").await;
    assert_eq!(
        control(&s, "GET", "/api/devices/den", None).await.1["region"],
        "EU",
        "region name from the environment"
    );
    assert!(s.signal("TERM").await.success());
    let _ = dc.kill().await;
    // A bad config is refused with its location, exit 2.
    std::fs::write(dir.join("bad.toml"), "[listen]\nbogus = 1\n").unwrap();
    let (code, _, err) = run(Command::new(avs_sim_tests::binary::path())
        .current_dir(&dir)
        .args(["serve", "--config", "bad.toml"]))
    .await;
    assert_eq!(code, 2);
    assert!(err.contains("bad.toml:2:1") && err.contains("bogus"), "{err}");
    let (code, out, _) = run(Command::new(avs_sim_tests::binary::path()).args(["serve", "--help"])).await;
    assert_eq!(code, 0);
    for flag in [
        "--config",
        "--avs-listen",
        "--plain-listen",
        "--control-listen",
        "--certs",
        "--journal",
        "--auth",
        "AVS_SIM_",
    ] {
        assert!(out.contains(flag), "--help lacks {flag}");
    }
}
