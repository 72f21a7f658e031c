//! Loopback tests driving the server with a small tokio-tungstenite client.

mod auth;
mod faults;
mod jobs;
mod keys;
mod long;
mod position;
mod requests;
mod streaming;
mod tls;

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{HeaderName, HeaderValue};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{connect_async, MaybeTlsStream, WebSocketStream};

use crate::{MockConfig, Script};

pub(crate) const KEY: &str = "test-key";
/// Upper bound for anything expected to happen; never reached when the code works.
pub(crate) const WAIT: Duration = Duration::from_secs(5);
/// pcm_s16le, 16 kHz, mono: 120 ms.
pub(crate) const CHUNK: usize = 3840;

pub(crate) const SCRIPT: &str = "\
speaker 1
200 600 Hello,
650 1200 GStreamer
1250 1700 world.

speaker 2
2600 2900 Bye
";

pub(crate) fn script() -> Script {
    Script::parse(SCRIPT).unwrap()
}

/// The protocol tests were written against a 1 s automatic-final lag.
pub(crate) fn config() -> MockConfig {
    let mut config = MockConfig::new(KEY, script());
    config.auto_final_lag_ms = Some(1000);
    config
}

/// The canonical start request merged with `extra` (a `null` in `extra` removes the key).
pub(crate) fn start_request(extra: Value) -> Value {
    let mut request = json!({
        "model": "stt-rt-v3", "audio_format": "pcm_s16le", "sample_rate": 16000, "num_channels": 1
    });
    for (k, v) in extra.as_object().unwrap() {
        if v.is_null() {
            request.as_object_mut().unwrap().remove(k);
        } else {
            request[k] = v.clone();
        }
    }
    request
}

/// What the client saw next.
#[derive(Debug)]
pub(crate) enum Recv {
    Json(Value),
    Closed(Option<CloseFrame>),
    /// The connection ended without a close frame.
    Gone,
}

pub(crate) struct Client {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    pub protocol: Option<String>,
}

impl Client {
    pub async fn try_connect(url: &str, headers: &[(&str, &str)]) -> Result<Client, WsError> {
        let mut request = url.into_client_request().unwrap();
        for (name, value) in headers {
            request.headers_mut().insert(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        let (ws, response) = connect_async(request).await?;
        let protocol = response
            .headers()
            .get("sec-websocket-protocol")
            .map(|v| v.to_str().unwrap().to_string());
        Ok(Client { ws, protocol })
    }

    /// Connects with the valid key in the `Authorization` header.
    pub async fn connect(url: &str) -> Client {
        Client::try_connect(url, &[("authorization", &format!("Bearer {KEY}"))])
            .await
            .unwrap()
    }

    pub async fn text(&mut self, text: &str) {
        self.ws.send(Message::text(text)).await.unwrap();
    }

    pub async fn binary(&mut self, data: Vec<u8>) {
        self.ws.send(Message::binary(data)).await.unwrap();
    }

    pub async fn start(&mut self, extra: Value) {
        self.text(&start_request(extra).to_string()).await;
    }

    /// Sends `chunks` 120 ms chunks of pcm_s16le silence.
    pub async fn chunks(&mut self, chunks: usize) {
        for _ in 0..chunks {
            self.binary(vec![0; CHUNK]).await;
        }
    }

    pub async fn recv(&mut self) -> Recv {
        let next = tokio::time::timeout(WAIT, self.ws.next())
            .await
            .expect("no message from the server in time");
        match next {
            Some(Ok(Message::Text(text))) => {
                Recv::Json(serde_json::from_str(text.as_str()).unwrap())
            }
            Some(Ok(Message::Close(frame))) => Recv::Closed(frame),
            Some(Ok(other)) => panic!("unexpected frame {other:?}"),
            Some(Err(_)) | None => Recv::Gone,
        }
    }

    /// The next message if one is already there (waits at most 1 ms); panics on anything but
    /// JSON.
    pub async fn try_recv_json(&mut self) -> Option<Value> {
        match tokio::time::timeout(Duration::from_millis(1), self.ws.next()).await {
            Ok(Some(Ok(Message::Text(text)))) => Some(serde_json::from_str(text.as_str()).unwrap()),
            Ok(other) => panic!("expected JSON, got {other:?}"),
            Err(_) => None,
        }
    }

    pub async fn recv_json(&mut self) -> Value {
        match self.recv().await {
            Recv::Json(value) => value,
            other => panic!("expected JSON, got {other:?}"),
        }
    }

    /// Whether anything arrives within `within` (used only to check that nothing does).
    pub async fn nothing_within(&mut self, within: Duration) -> bool {
        tokio::time::timeout(within, self.ws.next()).await.is_err()
    }

    /// Messages until the connection ends, and how it ended. Completes the close handshake.
    pub async fn until_close(&mut self) -> (Vec<Value>, Recv) {
        let mut messages = Vec::new();
        loop {
            match self.recv().await {
                Recv::Json(value) => messages.push(value),
                end => {
                    // Drive tungstenite's close reply out.
                    let _ = tokio::time::timeout(WAIT, self.ws.next()).await;
                    return (messages, end);
                }
            }
        }
    }

    /// Messages until one has a token with this text (included).
    pub async fn until_token(&mut self, text: &str) -> Vec<Value> {
        let mut messages = Vec::new();
        loop {
            let message = self.recv_json().await;
            let found = tokens(&message).iter().any(|t| t["text"] == text);
            messages.push(message);
            if found {
                return messages;
            }
        }
    }

    /// Sends a WebSocket ping.
    pub async fn ping(&mut self) {
        self.ws.send(Message::Ping(vec![7].into())).await.unwrap();
    }

    /// The next frame as it came (`None`: nothing within `within`, or the connection ended).
    pub async fn raw_frame(&mut self, within: Duration) -> Option<Message> {
        match tokio::time::timeout(within, self.ws.next()).await {
            Ok(Some(Ok(frame))) => Some(frame),
            _ => None,
        }
    }

    pub async fn close(&mut self) {
        self.ws.close(None).await.unwrap();
        let _ = tokio::time::timeout(WAIT, self.ws.next()).await;
    }
}

pub(crate) fn tokens(message: &Value) -> Vec<Value> {
    message["tokens"].as_array().cloned().unwrap_or_default()
}

/// Concatenated final token texts of `messages`, without special tokens.
pub(crate) fn final_text(messages: &[Value]) -> String {
    messages
        .iter()
        .flat_map(tokens)
        .filter(|t| t["is_final"] == true && t["text"] != "<end>" && t["text"] != "<fin>")
        .map(|t| t["text"].as_str().unwrap().to_string())
        .collect()
}

/// Asserts an error message with this code and text, then a 1000 close.
/// Reads to the close and checks it was Soniox's 503 "cannot continue".
pub(crate) async fn expect_service_unavailable(client: &mut Client) {
    expect_error(
        client,
        503,
        "service_unavailable",
        crate::faults::SERVICE_UNAVAILABLE,
    )
    .await;
}

pub(crate) async fn expect_error(client: &mut Client, code: u16, error_type: &str, message: &str) {
    let (messages, end) = client.until_close().await;
    let error = messages
        .last()
        .unwrap_or_else(|| panic!("no error message, ended with {end:?}"));
    assert_eq!(error["error_code"], code, "{error}");
    assert_eq!(error["error_type"], error_type, "{error}");
    assert_eq!(error["error_message"], message, "{error}");
    assert_eq!(error["tokens"], json!([]));
    assert_eq!(error["request_id"].as_str().unwrap().len(), 36);
    assert_closed_normally(&end);
}

pub(crate) fn assert_closed_normally(end: &Recv) {
    match end {
        Recv::Closed(Some(frame)) => assert_eq!(u16::from(frame.code), 1000),
        other => panic!("expected close 1000, got {other:?}"),
    }
}
