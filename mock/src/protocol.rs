//! Wire messages: result, finished and error JSON, control requests.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;
use serde_json::Value;

/// A token as sent on the wire. Special tokens (`<end>`, `<fin>`) carry only text and is_final.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub(crate) struct Token {
    pub text: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confidence: Option<f64>,
    pub is_final: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub speaker: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// With `translation` on: `original`, `none` (spoken tokens) or `translation`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub translation_status: Option<&'static str>,
    /// On translation tokens: the language they were translated from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_language: Option<String>,
}

impl Token {
    pub fn special(text: &str) -> Token {
        Token {
            text: text.to_string(),
            start_ms: None,
            end_ms: None,
            confidence: None,
            is_final: true,
            speaker: None,
            language: None,
            translation_status: None,
            source_language: None,
        }
    }
}

pub(crate) const END_TOKEN: &str = "<end>";
pub(crate) const FIN_TOKEN: &str = "<fin>";

/// A result message (and, with `finished`, the last message of a session).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub(crate) struct ResultMessage {
    pub tokens: Vec<Token>,
    pub final_audio_proc_ms: u64,
    pub total_audio_proc_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished: Option<bool>,
}

impl ResultMessage {
    pub fn finished(audio_ms: u64) -> ResultMessage {
        ResultMessage {
            tokens: Vec::new(),
            final_audio_proc_ms: audio_ms,
            total_audio_proc_ms: audio_ms,
            finished: Some(true),
        }
    }

    /// Just `<fin>` (a `finalize` when nothing was heard).
    pub fn fin_only(audio_ms: u64) -> ResultMessage {
        ResultMessage {
            tokens: vec![Token::special(FIN_TOKEN)],
            final_audio_proc_ms: audio_ms,
            total_audio_proc_ms: audio_ms,
            finished: None,
        }
    }

    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).expect("result message serializes")
    }
}

/// An error the server reports (then closes the session).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ProtocolError {
    pub code: u16,
    pub error_type: String,
    pub message: String,
}

impl ProtocolError {
    pub fn new(code: u16, error_type: &str, message: impl Into<String>) -> ProtocolError {
        ProtocolError {
            code,
            error_type: error_type.to_string(),
            message: message.into(),
        }
    }

    /// 400 `invalid_request`.
    pub fn invalid(message: impl Into<String>) -> ProtocolError {
        ProtocolError::new(400, "invalid_request", message)
    }

    /// 401 `unauthenticated`.
    pub fn unauthenticated(message: &str) -> ProtocolError {
        ProtocolError::new(401, "unauthenticated", message)
    }

    /// 408 `request_timeout` "Request timeout." (idle session).
    pub fn timeout() -> ProtocolError {
        ProtocolError::new(408, "request_timeout", "Request timeout.")
    }

    /// The 2026 error shape: `tokens`, `error_code`, `error_type`, `error_message`, `request_id`.
    pub fn to_value(&self) -> Value {
        #[derive(Serialize)]
        struct ErrorMessage<'a> {
            tokens: [Token; 0],
            error_code: u16,
            error_type: &'a str,
            error_message: &'a str,
            request_id: String,
        }
        serde_json::to_value(ErrorMessage {
            tokens: [],
            error_code: self.code,
            error_type: &self.error_type,
            error_message: &self.message,
            request_id: new_request_id(),
        })
        .expect("error message serializes")
    }
}

/// The `error_type` Soniox uses for an HTTP-style status (for handshake rejections).
pub(crate) fn error_type_for(code: u16) -> &'static str {
    match code {
        400 => "invalid_request",
        401 => "unauthenticated",
        402 => "organization_balance_exhausted",
        403 => "permission_denied",
        408 => "request_timeout",
        413 => "max_duration_reached",
        429 => "limit_exceeded",
        503 => "service_unavailable",
        _ => "internal_error",
    }
}

/// A UUID-v4-shaped id (not cryptographically random; unique enough for a test server).
pub(crate) fn new_request_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let word = |salt: u64| {
        let mut h = RandomState::new().build_hasher();
        h.write_u64(n);
        h.write_u128(nanos);
        h.write_u64(salt);
        h.finish()
    };
    let (a, b) = (word(1), word(2));
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0x0fff,
        0x8000 | ((b >> 48) & 0x3fff),
        b & 0xffff_ffff_ffff
    )
}

/// A control request (text frame after the start request).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Control {
    Keepalive,
    Finalize { trailing_silence_ms: Option<u64> },
}

pub(crate) const CONTROL_MALFORMED: &str = "Control request is malformed.";
pub(crate) const CONTROL_INVALID_TYPE: &str = "Control request invalid type.";

/// Parses a non-empty text frame sent after the start request.
pub(crate) fn parse_control(text: &str) -> Result<Control, ProtocolError> {
    let malformed = || ProtocolError::invalid(CONTROL_MALFORMED);
    let value: Value = serde_json::from_str(text).map_err(|_| malformed())?;
    let object = value.as_object().ok_or_else(malformed)?;
    match object.get("type").map(Value::as_str) {
        Some(Some("keepalive")) => Ok(Control::Keepalive),
        Some(Some("finalize")) => {
            let trailing_silence_ms = match object.get("trailing_silence_ms") {
                None | Some(Value::Null) => None,
                Some(v) => Some(v.as_u64().ok_or_else(malformed)?),
            };
            Ok(Control::Finalize {
                trailing_silence_ms,
            })
        }
        Some(Some(_)) => Err(ProtocolError::invalid(CONTROL_INVALID_TYPE)),
        _ => Err(malformed()),
    }
}

/// Whether a text frame is a keepalive (tolerated before the start request).
pub(crate) fn is_keepalive(text: &str) -> bool {
    matches!(parse_control(text), Ok(Control::Keepalive))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn controls() {
        assert_eq!(
            parse_control(r#"{"type":"keepalive"}"#),
            Ok(Control::Keepalive)
        );
        assert_eq!(
            parse_control(r#"{ "type" : "keepalive" }"#),
            Ok(Control::Keepalive)
        );
        assert_eq!(
            parse_control(r#"{"type":"finalize"}"#),
            Ok(Control::Finalize {
                trailing_silence_ms: None
            })
        );
        assert_eq!(
            parse_control(r#"{"type":"finalize","trailing_silence_ms":300}"#),
            Ok(Control::Finalize {
                trailing_silence_ms: Some(300)
            })
        );
        assert_eq!(
            parse_control(r#"{"type":"finalize","trailing_silence_ms":null}"#),
            Ok(Control::Finalize {
                trailing_silence_ms: None
            })
        );
        for bad in [
            "nope",
            "[]",
            "{}",
            r#"{"type":1}"#,
            r#"{"type":"finalize","trailing_silence_ms":"x"}"#,
        ] {
            assert_eq!(
                parse_control(bad).unwrap_err().message,
                CONTROL_MALFORMED,
                "{bad}"
            );
        }
        let err = parse_control(r#"{"type":"pause"}"#).unwrap_err();
        assert_eq!(
            (err.code, err.message.as_str()),
            (400, CONTROL_INVALID_TYPE)
        );
        assert!(is_keepalive(r#"{"type":"keepalive"}"#));
        assert!(!is_keepalive(r#"{"model":"stt-rt-v3"}"#));
    }

    #[test]
    fn error_shape() {
        let v = ProtocolError::unauthenticated("Invalid API key.").to_value();
        assert_eq!(v["tokens"], json!([]));
        assert_eq!(v["error_code"], 401);
        assert_eq!(v["error_type"], "unauthenticated");
        assert_eq!(v["error_message"], "Invalid API key.");
        let id = v["request_id"].as_str().unwrap();
        assert_eq!(id.len(), 36);
        assert_eq!(
            id.split('-').map(str::len).collect::<Vec<_>>(),
            [8, 4, 4, 4, 12]
        );
        assert_ne!(new_request_id(), new_request_id());
    }

    #[test]
    fn result_shape() {
        let msg = ResultMessage {
            tokens: vec![Token::special(FIN_TOKEN)],
            final_audio_proc_ms: 5,
            total_audio_proc_ms: 7,
            finished: None,
        };
        assert_eq!(
            msg.to_value(),
            json!({"tokens":[{"text":"<fin>","is_final":true}],"final_audio_proc_ms":5,"total_audio_proc_ms":7})
        );
        assert_eq!(
            ResultMessage::finished(9).to_value(),
            json!({"tokens":[],"final_audio_proc_ms":9,"total_audio_proc_ms":9,"finished":true})
        );
    }
}
