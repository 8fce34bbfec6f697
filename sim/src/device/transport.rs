//! The device's one HTTP/2 connection.

use crate::avs::multipart::{Event, Parser};
use bytes::Bytes;
use h2::client::SendRequest;
use http::{Method, Request};
use rustls_pki_types::pem::PemObject;
use std::sync::Arc;

/// Whether `url` is reached over TLS (https://, unless `h2c`).
pub fn uses_tls(url: &str, h2c: bool) -> anyhow::Result<bool> {
    let uri: http::Uri = url.parse()?;
    Ok(uri.scheme_str() != Some("http") && !h2c)
}

/// A TLS client config offering ALPN h2 and trusting `ca` (PEM) only.
pub fn client_config(ca: Option<&std::path::Path>) -> anyhow::Result<Arc<rustls::ClientConfig>> {
    let mut roots = rustls::RootCertStore::empty();
    if let Some(ca) = ca {
        for cert in rustls_pki_types::CertificateDer::pem_file_iter(ca)? {
            roots.add(cert?)?;
        }
    }
    let mut config = rustls::ClientConfig::builder_with_provider(crate::tls::provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Arc::new(config))
}

/// A connected transport.
pub struct Transport {
    send: SendRequest<Bytes>,
    authority: String,
    scheme: &'static str,
    /// Resolves when the connection ends (after a GOAWAY, for instance).
    pub closed: tokio::task::JoinHandle<Result<(), h2::Error>>,
}

/// A response read whole.
pub struct Answer {
    pub status: u16,
    pub body: Bytes,
}

impl Transport {
    /// Connect to `url` (https:// → TLS + ALPN h2; http:// or `h2c` → prior knowledge).
    pub async fn connect(url: &str, ca: Option<&std::path::Path>, h2c: bool) -> anyhow::Result<Transport> {
        let tls = if uses_tls(url, h2c)? {
            Some(client_config(ca)?)
        } else {
            None
        };
        Transport::connect_with(url, tls.as_ref(), h2c).await
    }

    /// Connect with a TLS client config made once by `client_config` (a load
    /// generator opening thousands of connections reads its CA file once);
    /// `tls` is unused for h2c.
    pub async fn connect_with(
        url: &str,
        tls: Option<&Arc<rustls::ClientConfig>>,
        h2c: bool,
    ) -> anyhow::Result<Transport> {
        let uri: http::Uri = url.parse()?;
        let host = uri
            .host()
            .ok_or_else(|| anyhow::anyhow!("URL {url} has no host"))?
            .trim_matches(['[', ']'])
            .to_string();
        let wants_tls = uses_tls(url, h2c)?;
        let port = uri.port_u16().unwrap_or(if wants_tls { 443 } else { 80 });
        let tcp = tokio::net::TcpStream::connect((host.as_str(), port)).await?;
        tcp.set_nodelay(true)?;
        let authority = format!("{host}:{port}");
        if !wants_tls {
            return Transport::handshake(tcp, authority, "http").await;
        }
        let config = tls.ok_or_else(|| anyhow::anyhow!("{url} needs TLS but no TLS config was given"))?;
        let name = rustls_pki_types::ServerName::try_from(host.clone())?;
        let stream = tokio_rustls::TlsConnector::from(config.clone())
            .connect(name, tcp)
            .await?;
        anyhow::ensure!(
            stream.get_ref().1.alpn_protocol() == Some(b"h2"),
            "server did not select ALPN h2"
        );
        Transport::handshake(stream, authority, "https").await
    }

    async fn handshake<IO>(io: IO, authority: String, scheme: &'static str) -> anyhow::Result<Transport>
    where
        IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let (send, conn) = h2::client::handshake(io).await?;
        let closed = tokio::spawn(conn);
        Ok(Transport {
            send: send.ready().await?,
            authority,
            scheme,
            closed,
        })
    }

    fn request(&self, method: Method, path: &str, token: &str, content_type: Option<&str>) -> Request<()> {
        let mut b = Request::builder()
            .method(method)
            .uri(format!("{}://{}{path}", self.scheme, self.authority));
        if !token.is_empty() {
            b = b.header("authorization", format!("Bearer {token}"));
        }
        if let Some(ct) = content_type {
            b = b.header("content-type", ct);
        }
        b.body(()).expect("valid request")
    }

    /// Whether the connection has ended.
    pub fn is_closed(&self) -> bool {
        self.closed.is_finished()
    }

    /// A request with a whole body, answered whole.
    pub async fn call(
        &mut self,
        method: Method,
        path: &str,
        token: &str,
        content_type: Option<&str>,
        body: Bytes,
    ) -> anyhow::Result<Answer> {
        let req = self.request(method, path, token, content_type);
        let (resp, mut stream) = self.send.clone().ready().await?.send_request(req, body.is_empty())?;
        if !body.is_empty() {
            stream.send_data(body, true)?;
        }
        let resp = resp.await?;
        let status = resp.status().as_u16();
        let mut body = resp.into_body();
        let mut out = Vec::new();
        while let Some(chunk) = body.data().await {
            let chunk = chunk?;
            let _ = body.flow_control().release_capacity(chunk.len());
            out.extend_from_slice(&chunk);
        }
        Ok(Answer {
            status,
            body: Bytes::from(out),
        })
    }

    /// Send a bodiless request and return the response head with its body
    /// stream unread (a load generator holds thousands of downchannels).
    pub async fn open(
        &mut self,
        method: Method,
        path: &str,
        token: &str,
    ) -> anyhow::Result<http::Response<h2::RecvStream>> {
        let req = self.request(method, path, token, None);
        let (resp, _) = self.send.clone().ready().await?.send_request(req, true)?;
        Ok(resp.await?)
    }

    /// Open the downchannel: its status and, on 200, a reader of its parts.
    pub async fn downchannel(&mut self, token: &str) -> anyhow::Result<(u16, Option<Downchannel>)> {
        let resp = self.open(Method::GET, "/v20160207/directives", token).await?;
        let status = resp.status().as_u16();
        if status != 200 {
            return Ok((status, None));
        }
        let boundary = boundary_of(resp.headers()).ok_or_else(|| {
            anyhow::anyhow!(
                "downchannel content-type has no boundary: {:?}",
                resp.headers().get("content-type")
            )
        })?;
        Ok((status, Some(Downchannel::new(resp.into_body(), &boundary))))
    }
}

/// The multipart boundary of a response, extracted as the SDK does: up to
/// the next `;`, unquoted as-is.
pub fn boundary_of(headers: &http::HeaderMap) -> Option<String> {
    let ct = headers.get("content-type")?.to_str().ok()?;
    let i = ct.find("boundary=")?;
    Some(ct[i + 9..].split(';').next().unwrap_or("").trim().to_string())
}

/// Reads directive parts from the downchannel as they arrive.
pub struct Downchannel {
    body: h2::RecvStream,
    parser: Parser,
    current: Option<Vec<u8>>,
    ready: Vec<Vec<u8>>,
}

impl Downchannel {
    /// A reader of the parts of a multipart body delimited by `boundary`.
    pub fn new(body: h2::RecvStream, boundary: &str) -> Downchannel {
        Downchannel {
            body,
            parser: Parser::new(boundary),
            current: None,
            ready: Vec::new(),
        }
    }

    /// The next part's body; `None` when the downchannel ends.
    pub async fn next(&mut self) -> anyhow::Result<Option<Vec<u8>>> {
        loop {
            if !self.ready.is_empty() {
                return Ok(Some(self.ready.remove(0)));
            }
            let Some(chunk) = self.body.data().await else {
                return Ok(None);
            };
            let chunk = chunk?;
            let _ = self.body.flow_control().release_capacity(chunk.len());
            let mut events = Vec::new();
            self.parser.feed(&chunk, &mut events)?;
            for e in events {
                match e {
                    Event::PartBegin(_) => self.current = Some(Vec::new()),
                    Event::Data(d) => self.current.get_or_insert_with(Vec::new).extend_from_slice(&d),
                    Event::PartEnd => self.ready.extend(self.current.take()),
                    Event::End => {}
                }
            }
        }
    }
}
