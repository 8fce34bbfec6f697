//! A device client that does what the AVS Device SDK does on the wire: one
//! HTTP/2 connection (TLS with ALPN h2 trusting the generated CA, or h2c),
//! a downchannel read incrementally, multipart/form-data events with the
//! SDK's boundary and leading CRLF, `GET /ping`, and PING frames.

use crate::related::{self, Part};
use bytes::Bytes;
use h2::client::SendRequest;
use http::{Method, Request};
use rustls_pki_types::pem::PemObject;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;

/// The SDK's event boundary (not an RFC 2046 boundary: it has a `!`).
pub const SDK_BOUNDARY: &str = "WhooHooZeerOoonie!";

/// A connected device.
pub struct Device {
    pub token: String,
    send: SendRequest<Bytes>,
    ping_pong: Option<h2::PingPong>,
    /// Resolves when the connection ends (GOAWAY drained, reset, ...).
    pub closed: tokio::task::JoinHandle<Result<(), h2::Error>>,
}

/// An answer read whole.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

impl Answer {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
    pub fn content_type(&self) -> &str {
        self.headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
    /// The parts of a `multipart/related` answer.
    pub fn parts(&self) -> Vec<Part> {
        let boundary = related::sdk_boundary(self.content_type()).expect("multipart answer has a boundary");
        let mut reader = related::Reader::new(&boundary);
        reader.push(&self.body);
        std::iter::from_fn(|| reader.next_part()).collect()
    }
}

/// A TLS connection to `addr` as host `localhost`, trusting `ca`, with ALPN h2 agreed.
pub async fn tls_stream(addr: SocketAddr, ca: &Path) -> anyhow::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let tls = tls_offering(addr, ca, b"h2").await?;
    anyhow::ensure!(
        tls.get_ref().1.alpn_protocol() == Some(b"h2"),
        "server did not select ALPN h2"
    );
    Ok(tls)
}

/// A TLS connection to `addr` as host `localhost`, trusting `ca`, offering ALPN `alpn`.
pub async fn tls_offering(
    addr: SocketAddr,
    ca: &Path,
    alpn: &[u8],
) -> anyhow::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pki_types::CertificateDer::pem_file_iter(ca)? {
        roots.add(cert?)?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![alpn.to_vec()];
    let tcp = TcpStream::connect(addr).await?;
    let name = rustls_pki_types::ServerName::try_from("localhost")?;
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await?)
}

impl Device {
    /// Connect over TLS (ALPN h2) to `addr`, as host `localhost`.
    pub async fn tls(addr: SocketAddr, ca: &Path, token: &str) -> anyhow::Result<Device> {
        Device::handshake(tls_stream(addr, ca).await?, token).await
    }

    /// Connect over h2c with prior knowledge.
    pub async fn h2c(addr: SocketAddr, token: &str) -> anyhow::Result<Device> {
        Device::handshake(TcpStream::connect(addr).await?, token).await
    }

    async fn handshake<IO>(io: IO, token: &str) -> anyhow::Result<Device>
    where
        IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let (send, mut conn) = h2::client::handshake(io).await?;
        let ping_pong = conn.ping_pong();
        let closed = tokio::spawn(conn);
        let send = send.ready().await?;
        Ok(Device {
            token: token.to_string(),
            send,
            ping_pong,
            closed,
        })
    }

    /// The server's SETTINGS_MAX_CONCURRENT_STREAMS as seen by the client.
    pub fn max_streams(&self) -> usize {
        self.send.current_max_send_streams()
    }

    fn request(&self, method: Method, path: &str, content_type: Option<&str>) -> Request<()> {
        let mut b = Request::builder()
            .method(method)
            .uri(format!("https://localhost{path}"));
        if !self.token.is_empty() {
            b = b.header("authorization", format!("Bearer {}", self.token));
        }
        if let Some(ct) = content_type {
            b = b.header("content-type", ct);
        }
        b.body(()).unwrap()
    }

    /// Open the downchannel and wait for its response headers.
    pub async fn downchannel(&mut self) -> anyhow::Result<Downchannel> {
        let req = self.request(Method::GET, "/v20160207/directives", None);
        let (resp, _) = self.send.clone().ready().await?.send_request(req, true)?;
        let resp = tokio::time::timeout(crate::DEADLINE, resp).await??;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let boundary = headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .and_then(related::sdk_boundary);
        let reader = related::Reader::new(boundary.as_deref().unwrap_or("-"));
        Ok(Downchannel {
            status,
            headers,
            body: resp.into_body(),
            reader,
            raw: Vec::new(),
        })
    }

    /// Any request with a whole body; the answer is read whole.
    pub async fn call(
        &mut self,
        method: Method,
        path: &str,
        content_type: Option<&str>,
        body: Bytes,
    ) -> anyhow::Result<Answer> {
        let req = self.request(method, path, content_type);
        let (resp, mut stream) = self.send.clone().ready().await?.send_request(req, body.is_empty())?;
        if !body.is_empty() {
            stream.send_data(body, true)?;
        }
        read_whole(resp).await
    }

    /// An event as the SDK sends it: metadata and optional audio.
    pub async fn event(&mut self, metadata: &serde_json::Value, audio: Option<&[u8]>) -> anyhow::Result<Answer> {
        let body = avs_sim::avs::multipart::form::event_body(SDK_BOUNDARY, metadata.to_string().as_bytes(), audio);
        let ct = format!("multipart/form-data; boundary={SDK_BOUNDARY}");
        self.call(Method::POST, "/v20160207/events", Some(&ct), body).await
    }

    /// Start an event whose body stays open: returns the response future
    /// and the stream to keep writing (audio) into.
    pub async fn open_event(
        &mut self,
        metadata: &serde_json::Value,
    ) -> anyhow::Result<(h2::client::ResponseFuture, h2::SendStream<Bytes>)> {
        let ct = format!("multipart/form-data; boundary={SDK_BOUNDARY}");
        let req = self.request(Method::POST, "/v20160207/events", Some(&ct));
        let (resp, mut stream) = self.send.clone().ready().await?.send_request(req, false)?;
        let head = format!(
            "\r\n--{SDK_BOUNDARY}\r\nContent-Disposition: form-data; name=\"metadata\"\r\nContent-Type: application/json\r\n\r\n{metadata}\r\n--{SDK_BOUNDARY}\r\nContent-Disposition: form-data; name=\"audio\"\r\nContent-Type: application/octet-stream\r\n\r\n"
        );
        stream.send_data(Bytes::from(head), false)?;
        Ok((resp, stream))
    }

    /// Send a bodiless request as given; the response head (body unread).
    pub async fn raw_request(&mut self, req: Request<()>) -> anyhow::Result<http::Response<h2::RecvStream>> {
        let (resp, _) = self.send.clone().ready().await?.send_request(req, true)?;
        Ok(tokio::time::timeout(crate::DEADLINE, resp).await??)
    }

    /// `GET /ping`: the status.
    pub async fn ping(&mut self, path: &str) -> anyhow::Result<u16> {
        Ok(self.call(Method::GET, path, None, Bytes::new()).await?.status)
    }

    /// Send an HTTP/2 PING frame and wait for the PONG.
    pub async fn ping_frame(&mut self) -> anyhow::Result<()> {
        let pp = self
            .ping_pong
            .as_mut()
            .ok_or_else(|| anyhow::anyhow!("ping_pong taken"))?;
        tokio::time::timeout(crate::DEADLINE, pp.ping(h2::Ping::opaque())).await??;
        Ok(())
    }
}

/// Read a response whole.
pub async fn read_whole(resp: h2::client::ResponseFuture) -> anyhow::Result<Answer> {
    let resp = tokio::time::timeout(crate::DEADLINE, resp).await??;
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let mut body = resp.into_body();
    let mut out = Vec::new();
    while let Some(chunk) = tokio::time::timeout(crate::DEADLINE, body.data()).await? {
        let chunk = chunk?;
        let _ = body.flow_control().release_capacity(chunk.len());
        out.extend_from_slice(&chunk);
    }
    Ok(Answer {
        status,
        headers,
        body: Bytes::from(out),
    })
}

/// An open downchannel.
pub struct Downchannel {
    pub status: u16,
    pub headers: http::HeaderMap,
    body: h2::RecvStream,
    reader: related::Reader,
    /// Every byte received, for framing checks.
    pub raw: Vec<u8>,
}

impl Downchannel {
    pub fn content_type(&self) -> &str {
        self.headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// The next directive part, waiting up to `within`. `Ok(None)` when the
    /// stream ended.
    pub async fn next_part(&mut self, within: Duration) -> anyhow::Result<Option<Part>> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Some(part) = self.reader.next_part() {
                return Ok(Some(part));
            }
            let chunk = tokio::time::timeout_at(deadline, self.body.data()).await?;
            match chunk {
                Some(Ok(data)) => {
                    let _ = self.body.flow_control().release_capacity(data.len());
                    self.raw.extend_from_slice(&data);
                    self.reader.push(&data);
                }
                Some(Err(e)) => return Err(e.into()),
                None => return Ok(None),
            }
        }
    }
}

/// Keep sending, as fast as flow control allows, until the server resets the
/// stream; the reset's reason and the bytes sent. Fails past `most` bytes:
/// the server kept reading.
pub async fn send_until_reset(mut upload: h2::SendStream<Bytes>, most: u64) -> (Option<h2::Reason>, u64) {
    let chunk = Bytes::from(vec![b'x'; 16 * 1024]);
    let mut sent = 0u64;
    let reason = loop {
        upload.reserve_capacity(chunk.len());
        let next = std::future::poll_fn(|cx| {
            if let std::task::Poll::Ready(r) = upload.poll_reset(cx) {
                return std::task::Poll::Ready(Err(r.ok()));
            }
            upload.poll_capacity(cx).map(Ok)
        })
        .await;
        match next {
            Err(reason) => break reason,
            Ok(Some(Ok(n))) if n > 0 => {
                if upload.send_data(chunk.slice(..n), false).is_err() {
                    break std::future::poll_fn(|cx| upload.poll_reset(cx)).await.ok();
                }
                sent += n as u64;
            }
            Ok(Some(Ok(_))) => {}
            Ok(_) => break std::future::poll_fn(|cx| upload.poll_reset(cx)).await.ok(),
        }
        assert!(sent < most, "the server kept reading {sent} bytes");
    };
    (reason, sent)
}
