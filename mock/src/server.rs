//! The server handle: its own thread and tokio runtime, the accept loop, shutdown on drop.
//! Plain `ws://` or, with [`MockServer::start_tls`], `wss://` with a self-signed certificate.

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::oneshot;
use tokio_rustls::TlsAcceptor;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};

use crate::config::MockConfig;
use crate::handshake::{self, PATH};
use crate::keys::TemporaryKeyOptions;
use crate::record::RestRequest;
use crate::record::{SessionRecord, Shared};
use crate::rest;
use crate::session::{self, SessionContext};
use crate::tls::{self, TlsIdentity};

/// How long a client may take for the TLS handshake and its upgrade request.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A running stand-in server on 127.0.0.1. Dropping it stops the server and closes every socket.
pub struct MockServer {
    port: u16,
    /// The REST API's port.
    rest_port: u16,
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
    /// The certificate of a TLS server (DER, PEM).
    certificate: Option<(Vec<u8>, String)>,
}

impl MockServer {
    /// Binds 127.0.0.1 on a free port and serves on its own thread with its own tokio runtime.
    /// Usable from synchronous code and from inside another tokio runtime.
    ///
    /// Panics if the socket cannot be bound (use [`MockServer::start_on`] to handle that).
    pub fn start(config: MockConfig) -> MockServer {
        MockServer::start_on(config, 0).expect("soniox-mock: cannot listen on 127.0.0.1")
    }

    /// Like [`MockServer::start`] on the given port (0 = any free port).
    pub fn start_on(config: MockConfig, port: u16) -> io::Result<MockServer> {
        MockServer::launch(config, port, None)
    }

    /// Like [`MockServer::start`], but serving `wss://localhost:PORT/transcribe-websocket`
    /// (still bound to 127.0.0.1) with a freshly generated self-signed certificate for
    /// `localhost`. Clients that trust only the usual roots fail the handshake with an
    /// unknown-issuer certificate error; clients that add [`MockServer::certificate_der`] (or
    /// [`MockServer::certificate_pem`]) to their roots connect.
    ///
    /// Panics if the socket cannot be bound or the certificate cannot be made.
    pub fn start_tls(config: MockConfig) -> MockServer {
        MockServer::start_tls_on(config, 0).expect("soniox-mock: cannot start the TLS server")
    }

    /// Like [`MockServer::start_tls`] on the given port (0 = any free port).
    pub fn start_tls_on(config: MockConfig, port: u16) -> io::Result<MockServer> {
        MockServer::launch(config, port, Some(tls::self_signed()?))
    }

    fn launch(
        config: MockConfig,
        port: u16,
        identity: Option<TlsIdentity>,
    ) -> io::Result<MockServer> {
        let shared = Arc::new(Shared::default());
        let (ready_tx, ready_rx) = mpsc::channel();
        let (stop_tx, stop_rx) = oneshot::channel();
        let thread_shared = Arc::clone(&shared);
        let certificate = identity
            .as_ref()
            .map(|i| (i.cert_der.clone(), i.cert_pem.clone()));
        let acceptor = identity.map(|i| i.acceptor);
        let thread = std::thread::Builder::new()
            .name(format!("soniox-mock:{port}"))
            .spawn(move || serve(config, port, acceptor, thread_shared, ready_tx, stop_rx))?;
        match ready_rx.recv() {
            Ok(Ok((port, rest_port))) => Ok(MockServer {
                port,
                rest_port,
                shared,
                stop: Some(stop_tx),
                thread: Some(thread),
                certificate,
            }),
            Ok(Err(error)) => {
                let _ = thread.join();
                Err(error)
            }
            Err(_) => {
                let _ = thread.join();
                Err(io::Error::other(
                    "soniox-mock: server thread ended during start-up",
                ))
            }
        }
    }

    /// `ws://127.0.0.1:PORT/transcribe-websocket`, or for a TLS server
    /// `wss://localhost:PORT/transcribe-websocket`.
    pub fn url(&self) -> String {
        if self.is_tls() {
            format!("wss://{}:{}{PATH}", tls::HOST, self.port)
        } else {
            format!("ws://127.0.0.1:{}{PATH}", self.port)
        }
    }

    /// The REST API: `http://127.0.0.1:PORT` (plain HTTP, also for a TLS server). It serves
    /// `POST /v1/auth/temporary-api-key` and the async API (`/v1/files`,
    /// `/v1/transcriptions`; Bearer: the permanent key).
    pub fn rest_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.rest_port)
    }

    /// Mints a temporary key as the REST API would, and returns it.
    pub fn mint_temporary_key(&self, options: TemporaryKeyOptions) -> String {
        self.shared.keys.mint(options).0
    }

    /// Every REST request so far, in order.
    pub fn rest_requests(&self) -> Vec<RestRequest> {
        self.shared.rest_requests()
    }

    /// The files uploaded to the async API (`POST /v1/files`), with their bytes.
    pub fn uploaded_files(&self) -> Vec<crate::UploadedFile> {
        self.shared
            .jobs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .files()
    }

    /// The async API's transcription jobs, with their requests.
    pub fn transcription_jobs(&self) -> Vec<crate::TranscriptionJob> {
        self.shared
            .jobs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .transcriptions()
    }

    /// Whether this server speaks TLS ([`MockServer::start_tls`]).
    pub fn is_tls(&self) -> bool {
        self.certificate.is_some()
    }

    /// The TLS server's self-signed certificate (DER), to trust it in a client.
    pub fn certificate_der(&self) -> Option<&[u8]> {
        self.certificate.as_ref().map(|(der, _)| der.as_slice())
    }

    /// The TLS server's self-signed certificate (PEM).
    pub fn certificate_pem(&self) -> Option<&str> {
        self.certificate.as_ref().map(|(_, pem)| pem.as_str())
    }

    /// TLS handshakes that failed so far (e.g. the client refused the certificate). Such
    /// connections never reach the upgrade, so they have no [`SessionRecord`].
    pub fn tls_handshake_failures(&self) -> usize {
        self.shared.tls_failures()
    }

    /// Blocks until at least `count` TLS handshakes failed or `timeout` passes; returns whether
    /// they did.
    pub fn wait_for_tls_handshake_failures(&self, timeout: Duration, count: usize) -> bool {
        self.shared.wait_for_tls_failures(timeout, count)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// WebSocket upgrades attempted so far, including refused ones.
    pub fn connection_count(&self) -> usize {
        self.shared.count()
    }

    /// A snapshot of every connection's record, in connection order.
    pub fn sessions(&self) -> Vec<SessionRecord> {
        self.shared.snapshot()
    }

    /// Blocks until `pred(&sessions)` holds or `timeout` passes; returns whether it held.
    /// Re-evaluated on every change of the records (no polling). `pred` runs with the records
    /// locked: it must not call back into this server.
    pub fn wait_until(&self, timeout: Duration, pred: impl Fn(&[SessionRecord]) -> bool) -> bool {
        self.shared.wait_until(timeout, pred)
    }
}

impl Drop for MockServer {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn serve(
    config: MockConfig,
    port: u16,
    acceptor: Option<TlsAcceptor>,
    shared: Arc<Shared>,
    ready: mpsc::Sender<io::Result<(u16, u16)>>,
    stop: oneshot::Receiver<()>,
) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            let _ = ready.send(Err(error));
            return;
        }
    };
    let recv_buffer = config.effective_recv_buffer_size();
    let listeners = runtime.block_on(async {
        let ws = listen(port, recv_buffer)?;
        let rest = listen(0, None)?;
        Ok::<_, io::Error>((ws, rest))
    });
    let (listener, rest) = match listeners {
        Ok(listeners) => listeners,
        Err(error) => {
            let _ = ready.send(Err(error));
            return;
        }
    };
    let bound = listener
        .local_addr()
        .and_then(|a| Ok((a.port(), rest.local_addr()?.port())));
    let _ = ready.send(bound);
    let config = Arc::new(config);
    runtime.block_on(async {
        tokio::select! {
            () = accept_loop(listener, config.clone(), acceptor, shared.clone()) => {}
            () = rest::serve(rest, config, shared) => {}
            _ = stop => {}
        }
    });
    // Dropping the runtime drops every session task and with it every socket.
    runtime.shutdown_timeout(Duration::from_millis(100));
}

fn listen(port: u16, recv_buffer: Option<u32>) -> io::Result<TcpListener> {
    let socket = TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    if let Some(size) = recv_buffer {
        // Accepted sockets inherit the listener's receive buffer.
        socket.set_recv_buffer_size(size)?;
    }
    socket.bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))?;
    socket.listen(128)
}

async fn accept_loop(
    listener: TcpListener,
    config: Arc<MockConfig>,
    acceptor: Option<TlsAcceptor>,
    shared: Arc<Shared>,
) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let config = Arc::clone(&config);
                let shared = Arc::clone(&shared);
                match acceptor.clone() {
                    None => tokio::spawn(connection(stream, config, shared)),
                    Some(acceptor) => {
                        tokio::spawn(tls_connection(stream, acceptor, config, shared))
                    }
                };
            }
            // E.g. out of file descriptors: back off instead of spinning.
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}

async fn connection(stream: TcpStream, config: Arc<MockConfig>, shared: Arc<Shared>) {
    let accepted_at = Instant::now();
    let _ = stream.set_nodelay(true);
    websocket(stream, accepted_at, config, shared).await;
}

async fn tls_connection(
    stream: TcpStream,
    acceptor: TlsAcceptor,
    config: Arc<MockConfig>,
    shared: Arc<Shared>,
) {
    let accepted_at = Instant::now();
    let _ = stream.set_nodelay(true);
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
        Ok(Ok(tls)) => websocket(tls, accepted_at, config, shared).await,
        _ => shared.tls_failed(),
    }
}

/// The WebSocket upgrade, then the session.
async fn websocket<S>(stream: S, accepted_at: Instant, config: Arc<MockConfig>, shared: Arc<Shared>)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut accepted = None;
    // The error type is tungstenite's (`Callback`); it cannot be boxed.
    #[allow(clippy::result_large_err)]
    let callback = |request: &Request, response: Response| -> Result<Response, ErrorResponse> {
        let (result, info) = handshake::on_request(request, response, &config, &shared);
        accepted = info;
        result
    };
    let deadline = accepted_at + HANDSHAKE_TIMEOUT;
    let upgrade = tokio::time::timeout_at(
        deadline.into(),
        tokio_tungstenite::accept_hdr_async(stream, callback),
    )
    .await;
    let (Ok(Ok(ws)), Some(accepted)) = (upgrade, accepted) else {
        return;
    };
    let ctx = SessionContext {
        shared,
        config,
        index: accepted.index,
        credential: accepted.credential,
        accepted_at,
    };
    session::run(ws, ctx).await;
}
