// SPDX-License-Identifier: MPL-2.0
//! Never losing a word: reconnecting with replay, giving up, rotating sessions.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use gst::prelude::*;
use soniox_mock::timecoded_s16le;

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
    assert!(run.session_events().contains(&"reconnecting".to_string()));
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
    assert_every_word_once_in_order(&run, &recorder);
    let sessions = server.sessions();
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

/// Resident memory of this process, in bytes.
fn rss() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

/// One fault of each retryable kind, then a 503 again.
fn fault_every_15_minutes(total_ms: u64) -> Vec<Fault> {
    const EVERY_MS: u64 = 15 * 60_000;
    let kinds: [fn(u64) -> Fault; 6] = [
        Fault::service_unavailable_at,
        |ms| Fault::DropAt { audio_ms: ms },
        Fault::request_timeout_at,
        Fault::internal_error_at,
        Fault::bad_gateway_at,
        Fault::rate_limited_at,
    ];
    (1..total_ms / EVERY_MS)
        .map(|k| kinds[(k as usize - 1) % kinds.len()](k * EVERY_MS))
        .collect()
}

/// Two hours of live-like audio, unpaced, through rotations every 10 minutes and a fault every
/// 15 (in stream time): every word comes out exactly, and memory stays flat (about 6 s).
#[test]
fn two_hours_with_rotations_and_faults_keep_memory_flat_and_every_word() {
    const HOUR_MS: u64 = 3_600_000;
    const TOTAL_MS: u64 = 2 * HOUR_MS;
    const CHUNK_MS: u64 = 1000;
    const WARM_UP_MS: u64 = 15 * 60_000;
    let unit = sample_script();
    let script = Script::repeating(&unit, 20_000, TOTAL_MS);
    let faults = fault_every_15_minutes(TOTAL_MS);
    let server = server(script.clone(), |c| {
        c.timecoded = true;
        c.keep_audio = false;
        c.stream_faults = faults.clone();
    });
    let (pipeline, stt) = launch(&format!(
        "appsrc name=src format=time is-live=false block=true caps=audio/x-raw,format=S16LE,layout=interleaved,rate=16000,channels=1 ! \
         sonioxstt name=stt pace=0 max-session-duration=600000 url={} api-key={KEY} ! fakesink sync=false",
        server.url()
    ));
    let recorder = Recorder::attach(&stt);
    let src = pipeline.by_name("src").unwrap();
    let bus = pipeline.bus().unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    let mut session_events = Vec::new();
    // Reads the bus as an application does (its messages would pile up otherwise); true at EOS.
    let mut read_bus = |wait: gst::ClockTime| {
        while let Some(message) = bus.timed_pop(wait) {
            match message.view() {
                gst::MessageView::Error(e) => panic!("{}", e.error()),
                gst::MessageView::Eos(_) => return true,
                gst::MessageView::Element(_) => {
                    let s = message.structure().unwrap();
                    if s.name() == "soniox/session" {
                        session_events.push(s.get::<String>("event").unwrap());
                    }
                }
                _ => {}
            }
        }
        false
    };
    let mut after_warm_up = 0;
    let mut peak = 0;
    for at_ms in (0..TOTAL_MS).step_by(CHUNK_MS as usize) {
        let mut buffer = gst::Buffer::from_slice(timecoded_s16le(16_000, at_ms, CHUNK_MS));
        {
            let b = buffer.get_mut().unwrap();
            b.set_pts(gst::ClockTime::from_mseconds(at_ms));
            b.set_duration(gst::ClockTime::from_mseconds(CHUNK_MS));
        }
        let flow = src.emit_by_name::<gst::FlowReturn>("push-buffer", &[&buffer]);
        assert_eq!(flow, gst::FlowReturn::Ok, "at {} s", at_ms / 1000);
        read_bus(gst::ClockTime::ZERO);
        if at_ms == WARM_UP_MS {
            after_warm_up = rss();
        } else if at_ms > WARM_UP_MS && at_ms % 60_000 == 0 {
            peak = peak.max(rss());
        }
    }
    let _ = src.emit_by_name::<gst::FlowReturn>("end-of-stream", &[]);
    let eos = read_bus(gst::ClockTime::from_seconds(120));
    pipeline.set_state(gst::State::Null).unwrap();
    assert!(eos, "EOS");

    assert_words_match(&recorder.words(), &script, |ms| ms * MS);
    let count = |event: &str| session_events.iter().filter(|e| *e == event).count();
    assert_eq!(count("reconnecting"), faults.len(), "{session_events:?}");
    assert!(count("rotated") >= 11, "{session_events:?}");
    let sessions = server.sessions();
    let failed = sessions
        .iter()
        .filter(|s| matches!(s.end, Some(SessionEnd::Error { .. } | SessionEnd::Dropped)))
        .count();
    assert_eq!(failed, faults.len());
    let growth = peak.saturating_sub(after_warm_up);
    eprintln!(
        "{} sessions, {} words; memory {} MB after 15 min, peak {} MB after",
        sessions.len(),
        recorder.words().len(),
        after_warm_up >> 20,
        peak >> 20
    );
    assert!(
        growth <= 20 << 20,
        "memory grew by {} MB after the first 15 minutes",
        growth >> 20
    );
}
