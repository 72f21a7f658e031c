// SPDX-License-Identifier: MPL-2.0
//! Bus message structures (contract §6) and custom downstream events (contract §4, §7)
//! built from core results.

use crate::soniox::batch::job::JobEvent;
use crate::soniox::batch::task;
use crate::soniox::event::Results;
use crate::transcript::token::Token;

pub const TRANSCRIPT: &str = "soniox/transcript";
pub const TOKEN: &str = "soniox/token";
pub const ENDPOINT: &str = "soniox/endpoint";
pub const FINALIZED: &str = "soniox/finalized";
pub const SESSION: &str = "soniox/session";
pub const CUE: &str = "soniox/cue";
pub const JOB: &str = "soniox/job";
/// Custom downstream event on `sink`: finalize now, in order with the audio.
pub const FINALIZE_EVENT: &str = "soniox/finalize";
pub const SPEAKER_CHANGE_EVENT: &str = "rstranscribe/speaker-change";
pub const FINAL_TRANSCRIPT_EVENT: &str = "rstranscribe/final-transcript";

/// `soniox/session` events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionLife {
    Connected,
    Finished,
    Reconnecting,
    Rotated,
}

impl SessionLife {
    fn name(self) -> &'static str {
        match self {
            SessionLife::Connected => "connected",
            SessionLife::Finished => "finished",
            SessionLife::Reconnecting => "reconnecting",
            SessionLife::Rotated => "rotated",
        }
    }
}

/// The translation in one message: its new final text and its non-final tail.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TranslationText {
    pub final_text: String,
    pub interim_text: String,
}

impl TranslationText {
    /// `None` when the message has no translation status at all (translation off).
    pub fn of(tokens: &[Token]) -> Option<TranslationText> {
        if tokens.iter().all(|t| t.translation_status.is_none()) {
            return None;
        }
        let mut text = TranslationText::default();
        for token in tokens.iter().filter(|t| t.is_translation()) {
            match token.is_final {
                true => text.final_text.push_str(&token.text),
                false => text.interim_text.push_str(&token.text),
            }
        }
        Some(text)
    }
}

/// `soniox/transcript` for a message with tokens. A session that only translates
/// (`transcribes` false) lists only its translation tokens: its originals are `src`'s.
pub fn transcript(
    results: &Results,
    final_text: &str,
    interim_text: &str,
    translation: Option<&TranslationText>,
    transcribes: bool,
    session: u32,
) -> gst::Structure {
    let tokens = gst::List::new(
        results
            .tokens
            .iter()
            .filter(|t| transcribes || t.is_translation())
            .map(token),
    );
    let mut builder = gst::Structure::builder(TRANSCRIPT)
        .field("final", final_text)
        .field("interim", interim_text)
        .field("tokens", tokens)
        .field(
            "final-audio-proc-ms",
            results.final_audio_proc_ms.unwrap_or(0),
        )
        .field(
            "total-audio-proc-ms",
            results.total_audio_proc_ms.unwrap_or(0),
        )
        .field("session", session);
    if let Some(translation) = translation {
        builder = builder
            .field("translation-final", translation.final_text.as_str())
            .field("translation-interim", translation.interim_text.as_str());
    }
    builder.build()
}

/// The field names of `soniox/token`, as quarks made once: a transcript message carries a
/// token structure per token of every response, and naming a field by its string looks the
/// string up in GLib's global quark table (under its lock) each time.
struct TokenFields {
    name: glib::Quark,
    text: glib::Quark,
    is_final: glib::Quark,
    pts: glib::Quark,
    duration: glib::Quark,
    confidence: glib::Quark,
    speaker: glib::Quark,
    language: glib::Quark,
    translation_status: glib::Quark,
    source_language: glib::Quark,
}

static TOKEN_FIELDS: once_cell::sync::Lazy<TokenFields> =
    once_cell::sync::Lazy::new(|| TokenFields {
        name: glib::Quark::from_str(TOKEN),
        text: glib::Quark::from_str("text"),
        is_final: glib::Quark::from_str("is-final"),
        pts: glib::Quark::from_str("pts"),
        duration: glib::Quark::from_str("duration"),
        confidence: glib::Quark::from_str("confidence"),
        speaker: glib::Quark::from_str("speaker"),
        language: glib::Quark::from_str("language"),
        translation_status: glib::Quark::from_str("translation-status"),
        source_language: glib::Quark::from_str("source-language"),
    });

// The quark setters are deprecated for GStreamer 1.26's interned strings, which 1.22 lacks.
#[allow(deprecated)]
fn token(token: &Token) -> gst::Structure {
    let f = &*TOKEN_FIELDS;
    let mut s = gst::Structure::new_empty(f.name.as_str());
    let s_mut: &mut gst::StructureRef = &mut s;
    s_mut.set_by_quark(f.text, token.text.as_str());
    s_mut.set_by_quark(f.is_final, token.is_final);
    s_mut.set_by_quark_if_some(f.pts, token.pts);
    s_mut.set_by_quark_if_some(
        f.duration,
        token.pts.zip(token.end).map(|(p, e)| e.saturating_sub(p)),
    );
    s_mut.set_by_quark_if_some(f.confidence, token.confidence);
    s_mut.set_by_quark_if_some(f.speaker, token.speaker.as_deref());
    s_mut.set_by_quark_if_some(f.language, token.language.as_deref());
    s_mut.set_by_quark_if_some(f.translation_status, token.translation_status.as_deref());
    s_mut.set_by_quark_if_some(f.source_language, token.source_language.as_deref());
    s
}

/// `soniox/cue`: a cue pushed on `pad`.
pub fn cue(
    pad: &str,
    text: &str,
    pts: Option<u64>,
    end: Option<u64>,
    speaker: Option<&str>,
    language: Option<&str>,
) -> gst::Structure {
    gst::Structure::builder(CUE)
        .field("pad", pad)
        .field("text", text)
        .field_if_some("pts", pts)
        .field_if_some("duration", pts.zip(end).map(|(p, e)| e.saturating_sub(p)))
        .field_if_some("speaker", speaker)
        .field_if_some("language", language)
        .build()
}

/// How far a `mode=async` job got, as `soniox/job` tells it.
#[derive(Debug, Default)]
pub struct JobProgress {
    /// The last stage reported (none before the upload).
    pub stage: Option<&'static str>,
    pub uploaded: u64,
    pub total: u64,
    pub audio_ns: u64,
    pub file_id: Option<String>,
    pub transcription_id: Option<String>,
}

impl JobProgress {
    pub fn note(&mut self, event: &JobEvent) {
        self.stage = Some(task::stage(event));
        match event {
            JobEvent::Uploading {
                sent,
                total,
                audio_ns,
            } => {
                self.uploaded = *sent;
                self.total = *total;
                self.audio_ns = *audio_ns;
            }
            JobEvent::Queued {
                file_id,
                transcription_id,
            } => {
                self.file_id = Some(file_id.clone());
                self.transcription_id = Some(transcription_id.clone());
            }
            JobEvent::Processing | JobEvent::Completed => {}
        }
    }

    /// Between the start of the upload and the end of the job.
    pub fn running(&self) -> bool {
        self.stage
            .is_some_and(|stage| !matches!(stage, COMPLETED | ERROR | CANCELLED))
    }

    /// `soniox/job` at `stage` (which it keeps as the last one).
    pub fn message(&mut self, stage: &'static str) -> gst::Structure {
        self.stage = Some(stage);
        gst::Structure::builder(JOB)
            .field("stage", stage)
            .field("uploaded-bytes", self.uploaded)
            .field("total-bytes", self.total)
            .field("audio-duration", self.audio_ns)
            .field_if_some("file-id", self.file_id.as_deref())
            .field_if_some("transcription-id", self.transcription_id.as_deref())
            .build()
    }
}

/// The `soniox/job` stages that end a job.
pub const COMPLETED: &str = "completed";
pub const ERROR: &str = "error";
pub const CANCELLED: &str = "cancelled";

/// `soniox/endpoint`: `pts` is where the utterance ends (ns), when known.
pub fn endpoint(pts: Option<u64>, text: &str, session: u32) -> gst::Structure {
    gst::Structure::builder(ENDPOINT)
        .field_if_some("pts", pts)
        .field("text", text)
        .field("session", session)
        .build()
}

pub fn finalized(session: u32) -> gst::Structure {
    gst::Structure::builder(FINALIZED)
        .field("session", session)
        .build()
}

pub fn session(life: SessionLife, session: u32, reason: &str) -> gst::Structure {
    gst::Structure::builder(SESSION)
        .field("event", life.name())
        .field("session", session)
        .field("reason", reason)
        .build()
}

pub fn final_transcript_event() -> gst::Event {
    gst::event::CustomDownstream::new(gst::Structure::new_empty(FINAL_TRANSCRIPT_EVENT))
}

pub fn speaker_change_event(speaker: &str) -> gst::Event {
    gst::event::CustomDownstream::new(
        gst::Structure::builder(SPEAKER_CHANGE_EVENT)
            .field("speaker", speaker)
            .build(),
    )
}

/// Whether `event` is the `soniox/finalize` request.
pub fn is_finalize_request(event: &gst::EventRef) -> bool {
    event.type_() == gst::EventType::CustomDownstream
        && event
            .structure()
            .is_some_and(|s| s.name() == FINALIZE_EVENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_carry_mapped_times_and_only_the_fields_soniox_sent() {
        use crate::soniox::protocol::ServerMessage;
        use crate::transcript::timeline::Timeline;
        gst::init().unwrap();
        let mut timeline = Timeline::new(32_000);
        timeline.record(Some(10_000_000_000), false, 64_000);
        let message = ServerMessage::parse(
            r#"{"tokens": [{"text": " Hi", "start_ms": 100, "end_ms": 300, "confidence": 0.9, "is_final": true, "speaker": "2"},
                           {"text": "<end>", "is_final": true}],
                "final_audio_proc_ms": 400, "total_audio_proc_ms": 600}"#,
        )
        .unwrap();
        let results = Results::map(&message, &timeline, timeline.origin());
        let s = transcript(&results, " Hi", "", None, true, 3);
        assert_eq!(s.get::<&str>("final").unwrap(), " Hi");
        assert_eq!(s.get::<u64>("total-audio-proc-ms").unwrap(), 600);
        assert_eq!(s.get::<u32>("session").unwrap(), 3);
        let tokens = s.get::<gst::List>("tokens").unwrap();
        let first = tokens.first().unwrap().get::<gst::Structure>().unwrap();
        assert_eq!(first.name(), TOKEN);
        assert_eq!(first.get::<u64>("pts").unwrap(), 10_100_000_000);
        assert_eq!(first.get::<u64>("duration").unwrap(), 200_000_000);
        assert_eq!(first.get::<&str>("speaker").unwrap(), "2");
        assert!(!first.has_field("language"));
        let end = tokens.get(1).unwrap().get::<gst::Structure>().unwrap();
        assert!(!end.has_field("pts") && !end.has_field("confidence"));
    }
}
