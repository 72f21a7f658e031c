// SPDX-License-Identifier: MPL-2.0
//! Fatal problems become clear element errors; the key never shows.

mod common;

use std::time::{Duration, Instant};

use common::*;
use gst::prelude::*;

const WRONG_KEY: &str = "wrong-key-0d7f3a";

fn short_file(stt_properties: &str) -> (gst::Pipeline, gst::Element) {
    launch(&format!(
        "audiotestsrc num-buffers=20 samplesperbuffer=1600 ! audio/x-raw,rate=16000,channels=1 ! \
         sonioxstt name=stt pace=0 {stt_properties} ! fakesink sync=false"
    ))
}

#[test]
fn a_rejected_key_is_an_element_error_with_sonioxs_401_and_words() {
    let server = server(
        Script::from_utterances(&[("Never heard.", 100, 900)]),
        |_| {},
    );
    let (pipeline, _stt) = short_file(&format!("url={} api-key={WRONG_KEY}", server.url()));
    let run = run(&pipeline, Duration::from_secs(5));
    let (text, debug) = run.error().expect("an element error within 5 s");
    assert_eq!(
        text,
        "Soniox rejected the request (401 unauthenticated): Invalid API key."
    );
    assert!(debug.contains("request id"), "debug: {debug}");
    for message in &run.messages {
        assert!(
            !format!("{message:?}").contains(WRONG_KEY),
            "the key leaked: {message:?}"
        );
    }
    assert_eq!(server.connection_count(), 1, "no retry");
}

#[test]
fn a_bad_request_is_an_element_error_with_sonioxs_400() {
    let server = server(Script::from_utterances(&[]), |_| {});
    let (pipeline, _stt) = short_file(&format!(
        "url={} api-key={KEY} model=stt-rt-v0",
        server.url()
    ));
    let (text, _) = run(&pipeline, WAIT).error().expect("an element error");
    assert!(
        text.starts_with("Soniox rejected the request (400"),
        "{text}"
    );
    assert!(text.ends_with("Invalid model specified."), "{text}");
}

#[test]
fn nothing_listening_is_an_error_naming_the_url() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let url = format!("ws://127.0.0.1:{port}/transcribe-websocket");
    let (pipeline, _stt) = short_file(&format!("url={url} api-key={KEY}"));
    let (text, _) = run(&pipeline, WAIT).error().expect("an element error");
    assert!(
        text.starts_with(&format!("Could not connect to Soniox at {url}: ")),
        "{text}"
    );
    assert!(!text.contains(KEY));
}

#[test]
fn eos_without_audio_passes_at_once_without_connecting() {
    let server = server(Script::from_utterances(&[]), |_| {});
    let stt = element(&server);
    let recorder = Recorder::attach(&stt);
    let (mut h, _bus) = harness(&stt, &s16_caps(16000));
    let start = Instant::now();
    h.push_event(gst::event::Eos::new());
    assert!(recorder.wait_eos(Duration::from_secs(1)));
    assert!(
        start.elapsed() < Duration::from_millis(500),
        "took {:?}",
        start.elapsed()
    );
    assert_eq!(server.connection_count(), 0);
}

/// Runs `stt_properties` on the short file and checks what a bounded drain promises: EOS
/// (no error) 2–3 s after the end of the audio, the script's words pushed with their times,
/// and a drain-timeout warning that starts with `warning`.
fn assert_drain_bounded(
    server: &MockServer,
    script: &Script,
    stt_properties: &str,
    warning: &str,
) -> Run {
    let (pipeline, stt) = short_file(&format!(
        "url={} api-key={KEY} drain-timeout=2000 {stt_properties}",
        server.url()
    ));
    let recorder = Recorder::attach(&stt);
    let end_of_audio = end_of_audio(&stt);
    let run = run(&pipeline, WAIT);
    assert!(run.eos, "EOS still comes: {:?}", run.error());
    let waited = recorder.eos_at().expect("EOS downstream")
        - end_of_audio.lock().unwrap().expect("EOS on the sink pad");
    assert!(
        waited >= Duration::from_millis(1900) && waited <= Duration::from_secs(3),
        "EOS went downstream {waited:?} after the end of the audio"
    );
    assert!(
        run.warnings().iter().any(|w| w.starts_with(warning)),
        "{:?}",
        run.warnings()
    );
    // The words Soniox never made final are pushed as they were, with their times.
    assert_words_match(&recorder.words(), script, |ms| ms * MS);
    run
}

/// Words heard but never made final (no automatic finals, no endpoints).
fn unfinalizing_server(script: &Script, fault: Fault) -> MockServer {
    server(script.clone(), |c| {
        c.auto_final_lag_ms = None;
        c.endpoints = false;
        c.session_faults = vec![vec![fault]];
        c.default_faults = vec![Fault::RejectHandshake { status: 503 }];
    })
}

#[test]
fn a_server_that_hangs_while_draining_is_bounded_by_drain_timeout() {
    let script = Script::from_utterances(&[("Almost there.", 100, 900)]);
    let server = unfinalizing_server(&script, Fault::SilentAfterEnd);
    let run = assert_drain_bounded(
        &server,
        &script,
        "",
        "Soniox did not finish within drain-timeout: the last words were pushed as they were",
    );
    assert_eq!(run.warnings().len(), 1);
    let record = &server.sessions()[0];
    assert!(!record.sent_finished());
    assert_eq!(record.final_text(), "", "nothing was final");
}

#[test]
fn a_drain_that_breaks_and_cannot_reconnect_is_bounded_by_drain_timeout() {
    // The connection drops right after the end of the audio; every reconnect is refused.
    let script = Script::from_utterances(&[("Almost there.", 100, 900)]);
    let server = unfinalizing_server(&script, Fault::DropAfterEnd);
    // Nothing was final: 2 s of audio (the whole input) were never transcribed, though the
    // words Soniox had heard are pushed as they were.
    let run = assert_drain_bounded(
        &server,
        &script,
        "max-reconnects=10",
        &format!(
            "Soniox did not finish within drain-timeout while reconnecting (Soniox could not take \
             the connection to {} (503 service_unavailable): Service Unavailable): 2.0 s of audio \
             were never transcribed",
            server.url()
        ),
    );
    assert!(run.session_events().contains(&"reconnecting".to_string()));
    assert!(server.connection_count() >= 2, "it tried to reconnect");
}

#[test]
fn a_refused_handshake_is_an_error_naming_the_url() {
    let server = server(Script::from_utterances(&[]), |_| {});
    let url = server.url().replace("/transcribe-websocket", "/wrong-path");
    let (pipeline, _stt) = short_file(&format!("url={url} api-key={KEY}"));
    let (text, _) = run(&pipeline, WAIT).error().expect("an element error");
    assert_eq!(
        text,
        format!("Soniox refused the connection to {url} (404): Not Found")
    );
}

#[test]
fn an_empty_url_means_the_regions_endpoint() {
    let (pipeline, stt) = short_file(&format!("url=\"\" api-key={KEY} region=eu"));
    assert_eq!(stt.property::<Option<String>>("url"), None);
    // No network here: the error names the endpoint it tried.
    let (text, _) = run(&pipeline, WAIT).error().expect("an element error");
    assert!(
        text.contains("wss://stt-rt.eu.soniox.com/transcribe-websocket"),
        "{text}"
    );
}
