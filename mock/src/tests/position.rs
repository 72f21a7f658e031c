//! Position-aware sessions: reference audio and timecoded audio.

use std::sync::Arc;

use serde_json::{json, Value};

use super::*;
use crate::{
    timecoded_s16le, wav_data, ClientEventKind, Fault, MockServer, SessionEnd, StreamPosition,
};

/// pcm_s16le, 16 kHz, mono.
const BYTES_PER_MS: usize = 32;

fn sample_path(name: &str) -> String {
    format!("{}/../samples/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn sample_audio() -> Vec<u8> {
    let wav = std::fs::read(sample_path("sample.wav")).unwrap();
    wav_data(&wav).unwrap().to_vec()
}

fn sample_script() -> Script {
    Script::load(sample_path("sample.script")).unwrap()
}

fn sample_config() -> MockConfig {
    let mut cfg = MockConfig::new(KEY, sample_script());
    cfg.reference_audio = Some(Arc::new(sample_audio()));
    cfg
}

/// Sends `audio` in 120 ms chunks (the last may be shorter), reading results as they come.
async fn stream(client: &mut Client, audio: &[u8]) -> Vec<Value> {
    let mut messages = Vec::new();
    for chunk in audio.chunks(CHUNK) {
        client.binary(chunk.to_vec()).await;
        while let Some(message) = client.try_recv_json().await {
            messages.push(message);
        }
    }
    messages
}

/// The final text a session with this stream position says once it has heard `heard_ms`.
fn expected_text(script: &Script, offset_ms: u64, heard_ms: u64) -> String {
    let mut heard = script.starting_at(offset_ms);
    for u in &mut heard.utterances {
        u.words.retain(|w| w.start_ms < heard_ms);
    }
    heard.utterances.retain(|u| !u.words.is_empty());
    heard.final_text()
}

#[tokio::test]
async fn replayed_audio_plays_the_script_from_its_stream_position() {
    let server = MockServer::start(sample_config());
    let audio = sample_audio();
    let script = sample_script();

    // Session 1: the first 3 s, then the connection is lost.
    let mut client = Client::connect(&server.url()).await;
    client.start(json!({})).await;
    let mut first = stream(&mut client, &audio[..3000 * BYTES_PER_MS]).await;
    while first
        .last()
        .is_none_or(|m| m["total_audio_proc_ms"] != 3000)
    {
        first.push(client.recv_json().await);
    }
    // The stream starts with 500 ms of silence, which matches every silent place of the
    // reference: the first result waits until the speech makes the position clear.
    assert_eq!(first[0]["total_audio_proc_ms"], 600);
    let final_ms = first.last().unwrap()["final_audio_proc_ms"]
        .as_u64()
        .unwrap();
    assert_eq!(final_ms, 2176); // "Soniox" (2176 ms) is still pending
    client.close().await;
    assert_eq!(final_text(&first), "Hello, and welcome to the");

    // Session 2 replays from there to the end of the stream.
    let mut client = Client::connect(&server.url()).await;
    client.start(json!({})).await;
    let replay = &audio[final_ms as usize * BYTES_PER_MS..];
    let mut messages = stream(&mut client, replay).await;
    client.text("").await;
    messages.extend(client.until_close().await.0);
    let heard_ms = (replay.len() / BYTES_PER_MS) as u64;
    assert_eq!(
        final_text(&messages),
        expected_text(&script, final_ms, heard_ms)
    );
    assert!(final_text(&messages).starts_with("Soniox plugin for GStreamer."));
    // Both sessions together said every word exactly once.
    let words = |text: &str| {
        text.split_whitespace()
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    let mut said = words(&final_text(&first));
    said.extend(words(&final_text(&messages)));
    assert_eq!(said, words(&script.transcript()));

    // Token times count from the session's first audio byte.
    let soniox = messages
        .iter()
        .flat_map(tokens)
        .find(|t| t["is_final"] == true)
        .unwrap();
    assert_eq!(soniox["text"], "Son");
    assert_eq!(soniox["start_ms"], 0);
    let it = messages
        .iter()
        .flat_map(tokens)
        .find(|t| t["text"] == " It" && t["is_final"] == true)
        .unwrap();
    assert_eq!(it["start_ms"], 5155 - final_ms);

    let sessions = server.sessions();
    assert_eq!(
        sessions[0].position,
        StreamPosition::Reference {
            offset_ms: 0,
            unique: true
        }
    );
    assert_eq!(sessions[0].stream_offset_ms, Some(0));
    assert_eq!(
        sessions[1].position,
        StreamPosition::Reference {
            offset_ms: final_ms,
            unique: true
        }
    );
    assert_eq!(sessions[1].stream_offset_ms, Some(final_ms));
    assert_eq!(sessions[1].end, Some(SessionEnd::Finished));
}

#[tokio::test]
async fn a_session_starting_in_silence_waits_until_its_position_is_clear() {
    let server = MockServer::start(sample_config());
    let audio = sample_audio();
    // 4500 ms lies in the silence between the first two utterances (4054 … 5155 ms).
    let mut client = Client::connect(&server.url()).await;
    client.start(json!({})).await;
    let messages = stream(
        &mut client,
        &audio[4500 * BYTES_PER_MS..7500 * BYTES_PER_MS],
    )
    .await;
    client.text("").await;
    let (rest, _) = client.until_close().await;
    let first = messages.first().or(rest.first()).unwrap();
    // Speech starts 655 ms into the session: until then the audio matches every silent place.
    let first_total = first["total_audio_proc_ms"].as_u64().unwrap();
    assert!((655..=720).contains(&first_total), "{first}");
    let record = &server.sessions()[0];
    assert_eq!(record.stream_offset_ms, Some(4500));
    let all: Vec<Value> = messages.into_iter().chain(rest).collect();
    assert_eq!(
        final_text(&all),
        expected_text(&sample_script(), 4500, 3000)
    );
    let it = all
        .iter()
        .flat_map(tokens)
        .find(|t| t["is_final"] == true)
        .unwrap();
    assert_eq!(
        (it["text"].as_str(), it["start_ms"].as_u64()),
        (Some("It"), Some(655))
    );
}

#[tokio::test]
async fn finalize_and_end_of_audio_decide_a_pending_position() {
    let server = MockServer::start(sample_config());
    let audio = sample_audio();
    // 300 ms of leading silence: the position is still ambiguous when finalize comes.
    let mut client = Client::connect(&server.url()).await;
    client.start(json!({})).await;
    client.binary(audio[..300 * BYTES_PER_MS].to_vec()).await;
    client.text(r#"{"type":"finalize"}"#).await;
    let fin = client.recv_json().await;
    assert_eq!(
        fin,
        json!({"tokens":[{"text":"<fin>","is_final":true}],"final_audio_proc_ms":300,"total_audio_proc_ms":300})
    );
    assert_eq!(
        server.sessions()[0].position,
        StreamPosition::Reference {
            offset_ms: 0,
            unique: false
        }
    );
    client.close().await;

    // Finalize before any audio: only <fin>; the position stays pending until audio comes.
    let mut client = Client::connect(&server.url()).await;
    client.start(json!({})).await;
    client.text(r#"{"type":"finalize"}"#).await;
    assert_eq!(
        tokens(&client.recv_json().await),
        [json!({"text":"<fin>","is_final":true})]
    );
    assert_eq!(server.sessions()[1].position, StreamPosition::Pending);
    let messages = stream(
        &mut client,
        &audio[1000 * BYTES_PER_MS..1500 * BYTES_PER_MS],
    )
    .await;
    client.text("").await;
    let (rest, _) = client.until_close().await;
    assert_eq!(server.sessions()[1].stream_offset_ms, Some(1000));
    let all: Vec<Value> = messages.into_iter().chain(rest).collect();
    assert_eq!(final_text(&all), "welcome");
}

#[tokio::test]
async fn audio_not_in_the_reference_plays_the_script_from_zero() {
    let server = MockServer::start(sample_config());
    let mut client = Client::connect(&server.url()).await;
    client.start(json!({})).await;
    // A different format than the reference: its bytes are not found.
    let noise: Vec<u8> = (0..2000 * BYTES_PER_MS)
        .map(|i| (i * 7 % 251) as u8)
        .collect();
    let messages = stream(&mut client, &noise).await;
    client.text("").await;
    let (rest, _) = client.until_close().await;
    let all: Vec<Value> = messages.into_iter().chain(rest).collect();
    assert_eq!(final_text(&all), "Hello, and welcome to the");
    let record = &server.sessions()[0];
    assert_eq!(record.position, StreamPosition::NotFound);
    assert_eq!(record.stream_offset_ms, None);
    // The first result came with the first chunks: 640 bytes decide "not found".
    assert_eq!(all[0]["total_audio_proc_ms"], 120);
}

#[tokio::test]
async fn without_reference_or_timecodes_sessions_are_untracked() {
    let server = MockServer::start(config());
    let mut client = Client::connect(&server.url()).await;
    client.start(json!({})).await;
    client.chunks(1).await;
    assert_eq!(client.recv_json().await["total_audio_proc_ms"], 120);
    let record = &server.sessions()[0];
    assert_eq!(record.position, StreamPosition::Untracked);
    assert_eq!(record.stream_offset_ms, None);
}

fn timecoded_config(total_ms: u64) -> MockConfig {
    let mut cfg = config();
    cfg.timecoded = true;
    cfg.script = Script::repeating(&script(), 3000, total_ms);
    cfg
}

#[tokio::test]
async fn timecoded_audio_gives_the_position_at_any_offset() {
    let server = MockServer::start(timecoded_config(3_600_000));
    // 1 000 123 ms is not on a 10 ms frame boundary: the first frame header is 7 ms in.
    let offset = 1_000_123;
    let audio = timecoded_s16le(16000, offset, 3000);
    let mut client = Client::connect(&server.url()).await;
    client
        .start(json!({"enable_endpoint_detection": true}))
        .await;
    let messages = stream(&mut client, &audio).await;
    client.text("").await;
    let (rest, _) = client.until_close().await;
    let all: Vec<Value> = messages.into_iter().chain(rest).collect();
    // Copy 333 of the unit starts at 999 000 ms: its "world." (1250 ms in) is the first word
    // at or after the offset; then copy 334 at 1 002 000 ms.
    assert_eq!(final_text(&all), "world. Bye Hello, GStreamer");
    assert_eq!(
        final_text(&all),
        expected_text(&server_script(3_600_000), offset, 3000)
    );
    let finals: Vec<Value> = all
        .iter()
        .flat_map(tokens)
        .filter(|t| t["is_final"] == true)
        .collect();
    assert_eq!(finals[0]["text"], "wo");
    assert_eq!(finals[0]["start_ms"], 1_000_250 - offset);
    let bye = finals.iter().find(|t| t["text"] == " Bye").unwrap();
    assert_eq!(bye["start_ms"], 1_001_600 - offset);
    assert_eq!(bye["end_ms"], 1_001_900 - offset);
    // Endpoints are due 500 ms after each utterance's last word (577 and 1777 ms on the
    // session's timeline) and sent with the chunk that reaches them.
    let ends: Vec<&Value> = all
        .iter()
        .filter(|m| tokens(m).iter().any(|t| t["text"] == "<end>"))
        .map(|m| &m["total_audio_proc_ms"])
        .collect();
    assert_eq!(ends, [1080, 2280]);
    let record = &server.sessions()[0];
    assert_eq!(
        record.position,
        StreamPosition::Timecode { offset_ms: offset }
    );
    assert_eq!(record.stream_offset_ms, Some(offset));
    assert_eq!(all[0]["total_audio_proc_ms"], 120);
}

fn server_script(total_ms: u64) -> Script {
    Script::repeating(&script(), 3000, total_ms)
}

#[tokio::test]
async fn timecodes_need_pcm_s16le_mono() {
    let server = MockServer::start(timecoded_config(60_000));
    let mut client = Client::connect(&server.url()).await;
    client.start(json!({"num_channels": 2})).await;
    client.binary(timecoded_s16le(16000, 5000, 240)).await;
    client.recv_json().await;
    assert_eq!(server.sessions()[0].position, StreamPosition::NotFound);

    // Plain silence has no timecode.
    let mut client = Client::connect(&server.url()).await;
    client.start(json!({})).await;
    client.chunks(1).await;
    client.recv_json().await;
    assert_eq!(server.sessions()[1].position, StreamPosition::NotFound);
}

/// A session at stream position 400 s that sends 480 ms, then 120 ms, and gets a 503.
async fn failing_at_400_6_s(server: &MockServer) {
    let mut client = Client::connect(&server.url()).await;
    client.start(json!({})).await;
    client.binary(timecoded_s16le(16000, 400_000, 480)).await;
    client.recv_json().await;
    client.binary(timecoded_s16le(16000, 400_480, 120)).await;
    expect_service_unavailable(&mut client).await;
}

#[tokio::test]
async fn faults_count_the_sessions_own_audio_not_its_stream_position() {
    let mut cfg = timecoded_config(600_000);
    cfg.default_faults = vec![Fault::service_unavailable_at(600)];
    let server = MockServer::start(cfg);
    // Stream position 400 s, but the fault fires after 600 ms of this session's audio.
    failing_at_400_6_s(&server).await;
    let record = &server.sessions()[0];
    assert_eq!(record.stream_offset_ms, Some(400_000));
    assert_eq!(record.audio_len, 600 * BYTES_PER_MS as u64);
    assert_eq!(
        record.count_events(|k| matches!(k, ClientEventKind::Audio(_))),
        2
    );
}

#[tokio::test]
async fn a_stream_fault_fires_once_at_its_stream_position_whichever_session_gets_there() {
    let mut cfg = timecoded_config(600_000);
    cfg.stream_faults = vec![Fault::service_unavailable_at(400_600)];
    let server = MockServer::start(cfg);
    // 400 s into the stream: 480 ms, then the 120 ms that reach 400.6 s.
    failing_at_400_6_s(&server).await;

    // The next session replays from before the fault and goes past it: no second failure.
    let mut client = Client::connect(&server.url()).await;
    client.start(json!({})).await;
    stream(&mut client, &timecoded_s16le(16000, 400_240, 1200)).await;
    client.text("").await;
    let (messages, end) = client.until_close().await;
    assert_closed_normally(&end);
    assert_eq!(messages.last().unwrap()["finished"], true);
    let sessions = server.sessions();
    assert_eq!(sessions[0].end, Some(SessionEnd::Error { code: 503 }));
    assert_eq!(sessions[0].audio_len, 600 * BYTES_PER_MS as u64);
    assert_eq!(sessions[1].end, Some(SessionEnd::Finished));
    assert_eq!(sessions[1].stream_offset_ms, Some(400_240));
}
