//! The documentation says what the code does: examples load as written and
//! the crate's layout names every module.

use avs_sim_tests::readme_blocks as blocks;
use std::path::PathBuf;

fn repo(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").join(path)
}

#[test]
fn the_readme_configuration_example_loads_as_written() {
    let readme = std::fs::read_to_string(repo("README.md")).unwrap();
    let examples = blocks(&readme, "## Configuration", "toml");
    assert_eq!(examples.len(), 1, "one configuration example");
    let config = avs_sim::Config::from_toml(&examples[0], "README.md").unwrap_or_else(|e| panic!("{e}"));
    config.validate().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.regions.len(), 1);
    assert_eq!(config.devices.len(), 1);
}

#[test]
fn the_readme_fault_example_loads_as_written() {
    let readme = std::fs::read_to_string(repo("README.md")).unwrap();
    let examples = blocks(&readme, "## Faults", "toml");
    assert!(!examples.is_empty());
    for example in examples {
        let config = avs_sim::Config::from_toml(&example, "README.md").unwrap_or_else(|e| panic!("{e}"));
        config.validate().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(config.faults.len(), 2);
    }
}

#[test]
fn the_layout_in_lib_rs_names_every_module() {
    let lib = std::fs::read_to_string(repo("sim/src/lib.rs")).unwrap();
    let doc: String = lib.lines().filter(|l| l.starts_with("//!")).collect();
    let modules: Vec<&str> = lib
        .lines()
        .filter_map(|l| l.strip_prefix("pub mod ")?.strip_suffix(';'))
        .collect();
    assert!(modules.len() > 10);
    let missing: Vec<_> = modules.iter().filter(|m| !doc.contains(&format!("`{m}`"))).collect();
    assert!(missing.is_empty(), "modules missing from lib.rs's layout: {missing:?}");
}

#[test]
fn run_outputs_are_not_committed() {
    let ignore = std::fs::read_to_string(repo(".gitignore")).unwrap();
    assert!(
        ignore.lines().any(|l| l.trim() == "out/"),
        "out/ (JUnit and reports) is ignored"
    );
}

/// The README's curl session, run as written against `avs-sim serve` (its
/// ports and certificate directory put in place of the defaults): the
/// downchannel gets the pushed directive, ping and the event get 204.
#[tokio::test]
async fn the_readme_curl_session_works_as_written() {
    use avs_sim_tests::binary::Served;
    let readme = std::fs::read_to_string(repo("README.md")).unwrap();
    let session = &blocks(&readme, "## Quick start", "sh")[1];
    assert!(session.contains("curl"), "{session}");
    let served = Served::start(&[], &[]).await;
    let port = |url: &str| Served::port(url).to_string();
    let session = session
        .replace("localhost:8443", &format!("localhost:{}", port(&served.avs)))
        .replace("localhost:9090", &format!("localhost:{}", port(&served.control)));
    // Once the directive has come down the backgrounded downchannel (its
    // header names the namespace; the push's own answer does not), end it.
    let script = format!(
        "{{\n{session}\n}} > session.out 2>&1\n\
         for i in $(seq 100); do grep -q '\"namespace\":\"System\"' session.out && break; sleep 0.1; done\n\
         kill $! 2>/dev/null; wait; cat session.out\n"
    );
    let out = tokio::time::timeout(
        avs_sim_tests::DEADLINE * 3,
        tokio::process::Command::new("sh")
            .arg("-c")
            .arg(&script)
            .current_dir(&served.dir)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("the session ends")
    .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("\"messageId\""), "the push is accepted: {said}\n{err}");
    assert!(
        said.contains("\"namespace\":\"System\""),
        "the directive came down: {said}"
    );
    // curl's `-w '%{http_code}\n'`: "204" then a newline, not the tail of an
    // id or boundary that happens to end in 204.
    let statuses = said
        .match_indices("204\n")
        .filter(|(i, _)| !said[..*i].ends_with(|c: char| c.is_ascii_alphanumeric() || c == '-'))
        .count();
    assert_eq!(statuses, 2, "ping and the event: {said}\n{err}");
}

/// The README's smart home example, run as written: the scenario next to a
/// handler named `my_skill.py` (here the sample skill, with the example
/// answer it loads), through `avs-sim run ... --junit junit.xml`.
#[tokio::test]
async fn the_readme_smart_home_example_runs_as_written() {
    let readme = std::fs::read_to_string(repo("README.md")).unwrap();
    let scenario = &blocks(&readme, "## Smart home skills", "toml")[0];
    let command = &blocks(&readme, "## Smart home skills", "sh")[0];
    assert!(scenario.lines().count() <= 14, "a short example: {scenario}");
    let dir = avs_sim_tests::temp_dir("readme-smarthome");
    std::fs::write(dir.join("discover.toml"), scenario).unwrap();
    let skills = repo("scenarios/skills");
    std::fs::copy(skills.join("sample_skill.py"), dir.join("my_skill.py")).unwrap();
    std::fs::copy(
        skills.join("seed-discover-response.json"),
        dir.join("seed-discover-response.json"),
    )
    .unwrap();
    let args: Vec<&str> = command.split_whitespace().skip(1).collect();
    assert_eq!(args, ["run", "discover.toml", "--junit", "junit.xml"]);
    let out = tokio::time::timeout(
        avs_sim_tests::DEADLINE * 3,
        tokio::process::Command::new(avs_sim_tests::binary::path())
            .args(&args)
            .args(avs_sim_tests::binary::PORT_ZERO)
            .current_dir(&dir)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("the run ends")
    .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "the example passes: {said}");
    let junit = std::fs::read_to_string(dir.join("junit.xml")).unwrap();
    assert!(junit.contains("my skill discovers"), "{junit}");
    assert!(!junit.contains("<failure"), "{junit}");
}

/// The README's SNS config example loads, and its boto3 snippet runs as
/// written against `avs-sim serve` (its plain port put in place of 8080):
/// the topic it creates and the subscription it makes are there after.
#[tokio::test]
async fn the_readme_sns_examples_work_as_written() {
    use avs_sim_tests::binary::Served;
    let readme = std::fs::read_to_string(repo("README.md")).unwrap();
    let toml = &blocks(&readme, "## SNS", "toml")[0];
    let config = avs_sim::Config::from_toml(toml, "README.md").unwrap_or_else(|e| panic!("{e}"));
    config.validate().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((config.sns.topics.len(), config.sns.subscriptions.len()), (1, 1));
    let python = avs_sim_tests::sns::boto3_python();
    let served = Served::start(&[], &[]).await;
    let snippet = blocks(&readme, "## SNS", "python")[0]
        .replace("127.0.0.1:8080", &format!("127.0.0.1:{}", Served::port(&served.plain)));
    let out = tokio::time::timeout(
        avs_sim_tests::DEADLINE * 3,
        tokio::process::Command::new(python)
            .arg("-c")
            .arg(&snippet)
            .current_dir(&served.dir)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("the snippet ends")
    .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let http = reqwest::Client::new();
    let topics: serde_json::Value = http
        .get(format!("{}/api/sns/topics", served.control))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let text = topics.to_string();
    assert!(text.contains("arn:aws:sns:us-east-1:000000000000:asp-events"), "{text}");
    assert!(text.contains("http://127.0.0.1:9000/sns"), "{text}");
    assert!(text.contains(r#""SignatureVersion":"2""#), "{text}");
}

/// The README's Smart Properties event example is a valid event (its
/// placeholders filled in), so what it shows a back end is what arrives.
#[test]
fn the_readme_smart_properties_event_example_validates() {
    let readme = std::fs::read_to_string(repo("README.md")).unwrap();
    let example = &blocks(&readme, "## Smart Properties events", "json")[0];
    let filled = example
        .replace("<uuid>", "6f1c2e4a-3b5d-4e6f-8a9b-0c1d2e3f4a5b")
        .replace("\"...\"", "\"amzn1.ask.skill.example\"");
    let doc: serde_json::Value = serde_json::from_str(&filled).unwrap_or_else(|e| panic!("{e}: {filled}"));
    avs_sim::asp::validate::check(&doc).unwrap_or_else(|e| panic!("{e:?}"));
}
