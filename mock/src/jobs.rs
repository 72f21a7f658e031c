//! Soniox's async API on the REST port: files (`POST /v1/files`, multipart field `file`;
//! `DELETE /v1/files/{id}`) and transcriptions (`POST /v1/transcriptions`, `GET
//! /v1/transcriptions/{id}`, `GET /v1/transcriptions/{id}/transcript`, `DELETE
//! /v1/transcriptions/{id}`), Bearer-authenticated with the permanent key (temporary keys are
//! refused), with Soniox's validation and error shape.
//!
//! A job is `queued` for the first third of [`MockConfig::job_delay`], `processing` until it
//! has passed, then `completed` (or `error`, see [`JobFault`]). Its transcript is the script's
//! words spoken in the audio uploaded: the file must be a WAV file, whose length decides
//! which words were said (a word cut by the end ends there).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};

use crate::config::MockConfig;
use crate::languages::is_iso_639_1;
use crate::script::Script;
use crate::translate::{self, TranslationMode};

/// A misbehaviour of the async API (see `MockConfig::job_faults`). Each fires as described,
/// whatever the request's order among others.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum JobFault {
    /// The first `times` uploads are answered with `status` (e.g. 503) and Soniox's error.
    UploadStatus { status: u16, times: u32 },
    /// The first `times` transcription requests are answered with `status` (e.g. 429).
    CreateStatus { status: u16, times: u32 },
    /// Every job ends in `error` with this message.
    JobError { message: String },
}

impl JobFault {
    /// The first upload is answered with `status`.
    pub fn upload_refused_once(status: u16) -> JobFault {
        JobFault::UploadStatus { status, times: 1 }
    }

    /// The first transcription request is answered with `status`.
    pub fn create_refused_once(status: u16) -> JobFault {
        JobFault::CreateStatus { status, times: 1 }
    }
}

/// An uploaded file, as the test sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct UploadedFile {
    pub id: String,
    pub filename: String,
    pub bytes: Arc<Vec<u8>>,
    pub deleted: bool,
}

/// A transcription job, as the test sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct TranscriptionJob {
    pub id: String,
    /// The request body, as sent.
    pub request: Value,
    pub file_id: String,
    pub deleted: bool,
}

#[derive(Default)]
pub(crate) struct Jobs {
    files: BTreeMap<String, UploadedFile>,
    transcriptions: BTreeMap<String, (TranscriptionJob, Instant)>,
    uploads_refused: u32,
    creations_refused: u32,
    next_id: u64,
}

/// An answer: status and JSON body (`Value::Null`: no body).
pub(crate) type Answer = (u16, Value);

/// Soniox's REST error body.
pub(crate) fn error_body(
    status: u16,
    error_type: &str,
    message: &str,
    validation: Vec<Value>,
) -> Value {
    json!({
        "status_code": status,
        "error_type": error_type,
        "message": message,
        "validation_errors": validation,
        "request_id": crate::protocol::new_request_id(),
    })
}

fn invalid(location: &str, message: &str) -> Answer {
    let detail = json!({"error_type": "invalid_value", "location": location, "message": message});
    (
        400,
        error_body(400, "invalid_request", "Invalid request.", vec![detail]),
    )
}

fn not_found(what: &str) -> Answer {
    (
        404,
        error_body(404, "not_found", &format!("{what} not found."), vec![]),
    )
}

/// The status a fault answers with, and Soniox's words for it.
fn refused(status: u16) -> Answer {
    let (kind, message) = match status {
        429 => ("rate_limit_exceeded", "Too many requests."),
        503 => ("service_unavailable", "Service temporarily unavailable."),
        500..=599 => ("internal_error", "Internal server error."),
        _ => ("invalid_request", "Invalid request."),
    };
    (status, error_body(status, kind, message, vec![]))
}

fn timestamp() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

impl Jobs {
    fn id(&mut self, prefix: &str) -> String {
        self.next_id += 1;
        format!("{prefix}-{:08x}", self.next_id * 0x9e37_79b1 % 0xffff_ffff)
    }

    pub fn files(&self) -> Vec<UploadedFile> {
        self.files.values().cloned().collect()
    }

    pub fn transcriptions(&self) -> Vec<TranscriptionJob> {
        self.transcriptions
            .values()
            .map(|(j, _)| j.clone())
            .collect()
    }

    /// `POST /v1/files`: `file` is the multipart field's name and bytes (`None`: missing).
    pub fn upload(&mut self, config: &MockConfig, file: Option<(String, Vec<u8>)>) -> Answer {
        for fault in &config.job_faults {
            if let JobFault::UploadStatus { status, times } = fault {
                if self.uploads_refused < *times {
                    self.uploads_refused += 1;
                    return refused(*status);
                }
            }
        }
        let Some((filename, bytes)) = file else {
            return invalid("file", "Field required.");
        };
        let id = self.id("file");
        let size = bytes.len();
        self.files.insert(
            id.clone(),
            UploadedFile {
                id: id.clone(),
                filename: filename.clone(),
                bytes: Arc::new(bytes),
                deleted: false,
            },
        );
        let body = json!({"id": id, "filename": filename, "size": size, "created_at": timestamp()});
        (201, body)
    }

    pub fn delete_file(&mut self, id: &str) -> Answer {
        match self.files.get_mut(id) {
            Some(file) if !file.deleted => {
                file.deleted = true;
                (204, Value::Null)
            }
            _ => not_found("File"),
        }
    }

    /// `POST /v1/transcriptions`.
    pub fn create(&mut self, config: &MockConfig, body: &Value) -> Answer {
        for fault in &config.job_faults {
            if let JobFault::CreateStatus { status, times } = fault {
                if self.creations_refused < *times {
                    self.creations_refused += 1;
                    return refused(*status);
                }
            }
        }
        let Some(request) = body.as_object() else {
            return invalid("body", "The request body must be a JSON object.");
        };
        if let Err(answer) = check_request(request) {
            return answer;
        }
        let file_id = request["file_id"].as_str().unwrap_or_default().to_string();
        if self.files.get(&file_id).is_none_or(|f| f.deleted) {
            return invalid("file_id", "File not found.");
        }
        let id = self.id("transcription");
        let job = TranscriptionJob {
            id: id.clone(),
            request: body.clone(),
            file_id: file_id.clone(),
            deleted: false,
        };
        self.transcriptions
            .insert(id.clone(), (job, Instant::now()));
        let answer = self.describe(config, &id).expect("just made");
        (201, answer)
    }

    /// The job's status now.
    fn status(&self, config: &MockConfig, id: &str) -> Option<(&'static str, Option<String>)> {
        let (job, created) = self.transcriptions.get(id).filter(|(j, _)| !j.deleted)?;
        let elapsed = created.elapsed();
        if elapsed < config.job_delay / 3 {
            return Some(("queued", None));
        }
        if elapsed < config.job_delay {
            return Some(("processing", None));
        }
        for fault in &config.job_faults {
            if let JobFault::JobError { message } = fault {
                return Some(("error", Some(message.clone())));
            }
        }
        match self.audio_ms(&job.file_id) {
            Ok(_) => Some(("completed", None)),
            Err(why) => Some(("error", Some(why))),
        }
    }

    fn describe(&self, config: &MockConfig, id: &str) -> Option<Value> {
        let (status, message) = self.status(config, id)?;
        let (job, _) = &self.transcriptions[id];
        let mut body = json!({
            "id": id,
            "status": status,
            "created_at": timestamp(),
            "model": job.request["model"],
            "file_id": job.file_id,
        });
        if let Some(message) = message {
            body["error_message"] = json!(message);
        }
        Some(body)
    }

    pub fn get(&self, config: &MockConfig, id: &str) -> Answer {
        match self.describe(config, id) {
            Some(body) => (200, body),
            None => not_found("Transcription"),
        }
    }

    pub fn transcript(&self, config: &MockConfig, id: &str) -> Answer {
        match self.status(config, id) {
            None => not_found("Transcription"),
            Some(("completed", _)) => {
                let (job, _) = &self.transcriptions[id];
                let audio_ms = self.audio_ms(&job.file_id).unwrap_or(0);
                let tokens = transcript_tokens(&config.script, audio_ms, &job.request);
                let text: String = tokens
                    .iter()
                    .filter(|t| t["translation_status"] != "translation")
                    .map(|t| t["text"].as_str().unwrap_or_default())
                    .collect();
                (200, json!({"id": id, "text": text, "tokens": tokens}))
            }
            Some(_) => invalid("transcription_id", "Transcription is not completed."),
        }
    }

    pub fn delete_transcription(&mut self, id: &str) -> Answer {
        match self.transcriptions.get_mut(id) {
            Some((job, _)) if !job.deleted => {
                job.deleted = true;
                (204, Value::Null)
            }
            _ => not_found("Transcription"),
        }
    }

    /// The length of a file's audio in ms (it must be a WAV file).
    fn audio_ms(&self, file_id: &str) -> Result<u64, String> {
        let file = self.files.get(file_id).ok_or("File not found.")?;
        let reader = hound::WavReader::new(std::io::Cursor::new(file.bytes.as_slice()))
            .map_err(|_| "Audio decode error.".to_string())?;
        let rate = u64::from(reader.spec().sample_rate.max(1));
        Ok(u64::from(reader.duration()) * 1000 / rate)
    }
}

/// Soniox's checks of a transcription request.
fn check_request(request: &Map<String, Value>) -> Result<(), Answer> {
    match request.get("model").and_then(Value::as_str) {
        Some(model) if model.starts_with("stt-async-") => {}
        _ => return Err(invalid("model", "Invalid model specified.")),
    }
    let has = |key: &str| request.get(key).is_some_and(|v| !v.is_null());
    if has("file_id") == has("audio_url") {
        return Err(invalid(
            "file_id",
            "Exactly one of file_id and audio_url must be set.",
        ));
    }
    if has("audio_url") {
        return Err(invalid(
            "audio_url",
            "The stand-in takes uploaded files only.",
        ));
    }
    if let Some(hints) = request.get("language_hints").filter(|v| !v.is_null()) {
        let hints = hints
            .as_array()
            .ok_or_else(|| invalid("language_hints", "Must be a list."))?;
        let mut seen = Vec::new();
        for hint in hints {
            let code = hint.as_str().filter(|c| is_iso_639_1(c));
            let code = code.ok_or_else(|| invalid("language_hints", "Invalid language hint."))?;
            if seen.contains(&code) {
                return Err(invalid("language_hints", "Language hints must be unique."));
            }
            seen.push(code);
        }
    }
    for flag in [
        "enable_speaker_diarization",
        "enable_language_identification",
    ] {
        if request
            .get(flag)
            .is_some_and(|v| !v.is_null() && !v.is_boolean())
        {
            return Err(invalid(flag, "Must be a boolean."));
        }
    }
    if let Some(id) = request.get("client_reference_id").filter(|v| !v.is_null()) {
        if id.as_str().is_none_or(|s| s.chars().count() > 256) {
            return Err(invalid(
                "client_reference_id",
                "Must be a string of at most 256 characters.",
            ));
        }
    }
    translation_mode(request).map(|_| ())
}

/// The request's `translation`, checked as the real-time start request's is.
fn translation_mode(request: &Map<String, Value>) -> Result<Option<TranslationMode>, Answer> {
    crate::start_request::check_translation(request).map_err(|e| invalid("translation", &e.message))
}

/// The transcript of the script's words in the first `audio_ms` of audio, as the request
/// asked (speakers, languages, translation).
fn transcript_tokens(script: &Script, audio_ms: u64, request: &Value) -> Vec<Value> {
    let object = request.as_object().cloned().unwrap_or_default();
    let diarization = request["enable_speaker_diarization"] == true;
    let identification = request["enable_language_identification"] == true;
    let translation = translation_mode(&object).ok().flatten();
    let default_language = request["language_hints"][0]
        .as_str()
        .unwrap_or("en")
        .to_string();
    let mut tokens = Vec::new();
    let mut first = true;
    for utterance in &script.utterances {
        let language = utterance
            .language
            .clone()
            .unwrap_or(default_language.clone());
        let speaker = utterance.speaker.clone().unwrap_or_else(|| "1".into());
        let target = translation
            .as_ref()
            .and_then(|m| m.target_for(&language).map(str::to_string));
        let mut said = Vec::new();
        for word in utterance.words.iter().filter(|w| w.start_ms < audio_ms) {
            let mut token = json!({
                "text": format!("{}{}", if first { "" } else { " " }, word.text),
                "start_ms": word.start_ms,
                "end_ms": word.end_ms.min(audio_ms),
                "confidence": 0.95,
            });
            first = false;
            if diarization {
                token["speaker"] = json!(speaker);
            }
            if identification || translation.is_some() {
                token["language"] = json!(language);
            }
            if translation.is_some() {
                token["translation_status"] =
                    json!(if target.is_some() { "original" } else { "none" });
            }
            said.push(word.text.as_str());
            tokens.push(token);
        }
        if let (Some(target), false) = (&target, said.is_empty()) {
            let mut token = json!({
                "text": format!(" {}", translate::translated(&said.join(" "), target)),
                "translation_status": "translation",
                "language": target,
                "source_language": language,
                "confidence": 0.95,
            });
            if diarization {
                token["speaker"] = json!(speaker);
            }
            tokens.push(token);
        }
    }
    tokens
}

/// `ms` of 16 kHz mono S16LE silence in a WAV file: a file to upload in tests.
pub fn silent_wav(ms: u32) -> Vec<u8> {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 16_000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut bytes = std::io::Cursor::new(Vec::new());
    let mut writer = hound::WavWriter::new(&mut bytes, spec).expect("a WAV header");
    for _ in 0..ms * 16 {
        writer.write_sample(0i16).expect("in memory");
    }
    writer.finalize().expect("in memory");
    bytes.into_inner()
}

/// How long a job takes by default (from its creation to `completed`).
pub const DEFAULT_JOB_DELAY: Duration = Duration::from_millis(300);
