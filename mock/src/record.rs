//! What each connection did, for test assertions; shared between the server and its handle.

use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::faults::Fault;
use crate::position::StreamPosition;

/// With `MockConfig::keep_audio == false`, `events` and `sent` keep their first
/// `KEPT_FIRST` entries and at least the latest `KEPT_LATEST`.
pub const KEPT_FIRST: usize = 64;
/// See [`KEPT_FIRST`].
pub const KEPT_LATEST: usize = 256;
/// With `MockConfig::keep_audio == false`, an ended session keeps its first [`KEPT_FIRST`]
/// and last `KEPT_ENDED` events and messages (plus the few that come after its end), so
/// that a server running for hours, session after session, stays small.
pub const KEPT_ENDED: usize = 16;

/// One connection (= one session).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SessionRecord {
    /// 0-based connection number (upgrade attempts, including rejected ones).
    pub index: usize,
    /// The request target of the upgrade (path and query).
    pub path: String,
    /// Raw `Authorization` header value.
    pub authorization: Option<String>,
    /// Raw `Sec-WebSocket-Protocol` value(s), joined by ", ".
    pub protocols: Option<String>,
    /// Text of the start request (set even when it fails to parse).
    pub start_request_raw: Option<String>,
    /// The start request, if it was JSON.
    pub start_request: Option<Value>,
    /// Every audio byte received after the start request, concatenated (empty with
    /// `MockConfig::keep_audio == false`).
    pub audio: Vec<u8>,
    /// How many audio bytes were received after the start request (also with
    /// `keep_audio == false`).
    pub audio_len: u64,
    /// Every client frame, in order (with `keep_audio == false`: the first [`KEPT_FIRST`] and
    /// at least the latest [`KEPT_LATEST`]; once the session ended, the latest [`KEPT_ENDED`]).
    pub events: Vec<ClientEvent>,
    /// Events left out of `events` (only with `keep_audio == false`).
    pub events_dropped: u64,
    /// Every JSON message the server sent, in order (capped like `events`).
    pub sent: Vec<Value>,
    /// Messages left out of `sent` (only with `keep_audio == false`).
    pub sent_dropped: u64,
    /// How the session ended; `None` while it runs.
    pub end: Option<SessionEnd>,
    /// Where the session's audio sits in the client's stream (reference audio / timecodes).
    pub position: StreamPosition,
    /// `position.offset_ms()`: the stream position of the session's first audio byte, once
    /// located. The session plays the script's words that start at or after it.
    pub stream_offset_ms: Option<u64>,
}

/// A request to the REST API, and the answer.
#[derive(Clone, Debug, PartialEq)]
pub struct RestRequest {
    pub method: String,
    pub path: String,
    /// Whether it carried the permanent key as `Authorization: Bearer` (never the key itself).
    pub authorized: bool,
    /// The JSON body (`Null` if there was none or it was not JSON).
    pub body: Value,
    /// The status answered.
    pub status: u16,
}

/// A frame from the client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientEvent {
    /// Since the TCP connection was accepted.
    pub at: Duration,
    /// Audio bytes received before this event.
    pub audio_bytes_before: usize,
    pub kind: ClientEventKind,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientEventKind {
    /// A non-empty binary frame of that many bytes.
    Audio(usize),
    Keepalive,
    Finalize {
        trailing_silence_ms: Option<u64>,
    },
    /// An empty text or binary frame.
    EndOfAudio,
    /// A close frame.
    Close,
    /// A WebSocket ping.
    Ping,
    /// Any other text frame (the start request, malformed or unknown control requests), verbatim.
    Other(String),
}

/// How a session ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SessionEnd {
    /// `finished` sent, then closed.
    Finished,
    /// An error JSON with this code was sent (or the upgrade was refused with this HTTP
    /// status), then closed.
    Error { code: u16 },
    /// 408 after `idle_timeout` without audio or keepalive.
    IdleTimeout,
    /// The connection went away without a close handshake: a `DropAt` fault, or the client
    /// vanished without sending a close frame.
    Dropped,
    /// The client sent a close frame before the session ended.
    ClientClosed,
    /// The server closed (1000) without `finished` (the `CloseBeforeFinished` fault).
    ServerClosed,
    /// The server went half-open ([`crate::Fault::HalfOpenAt`]): it neither reads nor sends
    /// any more, and the connection stays open.
    HalfOpen,
    /// The server went mute ([`crate::Fault::MuteAt`]) and the client went away later.
    Muted,
    /// The server sent `finished` before the end of the audio ([`crate::Fault::FinishedAt`]).
    FinishedEarly,
}

impl SessionRecord {
    /// All tokens the server sent, in order.
    pub fn tokens(&self) -> impl Iterator<Item = &Value> {
        self.sent
            .iter()
            .filter_map(|m| m.get("tokens").and_then(Value::as_array))
            .flatten()
    }

    /// The concatenated text of all final tokens, without `<end>`/`<fin>`.
    pub fn final_text(&self) -> String {
        self.tokens()
            .filter(|t| t["is_final"] == Value::Bool(true))
            .filter_map(|t| t["text"].as_str())
            .filter(|text| *text != "<end>" && *text != "<fin>")
            .collect()
    }

    /// How many tokens with this text (e.g. `"<end>"`) were sent.
    pub fn count_tokens(&self, text: &str) -> usize {
        self.tokens().filter(|t| t["text"] == text).count()
    }

    /// Whether a `finished` message was sent.
    pub fn sent_finished(&self) -> bool {
        self.sent.iter().any(|m| m["finished"] == Value::Bool(true))
    }

    /// The `error_code` of the error message sent, if any.
    pub fn sent_error_code(&self) -> Option<u16> {
        self.sent
            .iter()
            .find_map(|m| m.get("error_code").and_then(Value::as_u64))
            .map(|c| c as u16)
    }

    /// How many client events match.
    pub fn count_events(&self, pred: impl Fn(&ClientEventKind) -> bool) -> usize {
        self.events.iter().filter(|e| pred(&e.kind)).count()
    }

    pub(crate) fn push_event(&mut self, event: ClientEvent, capped: bool) {
        push_capped(&mut self.events, event, &mut self.events_dropped, capped);
    }

    pub(crate) fn push_sent(&mut self, message: Value, capped: bool) {
        push_capped(&mut self.sent, message, &mut self.sent_dropped, capped);
    }

    /// Records how the session ended (the first end counts); when capped, the records shrink
    /// to the first [`KEPT_FIRST`] and last [`KEPT_ENDED`] entries.
    pub(crate) fn set_end(&mut self, end: SessionEnd, capped: bool) {
        if self.end.is_some() {
            return;
        }
        self.end = Some(end);
        if capped {
            self.events_dropped += compact(&mut self.events);
            self.sent_dropped += compact(&mut self.sent);
        }
    }

    pub(crate) fn set_position(&mut self, position: StreamPosition) {
        self.stream_offset_ms = position.offset_ms();
        self.position = position;
    }
}

/// Appends; when capped, drops the oldest entries after the first [`KEPT_FIRST`] in batches
/// (amortized O(1)).
fn push_capped<T>(items: &mut Vec<T>, item: T, dropped: &mut u64, capped: bool) {
    items.push(item);
    if capped && items.len() >= KEPT_FIRST + 2 * KEPT_LATEST {
        items.drain(KEPT_FIRST..KEPT_FIRST + KEPT_LATEST);
        *dropped += KEPT_LATEST as u64;
    }
}

/// Keeps the first [`KEPT_FIRST`] and last [`KEPT_ENDED`] items; returns how many went.
fn compact<T>(items: &mut Vec<T>) -> u64 {
    let excess = items.len().saturating_sub(KEPT_FIRST + KEPT_ENDED);
    if excess == 0 {
        return 0;
    }
    items.drain(KEPT_FIRST..KEPT_FIRST + excess);
    items.shrink_to_fit();
    excess as u64
}

/// The records of all connections, guarded and observable.
#[derive(Default)]
pub(crate) struct Shared {
    sessions: Mutex<Vec<SessionRecord>>,
    /// Temporary keys minted so far.
    pub keys: crate::keys::KeyStore,
    /// Every REST request, in order.
    rest: Mutex<Vec<RestRequest>>,
    /// The async API's files and transcriptions.
    pub jobs: Mutex<crate::jobs::Jobs>,
    /// TLS handshakes that failed (counted before any upgrade, so without a record).
    tls_failures: Mutex<usize>,
    /// Indices into `MockConfig::stream_faults` that have fired.
    stream_faults_fired: Mutex<Vec<usize>>,
    changed: Condvar,
    tls_changed: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Vec<SessionRecord>> {
        self.sessions.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn lock_tls(&self) -> MutexGuard<'_, usize> {
        self.tls_failures.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The stream faults (indices into `faults`) due at stream position `stream_ms` that
    /// have not fired yet; they count as fired from now on.
    pub fn take_stream_faults(&self, faults: &[Fault], stream_ms: u64) -> Vec<Fault> {
        let mut fired = self
            .stream_faults_fired
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let mut due = Vec::new();
        for (i, fault) in faults.iter().enumerate() {
            if fired.contains(&i) || fault.trigger_ms().is_none_or(|at| stream_ms < at) {
                continue;
            }
            fired.push(i);
            due.push(fault.clone());
        }
        due
    }

    pub fn tls_failed(&self) {
        *self.lock_tls() += 1;
        self.tls_changed.notify_all();
    }

    pub fn tls_failures(&self) -> usize {
        *self.lock_tls()
    }

    pub fn wait_for_tls_failures(&self, timeout: Duration, count: usize) -> bool {
        let deadline = Instant::now() + timeout;
        let mut failures = self.lock_tls();
        loop {
            if *failures >= count {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            failures = self
                .tls_changed
                .wait_timeout(failures, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Adds a record for a new connection; returns its index.
    pub fn register(&self, mut record: SessionRecord) -> usize {
        let mut sessions = self.lock();
        record.index = sessions.len();
        sessions.push(record);
        self.changed.notify_all();
        sessions.len() - 1
    }

    pub fn update(&self, index: usize, change: impl FnOnce(&mut SessionRecord)) {
        let mut sessions = self.lock();
        if let Some(record) = sessions.get_mut(index) {
            change(record);
        }
        self.changed.notify_all();
    }

    pub fn count(&self) -> usize {
        self.lock().len()
    }

    pub fn record_rest(&self, request: RestRequest) {
        self.rest
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(request);
        self.changed.notify_all();
    }

    pub fn rest_requests(&self) -> Vec<RestRequest> {
        self.rest.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn snapshot(&self) -> Vec<SessionRecord> {
        self.lock().clone()
    }

    pub fn wait_until(&self, timeout: Duration, pred: impl Fn(&[SessionRecord]) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        let mut sessions = self.lock();
        loop {
            if pred(&sessions) {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            sessions = self
                .changed
                .wait_timeout(sessions, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}
