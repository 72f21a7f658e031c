// SPDX-License-Identifier: MPL-2.0
//! One async transcription job (contract §7a): upload the file, create the transcription,
//! poll it (every second at first, backing off to 5 s) until it is done, fetch the
//! transcript, and delete the transcription and the file — always: after success, after an
//! error, and when the job is abandoned (its future dropped: the deletions then run on the
//! shared runtime by themselves). 408, 429, 5xx and transport errors are retried with
//! back-off; anything else ends the job.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use serde_json::Value;

use super::rest::{RestClient, RestError};
use crate::runtime::RUNTIME;
use crate::soniox::protocol;

/// Where a job reports its [`JobEvent`]s (called on the runtime: it must not block).
pub type Report = Arc<dyn Fn(JobEvent) + Send + Sync>;

/// Tries of one call before its error ends the job.
const ATTEMPTS: u32 = 5;
/// Upload chunks (each one reported).
const UPLOAD_CHUNK: usize = 256 << 10;

/// What a job reports as it goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobEvent {
    /// `sent` of `total` bytes of the file (`audio_ns` of audio) are on their way.
    Uploading {
        sent: u64,
        total: u64,
        audio_ns: u64,
    },
    /// The transcription was created (after the upload): it waits for its turn.
    Queued {
        file_id: String,
        transcription_id: String,
    },
    Processing,
    Completed,
}

#[derive(Debug, Clone, PartialEq)]
pub enum JobError {
    Rest(RestError),
    /// The job ended in `error`, with Soniox's message.
    Failed(String),
    /// Not done within the timeout (after the upload).
    TimedOut(Duration),
}

impl std::fmt::Display for JobError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JobError::Rest(e) => e.fmt(f),
            JobError::Failed(message) => {
                write!(f, "Soniox could not transcribe the file: {message}")
            }
            JobError::TimedOut(limit) => write!(
                f,
                "Soniox's transcription did not complete within async-timeout ({} s)",
                limit.as_secs()
            ),
        }
    }
}

impl std::error::Error for JobError {}

/// What a job needs.
#[derive(Debug, Clone)]
pub struct JobConfig {
    pub client: RestClient,
    /// The transcription request without `file_id` (model, hints, options).
    pub request: Value,
    /// The longest wait for the transcription after the upload.
    pub timeout: Duration,
    /// The first wait between polls; it grows by itself to 5 s.
    pub first_poll: Duration,
}

/// What the job created, deleted when it ends however it ends.
struct Created {
    client: RestClient,
    ids: Mutex<(Option<String>, Option<String>)>,
}

impl Created {
    fn file(&self, id: &str) {
        self.ids.lock().unwrap().0 = Some(id.to_string());
    }

    fn transcription(&self, id: &str) {
        self.ids.lock().unwrap().1 = Some(id.to_string());
    }

    /// Deletes what exists (the transcription first: it refers to the file).
    async fn delete(&self) {
        let (file, transcription) = std::mem::take(&mut *self.ids.lock().unwrap());
        delete_all(self.client.clone(), file, transcription).await;
    }
}

async fn delete_all(client: RestClient, file: Option<String>, transcription: Option<String>) {
    if let Some(id) = transcription {
        let _ = retry(|| client.delete_transcription(&id)).await;
    }
    if let Some(id) = file {
        let _ = retry(|| client.delete_file(&id)).await;
    }
}

impl Drop for Created {
    fn drop(&mut self) {
        // Abandoned mid-way: nothing awaits the deletions any more, so they run by themselves.
        let (file, transcription) = std::mem::take(&mut *self.ids.lock().unwrap());
        if file.is_some() || transcription.is_some() {
            RUNTIME.spawn(delete_all(self.client.clone(), file, transcription));
        }
    }
}

/// Runs a call up to [`ATTEMPTS`] times while its error may go away: 0.5 s, doubling to 8 s.
async fn retry<T, F, Fut>(mut call: F) -> Result<T, RestError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, RestError>>,
{
    let mut wait = Duration::from_millis(500);
    let mut attempt = 1;
    loop {
        match call().await {
            Err(e) if e.is_retryable() && attempt < ATTEMPTS => {
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(8));
                attempt += 1;
            }
            result => return result,
        }
    }
}

/// The file to transcribe: a WAV file of `audio_ns` of audio.
#[derive(Debug, Clone)]
pub struct Upload {
    pub file: Bytes,
    pub audio_ns: u64,
}

/// Transcribes the upload; returns the transcript's tokens (times in ms of the file).
pub async fn run(
    config: &JobConfig,
    upload: Upload,
    report: Report,
) -> Result<Vec<protocol::Token>, JobError> {
    let created = Created {
        client: config.client.clone(),
        ids: Mutex::new((None, None)),
    };
    let result = transcribe(config, &created, upload, report).await;
    created.delete().await;
    result
}

async fn transcribe(
    config: &JobConfig,
    created: &Created,
    upload: Upload,
    report: Report,
) -> Result<Vec<protocol::Token>, JobError> {
    let client = &config.client;
    let Upload { file, audio_ns } = upload;
    let total = file.len() as u64;
    let file_id = retry(|| {
        let chunks: Vec<Bytes> = (0..file.len())
            .step_by(UPLOAD_CHUNK)
            .map(|at| file.slice(at..(at + UPLOAD_CHUNK).min(file.len())))
            .collect();
        report(JobEvent::Uploading {
            sent: 0,
            total,
            audio_ns,
        });
        let progress = report.clone();
        let mut sent = 0u64;
        let stream = futures_util::stream::iter(chunks.into_iter().map(move |chunk| {
            sent += chunk.len() as u64;
            progress(JobEvent::Uploading {
                sent,
                total,
                audio_ns,
            });
            Ok::<_, std::io::Error>(chunk)
        }));
        client.upload(reqwest::Body::wrap_stream(stream), total, "audio.wav")
    })
    .await
    .map_err(JobError::Rest)?;
    created.file(&file_id);
    let mut request = config.request.clone();
    request["file_id"] = Value::String(file_id.clone());
    let id = retry(|| client.create(&request))
        .await
        .map_err(JobError::Rest)?;
    created.transcription(&id);
    report(JobEvent::Queued {
        file_id,
        transcription_id: id.clone(),
    });
    let waited = tokio::time::timeout(config.timeout, async {
        let mut wait = config.first_poll;
        let mut processing = false;
        loop {
            tokio::time::sleep(wait).await;
            wait = (wait + config.first_poll).min(Duration::from_secs(5));
            let status = retry(|| client.status(&id)).await?;
            match status.status.as_str() {
                "completed" => return Ok(Ok(())),
                "error" => return Ok(Err(status.error_message.unwrap_or_default())),
                "processing" if !std::mem::replace(&mut processing, true) => {
                    report(JobEvent::Processing);
                }
                _ => {}
            }
        }
    })
    .await;
    match waited {
        Err(_) => return Err(JobError::TimedOut(config.timeout)),
        Ok(Err(e)) => return Err(JobError::Rest(e)),
        Ok(Ok(Err(message))) => return Err(JobError::Failed(message)),
        Ok(Ok(Ok(()))) => {}
    }
    let tokens = retry(|| client.transcript(&id))
        .await
        .map_err(JobError::Rest)?;
    report(JobEvent::Completed);
    Ok(tokens)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::soniox::credentials::ApiKey;
    use soniox_mock::{JobFault, MockConfig, MockServer, Script};

    fn wav(ms: u32) -> Upload {
        Upload {
            file: Bytes::from(soniox_mock::silent_wav(ms)),
            audio_ns: u64::from(ms) * 1_000_000,
        }
    }

    fn server(configure: impl FnOnce(&mut MockConfig)) -> MockServer {
        let script = Script::from_utterances(&[("Hello there.", 200, 900), ("Bye.", 1500, 1800)]);
        let mut config = MockConfig::new("k", script);
        configure(&mut config);
        MockServer::start(config)
    }

    fn job(server: &MockServer, key: &str) -> JobConfig {
        JobConfig {
            client: RestClient::new(&server.rest_url(), ApiKey::new(key).unwrap()).unwrap(),
            request: serde_json::json!({"model": "stt-async-v5", "language_hints": ["en"]}),
            timeout: Duration::from_secs(10),
            first_poll: Duration::from_millis(50),
        }
    }

    fn collect() -> (Arc<Mutex<Vec<JobEvent>>>, Report) {
        let events = Arc::new(Mutex::new(Vec::new()));
        let into = events.clone();
        (events, Arc::new(move |e| into.lock().unwrap().push(e)))
    }

    #[test]
    fn a_job_uploads_waits_fetches_and_deletes_everything() {
        let server = server(|_| {});
        let (events, report) = collect();
        let file = wav(2000);
        let tokens = RUNTIME
            .block_on(run(&job(&server, "k"), file.clone(), report))
            .unwrap();
        let total = file.file.len() as u64;
        let file = file.file;
        let text: String = tokens.iter().map(|t| t.text.as_str()).collect();
        assert_eq!(text, "Hello there. Bye.");
        assert_eq!(tokens[0].start_ms, Some(200));
        assert_eq!(*server.uploaded_files()[0].bytes, file.to_vec());
        assert!(server.uploaded_files().iter().all(|f| f.deleted));
        assert!(server.transcription_jobs().iter().all(|j| j.deleted));
        let events = events.lock().unwrap().clone();
        assert_eq!(
            events.first(),
            Some(&JobEvent::Uploading {
                sent: 0,
                total,
                audio_ns: 2_000_000_000,
            })
        );
        let stages: Vec<&str> = events
            .iter()
            .map(super::super::task::stage)
            .collect::<Vec<_>>()
            .into_iter()
            .fold(Vec::new(), |mut v, s| {
                if v.last() != Some(&s) {
                    v.push(s);
                }
                v
            });
        assert_eq!(stages, ["uploading", "queued", "processing", "completed"]);
        assert!(events.contains(&JobEvent::Uploading {
            sent: total,
            total,
            audio_ns: 2_000_000_000,
        }));
    }

    #[test]
    fn a_503_upload_and_a_429_creation_are_retried() {
        let server = server(|c| {
            c.job_faults = vec![
                JobFault::upload_refused_once(503),
                JobFault::create_refused_once(429),
            ];
        });
        let (_, report) = collect();
        let tokens = RUNTIME
            .block_on(run(&job(&server, "k"), wav(1000), report))
            .unwrap();
        assert!(!tokens.is_empty());
        let statuses: Vec<u16> = server.rest_requests().iter().map(|r| r.status).collect();
        assert_eq!(&statuses[..4], [503, 201, 429, 201]);
    }

    #[test]
    fn a_failed_job_is_an_error_with_sonioxs_words_and_still_deleted() {
        let server = server(|c| {
            c.job_faults = vec![JobFault::JobError {
                message: "Audio is too noisy.".into(),
            }];
        });
        let (_, report) = collect();
        let error = RUNTIME
            .block_on(run(&job(&server, "k"), wav(1000), report))
            .unwrap_err();
        assert_eq!(error, JobError::Failed("Audio is too noisy.".into()));
        assert!(server.uploaded_files().iter().all(|f| f.deleted));
        assert!(server.transcription_jobs().iter().all(|j| j.deleted));
    }

    #[test]
    fn a_rejected_key_is_not_retried() {
        let server = server(|_| {});
        let (_, report) = collect();
        let error = RUNTIME
            .block_on(run(&job(&server, "wrong"), wav(500), report))
            .unwrap_err();
        let JobError::Rest(rest) = &error else {
            panic!("{error:?}");
        };
        assert_eq!(rest.status, Some(401));
        assert_eq!(server.rest_requests().len(), 1, "no retry");
        assert!(
            !error.to_string().contains("wrong"),
            "the key is never in an error"
        );
    }

    #[test]
    fn a_job_abandoned_while_it_waits_is_deleted_anyway() {
        let server = server(|c| c.job_delay = Duration::from_secs(60));
        let (events, report) = collect();
        let config = job(&server, "k");
        let handle = RUNTIME.spawn(async move { run(&config, wav(500), report).await });
        // Abandoned once the transcription exists.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !events
            .lock()
            .unwrap()
            .iter()
            .any(|e| matches!(e, JobEvent::Queued { .. }))
        {
            assert!(std::time::Instant::now() < deadline, "never queued");
            std::thread::sleep(Duration::from_millis(10));
        }
        handle.abort();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !(server.uploaded_files().iter().all(|f| f.deleted)
            && server.transcription_jobs().iter().all(|j| j.deleted))
        {
            assert!(std::time::Instant::now() < deadline, "not deleted");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}
