// SPDX-License-Identifier: MPL-2.0
//! One Soniox session as the element sees it: a task on the shared runtime that carries a
//! stream of audio to Soniox over one connection after another.
//!
//! Each connection ([`super::connection`]) connects lazily (key in the `Authorization: Bearer`
//! header), sends the start request, then what the element queued ([`AudioQueue`]). When a
//! connection breaks with a retryable error (transport errors, a close before `finished`,
//! 408, 429, 500, 502, 503) the session reports [`SessionEvent::Reconnecting`], waits
//! (0.25 s doubling to 8 s; longer after 429), and opens the next connection, which first
//! receives the audio Soniox had not finalized ([`Replay`]), so no word is lost or doubled.
//! After `max_reconnects` failures in a row (the count restarts once a connection has run
//! well for 30 s), or any other error, the session fails.
//!
//! Every connection has its own timestamp table and number: it maps its times itself, so
//! events carry input timestamps and the connection's number.
//! Dropping the [`SessionHandle`] aborts the task at once and closes the socket.

use std::fmt;
use std::sync::atomic::AtomicU32;
use std::sync::Arc;
use std::time::Duration;

use std::sync::atomic::Ordering;

use tokio::sync::mpsc;

use super::audio_queue::AudioQueue;
use super::connection::{self, Carry, Outcome, Report};
pub use super::credentials::ApiKey;
use super::credentials::Credentials;
use super::event::Results;
use super::liveness::Unresponsive;
use super::protocol::{ServiceError, StartRequest};
use super::replay::Replay;
use crate::runtime::RUNTIME;

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
    pub credentials: Credentials,
    pub start_request: StartRequest,
    pub keepalive_interval: Duration,
    pub drain_timeout: Duration,
    pub connect_timeout: Duration,
    pub pacing: Option<Pacing>,
    /// Live input: keep the latency promise for this many ms (may change while running).
    pub latency_ms: Option<Arc<AtomicU32>>,
    /// `SO_SNDBUF` for the connection (live input: keep the kernel from hoarding audio).
    pub send_buffer: Option<u32>,
    /// Live input: queued audio is taken on a grid of this period shared by the sessions of
    /// the process (not as each buffer arrives), so that one runtime wakeup serves every
    /// session whose audio is due, instead of one wakeup per buffer per session. The
    /// sessions are spread over phases of the period (see the connection's `Grid`), so that
    /// they do not all send (and hear back) at the same instant.
    pub send_grid: Option<Duration>,
    /// Reconnect attempts in a row before the session fails.
    pub max_reconnects: u32,
    /// Audio kept for a replay after a reconnect, at most.
    pub replay_limit: Duration,
    /// Bytes per sample frame and per second of the audio (replay cuts on frames).
    pub frame_bytes: u64,
    pub bytes_per_second: u64,
}

/// What a session reports, in order. After `Finished`, `DrainTimedOut` or `Failed` nothing
/// more comes.
#[derive(Debug, Clone, PartialEq)]
pub enum SessionEvent {
    /// Connected and the start request sent.
    Connected,
    /// A result message (tokens, progress), timed; the `finished` message too.
    Results(Results),
    /// The input had no audio for a while (a GAP event at `pts`) after the audio sent so far,
    /// which ends at input PTS `after` (none before any audio).
    InputGap {
        after: Option<u64>,
        /// Input PTS where the connection's audio starts.
        origin: Option<u64>,
        pts: u64,
        duration: Option<u64>,
    },
    /// The server confirmed the end of the audio: every final token has arrived.
    Finished,
    /// The server did not finish within the drain timeout; the session was closed.
    DrainTimedOut(Unfinished),
    /// The replay buffer is full (Soniox has not finalized for longer than it holds): the
    /// oldest `forgotten_ms` of audio would not survive a reconnect. Once per connection.
    ReplayOverflow {
        forgotten_ms: u64,
    },
    /// This connection broke; the next one opens after `delay` and replays what was not
    /// final. Its non-final tokens are void.
    Reconnecting {
        error: SessionError,
        attempt: u32,
        delay: Duration,
    },
    Failed(SessionError),
    /// `mode=async`: a stage of the job.
    Job(super::batch::job::JobEvent),
}

/// What a drain that timed out left undone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unfinished {
    /// Audio never made final: sent and not finalized, or never sent.
    pub untranscribed_ms: u64,
    /// The deadline passed while the session was replacing a broken connection (no new one
    /// had answered yet): why the last one broke.
    pub reconnecting: Option<String>,
    /// Soniox made any audio of the session final (words or silence).
    pub finalized_any: bool,
}

/// A session event with the connection it comes from.
#[derive(Debug, Clone)]
pub struct Reported {
    /// The connection's number (counts from 1 over the element's stream; what bus messages
    /// call `session`).
    pub connection: u32,
    pub event: SessionEvent,
}

#[derive(Debug, Clone, PartialEq)]
pub enum SessionError {
    InvalidUrl {
        url: String,
        reason: String,
    },
    InvalidKey(String),
    /// Neither a fresh key nor a fixed one.
    NoKey,
    /// The key source did not answer.
    KeyUnavailable(String),
    Connect {
        url: String,
        reason: String,
    },
    Tls {
        host: String,
        reason: String,
    },
    Service(ServiceError),
    /// The WebSocket upgrade at `url` was refused with an HTTP status.
    Refused {
        url: String,
        error: ServiceError,
    },
    /// The server closed the connection before `finished`.
    Closed {
        code: Option<u16>,
        reason: String,
    },
    Transport(String),
    /// The service sent something that cannot be right (see `super::check`).
    Invalid(String),
    /// The connection stayed open but the service stopped answering.
    Unresponsive(Unresponsive),
    /// `mode=async`: the job (or the file) could not be done; what Soniox said.
    Job(String),
    /// Retryable failures went on for too long.
    GaveUp {
        last: Box<SessionError>,
        attempts: u32,
    },
}

impl SessionError {
    /// Whether a new session may succeed where this one failed (contract §8).
    pub fn is_retryable(&self) -> bool {
        match self {
            SessionError::Service(e) | SessionError::Refused { error: e, .. } => {
                matches!(e.code, Some(408 | 429 | 500 | 502 | 503))
            }
            SessionError::Closed { .. }
            | SessionError::Transport(_)
            | SessionError::Invalid(_)
            | SessionError::KeyUnavailable(_)
            | SessionError::Unresponsive(_)
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
            SessionError::NoKey => write!(
                f,
                "No Soniox API key: request-api-key returned none, and neither api-key nor SONIOX_API_KEY is set"
            ),
            SessionError::KeyUnavailable(reason) => write!(f, "No fresh Soniox API key: {reason}"),
            SessionError::Connect { url, reason } => {
                write!(f, "Could not connect to Soniox at {url}: {reason}")
            }
            SessionError::Tls { host, reason } => {
                write!(f, "TLS handshake with {host} failed: {reason}")
            }
            SessionError::Service(e) => e.fmt(f),
            SessionError::Refused { url, error } => {
                let what = match error.code {
                    Some(500..) => "could not take",
                    _ => "refused",
                };
                write!(f, "Soniox {what} the connection to {url} ")?;
                error.fmt_label(f)?;
                write!(f, ": {}", error.message)
            }
            SessionError::Closed { code, reason } => {
                write!(f, "Soniox closed the connection before finishing")?;
                match (code, reason.is_empty()) {
                    (Some(code), false) => write!(f, " (close code {code}: {reason})"),
                    (Some(code), true) => write!(f, " (close code {code})"),
                    (None, _) => Ok(()),
                }
            }
            SessionError::Transport(reason) => write!(f, "Connection to Soniox failed: {reason}"),
            SessionError::Invalid(reason) => write!(f, "Soniox sent an invalid message: {reason}"),
            SessionError::Unresponsive(why) => write!(f, "Connection to Soniox lost: {why}"),
            SessionError::Job(reason) => f.write_str(reason),
            SessionError::GaveUp { last, attempts } => {
                write!(f, "{last} (gave up after {attempts} attempts)")
            }
        }
    }
}

impl SessionError {
    /// A temporary key's `max_session_duration_seconds` ran out: a fresh key carries on.
    pub fn is_expired_temporary_key(&self) -> bool {
        self.service().is_some_and(|e| {
            e.code == Some(403) && e.error_type.as_deref() == Some("temp_api_key_session_expired")
        })
    }

    /// What the service said, at the handshake or after it.
    pub fn service(&self) -> Option<&ServiceError> {
        match self {
            SessionError::Service(e) | SessionError::Refused { error: e, .. } => Some(e),
            _ => None,
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

/// What a session does with its audio.
#[derive(Debug)]
pub enum Work {
    /// Streams it to Soniox's real-time API.
    Realtime(Box<SessionConfig>),
    /// Keeps it until the end, then transcribes it as a file (`mode=async`).
    Job(super::batch::task::JobSession),
}

/// A running session. Dropping it aborts the session.
#[derive(Debug)]
pub struct SessionHandle {
    queue: Arc<AudioQueue>,
    task: tokio::task::JoinHandle<()>,
}

impl SessionHandle {
    /// Starts a session on the shared runtime: real time (connections to Soniox's WebSocket
    /// API) or a `mode=async` job ([`super::batch::task`]). It takes its work from `queue`,
    /// numbers its connections from `numbers`, and reports its events to `events`, each
    /// turned into the receiver's item type by `wrap` (called on the runtime: it must not
    /// block). The queue is closed only after the session's last event was wrapped and sent.
    pub fn spawn<T, W>(
        work: Work,
        queue: Arc<AudioQueue>,
        numbers: Arc<AtomicU32>,
        events: mpsc::Sender<T>,
        wrap: W,
    ) -> SessionHandle
    where
        T: Send + 'static,
        W: Fn(Reported) -> T + Send + Sync + 'static,
    {
        let reporter = Reporter { events, wrap };
        let guard = CloseOnDrop(queue.clone());
        let task = RUNTIME.spawn(async move {
            match work {
                Work::Realtime(config) => supervise(&config, &guard.0, &numbers, &reporter).await,
                Work::Job(job) => {
                    let connection = ConnectionReporter {
                        reporter: &reporter,
                        connection: numbers.fetch_add(1, Ordering::Relaxed) + 1,
                    };
                    super::batch::task::run(&job, &guard.0, &connection).await;
                }
            }
            // Producers see the queue close only after the end was reported.
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

impl<T, W: Fn(Reported) -> T> Reporter<T, W> {
    /// Returns false when nobody listens any more.
    async fn report(&self, connection: u32, event: SessionEvent) -> bool {
        let reported = Reported { connection, event };
        self.events.send((self.wrap)(reported)).await.is_ok()
    }
}

/// One connection's reporter.
struct ConnectionReporter<'a, T, W> {
    reporter: &'a Reporter<T, W>,
    connection: u32,
}

impl<T, W: Fn(Reported) -> T> Report for ConnectionReporter<'_, T, W> {
    async fn report(&self, event: SessionEvent) -> bool {
        self.reporter.report(self.connection, event).await
    }
}

/// A connection that ran this long resets the count of failures in a row.
const RAN_WELL: Duration = Duration::from_secs(30);

/// The wait before reconnect attempt `attempt` (1-based): 0.25 s doubling to 8 s; after a
/// 429 (too many requests) four times longer, up to 30 s.
pub fn backoff(attempt: u32, error: &SessionError) -> Duration {
    let base = Duration::from_millis(250) * 2u32.saturating_pow(attempt.saturating_sub(1).min(5));
    let base = base.min(Duration::from_secs(8));
    match error {
        _ if error.service().is_some_and(|e| e.code == Some(429)) => {
            (base * 4).min(Duration::from_secs(30))
        }
        _ => base,
    }
}

/// What the session leaves undone when its drain deadline passes now.
fn unfinished(carry: &Carry, queue: &AudioQueue) -> Unfinished {
    let bytes = carry.replay.held_bytes() + queue.queued_bytes();
    Unfinished {
        untranscribed_ms: queue.duration_ns(bytes) / 1_000_000,
        reconnecting: carry.broken.clone(),
        finalized_any: carry.finalized_any,
    }
}

/// The session's life: connections until one finishes, the element aborts, or it fails.
async fn supervise<T, W: Fn(Reported) -> T>(
    config: &SessionConfig,
    queue: &AudioQueue,
    numbers: &AtomicU32,
    reporter: &Reporter<T, W>,
) {
    let replay_limit = config.replay_limit.as_millis() as u64 * config.bytes_per_second / 1000;
    let mut carry = Carry {
        replay: Replay::new(replay_limit, config.frame_bytes, config.bytes_per_second),
        ended_audio: false,
        broken: None,
        finalized_any: false,
        resume_pts: None,
    };
    let mut failures = 0u32;
    // Hold live audio while there is no connection that answers (again after each break).
    queue.set_suspect(true);
    loop {
        let number = numbers.fetch_add(1, Ordering::Relaxed) + 1;
        let connection = ConnectionReporter {
            reporter,
            connection: number,
        };
        let started = tokio::time::Instant::now();
        let run = async {
            let key = tokio::select! {
                biased;
                key = config.credentials.key_for(number) => {
                    key.map_err(|error| connection::Broken { error, final_ms: 0 })?
                }
                () = connection::drain_deadline(queue, config.drain_timeout) => {
                    return Ok(Outcome::DrainTimedOut);
                }
            };
            connection::run(config, &key, queue, &mut carry, &connection).await
        };
        let broken = match run.await {
            Ok(Outcome::Finished) => {
                connection.report(SessionEvent::Finished).await;
                return;
            }
            Ok(Outcome::DrainTimedOut) => {
                let unfinished = unfinished(&carry, queue);
                connection
                    .report(SessionEvent::DrainTimedOut(unfinished))
                    .await;
                return;
            }
            Ok(Outcome::Aborted) => return,
            Err(broken) => broken,
        };
        if started.elapsed() >= RAN_WELL {
            failures = 0;
        }
        failures += 1;
        // With fresh keys, a temporary key that ran out is replaced by the next one.
        let retryable = broken.error.is_retryable()
            || (config.credentials.fetches() && broken.error.is_expired_temporary_key());
        if !retryable || failures > config.max_reconnects {
            let error = if retryable {
                SessionError::GaveUp {
                    last: Box::new(broken.error),
                    attempts: failures,
                }
            } else {
                broken.error
            };
            connection.report(SessionEvent::Failed(error)).await;
            return;
        }
        queue.set_suspect(true);
        carry.broken = Some(broken.error.to_string());
        let delay = backoff(failures, &broken.error);
        carry.replay.restart(broken.final_ms);
        let event = SessionEvent::Reconnecting {
            error: broken.error,
            attempt: failures,
            delay,
        };
        if !connection.report(event).await {
            return;
        }
        // Once the end of audio was queued, the drain deadline bounds the wait too.
        tokio::select! {
            biased;
            () = connection::drain_deadline(queue, config.drain_timeout) => {
                let unfinished = unfinished(&carry, queue);
                connection.report(SessionEvent::DrainTimedOut(unfinished)).await;
                return;
            }
            () = tokio::time::sleep(delay) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_retried() {
        let service = |code| {
            SessionError::Service(ServiceError {
                code: Some(code),
                error_type: None,
                message: String::new(),
                request_id: None,
            })
        };
        for code in [408, 429, 500, 502, 503] {
            assert!(service(code).is_retryable(), "{code}");
        }
        for code in [400, 401, 402, 403, 404] {
            assert!(!service(code).is_retryable(), "{code}");
        }
        assert!(SessionError::Transport("reset".into()).is_retryable());
        assert!(SessionError::Invalid("tokens: null".into()).is_retryable());
        let tls = SessionError::Tls {
            host: "localhost".into(),
            reason: "invalid peer certificate: UnknownIssuer".into(),
        };
        assert!(!tls.is_retryable(), "a certificate does not heal by itself");
    }

    #[test]
    fn reconnects_back_off_from_a_quarter_second_to_eight() {
        let transport = SessionError::Transport("reset".into());
        let waits: Vec<u64> = (1..=8)
            .map(|a| backoff(a, &transport).as_millis() as u64)
            .collect();
        assert_eq!(waits, [250, 500, 1000, 2000, 4000, 8000, 8000, 8000]);
        let limited = SessionError::Service(ServiceError {
            code: Some(429),
            error_type: None,
            message: String::new(),
            request_id: None,
        });
        assert_eq!(backoff(1, &limited), Duration::from_secs(1));
        assert_eq!(backoff(6, &limited), Duration::from_secs(30));
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
    fn a_refused_handshake_names_the_url() {
        let refused = |code, kind: Option<&str>, message: &str| SessionError::Refused {
            url: "ws://127.0.0.1:9/x".into(),
            error: ServiceError {
                code: Some(code),
                error_type: kind.map(str::to_string),
                message: message.into(),
                request_id: None,
            },
        };
        let e = refused(404, None, "Not Found");
        assert_eq!(
            e.to_string(),
            "Soniox refused the connection to ws://127.0.0.1:9/x (404): Not Found"
        );
        assert!(!e.is_retryable());
        let e = refused(503, Some("service_unavailable"), "Service Unavailable");
        assert_eq!(
            e.to_string(),
            "Soniox could not take the connection to ws://127.0.0.1:9/x (503 service_unavailable): Service Unavailable"
        );
        assert!(e.is_retryable());
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
}
