//! `avs-sim health`: ask a running simulator's control listener whether it
//! is healthy (`GET /healthz`). The Docker image's HEALTHCHECK runs it, so
//! the image needs no curl.

use http_body_util::BodyExt;
use std::time::Duration;

/// How long the whole check may take: a healthy simulator answers at once,
/// and Docker's own HEALTHCHECK timeout (30 s by default) must never be the
/// one that fires.
pub const TIMEOUT: Duration = Duration::from_secs(3);

/// The largest `/healthz` answer read (it is a few hundred bytes).
const MAX_ANSWER: usize = 64 * 1024;

/// The control URL `health` asks when given none: the control listener's
/// default address.
pub fn default_url() -> String {
    format!("http://{}", crate::config::Listen::default().control)
}

/// `Ok(listeners)` when `<url>/healthz` answers 200 with `"status": "ok"`;
/// otherwise one line saying why, naming the URL.
pub async fn check(url: &str) -> Result<serde_json::Value, String> {
    let target = format!("{}/healthz", url.trim_end_matches('/'));
    match tokio::time::timeout(TIMEOUT, ask(&target)).await {
        Ok(outcome) => outcome.map_err(|why| format!("{target}: {why}")),
        Err(_) => Err(format!("{target}: no answer within {}s", TIMEOUT.as_secs())),
    }
}

async fn ask(target: &str) -> Result<serde_json::Value, String> {
    let uri: http::Uri = target.parse().map_err(|e| format!("not a URL: {e}"))?;
    if uri.scheme_str() != Some("http") {
        return Err("the control listener speaks plain http://".into());
    }
    let host = uri.host().ok_or("the URL has no host")?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port = uri.port_u16().unwrap_or(80);
    let tcp = tokio::net::TcpStream::connect((host, port))
        .await
        .map_err(|e| format!("cannot connect: {e}"))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp))
        .await
        .map_err(|e| format!("HTTP handshake failed: {e}"))?;
    tokio::spawn(conn);
    let path = uri.path_and_query().map_or("/healthz", |p| p.as_str());
    let request = http::Request::get(path)
        .header(http::header::HOST, format!("{host}:{port}"))
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .map_err(|e| format!("cannot build the request: {e}"))?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| format!("request failed: {e}"))?;
    let status = response.status();
    let body = http_body_util::Limited::new(response.into_body(), MAX_ANSWER)
        .collect()
        .await
        .map_err(|e| format!("HTTP {status}, unreadable answer: {e}"))?
        .to_bytes();
    let doc: serde_json::Value = serde_json::from_slice(&body)
        .map_err(|e| format!("HTTP {status}, answer is not JSON ({e}): not an avs-sim control listener?"))?;
    let said = doc["status"].as_str().unwrap_or("(none)");
    if status != http::StatusCode::OK || said != "ok" {
        return Err(format!(
            "HTTP {status}, status {said:?}, listeners {}",
            doc["listeners"]
        ));
    }
    Ok(doc["listeners"].clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A control listener stand-in on port 0 answering `/healthz` with `status` and `body`.
    async fn answering(status: u16, body: &'static str) -> String {
        let app = axum::Router::new().route(
            "/healthz",
            axum::routing::get(move || async move { (http::StatusCode::from_u16(status).unwrap(), body) }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://{addr}")
    }

    #[tokio::test]
    async fn ok_only_when_200_and_status_ok() {
        let url = answering(200, r#"{"status":"ok","listeners":{"avs":"up"}}"#).await;
        assert_eq!(check(&url).await.unwrap(), serde_json::json!({"avs": "up"}));
        let url = answering(503, r#"{"status":"down","listeners":{"avs":"down"}}"#).await;
        let why = check(&url).await.unwrap_err();
        assert!(
            why.contains("503") && why.contains("\"down\"") && why.contains(&url),
            "{why}"
        );
        let url = answering(200, "hello").await;
        let why = check(&format!("{url}/")).await.unwrap_err();
        assert!(
            why.contains("not JSON") && why.contains(&format!("{url}/healthz")),
            "{why}"
        );
    }

    #[tokio::test]
    async fn a_bad_url_is_named() {
        let why = check("https://127.0.0.1:1").await.unwrap_err();
        assert!(
            why.contains("https://127.0.0.1:1/healthz") && why.contains("http://"),
            "{why}"
        );
        assert_eq!(default_url(), "http://127.0.0.1:9090");
    }
}
