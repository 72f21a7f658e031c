//! `wss://` with the generated self-signed certificate.

use std::sync::Arc;

use futures_util::{SinkExt, StreamExt};
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{CertificateError, ClientConfig, RootCertStore};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use super::*;
use crate::{MockServer, SessionEnd};

/// A TLS connection to the server's host and port that trusts exactly `roots`.
async fn tls_connect(
    server: &MockServer,
    roots: RootCertStore,
) -> std::io::Result<TlsStream<TcpStream>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = TcpStream::connect(("127.0.0.1", server.port())).await?;
    let name = ServerName::try_from("localhost").unwrap();
    TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
}

fn certificate_error(error: &std::io::Error) -> Option<&CertificateError> {
    match error.get_ref()?.downcast_ref::<rustls::Error>()? {
        rustls::Error::InvalidCertificate(e) => Some(e),
        _ => None,
    }
}

#[tokio::test]
async fn tls_server_uses_localhost_and_an_untrusted_certificate() {
    let server = MockServer::start_tls(config());
    assert!(server.is_tls());
    assert_eq!(
        server.url(),
        format!("wss://localhost:{}/transcribe-websocket", server.port())
    );
    assert!(server
        .certificate_pem()
        .unwrap()
        .starts_with("-----BEGIN CERTIFICATE-----"));

    let error = tls_connect(&server, RootCertStore::empty())
        .await
        .unwrap_err();
    assert_eq!(
        certificate_error(&error),
        Some(&CertificateError::UnknownIssuer),
        "{error}"
    );
    assert!(server.wait_for_tls_handshake_failures(WAIT, 1));
    assert_eq!(server.tls_handshake_failures(), 1);
    // A refused handshake never reaches the upgrade.
    assert_eq!(server.connection_count(), 0);

    // A plain ws:// client does not get a WebSocket either.
    let plain = server.url().replace("wss://localhost", "ws://127.0.0.1");
    assert!(Client::try_connect(&plain, &[]).await.is_err());
    assert!(server.wait_for_tls_handshake_failures(WAIT, 2));
}

#[tokio::test]
async fn tls_session_works_when_the_certificate_is_trusted() {
    let server = MockServer::start_tls(config());
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from(
            server.certificate_der().unwrap().to_vec(),
        ))
        .unwrap();
    let tls = tls_connect(&server, roots).await.unwrap();
    let mut request = server.url().into_client_request().unwrap();
    request
        .headers_mut()
        .insert("authorization", format!("Bearer {KEY}").parse().unwrap());
    let (mut ws, _): (WebSocketStream<_>, _) =
        tokio_tungstenite::client_async(request, tls).await.unwrap();
    ws.send(Message::text(start_request(json!({})).to_string()))
        .await
        .unwrap();
    for _ in 0..27 {
        ws.send(Message::binary(vec![0; CHUNK])).await.unwrap();
    }
    ws.send(Message::text("")).await.unwrap();
    let mut messages = Vec::new();
    while let Some(Ok(Message::Text(text))) = tokio::time::timeout(WAIT, ws.next()).await.unwrap() {
        messages.push(serde_json::from_str::<Value>(text.as_str()).unwrap());
    }
    assert_eq!(messages.last().unwrap()["finished"], true);
    assert_eq!(final_text(&messages), script().final_text());
    assert!(server.wait_until(WAIT, |s| s.len() == 1
        && s[0].end == Some(SessionEnd::Finished)));
    assert_eq!(server.tls_handshake_failures(), 0);
    assert!(!MockServer::start(config()).is_tls());
}
