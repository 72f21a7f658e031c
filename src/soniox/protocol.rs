// SPDX-License-Identifier: MPL-2.0
//! The Soniox real-time WebSocket messages as serde types.
//!
//! Client → server: the start request (first text frame) and control messages.
//! Server → client: result messages with tokens, the `finished` message and errors.
//! Parsing is tolerant where Soniox's documents leave room: every field may be missing or
//! null, unknown fields are ignored, and times may arrive as integers, floats or numeric
//! strings (see `soniox-realtime-api.md` §6.1). It is strict about the rest: a field of the
//! wrong type, a negative or non-numeric time, or anything that is not JSON is an error (the
//! connection then counts as broken). What the values mean is checked in `super::check`.

use serde::{Deserialize, Deserializer, Serialize};
use std::fmt;

/// The first message of a session. The API key is *not* part of it: it travels in the
/// `Authorization` header of the WebSocket handshake.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct StartRequest {
    pub model: String,
    pub audio_format: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sample_rate: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub num_channels: Option<u32>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub language_hints: Vec<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub language_hints_strict: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context: Option<serde_json::Value>,
    pub enable_speaker_diarization: bool,
    pub enable_language_identification: bool,
    pub enable_endpoint_detection: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_endpoint_delay_ms: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint_sensitivity: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_reference_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub translation: Option<Translation>,
}

/// The start request's `translation` object (protocol doc §2.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Translation {
    /// All speech translated into `target_language` (but what is spoken in it).
    OneWay { target_language: String },
    /// Speech in either language translated into the other.
    TwoWay {
        language_a: String,
        language_b: String,
    },
}

impl StartRequest {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a start request always serializes")
    }
}

/// Turns the `context` setting into what Soniox expects: a JSON object is sent as the
/// structured context as is; any other string becomes `{"text": …}`.
pub fn context_value(context: &str) -> serde_json::Value {
    match serde_json::from_str::<serde_json::Value>(context) {
        Ok(value @ serde_json::Value::Object(_)) => value,
        _ => serde_json::json!({ "text": context }),
    }
}

/// Control messages (text frames) the client sends during a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Control {
    Keepalive,
    Finalize,
}

impl Control {
    pub fn to_json(self) -> String {
        serde_json::to_string(&self).expect("a control message always serializes")
    }
}

/// One token of a result message.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Token {
    pub text: String,
    #[serde(deserialize_with = "lenient_ms")]
    pub start_ms: Option<u64>,
    #[serde(deserialize_with = "lenient_ms")]
    pub end_ms: Option<u64>,
    pub confidence: Option<f64>,
    pub is_final: bool,
    pub speaker: Option<String>,
    pub language: Option<String>,
    pub translation_status: Option<String>,
    pub source_language: Option<String>,
}

impl Token {
    pub const END: &'static str = "<end>";
    pub const FIN: &'static str = "<fin>";

    /// A translated token (not the original speech).
    pub fn is_translation(&self) -> bool {
        self.translation_status.as_deref() == Some("translation")
    }

    /// `<end>` or `<fin>`: markers, never text.
    pub fn is_marker(&self) -> bool {
        self.text == Self::END || self.text == Self::FIN
    }
}

/// Any message the server sends: results, the finished message or an error.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct ServerMessage {
    pub tokens: Vec<Token>,
    #[serde(deserialize_with = "lenient_ms")]
    pub final_audio_proc_ms: Option<u64>,
    #[serde(deserialize_with = "lenient_ms")]
    pub total_audio_proc_ms: Option<u64>,
    pub finished: bool,
    #[serde(deserialize_with = "lenient_code")]
    pub error_code: Option<u16>,
    pub error_type: Option<String>,
    pub error_message: Option<String>,
    pub request_id: Option<String>,
    pub more_info: Option<String>,
}

impl ServerMessage {
    pub fn parse(text: &str) -> Result<ServerMessage, serde_json::Error> {
        // serde would take a JSON array for a struct too.
        if !text.trim_start().starts_with('{') {
            return Err(serde::de::Error::custom("not a JSON object"));
        }
        serde_json::from_str(text)
    }

    /// The error this message carries, if it is an error message.
    pub fn error(&self) -> Option<ServiceError> {
        if self.error_code.is_none() && self.error_message.is_none() {
            return None;
        }
        Some(ServiceError {
            code: self.error_code,
            error_type: self.error_type.clone(),
            message: self.error_message.clone().unwrap_or_default(),
            request_id: self.request_id.clone(),
        })
    }
}

/// An error reported by the service (JSON error message, or HTTP status on the handshake).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceError {
    pub code: Option<u16>,
    pub error_type: Option<String>,
    pub message: String,
    pub request_id: Option<String>,
}

impl ServiceError {
    /// Errors that a client must not retry (the request or the account must be fixed).
    pub fn is_fatal(&self) -> bool {
        matches!(self.code, Some(400..=403) | None)
    }
}

impl fmt::Display for ServiceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.code {
            Some(500..) => "Soniox ended the session",
            _ => "Soniox rejected the request",
        };
        write!(f, "{what} ")?;
        self.fmt_label(f)?;
        write!(f, ": {}", self.message)
    }
}

impl ServiceError {
    /// `(401 unauthenticated)`, `(404)`, …
    pub fn fmt_label(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.code, self.error_type.as_deref()) {
            (Some(code), Some(kind)) => write!(f, "({code} {kind})"),
            (Some(code), None) => write!(f, "({code})"),
            (None, Some(kind)) => write!(f, "({kind})"),
            (None, None) => write!(f, "(error)"),
        }
    }
}

/// The largest time taken at all (about 285 years): larger ones are errors, not numbers to
/// compute with.
const MAX_MS: f64 = 9.0e12;

/// Accepts integers, floats (rounded), numeric strings and null for millisecond fields;
/// refuses negative, huge and non-numeric values.
fn lenient_ms<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u64>, D::Error> {
    use serde::de::Error;
    let Some(value) = Option::<serde_json::Value>::deserialize(deserializer)? else {
        return Ok(None);
    };
    let Some(ms) = number_of(&value) else {
        return Err(D::Error::custom(format!(
            "a time that is not a number: {value}"
        )));
    };
    if !(0.0..=MAX_MS).contains(&ms) {
        return Err(D::Error::custom(format!("a time out of range: {value}")));
    }
    Ok(Some(ms.round() as u64))
}

fn lenient_code<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u16>, D::Error> {
    let value = Option::<serde_json::Value>::deserialize(deserializer)?;
    Ok(value
        .as_ref()
        .and_then(number_of)
        .filter(|n| (0.0..=f64::from(u16::MAX)).contains(n))
        .map(|n| n as u16))
}

fn number_of(value: &serde_json::Value) -> Option<f64> {
    match value {
        serde_json::Value::Number(n) => n.as_f64(),
        serde_json::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_request_has_the_contract_fields_and_no_key() {
        let request = StartRequest {
            model: "stt-rt-v5".into(),
            audio_format: "pcm_s16le".into(),
            sample_rate: Some(16000),
            num_channels: Some(1),
            enable_endpoint_detection: true,
            ..Default::default()
        };
        let json: serde_json::Value = serde_json::from_str(&request.to_json()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "model": "stt-rt-v5",
                "audio_format": "pcm_s16le",
                "sample_rate": 16000,
                "num_channels": 1,
                "enable_speaker_diarization": false,
                "enable_language_identification": false,
                "enable_endpoint_detection": true,
            })
        );
        assert!(json.get("api_key").is_none());
    }

    #[test]
    fn optional_fields_are_sent_when_set() {
        let request = StartRequest {
            model: "m".into(),
            audio_format: "mulaw".into(),
            language_hints: vec!["en".into(), "de".into()],
            language_hints_strict: true,
            context: Some(context_value("a talk about GStreamer")),
            max_endpoint_delay_ms: Some(800),
            client_reference_id: Some("call-7".into()),
            ..Default::default()
        };
        let json: serde_json::Value = serde_json::from_str(&request.to_json()).unwrap();
        assert_eq!(json["language_hints"], serde_json::json!(["en", "de"]));
        assert_eq!(json["language_hints_strict"], true);
        assert_eq!(
            json["context"],
            serde_json::json!({"text": "a talk about GStreamer"})
        );
        assert_eq!(json["max_endpoint_delay_ms"], 800);
        assert_eq!(json["client_reference_id"], "call-7");
    }

    #[test]
    fn structured_context_is_sent_as_an_object() {
        let value = context_value(
            r#"{"terms": ["Soniox"], "general": [{"key": "domain", "value": "tech"}]}"#,
        );
        assert_eq!(value["terms"][0], "Soniox");
        // A JSON value that is not an object is just text.
        assert_eq!(
            context_value("[1, 2]"),
            serde_json::json!({"text": "[1, 2]"})
        );
    }

    #[test]
    fn control_messages() {
        assert_eq!(Control::Keepalive.to_json(), r#"{"type":"keepalive"}"#);
        assert_eq!(Control::Finalize.to_json(), r#"{"type":"finalize"}"#);
    }

    #[test]
    fn parses_results_tolerantly() {
        let message = ServerMessage::parse(
            r#"{"tokens": [
                {"text": "What's", "start_ms": 120, "end_ms": 420.4, "confidence": 0.93, "is_final": true, "speaker": "1", "new_field": 3},
                {"text": "<end>", "is_final": true},
                {"text": " the"}
              ], "final_audio_proc_ms": 540, "total_audio_proc_ms": "1080", "surprise": {"a": 1}}"#,
        )
        .unwrap();
        assert_eq!(message.tokens.len(), 3);
        assert_eq!(message.tokens[0].end_ms, Some(420));
        assert_eq!(message.tokens[0].speaker.as_deref(), Some("1"));
        assert!(message.tokens[1].is_marker());
        assert_eq!(message.tokens[1].start_ms, None);
        assert!(!message.tokens[2].is_final);
        assert_eq!(message.final_audio_proc_ms, Some(540));
        assert_eq!(message.total_audio_proc_ms, Some(1080));
        assert!(!message.finished);
        assert!(message.error().is_none());
    }

    #[test]
    fn parses_finished_and_null_fields() {
        let message = ServerMessage::parse(
            r#"{"tokens": [], "final_audio_proc_ms": null, "finished": true}"#,
        )
        .unwrap();
        assert!(message.finished);
        assert_eq!(message.final_audio_proc_ms, None);
        assert!(ServerMessage::parse("{}").unwrap().tokens.is_empty());
    }

    #[test]
    fn refuses_what_cannot_be_a_result() {
        for bad in [
            "not json",
            r#"{"tokens": [], "final_audio_proc_ms": NaN}"#,
            r#"{"tokens": [], "final_audio_proc_ms": 1e400}"#,
            r#"{"tokens": null}"#,
            r#"{"tokens": [{"text": "\ud800", "is_final": true}]}"#,
            r#"{"tokens": [{"text": " a", "start_ms": -40, "is_final": true}]}"#,
            r#"{"tokens": [{"text": " a", "start_ms": "soon", "is_final": true}]}"#,
            r#"{"tokens": [{"text": " a", "start_ms": true, "is_final": true}]}"#,
            r#"{"tokens": [], "total_audio_proc_ms": 1e13}"#,
            r#"{"tokens": [{"text": 5, "is_final": true}]}"#,
            r#"{"tokens": [{"text": "a", "is_final": "yes"}]}"#,
            r#"{"tokens": [], "finished": 1}"#,
            "[]",
        ] {
            assert!(ServerMessage::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn parses_both_error_shapes() {
        let v3 = ServerMessage::parse(
            r#"{"tokens": [], "error_code": 400, "error_message": "Audio data sample rate must be specified for PCM formats"}"#,
        )
        .unwrap();
        let error = v3.error().unwrap();
        assert_eq!(error.code, Some(400));
        assert!(error.is_fatal());
        assert_eq!(
            error.to_string(),
            "Soniox rejected the request (400): Audio data sample rate must be specified for PCM formats"
        );

        // The 2026 shape, without `tokens`.
        let v2026 = ServerMessage::parse(
            r#"{"error_code": 503, "error_type": "service_unavailable",
                "error_message": "Cannot continue request (code 11). Please restart the request.",
                "more_info": "https://soniox.com/docs", "request_id": "3d37a3bd"}"#,
        )
        .unwrap();
        let error = v2026.error().unwrap();
        assert_eq!(error.request_id.as_deref(), Some("3d37a3bd"));
        assert!(!error.is_fatal());
        assert_eq!(
            error.to_string(),
            "Soniox ended the session (503 service_unavailable): Cannot continue request (code 11). Please restart the request."
        );

        let auth = ServerMessage::parse(
            r#"{"error_code": 401, "error_type": "unauthenticated", "error_message": "Invalid API key."}"#,
        )
        .unwrap();
        assert_eq!(
            auth.error().unwrap().to_string(),
            "Soniox rejected the request (401 unauthenticated): Invalid API key."
        );
    }
}
