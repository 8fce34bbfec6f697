//! The scenario library against the reference device, both ways: every
//! scenario passes with `avs-sim device` and fails, with a near-miss report
//! naming what went wrong, with `avs-sim device --misbehave` for its rule.
//! Also `avs-sim check` and the runner's exit codes and JUnit output.

use avs_sim_tests::{DEADLINE, binary, temp_dir};
use std::path::{Path, PathBuf};
use tokio::process::Command;

fn library(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios").join(file)
}

struct Run {
    code: i32,
    stdout: String,
    junit: quick_junit::Report,
    junit_text: String,
}

/// `avs-sim run FILE --junit ... --spawn DEVICE` on port 0 in a fresh directory.
async fn run(files: &[PathBuf], spawn: &str) -> Run {
    let dir = temp_dir("run");
    let junit = dir.join("out/junit.xml");
    let mut cmd = Command::new(binary::path());
    cmd.current_dir(&dir)
        .arg("run")
        .args(files)
        .args(binary::PORT_ZERO)
        .arg("--junit")
        .arg(&junit)
        .args(["--report", "out/report.json", "--spawn", spawn])
        .kill_on_drop(true);
    let out = tokio::time::timeout(DEADLINE * 6, cmd.output())
        .await
        .expect("run finishes")
        .unwrap();
    let junit_text = std::fs::read_to_string(&junit).expect("a JUnit file is written");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("out/report.json")).unwrap()).unwrap();
    assert!(
        report["scenarios"][0]["steps"]
            .as_array()
            .is_some_and(|s| !s.is_empty())
    );
    let device_output = report["run"]["device_output"].as_str().unwrap_or("").to_string();
    Run {
        code: out.status.code().unwrap_or(-1),
        // The device's own log follows the run's output, for failures.
        stdout: format!(
            "{}\n--- device ---\n{device_output}",
            String::from_utf8_lossy(&out.stdout)
        ),
        junit: quick_junit::Report::deserialize_from_str(&junit_text).expect("JUnit XML a CI server can read"),
        junit_text,
    }
}

fn device(args: &str) -> String {
    format!("{} device {args}", binary::path().display())
}

/// Pass with the good device, fail with the misbehaving one, and say why.
async fn both_ways(file: &str, good: &str, bad: &str, failure_mentions: &[&str]) {
    let path = library(file);
    let ok = run(std::slice::from_ref(&path), &device(good)).await;
    assert_eq!(ok.code, 0, "{file} should pass with `{good}`:\n{}", ok.stdout);
    assert_eq!((ok.junit.tests, ok.junit.failures), (1, 0), "{}", ok.junit_text);
    assert!(
        ok.junit_text.contains("device: downchannel open"),
        "device output goes into the report"
    );

    let ko = run(&[path], &device(bad)).await;
    assert_eq!(ko.code, 1, "{file} should fail with `{bad}`:\n{}", ko.stdout);
    assert_eq!((ko.junit.tests, ko.junit.failures), (1, 1), "{}", ko.junit_text);
    let case = &ko.junit.test_suites[0].test_cases[0];
    let quick_junit::TestCaseStatus::NonSuccess {
        message, description, ..
    } = &case.status
    else {
        panic!("not a failure: {}", ko.junit_text)
    };
    let text = format!(
        "{} {}",
        message.as_deref().unwrap_or(""),
        description.as_deref().unwrap_or("")
    );
    for m in failure_mentions {
        assert!(text.contains(m), "{file} failure should mention {m:?}:\n{text}");
        // The live output shows the same near-miss report under the failed step.
        if !m.starts_with("step ") {
            assert!(
                ko.stdout.contains(m),
                "the live output should mention {m:?} too:\n{}",
                ko.stdout
            );
        }
    }
}

#[tokio::test]
async fn first_connect() {
    both_ways(
        "first-connect.toml",
        "--token kitchen",
        "--token kitchen --misbehave skip-synchronize-state",
        &["step 2 expect failed", "no match within 5s", "System.SynchronizeState"],
    )
    .await;
}

#[tokio::test]
async fn software_info() {
    both_ways(
        "software-info.toml",
        "--token kitchen --firmware 8701",
        "--token kitchen --misbehave bad-firmware-version",
        &[
            "step 3 expect failed",
            "/event/payload/firmwareVersion regex: expected /^[1-9][0-9]*$/, got \"0\"",
        ],
    )
    .await;
}

#[tokio::test]
async fn set_endpoint() {
    both_ways(
        "set-endpoint.toml",
        "--token kitchen",
        "--token kitchen --misbehave ignore-set-endpoint",
        &["step 3 await_connect failed", "did not open a downchannel in region EU"],
    )
    .await;
}

#[tokio::test]
async fn reset_user_inactivity() {
    both_ways(
        "reset-user-inactivity.toml",
        "--token kitchen --inactivity-interval 2s",
        "--token kitchen --inactivity-interval 2s --misbehave ignore-reset-inactivity",
        &[
            "step 4 expect failed",
            "/event/payload/inactiveTimeInSeconds max: expected <= 3",
        ],
    )
    .await;
}

#[tokio::test]
async fn malformed_directive() {
    both_ways(
        "malformed-directive.toml",
        "--token kitchen",
        "--token kitchen --misbehave wrong-unparsed-directive",
        &["step 3 expect failed", "/event/payload/unparsedDirective equals"],
    )
    .await;
}

#[tokio::test]
async fn user_inactivity_cadence() {
    both_ways(
        "user-inactivity-cadence.toml",
        "--token kitchen --inactivity-interval 2s",
        "--token kitchen --inactivity-interval 2s --misbehave no-inactivity-report",
        &["step 2 expect failed", "System.UserInactivityReport"],
    )
    .await;
}

#[tokio::test]
async fn several_devices() {
    let bin = binary::path().display().to_string();
    let all = |bedroom: &str| {
        format!(
            "{bin} device --token kitchen & {bin} device --token bedroom {bedroom} & {bin} device --token garage & wait"
        )
    };
    let path = library("several-devices.toml");
    let ok = run(std::slice::from_ref(&path), &all("")).await;
    assert_eq!(ok.code, 0, "{}", ok.stdout);
    let ko = run(&[path], &all("--misbehave bad-firmware-version")).await;
    assert_eq!(ko.code, 1, "{}", ko.stdout);
    assert!(
        ko.stdout.contains("expected System.SoftwareInfo from bedroom"),
        "{}",
        ko.stdout
    );
}

#[tokio::test]
async fn the_whole_library_in_one_run() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(library(""))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    // first-connect observes the connection handshake: it runs first (or on connect under serve).
    files.sort_by_key(|p| (!p.ends_with("first-connect.toml"), p.clone()));
    assert_eq!(files.len(), 19);
    let bin = binary::path().display().to_string();
    let devices = format!(
        "{bin} device --token kitchen --inactivity-interval 2s --ping-interval 1s --ping-timeout 1s & \
         {bin} device --token bedroom & {bin} device --token garage & \
         {bin} device --token unused --refresh-token 'Atzr|hall' & wait"
    );
    let r = run(&files, &devices).await;
    assert_eq!(r.code, 0, "{}", r.stdout);
    assert_eq!(r.junit.tests, 19);
    assert_eq!(r.junit.test_suites.len(), 19, "one testsuite per file");
}

#[tokio::test]
async fn check_lists_every_mistake_with_its_location() {
    let dir = temp_dir("check");
    let file = dir.join("three.toml");
    std::fs::write(
        &file,
        "name = \"three mistakes\"\n[[devices]]\nname = \"dut\"\n\n[[steps]]\nkind = \"await_connect\"\ndevice = \"dut\"\nwithin = \"ten seconds\"\n\n[[steps]]\nkind = \"send\"\ndevice = \"dtu\"\ndirective = \"System.ReportSoftwareInfo\"\n\n[[steps]]\nkind = \"expect\"\ndevice = \"dut\"\nevent = \"System.SoftwareInfo\"\nwithinn = \"5s\"\n",
    )
    .unwrap();
    let out = Command::new(binary::path())
        .arg("check")
        .arg(&file)
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    let f = file.display();
    assert!(
        err.contains(&format!("{f}:8:10: bad duration \"ten seconds\"")),
        "{err}"
    );
    assert!(err.contains(&format!("{f}:12:10: unknown device `dtu`")), "{err}");
    assert!(err.contains(&format!("{f}:19:1: unknown field `withinn`")), "{err}");
    assert!(err.contains("3 error(s)"), "{err}");
    // run refuses invalid input with exit 2 too.
    let out = Command::new(binary::path())
        .arg("run")
        .arg(&file)
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    // and the library is valid.
    let out = Command::new(binary::path())
        .arg("check")
        .arg(library("software-info.toml"))
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
}

/// One `check` lists every kind of mistake at once: two unknown keys in one
/// step, a wrong type, a semantic error, an undeclared region in a template
/// (at the template's own line), a misspelt capture with a suggestion, and
/// a numeric matcher with a template that is not one variable.
#[tokio::test]
async fn check_reports_every_mistake_in_one_run() {
    let dir = temp_dir("check-all");
    let file = dir.join("many.toml");
    std::fs::write(
        &file,
        r#"name = "many mistakes"
[config]
[[config.regions]]
name = "FE"
listen = "127.0.0.1:0"
[[devices]]
name = "dut"

[[steps]]
kind = "expect"
device = "dut"
evnt = "System.SoftwareInfo"
withinn = "5s"
event = "System.SoftwareInfo"
capture = { firmware = "/event/payload/firmwareVersion" }

[[steps]]
kind = "send"
device = "dtu"
directive = "System.SetEndpoint"
payload = { endpoint = "{{region.EU.url}}",
            note = "{{firmwre}}" }

[[steps]]
kind = "expect"
device = "dut"
event = "System.SoftwareInfo"
count = "two"
match."/event/payload/firmwareVersion" = { min = "{{firmware}} + 1" }
"#,
    )
    .unwrap();
    let out = Command::new(binary::path())
        .arg("check")
        .arg(&file)
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    let f = file.display();
    for want in [
        format!("{f}:12:1: unknown field `evnt`"),
        format!("{f}:13:1: unknown field `withinn`"),
        format!("{f}:19:10: unknown device `dtu` (declared: dut); did you mean `dut`?"),
        format!("{f}:21:25: `{{{{region.EU.url}}}}`: region `EU` is not declared in [[config.regions]] (declared: FE)"),
        format!("{f}:22:21: `{{{{firmwre}}}}` is used before any step captures it; did you mean `{{{{firmware}}}}`?"),
        format!("{f}:28:9: invalid type: string \"two\", expected u32"),
        format!("{f}:29:50: a numeric bound is a number or exactly one `{{{{variable}}}}`"),
    ] {
        assert!(err.contains(&want), "missing {want:?} in:\n{err}");
    }
    assert!(err.contains("7 error(s)"), "{err}");
}

/// The README's ten-line scenario, taken from the README itself, passes
/// against the reference device and fails against a broken one.
#[tokio::test]
async fn the_readme_example_works_as_written() {
    let readme = std::fs::read_to_string(library("README.md")).unwrap();
    let start = readme.find("```toml\n").expect("a toml example") + "```toml\n".len();
    let example = &readme[start..start + readme[start..].find("```").unwrap()];
    let dir = temp_dir("readme");
    let file = dir.join("it.toml");
    std::fs::write(&file, example).unwrap();
    let ok = run(std::slice::from_ref(&file), &device("--token kitchen")).await;
    assert_eq!(ok.code, 0, "{}", ok.stdout);
    let ko = run(&[file], &device("--token kitchen --misbehave no-software-info")).await;
    assert_eq!(ko.code, 1, "{}", ko.stdout);
    assert!(ko.stdout.contains("FAIL 2"), "{}", ko.stdout);
}

/// `run` as the README shows it, without listener flags, while something
/// (a `serve`, say) holds the default ports: it takes free ones.
#[tokio::test]
async fn run_without_port_flags_beside_a_busy_default_port() {
    // Held for the whole run when free; when already taken, busy all the same.
    let _held: Vec<_> = ["127.0.0.1:8443", "127.0.0.1:8080", "127.0.0.1:9090"]
        .iter()
        .filter_map(|a| std::net::TcpListener::bind(a).ok())
        .collect();
    let dir = temp_dir("run-free-ports");
    let out = tokio::time::timeout(
        DEADLINE * 6,
        Command::new(binary::path())
            .current_dir(&dir)
            .arg("run")
            .arg(library("software-info.toml"))
            .args(["--junit", "out/junit.xml", "--spawn", &device("--token kitchen")])
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("run finishes")
    .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(0), "{said}");
    assert!(dir.join("out/junit.xml").exists());
}

#[tokio::test]
async fn survive_goaway() {
    both_ways(
        "goaway.toml",
        "--token kitchen",
        "--token kitchen --misbehave no-reconnect",
        &["step 3 await_connect failed"],
    )
    .await;
}

#[tokio::test]
async fn reset_downchannel() {
    both_ways(
        "reset-downchannel.toml",
        "--token kitchen",
        "--token kitchen --misbehave no-reconnect",
        &["step 3 await_connect failed", "did not open a downchannel"],
    )
    .await;
}

#[tokio::test]
async fn throttled_sync_then_success() {
    both_ways(
        "throttled-sync.toml",
        "--token kitchen",
        "--token kitchen --misbehave no-reconnect",
        &["step 3 await_connect failed"],
    )
    .await;
}

#[tokio::test]
async fn token_expiry() {
    both_ways(
        "token-expiry.toml",
        "--token unused --refresh-token 'Atzr|hall'",
        "--token unused --refresh-token 'Atzr|hall' --misbehave no-refresh",
        &[
            "step 4 expect failed",
            "POST /auth/o2/token",
            "after: expected after step revoke",
        ],
    )
    .await;
}

#[tokio::test]
async fn ping_silence() {
    both_ways(
        "ping-silence.toml",
        "--token kitchen --ping-interval 1s --ping-timeout 1s",
        "--token kitchen --ping-interval 1s --ping-timeout 1s --misbehave no-ping",
        &["step 3 expect failed", "GET /ping"],
    )
    .await;
}

/// Reset, GOAWAY and throttling in one scenario: the same result on every run.
#[tokio::test]
async fn chaos_gives_the_same_result_every_run() {
    let path = library("chaos.toml");
    let mut outcomes = Vec::new();
    for _ in 0..2 {
        let r = run(std::slice::from_ref(&path), &device("--token kitchen")).await;
        assert_eq!(r.code, 0, "{}", r.stdout);
        let steps: Vec<String> = r
            .stdout
            .lines()
            .filter(|l| l.starts_with("  ok") || l.starts_with("  FAIL"))
            .map(|l| l[..40.min(l.len())].to_string())
            .collect();
        outcomes.push(steps);
    }
    assert_eq!(outcomes[0], outcomes[1]);
    assert_eq!(outcomes[0].len(), 14);
}

/// The scenarios README's negative case for smart home discovery: the same
/// scenario with `--invalid` added to the sample skill's command fails,
/// naming the dropped endpoint and the rule, in the output and in JUnit.
#[tokio::test]
async fn smarthome_discovery_fails_a_skill_with_a_broken_endpoint() {
    let text = std::fs::read_to_string(library("smarthome-discovery.toml")).unwrap();
    let broken = text.replace(
        "\"./skills/sample_skill.py\"]",
        &format!("\"{}\", \"--invalid\"]", library("skills/sample_skill.py").display()),
    );
    assert_ne!(broken, text, "the scenario names the sample skill as expected");
    let dir = temp_dir("broken-skill");
    let file = dir.join("smarthome-discovery.toml");
    std::fs::write(&file, broken).unwrap();
    let r = run(&[file], "true").await;
    assert_eq!(r.code, 1, "{}", r.stdout);
    for text in [&r.stdout, &r.junit_text] {
        assert!(
            text.contains("does not expect dropped") && text.contains("appliance 007"),
            "{text}"
        );
        assert!(text.contains("6 endpointId"), "{text}");
    }
}
