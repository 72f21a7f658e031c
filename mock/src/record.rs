//! What each connection did, for test assertions; shared between the server and its handle.

use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::Value;

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
    /// Every audio byte received after the start request, concatenated.
    pub audio: Vec<u8>,
    /// Every client frame, in order.
    pub events: Vec<ClientEvent>,
    /// Every JSON message the server sent, in order.
    pub sent: Vec<Value>,
    /// How the session ended; `None` while it runs.
    pub end: Option<SessionEnd>,
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
}

/// The records of all connections, guarded and observable.
#[derive(Default)]
pub(crate) struct Shared {
    sessions: Mutex<Vec<SessionRecord>>,
    changed: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Vec<SessionRecord>> {
        self.sessions.lock().unwrap_or_else(|e| e.into_inner())
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
