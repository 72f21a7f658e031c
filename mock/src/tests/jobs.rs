//! The async API: files and transcriptions, as a client of Soniox's REST API sees them.

use std::time::Duration;

use serde_json::{json, Value};

use super::*;
use crate::{JobFault, MockServer};

fn wav(ms: u32) -> Vec<u8> {
    crate::silent_wav(ms)
}

struct Api {
    server: MockServer,
    http: reqwest::Client,
}

impl Api {
    fn new(configure: impl FnOnce(&mut MockConfig)) -> Api {
        let mut config = config();
        configure(&mut config);
        Api {
            server: MockServer::start(config),
            http: reqwest::Client::new(),
        }
    }

    async fn send(&self, request: reqwest::RequestBuilder, key: &str) -> (u16, Value) {
        let response = request.bearer_auth(key).send().await.unwrap();
        let status = response.status().as_u16();
        let body = response.json().await.unwrap_or(Value::Null);
        (status, body)
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server.rest_url())
    }

    async fn upload_as(&self, bytes: Vec<u8>, key: &str) -> (u16, Value) {
        let part = reqwest::multipart::Part::bytes(bytes).file_name("audio.wav");
        let form = reqwest::multipart::Form::new().part("file", part);
        self.send(self.http.post(self.url("/v1/files")).multipart(form), key)
            .await
    }

    async fn upload(&self, bytes: Vec<u8>) -> (u16, Value) {
        self.upload_as(bytes, KEY).await
    }

    async fn create(&self, body: Value) -> (u16, Value) {
        let request = self.http.post(self.url("/v1/transcriptions")).json(&body);
        self.send(request, KEY).await
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        self.send(self.http.get(self.url(path)), KEY).await
    }

    async fn delete(&self, path: &str) -> u16 {
        self.send(self.http.delete(self.url(path)), KEY).await.0
    }

    /// Polls the job until it is done; returns the statuses seen, in order, without repeats.
    async fn wait(&self, id: &str) -> (Vec<String>, Value) {
        let mut seen: Vec<String> = Vec::new();
        loop {
            let (code, body) = self.get(&format!("/v1/transcriptions/{id}")).await;
            assert_eq!(code, 200, "{body}");
            let status = body["status"].as_str().unwrap().to_string();
            if seen.last() != Some(&status) {
                seen.push(status.clone());
            }
            if status == "completed" || status == "error" {
                return (seen, body);
            }
            // Polling a job: a client waits between requests.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

#[tokio::test]
async fn a_file_is_uploaded_transcribed_and_deleted() {
    let api = Api::new(|_| {});
    let (code, file) = api.upload(wav(2000)).await;
    assert_eq!(code, 201, "{file}");
    assert_eq!(file["size"], wav(2000).len());
    let file_id = file["id"].as_str().unwrap();
    let (code, job) = api
        .create(
            json!({"model": "stt-async-v5", "file_id": file_id, "language_hints": ["en"],
                       "enable_speaker_diarization": true, "client_reference_id": "t1"}),
        )
        .await;
    assert_eq!(
        (code, job["status"].as_str()),
        (201, Some("queued")),
        "{job}"
    );
    let id = job["id"].as_str().unwrap();
    let (statuses, _) = api.wait(id).await;
    assert_eq!(statuses, ["queued", "processing", "completed"]);
    let (code, transcript) = api
        .get(&format!("/v1/transcriptions/{id}/transcript"))
        .await;
    assert_eq!(code, 200, "{transcript}");
    // The script's words said in the first 2 s, with their times and speakers.
    let words: Vec<(String, u64, u64, String)> = transcript["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["text"].as_str().unwrap().to_string(),
                t["start_ms"].as_u64().unwrap(),
                t["end_ms"].as_u64().unwrap(),
                t["speaker"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let expected: Vec<(String, u64, u64, String)> = script()
        .utterances
        .iter()
        .flat_map(|u| u.words.iter().map(move |w| (u, w)))
        .filter(|(_, w)| w.start_ms < 2000)
        .enumerate()
        .map(|(i, (u, w))| {
            let space = if i == 0 { "" } else { " " };
            let speaker = u.speaker.clone().unwrap_or_else(|| "1".into());
            (
                format!("{space}{}", w.text),
                w.start_ms,
                w.end_ms.min(2000),
                speaker,
            )
        })
        .collect();
    assert_eq!(words, expected);
    assert!(!expected.is_empty());

    assert_eq!(api.delete(&format!("/v1/transcriptions/{id}")).await, 204);
    assert_eq!(api.delete(&format!("/v1/files/{file_id}")).await, 204);
    assert_eq!(api.delete(&format!("/v1/files/{file_id}")).await, 404);
    assert!(api.server.uploaded_files().iter().all(|f| f.deleted));
    assert!(api.server.transcription_jobs().iter().all(|j| j.deleted));
    assert_eq!(*api.server.uploaded_files()[0].bytes, wav(2000));
    let paths: Vec<String> = api
        .server
        .rest_requests()
        .iter()
        .map(|r| {
            format!(
                "{} {}",
                r.method,
                r.path.split('/').take(3).collect::<Vec<_>>().join("/")
            )
        })
        .collect();
    assert_eq!(paths[0], "POST /v1/files");
    assert_eq!(paths[1], "POST /v1/transcriptions");
}

#[tokio::test]
async fn requests_soniox_would_refuse_are_refused() {
    let api = Api::new(|_| {});
    let (_, file) = api.upload(wav(500)).await;
    let file_id = file["id"].as_str().unwrap();
    for (body, location) in [
        (json!({"model": "stt-rt-v5", "file_id": file_id}), "model"),
        (json!({"model": "stt-async-v5"}), "file_id"),
        (
            json!({"model": "stt-async-v5", "file_id": file_id, "audio_url": "https://x/a.wav"}),
            "file_id",
        ),
        (
            json!({"model": "stt-async-v5", "file_id": file_id, "language_hints": ["english"]}),
            "language_hints",
        ),
        (
            json!({"model": "stt-async-v5", "file_id": file_id, "translation": {"type": "one"}}),
            "translation",
        ),
        (
            json!({"model": "stt-async-v5", "file_id": "file-nope"}),
            "file_id",
        ),
    ] {
        let (code, error) = api.create(body.clone()).await;
        assert_eq!(code, 400, "{body}: {error}");
        assert_eq!(error["error_type"], "invalid_request");
        assert_eq!(
            error["validation_errors"][0]["location"], location,
            "{body}"
        );
        assert!(error["request_id"].is_string());
    }
    let temporary = api
        .server
        .mint_temporary_key(crate::TemporaryKeyOptions::default());
    let (code, error) = api.upload_as(wav(500), &temporary).await;
    assert_eq!(code, 401);
    assert_eq!(
        error["message"],
        "Temporary API keys cannot be used for this request."
    );
    let (code, _) = api.upload_as(wav(500), "wrong").await;
    assert_eq!(code, 401);
    let (code, _) = api.get("/v1/transcriptions/transcription-nope").await;
    assert_eq!(code, 404);
}

#[tokio::test]
async fn faults_refuse_an_upload_and_a_creation_once_and_fail_jobs() {
    let api = Api::new(|c| {
        c.job_faults = vec![
            JobFault::upload_refused_once(503),
            JobFault::create_refused_once(429),
            JobFault::JobError {
                message: "Audio is too noisy.".into(),
            },
        ];
    });
    let (code, error) = api.upload(wav(500)).await;
    assert_eq!(
        (code, error["error_type"].as_str()),
        (503, Some("service_unavailable"))
    );
    let (code, file) = api.upload(wav(500)).await;
    assert_eq!(code, 201);
    let request = json!({"model": "stt-async-v5", "file_id": file["id"]});
    assert_eq!(api.create(request.clone()).await.0, 429);
    let (code, job) = api.create(request).await;
    assert_eq!(code, 201);
    let (statuses, body) = api.wait(job["id"].as_str().unwrap()).await;
    assert_eq!(statuses.last().unwrap(), "error");
    assert_eq!(body["error_message"], "Audio is too noisy.");
}

#[tokio::test]
async fn what_is_not_a_wav_file_fails_to_decode() {
    let api = Api::new(|c| c.job_delay = Duration::ZERO);
    let (_, file) = api.upload(b"not audio".to_vec()).await;
    let (_, job) = api
        .create(json!({"model": "stt-async-v5", "file_id": file["id"]}))
        .await;
    let (_, body) = api.wait(job["id"].as_str().unwrap()).await;
    assert_eq!(body["error_message"], "Audio decode error.");
}

#[tokio::test]
async fn a_translated_transcript_has_each_utterances_translation_after_it() {
    let api = Api::new(|c| c.job_delay = Duration::ZERO);
    let (_, file) = api.upload(wav(4000)).await;
    let (_, job) = api
        .create(json!({"model": "stt-async-v5", "file_id": file["id"],
                       "translation": {"type": "one_way", "target_language": "fr"}}))
        .await;
    let id = job["id"].as_str().unwrap();
    api.wait(id).await;
    let (_, transcript) = api
        .get(&format!("/v1/transcriptions/{id}/transcript"))
        .await;
    let statuses: Vec<&str> = transcript["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["translation_status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses.first(), Some(&"original"));
    let first_translation = statuses.iter().position(|s| *s == "translation").unwrap();
    let translation = &transcript["tokens"][first_translation];
    assert!(translation["start_ms"].is_null(), "no times: {translation}");
    assert!(translation["text"].as_str().unwrap().starts_with(" [fr] "));
    assert!(!transcript["text"].as_str().unwrap().contains("[fr]"));
}
