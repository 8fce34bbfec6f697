//! What CI can check of the Docker image without a Docker engine: the
//! Dockerfile lints clean (a checker for the hadolint rules that matter here,
//! since hadolint cannot be installed offline), its build command is the one
//! CI and the README use, its CMD is a valid `serve` on 0.0.0.0, and its
//! HEALTHCHECK, run by the binary it builds, passes against a started server.

use avs_sim::cli::{Cli, Command as Sub};
use avs_sim_tests::{DEADLINE, binary};
use clap::Parser;
use std::path::PathBuf;

/// The release build: CI's, the README's and the Dockerfile's.
const RELEASE_BUILD: &str = "cargo build --release --locked -p avs-sim";

fn repo_file(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// One Dockerfile instruction: `(INSTRUCTION, arguments)`, continuation
/// lines joined, comments dropped.
fn instructions(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut pending = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('#') || (trimmed.is_empty() && pending.is_empty()) {
            continue;
        }
        match trimmed.strip_suffix('\\') {
            Some(head) => {
                pending.push_str(head);
                pending.push(' ');
            }
            None => {
                pending.push_str(trimmed);
                let (word, rest) = pending.split_once(char::is_whitespace).unwrap_or((&pending, ""));
                out.push((word.to_ascii_uppercase(), rest.trim().to_string()));
                pending.clear();
            }
        }
    }
    out
}

/// An exec-form argument list (`["a", "b"]`), or `None` for shell form.
fn exec_form(args: &str) -> Option<Vec<String>> {
    serde_json::from_str(args).ok()
}

/// HEALTHCHECK's command: its options (`--interval=...`) skipped, then `CMD <exec form>`.
fn healthcheck_argv(args: &str) -> Option<Vec<String>> {
    let mut rest = args.trim();
    while let Some(opt) = rest.strip_prefix("--") {
        rest = opt.split_once(char::is_whitespace).map_or("", |(_, r)| r).trim_start();
    }
    exec_form(rest.strip_prefix("CMD")?.trim())
}

/// The problems of a Dockerfile, in hadolint's terms where it has one.
fn lint(text: &str) -> Vec<String> {
    let all = instructions(text);
    let mut problems = Vec::new();
    for (word, args) in &all {
        if word == "FROM" {
            let image = args.split_whitespace().next().unwrap_or("");
            let name = image.rsplit('/').next().unwrap_or(image);
            if !(name.contains(':') || name.contains('@')) || name.ends_with(":latest") {
                problems.push(format!("DL3006/DL3007: FROM {image} needs a pinned tag, not latest"));
            }
        }
        if word == "RUN" && args.contains("apt-get install") {
            if !args.contains("--no-install-recommends") {
                problems.push(format!(
                    "DL3015: apt-get install without --no-install-recommends: {args}"
                ));
            }
            let install = args.split("apt-get install").nth(1).unwrap_or("");
            let install = install.split("&&").next().unwrap_or("");
            for package in install.split_whitespace().filter(|w| !w.starts_with('-')) {
                if !package.contains('=') {
                    problems.push(format!("DL3008: apt package {package} has no pinned version"));
                }
            }
        }
    }
    // The runtime stage: everything after the last FROM.
    let last_from = all.iter().rposition(|(w, _)| w == "FROM").unwrap_or(0);
    let runtime = &all[last_from..];
    let last = |name: &str| runtime.iter().rev().find(|(w, _)| w == name).map(|(_, a)| a.as_str());
    match last("USER") {
        None => problems.push("DL3002: the image runs as root (no USER)".into()),
        Some(u) if ["root", "0"].contains(&u.split(':').next().unwrap_or("")) => {
            problems.push(format!("DL3002: USER {u} is root"))
        }
        Some(_) => {}
    }
    for name in ["ENTRYPOINT", "CMD"] {
        match last(name) {
            Some(a) if exec_form(a).is_none() => problems.push(format!("DL3025: {name} is not exec form: {a}")),
            None => problems.push(format!("no {name}")),
            Some(_) => {}
        }
    }
    match last("HEALTHCHECK") {
        Some(a) if healthcheck_argv(a).is_none() => problems.push(format!("HEALTHCHECK is not `CMD [exec form]`: {a}")),
        None => problems.push("no HEALTHCHECK".into()),
        Some(_) => {}
    }
    let exposed: Vec<&str> = runtime
        .iter()
        .filter(|(w, _)| w == "EXPOSE")
        .flat_map(|(_, a)| a.split_whitespace())
        .collect();
    let listen = avs_sim::config::Listen::default();
    for port in [listen.avs.port(), listen.plain.port(), listen.control.port()] {
        if !exposed.iter().any(|p| p.split('/').next() == Some(&port.to_string())) {
            problems.push(format!("port {port} is not EXPOSEd"));
        }
    }
    let volumes = last("VOLUME").unwrap_or("");
    for dir in ["/certs", "/scenarios", "/journal"] {
        if !volumes.contains(&format!("\"{dir}\"")) {
            problems.push(format!("no VOLUME {dir}"));
        }
    }
    if !runtime.iter().any(|(w, a)| w == "COPY" && a == "scenarios /scenarios") {
        problems.push("scenarios/ is not copied to /scenarios".into());
    }
    problems
}

/// The Dockerfile this project shipped before issue 11: what the checker must catch.
const OLD: &str = r#"FROM rust:1-slim-bookworm AS build
COPY sim sim
RUN cargo build --release --locked -p avs-sim --bin avs-sim
FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates && rm -rf /var/lib/apt/lists/*
VOLUME ["/var/lib/avs-sim/certs"]
EXPOSE 8443 8080 9090
ENTRYPOINT ["avs-sim"]
CMD serve --certs /var/lib/avs-sim/certs
"#;

#[test]
fn the_checker_catches_what_the_old_dockerfile_got_wrong() {
    let problems = lint(OLD).join("\n");
    for expected in [
        "DL3008: apt package ca-certificates",
        "DL3002",
        "DL3025: CMD",
        "no HEALTHCHECK",
        "no VOLUME /scenarios",
        "scenarios/ is not copied",
    ] {
        assert!(problems.contains(expected), "missing {expected:?} in:\n{problems}");
    }
    let problems = lint("FROM debian\nFROM alpine:latest\nUSER 0:0\nEXPOSE 8443\n").join("\n");
    assert!(
        problems.contains("FROM debian needs") && problems.contains("FROM alpine:latest needs"),
        "{problems}"
    );
    assert!(
        problems.contains("USER 0:0 is root") && problems.contains("port 9090 is not EXPOSEd"),
        "{problems}"
    );
}

#[test]
fn the_dockerfile_lints_clean() {
    let problems = lint(&repo_file("Dockerfile"));
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    // distroless has no shell: a RUN in the runtime stage could never work.
    let all = instructions(&repo_file("Dockerfile"));
    let last_from = all.iter().rposition(|(w, _)| w == "FROM").unwrap();
    assert!(
        all[last_from..].iter().all(|(w, _)| w != "RUN"),
        "RUN in the runtime stage"
    );
}

#[test]
fn the_image_builds_with_the_release_command_ci_and_the_readme_use() {
    let builds: Vec<String> = instructions(&repo_file("Dockerfile"))
        .into_iter()
        .filter(|(w, _)| w == "RUN")
        .flat_map(|(_, a)| a.split("&&").map(|c| c.trim().to_string()).collect::<Vec<_>>())
        .filter(|c| c.starts_with("cargo "))
        .collect();
    assert!(!builds.is_empty(), "no cargo command in the Dockerfile");
    for build in &builds {
        assert_eq!(build, RELEASE_BUILD, "a Dockerfile build differs from CI's");
    }
    assert!(
        repo_file("README.md").contains(RELEASE_BUILD),
        "README's build command differs"
    );
}

#[test]
fn the_image_cmd_serves_every_listener_on_all_interfaces_with_certs_in_the_volume() {
    let all = instructions(&repo_file("Dockerfile"));
    let arg = |name: &str| exec_form(&all.iter().rev().find(|(w, _)| w == name).unwrap().1).unwrap();
    assert_eq!(arg("ENTRYPOINT"), ["avs-sim"]);
    let argv = std::iter::once("avs-sim".to_string()).chain(arg("CMD"));
    let cli = Cli::try_parse_from(argv).unwrap_or_else(|e| panic!("the image's CMD is not a valid command line: {e}"));
    let Sub::Serve(args) = cli.command else {
        panic!("the image's CMD is not serve")
    };
    let config = avs_sim::cli::serve_config(&args, std::iter::empty()).unwrap();
    let listen = avs_sim::config::Listen::default();
    for (got, default) in [
        (config.listen.avs, listen.avs),
        (config.listen.plain, listen.plain),
        (config.listen.control, listen.control),
    ] {
        assert!(got.ip().is_unspecified(), "{got} is not 0.0.0.0");
        assert_eq!(
            got.port(),
            default.port(),
            "the image moves a listener off its default port"
        );
    }
    assert_eq!(config.certs.dir, PathBuf::from("/certs"));
    assert!(config.journal.file.unwrap().starts_with("/journal"));
}

/// The image's HEALTHCHECK argv, run by the binary the Dockerfile builds
/// (built here from the same sources), passes against a running `serve`:
/// only the control URL differs (the image's server is on the default port).
#[tokio::test]
async fn the_image_healthcheck_passes_against_a_started_server() {
    let all = instructions(&repo_file("Dockerfile"));
    let health = healthcheck_argv(&all.iter().find(|(w, _)| w == "HEALTHCHECK").unwrap().1).unwrap();
    assert_eq!(
        health[0], "avs-sim",
        "the HEALTHCHECK must use the image's binary (no curl)"
    );
    let served = binary::Served::start(&[], &[]).await;
    let out = tokio::time::timeout(
        DEADLINE,
        tokio::process::Command::new(binary::path())
            .args(&health[1..])
            .env("AVS_SIM_CONTROL_URL", &served.control)
            .output(),
    )
    .await
    .expect("the health check ends")
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        stdout.contains("healthy") && stdout.contains(&served.control),
        "{stdout}"
    );
}
