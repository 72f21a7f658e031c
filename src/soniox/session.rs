// SPDX-License-Identifier: MPL-2.0
//! One Soniox real-time session: a task on the shared runtime that owns the WebSocket.
//!
//! It connects lazily when spawned (key in the `Authorization: Bearer` header), sends the
//! start request, then takes what the element queued ([`AudioQueue`]) in order — audio as
//! binary frames (paced for non-live input), `finalize`, input gaps, end of audio as an
//! empty text frame — sends a keepalive whenever no audio went out for the keepalive
//! interval, keeps the latency promise of live input ([`Promise`]), and reports everything
//! the server says as [`SessionEvent`]s. Audio is entered in the timestamp table as it goes
//! out. After the end of audio it waits for `finished`, at most the drain timeout.
//!
//! Dropping the [`SessionHandle`] aborts the task at once and closes the socket.

use std::fmt;
use std::sync::atomic::AtomicU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use once_cell::sync::Lazy;
use tokio::sync::mpsc;
use tokio::time::{sleep_until, timeout, Instant};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{header::AUTHORIZATION, HeaderValue};
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{client_async_tls_with_config, Connector};

use super::audio_queue::{AudioQueue, Chunk, Queued};
use super::promise::Promise;
use super::protocol::{Control, ServerMessage, ServiceError, StartRequest};
use crate::runtime::RUNTIME;
use crate::transcript::timeline::Timeline;

/// A Soniox API key. It never appears in `Debug` output, logs or errors.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    pub fn new(key: impl Into<String>) -> Option<ApiKey> {
        let key = key.into().trim().to_string();
        (!key.is_empty()).then_some(ApiKey(key))
    }

    fn bearer(&self) -> Result<HeaderValue, SessionError> {
        let mut value = HeaderValue::from_str(&format!("Bearer {}", self.0)).map_err(|_| {
            SessionError::InvalidKey(
                "the API key contains characters that cannot be sent in an HTTP header".into(),
            )
        })?;
        value.set_sensitive(true);
        Ok(value)
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

/// Pacing of non-live audio: at most `speed` × real time after a burst of `burst`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pacing {
    pub bytes_per_second: u64,
    pub speed: f64,
    pub burst: Duration,
}

#[derive(Debug, Clone)]
pub struct SessionConfig {
    pub url: String,
    pub api_key: ApiKey,
    pub start_request: StartRequest,
    pub keepalive_interval: Duration,
    pub drain_timeout: Duration,
    pub connect_timeout: Duration,
    pub pacing: Option<Pacing>,
    /// Live input: keep the latency promise for this many ms (may change while running).
    pub latency_ms: Option<Arc<AtomicU32>>,
    /// `SO_SNDBUF` for the connection (live input: keep the kernel from hoarding audio).
    pub send_buffer: Option<u32>,
}

/// What a session reports, in order. After `Finished`, `DrainTimedOut` or `Failed` nothing
/// more comes.
#[derive(Debug, Clone, PartialEq)]
pub enum SessionEvent {
    /// Connected and the start request sent.
    Connected,
    /// A result message (tokens, progress); the `finished` message too.
    Message(ServerMessage),
    /// The input had no audio for a while (a GAP event) after `after_ms` of session audio.
    InputGap {
        after_ms: u64,
        pts: u64,
        duration: Option<u64>,
    },
    /// The server confirmed the end of the audio: every final token has arrived.
    Finished,
    /// The server did not finish within the drain timeout; the session was closed.
    DrainTimedOut,
    Failed(SessionError),
}

#[derive(Debug, Clone, PartialEq)]
pub enum SessionError {
    InvalidUrl {
        url: String,
        reason: String,
    },
    InvalidKey(String),
    Connect {
        url: String,
        reason: String,
    },
    Tls {
        host: String,
        reason: String,
    },
    Service(ServiceError),
    /// The server closed the connection before `finished`.
    Closed {
        code: Option<u16>,
        reason: String,
    },
    Transport(String),
    Protocol(String),
}

impl SessionError {
    /// Whether a new session may succeed where this one failed (contract §8).
    pub fn is_retryable(&self) -> bool {
        match self {
            SessionError::Service(e) => matches!(e.code, Some(408 | 429 | 500 | 502 | 503)),
            SessionError::Closed { .. }
            | SessionError::Transport(_)
            | SessionError::Connect { .. } => true,
            _ => false,
        }
    }
}

impl fmt::Display for SessionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SessionError::InvalidUrl { url, reason } => {
                write!(f, "Invalid Soniox URL {url}: {reason}")
            }
            SessionError::InvalidKey(reason) => write!(f, "Unusable Soniox API key: {reason}"),
            SessionError::Connect { url, reason } => {
                write!(f, "Could not connect to Soniox at {url}: {reason}")
            }
            SessionError::Tls { host, reason } => {
                write!(f, "TLS handshake with {host} failed: {reason}")
            }
            SessionError::Service(e) => e.fmt(f),
            SessionError::Closed { code, reason } => {
                write!(f, "Soniox closed the connection before finishing")?;
                match (code, reason.is_empty()) {
                    (Some(code), false) => write!(f, " (close code {code}: {reason})"),
                    (Some(code), true) => write!(f, " (close code {code})"),
                    (None, _) => Ok(()),
                }
            }
            SessionError::Transport(reason) => write!(f, "Connection to Soniox failed: {reason}"),
            SessionError::Protocol(reason) => write!(f, "Unexpected message from Soniox: {reason}"),
        }
    }
}

impl std::error::Error for SessionError {}

/// The default endpoint of a region (`us`, `eu`, `jp`).
pub fn region_url(region: &str) -> String {
    match region {
        "us" | "" => "wss://stt-rt.soniox.com/transcribe-websocket".to_string(),
        other => format!("wss://stt-rt.{other}.soniox.com/transcribe-websocket"),
    }
}

/// Whether `url` would carry the key unencrypted to another machine (`ws://`, not loopback).
pub fn sends_key_in_clear(url: &str) -> bool {
    let Some(rest) = url.strip_prefix("ws://") else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
    };
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    !loopback
}

/// A running session. Dropping it aborts the session.
#[derive(Debug)]
pub struct SessionHandle {
    queue: Arc<AudioQueue>,
    task: tokio::task::JoinHandle<()>,
}

impl SessionHandle {
    /// Starts a session on the shared runtime. It takes its work from `queue`, enters the
    /// audio it sends in `timeline`, and reports its events to `events`, each turned into the
    /// receiver's item type by `wrap` (called on the runtime: it must not block). The queue
    /// is closed only after the session's last event was wrapped and sent.
    pub fn spawn<T, W>(
        config: SessionConfig,
        queue: Arc<AudioQueue>,
        timeline: Arc<Mutex<Timeline>>,
        events: mpsc::Sender<T>,
        wrap: W,
    ) -> SessionHandle
    where
        T: Send + 'static,
        W: Fn(SessionEvent) -> T + Send + Sync + 'static,
    {
        let reporter = Reporter { events, wrap };
        let guard = CloseOnDrop(queue.clone());
        let task = RUNTIME.spawn(async move {
            let end = match run(&config, &guard.0, &timeline, &reporter).await {
                Ok(Some(end)) => end,
                Ok(None) => return,
                Err(error) => SessionEvent::Failed(error),
            };
            // Producers see the queue close only after the end was reported.
            reporter.report(end).await;
            drop(guard);
        });
        SessionHandle { queue, task }
    }

    /// Where the element queues audio and control for this session.
    pub fn queue(&self) -> &Arc<AudioQueue> {
        &self.queue
    }

    /// Whether the session task has ended (finished, failed or aborted).
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }
}

impl Drop for SessionHandle {
    fn drop(&mut self) {
        self.task.abort();
        self.queue.close();
    }
}

/// Closes the queue when the session task ends, however it ends (aborts included).
struct CloseOnDrop(Arc<AudioQueue>);

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        self.0.close();
    }
}

struct Reporter<T, W> {
    events: mpsc::Sender<T>,
    wrap: W,
}

impl<T, W: Fn(SessionEvent) -> T> Reporter<T, W> {
    /// Returns false when nobody listens any more.
    async fn report(&self, event: SessionEvent) -> bool {
        self.events.send((self.wrap)(event)).await.is_ok()
    }
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The session's life. `Ok(None)`: aborted by the element (nothing to report).
async fn run<T, W: Fn(SessionEvent) -> T>(
    config: &SessionConfig,
    queue: &AudioQueue,
    timeline: &Mutex<Timeline>,
    reporter: &Reporter<T, W>,
) -> Result<Option<SessionEvent>, SessionError> {
    let socket = connect(config).await?;
    let (mut sink, mut stream) = socket.split();
    let transport = |e: tungstenite::Error| SessionError::Transport(e.to_string());
    sink.send(Message::text(config.start_request.to_json()))
        .await
        .map_err(transport)?;
    if !reporter.report(SessionEvent::Connected).await {
        return Ok(None);
    }

    let mut last_sent = Instant::now();
    let mut pacer = config.pacing.map(Pacer::new);
    let mut promise = Promise::new(config.latency_ms.clone());
    let mut drain_deadline: Option<Instant> = None;
    // Audio sent, and audio the service said it processed: what is in between counts
    // against the live queue's limit.
    let mut sent_bytes = 0u64;
    let mut processed_bytes = 0u64;
    loop {
        let now = Instant::now();
        let keepalive_at = last_sent + config.keepalive_interval;
        // Pacing: the next audio may go out then (and nothing after it may overtake it).
        let take_at = pacer
            .as_ref()
            .and_then(Pacer::next_due)
            .filter(|&at| at > now);
        let finalize_at = promise.due(now.into_std()).map(Instant::from_std);
        let streaming = drain_deadline.is_none();
        tokio::select! {
            biased;
            message = stream.next() => match message {
                Some(Ok(Message::Text(text))) => {
                    let message = ServerMessage::parse(&text)
                        .map_err(|e| SessionError::Protocol(format!("{e} in {}", excerpt(&text))))?;
                    if let Some(error) = message.error() {
                        return Err(SessionError::Service(error));
                    }
                    {
                        let timeline = timeline.lock().unwrap_or_else(|e| e.into_inner());
                        let now = std::time::Instant::now();
                        promise.observe(&message.tokens, message.final_audio_proc_ms, &timeline, now);
                    }
                    if let Some(total_ms) = message.total_audio_proc_ms {
                        processed_bytes = processed_bytes.max(queue.bytes_for_ms(total_ms));
                        queue.set_unprocessed(sent_bytes.saturating_sub(processed_bytes));
                    }
                    let finished = message.finished;
                    if !reporter.report(SessionEvent::Message(message)).await {
                        return Ok(None);
                    }
                    if finished {
                        let _ = timeout(Duration::from_secs(1), sink.close()).await;
                        return Ok(Some(SessionEvent::Finished));
                    }
                }
                Some(Ok(Message::Close(frame))) => {
                    return Err(SessionError::Closed {
                        code: frame.as_ref().map(|f| u16::from(f.code)),
                        reason: frame.map(|f| f.reason.to_string()).unwrap_or_default(),
                    });
                }
                Some(Ok(_)) => {} // binary, ping, pong: nothing for us
                Some(Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed)) | None => {
                    return Err(SessionError::Closed { code: None, reason: String::new() });
                }
                Some(Err(e)) => return Err(transport(e)),
            },
            _ = sleep_until(finalize_at.unwrap_or(keepalive_at)), if streaming && finalize_at.is_some() => {
                sink.send(Message::text(Control::Finalize.to_json())).await.map_err(transport)?;
                promise.finalize_sent(std::time::Instant::now());
            }
            _ = sleep_until(take_at.unwrap_or(now)), if streaming && take_at.is_some() => {} // paced
            item = queue.pop(), if streaming && take_at.is_none() => match item {
                Some(Queued::Audio(chunk)) => {
                    sent_bytes += chunk.data.len() as u64;
                    queue.set_unprocessed(sent_bytes.saturating_sub(processed_bytes));
                    send_audio(&mut sink, chunk, timeline, pacer.as_mut()).await.map_err(transport)?;
                    last_sent = Instant::now();
                }
                Some(Queued::Finalize) => {
                    sink.send(Message::text(Control::Finalize.to_json())).await.map_err(transport)?;
                    promise.finalize_sent(std::time::Instant::now());
                }
                Some(Queued::Gap { pts, duration }) => {
                    let after_ms = timeline.lock().unwrap_or_else(|e| e.into_inner()).recorded_ms();
                    promise.hurry(after_ms);
                    if !reporter.report(SessionEvent::InputGap { after_ms, pts, duration }).await {
                        return Ok(None);
                    }
                }
                Some(Queued::EndOfAudio) => {
                    sink.send(Message::text("")).await.map_err(transport)?;
                    drain_deadline = Some(Instant::now() + config.drain_timeout);
                }
                None => return Ok(None),
            },
            _ = sleep_until(keepalive_at), if streaming => {
                sink.send(Message::text(Control::Keepalive.to_json())).await.map_err(transport)?;
                last_sent = Instant::now();
            }
            _ = sleep_until(drain_deadline.unwrap_or(keepalive_at)), if !streaming => {
                return Ok(Some(SessionEvent::DrainTimedOut));
            }
        }
    }
}

/// Enters `chunk` in the timestamp table and sends it.
async fn send_audio<S>(
    sink: &mut S,
    chunk: Chunk,
    timeline: &Mutex<Timeline>,
    pacer: Option<&mut Pacer>,
) -> Result<(), S::Error>
where
    S: futures_util::Sink<Message> + Unpin,
{
    if chunk.data.is_empty() {
        return Ok(()); // an empty frame would end the session
    }
    let len = chunk.data.len() as u64;
    timeline
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .record(Some(chunk.pts), chunk.discont, len);
    if let Some(pacer) = pacer {
        pacer.sent(len);
    }
    sink.send(Message::Binary(chunk.data)).await?;
    timeline
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .mark_sent(std::time::Instant::now());
    Ok(())
}

/// Limits non-live audio to `speed` × real time after the initial burst.
struct Pacer {
    pacing: Pacing,
    start: Option<Instant>,
    bytes: u64,
}

impl Pacer {
    fn new(pacing: Pacing) -> Pacer {
        Pacer {
            pacing,
            start: None,
            bytes: 0,
        }
    }

    /// When the next audio may go out (`None`: at once, nothing was sent yet).
    fn next_due(&self) -> Option<Instant> {
        let start = self.start?;
        let audio = self.bytes as f64 / self.pacing.bytes_per_second as f64;
        let ahead = (audio - self.pacing.burst.as_secs_f64()).max(0.0);
        Some(start + Duration::from_secs_f64(ahead / self.pacing.speed))
    }

    fn sent(&mut self, len: u64) {
        self.start.get_or_insert_with(Instant::now);
        self.bytes += len;
    }
}

async fn connect(config: &SessionConfig) -> Result<Socket, SessionError> {
    let url = &config.url;
    let mut request = url
        .as_str()
        .into_client_request()
        .map_err(|e| SessionError::InvalidUrl {
            url: url.clone(),
            reason: e.to_string(),
        })?;
    request
        .headers_mut()
        .insert(AUTHORIZATION, config.api_key.bearer()?);
    let host = request.uri().host().unwrap_or_default().to_string();
    let port = request
        .uri()
        .port_u16()
        .unwrap_or(if request.uri().scheme_str() == Some("ws") {
            80
        } else {
            443
        });
    let connecting = async {
        let tcp = open_tcp(&host, port, config.send_buffer)
            .await
            .map_err(tungstenite::Error::Io)?;
        client_async_tls_with_config(request, tcp, None, Some(Connector::Rustls(TLS.clone()))).await
    };
    match timeout(config.connect_timeout, connecting).await {
        Err(_) => Err(SessionError::Connect {
            url: url.clone(),
            reason: format!(
                "no answer within {} s",
                config.connect_timeout.as_secs_f32()
            ),
        }),
        Ok(Err(error)) => Err(connect_error(url, &host, error)),
        Ok(Ok((socket, _response))) => Ok(socket),
    }
}

/// A TCP connection to `host` (first address that answers), with Nagle off and, for live
/// audio, a bounded send buffer: what the kernel holds is audio that is already late.
async fn open_tcp(
    host: &str,
    port: u16,
    send_buffer: Option<u32>,
) -> std::io::Result<tokio::net::TcpStream> {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let mut last_error = None;
    for address in tokio::net::lookup_host((host, port)).await? {
        let socket = if address.is_ipv4() {
            tokio::net::TcpSocket::new_v4()?
        } else {
            tokio::net::TcpSocket::new_v6()?
        };
        if let Some(size) = send_buffer {
            socket.set_send_buffer_size(size)?;
        }
        match socket.connect(address).await {
            Ok(stream) => {
                stream.set_nodelay(true)?;
                return Ok(stream);
            }
            Err(error) => last_error = Some(error),
        }
    }
    Err(last_error.unwrap_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::NotFound, "the host has no address")
    }))
}

fn connect_error(url: &str, host: &str, error: tungstenite::Error) -> SessionError {
    match error {
        tungstenite::Error::Http(response) => {
            let status = response.status();
            let body = response.body().as_deref().map(String::from_utf8_lossy);
            let reported = body
                .as_deref()
                .and_then(|b| ServerMessage::parse(b).ok()?.error());
            SessionError::Service(reported.unwrap_or_else(|| {
                ServiceError {
                    code: Some(status.as_u16()),
                    error_type: None,
                    message: match body.as_deref().map(str::trim) {
                        Some(text) if !text.is_empty() => excerpt(text),
                        _ => status
                            .canonical_reason()
                            .unwrap_or("HTTP error")
                            .to_string(),
                    },
                    request_id: None,
                }
            }))
        }
        tungstenite::Error::Io(io) => {
            match io.get_ref().and_then(|e| e.downcast_ref::<rustls::Error>()) {
                Some(tls) => SessionError::Tls {
                    host: host.to_string(),
                    reason: tls.to_string(),
                },
                None => SessionError::Connect {
                    url: url.to_string(),
                    reason: io.to_string(),
                },
            }
        }
        tungstenite::Error::Tls(tls) => SessionError::Tls {
            host: host.to_string(),
            reason: tls.to_string(),
        },
        tungstenite::Error::Url(e) => SessionError::InvalidUrl {
            url: url.to_string(),
            reason: e.to_string(),
        },
        other => SessionError::Connect {
            url: url.to_string(),
            reason: other.to_string(),
        },
    }
}

fn excerpt(text: &str) -> String {
    const MAX: usize = 200;
    match text.char_indices().nth(MAX) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_string(),
    }
}

/// TLS with the web PKI roots and the `ring` provider (the only one this crate enables).
static TLS: Lazy<Arc<rustls::ClientConfig>> = Lazy::new(|| {
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("ring supports the default TLS versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    Arc::new(config)
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_is_redacted() {
        let key = ApiKey::new("  sekrit-123 ").unwrap();
        assert_eq!(format!("{key:?}"), "ApiKey(<redacted>)");
        assert!(!format!("{:?}", key.bearer().unwrap()).contains("sekrit"));
        assert!(ApiKey::new("  ").is_none());
        let error = ApiKey::new("bad\nkey").unwrap().bearer().unwrap_err();
        assert!(!error.to_string().contains("bad"));
    }

    #[test]
    fn region_urls() {
        assert_eq!(
            region_url("us"),
            "wss://stt-rt.soniox.com/transcribe-websocket"
        );
        assert_eq!(
            region_url("eu"),
            "wss://stt-rt.eu.soniox.com/transcribe-websocket"
        );
        assert_eq!(
            region_url("jp"),
            "wss://stt-rt.jp.soniox.com/transcribe-websocket"
        );
    }

    #[test]
    fn plain_websocket_to_a_remote_host_is_flagged() {
        assert!(sends_key_in_clear("ws://example.com/transcribe-websocket"));
        assert!(sends_key_in_clear("ws://10.0.0.1:8080/x"));
        assert!(!sends_key_in_clear("ws://127.0.0.1:8080/x"));
        assert!(!sends_key_in_clear("ws://localhost/x"));
        assert!(!sends_key_in_clear("ws://[::1]:99/x"));
        assert!(!sends_key_in_clear("wss://example.com/x"));
    }

    #[test]
    fn errors_name_the_url_and_service_words() {
        let e = SessionError::Connect {
            url: "ws://127.0.0.1:9/x".into(),
            reason: "Connection refused".into(),
        };
        assert_eq!(
            e.to_string(),
            "Could not connect to Soniox at ws://127.0.0.1:9/x: Connection refused"
        );
        assert!(e.is_retryable());
        let e = SessionError::Service(ServiceError {
            code: Some(401),
            error_type: Some("unauthenticated".into()),
            message: "Invalid API key.".into(),
            request_id: None,
        });
        assert!(!e.is_retryable());
    }

    #[test]
    fn pacing_allows_a_burst_then_real_time() {
        let mut pacer = Pacer::new(Pacing {
            bytes_per_second: 32_000,
            speed: 2.0,
            burst: Duration::from_secs(3),
        });
        let now = Instant::now();
        assert_eq!(pacer.next_due(), None);
        pacer.sent(3 * 32_000);
        assert!(
            pacer.next_due().unwrap() <= now + Duration::from_millis(50),
            "the burst goes at once"
        );
        pacer.sent(4 * 32_000);
        let due = pacer.next_due().unwrap() - pacer.start.unwrap();
        assert_eq!(
            due,
            Duration::from_secs(2),
            "4 s of audio beyond the burst at 2× take 2 s"
        );
    }
}
