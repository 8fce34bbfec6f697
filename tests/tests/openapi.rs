//! The control API's OpenAPI document (`GET /api/openapi.json`) names
//! exactly the routes the code declares, and every path it names answers on
//! a running simulator.
//!
//! axum cannot list its routes, so the code's routes come from the source:
//! every `.route("<path>", <method>(...)...)` in `sim/src/control/*.rs`.

use avs_sim_tests::TestSim;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::PathBuf;

/// HTTP methods an axum method router can be built from.
const METHODS: [&str; 8] = ["get", "post", "put", "delete", "patch", "head", "options", "trace"];

/// `{anything}` → `{}`, so parameter names need not agree.
fn normalise(path: &str) -> String {
    let mut out = String::new();
    let mut in_param = false;
    for c in path.chars() {
        match c {
            '{' => {
                in_param = true;
                out.push_str("{}");
            }
            '}' => in_param = false,
            _ if !in_param => out.push(c),
            _ => {}
        }
    }
    out
}

/// The text inside the parentheses that open at `open` (balanced).
fn balanced(text: &str, open: usize) -> &str {
    let mut depth = 0usize;
    for (i, c) in text[open..].char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    return &text[open + 1..open + i];
                }
            }
            _ => {}
        }
    }
    panic!("unbalanced parentheses after byte {open}")
}

/// `(method, path)` for every `.route(...)` call in one source text; `any`
/// comes back as method `any`.
fn routes_in(source: &str) -> Vec<(String, String)> {
    let source = &source[..source.find("#[cfg(test)]").unwrap_or(source.len())];
    let method = regex::Regex::new(
        r"(?:^|[^A-Za-z0-9_:])(?:axum::routing::|routing::)?(get|post|put|delete|patch|head|options|trace|any)\s*\(",
    )
    .unwrap();
    let mut found = Vec::new();
    for (at, _) in source.match_indices(".route(") {
        let args = balanced(source, at + ".route".len());
        let args = args.trim_start();
        assert!(
            args.starts_with('"'),
            "a .route whose path is not a literal: {args:.60}"
        );
        let end = args[1..].find('"').expect("closed path literal") + 1;
        let path = &args[1..end];
        let handlers = &args[end + 1..];
        let methods: Vec<String> = method.captures_iter(handlers).map(|c| c[1].to_string()).collect();
        assert!(
            !methods.is_empty(),
            "no method found for route {path:?} in {handlers:?}"
        );
        for m in methods {
            found.push((m, path.to_string()));
        }
    }
    found
}

/// Every route the control API's source declares (before `any` expansion).
fn code_routes() -> Vec<(String, String)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../sim/src/control");
    let mut routes = Vec::new();
    let mut files = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "rs") {
            files += 1;
            routes.extend(routes_in(&std::fs::read_to_string(&path).unwrap()));
        }
    }
    assert!(files >= 6, "control module files found: {files}");
    routes
}

/// `(method, path)` for every operation the document names.
fn documented(doc: &Value) -> BTreeSet<(String, String)> {
    let mut ops = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths is an object") {
        let item = item.as_object().expect("a path item is an object");
        for method in item.keys().filter(|k| METHODS.contains(&k.as_str())) {
            ops.insert((method.clone(), normalise(path)));
        }
    }
    ops
}

async fn fetch_document(sim: &TestSim) -> Value {
    let resp = sim.http.get(sim.control("/api/openapi.json")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let ct = resp.headers()[http::header::CONTENT_TYPE].to_str().unwrap().to_string();
    assert!(ct.starts_with("application/json"), "content-type {ct}");
    resp.json().await.expect("the document is JSON")
}

#[test]
fn the_route_scanner_reads_chains_and_full_paths() {
    let src = r#"
        Router::new()
            .route("/a/{id}", get(x).post(y))
            .route(
                "/b",
                axum::routing::delete(z),
            )
            .route("/c", put(handler_with_get_in_name))
            .route("/d", any(w))
    "#;
    let found = routes_in(src);
    let want: Vec<(String, String)> = [
        ("get", "/a/{id}"),
        ("post", "/a/{id}"),
        ("delete", "/b"),
        ("put", "/c"),
        ("any", "/d"),
    ]
    .iter()
    .map(|(m, p)| (m.to_string(), p.to_string()))
    .collect();
    assert_eq!(found, want);
    assert_eq!(normalise("/x/{user}/y/{id}"), "/x/{}/y/{}");
}

#[tokio::test]
async fn openapi_document_names_exactly_the_routes_the_code_declares() {
    let sim = TestSim::start(|_| {}).await;
    let doc = fetch_document(&sim).await;
    let version = doc["openapi"].as_str().expect("openapi is a string");
    assert!(version.starts_with("3."), "openapi {version:?}");
    assert!(
        doc["info"]["title"].is_string() && doc["info"]["version"].is_string(),
        "info: {}",
        doc["info"]
    );
    let docs = documented(&doc);

    let code = code_routes();
    let mut declared = BTreeSet::new();
    for (method, path) in &code {
        let path = normalise(path);
        if method == "any" {
            let covered: Vec<_> = docs.iter().filter(|(_, p)| *p == path).cloned().collect();
            if covered.is_empty() {
                declared.insert(("any".to_string(), path));
            }
            declared.extend(covered);
        } else {
            declared.insert((method.clone(), path));
        }
    }
    // The scanner found the routes this test knows to exist, so an empty
    // or broken scan cannot pass.
    for known in [
        ("get", "/healthz"),
        ("get", "/api/openapi.json"),
        ("delete", "/api/faults/{}"),
        ("post", "/api/asp/events"),
    ] {
        assert!(
            declared.contains(&(known.0.to_string(), known.1.to_string())),
            "scanner missed {known:?}"
        );
    }
    let undocumented: Vec<_> = declared.difference(&docs).collect();
    let phantom: Vec<_> = docs.difference(&declared).collect();
    assert!(
        undocumented.is_empty() && phantom.is_empty(),
        "routes in the code but not in openapi.json: {undocumented:?}\nin openapi.json but not in the code: {phantom:?}"
    );

    // Each operation has a summary and at least one response; each `{param}`
    // in a path is declared as a path parameter.
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            assert!(op["summary"].is_string(), "{method} {path}: no summary");
            assert!(
                op["responses"].as_object().is_some_and(|r| !r.is_empty()),
                "{method} {path}: no responses"
            );
            let declared: BTreeSet<&str> = op["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|p| p["in"] == "path")
                .filter_map(|p| p["name"].as_str())
                .collect();
            let wanted: BTreeSet<&str> = path
                .split('/')
                .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
                .collect();
            assert_eq!(declared, wanted, "{method} {path}: path parameters");
        }
    }
    sim.stop().await;
}

#[tokio::test]
async fn every_documented_path_answers_with_its_method() {
    let sim = TestSim::start(|_| {}).await;
    let doc = fetch_document(&sim).await;
    let ops = documented(&doc);
    assert!(ops.len() >= 20, "{} operations documented", ops.len());
    for (method, path) in ops {
        let url = sim.control(&path.replace("{}", "dummy"));
        let method = http::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let mut req = sim.http.request(method.clone(), &url);
        if method == http::Method::POST || method == http::Method::PUT {
            req = req.header("content-type", "application/json").body("{}");
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        // An event stream answers and stays open: its head is the answer.
        let streaming = resp
            .headers()
            .get(http::header::CONTENT_TYPE)
            .is_some_and(|ct| ct.as_bytes().starts_with(b"text/event-stream"));
        if streaming {
            assert_eq!(status, 200, "{method} {path}");
            continue;
        }
        let body = resp.text().await.unwrap();
        assert_ne!(status, 405, "{method} {path}: method not allowed");
        let fallback = status == 404
            && serde_json::from_str::<Value>(&body)
                .ok()
                .and_then(|b| b["error"].as_str().map(|e| e.starts_with("no route for")))
                .unwrap_or(false);
        assert!(!fallback, "{method} {path} fell through to the fallback: {body}");
    }
    // The fallback this looks for is what an unknown path gets.
    let (status, body) = sim.get("/api/no-such-thing").await;
    assert_eq!(status, 404);
    assert!(body["error"].as_str().unwrap().contains("no route for"), "{body}");
    sim.stop().await;
}
