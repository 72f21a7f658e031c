// SPDX-License-Identifier: MPL-2.0
//! A `mode=async` session: it takes the element's audio from the queue like a real-time
//! session, keeps it with its timestamp table until the end of the audio, checks Soniox's
//! limits, then runs the job ([`super::job`]) and reports the transcript as the same timed
//! events a real-time session reports (so words, cues and translation pads work unchanged),
//! then `Finished`.

use std::time::Duration;

use tokio::sync::mpsc;

use super::job::{self, JobConfig, JobEvent};
use super::wav::WavBuilder;
use crate::soniox::audio_queue::{AudioQueue, Queued};
use crate::soniox::check::Checker;
use crate::soniox::connection::Report;
use crate::soniox::event::Results;
use crate::soniox::protocol::ServerMessage;
use crate::soniox::session::{SessionError, SessionEvent};
use crate::transcript::timeline::Timeline;

/// Soniox's limits for a file.
pub const MAX_BYTES: u64 = 500 * 1000 * 1000;
pub const MAX_DURATION: Duration = Duration::from_secs(300 * 60);
/// Tokens per reported message (the checks take at most 10 000 at once).
const TOKENS_PER_MESSAGE: usize = 1000;

/// What a job session needs besides the job.
#[derive(Debug, Clone)]
pub struct JobSession {
    pub job: JobConfig,
    /// Soniox's name of the audio format, and its layout.
    pub format: &'static str,
    pub rate: u32,
    pub channels: u16,
    pub bytes_per_second: u64,
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
        Ok(file) => Some(file),
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
                if let Err(reason) = file.as_mut().expect("until the end").push(&chunk.data) {
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
        if bytes > MAX_BYTES {
            let error = too_much(format!("more than {} MB of audio", MAX_BYTES / 1_000_000));
            reporter.report(SessionEvent::Failed(error)).await;
            return;
        }
    }
    let duration = Duration::from_nanos(queue.duration_ns(bytes));
    if duration > MAX_DURATION {
        let error = too_much(format!(
            "{} minutes of audio (Soniox takes at most {})",
            duration.as_secs() / 60,
            MAX_DURATION.as_secs() / 60
        ));
        reporter.report(SessionEvent::Failed(error)).await;
        return;
    }
    let file = match file.take().expect("written").finish() {
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
    let running = job::run(&session.job, file, report);
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

fn too_much(what: String) -> SessionError {
    SessionError::Job(format!(
        "mode=async: the file is too long for Soniox's async API: {what}"
    ))
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
