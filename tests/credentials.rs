// SPDX-License-Identifier: MPL-2.0
//! Fresh credentials: `request-api-key` hands each connection a key of its own (temporary keys
//! minted by the application), and a temporary key whose session ran out is replaced.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use gst::prelude::*;
use soniox_mock::TemporaryKeyOptions;

/// A stand-in that knows where each session's audio sits, with `faults` on the first
/// connection.
fn recognizing(faults: Vec<Fault>) -> Arc<MockServer> {
    Arc::new(server(sample_script(), |c| {
        c.reference_audio = Some(Arc::new(wav_data(&sample_wav())));
        c.session_faults = vec![faults];
    }))
}

/// Soniox's 403 for a temporary key whose `max_session_duration_seconds` ran out.
fn key_session_expired_at(audio_ms: u64) -> Fault {
    let message = "Temporary API key session duration exceeded.";
    Fault::error_at(audio_ms, 403, "temp_api_key_session_expired", message)
}

/// The sample file (pace 0) through a `sonioxstt` with no key of its own, whose
/// `request-api-key` handler mints a single-use key for each connection. Returns the run, the
/// words, and (connection number, thread name, key) for each call.
fn with_minted_keys(server: &Arc<MockServer>) -> (Run, Recorder, Vec<(u32, String, String)>) {
    init();
    let (pipeline, stt) = launch(&format!(
        "filesrc location={} ! wavparse ! sonioxstt name=stt pace=0 url={} ! fakesink sync=false",
        sample_wav().display(),
        server.url()
    ));
    let calls = Arc::new(Mutex::new(Vec::new()));
    let (minter, seen) = (server.clone(), calls.clone());
    stt.connect("request-api-key", false, move |args| {
        let session = args[1].get::<u32>().unwrap();
        let key = minter.mint_temporary_key(TemporaryKeyOptions {
            single_use: true,
            ..TemporaryKeyOptions::default()
        });
        let thread = std::thread::current()
            .name()
            .unwrap_or_default()
            .to_string();
        seen.lock().unwrap().push((session, thread, key.clone()));
        Some(key.to_value())
    });
    let recorder = Recorder::attach(&stt);
    let run = run(&pipeline, Duration::from_secs(60));
    let calls = calls.lock().unwrap().clone();
    (run, recorder, calls)
}

#[test]
fn each_connection_gets_a_fresh_single_use_key_and_a_reconnect_loses_no_word() {
    let server = recognizing(vec![Fault::service_unavailable_at(6000)]);
    let (run, recorder, calls) = with_minted_keys(&server);
    assert!(run.eos, "EOS, no error: {:?}", run.error());
    assert_words_match(&recorder.words(), &sample_script(), |ms| ms * MS);
    let sessions = server.sessions();
    assert_eq!(sessions.len(), 2, "one reconnect");
    let numbers: Vec<u32> = calls.iter().map(|c| c.0).collect();
    assert_eq!(
        numbers,
        [1, 2],
        "asked before each connection, with its number"
    );
    for ((_, thread, key), session) in calls.iter().zip(&sessions) {
        assert_eq!(
            session.authorization.as_deref(),
            Some(format!("Bearer {key}").as_str()),
            "each connection used its own key"
        );
        assert_eq!(thread, "soniox-key", "asked on a thread of its own");
    }
    assert_ne!(calls[0].2, calls[1].2);
    for message in &run.messages {
        let text = format!("{message:?}");
        assert!(
            calls.iter().all(|(_, _, key)| !text.contains(key.as_str())),
            "a key leaked: {text}"
        );
    }
}

#[test]
fn a_temporary_key_whose_session_ran_out_is_replaced_with_a_fresh_one() {
    let expired = key_session_expired_at(6000);
    let server = recognizing(vec![expired]);
    let (run, recorder, calls) = with_minted_keys(&server);
    assert!(run.eos, "EOS, no error: {:?}", run.error());
    assert_words_match(&recorder.words(), &sample_script(), |ms| ms * MS);
    assert_eq!(calls.len(), 2);
    assert_eq!(
        server.sessions()[0].end,
        Some(SessionEnd::Error { code: 403 })
    );
}

#[test]
fn without_a_handler_a_403_is_an_element_error() {
    let expired = key_session_expired_at(6000);
    let server = recognizing(vec![expired]);
    let (pipeline, _stt) = sample_pipeline(&server, "");
    let (error, _) = run(&pipeline, WAIT).error().expect("an element error");
    assert!(
        error.contains("403 temp_api_key_session_expired"),
        "{error}"
    );
    assert_eq!(server.connection_count(), 1);
}

#[test]
fn a_handler_that_returns_no_key_falls_back_to_the_api_key_property() {
    let server = recognizing(vec![]);
    let (pipeline, stt) = sample_pipeline(&server, "");
    // NULL: "no fresh key this time".
    stt.connect("request-api-key", false, |_| {
        Some(None::<String>.to_value())
    });
    let recorder = Recorder::attach(&stt);
    let run = run(&pipeline, WAIT);
    assert!(run.eos, "EOS, no error: {:?}", run.error());
    assert_eq!(recorder.words().len(), sample_script().words().count());
    assert_eq!(
        server.sessions()[0].authorization.as_deref(),
        Some(format!("Bearer {KEY}").as_str())
    );
}

#[test]
fn the_temporary_keys_example_mints_a_key_per_connection() {
    let binary = example_binary("temporary_keys");
    let (success, output) = run_example(&binary, &[], Duration::from_secs(60));
    assert!(success, "the example succeeds:\n{output}");
    for session in [1, 2] {
        assert!(
            output.contains(&format!(
                "session {session}: minted a single-use temporary key (expires at "
            )),
            "{output}"
        );
    }
    assert!(!output.contains("temp:"), "no key is printed:\n{output}");
    let script = sample_script();
    let transcript: Vec<&str> = script.words().map(|w| w.text.as_str()).collect();
    assert!(
        output.contains(&format!("Transcript: {}", transcript.join(" "))),
        "{output}"
    );
}
