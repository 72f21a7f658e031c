// SPDX-License-Identifier: MPL-2.0
//! Reporting: bus messages, warnings, the mapping from session errors to element errors, and
//! the delay the element measured.

use std::sync::atomic::Ordering;
use std::time::Duration;

use gst::prelude::*;
use gst::subclass::prelude::*;

use super::imp::{SonioxStt, CAT};
use super::settings;
use crate::soniox::session::SessionError;

impl SonioxStt {
    // ---- bus --------------------------------------------------------------------------------

    pub(super) fn post(&self, structure: gst::Structure) {
        self.post_with(|| structure);
    }

    /// Posts an element message when `post-messages` is on.
    pub(super) fn post_with(&self, build: impl FnOnce() -> gst::Structure) {
        if self.settings.lock().unwrap().post_messages {
            let message = gst::message::Element::builder(build())
                .src(&*self.obj())
                .build();
            let _ = self.obj().post_message(message);
        }
    }

    /// The `latency` property.
    pub(super) fn latency(&self) -> Duration {
        Duration::from_millis(self.latency_ms.load(Ordering::Relaxed).into())
    }

    /// A GStreamer `progress` message for a `mode=async` job at `stage`.
    pub(super) fn post_progress(&self, kind: gst::ProgressType, stage: &str) {
        let text = match stage {
            "uploading" => "Uploading the audio to Soniox",
            "queued" => "Waiting for Soniox to start the transcription",
            "processing" => "Soniox is transcribing",
            "completed" => "Transcription complete",
            "error" => "The transcription failed",
            "cancelled" => "The transcription was abandoned",
            other => other,
        };
        let message = gst::message::Progress::builder(kind, "soniox-job", text)
            .src(&*self.obj())
            .build();
        let _ = self.obj().post_message(message);
    }

    /// A `mode=async` job failed: `soniox/job` `error` and a `progress` error, before the
    /// element error.
    pub(super) fn post_job_failed(&self, job: &mut super::messages::JobProgress) {
        self.post(job.message(super::messages::ERROR));
        self.post_progress(gst::ProgressType::Error, super::messages::ERROR);
    }

    /// A `mode=async` job still running was abandoned (flush, stop): `soniox/job`
    /// `cancelled` and a `progress` canceled (its deletions go on by themselves).
    pub(super) fn post_job_cancelled(&self, job: &mut super::messages::JobProgress) {
        if job.running() {
            self.post(job.message(super::messages::CANCELLED));
            self.post_progress(gst::ProgressType::Canceled, super::messages::CANCELLED);
        }
    }

    /// The `translate-latency` property.
    pub(super) fn translate_latency(&self) -> Duration {
        Duration::from_millis(self.translate_latency_ms.load(Ordering::Relaxed).into())
    }

    /// Soniox sent originals whose translation into `language` never came.
    pub(super) fn warn_translation_missing(&self, language: &str, spans: usize) {
        gst::element_imp_warning!(
            self,
            gst::StreamError::Failed,
            (
                "Soniox sent no {} translation for {} stretch(es) of speech: that text is missing on the {} pad",
                language,
                spans,
                language
            )
        );
    }

    /// A live word went out `delay` after its audio: updates `max-observed-delay`.
    pub(super) fn note_delay(&self, delay: Duration) {
        let ms = u32::try_from(delay.as_millis()).unwrap_or(u32::MAX);
        let previous = self.max_observed_delay_ms.fetch_max(ms, Ordering::Relaxed);
        if ms > previous {
            self.obj().notify("max-observed-delay");
        }
    }

    pub(super) fn warn_late(&self, delay: Duration, latency: Duration) {
        gst::element_imp_warning!(
            self,
            gst::StreamError::Failed,
            (
                "A word came {} ms after its audio, later than latency ({} ms): raise latency",
                delay.as_millis(),
                latency.as_millis()
            ),
            ["at most one such warning per minute"]
        );
    }

    pub(super) fn warn_reconnecting(
        &self,
        id: u32,
        error: &SessionError,
        attempt: u32,
        delay: Duration,
    ) {
        gst::element_imp_warning!(
            self,
            gst::ResourceError::Read,
            (
                "{}: reconnecting in {:.2} s (attempt {} of {}), replaying what was not final",
                error,
                delay.as_secs_f32(),
                attempt,
                self.settings.lock().unwrap().max_reconnects
            ),
            ["session {}", id]
        );
    }

    pub(super) fn warn_replay_overflow(&self, id: u32, forgotten_ms: u64) {
        gst::element_imp_warning!(
            self,
            gst::ResourceError::Write,
            (
                "Soniox has not finalized the last {} s of audio: older audio would be lost if the connection broke now",
                settings::REPLAY_LIMIT.as_secs()
            ),
            ["session {}: the replay buffer forgot {} ms", id, forgotten_ms]
        );
    }

    pub(super) fn warn_drain_timeout(&self, id: u32) {
        gst::element_imp_warning!(
            self,
            gst::ResourceError::Read,
            ("Soniox did not finish within drain-timeout: the last words were pushed as they were"),
            ["session {}", id]
        );
    }

    /// The drain deadline passed while reconnecting, and some audio was never made final.
    pub(super) fn warn_untranscribed(&self, id: u32, reason: &str, untranscribed_ms: u64) {
        gst::element_imp_warning!(
            self,
            gst::ResourceError::Read,
            (
                "Soniox did not finish within drain-timeout while reconnecting ({}): {:.1} s of audio were never transcribed; the last words were pushed as they were",
                reason,
                untranscribed_ms as f64 / 1000.0
            ),
            ["session {}", id]
        );
    }

    /// The drain deadline passed while reconnecting, and Soniox made nothing final at all.
    pub(super) fn fail_untranscribed(&self, id: u32, reason: &str, untranscribed_ms: u64) {
        let text = format!(
            "Soniox transcribed none of the audio: drain-timeout passed while reconnecting ({reason})"
        );
        let debug = format!(
            "session {id}: {:.1} s of audio were never transcribed",
            untranscribed_ms as f64 / 1000.0
        );
        gst::warning!(CAT, imp = self, "{text}");
        let message = self.error_message(gst::ResourceError::Failed, &text, &debug);
        let _ = self.obj().post_message(message);
    }

    /// A session failed: post the error and make the chain return it. Called on the runtime.
    pub(super) fn session_failed(&self, id: u32, error: &SessionError) {
        if self.is_flushing() {
            return;
        }
        // Post first: once the flow is set, the chain returns ERROR and upstream posts its
        // own, less helpful error.
        self.post_session_error(id, error);
        self.state().flow = Some(gst::FlowError::Error);
    }

    pub(super) fn post_session_error(&self, id: u32, error: &SessionError) {
        let text = error.to_string();
        // After retries, the last failure says what kind of problem it is.
        let cause = match error {
            SessionError::GaveUp { last, .. } => last.as_ref(),
            other => other,
        };
        let debug = match cause.service() {
            Some(e) => format!(
                "session {id}, request id {}",
                e.request_id.as_deref().unwrap_or("unknown")
            ),
            None => format!("session {id}"),
        };
        gst::warning!(CAT, imp = self, "session {id} failed: {text}");
        let message = match cause {
            _ if cause
                .service()
                .is_some_and(|e| matches!(e.code, Some(401 | 403))) =>
            {
                self.error_message(gst::ResourceError::NotAuthorized, &text, &debug)
            }
            SessionError::NoKey | SessionError::KeyUnavailable(_) => {
                self.error_message(gst::ResourceError::NotAuthorized, &text, &debug)
            }
            _ if cause.service().is_some_and(|e| e.code == Some(400)) => {
                self.error_message(gst::LibraryError::Settings, &text, &debug)
            }
            SessionError::Connect { .. }
            | SessionError::Tls { .. }
            | SessionError::InvalidUrl { .. } => {
                self.error_message(gst::ResourceError::OpenReadWrite, &text, &debug)
            }
            _ => self.error_message(gst::ResourceError::Failed, &text, &debug),
        };
        let _ = self.obj().post_message(message);
    }

    pub(super) fn error_message<T: gst::MessageErrorDomain>(
        &self,
        domain: T,
        text: &str,
        debug: &str,
    ) -> gst::Message {
        gst::message::Error::builder(domain, text)
            .debug(debug)
            .src(&*self.obj())
            .build()
    }
}
