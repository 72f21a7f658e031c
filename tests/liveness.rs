// SPDX-License-Identifier: MPL-2.0
//! Never hang: connections that stay open while the service stops answering (half-open, or
//! reading and never answering) are found by pings and timeouts and replaced, with every
//! word, live or from a file, and EOS within drain-timeout. These runs take real time (the
//! service falls silent for 20 s before the element gives up on it); they run in parallel.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use gst::prelude::*;

const RATE: u64 = 16_000;
const BYTES_PER_MS: u64 = RATE * 2 / 1000;
/// Where the first connection stops answering, in ms of its audio.
const FAULT_MS: u64 = 6000;
const DRAIN_TIMEOUT_MS: u64 = 30_000;
/// The contract: a connection found dead and replaced within this long.
const REPLACED_WITHIN: Duration = Duration::from_secs(35);

/// A stand-in that knows where each session's audio sits in the sample; `fault` on the
/// first connection only.
fn failing_once(fault: Fault) -> MockServer {
    server(sample_script(), |c| {
        c.reference_audio = Some(Arc::new(wav_data(&sample_wav())));
        c.session_faults = vec![vec![fault]];
    })
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Input {
    /// The sample as a file at real-time pace.
    File,
    /// The sample from a live source in 20 ms buffers.
    Live,
}

/// What a run with a failing first connection showed.
struct Replaced {
    words: Vec<(String, Option<u64>, Option<u64>)>,
    /// From the fault to the second connection.
    replaced_after: Duration,
    /// From EOS on the sink to EOS on src.
    drained_in: Duration,
    warnings: Vec<String>,
    session_events: Vec<String>,
}

/// Streams the sample through `sonioxstt` against `server` while watching for the fault and
/// the reconnect.
fn stream_through(server: &MockServer, input: Input) -> Replaced {
    let (pipeline, stt, live) = match input {
        Input::File => {
            let (pipeline, stt) = launch(&format!(
                "filesrc location={} ! wavparse ! sonioxstt name=stt url={} api-key={KEY} \
                 drain-timeout={DRAIN_TIMEOUT_MS} ! fakesink sync=false",
                sample_wav().display(),
                server.url()
            ));
            (Some(pipeline), stt, None)
        }
        Input::Live => {
            let stt = element(server);
            stt.set_property("drain-timeout", DRAIN_TIMEOUT_MS as u32);
            let (mut h, bus) = harness(&stt, &s16_caps(RATE as i32));
            h.set_upstream_latency(gst::ClockTime::from_mseconds(20));
            (None, stt, Some((h, bus)))
        }
    };
    let recorder = Recorder::attach(&stt);
    let eos_in = end_of_audio(&stt);
    let limit = Duration::from_secs(90);
    std::thread::scope(|scope| {
        let fault_at = scope.spawn(|| {
            server.wait_until(limit, |s| {
                s.first()
                    .is_some_and(|r| r.audio_len >= FAULT_MS * BYTES_PER_MS)
            });
            Instant::now()
        });
        let reconnected_at = scope.spawn(|| {
            server.wait_until(limit, |s| s.len() >= 2);
            Instant::now()
        });
        let (warnings, session_events) = match (pipeline, live) {
            (Some(pipeline), _) => {
                let run = run(&pipeline, limit);
                assert!(run.eos, "EOS, no error: {:?}", run.error());
                (run.warnings(), run.session_events())
            }
            (None, Some((mut h, bus))) => {
                push_live(&mut h, &wav_data(&sample_wav()), RATE, 20);
                h.push_event(gst::event::Eos::new());
                assert!(recorder.wait_eos(limit), "EOS on src");
                let messages = drain_bus(&bus);
                let warnings = messages
                    .iter()
                    .filter_map(|m| match m.view() {
                        gst::MessageView::Warning(w) => Some(w.error().to_string()),
                        _ => None,
                    })
                    .collect();
                let events = messages
                    .iter()
                    .filter_map(|m| m.structure())
                    .filter(|s| s.name() == "soniox/session")
                    .map(|s| s.get::<String>("event").unwrap())
                    .collect();
                (warnings, events)
            }
            _ => unreachable!(),
        };
        let fault_at = fault_at.join().unwrap();
        let reconnected_at = reconnected_at.join().unwrap();
        let eos_in = eos_in.lock().unwrap().expect("EOS entered sonioxstt");
        Replaced {
            words: recorder.words(),
            replaced_after: reconnected_at.saturating_duration_since(fault_at),
            drained_in: recorder.eos_at().expect("EOS on src") - eos_in,
            warnings,
            session_events,
        }
    })
}

/// The contract for a connection that stopped answering after [`FAULT_MS`].
fn assert_replaced(fault: Fault, first_end: SessionEnd, input: Input) {
    let server = failing_once(fault);
    let run = stream_through(&server, input);
    println!(
        "{input:?}: replaced {:?} after the fault, EOS {:?} after the end of the audio; {:?}",
        run.replaced_after, run.drained_in, run.warnings
    );
    assert!(
        run.replaced_after <= REPLACED_WITHIN,
        "replaced {:?} after the service stopped answering",
        run.replaced_after
    );
    assert_words_match(&run.words, &sample_script(), |ms| ms * MS);
    assert!(
        run.drained_in <= Duration::from_millis(DRAIN_TIMEOUT_MS),
        "EOS {:?} after the end of the audio",
        run.drained_in
    );
    let sessions = server.sessions();
    assert_eq!(sessions.len(), 2, "one replacement");
    assert_eq!(sessions[0].end, Some(first_end));
    assert_eq!(sessions[1].end, Some(SessionEnd::Finished));
    assert!(
        sessions[1]
            .stream_offset_ms
            .is_some_and(|ms| ms <= FAULT_MS),
        "the new connection replays from what was final: {:?}",
        sessions[1].stream_offset_ms
    );
    assert!(
        run.session_events.contains(&"reconnecting".to_string()),
        "{:?}",
        run.session_events
    );
    assert_warned_and_nothing_dropped(&run.warnings, "Connection to Soniox lost: ");
}

#[test]
fn a_half_open_connection_in_a_file_is_replaced_with_every_word() {
    assert_replaced(
        Fault::HalfOpenAt { audio_ms: FAULT_MS },
        SessionEnd::HalfOpen,
        Input::File,
    );
}

#[test]
fn a_half_open_connection_in_a_live_stream_is_replaced_with_every_word() {
    assert_replaced(
        Fault::HalfOpenAt { audio_ms: FAULT_MS },
        SessionEnd::HalfOpen,
        Input::Live,
    );
}

#[test]
fn a_server_that_reads_and_never_answers_in_a_file_is_replaced_with_every_word() {
    assert_replaced(
        Fault::MuteAt { audio_ms: FAULT_MS },
        SessionEnd::Muted,
        Input::File,
    );
}

#[test]
fn a_server_that_reads_and_never_answers_in_a_live_stream_is_replaced_with_every_word() {
    assert_replaced(
        Fault::MuteAt { audio_ms: FAULT_MS },
        SessionEnd::Muted,
        Input::Live,
    );
}
