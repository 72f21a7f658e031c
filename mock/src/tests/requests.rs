//! Start-request and control-request handling, and the idle timeout.

use std::time::Duration;

use serde_json::json;

use super::*;
use crate::{ClientEventKind, MockServer, SessionEnd};

#[tokio::test]
async fn start_request_must_be_a_json_text_frame() {
    let server = MockServer::start(config());
    let mut client = Client::connect(&server.url()).await;
    client.binary(vec![1, 2, 3]).await;
    expect_error(
        &mut client,
        400,
        "invalid_request",
        "Start request must be a text message.",
    )
    .await;

    let mut client = Client::connect(&server.url()).await;
    client.text("{\"model\": ").await;
    expect_error(
        &mut client,
        400,
        "invalid_request",
        "Start request is malformed.",
    )
    .await;

    let sessions = server.sessions();
    assert_eq!(sessions[0].events[0].kind, ClientEventKind::Audio(3));
    assert_eq!(sessions[0].start_request_raw, None);
    assert_eq!(
        sessions[1].start_request_raw.as_deref(),
        Some("{\"model\": ")
    );
    assert_eq!(sessions[1].start_request, None);
    assert_eq!(sessions[1].end, Some(SessionEnd::Error { code: 400 }));
}

#[tokio::test]
async fn invalid_settings_get_400_with_soniox_messages() {
    let server = MockServer::start(config());
    let cases = [
        (json!({"model": "whisper"}), "Invalid model specified."),
        (json!({"audio_format": null}), "Missing audio format. Specify a valid audio format (e.g. s16le, f32le, wav, ogg, flac...)"),
        (json!({"audio_format": "ogg"}), "Invalid audio data format: ogg"),
        (json!({"sample_rate": null}), "Audio data sample rate must be specified for PCM formats"),
        (json!({"num_channels": null}), "Audio data channels must be specified for PCM formats"),
        (json!({"language_hints": ["en", "en"]}), "Language hints must be unique."),
        (json!({"language_hints": ["english"]}), "Invalid language hint."),
        (json!({"context": "c".repeat(10_001)}), "Context is too long (max length 10000)."),
        (json!({"client_reference_id": "r".repeat(257)}), "Client reference ID is too long (max length 256)"),
        (json!({"max_endpoint_delay_ms": 100}), "Invalid max_endpoint_delay_ms (must be between 500 and 3000)."),
    ];
    for (extra, message) in cases {
        let mut client = Client::connect(&server.url()).await;
        client.start(extra).await;
        expect_error(&mut client, 400, "invalid_request", message).await;
    }
}

#[tokio::test]
async fn keepalive_before_the_start_request_is_tolerated() {
    let server = MockServer::start(config());
    let mut client = Client::connect(&server.url()).await;
    client.text(r#"{"type":"keepalive"}"#).await;
    let mut request = start_request(json!({"unknown": {"x": 1}}));
    request["context"] = serde_json::Value::Null;
    request["translation"] = serde_json::Value::Null;
    request["enable_endpoint_detection"] = serde_json::Value::Null;
    client.text(&request.to_string()).await;
    client.chunks(1).await;
    assert_eq!(client.recv_json().await["total_audio_proc_ms"], 120);
    client.text("").await;
    client.until_close().await;
    let record = &server.sessions()[0];
    assert_eq!(record.events[0].kind, ClientEventKind::Keepalive);
    assert!(
        matches!(record.events[1].kind, ClientEventKind::Other(ref t) if t.contains("stt-rt-v3"))
    );
}

#[tokio::test]
async fn bad_control_requests_end_the_session() {
    let server = MockServer::start(config());
    for (text, message) in [
        (r#"{"type":"pause"}"#, "Control request invalid type."),
        ("hello", "Control request is malformed."),
    ] {
        let mut client = Client::connect(&server.url()).await;
        client.start(json!({})).await;
        client.text(r#"{"type":"keepalive"}"#).await;
        client.text(text).await;
        expect_error(&mut client, 400, "invalid_request", message).await;
    }
    let record = &server.sessions()[1];
    assert_eq!(record.events[1].kind, ClientEventKind::Keepalive);
    assert_eq!(
        record.events[2].kind,
        ClientEventKind::Other("hello".into())
    );
}

#[tokio::test]
async fn idle_sessions_time_out_with_408() {
    let mut cfg = config();
    cfg.idle_timeout = Duration::from_millis(300);
    let server = MockServer::start(cfg);

    // Before the start request.
    let mut client = Client::connect(&server.url()).await;
    expect_error(&mut client, 408, "request_timeout", "Request timeout.").await;

    // After some audio; keepalives keep the session open meanwhile.
    let mut client = Client::connect(&server.url()).await;
    client.start(json!({})).await;
    client.chunks(1).await;
    client.recv_json().await;
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(150)).await;
        client.text(r#"{"type":"keepalive"}"#).await;
    }
    let started = std::time::Instant::now();
    expect_error(&mut client, 408, "request_timeout", "Request timeout.").await;
    assert!(started.elapsed() >= Duration::from_millis(200));

    let sessions = server.sessions();
    assert_eq!(sessions[0].end, Some(SessionEnd::IdleTimeout));
    assert_eq!(sessions[1].end, Some(SessionEnd::IdleTimeout));
    assert_eq!(
        sessions[1].count_events(|k| *k == ClientEventKind::Keepalive),
        3
    );
}
