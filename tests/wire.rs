// SPDX-License-Identifier: MPL-2.0
//! Never trust the wire: whatever the service sends, the element does not panic, push a
//! timestamp outside the input, double a word or lose one. A message that cannot be right
//! breaks the connection (a warning says what was wrong), and the next one replays.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;

/// Where the first connection misbehaves, in ms of its audio.
const AT_MS: u64 = 6000;

/// Runs the sample file (pace 0) against a stand-in whose first connection sends `fault`
/// and checks the contract: no error, a warning naming what was wrong, one reconnect, every
/// word once with its exact time, nothing outside the input.
fn survives(fault: Fault, what: &str) {
    let server = server(sample_script(), |c| {
        c.reference_audio = Some(Arc::new(wav_data(&sample_wav())));
        c.session_faults = vec![vec![fault]];
    });
    let (pipeline, stt) = sample_pipeline(&server, "");
    let recorder = Recorder::attach(&stt);
    let run = run(&pipeline, Duration::from_secs(60));
    assert!(run.eos, "EOS, no error: {:?}", run.error());
    assert_words_match(&recorder.words(), &sample_script(), |ms| ms * MS);
    let input_end = wav_data(&sample_wav()).len() as u64 / 32 * MS;
    for seen in recorder.seen() {
        let (pts, duration) = match seen {
            Seen::Word { pts, duration, .. } => (pts.unwrap(), duration.unwrap()),
            Seen::Gap { pts, duration } => (pts, duration.unwrap_or(0)),
            _ => continue,
        };
        assert!(
            pts + duration <= input_end,
            "{seen:?} ends past the input ({input_end} ns)"
        );
    }
    assert_eq!(server.sessions().len(), 2, "one reconnect");
    let warning = format!("Soniox sent an invalid message: {what}");
    assert!(
        run.warnings()
            .iter()
            .any(|w| w.starts_with(&warning) && w.contains("reconnecting")),
        "a warning starting {warning:?}: {:?}",
        run.warnings()
    );
    assert!(run.session_events().contains(&"reconnecting".to_string()));
}

fn sends(text: &str, what: &str) {
    survives(Fault::send_at(AT_MS, text), what);
}

#[test]
fn text_that_is_not_json() {
    sends("Internal Server Error", "not a JSON object");
}

#[test]
fn nan() {
    sends(
        r#"{"tokens": [], "final_audio_proc_ms": NaN, "total_audio_proc_ms": 6000}"#,
        "expected value",
    );
}

#[test]
fn a_number_too_large_for_a_double() {
    sends(
        r#"{"tokens": [], "final_audio_proc_ms": 1e400}"#,
        "number out of range",
    );
}

#[test]
fn tokens_null() {
    sends(
        r#"{"tokens": null, "final_audio_proc_ms": 5000}"#,
        "invalid type: null, expected a sequence",
    );
}

#[test]
fn a_lone_surrogate() {
    sends(
        r#"{"tokens": [{"text": " \ud800", "start_ms": 5900, "end_ms": 5950, "is_final": true}]}"#,
        "unexpected end of hex escape",
    );
}

#[test]
fn a_token_time_of_centuries() {
    sends(
        r#"{"tokens": [{"text": " ghost", "start_ms": 18000000000000, "end_ms": 18000000000100, "is_final": true}]}"#,
        "a time out of range",
    );
}

#[test]
fn a_final_audio_time_of_decades() {
    sends(
        r#"{"tokens": [], "final_audio_proc_ms": 1800000000000, "total_audio_proc_ms": 1800000000000}"#,
        "final_audio_proc_ms 1800000000000 ms is beyond the",
    );
}

#[test]
fn a_token_beyond_the_audio_sent() {
    sends(
        // At pace 0 all 20 s went out before the stand-in says this.
        r#"{"tokens": [{"text": " ghost", "start_ms": 25000, "end_ms": 25400, "is_final": true}]}"#,
        "token \" ghost\" starts at 25000 ms is beyond the",
    );
}

#[test]
fn a_negative_time() {
    sends(
        r#"{"tokens": [{"text": " ghost", "start_ms": -400, "end_ms": -100, "is_final": true}]}"#,
        "a time out of range: -400",
    );
}

#[test]
fn a_final_token_that_goes_back_in_time() {
    sends(
        r#"{"tokens": [{"text": " ghost", "start_ms": 100, "end_ms": 300, "is_final": true}]}"#,
        "final token \" ghost\" at 100 ms goes back before the final token at",
    );
}

#[test]
fn final_audio_that_goes_back() {
    sends(
        r#"{"tokens": [], "final_audio_proc_ms": 10, "total_audio_proc_ms": 6000}"#,
        "final_audio_proc_ms went back from",
    );
}

#[test]
fn final_tokens_sent_twice() {
    survives(Fault::RepeatFinalsAt { audio_ms: AT_MS }, "final token");
}
