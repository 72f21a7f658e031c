// SPDX-License-Identifier: MPL-2.0
//! A `mode=async` session: it takes the element's audio from the queue like a real-time
//! session, keeps it with its timestamp table until the end of the audio, checks Soniox's
//! limits, then runs the job ([`super::job`]) and reports the transcript as the same timed
//! events a real-time session reports (so words, cues and translation pads work unchanged),
//! then `Finished`.

use std::time::Duration;

use tokio::sync::mpsc;

use super::job::{self, JobConfig, JobEvent, Upload};
use super::wav::WavBuilder;
use crate::soniox::audio_queue::{AudioQueue, Queued};
use crate::soniox::check::Checker;
use crate::soniox::connection::Report;
use crate::soniox::event::Results;
use crate::soniox::protocol::{ServerMessage, Token};
use crate::soniox::session::{SessionError, SessionEvent};
use crate::transcript::timeline::Timeline;

/// The most a file may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Of the uploaded file.
    pub bytes: u64,
    pub duration: Duration,
}

impl Limits {
    /// Soniox's: 500 MB, 300 minutes.
    pub const SONIOX: Limits = Limits {
        bytes: 500 * 1000 * 1000,
        duration: Duration::from_secs(300 * 60),
    };

    /// What is over the limits, if anything, in words.
    fn exceeded(&self, bytes: u64, duration_ns: u64) -> Option<String> {
        if duration_ns > self.duration.as_nanos() as u64 {
            let limit = match self.duration.as_secs() {
                s if s % 60 == 0 => format!("{} minutes", s / 60),
                s => format!("{s} s"),
            };
            Some(format!(
                "more than {limit} of audio (Soniox takes at most {limit})"
            ))
        } else if bytes > self.bytes {
            let limit = match self.bytes {
                b if b % 1_000_000 == 0 => format!("{} MB", b / 1_000_000),
                b => format!("{b} bytes"),
            };
            Some(format!(
                "a file of more than {limit} (Soniox takes at most {limit})"
            ))
        } else {
            None
        }
    }
}
/// Tokens per reported message (the checks take at most 10 000 at once).
const TOKENS_PER_MESSAGE: usize = 1000;
/// A pause between two words this long or longer ends an utterance (an async transcript
/// has no endpoints of its own); the same pause ends a caption cue (contract §4b).
const UTTERANCE_PAUSE_MS: u64 = 700;

/// What a job session needs besides the job.
#[derive(Debug, Clone)]
pub struct JobSession {
    pub job: JobConfig,
    /// Soniox's name of the audio format, and its layout.
    pub format: &'static str,
    pub rate: u32,
    pub channels: u16,
    pub bytes_per_second: u64,
    pub limits: Limits,
}

/// Runs the session: returns when it has reported its end (or nobody listens any more).
pub(in crate::soniox) async fn run(
    session: &JobSession,
    queue: &AudioQueue,
    reporter: &impl Report,
) {
    let mut timeline = Timeline::new(session.bytes_per_second);
    // The audio goes into the file as it comes: it is held once.
    let mut file = match WavBuilder::new(session.format, session.rate, session.channels) {
        Ok(file) => file,
        Err(reason) => {
            reporter
                .report(SessionEvent::Failed(SessionError::Job(reason)))
                .await;
            return;
        }
    };
    let mut bytes = 0u64;
    loop {
        match queue.pop().await {
            Some(Queued::Audio(chunk)) => {
                let len = chunk.data.len() as u64;
                timeline.record(Some(chunk.pts), chunk.discont, len);
                bytes += len;
                if let Err(reason) = file.push(&chunk.data) {
                    reporter
                        .report(SessionEvent::Failed(SessionError::Job(reason)))
                        .await;
                    return;
                }
            }
            Some(Queued::EndOfAudio) => break,
            Some(_) => {}
            None => return,
        }
        // Refused as soon as it is too much: nothing more is held, nothing is uploaded.
        if let Some(what) = session
            .limits
            .exceeded(file.file_size(), queue.duration_ns(bytes))
        {
            let error = SessionError::Job(format!(
                "mode=async: the file is too long for Soniox's async API: {what}"
            ));
            reporter.report(SessionEvent::Failed(error)).await;
            return;
        }
    }
    let audio_ns = queue.duration_ns(bytes);
    let file = match file.finish() {
        Ok(file) => file,
        Err(reason) => {
            reporter
                .report(SessionEvent::Failed(SessionError::Job(reason)))
                .await;
            return;
        }
    };
    // The job's progress, forwarded in order while it runs.
    let (sender, mut progress) = mpsc::unbounded_channel();
    let report: job::Report = std::sync::Arc::new(move |event| {
        let _ = sender.send(event);
    });
    let running = job::run(&session.job, Upload { file, audio_ns }, report);
    tokio::pin!(running);
    let result = loop {
        tokio::select! {
            biased;
            Some(event) = progress.recv() => {
                if !reporter.report(SessionEvent::Job(event)).await {
                    return;
                }
            }
            result = &mut running => break result,
        }
    };
    while let Ok(event) = progress.try_recv() {
        if !reporter.report(SessionEvent::Job(event)).await {
            return;
        }
    }
    let mut tokens = match result {
        Ok(tokens) => tokens,
        Err(error) => {
            let error = SessionError::Job(error.to_string());
            reporter.report(SessionEvent::Failed(error)).await;
            return;
        }
    };
    // A transcript is final throughout.
    for token in &mut tokens {
        token.is_final = true;
    }
    let sent_ms = queue.duration_ns(bytes).div_ceil(1_000_000);
    let tokens = mark_utterances(tokens, sent_ms);
    let mut checker = Checker::new();
    for part in tokens.chunks(TOKENS_PER_MESSAGE) {
        let message = ServerMessage {
            tokens: part.to_vec(),
            final_audio_proc_ms: Some(sent_ms),
            total_audio_proc_ms: Some(sent_ms),
            ..ServerMessage::default()
        };
        let message = match checker.check(message, sent_ms, true) {
            Ok(message) => message,
            Err(reason) => {
                let error = SessionError::Invalid(reason);
                reporter.report(SessionEvent::Failed(error)).await;
                return;
            }
        };
        let results = Results::map(&message, &timeline, timeline.origin());
        if !reporter.report(SessionEvent::Results(results)).await {
            return;
        }
    }
    reporter.report(SessionEvent::Finished).await;
}

/// Puts an `<end>` where a pause of [`UTTERANCE_PAUSE_MS`] or more parts two words (or the
/// last word and the end of the audio, at `audio_ms`), as a real-time session's endpoint
/// would: after the translations of what came before (which have no times), before the next
/// spoken token. So utterances end downstream (`final-transcript`, `soniox/endpoint`) as
/// they do in real time.
fn mark_utterances(tokens: Vec<Token>, audio_ms: u64) -> Vec<Token> {
    let end = || Token {
        text: Token::END.into(),
        is_final: true,
        ..Token::default()
    };
    let mut marked = Vec::with_capacity(tokens.len() + tokens.len() / 8);
    let mut spoken_until: Option<u64> = None;
    for token in tokens {
        if let (Some(start), false) = (token.start_ms, token.is_translation()) {
            if spoken_until.is_some_and(|until| start >= until + UTTERANCE_PAUSE_MS) {
                marked.push(end());
            }
            spoken_until = Some(token.end_ms.unwrap_or(start).max(spoken_until.unwrap_or(0)));
        }
        marked.push(token);
    }
    if spoken_until.is_some_and(|until| audio_ms >= until + UTTERANCE_PAUSE_MS) {
        marked.push(end());
    }
    marked
}

/// The job's progress as the stage names of `soniox/job`.
pub fn stage(event: &JobEvent) -> &'static str {
    match event {
        JobEvent::Uploading { .. } => "uploading",
        JobEvent::Queued { .. } => "queued",
        JobEvent::Processing => "processing",
        JobEvent::Completed => "completed",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::RUNTIME;
    use crate::soniox::audio_queue::Overflow;
    use crate::soniox::batch::rest::RestClient;
    use crate::soniox::credentials::ApiKey;
    use bytes::Bytes;
    use soniox_mock::{MockConfig, MockServer, Script};
    use std::sync::Mutex;

    #[derive(Default)]
    struct Collect(Mutex<Vec<SessionEvent>>);

    impl Report for Collect {
        async fn report(&self, event: SessionEvent) -> bool {
            self.0.lock().unwrap().push(event);
            true
        }
    }

    /// Runs a job session with `limits` over `seconds` of 16 kHz S16LE audio in 100 ms
    /// chunks; returns what it reported and the stand-in.
    fn session(limits: Limits, seconds: u64) -> (Vec<SessionEvent>, MockServer) {
        let script = Script::from_utterances(&[("Hello there.", 200, 900)]);
        let server = MockServer::start(MockConfig::new("k", script));
        let session = JobSession {
            job: JobConfig {
                client: RestClient::new(&server.rest_url(), ApiKey::new("k").unwrap()).unwrap(),
                request: serde_json::json!({"model": "stt-async-v5"}),
                timeout: Duration::from_secs(10),
                first_poll: Duration::from_millis(50),
            },
            format: "pcm_s16le",
            rate: 16_000,
            channels: 1,
            bytes_per_second: 32_000,
            limits,
        };
        let queue = AudioQueue::new(Overflow::Block, u64::MAX, 32_000);
        for _ in 0..seconds * 10 {
            let chunk = Bytes::from(vec![0u8; 3200]);
            queue.push_audio(None, false, chunk).unwrap();
        }
        queue.push_control(Queued::EndOfAudio).unwrap();
        let reporter = Collect::default();
        RUNTIME.block_on(run(&session, &queue, &reporter));
        (reporter.0.into_inner().unwrap(), server)
    }

    fn failure(events: &[SessionEvent]) -> String {
        match events {
            [SessionEvent::Failed(SessionError::Job(reason))] => reason.clone(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn too_long_a_file_is_refused_before_the_upload_saying_so() {
        let limits = Limits {
            duration: Duration::from_secs(2),
            ..Limits::SONIOX
        };
        let (events, server) = session(limits, 3);
        let reason = failure(&events);
        assert!(reason.contains("more than 2 s of audio"), "{reason}");
        assert!(server.rest_requests().is_empty(), "nothing was sent");
    }

    #[test]
    fn too_big_a_file_is_refused_before_the_upload_saying_so() {
        let limits = Limits {
            bytes: 64_000,
            ..Limits::SONIOX
        };
        let (events, server) = session(limits, 3);
        let reason = failure(&events);
        assert!(
            reason.contains("a file of more than 64000 bytes"),
            "{reason}"
        );
        assert!(server.rest_requests().is_empty(), "nothing was sent");
    }

    #[test]
    fn a_file_within_the_limits_is_transcribed() {
        let (events, server) = session(Limits::SONIOX, 2);
        assert_eq!(events.last(), Some(&SessionEvent::Finished), "{events:?}");
        assert!(events.iter().any(
            |e| matches!(e, SessionEvent::Job(JobEvent::Uploading { audio_ns, .. })
                if *audio_ns == 2_000_000_000)
        ));
        assert_eq!(server.uploaded_files().len(), 1);
    }

    #[test]
    fn a_pause_between_words_ends_an_utterance_after_its_translation() {
        let token = |text: &str, times: Option<(u64, u64)>| Token {
            text: text.into(),
            start_ms: times.map(|t| t.0),
            end_ms: times.map(|t| t.1),
            is_final: true,
            translation_status: Some(
                if times.is_some() {
                    "original"
                } else {
                    "translation"
                }
                .into(),
            ),
            ..Token::default()
        };
        let tokens = vec![
            token("Hel", Some((100, 200))),
            token("lo.", Some((200, 500))),
            token(" [fr] Hello.", None),
            token(" Bye.", Some((1199, 1500))),
            token(" Now.", Some((2200, 2400))),
        ];
        let texts = |audio_ms| -> Vec<String> {
            mark_utterances(tokens.clone(), audio_ms)
                .into_iter()
                .map(|t| t.text)
                .collect()
        };
        assert_eq!(
            texts(2400),
            ["Hel", "lo.", " [fr] Hello.", " Bye.", "<end>", " Now."],
            "699 ms is no pause; 700 ms is"
        );
        assert_eq!(texts(3100).last().unwrap(), "<end>", "nor up to the end");
    }

    #[test]
    fn sonioxs_limits_are_named_in_its_words() {
        let at = |minutes: u64| minutes * 60 * 1_000_000_000;
        assert_eq!(Limits::SONIOX.exceeded(1000, at(300)), None);
        assert_eq!(
            Limits::SONIOX.exceeded(1000, at(300) + 1).unwrap(),
            "more than 300 minutes of audio (Soniox takes at most 300 minutes)"
        );
        assert_eq!(
            Limits::SONIOX.exceeded(500_000_001, at(1)).unwrap(),
            "a file of more than 500 MB (Soniox takes at most 500 MB)"
        );
    }
}
