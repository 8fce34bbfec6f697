//! Listeners, accept loops, protocol selection and drain.
//!
//! `Listeners::bind` binds every socket first (port 0 works, the bound
//! ports are reported), `Sim::new` prepares certificates and state, and
//! `Sim::run` serves until the shutdown future completes, then drains: new
//! connections stop, open ones get GOAWAY, downchannels end, and in-flight
//! streams get `avs.drain_grace` to finish.
//!
//! Every listener applies `[limits]`: at most `max_connections` open at once
//! (more are closed at accept and journaled), `handshake_timeout` for the
//! first bytes / h2c preface, the TLS handshake and the HTTP/2 handshake,
//! and (through hyper's timer) `header_read_timeout` for HTTP/1.1 heads.
//! Accept loops do nothing per connection but count it and spawn its task,
//! so no peer can stop one; each reports its state in [`ListenerHealth`].

use crate::avs::connection::Connection;
use crate::config::Config;
use crate::faults::io::{Shaped, Shaping};
use crate::journal::{FileWriter, Journal};
use crate::state::{ListenerInfo, State};
use crate::tls::CertPaths;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_util::task::TaskTracker;

/// The HTTP/2 client connection preface (RFC 9113 §3.4).
const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Why the simulator could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot bind {what} on {addr}: {source}")]
    Bind {
        what: String,
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Certs(#[from] crate::tls::certs::CertError),
    #[error("cannot open journal file {0}: {1}")]
    JournalFile(std::path::PathBuf, std::io::Error),
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error("invalid scenario:\n  {}", .0.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("\n  "))]
    Scenario(Vec<crate::scenario::load::Diagnostic>),
}

/// Every bound socket.
pub struct Listeners {
    pub avs: TcpListener,
    pub plain: TcpListener,
    pub control: TcpListener,
    pub regions: Vec<(String, TcpListener)>,
}

impl Listeners {
    /// Bind every listener the config names.
    pub async fn bind(config: &Config) -> Result<Listeners, StartError> {
        let bind = |what: &str, addr: SocketAddr| {
            let what = what.to_string();
            async move {
                TcpListener::bind(addr)
                    .await
                    .map_err(|source| StartError::Bind { what, addr, source })
            }
        };
        let mut regions = Vec::new();
        for r in &config.regions {
            regions.push((r.name.clone(), bind(&format!("region {}", r.name), r.listen).await?));
        }
        Ok(Listeners {
            avs: bind("avs", config.listen.avs).await?,
            plain: bind("plain", config.listen.plain).await?,
            control: bind("control", config.listen.control).await?,
            regions,
        })
    }
}

/// Bound addresses, for printing and for tests.
#[derive(Debug, Clone)]
pub struct Addrs {
    pub avs: SocketAddr,
    pub plain: SocketAddr,
    pub control: SocketAddr,
    pub regions: Vec<(String, SocketAddr)>,
}

/// A simulator ready to run.
pub struct Sim {
    state: Arc<State>,
    listeners: Listeners,
    certs: CertPaths,
    tls: TlsAcceptor,
    /// Per region listener, in `listeners.regions` order.
    region_tls: Vec<TlsAcceptor>,
    journal_writer: Option<FileWriter>,
}

impl Sim {
    /// Validate the config, make or load certificates, open the journal.
    pub async fn new(config: Config, listeners: Listeners) -> Result<Sim, StartError> {
        config.validate()?;
        let certs = crate::tls::ensure_certs(&config.certs.dir, &config.certs.extra_hosts)?;
        let tls = TlsAcceptor::from(crate::tls::server_config_of(&certs, config.certs.serve)?);
        let mut region_tls = Vec::new();
        for region in &config.regions {
            region_tls.push(TlsAcceptor::from(crate::tls::server_config_of(
                &certs,
                region.certificate,
            )?));
        }
        let (journal_writer, file_tx) = match &config.journal.file {
            Some(path) => {
                let (w, tx) = FileWriter::open(path)
                    .await
                    .map_err(|e| StartError::JournalFile(path.clone(), e))?;
                (Some(w), Some(tx))
            }
            None => (None, None),
        };
        let library = crate::scenario::batch::load_all(&config.scenarios).map_err(StartError::Scenario)?;
        let journal =
            Arc::new(Journal::with_file(config.journal.capacity, file_tx).with_max_bytes(config.journal.max_bytes));
        let state = State::with_scenarios(config, journal, crate::scenario::service::Service::new(library));
        let sim = Sim {
            state,
            listeners,
            certs,
            tls,
            journal_writer,
            region_tls,
        };
        *sim.state.listeners.write() = sim.device_listeners();
        Ok(sim)
    }

    pub fn state(&self) -> &Arc<State> {
        &self.state
    }

    pub fn certs(&self) -> &CertPaths {
        &self.certs
    }

    pub fn addrs(&self) -> Addrs {
        let addr = |l: &TcpListener| l.local_addr().expect("bound listener has an address");
        Addrs {
            avs: addr(&self.listeners.avs),
            plain: addr(&self.listeners.plain),
            control: addr(&self.listeners.control),
            regions: self
                .listeners
                .regions
                .iter()
                .map(|(n, l)| (n.clone(), addr(l)))
                .collect(),
        }
    }

    fn device_listeners(&self) -> Vec<ListenerInfo> {
        let a = self.addrs();
        let region: Arc<str> = self.state.config.listen.region.as_str().into();
        let mut out = vec![
            ListenerInfo {
                name: "avs".into(),
                region: region.clone(),
                addr: a.avs,
                tls: true,
            },
            ListenerInfo {
                name: "plain".into(),
                region,
                addr: a.plain,
                tls: false,
            },
        ];
        for (name, addr) in a.regions {
            let name: Arc<str> = name.into();
            out.push(ListenerInfo {
                name: name.clone(),
                region: name,
                addr,
                tls: true,
            });
        }
        out
    }

    /// One line per listener and the CA path, as `serve` prints them.
    pub fn banner(&self) -> Vec<String> {
        let a = self.addrs();
        let mut lines = vec![
            format!("avs-sim: avs listening on https://{} (TLS, h2 + http/1.1)", a.avs),
            format!(
                "avs-sim: plain listening on http://{} (h2c prior knowledge + http/1.1)",
                a.plain
            ),
            format!("avs-sim: control listening on http://{}", a.control),
            format!("avs-sim: dashboard http://{}/", a.control),
        ];
        for (name, addr) in &a.regions {
            lines.push(format!(
                "avs-sim: region {name} listening on https://{addr} (TLS, h2 + http/1.1)"
            ));
        }
        lines.push(format!("avs-sim: CA certificate {}", self.certs.ca_cert.display()));
        lines
    }

    /// Serve until `shutdown` completes, then drain.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let Sim {
            state,
            listeners,
            tls,
            journal_writer,
            region_tls,
            ..
        } = self;
        let writer = journal_writer.map(|w| tokio::spawn(w.run()));
        let tasks = TaskTracker::new();
        let infos = state.listeners.read().clone();
        let info = |name: &str| {
            infos
                .iter()
                .find(|l| &*l.name == name)
                .cloned()
                .expect("listener info exists")
        };
        tasks.spawn(device_loop(
            state.clone(),
            listeners.avs,
            info("avs"),
            Some(tls.clone()),
            tasks.clone(),
        ));
        tasks.spawn(device_loop(
            state.clone(),
            listeners.plain,
            info("plain"),
            None,
            tasks.clone(),
        ));
        for ((name, listener), tls) in listeners.regions.into_iter().zip(region_tls) {
            tasks.spawn(device_loop(
                state.clone(),
                listener,
                info(&name),
                Some(tls),
                tasks.clone(),
            ));
        }
        tasks.spawn(control_loop(state.clone(), listeners.control, tasks.clone()));
        tasks.spawn(state.scenarios.clone().watch(state.clone()));
        tasks.spawn(state.clone().sweep_periodically());
        crate::sns::deliver::confirm_declared(&state);
        shutdown.await;
        tracing::info!("shutting down: draining open streams");
        state.shutdown.cancel();
        tasks.close();
        let grace = state.config.avs.drain_grace;
        if tokio::time::timeout(grace * 2, tasks.wait()).await.is_err() {
            tracing::warn!("drain grace over; closing remaining connections");
        }
        state.journal.close_file();
        if let Some(writer) = writer {
            let _ = writer.await;
        }
    }
}

/// Accept connections until shutdown, each served by `serve` in its own
/// task. Nothing that depends on the peer runs in the loop itself (fault
/// rules, handshakes and protocol sniffing all run in the spawned task), so
/// a panic while serving one connection ends that task only. The loop
/// reports itself `up` in [`ListenerHealth`]; a guard marks it `down` if it
/// ends any other way than by shutdown.
async fn accept_loop<F, Fut>(state: Arc<State>, listener: TcpListener, name: Arc<str>, tasks: TaskTracker, serve: F)
where
    F: Fn(TcpStream, SocketAddr) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let _health = state.listener_health.up(&name, state.shutdown.clone());
    let open = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let max = state.config.limits.max_connections;
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // EMFILE and friends: back off briefly instead of spinning.
                    tracing::warn!(cause = %e, listener = %name, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = state.shutdown.cancelled() => return,
        };
        let Some(slot) = Slot::take(&open, max) else {
            // Closed at accept: the client sees its connection end at once.
            state.journal.record(crate::journal::Record::new(
                crate::journal::Face::Server,
                crate::journal::Kind::Error,
                format!("connection from {peer} refused: listener {name} already has {max} open connections (limits.max_connections)"),
            ).body(serde_json::json!({"listener": &*name, "peer": peer.to_string(), "max_connections": max})));
            drop(tcp);
            continue;
        };
        let work = serve(tcp, peer);
        tasks.spawn(async move {
            // Held until the connection's task ends (also when it panics).
            let _slot = slot;
            work.await
        });
    }
}

/// One of a listener's `limits.max_connections` places, given back on drop.
struct Slot(Arc<std::sync::atomic::AtomicUsize>);

impl Slot {
    fn take(open: &Arc<std::sync::atomic::AtomicUsize>, max: usize) -> Option<Slot> {
        use std::sync::atomic::Ordering;
        open.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < max).then_some(n + 1))
            .ok()
            .map(|_| Slot(open.clone()))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
    }
}

/// What every connection of a device listener shares.
struct ConnCtx {
    state: Arc<State>,
    info: ListenerInfo,
    tasks: TaskTracker,
    router: axum::Router,
}

/// Serve one accepted device connection: connection-level faults, then TLS
/// or protocol sniffing, then the protocol.
async fn serve_device(ctx: ConnCtx, tcp: TcpStream, peer: SocketAddr, tls: Option<TlsAcceptor>) {
    let _ = tcp.set_nodelay(true);
    let Some(shaping) = connection_faults(&ctx.state, &tcp, tls.is_some()) else {
        return early_close(&ctx.state, &ctx.info, peer, "refused at accept by a fault rule".into());
    };
    let tcp = Shaped::new(tcp, shaping.clone());
    // Each path boxed: a held connection's task is as big as its largest
    // state, and unboxed the TLS, h2c and HTTP/1.1 paths made every held
    // h2c connection carry ~10 KiB of futures it never uses (measured with
    // size_of_val; bench/RESULTS.md).
    match tls {
        Some(tls) => Box::pin(serve_tls(ctx, tcp, peer, tls, shaping)).await,
        None => Box::pin(serve_plain(ctx, tcp, peer, shaping)).await,
    }
}

/// The accept loop of a device listener (TLS when `tls` is given).
fn device_loop(
    state: Arc<State>,
    listener: TcpListener,
    info: ListenerInfo,
    tls: Option<TlsAcceptor>,
    tasks: TaskTracker,
) -> impl Future<Output = ()> {
    let name = info.name.clone();
    let (s, t) = (state.clone(), tasks.clone());
    // One public router per listener, shared by its connections (building
    // one per connection cost an allocation-heavy route table each time).
    let router = crate::public::router(state.clone());
    accept_loop(state, listener, name, tasks, move |tcp, peer| {
        let ctx = ConnCtx {
            state: s.clone(),
            info: info.clone(),
            tasks: t.clone(),
            router: router.clone(),
        };
        serve_device(ctx, tcp, peer, tls.clone())
    })
}

/// Connection-level fault rules (`when.face = "server"`), decided at accept.
/// `None` when the connection is refused on the spot (reset, TLS failure).
fn connection_faults(state: &State, tcp: &TcpStream, tls: bool) -> Option<Arc<Shaping>> {
    use crate::faults::Action;
    let shaping = Arc::new(Shaping::default());
    let point = crate::faults::Point {
        face: crate::journal::Face::Server,
        device: None,
        path: "",
        event: None,
        connection: None,
        stream: None,
    };
    let Some(fired) = state.faults.fire(&state.journal, &point, None) else {
        return Some(shaping);
    };
    match fired.action {
        Action::TcpReset => {
            // SO_LINGER 0, then drop: the client sees a reset.
            let _ = tcp.set_zero_linger();
            None
        }
        // Closing before the handshake completes fails it for the client.
        Action::TlsFail if tls => None,
        ref other => {
            crate::faults::io::shape(&shaping, other, fired.seed);
            Some(shaping)
        }
    }
}

async fn serve_tls(ctx: ConnCtx, tcp: Shaped, peer: SocketAddr, tls: TlsAcceptor, shaping: Arc<Shaping>) {
    let (state, info) = (&ctx.state, &ctx.info);
    let deadline = state.config.limits.handshake_timeout;
    let stream = match tokio::time::timeout(deadline, tls.accept(tcp)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return early_close(state, info, peer, format!("TLS handshake failed: {e}")),
        Err(_) => {
            let why = "TLS handshake not done within limits.handshake_timeout".to_string();
            return early_close(state, info, peer, why);
        }
    };
    let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
    serve_protocol(ctx, stream, peer, h2, shaping).await;
}

async fn serve_plain(ctx: ConnCtx, mut tcp: Shaped, peer: SocketAddr, shaping: Arc<Shaping>) {
    let (state, info) = (&ctx.state, &ctx.info);
    // Prior-knowledge h2c starts with the preface; anything else is HTTP/1.1.
    // A client silent past `limits.handshake_timeout` is disconnected.
    let mut prefix = Vec::with_capacity(PREFACE.len());
    let mut buf = [0u8; 24];
    let sniff = async {
        while prefix.len() < PREFACE.len() && PREFACE.starts_with(&prefix) {
            match tcp.read(&mut buf[..PREFACE.len() - prefix.len()]).await {
                Ok(0) => return Err("the client closed before sending a request".to_string()),
                Err(e) => return Err(format!("read failed before a request: {e}")),
                Ok(n) => prefix.extend_from_slice(&buf[..n]),
            }
        }
        Ok(())
    };
    match tokio::time::timeout(state.config.limits.handshake_timeout, sniff).await {
        Ok(Ok(())) => {}
        Ok(Err(why)) => return early_close(state, info, peer, why),
        Err(_) => {
            let why = "no request or h2c preface within limits.handshake_timeout".to_string();
            return early_close(state, info, peer, why);
        }
    }
    let h2 = prefix == PREFACE;
    serve_protocol(ctx, Rewind::new(prefix, tcp), peer, h2, shaping).await;
}

/// Journal the end of a connection that never reached HTTP (a failed or
/// late TLS handshake, no preface, a fault at accept): it has no connection
/// record of its own, but its end is still on the record.
fn early_close(state: &State, info: &ListenerInfo, peer: SocketAddr, why: String) {
    tracing::debug!(%peer, listener = %info.name, cause = %why, "connection ended before HTTP");
    state.journal.record(
        crate::journal::Record::new(
            crate::journal::Face::Server,
            crate::journal::Kind::ConnectionClose,
            format!("connection from {peer} closed before HTTP: {why}"),
        )
        .body(serde_json::json!({"listener": &*info.name, "peer": peer.to_string(), "reason": why})),
    );
}

async fn serve_protocol<IO>(ctx: ConnCtx, io: IO, peer: SocketAddr, h2: bool, shaping: Arc<Shaping>)
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let ConnCtx {
        state,
        info,
        tasks,
        router,
    } = ctx;
    let conn = Connection::new(info, peer, if h2 { "h2" } else { "http/1.1" }, shaping);
    conn.journal_open(&state);
    // Every opened connection gets its close journaled, even if this task panics or is dropped.
    let _close = crate::avs::connection::CloseGuard::new(&state, &conn);
    if h2 {
        Box::pin(crate::avs::h2conn::serve(state, conn, io, tasks, router)).await;
    } else {
        let why = Box::pin(crate::bridge::serve_http1(state.clone(), conn.clone(), io, router)).await;
        conn.journal_close(&state, why);
    }
}

/// The control API's accept loop (HTTP/1.1 and h2c through hyper).
fn control_loop(state: Arc<State>, listener: TcpListener, tasks: TaskTracker) -> impl Future<Output = ()> {
    let router = crate::control::router(state.clone());
    let s = state.clone();
    accept_loop(state, listener, "control".into(), tasks, move |tcp, _peer| {
        let (router, state) = (router.clone(), s.clone());
        async move {
            let _ = tcp.set_nodelay(true);
            // hyper's protocol detection waits for the first bytes without a
            // deadline: a silent client gets `limits.handshake_timeout`.
            let mut first = [0u8; 1];
            match tokio::time::timeout(state.config.limits.handshake_timeout, tcp.peek(&mut first)).await {
                Ok(Ok(n)) if n > 0 => {}
                Ok(_) => return,
                Err(_) => return tracing::debug!("control client sent nothing within limits.handshake_timeout"),
            }
            let service = hyper_util::service::TowerToHyperService::new(router);
            let mut builder = hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
            let limits = &state.config.limits;
            builder
                .http1()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(limits.header_read_timeout)
                .max_buf_size(crate::bridge::http1_buf_size(limits.max_header_list_size));
            builder
                .http2()
                .timer(hyper_util::rt::TokioTimer::new())
                .max_header_list_size(limits.max_header_list_size);
            let conn = builder.serve_connection(hyper_util::rt::TokioIo::new(tcp), service);
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = state.shutdown.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(state.config.avs.drain_grace, conn).await;
                }
            }
        }
    })
}

/// An I/O stream with bytes already read put back in front.
pub struct Rewind<IO> {
    prefix: Vec<u8>,
    pos: usize,
    io: IO,
}

impl<IO> Rewind<IO> {
    pub fn new(prefix: Vec<u8>, io: IO) -> Rewind<IO> {
        Rewind { prefix, pos: 0, io }
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for Rewind<IO> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        if self.pos < self.prefix.len() {
            let n = (self.prefix.len() - self.pos).min(buf.remaining());
            let start = self.pos;
            buf.put_slice(&self.prefix[start..start + n]);
            self.pos += n;
            return std::task::Poll::Ready(Ok(()));
        }
        std::pin::Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Rewind<IO> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        data: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.io).poll_write(cx, data)
    }
    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.io).poll_flush(cx)
    }
    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// A simulator running in the background (for tests and embedding).
pub struct SimHandle {
    pub addrs: Addrs,
    pub state: Arc<State>,
    pub ca: std::path::PathBuf,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl SimHandle {
    /// Shut down (drain included) and wait for it.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.task).await;
    }
}

/// Bind, prepare and run a simulator in the background.
pub async fn spawn(config: Config) -> Result<SimHandle, StartError> {
    let listeners = Listeners::bind(&config).await?;
    let sim = Sim::new(config, listeners).await?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let addrs = sim.addrs();
    let state = sim.state().clone();
    let ca = sim.certs().ca_cert.clone();
    let task = tokio::spawn(sim.run(async move {
        let _ = stopped.await;
    }));
    Ok(SimHandle {
        addrs,
        state,
        ca,
        stop: Some(stop),
        task,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::ListenerState;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::AsyncWriteExt;

    const DEADLINE: Duration = Duration::from_secs(10);

    fn state() -> Arc<State> {
        State::new(Config::default(), Arc::new(Journal::new(100)))
    }

    async fn read_all(addr: SocketAddr) -> Vec<u8> {
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        let mut out = Vec::new();
        tokio::time::timeout(DEADLINE, tcp.read_to_end(&mut out))
            .await
            .expect("the connection ends")
            .ok();
        out
    }

    #[tokio::test]
    async fn a_panicking_connection_does_not_stop_the_accept_loop() {
        let state = state();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let served = Arc::new(AtomicUsize::new(0));
        let n = served.clone();
        let tasks = TaskTracker::new();
        tokio::spawn(accept_loop(
            state.clone(),
            listener,
            "avs".into(),
            tasks,
            move |mut tcp, _| {
                let nth = n.fetch_add(1, Ordering::SeqCst);
                async move {
                    if nth % 2 == 0 {
                        panic!("connection {nth} panics on purpose");
                    }
                    let _ = tcp.write_all(b"served").await;
                }
            },
        ));
        for _ in 0..3 {
            assert_eq!(read_all(addr).await, b"", "the panicking connection just closes");
            assert_eq!(read_all(addr).await, b"served", "the next one is served");
        }
        assert_eq!(state.listener_health.snapshot()["avs"], ListenerState::Up);
    }

    #[tokio::test]
    async fn connections_beyond_the_limit_are_refused_and_journaled() {
        let mut config = Config::default();
        config.limits.max_connections = 2;
        let state = State::new(config, Arc::new(Journal::new(100)));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let release = tokio_util::sync::CancellationToken::new();
        let r = release.clone();
        tokio::spawn(accept_loop(
            state.clone(),
            listener,
            "plain".into(),
            TaskTracker::new(),
            move |mut tcp, _| {
                let r = r.clone();
                async move {
                    let _ = tcp.write_all(b"hi").await;
                    r.cancelled().await;
                }
            },
        ));
        let mut held = Vec::new();
        for _ in 0..2 {
            let mut tcp = TcpStream::connect(addr).await.unwrap();
            let mut buf = [0u8; 2];
            tokio::time::timeout(DEADLINE, tcp.read_exact(&mut buf))
                .await
                .unwrap()
                .unwrap();
            held.push(tcp);
        }
        assert_eq!(read_all(addr).await, b"", "the third connection is closed at accept");
        let refused = state.journal.query(&crate::journal::Query::default());
        assert!(
            refused
                .iter()
                .any(|e| e.summary.contains("refused") && e.summary.contains("max_connections")),
            "{refused:?}"
        );
        // A place frees up when a connection ends.
        release.cancel();
        drop(held);
        let deadline = crate::clock::now() + DEADLINE;
        loop {
            let mut tcp = TcpStream::connect(addr).await.unwrap();
            let mut buf = [0u8; 2];
            if let Ok(Ok(_)) = tokio::time::timeout(Duration::from_secs(1), tcp.read_exact(&mut buf)).await {
                break;
            }
            assert!(crate::clock::now() < deadline, "a slot is given back");
        }
    }

    #[tokio::test]
    async fn healthz_answers_503_once_an_accept_loop_ended() {
        use tower::ServiceExt;
        let state = state();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let running = tokio::spawn(accept_loop(
            state.clone(),
            listener,
            "plain".into(),
            TaskTracker::new(),
            |_, _| async {},
        ));
        let health = |state: Arc<State>| async move {
            let req = http::Request::get("/healthz").body(axum::body::Body::empty()).unwrap();
            let resp = crate::control::router(state).oneshot(req).await.unwrap();
            let status = resp.status().as_u16();
            let body = axum::body::to_bytes(resp.into_body(), 1 << 16).await.unwrap();
            (status, serde_json::from_slice::<serde_json::Value>(&body).unwrap())
        };
        let deadline = crate::clock::now() + DEADLINE;
        while state.listener_health.snapshot().get("plain") != Some(&ListenerState::Up) {
            assert!(crate::clock::now() < deadline);
            tokio::task::yield_now().await;
        }
        let (status, body) = health(state.clone()).await;
        assert_eq!(
            (status, &body["listeners"]["plain"]),
            (200, &serde_json::json!("up")),
            "{body}"
        );
        // The loop ends without a shutdown (as a panic in it would end it).
        running.abort();
        let _ = running.await;
        let (status, body) = health(state.clone()).await;
        assert_eq!(status, 503, "{body}");
        assert_eq!(body["status"], "down");
        assert_eq!(body["listeners"]["plain"], "down");
    }

    #[tokio::test]
    async fn a_loop_ended_by_shutdown_is_stopped_not_down() {
        let state = state();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let running = tokio::spawn(accept_loop(
            state.clone(),
            listener,
            "avs".into(),
            TaskTracker::new(),
            |_, _| async {},
        ));
        state.shutdown.cancel();
        tokio::time::timeout(DEADLINE, running).await.unwrap().unwrap();
        assert_eq!(state.listener_health.snapshot()["avs"], ListenerState::Stopped);
        assert!(!state.listener_health.any_down());
    }
}
