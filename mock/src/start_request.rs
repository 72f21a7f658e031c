//! Validation of the start (configuration) request, with Soniox's error messages.

use serde_json::{Map, Value};

use crate::audio;
use crate::languages::is_iso_639_1;
use crate::protocol::ProtocolError;
use crate::translate::TranslationMode;

pub(crate) const MODELS: &[&str] = &[
    "stt-rt-v3",
    "stt-rt-v3-preview",
    "stt-rt-preview-v2",
    "stt-rt-preview",
    "stt-rt-v4",
    "stt-rt-v5",
];

pub(crate) const NOT_TEXT: &str = "Start request must be a text message.";
pub(crate) const MALFORMED: &str = "Start request is malformed.";
pub(crate) const INVALID_MODEL: &str = "Invalid model specified.";
pub(crate) const MISSING_FORMAT: &str =
    "Missing audio format. Specify a valid audio format (e.g. s16le, f32le, wav, ogg, flac...)";
pub(crate) const MISSING_RATE: &str = "Audio data sample rate must be specified for PCM formats";
pub(crate) const MISSING_CHANNELS: &str = "Audio data channels must be specified for PCM formats";
pub(crate) const INVALID_RATE: &str = "Invalid audio data sample rate.";
pub(crate) const INVALID_CHANNELS: &str = "Invalid audio data channels.";
pub(crate) const INVALID_HINT: &str = "Invalid language hint.";
pub(crate) const HINTS_NOT_UNIQUE: &str = "Language hints must be unique.";
pub(crate) const CONTEXT_TOO_LONG: &str = "Context is too long (max length 10000).";
pub(crate) const REFERENCE_TOO_LONG: &str = "Client reference ID is too long (max length 256)";
pub(crate) const INVALID_ENDPOINT_DELAY: &str =
    "Invalid max_endpoint_delay_ms (must be between 500 and 3000).";
/// The range is the protocol notes' (−1.0 … 1.0); the text is UNCONFIRMED.
pub(crate) const INVALID_ENDPOINT_SENSITIVITY: &str =
    "Invalid endpoint_sensitivity (must be between -1 and 1).";
pub(crate) const INVALID_TRANSLATION_LANGUAGE: &str = "Invalid translation target language.";

/// The settings of a validated start request that the stand-in acts on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct StartRequest {
    pub model: String,
    pub audio_format: String,
    pub bytes_per_sample: u32,
    pub sample_rate: u32,
    pub num_channels: u32,
    pub enable_endpoint_detection: bool,
    pub enable_speaker_diarization: bool,
    pub enable_language_identification: bool,
    pub language_hints: Vec<String>,
    pub translation: Option<TranslationMode>,
}

fn malformed() -> ProtocolError {
    ProtocolError::invalid(MALFORMED)
}

/// Parses the text of the first frame into a JSON object.
pub(crate) fn parse_object(text: &str) -> Result<Map<String, Value>, ProtocolError> {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(malformed()),
    }
}

/// The `api_key` field (absent or null → `None`).
pub(crate) fn api_key(request: &Map<String, Value>) -> Result<Option<String>, ProtocolError> {
    opt_str(request, "api_key").map(|k| k.map(str::to_string))
}

/// Validates everything but the key. Unknown keys are ignored; `null` means "not set".
pub(crate) fn validate(request: &Map<String, Value>) -> Result<StartRequest, ProtocolError> {
    let model = match request.get("model") {
        Some(Value::String(m)) if MODELS.contains(&m.as_str()) => m.clone(),
        _ => return Err(ProtocolError::invalid(INVALID_MODEL)),
    };

    let audio_format = opt_str(request, "audio_format")?
        .ok_or_else(|| ProtocolError::invalid(MISSING_FORMAT))?
        .to_string();
    // Containers and "auto" (aac, aiff, amr, asf, flac, mp3, ogg, wav, webm) are valid for
    // Soniox, but the stand-in cannot derive a timeline from them, so they get the same answer
    // as unknown names.
    let bytes_per_sample = audio::bytes_per_sample(&audio_format).ok_or_else(|| {
        ProtocolError::invalid(format!("Invalid audio data format: {audio_format}"))
    })?;
    let sample_rate = positive_u32(request, "sample_rate", MISSING_RATE, INVALID_RATE)?;
    let num_channels = positive_u32(request, "num_channels", MISSING_CHANNELS, INVALID_CHANNELS)?;

    let language_hints = language_hints(request)?;
    opt_bool(request, "language_hints_strict")?;
    check_context(request)?;
    if let Some(id) = opt_str(request, "client_reference_id")? {
        if id.chars().count() > 256 {
            return Err(ProtocolError::invalid(REFERENCE_TOO_LONG));
        }
    }
    if let Some(delay) = opt_number(request, "max_endpoint_delay_ms")? {
        if !(500.0..=3000.0).contains(&delay) || delay.fract() != 0.0 {
            return Err(ProtocolError::invalid(INVALID_ENDPOINT_DELAY));
        }
    }
    if let Some(sensitivity) = opt_number(request, "endpoint_sensitivity")? {
        if !(-1.0..=1.0).contains(&sensitivity) {
            return Err(ProtocolError::invalid(INVALID_ENDPOINT_SENSITIVITY));
        }
    }
    // Newer tuning knob: type-checked only (its range is UNCONFIRMED).
    opt_number(request, "endpoint_latency_adjustment_level")?;
    let translation = check_translation(request)?;

    Ok(StartRequest {
        model,
        audio_format,
        bytes_per_sample,
        sample_rate,
        num_channels,
        enable_endpoint_detection: opt_bool(request, "enable_endpoint_detection")?.unwrap_or(false),
        enable_speaker_diarization: opt_bool(request, "enable_speaker_diarization")?
            .unwrap_or(false),
        enable_language_identification: opt_bool(request, "enable_language_identification")?
            .unwrap_or(false),
        language_hints,
        translation,
    })
}

fn opt_str<'a>(
    request: &'a Map<String, Value>,
    key: &str,
) -> Result<Option<&'a str>, ProtocolError> {
    match request.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(malformed()),
    }
}

fn opt_bool(request: &Map<String, Value>, key: &str) -> Result<Option<bool>, ProtocolError> {
    match request.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(malformed()),
    }
}

fn opt_number(request: &Map<String, Value>, key: &str) -> Result<Option<f64>, ProtocolError> {
    match request.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => Ok(n.as_f64()),
        Some(_) => Err(malformed()),
    }
}

/// A required positive whole number (`16000` or `16000.0`); missing/null → `missing`.
fn positive_u32(
    request: &Map<String, Value>,
    key: &str,
    missing: &str,
    invalid: &str,
) -> Result<u32, ProtocolError> {
    let value = opt_number(request, key)?.ok_or_else(|| ProtocolError::invalid(missing))?;
    if value < 1.0 || value > f64::from(u32::MAX) || value.fract() != 0.0 {
        return Err(ProtocolError::invalid(invalid));
    }
    Ok(value as u32)
}

fn language_hints(request: &Map<String, Value>) -> Result<Vec<String>, ProtocolError> {
    let hints = match request.get("language_hints") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(_) => return Err(malformed()),
    };
    let mut out: Vec<String> = Vec::with_capacity(hints.len());
    for hint in hints {
        let code = hint.as_str().ok_or_else(malformed)?;
        if !is_iso_639_1(code) {
            return Err(ProtocolError::invalid(INVALID_HINT));
        }
        out.push(code.to_string());
    }
    let mut sorted = out.clone();
    sorted.sort();
    sorted.dedup();
    if sorted.len() != out.len() {
        return Err(ProtocolError::invalid(HINTS_NOT_UNIQUE));
    }
    Ok(out)
}

/// `context`: a string (legacy) or an object with `general`, `text`, `terms`,
/// `translation_terms`; at most 10 000 characters (the object measured as serialized JSON).
fn check_context(request: &Map<String, Value>) -> Result<(), ProtocolError> {
    let length = match request.get("context") {
        None | Some(Value::Null) => return Ok(()),
        Some(Value::String(s)) => s.chars().count(),
        Some(Value::Object(sections)) => {
            check_context_sections(sections)?;
            serde_json::to_string(sections)
                .map(|s| s.chars().count())
                .unwrap_or(0)
        }
        Some(_) => return Err(malformed()),
    };
    if length > 10_000 {
        return Err(ProtocolError::invalid(CONTEXT_TOO_LONG));
    }
    Ok(())
}

fn check_context_sections(sections: &Map<String, Value>) -> Result<(), ProtocolError> {
    let pairs = |value: &Value, a: &str, b: &str| -> bool {
        value.as_array().is_some_and(|items| {
            items.iter().all(|item| {
                item.get(a).is_some_and(Value::is_string)
                    && item.get(b).is_some_and(Value::is_string)
            })
        })
    };
    let ok = |key: &str, check: &dyn Fn(&Value) -> bool| match sections.get(key) {
        None | Some(Value::Null) => true,
        Some(v) => check(v),
    };
    let valid = ok("general", &|v| pairs(v, "key", "value"))
        && ok("text", &Value::is_string)
        && ok("terms", &|v| {
            v.as_array().is_some_and(|t| t.iter().all(Value::is_string))
        })
        && ok("translation_terms", &|v| pairs(v, "source", "target"));
    if valid {
        Ok(())
    } else {
        Err(malformed())
    }
}

/// `translation`: `{"type":"one_way","target_language":..}` or
/// `{"type":"two_way","language_a":..,"language_b":..}`, languages ISO 639-1.
pub(crate) fn check_translation(
    request: &Map<String, Value>,
) -> Result<Option<TranslationMode>, ProtocolError> {
    let translation = match request.get("translation") {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Object(t)) => t,
        Some(_) => return Err(malformed()),
    };
    let code = |key: &str| match translation.get(key).and_then(Value::as_str) {
        Some(code) if is_iso_639_1(code) => Ok(code.to_string()),
        _ => Err(ProtocolError::invalid(INVALID_TRANSLATION_LANGUAGE)),
    };
    match translation.get("type").and_then(Value::as_str) {
        Some("one_way") => Ok(Some(TranslationMode::OneWay {
            target: code("target_language")?,
        })),
        Some("two_way") => Ok(Some(TranslationMode::TwoWay {
            a: code("language_a")?,
            b: code("language_b")?,
        })),
        _ => Err(malformed()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn base() -> Value {
        json!({"model":"stt-rt-v3","audio_format":"pcm_s16le","sample_rate":16000,"num_channels":1})
    }

    fn check(patch: Value) -> Result<StartRequest, String> {
        let mut request = base();
        for (k, v) in patch.as_object().unwrap() {
            if v == &json!("<remove>") {
                request.as_object_mut().unwrap().remove(k);
            } else {
                request[k] = v.clone();
            }
        }
        validate(request.as_object().unwrap()).map_err(|e| {
            assert_eq!(e.code, 400);
            assert_eq!(e.error_type, "invalid_request");
            e.message
        })
    }

    #[test]
    fn accepts_a_full_request_with_nulls_and_unknown_keys() {
        let ok = check(json!({
            "language_hints": ["en", "de"], "language_hints_strict": true,
            "context": {"general":[{"key":"domain","value":"x"}],"text":"t","terms":["a"],
                        "translation_terms":[{"source":"a","target":"b"}]},
            "enable_speaker_diarization": true, "enable_language_identification": null,
            "enable_endpoint_detection": true, "max_endpoint_delay_ms": 500,
            "client_reference_id": "x".repeat(256), "translation": null,
            "endpoint_sensitivity": 0.5, "some_future_key": {"x": 1},
            "enable_non_final_tokens": true, "api_key": null
        }))
        .unwrap();
        assert!(ok.enable_endpoint_detection && ok.enable_speaker_diarization);
        assert!(!ok.enable_language_identification);
        assert_eq!(ok.language_hints, ["en", "de"]);
        assert_eq!(
            (ok.bytes_per_sample, ok.sample_rate, ok.num_channels),
            (2, 16000, 1)
        );
        for model in MODELS {
            assert!(check(json!({ "model": model })).is_ok());
        }
        assert!(check(json!({"context": "legacy string context"})).is_ok());
        assert_eq!(ok.translation, None);
        let two_way =
            check(json!({"translation": {"type":"two_way","language_a":"en","language_b":"de"}}));
        assert_eq!(
            two_way.unwrap().translation,
            Some(TranslationMode::TwoWay {
                a: "en".into(),
                b: "de".into()
            })
        );
        let one_way = check(json!({"translation": {"type":"one_way","target_language":"fr"}}));
        assert_eq!(
            one_way.unwrap().translation,
            Some(TranslationMode::OneWay {
                target: "fr".into()
            })
        );
        assert!(check(json!({"audio_format":"mulaw","sample_rate":8000.0})).is_ok());
        assert!(check(json!({"max_endpoint_delay_ms": 3000})).is_ok());
    }

    #[test]
    fn rejects_with_soniox_messages() {
        let too_long_context = json!({"text": "x".repeat(10_000)});
        let ten_k_string = "y".repeat(10_000);
        assert!(check(json!({ "context": ten_k_string })).is_ok());
        let cases = [
            (json!({"model":"<remove>"}), INVALID_MODEL.to_string()),
            (json!({"model":"stt-async-v3"}), INVALID_MODEL.to_string()),
            (json!({"model":null}), INVALID_MODEL.to_string()),
            (
                json!({"audio_format":"<remove>"}),
                MISSING_FORMAT.to_string(),
            ),
            (json!({"audio_format":null}), MISSING_FORMAT.to_string()),
            (
                json!({"audio_format":"avi"}),
                "Invalid audio data format: avi".to_string(),
            ),
            (
                json!({"audio_format":"wav"}),
                "Invalid audio data format: wav".to_string(),
            ),
            (
                json!({"audio_format":"auto"}),
                "Invalid audio data format: auto".to_string(),
            ),
            (json!({"audio_format":16}), MALFORMED.to_string()),
            (json!({"sample_rate":"<remove>"}), MISSING_RATE.to_string()),
            (json!({"sample_rate":null}), MISSING_RATE.to_string()),
            (json!({"sample_rate":0}), INVALID_RATE.to_string()),
            (json!({"sample_rate":16000.5}), INVALID_RATE.to_string()),
            (json!({"sample_rate":"16000"}), MALFORMED.to_string()),
            (
                json!({"num_channels":"<remove>"}),
                MISSING_CHANNELS.to_string(),
            ),
            (json!({"num_channels":-1}), INVALID_CHANNELS.to_string()),
            (
                json!({"language_hints":["en","xx"]}),
                INVALID_HINT.to_string(),
            ),
            (json!({"language_hints":["EN"]}), INVALID_HINT.to_string()),
            (
                json!({"language_hints":["en-US"]}),
                INVALID_HINT.to_string(),
            ),
            (
                json!({"language_hints":["en","de","en"]}),
                HINTS_NOT_UNIQUE.to_string(),
            ),
            (json!({"language_hints":"en"}), MALFORMED.to_string()),
            (json!({"language_hints":[1]}), MALFORMED.to_string()),
            (
                json!({"context": too_long_context}),
                CONTEXT_TOO_LONG.to_string(),
            ),
            (
                json!({"context": "z".repeat(10_001)}),
                CONTEXT_TOO_LONG.to_string(),
            ),
            (json!({"context": ["x"]}), MALFORMED.to_string()),
            (json!({"context": {"terms": "x"}}), MALFORMED.to_string()),
            (
                json!({"context": {"general": [{"key": "k"}]}}),
                MALFORMED.to_string(),
            ),
            (
                json!({"client_reference_id": "x".repeat(257)}),
                REFERENCE_TOO_LONG.to_string(),
            ),
            (
                json!({"max_endpoint_delay_ms": 499}),
                INVALID_ENDPOINT_DELAY.to_string(),
            ),
            (
                json!({"max_endpoint_delay_ms": 3001}),
                INVALID_ENDPOINT_DELAY.to_string(),
            ),
            (
                json!({"max_endpoint_delay_ms": "1000"}),
                MALFORMED.to_string(),
            ),
            (
                json!({"endpoint_sensitivity": 1.5}),
                INVALID_ENDPOINT_SENSITIVITY.to_string(),
            ),
            (
                json!({"endpoint_sensitivity": "high"}),
                MALFORMED.to_string(),
            ),
            (
                json!({"enable_endpoint_detection": "yes"}),
                MALFORMED.to_string(),
            ),
            (
                json!({"translation": {"type":"one_way","target_language":"xx"}}),
                INVALID_TRANSLATION_LANGUAGE.to_string(),
            ),
            (
                json!({"translation": {"type":"sideways"}}),
                MALFORMED.to_string(),
            ),
        ];
        for (patch, message) in cases {
            assert_eq!(check(patch.clone()).unwrap_err(), message, "{patch}");
        }
    }

    #[test]
    fn parse_object_and_api_key() {
        assert_eq!(parse_object("[1]").unwrap_err().message, MALFORMED);
        assert_eq!(parse_object("{").unwrap_err().message, MALFORMED);
        let map = parse_object(r#"{"api_key":"k"}"#).unwrap();
        assert_eq!(api_key(&map).unwrap().as_deref(), Some("k"));
        let map = parse_object(r#"{"api_key":7}"#).unwrap();
        assert_eq!(api_key(&map).unwrap_err().message, MALFORMED);
    }
}
