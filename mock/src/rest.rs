//! The REST API on a port of its own (Soniox serves it from another host than the
//! WebSocket): `POST /v1/auth/temporary-api-key`, and the async API (see [`crate::jobs`]),
//! with Soniox's validation and error shape (`status_code`, `error_type`, `message`,
//! `validation_errors`, `request_id`).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Multipart, Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde_json::{json, Map, Value};

use crate::config::MockConfig;
use crate::keys::{KeyStore, TemporaryKeyOptions};
use crate::protocol::new_request_id;
use crate::record::{RestRequest, Shared};

pub(crate) const TEMPORARY_KEY_PATH: &str = "/v1/auth/temporary-api-key";

#[derive(Clone)]
struct Rest {
    config: Arc<MockConfig>,
    shared: Arc<Shared>,
}

pub(crate) async fn serve(
    listener: tokio::net::TcpListener,
    config: Arc<MockConfig>,
    shared: Arc<Shared>,
) {
    let app = Router::new()
        .route(TEMPORARY_KEY_PATH, post(temporary_key))
        .route("/v1/files", post(upload))
        .route("/v1/files/{id}", delete(delete_file))
        .route("/v1/transcriptions", post(create))
        .route("/v1/transcriptions/{id}", get(get_job).delete(delete_job))
        .route("/v1/transcriptions/{id}/transcript", get(transcript))
        // Uploads up to Soniox's 500 MB, and a little more to refuse.
        .layer(axum::extract::DefaultBodyLimit::max(600 << 20))
        .fallback(|| async { error(StatusCode::NOT_FOUND, "not_found", "Not found.", vec![]) })
        .with_state(Rest { config, shared });
    let _ = axum::serve(listener, app).await;
}

/// Soniox's REST error.
fn error(status: StatusCode, error_type: &str, message: &str, validation: Vec<Value>) -> Response {
    let body = json!({
        "status_code": status.as_u16(),
        "error_type": error_type,
        "message": message,
        "validation_errors": validation,
        "request_id": new_request_id(),
    });
    (status, Json(body)).into_response()
}

fn invalid(location: &str, message: &str) -> Response {
    let detail = json!({"error_type": "invalid_value", "location": location, "message": message});
    error(
        StatusCode::BAD_REQUEST,
        "invalid_request",
        "Invalid request.",
        vec![detail],
    )
}

/// The Bearer key of a request, if any.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, key) = value.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| key.trim())
}

async fn temporary_key(State(rest): State<Rest>, headers: HeaderMap, body: Bytes) -> Response {
    let key = bearer(&headers);
    let authorized = key == Some(rest.config.api_key.as_str());
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let response = match key {
        Some(key) if KeyStore::is_temporary(key) => error(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "Temporary API keys cannot be used for this request.",
            vec![],
        ),
        _ if !authorized => error(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "Invalid API key.",
            vec![],
        ),
        _ => match body.as_object().map(options) {
            None => invalid("body", "The request body must be a JSON object."),
            Some(Err((location, message))) => invalid(location, &message),
            Some(Ok(options)) => {
                let (api_key, expires) = rest.shared.keys.mint(options);
                let expires_at = humantime::format_rfc3339_seconds(expires).to_string();
                let body = json!({"api_key": api_key, "expires_at": expires_at});
                (StatusCode::CREATED, Json(body)).into_response()
            }
        },
    };
    rest.shared.record_rest(RestRequest {
        method: "POST".into(),
        path: TEMPORARY_KEY_PATH.into(),
        authorized,
        body,
        status: response.status().as_u16(),
    });
    response
}

/// A field that is not as Soniox wants it, and why.
type Refusal = (&'static str, String);

/// The request's fields, validated as Soniox documents them.
fn options(body: &Map<String, Value>) -> Result<TemporaryKeyOptions, Refusal> {
    let whole = |name: &'static str, range: std::ops::RangeInclusive<u64>| {
        let refusal = || {
            let (from, to) = (range.start(), range.end());
            (name, format!("Must be a whole number from {from} to {to}."))
        };
        match body.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => match v.as_u64().filter(|n| range.contains(n)) {
                Some(n) => Ok(Some(n)),
                None => Err(refusal()),
            },
        }
    };
    match body.get("usage_type").and_then(Value::as_str) {
        Some("transcribe_websocket" | "tts_rt") => {}
        _ => {
            let why = "Must be transcribe_websocket or tts_rt.";
            return Err(("usage_type", why.into()));
        }
    }
    let expires = whole("expires_in_seconds", 1..=3600)?
        .ok_or(("expires_in_seconds", "Field required.".to_string()))?;
    let max_session = whole("max_session_duration_seconds", 1..=18_000)?;
    let single_use = match body.get("single_use") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(("single_use", "Must be a boolean.".into())),
    };
    let client_reference_id = match body.get("client_reference_id") {
        None | Some(Value::Null) => None,
        Some(Value::String(id)) if id.chars().count() <= 256 => Some(id.clone()),
        Some(_) => {
            return Err((
                "client_reference_id",
                "Must be a string of at most 256 characters.".into(),
            ))
        }
    };
    Ok(TemporaryKeyOptions {
        expires_in: std::time::Duration::from_secs(expires),
        single_use,
        max_session_duration: max_session.map(std::time::Duration::from_secs),
        client_reference_id,
    })
}

/// Who may use the async API: the permanent key; temporary keys are refused (the refusal).
fn refusal(rest: &Rest, headers: &HeaderMap) -> Option<Response> {
    match bearer(headers) {
        Some(key) if KeyStore::is_temporary(key) => Some(error(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "Temporary API keys cannot be used for this request.",
            vec![],
        )),
        Some(key) if key == rest.config.api_key => None,
        _ => Some(error(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "Invalid API key.",
            vec![],
        )),
    }
}

/// Answers an async API request (authorized first) and records it.
fn answer(
    rest: &Rest,
    headers: &HeaderMap,
    method: &str,
    path: String,
    body: Value,
    handle: impl FnOnce(&mut crate::jobs::Jobs) -> crate::jobs::Answer,
) -> Response {
    let refused = refusal(rest, headers);
    let ok = refused.is_none();
    let response = match refused {
        Some(refusal) => refusal,
        None => {
            let (status, body) = {
                let mut jobs = rest.shared.jobs.lock().unwrap_or_else(|e| e.into_inner());
                handle(&mut jobs)
            };
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            match body {
                Value::Null => status.into_response(),
                body => (status, Json(body)).into_response(),
            }
        }
    };
    rest.shared.record_rest(RestRequest {
        method: method.into(),
        path,
        authorized: ok,
        body,
        status: response.status().as_u16(),
    });
    response
}

async fn upload(State(rest): State<Rest>, headers: HeaderMap, mut form: Multipart) -> Response {
    let mut file = None;
    while let Ok(Some(field)) = form.next_field().await {
        if field.name() != Some("file") {
            continue;
        }
        let name = field.file_name().unwrap_or("audio").to_string();
        if let Ok(bytes) = field.bytes().await {
            file = Some((name, bytes.to_vec()));
        }
    }
    let body = match &file {
        Some((name, bytes)) => json!({"filename": name, "size": bytes.len()}),
        None => Value::Null,
    };
    let config = rest.config.clone();
    answer(&rest, &headers, "POST", "/v1/files".into(), body, |jobs| {
        jobs.upload(&config, file)
    })
}

async fn delete_file(
    State(rest): State<Rest>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let path = format!("/v1/files/{id}");
    answer(&rest, &headers, "DELETE", path, Value::Null, |jobs| {
        jobs.delete_file(&id)
    })
}

async fn create(State(rest): State<Rest>, headers: HeaderMap, body: Bytes) -> Response {
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let config = rest.config.clone();
    let request = body.clone();
    answer(
        &rest,
        &headers,
        "POST",
        "/v1/transcriptions".into(),
        body,
        |jobs| jobs.create(&config, &request),
    )
}

async fn get_job(State(rest): State<Rest>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let config = rest.config.clone();
    let path = format!("/v1/transcriptions/{id}");
    answer(&rest, &headers, "GET", path, Value::Null, |jobs| {
        jobs.get(&config, &id)
    })
}

async fn delete_job(
    State(rest): State<Rest>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let path = format!("/v1/transcriptions/{id}");
    answer(&rest, &headers, "DELETE", path, Value::Null, |jobs| {
        jobs.delete_transcription(&id)
    })
}

async fn transcript(
    State(rest): State<Rest>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let config = rest.config.clone();
    let path = format!("/v1/transcriptions/{id}/transcript");
    answer(&rest, &headers, "GET", path, Value::Null, |jobs| {
        jobs.transcript(&config, &id)
    })
}
