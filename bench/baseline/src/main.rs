//! `bench-baseline`: the bare servers the bench/ scripts measure avs-sim
//! against, in the same run. Each does the least its protocol needs, with
//! the same hyper, h2, axum and rustls versions as avs-sim, so a ratio to it
//! is the cost of what avs-sim adds (parsing, validation, journaling, state).
//!
//! - `events`: hyper answering 204 to `POST /v20160207/events` (202 to any
//!   other POST, e.g. `/v3/events`) after reading the whole body; h2c prior
//!   knowledge and HTTP/1.1, or h2 over TLS with ALPN when given a cert.
//! - `downchannel`: bare axum holding `GET /v20160207/directives` open, one
//!   channel per stream kept in a map; 204 to `POST /v20160207/events`.
//! - `receiver`: an HTTP/1.1 SNS subscriber counting what it is sent and
//!   confirming subscriptions by GETting the SubscribeURL.
//!
//! Each prints `bench-baseline: NAME listening on URL` when it is ready
//! (bench/benchlib.py's `Server` reads that line).

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use clap::{Parser, Subcommand};
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::net::{TcpListener, TcpStream};

type Error = Box<dyn std::error::Error + Send + Sync>;

#[derive(Parser)]
#[command(name = "bench-baseline", about = "Bare baseline servers for avs-sim's benches")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// hyper answering 204 to POST /v20160207/events (202 to any other POST).
    Events {
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: SocketAddr,
        /// PEM certificate chain: serve h2 over TLS (ALPN h2, http/1.1).
        #[arg(long, requires = "tls_key")]
        tls_cert: Option<PathBuf>,
        #[arg(long, requires = "tls_cert")]
        tls_key: Option<PathBuf>,
    },
    /// axum holding GET /v20160207/directives open, a channel per stream.
    Downchannel {
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: SocketAddr,
    },
    /// HTTP/1.1 SNS subscriber: counts POSTs, confirms subscriptions, GET /count.
    Receiver {
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: SocketAddr,
        /// CA (PEM) to trust when a SubscribeURL is https.
        #[arg(long)]
        ca: Option<PathBuf>,
    },
}

fn main() -> Result<(), Error> {
    let cli = Cli::parse();
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async move {
        match cli.command {
            Command::Events {
                listen,
                tls_cert,
                tls_key,
            } => events(listen, tls_cert.zip(tls_key)).await,
            Command::Downchannel { listen } => downchannel(listen).await,
            Command::Receiver { listen, ca } => receiver(listen, ca).await,
        }
    })
}

fn announce(name: &str, scheme: &str, addr: SocketAddr) {
    println!("bench-baseline: {name} listening on {scheme}://{addr}");
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

// ---------------------------------------------------------------- events

async fn events(listen: SocketAddr, tls: Option<(PathBuf, PathBuf)>) -> Result<(), Error> {
    let acceptor = match tls {
        Some((cert, key)) => {
            let certs = CertificateDer::pem_file_iter(&cert)?.collect::<Result<Vec<_>, _>>()?;
            let key = PrivateKeyDer::from_pem_file(&key)?;
            let mut config = rustls::ServerConfig::builder_with_provider(provider())
                .with_safe_default_protocol_versions()?
                .with_no_client_auth()
                .with_single_cert(certs, key)?;
            config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
            Some(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
        }
        None => None,
    };
    let listener = TcpListener::bind(listen).await?;
    let scheme = if acceptor.is_some() { "https" } else { "http" };
    announce("events", scheme, listener.local_addr()?);
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(answer_event);
            let builder = auto::Builder::new(TokioExecutor::new());
            let _ = match acceptor {
                Some(acceptor) => match acceptor.accept(stream).await {
                    Ok(tls) => builder.serve_connection(TokioIo::new(tls), service).await,
                    Err(_) => return,
                },
                None => builder.serve_connection(TokioIo::new(stream), service).await,
            };
        });
    }
}

/// 204 to an AVS event, 202 to any other POST, after reading the whole body.
async fn answer_event(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let status = if req.method() == Method::POST {
        let events = req.uri().path() == "/v20160207/events";
        match req.into_body().collect().await {
            Ok(_) if events => StatusCode::NO_CONTENT,
            Ok(_) => StatusCode::ACCEPTED,
            Err(_) => StatusCode::BAD_REQUEST,
        }
    } else {
        StatusCode::NOT_FOUND
    };
    Ok(status_only(status))
}

fn status_only(status: StatusCode) -> Response<Full<Bytes>> {
    let mut res = Response::new(Full::new(Bytes::new()));
    *res.status_mut() = status;
    res
}

// ----------------------------------------------------------- downchannel

/// Open downchannels: one sender per stream, removed when the stream ends.
#[derive(Clone, Default)]
struct Streams {
    next: Arc<AtomicU64>,
    open: Arc<parking_lot::Mutex<HashMap<u64, tokio::sync::mpsc::Sender<Bytes>>>>,
}

/// Removes its stream's sender from the map when the response body is dropped.
struct Unregister(Streams, u64);

impl Drop for Unregister {
    fn drop(&mut self) {
        self.0.open.lock().remove(&self.1);
    }
}

async fn downchannel(listen: SocketAddr) -> Result<(), Error> {
    use axum::routing::{get, post};
    let streams = Streams::default();
    let app = axum::Router::new()
        .route("/v20160207/directives", get(open_downchannel))
        .route(
            "/v20160207/events",
            post(|_body: Bytes| async { StatusCode::NO_CONTENT }),
        )
        .with_state(streams);
    let listener = TcpListener::bind(listen).await?;
    announce("downchannel", "http", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}

async fn open_downchannel(axum::extract::State(streams): axum::extract::State<Streams>) -> axum::response::Response {
    let id = streams.next.fetch_add(1, Ordering::Relaxed);
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(8);
    streams.open.lock().insert(id, tx);
    let guard = Unregister(streams, id);
    let body = futures::stream::unfold((rx, guard), |(mut rx, guard)| async move {
        rx.recv().await.map(|b| (Ok::<_, Infallible>(b), (rx, guard)))
    });
    axum::response::Response::builder()
        .header(
            "content-type",
            "multipart/related; boundary=------bench-baseline; type=application/json",
        )
        .body(axum::body::Body::from_stream(body))
        .unwrap_or_default()
}

// -------------------------------------------------------------- receiver

#[derive(Default)]
struct Counts {
    notifications: AtomicU64,
    confirmations: AtomicU64,
    other: AtomicU64,
    confirmed: AtomicU64,
    /// Unix time in ns of the first and the last POST since the last reset.
    first_ns: AtomicU64,
    last_ns: AtomicU64,
}

async fn receiver(listen: SocketAddr, ca: Option<PathBuf>) -> Result<(), Error> {
    let tls = match ca {
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in CertificateDer::pem_file_iter(&ca)? {
                roots.add(cert?)?;
            }
            let config = rustls::ClientConfig::builder_with_provider(provider())
                .with_safe_default_protocol_versions()?
                .with_root_certificates(roots)
                .with_no_client_auth();
            Some(tokio_rustls::TlsConnector::from(Arc::new(config)))
        }
        None => None,
    };
    let counts = Arc::new(Counts::default());
    let listener = TcpListener::bind(listen).await?;
    announce("receiver", "http", listener.local_addr()?);
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        let (counts, tls) = (counts.clone(), tls.clone());
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| receive(req, counts.clone(), tls.clone()));
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// Wall-clock time: the bench script compares it with its own `time.time()`
/// of the first publish (this crate is not the simulator, whose clock rule
/// the root clippy.toml enforces).
#[allow(clippy::disallowed_methods)]
fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

async fn receive(
    req: Request<Incoming>,
    counts: Arc<Counts>,
    tls: Option<tokio_rustls::TlsConnector>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    match (req.method().clone(), req.uri().path()) {
        (Method::GET, "/count") => {
            let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
            let body = serde_json::json!({
                "notifications": load(&counts.notifications),
                "subscription_confirmations": load(&counts.confirmations),
                "other": load(&counts.other),
                "confirmed": load(&counts.confirmed),
                "first_unix": load(&counts.first_ns) as f64 / 1e9,
                "last_unix": load(&counts.last_ns) as f64 / 1e9,
            });
            let mut res = Response::new(Full::new(Bytes::from(body.to_string())));
            res.headers_mut()
                .insert("content-type", "application/json".parse().expect("static"));
            Ok(res)
        }
        (Method::DELETE, "/count") => {
            for a in [
                &counts.notifications,
                &counts.confirmations,
                &counts.other,
                &counts.first_ns,
                &counts.last_ns,
            ] {
                a.store(0, Ordering::Relaxed);
            }
            Ok(status_only(StatusCode::NO_CONTENT))
        }
        (Method::POST, _) => {
            let kind = req
                .headers()
                .get("x-amz-sns-message-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned();
            let body = req
                .into_body()
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            let now = now_ns();
            let _ = counts
                .first_ns
                .compare_exchange(0, now, Ordering::Relaxed, Ordering::Relaxed);
            counts.last_ns.fetch_max(now, Ordering::Relaxed);
            match kind.as_str() {
                "Notification" => {
                    counts.notifications.fetch_add(1, Ordering::Relaxed);
                }
                "SubscriptionConfirmation" => {
                    counts.confirmations.fetch_add(1, Ordering::Relaxed);
                    let url = serde_json::from_slice::<serde_json::Value>(&body)
                        .ok()
                        .and_then(|v| v.get("SubscribeURL")?.as_str().map(str::to_owned));
                    if let Some(url) = url {
                        tokio::spawn(async move {
                            match confirm(&url, tls).await {
                                Ok(StatusCode::OK) => {
                                    counts.confirmed.fetch_add(1, Ordering::Relaxed);
                                }
                                Ok(s) => eprintln!("bench-baseline: GET {url}: {s}"),
                                Err(e) => eprintln!("bench-baseline: GET {url}: {e}"),
                            }
                        });
                    }
                }
                _ => {
                    counts.other.fetch_add(1, Ordering::Relaxed);
                }
            }
            Ok(status_only(StatusCode::OK))
        }
        _ => Ok(status_only(StatusCode::NOT_FOUND)),
    }
}

/// GET a SubscribeURL (http, or https trusting --ca) over HTTP/1.1.
async fn confirm(url: &str, tls: Option<tokio_rustls::TlsConnector>) -> Result<StatusCode, Error> {
    let uri: hyper::Uri = url.parse()?;
    let https = uri.scheme_str() == Some("https");
    let host = uri
        .host()
        .ok_or("no host")?
        .trim_matches(|c| c == '[' || c == ']')
        .to_owned();
    let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
    let stream = TcpStream::connect((host.as_str(), port)).await?;
    let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/").to_owned();
    let req = Request::get(path)
        .header("host", uri.authority().map(|a| a.as_str()).unwrap_or(&host))
        .body(Empty::<Bytes>::new())?;
    let res = if https {
        let tls = tls.ok_or("https SubscribeURL: pass --ca")?;
        let stream = tls.connect(ServerName::try_from(host)?, stream).await?;
        send(TokioIo::new(stream), req).await?
    } else {
        send(TokioIo::new(stream), req).await?
    };
    Ok(res)
}

async fn send<T>(io: T, req: Request<Empty<Bytes>>) -> Result<StatusCode, Error>
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io).await?;
    tokio::spawn(conn);
    let res = sender.send_request(req).await?;
    let status = res.status();
    let _ = res.into_body().collect().await;
    Ok(status)
}
