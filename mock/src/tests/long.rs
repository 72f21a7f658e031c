//! Long unpaced runs: `keep_audio = false`, timecoded audio, session rotation.

use std::time::Instant;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

use super::*;
use crate::{
    timecoded_s16le, ClientEventKind, MockServer, SessionEnd, StreamPosition, KEPT_ENDED,
    KEPT_FIRST,
};

/// One second of pcm_s16le 16 kHz per frame.
const FRAME_MS: u64 = 1000;

/// Streams `[from_ms, to_ms)` of timecoded audio unpaced on one session, then the empty frame;
/// returns (messages received, final text).
async fn session(server: &MockServer, from_ms: u64, to_ms: u64) -> (usize, String) {
    let client = Client::connect(&server.url()).await;
    let (mut sink, mut stream) = client.ws.split();
    // Read while writing, or both sides' buffers fill up.
    let reader = tokio::spawn(async move {
        let mut count = 0;
        let mut text = String::new();
        while let Some(Ok(message)) = stream.next().await {
            if let Message::Text(body) = message {
                let value: Value = serde_json::from_str(body.as_str()).unwrap();
                text.push_str(&final_text(std::slice::from_ref(&value)));
                count += 1;
                if value["finished"] == true {
                    break;
                }
            }
        }
        (count, text)
    });
    sink.send(Message::text(start_request(json!({})).to_string()))
        .await
        .unwrap();
    let mut at = from_ms;
    while at < to_ms {
        let ms = FRAME_MS.min(to_ms - at);
        sink.send(Message::binary(timecoded_s16le(16000, at, ms)))
            .await
            .unwrap();
        at += ms;
    }
    sink.send(Message::text("")).await.unwrap();
    let result = tokio::time::timeout(WAIT * 4, reader)
        .await
        .unwrap()
        .unwrap();
    let _ = sink.close().await;
    result
}

/// `total_ms` of audio in sessions of `session_ms` (each drained before the next starts).
async fn long_run(total_ms: u64, session_ms: u64) {
    let mut cfg = config();
    cfg.timecoded = true;
    cfg.keep_audio = false;
    cfg.script = Script::repeating(&script(), 3000, total_ms);
    let expected = cfg.script.transcript();
    let server = MockServer::start(cfg);
    let started = Instant::now();
    let mut said = Vec::new();
    let mut counts = Vec::new();
    let mut from = 0;
    while from < total_ms {
        let to = (from + session_ms).min(total_ms);
        let (count, text) = session(&server, from, to).await;
        said.push(text);
        counts.push(count);
        from = to;
    }
    let elapsed = started.elapsed();

    // Each session drains the words that started in its audio; the next one plays the words
    // from its stream position on: every word exactly once.
    let words: Vec<String> = said
        .iter()
        .flat_map(|t| t.split_whitespace().map(str::to_string))
        .collect();
    assert_eq!(words.join(" "), expected);

    assert!(server.wait_until(WAIT, |s| s.iter().all(|r| r
        .events
        .last()
        .is_some_and(|e| e.kind == ClientEventKind::Close))));
    let sessions = server.sessions();
    assert_eq!(sessions.len(), counts.len());
    for (i, record) in sessions.iter().enumerate() {
        let from = i as u64 * session_ms;
        let ms = session_ms.min(total_ms - from);
        assert_eq!(record.end, Some(SessionEnd::Finished));
        assert_eq!(
            record.position,
            StreamPosition::Timecode { offset_ms: from }
        );
        assert_eq!(record.audio_len, ms * 32);
        assert!(record.audio.is_empty());
        // Ended sessions shrink to their first and last entries (the close came after).
        assert!(record.events.len() <= KEPT_FIRST + KEPT_ENDED + 1);
        assert!(record.sent.len() <= KEPT_FIRST + KEPT_ENDED);
        let frames = ms.div_ceil(FRAME_MS);
        let audio_events = record.count_events(|k| matches!(k, ClientEventKind::Audio(_)));
        // Start request, audio frames, empty frame, close.
        assert_eq!(
            record.events.len() as u64 + record.events_dropped,
            frames + 3,
            "{audio_events}"
        );
        assert_eq!(
            record.sent.len() as u64 + record.sent_dropped,
            counts[i] as u64
        );
        // The first entries are kept.
        assert!(matches!(record.events[0].kind, ClientEventKind::Other(_)));
        assert_eq!(record.sent[0]["total_audio_proc_ms"], 1000);
        assert_eq!(record.sent.last().unwrap()["finished"], true);
    }
    eprintln!("{} s of audio in {elapsed:?}", total_ms / 1000);
}

#[tokio::test]
async fn ten_minutes_unpaced_in_two_sessions_keeps_records_small() {
    long_run(600_000, 300_000).await;
}

/// The real thing: 2 hours (230 MB) unpaced in 4 sessions; about a second.
#[tokio::test]
async fn two_hours_unpaced_in_four_sessions() {
    long_run(7_200_000, 1_800_000).await;
}

#[tokio::test]
async fn keep_audio_true_keeps_every_byte_and_entry() {
    let server = MockServer::start(config());
    let mut client = Client::connect(&server.url()).await;
    client.start(json!({})).await;
    client.chunks(3).await;
    client.text("").await;
    client.until_close().await;
    let record = &server.sessions()[0];
    assert_eq!(record.audio.len(), 3 * CHUNK);
    assert_eq!(record.audio_len, 3 * CHUNK as u64);
    assert_eq!((record.events_dropped, record.sent_dropped), (0, 0));
}
