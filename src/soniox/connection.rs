// SPDX-License-Identifier: MPL-2.0
//! One WebSocket connection of a session: connect, start request, replayed audio first, then
//! what the element queued — audio (paced for non-live input), `finalize`, input gaps, the end
//! of audio — with keepalives, the latency promise, and everything the server says reported.
//! It pings the service and breaks off when the service stops answering ([`super::liveness`]).
//! It ends with `finished`, the drain deadline, an abort, or an error for the session to judge
//! (reconnect or give up).

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use once_cell::sync::Lazy;
use tokio::time::{sleep_until, timeout, Instant, Sleep};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::header::AUTHORIZATION;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{client_async_tls_with_config, Connector};

use super::audio_queue::{AudioQueue, Chunk, Queued};
use super::check::Checker;
use super::event::Results;
use super::liveness::Liveness;
use super::promise::Promise;
use super::protocol::{Control, ServerMessage, ServiceError, Token};
use super::replay::Replay;
use super::session::{ApiKey, Pacing, SessionConfig, SessionError, SessionEvent};
use super::untranslated::Untranslated;
use super::writer::Writer;
use crate::transcript::timeline::Timeline;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// What outlives one connection of a session.
#[derive(Debug)]
pub(super) struct Carry {
    pub replay: Replay,
    /// The end of audio was taken from the queue: a new connection ends its audio after the
    /// replay.
    pub ended_audio: bool,
    /// Why the last connection broke, until a new one answers.
    pub broken: Option<String>,
    /// Soniox made some of the session's audio final.
    pub finalized_any: bool,
    /// Input PTS up to which an earlier connection made the audio final: a replayed token
    /// that ends by then is marked `replayed` (its original was pushed already).
    pub resume_pts: Option<u64>,
}

/// How a connection ended, when it did not break.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Outcome {
    /// Soniox confirmed the end of the audio: every final token has arrived.
    Finished,
    /// The drain deadline passed first.
    DrainTimedOut,
    /// The element went away.
    Aborted,
}

/// How a connection ended, when it did not end the session.
#[derive(Debug)]
pub(super) struct Broken {
    pub error: SessionError,
    /// Soniox's `final_audio_proc_ms` on this connection (or earlier, where final originals
    /// still wait for their translation): replay from there.
    pub final_ms: u64,
}

/// Reports a connection's events; false when nobody listens any more.
pub(super) trait Report {
    async fn report(&self, event: SessionEvent) -> bool;
}

/// The largest message or frame taken from the service; a larger one breaks the connection.
const MAX_MESSAGE: usize = 16 << 20;
/// What one read of the socket takes at most (a larger message takes several reads).
const READ_BUFFER: usize = 8 << 10;

/// Waits until the session's drain deadline: `drain_timeout` after the end of audio was
/// queued. Cancel-safe (the deadline is absolute).
pub(super) async fn drain_deadline(queue: &AudioQueue, drain_timeout: Duration) {
    let ended = queue.wait_ended().await;
    sleep_until(Instant::from_std(ended) + drain_timeout).await;
}

/// Runs one connection with `key`: the session ended ([`Outcome`]), or the connection broke.
pub(super) async fn run(
    config: &SessionConfig,
    key: &ApiKey,
    queue: &AudioQueue,
    carry: &mut Carry,
    reporter: &impl Report,
) -> Result<Outcome, Broken> {
    let lost = |error, final_ms| Broken { error, final_ms };
    let transport = |e: tungstenite::Error| SessionError::Transport(e.to_string());
    let socket = tokio::select! {
        biased;
        socket = connect(config, key) => socket.map_err(|e| lost(e, 0))?,
        () = drain_deadline(queue, config.drain_timeout) => return Ok(Outcome::DrainTimedOut),
    };
    let (sink, mut stream) = socket.split();
    let mut writer = Writer::new(sink);
    writer.start(Message::text(config.start_request.to_json()));
    if !reporter.report(SessionEvent::Connected).await {
        return Ok(Outcome::Aborted);
    }
    // The connection's own table from audio sent to input timestamps: times are mapped here,
    // once, as messages arrive.
    let mut timeline = Timeline::new(config.bytes_per_second);
    let mut liveness = Liveness::new(Instant::now());
    let mut checker = Checker::new();
    // Final originals whose translation has not come: the replay would start there.
    let mut untranslated = Untranslated::default();
    // What earlier connections made final (their replayed tokens are marked).
    let resume_pts = carry.resume_pts;
    // For each finalize in flight, whether the element's user asked for it (a `<fin>`
    // answers each, in order).
    let mut requested_fins = std::collections::VecDeque::new();
    // The session marks the queue suspect while it connects; a replacement also holds what
    // queued meanwhile until it has drained.
    let mut hold = Hold::new(carry.broken.is_some());

    let mut pacer = config.pacing.map(Pacer::new);
    let mut promise = Promise::new(config.latency_ms.clone());
    // Audio sent, and audio the service said it processed: what is in between counts
    // against the live queue's limit.
    let mut sent_bytes = 0u64;
    let mut processed_bytes = 0u64;
    // Audio replayed at the start of this connection.
    let mut replayed_bytes = 0u64;
    // The audio Soniox had not finalized when the previous connection broke goes first, then
    // the end of the audio if it was already taken from the queue.
    let mut end_to_send = carry.ended_audio;
    // The replay buffer had to forget audio (reported once per connection).
    let mut overflowed = false;
    // What the frame on its way is.
    let mut sending = Frame::Control;
    // Never more audio on the way than a replay could repeat: what the service has not
    // processed yet may sit in socket buffers at either end, and is lost with the connection.
    let max_in_flight = queue.bytes_for_ms(config.replay_limit.as_millis() as u64 / 2);
    let mut last_sent = Instant::now();
    // One wait for the drain deadline over the connection's life (not one per frame), and
    // timers that move only when their deadlines do (not new ones on every turn).
    let drain = drain_deadline(queue, config.drain_timeout);
    tokio::pin!(drain);
    let mut alarms = Alarms::default();
    let mut grid = config.send_grid.map(Grid::new);
    loop {
        // The replay and a pending end of audio go before anything the queue holds.
        if writer.is_idle() {
            if let Some(chunk) = carry.replay.next_pending() {
                sent_bytes += chunk.data.len() as u64;
                replayed_bytes = sent_bytes;
                queue.set_unprocessed(sent_bytes.saturating_sub(processed_bytes));
                start_audio(&mut writer, chunk, &mut timeline, &mut carry.replay, None);
                sending = Frame::Audio;
                continue;
            }
            if std::mem::take(&mut end_to_send) {
                writer.start(Message::text(""));
                sending = Frame::Control;
                continue;
            }
        }
        let idle = writer.is_idle();
        let busy_since = writer.busy_since();
        let now = Instant::now();
        // Still catching up on the replay (some of it not even sent yet, e.g. while the start
        // request is on its way): the connection is only being replaced.
        let catching_up = carry.replay.is_pending() || processed_bytes < replayed_bytes;
        hold.update(queue, catching_up || liveness.suspect(now, busy_since));
        let suspect = hold.suspect;
        let (dead_at, why) = liveness.deadline(busy_since);
        // When the connection turns suspect if nothing changes.
        let suspect_at = (!suspect).then(|| liveness.suspect_at(busy_since));
        let keepalive_at = last_sent + config.keepalive_interval;
        // Pacing: the next audio may go out then (and nothing after it may overtake it).
        let take_at = pacer
            .as_ref()
            .and_then(Pacer::next_due)
            .filter(|&at| at > now);
        let finalize_at = promise.due(now.into_std()).map(Instant::from_std);
        let streaming = !carry.ended_audio;
        let room = sent_bytes.saturating_sub(processed_bytes) < max_in_flight;
        let step: Result<(), SessionError> = tokio::select! {
            biased;
            message = stream.next() => {
                liveness.heard(Instant::now());
                match message {
                    Some(Ok(Message::Text(text))) => {
                        let message = match ServerMessage::parse(&text) {
                            Ok(message) => message,
                            Err(e) => return Err(lost(SessionError::Invalid(format!("{e} in {}", excerpt(&text))), untranslated.replay_from(checker.final_ms()))),
                        };
                        if let Some(error) = message.error() {
                            return Err(lost(SessionError::Service(error), untranslated.replay_from(checker.final_ms())));
                        }
                        // Rounded up: the service counts what it received, never more.
                        let sent_ms = queue.duration_ns(sent_bytes).div_ceil(1_000_000);
                        let message = match checker.check(message, sent_ms, carry.ended_audio) {
                            Ok(message) => message,
                            Err(reason) => return Err(lost(SessionError::Invalid(reason), untranslated.replay_from(checker.final_ms()))),
                        };
                        carry.broken = None;
                        carry.finalized_any |= message.final_audio_proc_ms.is_some_and(|ms| ms > 0)
                            || message.tokens.iter().any(|t| t.is_final && !t.is_marker());
                        for _ in message.tokens.iter().filter(|t| t.is_final && t.text == Token::FIN) {
                            liveness.fin();
                        }
                        untranslated.observe(&message.tokens);
                        // The checker keeps both never going back.
                        if message.final_audio_proc_ms.is_some() {
                            carry.replay.finalized(untranslated.replay_from(checker.final_ms()));
                        }
                        if message.total_audio_proc_ms.is_some() {
                            processed_bytes = queue.bytes_for_ms(checker.total_ms());
                            queue.set_unprocessed(sent_bytes.saturating_sub(processed_bytes));
                        }
                        promise.observe(&message.tokens, message.final_audio_proc_ms, &timeline, std::time::Instant::now());
                        let mut results = Results::map(&message, &timeline, timeline.origin());
                        for fin in results.tokens.iter_mut().filter(|t| t.is_final && t.text == Token::FIN) {
                            fin.requested = requested_fins.pop_front().unwrap_or(false);
                        }
                        mark_replayed(&mut results.tokens, resume_pts);
                        carry.resume_pts = carry.resume_pts.max(results.settled);
                        // No token will start before what is final, nor before the open word.
                        timeline.forget_before_ms(checker.final_ms().min(promise.settled_ms()));
                        let finished = message.finished;
                        if !reporter.report(SessionEvent::Results(results)).await {
                            return Ok(Outcome::Aborted);
                        }
                        if finished {
                            writer.close(Duration::from_secs(1)).await;
                            return Ok(Outcome::Finished);
                        }
                        Ok(())
                    }
                    Some(Ok(Message::Pong(_))) => {
                        liveness.pong();
                        Ok(())
                    }
                    Some(Ok(Message::Close(frame))) => Err(SessionError::Closed {
                        code: frame.as_ref().map(|f| u16::from(f.code)),
                        reason: frame.map(|f| f.reason.to_string()).unwrap_or_default(),
                    }),
                    Some(Ok(Message::Binary(data))) => Err(SessionError::Invalid(format!(
                        "a binary frame of {} bytes (Soniox sends JSON text)",
                        data.len()
                    ))),
                    Some(Ok(_)) => Ok(()), // a ping (tungstenite answers it)
                    Some(Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed)) | None => {
                        Err(SessionError::Closed { code: None, reason: String::new() })
                    }
                    Some(Err(e)) => Err(transport(e)),
                }
            }
            sent = writer.sent(), if !idle => {
                if sending == Frame::Audio {
                    last_sent = Instant::now();
                    let now = std::time::Instant::now();
                    timeline.mark_sent(now);
                    promise.audio_sent(&timeline, now);
                }
                sent.map_err(transport)
            }
            () = &mut drain => return Ok(Outcome::DrainTimedOut),
            _ = alarms.dead.at(Some(dead_at)) => Err(SessionError::Unresponsive(why)),
            _ = alarms.suspect.at(suspect_at), if suspect_at.is_some() => Ok(()),
            _ = alarms.ping.at(idle.then(|| liveness.ping_due())), if idle => {
                liveness.ping_sent(Instant::now());
                writer.start(Message::Ping(Bytes::new()));
                sending = Frame::Control;
                Ok(())
            }
            _ = alarms.finalize.at(finalize_at), if idle && streaming && finalize_at.is_some() => {
                start_finalize(&mut writer, &mut promise, &mut liveness);
                requested_fins.push_back(false);
                sending = Frame::Control;
                Ok(())
            }
            _ = alarms.take.at(take_at), if idle && streaming && take_at.is_some() => Ok(()), // paced
            item = next_item(queue, &mut grid), if idle && streaming && take_at.is_none() && room => match item {
                Some(Queued::Audio(chunk)) => {
                    sent_bytes += chunk.data.len() as u64;
                    queue.set_unprocessed(sent_bytes.saturating_sub(processed_bytes));
                    let forgotten = start_audio(&mut writer, chunk, &mut timeline, &mut carry.replay, pacer.as_mut());
                    sending = Frame::Audio;
                    if forgotten > 0 && !std::mem::replace(&mut overflowed, true) {
                        let forgotten_ms = queue.duration_ns(forgotten) / 1_000_000;
                        if !reporter.report(SessionEvent::ReplayOverflow { forgotten_ms }).await {
                            return Ok(Outcome::Aborted);
                        }
                    }
                    Ok(())
                }
                Some(Queued::Finalize) => {
                    start_finalize(&mut writer, &mut promise, &mut liveness);
                    requested_fins.push_back(true);
                    sending = Frame::Control;
                    Ok(())
                }
                Some(Queued::Gap { pts, duration }) => {
                    let after_ms = timeline.recorded_ms();
                    promise.hurry(after_ms);
                    let after = timeline.pts_at_ms(after_ms);
                    if !reporter.report(SessionEvent::InputGap { after, origin: timeline.origin(), pts, duration }).await {
                        return Ok(Outcome::Aborted);
                    }
                    Ok(())
                }
                Some(Queued::EndOfAudio) => {
                    carry.ended_audio = true;
                    writer.start(Message::text(""));
                    sending = Frame::Control;
                    Ok(())
                }
                None => return Ok(Outcome::Aborted),
            },
            _ = alarms.keepalive.at(Some(keepalive_at)), if idle && streaming => {
                last_sent = Instant::now();
                writer.start(Message::text(Control::Keepalive.to_json()));
                sending = Frame::Control;
                Ok(())
            }
        };
        step.map_err(|error| lost(error, untranslated.replay_from(checker.final_ms())))?;
    }
}

/// What the connection tells the queue about holding live audio (see
/// [`AudioQueue::set_suspect`]): while it is suspect or catching up on a replay the queue
/// holds up to the replay window; when a replacement connection is first healthy, the backlog
/// that queued while the old one failed is drained without drops
/// ([`AudioQueue::drain_backlog`]), whether or not there was anything to replay.
struct Hold {
    suspect: bool,
    /// A replacement connection that has not been healthy yet.
    backlog: bool,
}

impl Hold {
    /// The session marked the queue suspect while it connected.
    fn new(replacing: bool) -> Hold {
        Hold {
            suspect: true,
            backlog: replacing,
        }
    }

    /// The connection is suspect (or catching up) now, or not: the queue learns of changes.
    fn update(&mut self, queue: &AudioQueue, suspect: bool) {
        if suspect == self.suspect {
            return;
        }
        self.suspect = suspect;
        if !suspect && std::mem::take(&mut self.backlog) {
            queue.drain_backlog();
        } else {
            queue.set_suspect(suspect);
        }
    }
}

/// A timer kept over the connection loop's turns: registered once, and moved only when its
/// deadline changes (a later deadline costs tokio nothing), instead of a timer made and
/// dropped on every turn — a turn per frame sent.
struct Alarm {
    sleep: std::pin::Pin<Box<Sleep>>,
    at: Instant,
}

impl Default for Alarm {
    fn default() -> Self {
        let at = Instant::now() + Duration::from_secs(86_400 * 365);
        Alarm {
            sleep: Box::pin(tokio::time::sleep_until(at)),
            at,
        }
    }
}

impl Alarm {
    /// The timer, set to `when` if given (else left as it is: its branch is off).
    fn at(&mut self, when: Option<Instant>) -> std::pin::Pin<&mut Sleep> {
        if let Some(when) = when.filter(|&when| when != self.at) {
            self.sleep.as_mut().reset(when);
            self.at = when;
        }
        self.sleep.as_mut()
    }
}

/// Live audio taken on a grid shared by every session of the process (see
/// `SessionConfig::send_grid`): at each grid point what is queued is taken, and between
/// two the session does not wait on the queue at all (a producer's push wakes nobody).
///
/// The sessions are spread over [`GRID_PHASES`] phases of the period, one after another as
/// they start: one runtime wakeup still serves every session of its phase, but not all
/// sessions send at the same instant, so the service's answers (which follow the audio) do
/// not all arrive in one burst that the last of them waits behind.
struct Grid {
    period: Duration,
    /// Where this session's grid points sit in the period.
    phase: Duration,
    alarm: Alarm,
    /// At a grid point: taking what is queued until the queue is empty.
    open: bool,
}

/// The origin of every session's grid.
static GRID_EPOCH: Lazy<Instant> = Lazy::new(Instant::now);
/// Phases of the grid period the sessions are spread over.
const GRID_PHASES: u32 = 20;
/// Grids made so far: the next one's phase.
static GRIDS_MADE: AtomicU32 = AtomicU32::new(0);

impl Grid {
    fn new(period: Duration) -> Grid {
        let period = period.max(Duration::from_millis(1));
        let slot = GRIDS_MADE.fetch_add(1, Ordering::Relaxed) % GRID_PHASES;
        Grid {
            period,
            phase: period * slot / GRID_PHASES,
            alarm: Alarm::default(),
            open: true,
        }
    }

    /// The first grid point after `now`.
    fn next_point(&self, now: Instant) -> Instant {
        let origin = *GRID_EPOCH + self.phase;
        if now < origin {
            return origin;
        }
        let period = self.period.as_nanos();
        let points = (now - origin).as_nanos() / period + 1;
        origin + Duration::from_nanos((points * period) as u64)
    }
}

/// The next queued item: at once (no grid), or at the next grid point. `None` once the queue
/// is closed. Cancel-safe.
async fn next_item(queue: &AudioQueue, grid: &mut Option<Grid>) -> Option<Queued> {
    let Some(grid) = grid else {
        return queue.pop().await;
    };
    loop {
        if grid.open {
            if let Some(item) = queue.try_pop() {
                return Some(item);
            }
            if queue.is_closed() {
                return None;
            }
            grid.open = false;
        }
        let next = grid.next_point(Instant::now());
        grid.alarm.at(Some(next)).await;
        grid.open = true;
    }
}

/// The connection loop's timers.
#[derive(Default)]
struct Alarms {
    dead: Alarm,
    suspect: Alarm,
    ping: Alarm,
    finalize: Alarm,
    take: Alarm,
    keepalive: Alarm,
}

/// A replayed token may end this much past where the earlier connection made the audio
/// final (timestamps of two connections, rounded to samples).
const RESUME_SLACK_NS: u64 = 1_000_000;

/// Marks the spoken tokens an earlier connection made final already (they end by
/// `resume_pts`): a replay that goes back for a translation hears them again.
fn mark_replayed(tokens: &mut [crate::transcript::token::Token], resume_pts: Option<u64>) {
    let Some(resume) = resume_pts else {
        return;
    };
    for token in tokens
        .iter_mut()
        .filter(|t| !t.is_marker() && !t.is_translation())
    {
        if token
            .end
            .or(token.pts)
            .is_some_and(|end| end <= resume + RESUME_SLACK_NS)
        {
            token.replayed = true;
        }
    }
}

fn start_finalize<S>(writer: &mut Writer<S>, promise: &mut Promise, liveness: &mut Liveness)
where
    S: futures_util::Sink<Message, Error = tungstenite::Error> + Unpin + Send + 'static,
{
    promise.finalize_sent(std::time::Instant::now());
    liveness.finalize_sent(Instant::now());
    writer.start(Message::text(Control::Finalize.to_json()));
}

/// What kind of frame is on its way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Frame {
    Audio,
    Control,
}

/// Enters `chunk` in the timestamp table and the replay buffer, and starts sending it.
/// Returns the bytes the replay buffer forgot to make room (see [`Replay::sent`]).
fn start_audio<S>(
    writer: &mut Writer<S>,
    chunk: Chunk,
    timeline: &mut Timeline,
    replay: &mut Replay,
    pacer: Option<&mut Pacer>,
) -> u64
where
    S: futures_util::Sink<Message, Error = tungstenite::Error> + Unpin + Send + 'static,
{
    if chunk.data.is_empty() {
        return 0; // an empty frame would end the session
    }
    let len = chunk.data.len() as u64;
    timeline.record(Some(chunk.pts), chunk.discont, len);
    if let Some(pacer) = pacer {
        pacer.sent(len);
    }
    let forgotten = replay.sent(&chunk);
    writer.start(Message::Binary(chunk.data));
    forgotten
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

pub(super) async fn connect(config: &SessionConfig, key: &ApiKey) -> Result<Socket, SessionError> {
    let url = &config.url;
    let mut request = url
        .as_str()
        .into_client_request()
        .map_err(|e| SessionError::InvalidUrl {
            url: url.clone(),
            reason: e.to_string(),
        })?;
    request.headers_mut().insert(AUTHORIZATION, key.bearer()?);
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
        let limits = WebSocketConfig::default()
            .max_message_size(Some(MAX_MESSAGE))
            .max_frame_size(Some(MAX_MESSAGE))
            // Soniox's messages are a few KiB; tungstenite zero-fills the whole read buffer
            // before each read, so its 128 KiB default costs CPU and memory per stream.
            .read_buffer_size(READ_BUFFER);
        client_async_tls_with_config(
            request,
            tcp,
            Some(limits),
            Some(Connector::Rustls(TLS.clone())),
        )
        .await
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
            let error = reported.unwrap_or_else(|| ServiceError {
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
            });
            SessionError::Refused {
                url: url.to_string(),
                error,
            }
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
    use crate::soniox::audio_queue::Overflow;

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

    const BPS: u64 = 32_000;

    /// A live queue of 1 s (3 s held while suspect) with 2.5 s queued while the session was
    /// between connections.
    fn queue_with_backlog() -> AudioQueue {
        let queue = AudioQueue::new(Overflow::DropOldest, BPS, BPS).holding_up_to(3 * BPS);
        queue.set_suspect(true);
        for i in 0..25 {
            queue
                .push_audio(Some(i * 100_000_000), false, Bytes::from(vec![0; 3200]))
                .unwrap();
        }
        queue
    }

    fn push_next(queue: &AudioQueue) -> u64 {
        let pushed = queue.push_audio(None, false, Bytes::from(vec![0; 3200]));
        pushed.unwrap().dropped_bytes
    }

    #[test]
    fn a_replacement_drains_the_backlog_without_drops_even_with_nothing_to_replay() {
        let queue = queue_with_backlog();
        let mut hold = Hold::new(true);
        // Catching up: held.
        hold.update(&queue, true);
        assert_eq!(push_next(&queue), 0);
        // Healthy, nothing left to replay: the backlog drains before the live limit holds.
        hold.update(&queue, false);
        assert_eq!(push_next(&queue), 0);
        assert_eq!(queue.queued_bytes(), 27 * 3200);
    }

    #[test]
    fn a_first_connection_applies_the_live_limit_once_healthy() {
        let queue = queue_with_backlog();
        let mut hold = Hold::new(false);
        hold.update(&queue, false);
        assert_eq!(push_next(&queue), 16 * 3200, "beyond 1 s the oldest goes");
    }

    #[test]
    fn replay_is_pending_until_its_last_chunk_is_taken() {
        let mut replay = Replay::new(60 * BPS, 2, BPS);
        let chunk = Chunk {
            pts: 0,
            discont: false,
            data: Bytes::from(vec![0; 3200]),
        };
        replay.sent(&chunk);
        replay.sent(&chunk);
        assert!(!replay.is_pending());
        replay.restart(0);
        assert!(replay.is_pending(), "before the start request is even sent");
        replay.next_pending();
        assert!(replay.is_pending());
        replay.next_pending();
        assert!(!replay.is_pending());
    }

    #[tokio::test]
    async fn grids_are_spread_over_the_period() {
        let period = Duration::from_millis(40);
        let now = Instant::now() + Duration::from_secs(1);
        let mut offsets: Vec<Duration> = (0..GRID_PHASES)
            .map(|_| {
                let grid = Grid::new(period);
                let next = grid.next_point(now);
                assert!(next > now && next <= now + period, "within one period");
                assert_eq!(grid.next_point(next), next + period, "a period apart");
                (next - *GRID_EPOCH).as_nanos() as u64 % period.as_nanos() as u64
            })
            .map(Duration::from_nanos)
            .collect();
        offsets.sort();
        offsets.dedup();
        // Other tests may make grids meanwhile: every phase is still taken once in order.
        assert!(offsets.len() >= GRID_PHASES as usize - 2, "{offsets:?}");
        assert!(offsets.iter().all(|o| *o < period));
    }
}
