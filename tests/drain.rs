// SPDX-License-Identifier: MPL-2.0
//! A drain is never a silent loss: a service that finishes early or refuses the drain is
//! reconnected and replayed; when the deadline passes while reconnecting, the warning says how
//! much audio was never transcribed, and if nothing was, it is an element error.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;

/// The sample file at pace 0 against a stand-in that knows where each session's audio sits.
fn sample_run(configure: impl FnOnce(&mut MockConfig), extra: &str) -> (Run, Recorder, MockServer) {
    let server = server(sample_script(), |c| {
        c.reference_audio = Some(Arc::new(wav_data(&sample_wav())));
        configure(c);
    });
    let (pipeline, stt) = sample_pipeline(&server, extra);
    let recorder = Recorder::attach(&stt);
    let run = run(&pipeline, Duration::from_secs(60));
    (run, recorder, server)
}

fn assert_every_word_after_a_reconnect(run: &Run, recorder: &Recorder, server: &MockServer) {
    assert!(run.eos, "EOS, no error: {:?}", run.error());
    assert_words_match(&recorder.words(), &sample_script(), |ms| ms * MS);
    assert_eq!(server.sessions().len(), 2, "one reconnect");
    assert!(run.session_events().contains(&"reconnecting".to_string()));
}

#[test]
fn finished_before_the_end_of_the_audio_reconnects_and_every_word_arrives() {
    let (run, recorder, server) = sample_run(
        |c| c.session_faults = vec![vec![Fault::FinishedAt { audio_ms: 6000 }]],
        "",
    );
    assert_every_word_after_a_reconnect(&run, &recorder, &server);
    assert_eq!(server.sessions()[0].end, Some(SessionEnd::FinishedEarly));
    assert!(
        run.warnings()
            .iter()
            .any(|w| w.starts_with("Soniox sent an invalid message: finished ")),
        "{:?}",
        run.warnings()
    );
}

#[test]
fn a_429_during_the_drain_reconnects_and_every_word_arrives() {
    let (run, recorder, server) = sample_run(
        |c| c.session_faults = vec![vec![Fault::rate_limited_after_end()]],
        "",
    );
    assert_every_word_after_a_reconnect(&run, &recorder, &server);
    assert_eq!(
        server.sessions()[0].end,
        Some(SessionEnd::Error { code: 429 })
    );
}

#[test]
fn a_drain_refused_until_the_deadline_says_how_much_audio_was_never_transcribed() {
    let (run, recorder, server) = sample_run(
        |c| c.default_faults = vec![Fault::rate_limited_after_end()],
        "drain-timeout=3000 max-reconnects=10",
    );
    assert!(run.eos, "EOS, no error: {:?}", run.error());
    assert!(server.sessions().len() >= 2, "it reconnected");
    let warning = run
        .warnings()
        .into_iter()
        .find(|w| w.starts_with("Soniox did not finish within drain-timeout while reconnecting (Soniox rejected the request (429 limit_exceeded)"))
        .unwrap_or_else(|| panic!("{:?}", run.warnings()));
    assert!(
        warning.contains(
            " s of audio were never transcribed; the last words were pushed as they were"
        ),
        "{warning}"
    );
    // The stand-in made all but the last half second final; the rest is pushed as it was.
    let texts: Vec<String> = recorder.words().into_iter().map(|w| w.0).collect();
    let script: Vec<String> = sample_script().words().map(|w| w.text.clone()).collect();
    assert_eq!(texts, script);
}

#[test]
fn a_drain_that_never_transcribed_anything_is_an_element_error() {
    // The service takes the audio without a word in reply, then refuses every drain.
    let (run, recorder, server) = sample_run(
        |c| {
            c.response_interval_ms = u64::MAX / 2;
            c.endpoints = false;
            c.default_faults = vec![Fault::rate_limited_after_end()];
        },
        "drain-timeout=3000 max-reconnects=10",
    );
    let (error, debug) = run.error().expect("an element error, not a silent EOS");
    assert_eq!(
        error,
        "Soniox transcribed none of the audio: drain-timeout passed while reconnecting \
         (Soniox rejected the request (429 limit_exceeded): Rate limit for your organization \
         has been exceeded.)"
    );
    assert!(
        debug.contains("s of audio were never transcribed"),
        "{debug}"
    );
    assert!(!run.eos);
    assert!(recorder.words().is_empty());
    assert!(server.connection_count() >= 2, "it tried again");
}
