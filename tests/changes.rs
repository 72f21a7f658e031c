// SPDX-License-Identifier: MPL-2.0
//! Changes mid-stream: caps, segments, seeks, and GAP events arriving on the sink.

mod common;

use std::time::Duration;

use common::*;
use gst::prelude::*;

fn short_script() -> Script {
    Script::from_utterances(&[("One two three.", 200, 1400), ("Four five.", 1800, 2700)])
}

/// A harness whose `sonioxstt` (pace 0) has had 3 s of 16 kHz audio of `short_script()`.
fn three_seconds_in() -> (Script, MockServer, Recorder, gst_check::Harness) {
    let script = short_script();
    let server = server(script.clone(), |_| {});
    let stt = element(&server);
    stt.set_property("pace", 0.0);
    let recorder = Recorder::attach(&stt);
    let (mut h, _bus) = harness(&stt, &s16_caps(16000));
    push_silence(&mut h, 16000, 0, 3000);
    (script, server, recorder, h)
}

#[test]
fn a_caps_change_drains_the_session_and_starts_one_in_the_new_format() {
    let (script, server, recorder, mut h) = three_seconds_in();
    assert!(h.push_event(gst::event::Caps::new(&s16_caps(8000))));
    push_silence(&mut h, 8000, 3000, 3000);
    h.push_event(gst::event::Eos::new());
    assert!(recorder.wait_eos(WAIT));

    // The harness's source is live: the chain queued the first part without waiting, so
    // the two sessions connected side by side, in either order.
    let mut sessions = server.sessions();
    assert_eq!(sessions.len(), 2, "one session per format");
    sessions.sort_by_key(|s| std::cmp::Reverse(s.audio.len()));
    for (session, rate) in sessions.iter().zip([16000, 8000]) {
        let request = session.start_request.as_ref().unwrap();
        assert_eq!(request["sample_rate"], rate);
        assert_eq!(request["audio_format"], "pcm_s16le");
        assert_eq!(session.audio.len() as u64, rate * 2 * 3);
        assert_eq!(session.end, Some(SessionEnd::Finished), "drained, not cut");
    }
    // The server plays the script on each session's own timeline: the words of the first
    // part, then the same words again 3 s later, every one of the first session's before
    // any of the second's.
    let words = recorder.words();
    assert_eq!(words.len(), 2 * script.words().count());
    let (first, second) = words.split_at(script.words().count());
    assert_words_match(first, &script, |ms| ms * MS);
    assert_words_match(second, &script, |ms| (3000 + ms) * MS);
    let disconts: Vec<bool> = recorder
        .seen()
        .iter()
        .filter_map(|s| match s {
            Seen::Word { discont, .. } => Some(*discont),
            _ => None,
        })
        .collect();
    let first_of_second = script.words().count();
    assert!(
        disconts[0] && disconts[first_of_second],
        "each session's first word is DISCONT"
    );
    assert_eq!(disconts.iter().filter(|d| **d).count(), 2);
}

#[test]
fn a_flushing_seek_restarts_the_session_and_words_carry_the_new_segments_times() {
    let script = sample_script();
    let server = server(script.clone(), |_| {});
    let (pipeline, stt) = launch(&format!(
        "filesrc location={} ! wavparse ! sonioxstt name=stt pace=4 url={} api-key={KEY} ! fakesink sync=false",
        sample_wav().display(),
        server.url()
    ));
    let recorder = Recorder::attach(&stt);
    let bus = pipeline.bus().unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    assert!(
        recorder.wait_for(WAIT, |s| words(s).len() >= 2),
        "words before the seek"
    );
    pipeline
        .seek_simple(
            gst::SeekFlags::FLUSH | gst::SeekFlags::ACCURATE,
            gst::ClockTime::from_seconds(10),
        )
        .unwrap();
    let done = bus.timed_pop_filtered(
        gst::ClockTime::from_seconds(30),
        &[gst::MessageType::Eos, gst::MessageType::Error],
    );
    pipeline.set_state(gst::State::Null).unwrap();
    assert!(
        done.is_some_and(|m| m.type_() == gst::MessageType::Eos),
        "the pipeline reached EOS"
    );

    let sessions = server.sessions();
    assert_eq!(sessions.len(), 2, "the seek restarted the session");
    assert_ne!(
        sessions[0].end,
        Some(SessionEnd::Finished),
        "aborted, not drained"
    );
    assert_eq!(
        sessions[1].audio.len(),
        wav_data(&sample_wav()).len() / 2,
        "the second session got the audio from 10 s on"
    );
    // Everything after the seek's segment is the second session's, in the new segment.
    let seen = recorder.seen();
    let new_segment = seen
        .iter()
        .rposition(|s| matches!(s, Seen::Segment(_)))
        .unwrap();
    let Seen::Segment(segment) = &seen[new_segment] else {
        unreachable!()
    };
    assert_eq!(segment.start(), Some(gst::ClockTime::from_seconds(10)));
    let after = words(&seen[new_segment..]);
    assert_words_match(&after, &said_before(&script, 10_000), |ms| {
        (10_000 + ms) * MS
    });
}

#[test]
fn a_new_segment_lets_the_old_segments_words_out_first() {
    let (script, server, recorder, mut h) = three_seconds_in();
    let mut segment = gst::FormattedSegment::<gst::ClockTime>::new();
    segment.set_start(gst::ClockTime::from_seconds(60));
    segment.set_time(gst::ClockTime::from_seconds(60));
    segment.set_base(gst::ClockTime::from_seconds(3));
    assert!(h.push_event(gst::event::Segment::new(&segment)));
    push_silence(&mut h, 16000, 60_000, 3000);
    h.push_event(gst::event::Eos::new());
    assert!(recorder.wait_eos(WAIT));

    let seen = recorder.seen();
    let second_segment = seen
        .iter()
        .rposition(|s| matches!(s, Seen::Segment(_)))
        .unwrap();
    let n = script.words().count();
    assert_words_match(&words(&seen[..second_segment]), &script, |ms| ms * MS);
    assert_eq!(words(&seen[second_segment..]).len(), n);
    assert_words_match(&words(&seen[second_segment..]), &script, |ms| {
        (60_000 + ms) * MS
    });
    assert_eq!(server.sessions().len(), 2);
}

#[test]
fn gap_events_on_the_sink_come_out_after_the_words_before_them() {
    let script = Script::from_utterances(&[("Before the gap.", 200, 1400)]);
    let server = server(script.clone(), |c| c.endpoints = false);
    let stt = element(&server);
    stt.set_property("pace", 0.0);
    let recorder = Recorder::attach(&stt);
    let (mut h, _bus) = harness(&stt, &s16_caps(16000));
    // A GAP before any audio goes straight through.
    assert!(h.push_event(
        gst::event::Gap::builder(gst::ClockTime::ZERO)
            .duration(gst::ClockTime::from_mseconds(500))
            .build()
    ));
    push_silence(&mut h, 16000, 500, 1500);
    // The source pauses for 8 s: the words before the pause must not wait for more audio.
    assert!(h.push_event(
        gst::event::Gap::builder(gst::ClockTime::from_mseconds(2000))
            .duration(gst::ClockTime::from_seconds(8))
            .build()
    ));
    assert!(
        recorder.wait_for(Duration::from_secs(5), |s| words(s).len() == 3
            && s.iter()
                .any(|x| matches!(x, Seen::Gap { pts, .. } if *pts == 2000 * MS))),
        "the words and the GAP came out during the pause: {:?}",
        recorder.seen()
    );
    h.push_event(gst::event::Eos::new());
    assert!(recorder.wait_eos(WAIT));

    assert_words_match(&recorder.words(), &script, |ms| (500 + ms) * MS);
    let seen = recorder.seen();
    let gap_at = |ms: u64| {
        seen.iter()
            .position(|s| matches!(s, Seen::Gap { pts, .. } if *pts == ms * MS))
            .unwrap_or_else(|| panic!("a GAP at {ms} ms in {seen:?}"))
    };
    let first_word = seen
        .iter()
        .position(|s| matches!(s, Seen::Word { .. }))
        .unwrap();
    let last_word = seen
        .iter()
        .rposition(|s| matches!(s, Seen::Word { .. }))
        .unwrap();
    assert!(
        gap_at(0) < first_word,
        "the first GAP went out before any word"
    );
    assert!(
        gap_at(2000) > last_word,
        "the pause's GAP after the words before it"
    );
    assert!(matches!(
        seen[gap_at(2000)],
        Seen::Gap { duration: Some(d), .. } if d == 8000 * MS
    ));
    let finalizes = server.sessions()[0]
        .events
        .iter()
        .filter(|e| matches!(e.kind, ClientEventKind::Finalize { .. }))
        .count();
    assert_eq!(
        finalizes, 1,
        "the pause asked Soniox to finalize what it had"
    );
}
