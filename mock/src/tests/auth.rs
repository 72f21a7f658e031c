//! Upgrade path, handshake refusals and the three ways to present the key.

use serde_json::json;
use tokio_tungstenite::tungstenite::Error as WsError;

use super::*;
use crate::{Fault, MockServer, SessionEnd};

fn http_status(result: Result<Client, WsError>) -> u16 {
    match result {
        Err(WsError::Http(response)) => response.status().as_u16(),
        Err(other) => panic!("expected an HTTP refusal, got {other}"),
        Ok(_) => panic!("expected an HTTP refusal, got an upgrade"),
    }
}

/// Starts a session with these handshake headers and start-request fields, then ends it.
async fn session_with(
    server: &MockServer,
    headers: &[(&str, &str)],
    extra: serde_json::Value,
) -> Client {
    let mut client = Client::try_connect(&server.url(), headers).await.unwrap();
    client.start(extra).await;
    client
}

async fn expect_finished(client: &mut Client) {
    client.text("").await;
    let (messages, end) = client.until_close().await;
    assert_eq!(messages.last().unwrap()["finished"], true, "{messages:?}");
    assert_closed_normally(&end);
}

#[tokio::test]
async fn other_paths_get_404() {
    let server = MockServer::start(config());
    let url = server.url().replace("/transcribe-websocket", "/other");
    assert_eq!(http_status(Client::try_connect(&url, &[]).await), 404);
    assert_eq!(server.connection_count(), 1);
    let record = &server.sessions()[0];
    assert_eq!(record.path, "/other");
    assert_eq!(record.end, Some(SessionEnd::Error { code: 404 }));
}

#[tokio::test]
async fn handshake_refusals() {
    let mut cfg = config();
    cfg.reject_handshake_status = Some(429);
    let server = MockServer::start(cfg);
    assert_eq!(
        http_status(Client::try_connect(&server.url(), &[]).await),
        429
    );
    assert_eq!(
        http_status(Client::try_connect(&server.url(), &[]).await),
        429
    );
    assert_eq!(server.connection_count(), 2);

    let mut cfg = config();
    cfg.session_faults = vec![vec![Fault::RejectHandshake { status: 503 }]];
    let server = MockServer::start(cfg);
    assert_eq!(
        http_status(Client::try_connect(&server.url(), &[]).await),
        503
    );
    let mut client = Client::connect(&server.url()).await;
    client.start(json!({})).await;
    expect_finished(&mut client).await;
    let sessions = server.sessions();
    assert_eq!(sessions[0].end, Some(SessionEnd::Error { code: 503 }));
    assert_eq!(sessions[1].end, Some(SessionEnd::Finished));
    assert_eq!(sessions[1].index, 1);
}

#[tokio::test]
async fn key_in_header() {
    let server = MockServer::start(config());
    let mut client =
        session_with(&server, &[("authorization", "Bearer test-key")], json!({})).await;
    assert_eq!(client.protocol, None);
    expect_finished(&mut client).await;
    let record = &server.sessions()[0];
    assert_eq!(record.authorization.as_deref(), Some("Bearer test-key"));
    assert_eq!(record.path, "/transcribe-websocket");
    assert_eq!(record.start_request.as_ref().unwrap()["model"], "stt-rt-v3");
}

#[tokio::test]
async fn key_in_subprotocols() {
    let server = MockServer::start(config());
    let headers = [("sec-websocket-protocol", "soniox-api-key, test-key")];
    let mut client = session_with(&server, &headers, json!({})).await;
    assert_eq!(client.protocol.as_deref(), Some("soniox-api-key"));
    expect_finished(&mut client).await;
    let record = &server.sessions()[0];
    assert_eq!(
        record.protocols.as_deref(),
        Some("soniox-api-key, test-key")
    );
    assert_eq!(record.authorization, None);
}

#[tokio::test]
async fn key_in_start_request() {
    let server = MockServer::start(config());
    let mut client = session_with(&server, &[], json!({"api_key": KEY})).await;
    expect_finished(&mut client).await;
    // The handshake key is the connection's key; a stray api_key does not override it.
    let headers = [("authorization", "Bearer test-key")];
    let mut client = session_with(&server, &headers, json!({"api_key": "stale"})).await;
    expect_finished(&mut client).await;
}

#[tokio::test]
async fn bad_or_missing_keys_get_401_after_the_upgrade() {
    let server = MockServer::start(config());
    type Headers = &'static [(&'static str, &'static str)];
    let cases: [(Headers, serde_json::Value, &str); 6] = [
        (
            &[("authorization", "Bearer wrong")],
            json!({}),
            "Invalid API key.",
        ),
        (
            &[("authorization", "Basic dGVzdA==")],
            json!({}),
            "Invalid API key.",
        ),
        (
            &[("authorization", "Bearer wrong")],
            json!({"api_key": KEY}),
            "Invalid API key.",
        ),
        (
            &[("sec-websocket-protocol", "soniox-api-key, wrong")],
            json!({}),
            "Invalid API key.",
        ),
        (&[], json!({"api_key": "wrong"}), "Invalid API key."),
        (&[], json!({}), "Missing API key."),
    ];
    for (headers, extra, message) in cases {
        let mut client = session_with(&server, headers, extra).await;
        expect_error(&mut client, 401, "unauthenticated", message).await;
    }
    assert!(server.wait_until(WAIT, |s| s.len() == 6
        && s.iter()
            .all(|r| r.end == Some(SessionEnd::Error { code: 401 }))));
}
