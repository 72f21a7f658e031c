// SPDX-License-Identifier: MPL-2.0
//! Soniox's async REST API as calls: upload a file, create a transcription, read its status
//! and transcript, delete both. Errors carry what Soniox said (status, `error_type`,
//! message, request id), never the key.

use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use reqwest::header::AUTHORIZATION;
use serde::Deserialize;
use serde_json::Value;

use super::super::credentials::ApiKey;
use super::super::protocol;

/// The default REST endpoint of a region (`us`, `eu`, `jp`).
pub fn region_rest_url(region: &str) -> String {
    match region {
        "us" | "" => "https://api.soniox.com".to_string(),
        other => format!("https://api.{other}.soniox.com"),
    }
}

/// A failed REST call.
#[derive(Debug, Clone, PartialEq)]
pub struct RestError {
    /// The HTTP status; `None`: the request never got an answer (transport).
    pub status: Option<u16>,
    pub error_type: Option<String>,
    pub message: String,
    pub request_id: Option<String>,
    /// What was being done ("uploading the audio", …).
    pub doing: &'static str,
}

impl RestError {
    /// 408, 429, 5xx and transport errors may go away when tried again.
    pub fn is_retryable(&self) -> bool {
        match self.status {
            None => true,
            Some(status) => matches!(status, 408 | 429 | 500..=599),
        }
    }
}

impl fmt::Display for RestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Soniox's REST API failed {}", self.doing)?;
        match (self.status, self.error_type.as_deref()) {
            (Some(status), Some(kind)) => write!(f, " ({status} {kind})")?,
            (Some(status), None) => write!(f, " ({status})")?,
            (None, _) => {}
        }
        write!(f, ": {}", self.message)?;
        if self.status == Some(401) {
            write!(
                f,
                " (the async API takes a permanent API key; temporary keys are refused)"
            )?;
        }
        Ok(())
    }
}

impl std::error::Error for RestError {}

/// Soniox's REST error body.
#[derive(Deserialize, Default)]
#[serde(default)]
struct ErrorBody {
    error_type: Option<String>,
    message: Option<String>,
    request_id: Option<String>,
}

/// A transcription's state.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct JobStatus {
    pub status: String,
    #[serde(default)]
    pub error_message: Option<String>,
}

#[derive(Deserialize)]
struct Created {
    id: String,
}

#[derive(Deserialize)]
struct Transcript {
    #[serde(default)]
    tokens: Vec<protocol::Token>,
}

/// The longest a single REST call may take (an upload of 500 MB included).
const CALL_TIMEOUT: Duration = Duration::from_secs(600);

/// A client of one REST endpoint with one key.
#[derive(Clone)]
pub struct RestClient {
    http: reqwest::Client,
    base: String,
    key: ApiKey,
}

impl fmt::Debug for RestClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RestClient")
            .field("base", &self.base)
            .finish()
    }
}

impl RestClient {
    pub fn new(base: &str, key: ApiKey) -> Result<RestClient, RestError> {
        let http = reqwest::Client::builder()
            .timeout(CALL_TIMEOUT)
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| transport("setting up HTTPS", &e))?;
        Ok(RestClient {
            http,
            base: base.trim_end_matches('/').to_string(),
            key,
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn send(
        &self,
        request: reqwest::RequestBuilder,
        doing: &'static str,
    ) -> Result<reqwest::Response, RestError> {
        let bearer = self.key.bearer().map_err(|e| RestError {
            status: None,
            error_type: None,
            message: e.to_string(),
            request_id: None,
            doing,
        })?;
        let response = request
            .header(AUTHORIZATION, bearer)
            .send()
            .await
            .map_err(|e| transport(doing, &e))?;
        if response.status().is_success() {
            return Ok(response);
        }
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        let body: ErrorBody = serde_json::from_str(&text).unwrap_or_default();
        Err(RestError {
            status: Some(status.as_u16()),
            error_type: body.error_type,
            message: body.message.unwrap_or_else(|| {
                status
                    .canonical_reason()
                    .unwrap_or("HTTP error")
                    .to_string()
            }),
            request_id: body.request_id,
            doing,
        })
    }

    /// `POST /v1/files` with `file` (multipart field `file`); returns the file's id.
    pub async fn upload(
        &self,
        file: reqwest::Body,
        len: u64,
        name: &str,
    ) -> Result<String, RestError> {
        const DOING: &str = "uploading the audio";
        let part = reqwest::multipart::Part::stream_with_length(file, len)
            .file_name(name.to_string())
            .mime_str("audio/wav")
            .map_err(|e| transport(DOING, &e))?;
        let form = reqwest::multipart::Form::new().part("file", part);
        let request = self.http.post(self.url("/v1/files")).multipart(form);
        let created: Created = json(self.send(request, DOING).await?, DOING).await?;
        Ok(created.id)
    }

    /// `POST /v1/transcriptions`; returns the transcription's id.
    pub async fn create(&self, body: &Value) -> Result<String, RestError> {
        const DOING: &str = "creating the transcription";
        let request = self.http.post(self.url("/v1/transcriptions")).json(body);
        let created: Created = json(self.send(request, DOING).await?, DOING).await?;
        Ok(created.id)
    }

    pub async fn status(&self, id: &str) -> Result<JobStatus, RestError> {
        const DOING: &str = "reading the transcription's status";
        let request = self.http.get(self.url(&format!("/v1/transcriptions/{id}")));
        json(self.send(request, DOING).await?, DOING).await
    }

    pub async fn transcript(&self, id: &str) -> Result<Vec<protocol::Token>, RestError> {
        const DOING: &str = "fetching the transcript";
        let path = format!("/v1/transcriptions/{id}/transcript");
        let request = self.http.get(self.url(&path));
        let transcript: Transcript = json(self.send(request, DOING).await?, DOING).await?;
        Ok(transcript.tokens)
    }

    pub async fn delete_transcription(&self, id: &str) -> Result<(), RestError> {
        let request = self
            .http
            .delete(self.url(&format!("/v1/transcriptions/{id}")));
        self.send(request, "deleting the transcription")
            .await
            .map(drop)
    }

    pub async fn delete_file(&self, id: &str) -> Result<(), RestError> {
        let request = self.http.delete(self.url(&format!("/v1/files/{id}")));
        self.send(request, "deleting the uploaded file")
            .await
            .map(drop)
    }
}

fn transport(doing: &'static str, error: &dyn fmt::Display) -> RestError {
    RestError {
        status: None,
        error_type: None,
        message: error.to_string(),
        request_id: None,
        doing,
    }
}

async fn json<T: serde::de::DeserializeOwned>(
    response: reqwest::Response,
    doing: &'static str,
) -> Result<T, RestError> {
    let bytes: Bytes = response.bytes().await.map_err(|e| transport(doing, &e))?;
    serde_json::from_slice(&bytes).map_err(|e| RestError {
        status: None,
        error_type: None,
        message: format!("an answer that is not what Soniox sends: {e}"),
        request_id: None,
        doing,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_say_what_failed_and_what_soniox_said() {
        let e = RestError {
            status: Some(401),
            error_type: Some("unauthenticated".into()),
            message: "Temporary API keys cannot be used for this request.".into(),
            request_id: Some("r1".into()),
            doing: "uploading the audio",
        };
        assert_eq!(
            e.to_string(),
            "Soniox's REST API failed uploading the audio (401 unauthenticated): Temporary API \
             keys cannot be used for this request. (the async API takes a permanent API key; \
             temporary keys are refused)"
        );
        assert!(!e.is_retryable());
        let busy = RestError {
            status: Some(503),
            ..e.clone()
        };
        assert!(busy.is_retryable());
        assert!(RestError { status: None, ..e }.is_retryable());
        assert_eq!(region_rest_url("eu"), "https://api.eu.soniox.com");
        assert_eq!(region_rest_url("us"), "https://api.soniox.com");
    }
}
