//! One connection = one session: start request, audio, control requests, results, faults.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Map, Value};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
use tokio_tungstenite::WebSocketStream;

use crate::audio::AudioClock;
use crate::config::MockConfig;
use crate::engine::{Engine, EngineOptions};
use crate::faults::Fault;
use crate::handshake::Credential;
use crate::keys::{KeyStore, SESSION_EXPIRED};
use crate::position::{Locator, StreamPosition};
use crate::protocol::{is_keepalive, parse_control, Control, ProtocolError, ResultMessage};
use crate::record::{ClientEvent, ClientEventKind, SessionEnd, Shared};
use crate::start_request::{self, StartRequest};

/// How long to wait for the client's close frame after ours.
const CLOSE_WAIT: Duration = Duration::from_secs(2);

pub(crate) struct SessionContext {
    pub shared: Arc<Shared>,
    pub config: Arc<MockConfig>,
    pub index: usize,
    pub credential: Credential,
    pub accepted_at: Instant,
}

/// The session is over; the socket is dropped.
struct Stop;

/// `Ok(true)`: the frame counts as activity (resets the idle timer).
type Step = Result<bool, Stop>;

enum Phase {
    AwaitStart,
    Streaming(Box<Streaming>),
    /// `NoFinished`, `SilentAfterEnd`: after the empty frame; only recording until the client
    /// leaves.
    Drained,
}

struct Streaming {
    /// `None` until the session's stream position is known (then built from there).
    engine: Option<Engine>,
    options: EngineOptions,
    /// Finds the stream position; `None` once found or when not tracked.
    locator: Option<Locator>,
    clock: AudioClock,
    last_response_ms: u64,
    /// Where the session's first audio byte sits in the client's stream, once known.
    stream_offset_ms: Option<u64>,
}

struct Session<S> {
    ws: WebSocketStream<S>,
    ctx: SessionContext,
    faults: Vec<Fault>,
    fired: Vec<bool>,
    phase: Phase,
    audio_bytes: usize,
    saw_close: bool,
    /// A fault made the server stop answering.
    gone: Option<Gone>,
    /// Reading is throttled to this fraction of real time until then.
    slow: Option<(f64, Instant)>,
    /// The latest message sent that had final tokens.
    last_with_finals: Option<Value>,
    /// A temporary key's session ends then (`max_session_duration_seconds`).
    key_session_ends: Option<Instant>,
}

/// How a server that stopped answering behaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Gone {
    /// Neither reads nor sends.
    HalfOpen,
    /// Reads and discards, never sends.
    Mute,
}

enum Wake {
    Frame(Option<Result<Message, tokio_tungstenite::tungstenite::Error>>),
    Idle,
    /// The temporary key's session duration ran out.
    KeyExpired,
}

pub(crate) async fn run<S>(ws: WebSocketStream<S>, ctx: SessionContext)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let faults = ctx.config.faults_for(ctx.index).to_vec();
    let mut session = Session {
        ws,
        fired: vec![false; faults.len()],
        faults,
        ctx,
        phase: Phase::AwaitStart,
        audio_bytes: 0,
        saw_close: false,
        gone: None,
        slow: None,
        last_with_finals: None,
        key_session_ends: None,
    };
    session.serve().await;
}

impl<S> Session<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    async fn serve(&mut self) {
        let idle = self.ctx.config.idle_timeout;
        let sleep = tokio::time::sleep(idle);
        tokio::pin!(sleep);
        loop {
            match self.gone {
                Some(Gone::HalfOpen) => {
                    self.set_end(SessionEnd::HalfOpen);
                    // Until the server is dropped: the TCP connection stays open.
                    return std::future::pending().await;
                }
                Some(Gone::Mute) => return self.swallow().await,
                None => {}
            }
            let watch_idle = !matches!(self.phase, Phase::Drained);
            let key_ends = self.key_session_ends;
            let wake = tokio::select! {
                frame = self.ws.next() => Wake::Frame(frame),
                () = &mut sleep, if watch_idle => Wake::Idle,
                () = tokio::time::sleep_until(key_ends.unwrap_or_else(Instant::now).into()), if key_ends.is_some() => Wake::KeyExpired,
            };
            let step = match wake {
                Wake::KeyExpired => {
                    let error =
                        ProtocolError::new(403, "temp_api_key_session_expired", SESSION_EXPIRED);
                    Err(self.fail_with(error).await)
                }
                Wake::Idle => Err(self
                    .fail(ProtocolError::timeout(), SessionEnd::IdleTimeout)
                    .await),
                Wake::Frame(Some(Ok(message))) => self.on_message(message).await,
                Wake::Frame(Some(Err(_)) | None) => {
                    self.set_end(if self.saw_close {
                        SessionEnd::ClientClosed
                    } else {
                        SessionEnd::Dropped
                    });
                    return;
                }
            };
            match step {
                Ok(true) => sleep.as_mut().reset(tokio::time::Instant::now() + idle),
                Ok(false) => {}
                Err(Stop) => return,
            }
        }
    }

    /// Reads (and drops) whatever comes until the client goes away; never answers.
    async fn swallow(&mut self) {
        use tokio::io::AsyncReadExt;
        let mut buffer = vec![0u8; 64 << 10];
        while matches!(self.ws.get_mut().read(&mut buffer).await, Ok(n) if n > 0) {}
        self.set_end(SessionEnd::Muted);
    }

    async fn on_message(&mut self, message: Message) -> Step {
        if let Message::Close(_) = message {
            self.saw_close = true;
            self.event(ClientEventKind::Close);
            self.set_end(SessionEnd::ClientClosed);
            return Ok(false);
        }
        if let Message::Ping(_) = message {
            // tungstenite answers it (when the server reads on).
            self.event(ClientEventKind::Ping);
            return Ok(false);
        }
        match self.phase {
            Phase::AwaitStart => self.before_start(message).await,
            Phase::Streaming(_) => self.streaming(message).await,
            Phase::Drained => {
                if let Some(kind) = passive_kind(&message) {
                    self.event(kind);
                }
                Ok(false)
            }
        }
    }

    async fn before_start(&mut self, message: Message) -> Step {
        let text = match message {
            Message::Binary(data) => {
                self.event(if data.is_empty() {
                    ClientEventKind::EndOfAudio
                } else {
                    ClientEventKind::Audio(data.len())
                });
                return Err(self
                    .fail(
                        ProtocolError::invalid(start_request::NOT_TEXT),
                        error_end(400),
                    )
                    .await);
            }
            Message::Text(text) => text,
            _ => return Ok(false),
        };
        let text = text.as_str();
        if is_keepalive(text) {
            self.event(ClientEventKind::Keepalive);
            return Ok(true);
        }
        self.event(if text.is_empty() {
            ClientEventKind::EndOfAudio
        } else {
            ClientEventKind::Other(text.to_string())
        });
        self.ctx.shared.update(self.ctx.index, |r| {
            r.start_request_raw = Some(text.to_string())
        });
        let request = match start_request::parse_object(text) {
            Ok(request) => request,
            Err(error) => return Err(self.fail_with(error).await),
        };
        let value = Value::Object(request.clone());
        self.ctx
            .shared
            .update(self.ctx.index, |r| r.start_request = Some(value));
        let start = match self
            .authenticate(&request)
            .and_then(|()| start_request::validate(&request))
        {
            Ok(start) => start,
            Err(error) => return Err(self.fail_with(error).await),
        };
        let streaming = self.streaming_state(&start);
        if streaming.locator.is_some() {
            self.record_position(StreamPosition::Pending);
        }
        self.phase = Phase::Streaming(Box::new(streaming));
        self.check_faults().await?;
        Ok(true)
    }

    /// The handshake key is the connection's key; `api_key` counts only without one.
    fn authenticate(&mut self, request: &Map<String, Value>) -> Result<(), ProtocolError> {
        let presented = match &self.ctx.credential {
            Credential::Key(key) => Some(key.clone()),
            Credential::Malformed => {
                return Err(ProtocolError::unauthenticated("Invalid API key."))
            }
            Credential::None => start_request::api_key(request)?,
        };
        match presented {
            None => Err(ProtocolError::unauthenticated("Missing API key.")),
            Some(key) if key == self.ctx.config.api_key => Ok(()),
            Some(key) if KeyStore::is_temporary(&key) => {
                let limit = self
                    .ctx
                    .shared
                    .keys
                    .accept(&key)
                    .map_err(ProtocolError::unauthenticated)?;
                self.key_session_ends = limit.map(|limit| Instant::now() + limit);
                Ok(())
            }
            Some(_) => Err(ProtocolError::unauthenticated("Invalid API key.")),
        }
    }

    fn streaming_state(&self, start: &StartRequest) -> Streaming {
        let config = &self.ctx.config;
        let default_language =
            (start.language_hints.first().cloned()).unwrap_or_else(|| "en".to_string());
        let language = start
            .enable_language_identification
            .then(|| default_language.clone());
        let options = EngineOptions {
            auto_final_lag_ms: config.auto_final_lag_ms,
            endpoints: config.endpoints && start.enable_endpoint_detection,
            endpoint_silence_ms: config.endpoint_silence_ms,
            diarization: start.enable_speaker_diarization,
            language,
            default_language,
            translation: start.translation.clone(),
            late_translation: config.late_translation,
        };
        let locator = Locator::new(config, start);
        let engine = locator
            .is_none()
            .then(|| Engine::new(&config.script, options.clone()));
        Streaming {
            engine,
            options,
            locator,
            clock: AudioClock::new(
                start.bytes_per_sample,
                start.sample_rate,
                start.num_channels,
            ),
            last_response_ms: 0,
            stream_offset_ms: None,
        }
    }

    async fn streaming(&mut self, message: Message) -> Step {
        match message {
            Message::Binary(data) if data.is_empty() => self.end_of_audio().await,
            Message::Text(text) if text.is_empty() => self.end_of_audio().await,
            Message::Binary(data) => self.audio(&data).await,
            Message::Text(text) => match parse_control(text.as_str()) {
                Ok(Control::Keepalive) => {
                    self.event(ClientEventKind::Keepalive);
                    Ok(true)
                }
                Ok(Control::Finalize {
                    trailing_silence_ms,
                }) => {
                    self.event(ClientEventKind::Finalize {
                        trailing_silence_ms,
                    });
                    let Some(received) = self.settle_position() else {
                        return Ok(false);
                    };
                    let Phase::Streaming(s) = &mut self.phase else {
                        return Ok(false);
                    };
                    s.last_response_ms = received;
                    let message = match s.engine.as_mut() {
                        Some(engine) => engine.finalize(received),
                        // Finalize before any audio (position still pending): only `<fin>`.
                        None => ResultMessage::fin_only(received),
                    };
                    self.send(message.to_value(), None).await?;
                    Ok(false)
                }
                Err(error) => {
                    self.event(ClientEventKind::Other(text.to_string()));
                    Err(self.fail_with(error).await)
                }
            },
            _ => Ok(false),
        }
    }

    async fn audio(&mut self, data: &[u8]) -> Step {
        let event = self.new_event(ClientEventKind::Audio(data.len()));
        let keep_audio = self.ctx.config.keep_audio;
        self.ctx.shared.update(self.ctx.index, |r| {
            r.push_event(event, !keep_audio);
            r.audio_len += data.len() as u64;
            if keep_audio {
                r.audio.extend_from_slice(data);
            }
        });
        self.audio_bytes += data.len();
        if let Phase::Streaming(s) = &mut self.phase {
            s.clock.add(data.len());
        }
        self.check_faults().await?;
        if self.gone.is_some() {
            return Ok(false);
        }
        self.read_slowly(data.len()).await;
        let located = match &mut self.phase {
            Phase::Streaming(s) => s.locator.as_mut().and_then(|l| l.feed(data)),
            _ => None,
        };
        if let Some(position) = located {
            self.place(position);
        }
        let interval = self.ctx.config.response_interval_ms;
        let Phase::Streaming(s) = &mut self.phase else {
            return Ok(true);
        };
        let received = s.clock.ms();
        // No results while the stream position is unknown: which words are heard depends on it.
        let Some(engine) = s.engine.as_mut() else {
            return Ok(true);
        };
        if received >= s.last_response_ms.saturating_add(interval) || engine.endpoint_due(received)
        {
            s.last_response_ms = received;
            let message = engine.tick(received);
            // A quiet service says nothing while no word is due.
            if !(self.ctx.config.quiet && message.tokens.is_empty()) {
                self.send(message.to_value(), None).await?;
            }
        }
        Ok(true)
    }

    /// While reading is throttled ([`Fault::SlowReadingAt`]): waits as long as `bytes` of audio
    /// take at the throttled speed.
    async fn read_slowly(&mut self, bytes: usize) {
        let Some((speed, until)) = self.slow else {
            return;
        };
        if Instant::now() >= until {
            self.slow = None;
            return;
        }
        if let Phase::Streaming(s) = &self.phase {
            let wait = s.clock.duration_of(bytes).div_f64(speed.max(0.001));
            tokio::time::sleep(wait).await;
        }
    }

    /// The stream position is known: the engine plays the script from there.
    fn place(&mut self, position: StreamPosition) {
        let Phase::Streaming(s) = &mut self.phase else {
            return;
        };
        let offset = position.offset_ms().unwrap_or(0);
        let script = self.ctx.config.script.starting_at(offset);
        s.engine = Some(Engine::new(&script, s.options.clone()));
        s.locator = None;
        s.stream_offset_ms = position.offset_ms();
        self.record_position(position);
    }

    /// Decides a pending stream position with the audio so far (`finalize`, end of audio);
    /// the session's audio ms, or `None` when not streaming. Without any audio yet the
    /// position stays pending (and there is no engine: nothing can have been heard).
    fn settle_position(&mut self) -> Option<u64> {
        let Phase::Streaming(s) = &mut self.phase else {
            return None;
        };
        let received = s.clock.ms();
        if s.engine.is_none() {
            if let Some(position) = s.locator.as_mut().and_then(Locator::finish) {
                self.place(position);
            }
        }
        Some(received)
    }

    fn record_position(&self, position: StreamPosition) {
        self.ctx
            .shared
            .update(self.ctx.index, |r| r.set_position(position));
    }

    async fn end_of_audio(&mut self) -> Step {
        self.event(ClientEventKind::EndOfAudio);
        let Some(received) = self.settle_position() else {
            return Ok(false);
        };
        if self.faults.contains(&Fault::DropAfterEnd) {
            self.set_end(SessionEnd::Dropped);
            return Err(Stop);
        }
        let refusal = self.faults.iter().find_map(|f| match f {
            Fault::ErrorAfterEnd {
                code,
                error_type,
                message,
            } => Some(ProtocolError::new(*code, error_type, message.clone())),
            _ => None,
        });
        if let Some(error) = refusal {
            return Err(self.fail_with(error).await);
        }
        if self.faults.contains(&Fault::SilentAfterEnd) {
            self.phase = Phase::Drained;
            return Ok(false);
        }
        let Phase::Streaming(s) = &mut self.phase else {
            return Ok(false);
        };
        if let Some(message) = s.engine.as_mut().and_then(|e| e.drain(received)) {
            self.send(message.to_value(), None).await?;
        }
        if self.faults.contains(&Fault::NoFinished) {
            self.phase = Phase::Drained;
            return Ok(false);
        }
        if self.faults.contains(&Fault::CloseBeforeFinished) {
            self.set_end(SessionEnd::ServerClosed);
        } else {
            self.send(
                ResultMessage::finished(received).to_value(),
                Some(SessionEnd::Finished),
            )
            .await?;
        }
        self.close().await;
        Err(Stop)
    }

    /// Fires the timeline faults whose threshold the audio has reached: the session's own,
    /// then the stream faults (once the session's stream position is known).
    async fn check_faults(&mut self) -> Result<(), Stop> {
        let (received, stream_ms) = match &self.phase {
            Phase::Streaming(s) => (
                s.clock.ms(),
                s.stream_offset_ms.map(|offset| offset + s.clock.ms()),
            ),
            _ => (0, None),
        };
        let mut due = Vec::new();
        for i in 0..self.faults.len() {
            if self.fired[i] || self.faults[i].trigger_ms().is_none_or(|at| received < at) {
                continue;
            }
            self.fired[i] = true;
            due.push(self.faults[i].clone());
        }
        let stream_faults = &self.ctx.config.stream_faults;
        if let Some(stream_ms) = stream_ms.filter(|_| !stream_faults.is_empty()) {
            due.extend(self.ctx.shared.take_stream_faults(stream_faults, stream_ms));
        }
        for fault in due {
            match fault {
                Fault::ErrorAt {
                    code,
                    error_type,
                    message,
                    ..
                } => {
                    return Err(self
                        .fail_with(ProtocolError::new(code, &error_type, message))
                        .await);
                }
                Fault::SessionLimit { .. } => {
                    return Err(self
                        .fail_with(ProtocolError::invalid("Audio is too long."))
                        .await);
                }
                Fault::DropAt { .. } => {
                    self.set_end(SessionEnd::Dropped);
                    return Err(Stop);
                }
                Fault::StallReadingAt { duration, .. } => tokio::time::sleep(duration).await,
                Fault::HalfOpenAt { .. } => {
                    self.gone = Some(Gone::HalfOpen);
                    return Ok(());
                }
                Fault::MuteAt { .. } => {
                    self.gone = Some(Gone::Mute);
                    return Ok(());
                }
                Fault::SlowReadingAt {
                    speed, duration, ..
                } => self.slow = Some((speed, Instant::now() + duration)),
                Fault::SendAt { text, .. } => self.send_raw(text).await?,
                Fault::RepeatFinalsAt { .. } => {
                    if let Some(again) = self.last_with_finals.clone() {
                        self.send(again, None).await?;
                    }
                }
                Fault::FinishedAt { .. } => {
                    let message = ResultMessage::finished(received).to_value();
                    self.send(message, Some(SessionEnd::FinishedEarly)).await?;
                    self.close().await;
                    return Err(Stop);
                }
                _ => {}
            }
        }
        Ok(())
    }

    async fn fail_with(&mut self, error: ProtocolError) -> Stop {
        let end = error_end(error.code);
        self.fail(error, end).await
    }

    /// Sends the error JSON, then closes.
    async fn fail(&mut self, error: ProtocolError, end: SessionEnd) -> Stop {
        if self.send(error.to_value(), Some(end)).await.is_ok() {
            self.close().await;
        }
        Stop
    }

    /// Records (as a JSON string) and sends `text` verbatim.
    async fn send_raw(&mut self, text: String) -> Result<(), Stop> {
        let capped = !self.ctx.config.keep_audio;
        let record = Value::String(text.clone());
        self.ctx
            .shared
            .update(self.ctx.index, |r| r.push_sent(record, capped));
        if self.ws.send(Message::text(text)).await.is_err() {
            self.set_end(SessionEnd::Dropped);
            return Err(Stop);
        }
        Ok(())
    }

    /// Records (with the session's end, if given) and then sends a JSON message.
    async fn send(&mut self, value: Value, end: Option<SessionEnd>) -> Result<(), Stop> {
        let has_finals = value["tokens"]
            .as_array()
            .is_some_and(|tokens| tokens.iter().any(|t| t["is_final"] == Value::Bool(true)));
        if has_finals {
            self.last_with_finals = Some(value.clone());
        }
        let text = value.to_string();
        let capped = !self.ctx.config.keep_audio;
        let hook = self.ctx.config.on_sent.clone();
        let seen = hook.is_some().then(|| value.clone());
        self.ctx.shared.update(self.ctx.index, |r| {
            r.push_sent(value, capped);
            if let Some(end) = end {
                r.set_end(end, capped);
            }
        });
        if self.ws.send(Message::text(text)).await.is_err() {
            self.set_end(SessionEnd::Dropped);
            return Err(Stop);
        }
        if let (Some(hook), Some(value)) = (hook, seen) {
            hook(self.ctx.index, &value);
        }
        Ok(())
    }

    /// Close frame 1000, then wait a little for the client's close frame.
    async fn close(&mut self) {
        let frame = CloseFrame {
            code: CloseCode::Normal,
            reason: Utf8Bytes::from_static(""),
        };
        if self.ws.close(Some(frame)).await.is_err() {
            return;
        }
        let _ = tokio::time::timeout(CLOSE_WAIT, async {
            while let Some(Ok(message)) = self.ws.next().await {
                if let Message::Close(_) = message {
                    self.event(ClientEventKind::Close);
                }
            }
        })
        .await;
    }

    fn new_event(&self, kind: ClientEventKind) -> ClientEvent {
        ClientEvent {
            at: self.ctx.accepted_at.elapsed(),
            audio_bytes_before: self.audio_bytes,
            kind,
        }
    }

    fn event(&self, kind: ClientEventKind) {
        let event = self.new_event(kind);
        let capped = !self.ctx.config.keep_audio;
        self.ctx
            .shared
            .update(self.ctx.index, |r| r.push_event(event, capped));
    }

    fn set_end(&self, end: SessionEnd) {
        let capped = !self.ctx.config.keep_audio;
        self.ctx
            .shared
            .update(self.ctx.index, |r| r.set_end(end, capped));
    }
}

fn error_end(code: u16) -> SessionEnd {
    SessionEnd::Error { code }
}

/// How a frame is recorded once the session only listens.
fn passive_kind(message: &Message) -> Option<ClientEventKind> {
    Some(match message {
        Message::Binary(data) if data.is_empty() => ClientEventKind::EndOfAudio,
        Message::Binary(data) => ClientEventKind::Audio(data.len()),
        Message::Text(text) if text.is_empty() => ClientEventKind::EndOfAudio,
        Message::Text(text) => match parse_control(text.as_str()) {
            Ok(Control::Keepalive) => ClientEventKind::Keepalive,
            Ok(Control::Finalize {
                trailing_silence_ms,
            }) => ClientEventKind::Finalize {
                trailing_silence_ms,
            },
            Err(_) => ClientEventKind::Other(text.to_string()),
        },
        _ => return None,
    })
}
