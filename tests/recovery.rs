// SPDX-License-Identifier: MPL-2.0
//! Never losing a word: reconnecting with replay, giving up, rotating sessions.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;

/// A stand-in that recognizes where in the sample each session's audio comes from.
fn recognizing_server(configure: impl FnOnce(&mut MockConfig)) -> MockServer {
    server(sample_script(), |c| {
        c.reference_audio = Some(Arc::new(wav_data(&sample_wav())));
        configure(c);
    })
}

/// Runs the sample file through `sonioxstt` (pace 0) with `extra` properties.
fn run_sample(server: &MockServer, extra: &str) -> (Run, Recorder) {
    let (pipeline, stt) = sample_pipeline(server, extra);
    let recorder = Recorder::attach(&stt);
    let run = run(&pipeline, Duration::from_secs(60));
    (run, recorder)
}

fn assert_every_word_once_in_order(run: &Run, recorder: &Recorder) {
    assert!(run.eos, "EOS, no error: {:?}", run.error());
    assert_words_match(&recorder.words(), &sample_script(), |ms| ms * MS);
}

#[test]
fn a_503_mid_stream_reconnects_and_replays_without_losing_or_doubling_a_word() {
    let server = recognizing_server(|c| {
        c.session_faults = vec![vec![Fault::service_unavailable_at(6000)]];
    });
    let (run, recorder) = run_sample(&server, "");
    assert_every_word_once_in_order(&run, &recorder);
    let sessions = server.sessions();
    assert_eq!(sessions.len(), 2, "one reconnect");
    assert_eq!(sessions[0].end, Some(SessionEnd::Error { code: 503 }));
    assert!(
        sessions[1]
            .stream_offset_ms
            .is_some_and(|ms| ms > 0 && ms <= 6000),
        "the second session started with the replay of what was not final: {:?}",
        sessions[1].stream_offset_ms
    );
    assert_reconnecting_posted(&run);
}

/// `soniox/session` `reconnecting` and a warning were posted.
fn assert_reconnecting_posted(run: &Run) {
    let events = run.session_events();
    assert!(events.contains(&"reconnecting".to_string()), "{events:?}");
    assert!(
        run.warnings().iter().any(|w| w.contains("reconnecting")),
        "{:?}",
        run.warnings()
    );
}

#[test]
fn an_abrupt_tcp_drop_mid_stream_loses_no_word() {
    let server = recognizing_server(|c| {
        c.session_faults = vec![vec![Fault::DropAt { audio_ms: 6000 }]];
    });
    let (run, recorder) = run_sample(&server, "");
    assert_every_word_once_in_order(&run, &recorder);
    assert_eq!(server.sessions().len(), 2);
    assert_eq!(server.sessions()[0].end, Some(SessionEnd::Dropped));
    assert_reconnecting_posted(&run);
}

#[test]
fn reconnects_that_fail_too_still_replay_every_word() {
    // The 503 at 6 s; the next connection is refused; the one after drops after 1 s of its
    // audio, in the middle of the replay; the fourth carries on.
    let server = recognizing_server(|c| {
        c.session_faults = vec![
            vec![Fault::service_unavailable_at(6000)],
            vec![Fault::RejectHandshake { status: 503 }],
            vec![Fault::DropAt { audio_ms: 1000 }],
        ];
    });
    let (run, recorder) = run_sample(&server, "");
    assert_every_word_once_in_order(&run, &recorder);
    let sessions = server.sessions();
    assert_eq!(sessions.len(), 4);
    assert_eq!(sessions[2].end, Some(SessionEnd::Dropped));
    let offsets: Vec<Option<u64>> = sessions.iter().map(|s| s.stream_offset_ms).collect();
    let (Some(third), Some(fourth)) = (offsets[2], offsets[3]) else {
        panic!("{offsets:?}");
    };
    assert!(
        offsets[1].is_none() && third <= fourth && fourth <= third + 1000,
        "the fourth connection replays what the third did not get finalized: {offsets:?}"
    );
    let reconnecting = run
        .session_events()
        .iter()
        .filter(|e| *e == "reconnecting")
        .count();
    assert_eq!(reconnecting, 3);
}

#[test]
fn a_rejected_key_is_not_retried() {
    let server = recognizing_server(|_| {});
    let (pipeline, _stt) = launch(&format!(
        "filesrc location={} ! wavparse ! sonioxstt name=stt pace=0 url={} api-key=wrong-key ! fakesink sync=false",
        sample_wav().display(),
        server.url()
    ));
    let run = run(&pipeline, Duration::from_secs(20));
    let (error, _) = run.error().expect("an element error");
    assert!(error.contains("401"), "{error}");
    assert_eq!(server.connection_count(), 1, "no retry");
}

#[test]
fn a_server_that_always_fails_is_given_up_after_max_reconnects() {
    let server = recognizing_server(|c| {
        c.default_faults = vec![Fault::service_unavailable_at(1000)];
    });
    let (run, _recorder) = run_sample(&server, "max-reconnects=2");
    let (error, _) = run.error().expect("an element error");
    assert!(
        error.contains("503") && error.contains("gave up after 3 attempts"),
        "{error}"
    );
    assert_eq!(
        server.connection_count(),
        3,
        "the first try and 2 reconnects"
    );
    assert!(
        run.elapsed < Duration::from_secs(10),
        "took {:?}",
        run.elapsed
    );
}

#[test]
fn sessions_rotate_at_max_session_duration_without_losing_a_word() {
    let server = recognizing_server(|_| {});
    let (run, recorder) = run_sample(&server, "max-session-duration=7000");
    let sessions = server.sessions();
    let heard = heard_across_sessions(&sample_script(), &sessions);
    assert!(run.eos, "EOS, no error: {:?}", run.error());
    assert_words_match(&recorder.words(), &heard, |ms| ms * MS);
    assert!(sessions.len() >= 3, "{} sessions", sessions.len());
    for session in &sessions {
        assert_eq!(session.end, Some(SessionEnd::Finished), "each drained");
        assert!(
            session.audio.len() <= 7000 * 32 + 32_000,
            "≤ 7 s each (+ a buffer)"
        );
    }
    let rotated = run
        .session_events()
        .iter()
        .filter(|e| *e == "rotated")
        .count();
    assert_eq!(rotated, sessions.len() - 1);
}

#[test]
fn a_self_signed_certificate_is_an_element_error_naming_the_host() {
    let server = MockServer::start_tls(MockConfig::new(KEY, sample_script()));
    assert!(server.url().starts_with("wss://localhost:"));
    let (run, _recorder) = run_sample(&server, "");
    let (error, _) = run.error().expect("an element error");
    assert!(
        error.contains("localhost") && error.contains("certificate"),
        "names the host and the certificate problem: {error}"
    );
    assert!(
        server.wait_for_tls_handshake_failures(WAIT, 1),
        "the handshake was refused by the element"
    );
    assert_eq!(server.sessions().len(), 0, "no session was opened");
}
