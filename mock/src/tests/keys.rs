//! Temporary keys: minted through the REST API, taken on the WebSocket as Soniox takes them.

use std::time::Duration;

use serde_json::{json, Value};

use super::*;
use crate::{MockServer, TemporaryKeyOptions};

async fn mint(server: &MockServer, auth: Option<&str>, body: Value) -> (u16, Value) {
    let mut request = reqwest::Client::new()
        .post(format!("{}/v1/auth/temporary-api-key", server.rest_url()))
        .json(&body);
    if let Some(key) = auth {
        request = request.bearer_auth(key);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

async fn bearer(server: &MockServer, key: &str) -> Client {
    Client::try_connect(
        &server.url(),
        &[("authorization", &format!("Bearer {key}"))],
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn a_minted_single_use_key_opens_one_connection() {
    let server = MockServer::start(config());
    let (status, body) = mint(
        &server,
        Some(KEY),
        json!({"usage_type": "transcribe_websocket", "expires_in_seconds": 60, "single_use": true}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let key = body["api_key"].as_str().unwrap().to_string();
    assert!(key.starts_with("temp:"), "{key}");
    let expires = body["expires_at"].as_str().unwrap();
    assert!(humantime::parse_rfc3339(expires).is_ok(), "{expires}");

    let mut client = bearer(&server, &key).await;
    client.start(json!({})).await;
    client.text("").await;
    let (messages, _) = client.until_close().await;
    assert_eq!(messages.last().unwrap()["finished"], true);

    let mut again = bearer(&server, &key).await;
    again.start(json!({})).await;
    expect_error(
        &mut again,
        401,
        "unauthenticated",
        "Invalid/expired temporary API key.",
    )
    .await;
    let requests = server.rest_requests();
    assert_eq!(requests.len(), 1);
    assert!(requests[0].authorized);
    assert_eq!(requests[0].status, 201);
}

#[tokio::test]
async fn the_rest_api_refuses_what_soniox_refuses() {
    let server = MockServer::start(config());
    let good = json!({"usage_type": "transcribe_websocket", "expires_in_seconds": 60});
    let (status, body) = mint(&server, None, good.clone()).await;
    assert_eq!(
        (status, body["error_type"].as_str()),
        (401, Some("unauthenticated"))
    );
    let (status, _) = mint(&server, Some("wrong"), good).await;
    assert_eq!(status, 401);
    for (bad, location) in [
        (
            json!({"usage_type": "transcribe_websocket", "expires_in_seconds": 0}),
            "expires_in_seconds",
        ),
        (
            json!({"usage_type": "transcribe_websocket", "expires_in_seconds": 3601}),
            "expires_in_seconds",
        ),
        (
            json!({"usage_type": "transcribe_websocket"}),
            "expires_in_seconds",
        ),
        (
            json!({"usage_type": "files", "expires_in_seconds": 60}),
            "usage_type",
        ),
        (
            json!({"usage_type": "transcribe_websocket", "expires_in_seconds": 60, "single_use": "yes"}),
            "single_use",
        ),
        (
            json!({"usage_type": "transcribe_websocket", "expires_in_seconds": 60, "max_session_duration_seconds": 18001}),
            "max_session_duration_seconds",
        ),
    ] {
        let (status, body) = mint(&server, Some(KEY), bad.clone()).await;
        assert_eq!(status, 400, "{bad}");
        assert_eq!(body["error_type"], "invalid_request");
        assert_eq!(body["validation_errors"][0]["location"], location, "{bad}");
        assert_eq!(body["request_id"].as_str().unwrap().len(), 36);
    }
}

#[tokio::test]
async fn a_temporary_keys_session_ends_with_403_when_its_duration_runs_out() {
    let server = MockServer::start(config());
    let key = server.mint_temporary_key(TemporaryKeyOptions {
        max_session_duration: Some(Duration::from_millis(300)),
        ..TemporaryKeyOptions::default()
    });
    let mut client = bearer(&server, &key).await;
    client.start(json!({})).await;
    expect_error(
        &mut client,
        403,
        "temp_api_key_session_expired",
        "Temporary API key session duration exceeded.",
    )
    .await;
    // An expired key (or one never minted) is refused like Soniox refuses it.
    let mut client = bearer(&server, "temp:never-minted").await;
    client.start(json!({})).await;
    expect_error(
        &mut client,
        401,
        "unauthenticated",
        "Invalid/expired temporary API key.",
    )
    .await;
}
