//! Results while streaming: tails, automatic finals, endpoints, finalize, end of audio.

use serde_json::{json, Value};

use super::*;
use crate::{ClientEventKind, MockServer, SessionEnd};

fn non_final_texts(message: &Value) -> Vec<String> {
    tokens(message)
        .iter()
        .filter(|t| t["is_final"] == false)
        .map(|t| t["text"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn full_session_streams_tails_then_finals_then_finished() {
    let server = MockServer::start(config());
    let mut client = Client::connect(&server.url()).await;
    client.start(json!({})).await;
    client.chunks(27).await; // 3240 ms
    client.text("").await;
    let (messages, end) = client.until_close().await;
    assert_closed_normally(&end);

    // One result per 120 ms, then the drain (" Bye" was still pending), then finished.
    assert_eq!(messages.len(), 27 + 2);
    for (i, message) in messages.iter().take(27).enumerate() {
        assert_eq!(message["total_audio_proc_ms"], 120 * (i as u64 + 1));
        assert!(message.get("finished").is_none());
    }
    assert_eq!(
        messages.last().unwrap(),
        &json!({"tokens": [], "final_audio_proc_ms": 3240, "total_audio_proc_ms": 3240, "finished": true})
    );
    let drain = &messages[27];
    assert_eq!(final_text(std::slice::from_ref(drain)), " Bye");
    assert_eq!(drain["final_audio_proc_ms"], 3240);

    // The interim guess differs from the final text and later changes.
    assert_eq!(non_final_texts(&messages[2]), ["Hel"]); // 360 ms
    assert_eq!(non_final_texts(&messages[5]), ["He", "llo", ",", " GStre"]); // 720 ms
    assert_eq!(
        non_final_texts(&messages[9]),
        ["He", "llo", ",", " GStr", "eamer"]
    ); // 1200 ms

    // Every final token exactly once, in order; final progress never goes back.
    assert_eq!(final_text(&messages), script().final_text());
    let finals = messages
        .iter()
        .flat_map(tokens)
        .filter(|t| t["is_final"] == true)
        .count();
    assert_eq!(finals, 9);
    let progress: Vec<u64> = messages
        .iter()
        .map(|m| m["final_audio_proc_ms"].as_u64().unwrap())
        .collect();
    assert!(progress.windows(2).all(|w| w[0] <= w[1]), "{progress:?}");
    let first = tokens(&messages[13]); // 1680 ms: "Hello," turned final at 1600
    assert_eq!(
        first[0],
        json!({"text":"He","start_ms":200,"end_ms":336,"confidence":0.95,"is_final":true})
    );
    assert!(messages
        .iter()
        .flat_map(tokens)
        .all(|t| t["text"] != "<end>" && t["text"] != "<fin>"));

    assert!(server.wait_until(WAIT, |s| s[0]
        .count_events(|k| *k == ClientEventKind::Close)
        == 1));
    let record = &server.sessions()[0];
    assert_eq!(record.end, Some(SessionEnd::Finished));
    assert_eq!(record.sent, messages);
    assert_eq!(record.audio.len(), 27 * CHUNK);
    assert_eq!(
        record.count_events(|k| matches!(k, ClientEventKind::Audio(CHUNK))),
        27
    );
    assert_eq!(
        record.count_events(|k| *k == ClientEventKind::EndOfAudio),
        1
    );
    assert_eq!(record.events[5].audio_bytes_before, 4 * CHUNK);
    assert_eq!(record.final_text(), script().final_text());
    assert!(record.sent_finished());
}

#[tokio::test]
async fn endpoints_diarization_and_language() {
    let server = MockServer::start(config());
    let mut client = Client::connect(&server.url()).await;
    client
        .start(json!({
            "enable_endpoint_detection": true, "enable_speaker_diarization": true,
            "enable_language_identification": true, "language_hints": ["de"]
        }))
        .await;
    client.chunks(31).await; // 3720 ms: both utterances reach their endpoint
    let messages = client.until_token("<end>").await;
    let last = messages.last().unwrap();
    assert_eq!(last["total_audio_proc_ms"], 2280);
    assert_eq!(last["final_audio_proc_ms"], 2280);
    let texts: Vec<Value> = tokens(last).iter().map(|t| t["text"].clone()).collect();
    assert_eq!(texts, [" GStr", "eamer", " wo", "rld", ".", "<end>"]);
    assert_eq!(tokens(last)[5], json!({"text": "<end>", "is_final": true}));
    assert_eq!(tokens(last)[0]["speaker"], "1");
    assert_eq!(tokens(last)[0]["language"], "de");

    let messages = client.until_token("<end>").await;
    let last = messages.last().unwrap();
    assert_eq!(last["total_audio_proc_ms"], 3480);
    assert_eq!(tokens(last)[0]["text"], " Bye");
    assert_eq!(tokens(last)[0]["speaker"], "2");
    client.text("").await;
    let (rest, _) = client.until_close().await;
    assert_eq!(rest.last().unwrap()["finished"], true);
    let record = &server.sessions()[0];
    assert_eq!(record.count_tokens("<end>"), 2);
    assert_eq!(record.final_text(), script().final_text());
}

#[tokio::test]
async fn endpoints_can_be_disabled_by_config() {
    let mut cfg = config();
    cfg.endpoints = false;
    let server = MockServer::start(cfg);
    let mut client = Client::connect(&server.url()).await;
    client
        .start(json!({"enable_endpoint_detection": true}))
        .await;
    client.chunks(31).await;
    client.text("").await;
    client.until_close().await;
    assert_eq!(server.sessions()[0].count_tokens("<end>"), 0);
}

#[tokio::test]
async fn finalize_turns_the_words_heard_final_and_adds_fin() {
    let mut cfg = config();
    cfg.auto_final_lag_ms = None;
    let server = MockServer::start(cfg);
    let mut client = Client::connect(&server.url()).await;
    client.start(json!({})).await;
    client.chunks(6).await; // 720 ms
    client
        .text(r#"{"type":"finalize","trailing_silence_ms":300}"#)
        .await;
    let messages = client.until_token("<fin>").await;
    assert_eq!(messages.len(), 7);
    let fin = messages.last().unwrap();
    let texts: Vec<Value> = tokens(fin).iter().map(|t| t["text"].clone()).collect();
    // "GStreamer" (650–1200 ms) is still being spoken: it stays non-final.
    assert_eq!(texts, ["He", "llo", ",", "<fin>"]);
    assert_eq!(
        (
            fin["final_audio_proc_ms"].as_u64(),
            fin["total_audio_proc_ms"].as_u64()
        ),
        (Some(650), Some(720))
    );

    // Without automatic finals nothing else turns final until the end of audio.
    client.chunks(20).await; // 3120 ms
    client.text(r#"{"type":"finalize"}"#).await;
    let messages = client.until_token("<fin>").await;
    assert!(messages[..messages.len() - 1]
        .iter()
        .all(|m| final_text(std::slice::from_ref(m)).is_empty()));
    assert_eq!(
        non_final_texts(&messages[messages.len() - 2]),
        [" GStr", "eamer", " wo", "rld", ".", " Bye"]
    );
    assert_eq!(final_text(&messages), " GStreamer world. Bye");
    client.text("").await;
    let (rest, _) = client.until_close().await;
    assert_eq!(rest.len(), 1, "nothing left to drain: {rest:?}");
    let record = &server.sessions()[0];
    assert_eq!(record.final_text(), script().final_text());
    assert_eq!(record.count_tokens("<fin>"), 2);
    let finalizes: Vec<_> = record
        .events
        .iter()
        .filter_map(|e| match e.kind {
            ClientEventKind::Finalize {
                trailing_silence_ms,
            } => Some((trailing_silence_ms, e.audio_bytes_before)),
            _ => None,
        })
        .collect();
    assert_eq!(finalizes, [(Some(300), 6 * CHUNK), (None, 26 * CHUNK)]);
}

#[tokio::test]
async fn words_whose_audio_never_arrived_are_never_sent() {
    let server = MockServer::start(config());
    let mut client = Client::connect(&server.url()).await;
    client.start(json!({})).await;
    client.chunks(6).await; // 720 ms: "GStreamer" started at 650
    client.binary(Vec::new()).await; // empty binary frame = end of audio
    let (messages, _) = client.until_close().await;
    assert_eq!(final_text(&messages), "Hello, GStreamer");
    assert_eq!(messages.last().unwrap()["total_audio_proc_ms"], 720);
}

#[tokio::test]
async fn timeline_follows_the_declared_format() {
    let server = MockServer::start(config());
    let mut client = Client::connect(&server.url()).await;
    client
        .start(json!({"audio_format": "mulaw", "sample_rate": 8000}))
        .await;
    client.binary(vec![0xff; 8000]).await;
    assert_eq!(client.recv_json().await["total_audio_proc_ms"], 1000);

    let mut client = Client::connect(&server.url()).await;
    client
        .start(json!({"audio_format": "pcm_f32le", "sample_rate": 48000, "num_channels": 2}))
        .await;
    client.binary(vec![0; 384 * 100]).await; // 100 ms: below the response interval
    client.binary(vec![0; 384 * 100 + 383]).await; // 200.997 ms
    assert_eq!(client.recv_json().await["total_audio_proc_ms"], 200);
}

#[tokio::test]
async fn records_are_readable_while_running_and_wait_until_times_out() {
    let server = MockServer::start(config());
    assert!(!server.wait_until(std::time::Duration::from_millis(50), |s| !s.is_empty()));
    let mut client = Client::connect(&server.url()).await;
    client.start(json!({})).await;
    client.chunks(2).await;
    client.recv_json().await;
    client.recv_json().await;
    assert!(server.wait_until(WAIT, |s| s.len() == 1 && s[0].audio.len() == 2 * CHUNK));
    assert_eq!(server.sessions()[0].end, None);
    assert_eq!(server.connection_count(), 1);
    client.close().await;
    assert!(server.wait_until(WAIT, |s| s[0].end == Some(SessionEnd::ClientClosed)));
}

#[tokio::test]
async fn dropping_the_server_closes_sessions_and_the_port() {
    let server = MockServer::start(config());
    let url = server.url();
    let mut client = Client::connect(&url).await;
    client.start(json!({})).await;
    drop(server);
    assert!(matches!(client.recv().await, Recv::Gone | Recv::Closed(_)));
    assert!(Client::try_connect(&url, &[]).await.is_err());
}

#[tokio::test]
async fn a_session_asked_to_translate_sends_translation_tokens_after_their_originals() {
    let server = MockServer::start(config());
    let mut client = Client::connect(&server.url()).await;
    client
        .start(json!({"translation": {"type": "one_way", "target_language": "de"}}))
        .await;
    client.chunks(27).await;
    client.text("").await;
    let (messages, end) = client.until_close().await;
    assert_closed_normally(&end);
    let all: Vec<Value> = messages.iter().flat_map(tokens).collect();
    let finals: Vec<&Value> = all.iter().filter(|t| t["is_final"] == true).collect();
    let translated: String = finals
        .iter()
        .filter(|t| t["translation_status"] == "translation")
        .map(|t| t["text"].as_str().unwrap())
        .collect();
    assert!(translated.starts_with("[de] Hello,"), "{translated}");
    assert!(translated.ends_with("[de] Bye"), "{translated}");
    for t in &finals {
        if t["translation_status"] == "translation" {
            assert!(
                t.get("start_ms").is_none() && t.get("end_ms").is_none(),
                "{t}"
            );
            assert_eq!(
                (&t["language"], &t["source_language"]),
                (&json!("de"), &json!("en"))
            );
        } else {
            assert_eq!(t["translation_status"], "original", "{t}");
        }
    }
    // The spoken words alone are still the script, each once.
    let spoken: String = finals
        .iter()
        .filter(|t| t["translation_status"] == "original")
        .map(|t| t["text"].as_str().unwrap())
        .collect();
    assert_eq!(spoken, script().final_text());
}
