//! No fault rule can hurt the server (issue 7, item 2): every number of a
//! rule is range-checked at all three doors (control API, config, scenario
//! `fault` steps) with a 400 that names the field and its range, and after
//! a burst of hostile rules every listener still accepts and `/healthz`
//! says so.

use avs_sim_tests::{TestSim, binary, temp_dir};
use serde_json::{Value, json};
use tokio::process::Command;

const SIGMA_ERROR: &str = "then.sigma must be a finite number in 0..=10, got 1e308";

async fn post(sim: &TestSim, path: &str, body: &Value) -> (u16, Value) {
    let resp = sim.http.post(sim.control(path)).json(body).send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// Every listener answers: TLS h2 and h2c `/ping`, and `/healthz` says all are up.
async fn assert_all_listeners_serve(sim: &TestSim, token: &str) {
    let mut tls = sim.tls_device(token).await;
    assert_eq!(tls.ping("/ping").await.unwrap(), 204);
    let mut plain = sim.h2c_device(token).await;
    assert_eq!(plain.ping("/ping").await.unwrap(), 204);
    let (status, body) = sim.get("/healthz").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "ok");
    for name in ["avs", "plain", "control"] {
        assert_eq!(body["listeners"][name], "up", "{name}: {body}");
    }
}

#[tokio::test]
async fn the_rule_that_used_to_panic_is_refused_with_its_field_and_range() {
    let sim = TestSim::start(|_| {}).await;
    for when in [json!({}), json!({"face": "server"}), json!({"path": "/ping"})] {
        let rule = json!({"when": when, "then": {"action": "delay", "median_ms": 100, "sigma": 1e308}});
        let (status, body) = post(&sim, "/api/faults", &rule).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["error"], SIGMA_ERROR);
    }
    let (_, listed) = sim.get("/api/faults").await;
    assert_eq!(listed, json!([]), "nothing was installed");
    assert_all_listeners_serve(&sim, "calm").await;
    sim.stop().await;
}

#[tokio::test]
async fn the_apply_now_door_checks_numbers_too() {
    let sim = TestSim::start(|_| {}).await;
    let (_dev, _dc) = sim.connected("now").await;
    for (action, field) in [
        (
            json!({"action": "stall", "ms": u64::MAX}),
            "then.ms must be in 0..=3600000",
        ),
        (
            json!({"action": "latency", "ms": 1, "jitter_ms": u64::MAX}),
            "then.jitter_ms",
        ),
        (json!({"action": "close_after", "bytes": u64::MAX}), "then.bytes"),
        (
            json!({"action": "goaway", "last_stream_id": u32::MAX}),
            "then.last_stream_id must be in 0..=2147483647",
        ),
    ] {
        let (status, body) = post(&sim, "/api/devices/now/faults", &action).await;
        assert_eq!(status, 400, "{action}: {body}");
        let msg = body["error"].as_str().unwrap();
        assert!(msg.contains(field), "{action}: {msg}");
    }
    assert_all_listeners_serve(&sim, "now").await;
    sim.stop().await;
}

#[tokio::test]
async fn the_config_door_refuses_the_rule() {
    let text = "[[faults]]\n[faults.then]\naction = \"delay\"\nmedian_ms = 100\nsigma = 1e308\n";
    let config = avs_sim::Config::from_toml(text, "chaos.toml").unwrap();
    let err = config.validate().unwrap_err().to_string();
    assert!(err.contains(&format!("faults[0]: {SIGMA_ERROR}")), "{err}");
    // The simulator does not start with it.
    let mut config = config;
    config.certs.dir = temp_dir("certs");
    let any = "127.0.0.1:0".parse().unwrap();
    (config.listen.avs, config.listen.plain, config.listen.control) = (any, any, any);
    let Err(e) = avs_sim::spawn(config).await else {
        panic!("a config with a hostile rule must not start")
    };
    assert!(e.to_string().contains("then.sigma"), "{e}");
}

#[tokio::test]
async fn the_scenario_door_refuses_the_rule() {
    let dir = temp_dir("hostile-scenario");
    let file = dir.join("hostile.toml");
    std::fs::write(
        &file,
        "name = \"hostile\"\n\n[[steps]]\nkind = \"fault\"\nthen = { action = \"delay\", median_ms = 100, sigma = 1e308 }\n\n[[steps]]\nkind = \"fault\"\nthen = { action = \"stall\", ms = 18446744073709551615 }\n",
    )
    .unwrap();
    let out = Command::new(binary::path())
        .arg("check")
        .arg(&file)
        .output()
        .await
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains(SIGMA_ERROR), "{err}");
    assert!(err.contains("then.ms must be in 0..=3600000"), "{err}");
}

#[tokio::test]
async fn a_burst_of_hostile_rules_leaves_every_listener_accepting() {
    let sim = TestSim::start(|_| {}).await;
    let hostile = [
        json!({"then": {"action": "delay", "median_ms": u64::MAX, "sigma": 1}}),
        json!({"then": {"action": "delay", "median_ms": 1, "sigma": -1e308}}),
        json!({"then": {"action": "delay", "ms": u64::MAX}}),
        json!({"then": {"action": "delay", "min_ms": u64::MAX - 1, "max_ms": u64::MAX}}),
        json!({"then": {"action": "latency", "ms": u64::MAX, "jitter_ms": u64::MAX}}),
        json!({"then": {"action": "stall", "ms": u64::MAX}}),
        json!({"then": {"action": "bandwidth", "bytes_per_second": 0}}),
        json!({"then": {"action": "dribble", "chunk_bytes": 0, "every_ms": u64::MAX}}),
        json!({"when": {"probability": 1e308}, "then": {"action": "hold"}}),
        json!({"when": {"nth": 0}, "then": {"action": "hold"}}),
        json!({"when": {"until": "100000h"}, "then": {"action": "hold"}}),
        json!({"times": 0, "then": {"action": "hold"}}),
    ];
    for round in 0..5 {
        for rule in &hostile {
            for face in [None, Some("server")] {
                let mut rule = rule.clone();
                if let Some(f) = face {
                    rule["when"]["face"] = json!(f);
                }
                let (status, body) = post(&sim, "/api/faults", &rule).await;
                assert_eq!(status, 400, "round {round}: {rule} → {body}");
                let error = body["error"].as_str().unwrap();
                assert!(error.contains("must") || error.contains("at most"), "{body}");
            }
        }
    }
    // The most extreme rules that are allowed fire on every new connection
    // and every ping without hurting anything.
    for rule in [
        json!({"when": {"face": "server"}, "then": {"action": "delay", "median_ms": 3_600_000, "sigma": 10}}),
        json!({"when": {"path": "/ping"}, "then": {"action": "delay", "min_ms": 0, "max_ms": 0}}),
    ] {
        let (status, body) = post(&sim, "/api/faults", &rule).await;
        assert_eq!(status, 201, "{rule}: {body}");
    }
    for i in 0..10 {
        assert_all_listeners_serve(&sim, &format!("after-{i}")).await;
    }
    sim.stop().await;
}
