//! Fault injection, one test per fault.

use std::time::Duration;

use serde_json::{json, Value};

use super::*;
use crate::{ClientEventKind, Fault, MockServer, SessionEnd};

fn server_with(faults: Vec<Fault>) -> MockServer {
    let mut cfg = config();
    cfg.session_faults = vec![faults];
    MockServer::start(cfg)
}

#[tokio::test]
async fn error_mid_stream() {
    let server = server_with(vec![Fault::service_unavailable_at(600)]);
    let mut client = Client::connect(&server.url()).await;
    client.start(json!({})).await;
    client.chunks(5).await;
    for _ in 0..4 {
        client.recv_json().await;
    }
    expect_service_unavailable(&mut client).await;
    let record = &server.sessions()[0];
    assert_eq!(record.end, Some(SessionEnd::Error { code: 503 }));
    assert_eq!(record.audio.len(), 5 * CHUNK);
    assert_eq!(record.sent_error_code(), Some(503));
}

#[tokio::test]
async fn error_right_after_the_start_request() {
    let server = server_with(vec![Fault::rate_limited()]);
    let mut client = Client::connect(&server.url()).await;
    client.start(json!({})).await;
    expect_error(
        &mut client,
        429,
        "limit_exceeded",
        "Your organization has exceeded max number of concurrent requests.",
    )
    .await;
    // Connections beyond `session_faults` use `default_faults` (none here).
    let mut client = Client::connect(&server.url()).await;
    client.start(json!({})).await;
    client.text("").await;
    let (messages, _) = client.until_close().await;
    assert_eq!(messages.last().unwrap()["finished"], true);
}

#[tokio::test]
async fn default_faults_apply_to_later_connections() {
    let mut cfg = config();
    cfg.session_faults = vec![vec![]];
    cfg.default_faults = vec![Fault::error_at(0, 500, "internal_error", "Boom.")];
    let server = MockServer::start(cfg);
    let mut client = Client::connect(&server.url()).await;
    client.start(json!({})).await;
    client.text("").await;
    client.until_close().await;
    for _ in 0..2 {
        let mut client = Client::connect(&server.url()).await;
        client.start(json!({})).await;
        expect_error(&mut client, 500, "internal_error", "Boom.").await;
    }
}

#[tokio::test]
async fn drop_without_close_frame() {
    let server = server_with(vec![Fault::DropAt { audio_ms: 360 }]);
    let mut client = Client::connect(&server.url()).await;
    client.start(json!({})).await;
    client.chunks(3).await;
    client.recv_json().await;
    client.recv_json().await;
    assert!(matches!(client.recv().await, Recv::Gone));
    assert!(server.wait_until(WAIT, |s| s[0].end == Some(SessionEnd::Dropped)));
    assert_eq!(server.sessions()[0].sent.len(), 2);
}

/// A session of six chunks, each answered, then the empty frame; returns the answers.
async fn six_chunks_then_the_end(server: &MockServer) -> (Client, Vec<Value>) {
    let mut client = Client::connect(&server.url()).await;
    client.start(json!({})).await;
    client.chunks(6).await;
    let mut heard = Vec::new();
    for _ in 0..6 {
        heard.push(client.recv_json().await);
    }
    client.text("").await;
    (client, heard)
}

#[tokio::test]
async fn no_finished_keeps_the_connection_open() {
    let server = server_with(vec![Fault::NoFinished]);
    let (mut client, _) = six_chunks_then_the_end(&server).await;
    let drain = client.recv_json().await;
    assert_eq!(final_text(&[drain]), "Hello, GStreamer");
    assert!(client.nothing_within(Duration::from_millis(300)).await);
    client.text(r#"{"type":"keepalive"}"#).await;
    client.close().await;
    assert!(server.wait_until(WAIT, |s| s[0].end == Some(SessionEnd::ClientClosed)));
    let record = &server.sessions()[0];
    assert!(!record.sent_finished());
    assert_eq!(record.events.last().unwrap().kind, ClientEventKind::Close);
    assert_eq!(record.count_events(|k| *k == ClientEventKind::Keepalive), 1);
}

#[tokio::test]
async fn silent_after_end_leaves_the_words_non_final_and_never_finishes() {
    let mut cfg = config();
    cfg.auto_final_lag_ms = None;
    cfg.default_faults = vec![Fault::SilentAfterEnd];
    let server = MockServer::start(cfg);
    let (mut client, heard) = six_chunks_then_the_end(&server).await;
    assert_eq!(final_text(&heard), "");
    assert!(heard
        .iter()
        .flat_map(tokens)
        .any(|t| t["is_final"] == false));
    assert!(client.nothing_within(Duration::from_millis(300)).await);
    client.close().await;
    assert!(server.wait_until(WAIT, |s| s[0].end == Some(SessionEnd::ClientClosed)));
    let record = &server.sessions()[0];
    assert!(!record.sent_finished());
    assert_eq!(record.sent.len(), 6);
}

#[tokio::test]
async fn drop_after_end_goes_away_without_another_word() {
    let server = server_with(vec![Fault::DropAfterEnd]);
    let (mut client, _) = six_chunks_then_the_end(&server).await;
    assert!(matches!(client.recv().await, Recv::Gone));
    assert!(server.wait_until(WAIT, |s| s[0].end == Some(SessionEnd::Dropped)));
    assert_eq!(server.sessions()[0].sent.len(), 6);
}

#[tokio::test]
async fn close_before_finished() {
    let server = server_with(vec![Fault::CloseBeforeFinished]);
    let mut client = Client::connect(&server.url()).await;
    client.start(json!({})).await;
    client.chunks(6).await;
    client.text("").await;
    let (messages, end) = client.until_close().await;
    assert_closed_normally(&end);
    assert_eq!(messages.len(), 7);
    assert!(messages.iter().all(|m| m.get("finished").is_none()));
    assert_eq!(final_text(&messages), "Hello, GStreamer");
    assert!(server.wait_until(WAIT, |s| s[0].end == Some(SessionEnd::ServerClosed)));
}

#[tokio::test]
async fn stall_stops_reading_for_a_while() {
    let stall = Duration::from_millis(400);
    let server = server_with(vec![Fault::StallReadingAt {
        audio_ms: 240,
        duration: stall,
    }]);
    let mut client = Client::connect(&server.url()).await;
    client.start(json!({})).await;
    client.chunks(10).await;
    for _ in 0..10 {
        client.recv_json().await;
    }
    let record = &server.sessions()[0];
    let audio: Vec<_> = record
        .events
        .iter()
        .filter(|e| matches!(e.kind, ClientEventKind::Audio(_)))
        .collect();
    assert!(
        audio[2].at - audio[1].at >= stall,
        "{:?}",
        audio[2].at - audio[1].at
    );
    assert!(record.end.is_none());
}

#[tokio::test]
async fn session_limit() {
    let server = server_with(vec![Fault::SessionLimit { audio_ms: 480 }]);
    let mut client = Client::connect(&server.url()).await;
    client.start(json!({})).await;
    client.chunks(4).await;
    for _ in 0..3 {
        client.recv_json().await;
    }
    expect_error(&mut client, 400, "invalid_request", "Audio is too long.").await;
    assert_eq!(
        server.sessions()[0].end,
        Some(SessionEnd::Error { code: 400 })
    );
}

#[tokio::test]
async fn default_faults_hit_every_connection_at_its_own_audio_position() {
    let mut cfg = config();
    cfg.default_faults = vec![Fault::service_unavailable_at(1000)];
    let server = MockServer::start(cfg);
    for _ in 0..3 {
        let mut client = Client::connect(&server.url()).await;
        client.start(json!({})).await;
        client.chunks(9).await; // 1080 ms: the fault fires with the 9th chunk
        for i in 0..8 {
            assert_eq!(
                client.recv_json().await["total_audio_proc_ms"],
                120 * (i + 1)
            );
        }
        let (messages, end) = client.until_close().await;
        assert_eq!(messages.len(), 1);
        assert_eq!(messages[0]["error_code"], 503);
        assert_closed_normally(&end);
    }
    assert!(server.wait_until(WAIT, |s| s.len() == 3
        && s.iter()
            .all(|r| r.end == Some(SessionEnd::Error { code: 503 }))));
    for record in server.sessions() {
        assert_eq!(record.audio_len, 9 * CHUNK as u64);
    }
}

#[tokio::test]
async fn error_helpers_send_soniox_codes_and_types() {
    let cases = [
        (
            Fault::request_timeout_at(240),
            408,
            "request_timeout",
            "Request timeout.",
        ),
        (
            Fault::rate_limited_at(240),
            429,
            "limit_exceeded",
            "Rate limit for your organization has been exceeded.",
        ),
        (
            Fault::internal_error_at(240),
            500,
            "internal_error",
            "The server had an error processing your request.",
        ),
        (
            Fault::bad_gateway_at(240),
            502,
            "internal_error",
            "Bad gateway.",
        ),
        (
            Fault::service_unavailable_at(240),
            503,
            "service_unavailable",
            crate::faults::SERVICE_UNAVAILABLE,
        ),
    ];
    let mut cfg = config();
    cfg.session_faults = cases.iter().map(|c| vec![c.0.clone()]).collect();
    let server = MockServer::start(cfg);
    for (i, (_, code, error_type, message)) in cases.iter().enumerate() {
        let mut client = Client::connect(&server.url()).await;
        client.start(json!({})).await;
        client.chunks(2).await;
        assert_eq!(client.recv_json().await["total_audio_proc_ms"], 120);
        expect_error(&mut client, *code, error_type, message).await;
        assert!(server.wait_until(WAIT, |s| s[i].end
            == Some(SessionEnd::Error { code: *code })));
    }
}

#[tokio::test]
async fn no_finished_stalls_every_connection_when_default() {
    let mut cfg = config();
    cfg.default_faults = vec![Fault::NoFinished];
    let server = MockServer::start(cfg);
    for i in 0..2 {
        let mut client = Client::connect(&server.url()).await;
        client.start(json!({})).await;
        client.chunks(1).await; // 120 ms: no word started, nothing to drain
        client.recv_json().await;
        client.text("").await;
        assert!(client.nothing_within(Duration::from_millis(200)).await);
        client.close().await;
        assert!(server.wait_until(WAIT, |s| s[i].end == Some(SessionEnd::ClientClosed)));
        assert!(!server.sessions()[i].sent_finished());
    }
}

#[tokio::test]
async fn a_healthy_server_answers_pings() {
    let server = server_with(vec![]);
    let mut client = Client::connect(&server.url()).await;
    client.start(json!({})).await;
    client.ping().await;
    let pong = client.raw_frame(WAIT).await;
    assert_eq!(pong, Some(Message::Pong(vec![7].into())));
    client.close().await;
    let record = &server.sessions()[0];
    assert_eq!(record.count_events(|k| *k == ClientEventKind::Ping), 1);
}

#[tokio::test]
async fn half_open_answers_nothing_and_keeps_the_connection_open() {
    let server = server_with(vec![Fault::HalfOpenAt { audio_ms: 240 }]);
    let mut client = Client::connect(&server.url()).await;
    client.start(json!({})).await;
    client.chunks(3).await;
    client.recv_json().await; // 120 ms
    assert!(server.wait_until(WAIT, |s| s[0].end == Some(SessionEnd::HalfOpen)));
    client.ping().await;
    assert_eq!(client.raw_frame(Duration::from_millis(300)).await, None);
    let record = &server.sessions()[0];
    assert_eq!(
        record.audio.len(),
        2 * CHUNK,
        "nothing read after the fault"
    );
}

#[tokio::test]
async fn mute_reads_everything_and_answers_nothing() {
    let server = server_with(vec![Fault::MuteAt { audio_ms: 240 }]);
    let mut client = Client::connect(&server.url()).await;
    client.start(json!({})).await;
    client.chunks(2).await;
    client.recv_json().await; // 120 ms; at 240 ms it falls silent
                              // Far more than socket buffers hold: the server keeps reading.
    for _ in 0..200 {
        client.binary(vec![0; 64 << 10]).await;
    }
    client.ping().await;
    client.text(r#"{"type":"finalize"}"#).await;
    assert_eq!(client.raw_frame(Duration::from_millis(300)).await, None);
    drop(client);
    assert!(server.wait_until(WAIT, |s| s[0].end == Some(SessionEnd::Muted)));
}

#[tokio::test]
async fn send_at_sends_any_text_then_goes_on() {
    let server = server_with(vec![Fault::send_at(240, "{\"tokens\": null}")]);
    let mut client = Client::connect(&server.url()).await;
    client.start(json!({})).await;
    client.chunks(3).await;
    client.recv_json().await;
    let garbage = client.raw_frame(WAIT).await;
    assert_eq!(garbage, Some(Message::text("{\"tokens\": null}")));
    client.recv_json().await; // the 240 ms result
    client.recv_json().await; // 360 ms
    assert_eq!(
        server.sessions()[0].sent[1],
        Value::String("{\"tokens\": null}".into())
    );
}

#[tokio::test]
async fn repeat_finals_sends_the_latest_final_message_again() {
    let server = server_with(vec![Fault::RepeatFinalsAt { audio_ms: 1800 }]);
    let mut client = Client::connect(&server.url()).await;
    client.start(json!({})).await;
    client.chunks(15).await;
    let messages: Vec<Value> = {
        let mut all = Vec::new();
        for _ in 0..16 {
            all.push(client.recv_json().await);
        }
        all
    };
    let with_finals: Vec<&Value> = messages
        .iter()
        .filter(|m| tokens(m).iter().any(|t| t["is_final"] == true))
        .collect();
    assert_eq!(
        with_finals.len(),
        2,
        "the first finals, then the same again"
    );
    assert_eq!(with_finals[0], with_finals[1]);
}

#[tokio::test]
async fn finished_at_finishes_before_the_end_of_the_audio() {
    let server = server_with(vec![Fault::FinishedAt { audio_ms: 360 }]);
    let mut client = Client::connect(&server.url()).await;
    client.start(json!({})).await;
    client.chunks(3).await;
    let (messages, end) = client.until_close().await;
    let finished = messages.last().unwrap();
    assert_eq!(finished["finished"], true);
    assert_eq!(finished["final_audio_proc_ms"], 360);
    assert_closed_normally(&end);
    assert_eq!(server.sessions()[0].end, Some(SessionEnd::FinishedEarly));
}

#[tokio::test]
async fn error_after_end_refuses_the_drain() {
    let server = server_with(vec![Fault::rate_limited_after_end()]);
    let (mut client, _) = six_chunks_then_the_end(&server).await;
    expect_error(
        &mut client,
        429,
        "limit_exceeded",
        "Rate limit for your organization has been exceeded.",
    )
    .await;
}

#[tokio::test]
async fn slow_reading_takes_audio_at_the_given_speed() {
    let server = server_with(vec![Fault::SlowReadingAt {
        audio_ms: 0,
        speed: 2.0,
        duration: Duration::from_secs(5),
    }]);
    let mut client = Client::connect(&server.url()).await;
    client.start(json!({})).await;
    let start = std::time::Instant::now();
    client.chunks(5).await;
    for _ in 0..5 {
        client.recv_json().await;
    }
    // 600 ms of audio at twice real time.
    assert!(
        start.elapsed() >= Duration::from_millis(290),
        "{:?}",
        start.elapsed()
    );
}

#[tokio::test]
async fn a_quiet_server_says_nothing_while_no_word_is_due() {
    let mut cfg = config();
    cfg.quiet = true;
    cfg.script = Script::parse("200 600 Hello.\n").unwrap();
    let server = MockServer::start(cfg);
    let mut client = Client::connect(&server.url()).await;
    client.start(json!({})).await;
    client.chunks(30).await; // 3.6 s: the word is final at 1.6 s
    let mut heard = Vec::new();
    while let Some(message) = client.try_recv_json().await {
        heard.push(message);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    while let Some(message) = client.try_recv_json().await {
        heard.push(message);
    }
    assert!(heard.iter().all(|m| !tokens(m).is_empty()), "{heard:?}");
    assert_eq!(final_text(&heard), "Hello.");
    // A finalize is still answered, with how far the audio is final.
    client.text(r#"{"type":"finalize"}"#).await;
    let fin = client.recv_json().await;
    assert_eq!(tokens(&fin)[0]["text"], "<fin>");
    assert_eq!(fin["final_audio_proc_ms"], 3600);
}
