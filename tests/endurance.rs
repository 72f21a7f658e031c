// SPDX-License-Identifier: MPL-2.0
//! Endurance: two hours of audio through rotations and faults, memory measured. Alone in its
//! own test binary, so that the process's memory is this run's.

mod common;

use common::*;
use gst::prelude::*;
use soniox_mock::timecoded_s16le;

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

    let heard = heard_across_sessions(&script, &server.sessions());
    assert_words_match(&recorder.words(), &heard, |ms| ms * MS);
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
