// SPDX-License-Identifier: MPL-2.0
//! Live pipelines: pauses, latency, and starting and stopping again and again.

mod common;

use std::time::Duration;

use common::*;
use gst::prelude::*;

#[test]
fn a_live_pause_keeps_the_session_alive_with_keepalives() {
    live_pause(false);
}

#[test]
fn a_live_pause_keeps_the_session_alive_with_keepalives_when_the_service_is_quiet() {
    live_pause(true);
}

/// A live source that stops sending for 13 s, against a service that is `quiet` (no progress
/// messages while no word is due) or not.
fn live_pause(quiet: bool) {
    const PAUSE_MS: u64 = 13_000;
    const KEEPALIVE_MS: u64 = 4_000;
    // Words before and after the pause, which comes after 2 s of audio. The server closes
    // sessions idle for 8 s, so only keepalives can carry the session through 13 s.
    let script = Script::from_utterances(&[
        ("Before the pause.", 200, 1400),
        ("After the pause.", 2300, 3600),
    ]);
    let server = server(script.clone(), |c| {
        c.idle_timeout = Duration::from_secs(8);
        c.quiet = quiet;
    });
    let stt = element(&server);
    stt.set_property("keepalive-interval", KEEPALIVE_MS as u32);
    let recorder = Recorder::attach(&stt);
    let (mut h, _bus) = harness(&stt, &s16_caps(16000));
    h.set_upstream_latency(gst::ClockTime::from_mseconds(10)); // live
    for i in 0..20 {
        h.push(silence(16000, Some(i * 100), 100, false)).unwrap();
    }
    assert!(server.wait_until(WAIT, |s| s
        .first()
        .is_some_and(|r| r.audio.len() == 2 * 32_000)));
    // The live source stops for 13 s: no buffers at all. (The pause is the scenario.)
    std::thread::sleep(Duration::from_millis(PAUSE_MS));
    for i in 0..20 {
        h.push(silence(16000, Some(2000 + PAUSE_MS + i * 100), 100, i == 0))
            .unwrap();
    }
    h.push_event(gst::event::Eos::new());
    assert!(recorder.wait_eos(WAIT));

    let sessions = server.sessions();
    assert_eq!(sessions.len(), 1, "one session throughout");
    let session = &sessions[0];
    assert_eq!(session.end, Some(SessionEnd::Finished), "no idle close");
    let last_audio_before_pause = session
        .events
        .iter()
        .filter(|e| {
            matches!(e.kind, ClientEventKind::Audio(_)) && e.audio_bytes_before < 2 * 32_000
        })
        .map(|e| e.at)
        .max()
        .unwrap();
    let keepalives: Vec<Duration> = session
        .events
        .iter()
        .filter(|e| e.kind == ClientEventKind::Keepalive)
        .map(|e| e.at)
        .collect();
    assert_eq!(
        keepalives.len(),
        3,
        "a keepalive every 4 s of the 13 s pause: {keepalives:?}"
    );
    // WebSocket pings: one right after connecting, then every 10 s.
    let pings: Vec<Duration> = session
        .events
        .iter()
        .filter(|e| e.kind == ClientEventKind::Ping)
        .map(|e| e.at)
        .collect();
    assert!(pings.len() >= 2, "{pings:?}");
    assert!(pings[0] < Duration::from_secs(1), "{pings:?}");
    for pair in pings.windows(2) {
        let gap = pair[1] - pair[0];
        assert!(
            gap.abs_diff(Duration::from_secs(10)) < Duration::from_millis(250),
            "pings {gap:?} apart"
        );
    }
    let mut previous = last_audio_before_pause;
    for at in keepalives {
        let gap = (at - previous).as_millis() as u64;
        assert!(
            gap.abs_diff(KEEPALIVE_MS) < 250,
            "keepalive {gap} ms after the previous frame, want {KEEPALIVE_MS}"
        );
        previous = at;
    }
    assert_words_match(&recorder.words(), &script, |ms| {
        if ms < 2000 {
            ms * MS
        } else {
            (ms + PAUSE_MS) * MS
        }
    });
}

/// Queries `sonioxstt`'s src pad for latency with the pipeline in PAUSED.
fn paused_latency(source: &str) -> ((bool, gst::ClockTime, Option<gst::ClockTime>), usize) {
    let server = server(Script::from_utterances(&[]), |_| {});
    let (pipeline, stt) = launch(&format!(
        "{source} ! sonioxstt name=stt latency=2500 url={} api-key={KEY} ! fakesink",
        server.url()
    ));
    assert_eq!(
        pipeline.set_state(gst::State::Paused).unwrap(),
        gst::StateChangeSuccess::NoPreroll
    );
    let mut query = gst::query::Latency::new();
    assert!(stt.static_pad("src").unwrap().query(&mut query));
    pipeline.set_state(gst::State::Null).unwrap();
    (query.result(), server.connection_count())
}

#[test]
fn latency_query_in_paused_behind_a_live_source_adds_our_latency_without_connecting() {
    let caps = "audio/x-raw,format=S16LE,layout=interleaved,rate=16000,channels=1";
    let ((live, min, max), connections) = paused_latency(&format!(
        "appsrc is-live=true format=time min-latency=20000000 caps={caps}"
    ));
    assert!(live);
    assert_eq!(
        min,
        gst::ClockTime::from_mseconds(2520),
        "upstream's 20 ms + our 2500 ms"
    );
    assert_eq!(max, None);
    assert_eq!(connections, 0, "answered with no data and no connection");
}

#[test]
fn latency_query_in_paused_behind_a_live_source_that_cannot_answer_yet() {
    // audiotestsrc answers only once caps are negotiated: we still say what we add.
    let ((live, min, _max), connections) =
        paused_latency("audiotestsrc is-live=true ! audio/x-raw,rate=16000,channels=1");
    assert!(live);
    assert!(min >= gst::ClockTime::from_mseconds(2500), "min {min}");
    assert_eq!(connections, 0);
}

#[test]
fn latency_query_behind_a_non_live_source_is_upstreams_answer() {
    let server = server(Script::from_utterances(&[]), |_| {});
    let (pipeline, stt) = launch(&format!(
        "appsrc name=src caps=audio/x-raw,format=S16LE,layout=interleaved,rate=16000,channels=1 format=time ! \
         sonioxstt name=stt latency=2500 url={} api-key={KEY} ! fakesink",
        server.url()
    ));
    pipeline.set_state(gst::State::Paused).unwrap();
    let mut ours = gst::query::Latency::new();
    assert!(stt.static_pad("src").unwrap().query(&mut ours));
    let mut upstream = gst::query::Latency::new();
    assert!(stt.static_pad("sink").unwrap().peer_query(&mut upstream));
    assert!(!ours.result().0);
    assert_eq!(ours.result(), upstream.result());
    pipeline.set_state(gst::State::Null).unwrap();
    assert_eq!(server.connection_count(), 0);
}

#[test]
fn changing_latency_while_playing_posts_a_latency_message() {
    let server = server(Script::from_utterances(&[]), |_| {});
    let (pipeline, stt) = launch(&format!(
        "audiotestsrc is-live=true ! audio/x-raw,rate=16000,channels=1 ! sonioxstt name=stt url={} api-key={KEY} ! fakesink",
        server.url()
    ));
    let bus = pipeline.bus().unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    assert!(bus
        .timed_pop_filtered(
            gst::ClockTime::from_seconds(20),
            &[gst::MessageType::AsyncDone, gst::MessageType::StreamStart]
        )
        .is_some());
    while bus.pop_filtered(&[gst::MessageType::Latency]).is_some() {}
    stt.set_property("latency", 1500u32);
    let message = bus.timed_pop_filtered(
        gst::ClockTime::from_seconds(5),
        &[gst::MessageType::Latency],
    );
    assert!(
        message.is_some_and(|m| m.src() == Some(stt.upcast_ref())),
        "a LATENCY message from sonioxstt"
    );
    pipeline.set_state(gst::State::Null).unwrap();
}
