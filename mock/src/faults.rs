//! Per-connection fault injection.

use std::time::Duration;

/// Soniox's words for a session it cannot continue (503).
pub(crate) const SERVICE_UNAVAILABLE: &str = "Cannot continue request (code 11). Please restart \
     the request. Refer to: https://soniox.com/url/cannot-continue-request";

/// A misbehaviour the stand-in plays on a connection (see `MockConfig::session_faults`).
///
/// `audio_ms` thresholds are on the session's own audio timeline (ms of audio received on that
/// connection, whatever its stream position); they are checked right after the start request
/// (so `0` fires at once) and after every audio frame. Each fault fires once per connection.
/// The enum is `#[non_exhaustive]`: more faults may be added without breaking users.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Fault {
    /// Once `audio_ms` of audio arrived: send this error JSON, then close (code 1000).
    ErrorAt {
        audio_ms: u64,
        code: u16,
        error_type: String,
        message: String,
    },
    /// Once `audio_ms` of audio arrived: drop the TCP connection without a close frame.
    DropAt { audio_ms: u64 },
    /// After the empty frame: drop the TCP connection without a close frame, before sending
    /// anything more (the words not yet final stay non-final).
    DropAfterEnd,
    /// After the empty frame: send the remaining finals, but never `finished` and never close
    /// (until the client goes away; no idle timeout either).
    NoFinished,
    /// After the empty frame: send nothing more (the words not yet final stay non-final, and
    /// `finished` never comes) and never close (until the client goes away; no idle timeout).
    /// A service that hangs while draining.
    SilentAfterEnd,
    /// After the empty frame: send the remaining finals, then close (1000) without `finished`.
    CloseBeforeFinished,
    /// Once `audio_ms` of audio arrived: stop reading from the socket for `duration`.
    /// While any connection could stall, accepted sockets get a small receive buffer (see
    /// `MockConfig::recv_buffer_size`) so the client's writes back up quickly.
    StallReadingAt { audio_ms: u64, duration: Duration },
    /// Soniox's session duration cap: once `audio_ms` arrived, 400 "Audio is too long.".
    SessionLimit { audio_ms: u64 },
    /// Refuse the WebSocket upgrade with this HTTP status (4xx/5xx) and a JSON error body.
    RejectHandshake { status: u16 },
    /// Once `audio_ms` of audio arrived: go half-open. The server neither reads nor sends
    /// anything again (no results, no pongs, no close) and keeps the TCP connection open, as
    /// a hung server or a dead peer behind a proxy would.
    HalfOpenAt { audio_ms: u64 },
    /// Once `audio_ms` of audio arrived: keep reading (and discarding) everything the client
    /// sends, but never answer anything again: no results, no pongs, no close.
    MuteAt { audio_ms: u64 },
    /// Once `audio_ms` of audio arrived: read at `speed` × real time (e.g. 0.5) for `duration`,
    /// answering pings as they are read. A server that is alive but cannot keep up.
    SlowReadingAt {
        audio_ms: u64,
        speed: f64,
        duration: Duration,
    },
    /// Once `audio_ms` of audio arrived: send `text` as a text frame (verbatim: anything, JSON
    /// or not), then go on as before. Recorded in `SessionRecord::sent` as a JSON string.
    SendAt { audio_ms: u64, text: String },
    /// Once `audio_ms` of audio arrived: send the latest message that had final tokens once
    /// more (Soniox never repeats a final token), then go on.
    RepeatFinalsAt { audio_ms: u64 },
    /// Once `audio_ms` of audio arrived: send `finished` (final = total = the audio received)
    /// and close, before the client ended its audio.
    FinishedAt { audio_ms: u64 },
    /// After the empty frame: send this error JSON instead of the drain, then close.
    ErrorAfterEnd {
        code: u16,
        error_type: String,
        message: String,
    },
}

impl Fault {
    /// [`Fault::ErrorAt`] from string slices.
    pub fn error_at(audio_ms: u64, code: u16, error_type: &str, message: &str) -> Fault {
        Fault::ErrorAt {
            audio_ms,
            code,
            error_type: error_type.to_string(),
            message: message.to_string(),
        }
    }

    /// Soniox's mid-stream failure: 503 `service_unavailable` "Cannot continue request …".
    pub fn service_unavailable_at(audio_ms: u64) -> Fault {
        Fault::error_at(audio_ms, 503, "service_unavailable", SERVICE_UNAVAILABLE)
    }

    /// 429 `limit_exceeded` right after the start request (too many concurrent requests).
    pub fn rate_limited() -> Fault {
        Fault::error_at(
            0,
            429,
            "limit_exceeded",
            "Your organization has exceeded max number of concurrent requests.",
        )
    }

    /// 429 `limit_exceeded` once `audio_ms` of audio arrived (request-rate limit).
    pub fn rate_limited_at(audio_ms: u64) -> Fault {
        Fault::error_at(
            audio_ms,
            429,
            "limit_exceeded",
            "Rate limit for your organization has been exceeded.",
        )
    }

    /// 408 `request_timeout` "Request timeout." once `audio_ms` of audio arrived.
    pub fn request_timeout_at(audio_ms: u64) -> Fault {
        Fault::error_at(audio_ms, 408, "request_timeout", "Request timeout.")
    }

    /// 500 `internal_error` once `audio_ms` of audio arrived.
    pub fn internal_error_at(audio_ms: u64) -> Fault {
        Fault::error_at(
            audio_ms,
            500,
            "internal_error",
            "The server had an error processing your request.",
        )
    }

    /// 502 once `audio_ms` of audio arrived. Not in Soniox's documented error list (a gateway
    /// failure in front of the service); the `error_type` is the generic 5xx one,
    /// `internal_error` (UNCONFIRMED). Clients should treat it like 500.
    pub fn bad_gateway_at(audio_ms: u64) -> Fault {
        Fault::error_at(audio_ms, 502, "internal_error", "Bad gateway.")
    }

    /// 429 `limit_exceeded` after the empty frame: the drain is refused.
    pub fn rate_limited_after_end() -> Fault {
        Fault::ErrorAfterEnd {
            code: 429,
            error_type: "limit_exceeded".to_string(),
            message: "Rate limit for your organization has been exceeded.".to_string(),
        }
    }

    /// [`Fault::SendAt`] from a string slice.
    pub fn send_at(audio_ms: u64, text: &str) -> Fault {
        Fault::SendAt {
            audio_ms,
            text: text.to_string(),
        }
    }

    /// The audio position at which a timeline fault fires.
    pub(crate) fn trigger_ms(&self) -> Option<u64> {
        match self {
            Fault::ErrorAt { audio_ms, .. }
            | Fault::DropAt { audio_ms }
            | Fault::StallReadingAt { audio_ms, .. }
            | Fault::SessionLimit { audio_ms }
            | Fault::HalfOpenAt { audio_ms }
            | Fault::MuteAt { audio_ms }
            | Fault::SlowReadingAt { audio_ms, .. }
            | Fault::SendAt { audio_ms, .. }
            | Fault::RepeatFinalsAt { audio_ms }
            | Fault::FinishedAt { audio_ms } => Some(*audio_ms),
            Fault::NoFinished
            | Fault::ErrorAfterEnd { .. }
            | Fault::SilentAfterEnd
            | Fault::DropAfterEnd
            | Fault::CloseBeforeFinished
            | Fault::RejectHandshake { .. } => None,
        }
    }
}
