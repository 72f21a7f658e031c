// SPDX-License-Identifier: MPL-2.0
//! The main job: audio in, the stand-in's scripted words out, exactly timed.

mod common;

use common::*;
use gst::prelude::*;

#[test]
fn file_transcription_gives_exactly_the_scripted_words_with_token_times() {
    let script = sample_script();
    let server = server(script.clone(), |_| {});
    let (pipeline, stt) = sample_pipeline(&server, "");
    let recorder = Recorder::attach(&stt);
    let run = run(&pipeline, WAIT);
    assert!(run.eos, "EOS reached the sink; error: {:?}", run.error());

    // What the server received: the contract's start request, the key only in the header,
    // exactly the file's audio bytes.
    let sessions = server.sessions();
    assert_eq!(sessions.len(), 1);
    let session = &sessions[0];
    assert_eq!(
        session.start_request.clone().unwrap(),
        serde_json::json!({
            "model": "stt-rt-v5",
            "audio_format": "pcm_s16le",
            "sample_rate": 16000,
            "num_channels": 1,
            "enable_endpoint_detection": true,
            "enable_speaker_diarization": false,
            "enable_language_identification": false,
        })
    );
    assert_eq!(
        session.authorization.as_deref(),
        Some(format!("Bearer {KEY}").as_str())
    );
    assert!(!session.start_request_raw.as_deref().unwrap().contains(KEY));
    assert!(
        session.audio == wav_data(&sample_wav()),
        "the server got exactly the file's audio"
    );
    assert_eq!(session.end, Some(SessionEnd::Finished));

    // What went downstream: the words, timed by the tokens; DISCONT first; one
    // final-transcript after each utterance's last word; EOS last.
    let seen = recorder.seen();
    assert_words_match(&words(&seen), &script, |ms| ms * MS);
    let flags: Vec<bool> = seen
        .iter()
        .filter_map(|s| match s {
            Seen::Word { discont, .. } => Some(*discont),
            _ => None,
        })
        .collect();
    assert!(
        flags[0] && !flags[1..].iter().any(|d| *d),
        "only the first buffer is DISCONT"
    );
    let mut words_before_each_boundary = Vec::new();
    let mut count = 0;
    for s in &seen {
        match s {
            Seen::Word { .. } => count += 1,
            Seen::Custom(name) if name == "rstranscribe/final-transcript" => {
                words_before_each_boundary.push(count);
            }
            _ => {}
        }
    }
    let mut utterance_ends = Vec::new();
    let mut total = 0;
    for utterance in &script.utterances {
        total += utterance.words.len();
        utterance_ends.push(total);
    }
    assert_eq!(
        words_before_each_boundary, utterance_ends,
        "one final-transcript per utterance, after its last word"
    );
    assert!(matches!(seen.last(), Some(Seen::Eos(_))), "EOS comes last");

    // The bus: transcript messages whose finals add up to the transcript and which carry the
    // changing interim text; one endpoint per utterance; the session's life.
    let transcripts = run.structures("soniox/transcript");
    let finals: String = transcripts
        .iter()
        .map(|s| s.get::<String>("final").unwrap())
        .collect();
    assert_eq!(finals.trim(), script.transcript());
    let interims: Vec<String> = transcripts
        .iter()
        .map(|s| s.get::<String>("interim").unwrap())
        .filter(|i| !i.is_empty())
        .collect();
    assert!(!interims.is_empty(), "interim text is posted");
    let words_out: Vec<String> = words(&seen).into_iter().map(|w| w.0).collect();
    assert!(
        interims.iter().any(|i| i
            .split_whitespace()
            .any(|w| !words_out.iter().any(|o| o == w))),
        "some interim guesses differ from the final words (and never reached src)"
    );
    let token = transcripts[0].get::<gst::List>("tokens").unwrap();
    let token = token.first().unwrap().get::<gst::Structure>().unwrap();
    assert_eq!(token.name(), "soniox/token");
    assert!(token.has_field("text") && token.has_field("is-final") && token.has_field("pts"));
    assert!(transcripts
        .iter()
        .all(|s| s.get::<u32>("session").unwrap() == 1));

    let endpoints = run.structures("soniox/endpoint");
    let endpoint_texts: Vec<String> = endpoints
        .iter()
        .map(|s| s.get::<String>("text").unwrap())
        .collect();
    let utterance_texts: Vec<String> = script.utterances.iter().map(|u| u.text()).collect();
    assert_eq!(
        endpoint_texts, utterance_texts,
        "one soniox/endpoint per utterance"
    );
    for (endpoint, utterance) in endpoints.iter().zip(&script.utterances) {
        let end = utterance.words.last().unwrap().end_ms * MS;
        assert!(endpoint.get::<u64>("pts").unwrap().abs_diff(end) <= MS);
    }
    assert_eq!(run.session_events(), vec!["connected", "finished"]);
}

#[test]
fn words_finalized_only_at_the_end_of_audio_all_come_out_before_eos() {
    let script = sample_script();
    let server = server(script.clone(), |c| {
        c.auto_final_lag_ms = None;
        c.endpoints = false;
    });
    let (pipeline, stt) = sample_pipeline(&server, "");
    let recorder = Recorder::attach(&stt);
    let run = run(&pipeline, WAIT);
    assert!(run.eos, "error: {:?}", run.error());
    let seen = recorder.seen();
    assert_words_match(&words(&seen), &script, |ms| ms * MS);
    let tail: Vec<&Seen> = seen.iter().rev().take(2).collect();
    assert!(matches!(tail[0], Seen::Eos(_)), "EOS follows the last word");
    assert_eq!(
        tail[1],
        &Seen::Custom("rstranscribe/final-transcript".into())
    );
    assert!(run.structures("soniox/endpoint").is_empty());
}

/// Runs `source ! sonioxstt` over generated audio and returns what the server received.
fn raw_input(source: &str) -> SessionRecord {
    let script = Script::from_utterances(&[("Testing one two.", 100, 900)]);
    let server = server(script.clone(), |_| {});
    let (pipeline, stt) = launch(&format!(
        "{source} ! sonioxstt name=stt pace=0 url={} api-key={KEY} ! fakesink sync=false",
        server.url()
    ));
    let recorder = Recorder::attach(&stt);
    let run = run(&pipeline, WAIT);
    assert!(run.eos, "error: {:?}", run.error());
    assert_words_match(&recorder.words(), &script, |ms| ms * MS);
    server.sessions().remove(0)
}

#[test]
fn mulaw_reaches_the_server_unconverted() {
    let session = raw_input(
        "audiotestsrc num-buffers=50 samplesperbuffer=160 ! audio/x-raw,rate=8000,channels=1 ! mulawenc",
    );
    let request = session.start_request.unwrap();
    assert_eq!(request["audio_format"], "mulaw");
    assert_eq!(request["sample_rate"], 8000);
    assert_eq!(request["num_channels"], 1);
    assert_eq!(session.audio.len(), 50 * 160, "one byte per μ-law sample");
}

#[test]
fn alaw_reaches_the_server_unconverted() {
    let session = raw_input(
        "audiotestsrc num-buffers=60 samplesperbuffer=160 ! audio/x-raw,rate=8000,channels=1 ! alawenc",
    );
    let request = session.start_request.unwrap();
    assert_eq!(request["audio_format"], "alaw");
    assert_eq!(session.audio.len(), 60 * 160);
}

#[test]
fn f32le_reaches_the_server_unconverted() {
    let session = raw_input(
        "audiotestsrc num-buffers=20 samplesperbuffer=1600 ! audio/x-raw,format=F32LE,rate=16000,channels=1",
    );
    let request = session.start_request.unwrap();
    assert_eq!(request["audio_format"], "pcm_f32le");
    assert_eq!(request["sample_rate"], 16000);
    assert_eq!(request["num_channels"], 1);
    assert_eq!(session.audio.len(), 20 * 1600 * 4);
}

#[test]
fn a_forward_jump_in_input_timestamps_moves_only_the_words_after_it() {
    // Words before and after the jump at 3 s of audio.
    let script = Script::from_utterances(&[
        ("Before the jump.", 500, 2500),
        ("After the jump.", 3500, 5500),
    ]);
    let server = server(script.clone(), |_| {});
    let stt = element(&server);
    stt.set_property("pace", 0.0);
    let recorder = Recorder::attach(&stt);
    let (mut h, _bus) = harness(&stt, &s16_caps(16000));
    for i in 0..30 {
        h.push(silence(16000, Some(i * 100), 100, false)).unwrap();
    }
    // The input jumps 6 s forward.
    for i in 0..40 {
        h.push(silence(16000, Some(9000 + i * 100), 100, i == 0))
            .unwrap();
    }
    h.push_event(gst::event::Eos::new());
    assert!(recorder.wait_eos(WAIT));
    assert_words_match(&recorder.words(), &script, |ms| {
        if ms < 3000 {
            ms * MS
        } else {
            (ms + 6000) * MS
        }
    });
}

#[test]
fn buffers_without_timestamps_follow_the_previous_ones() {
    let script = Script::from_utterances(&[("One two three.", 200, 1800)]);
    let server = server(script.clone(), |_| {});
    let stt = element(&server);
    stt.set_property("pace", 0.0);
    let recorder = Recorder::attach(&stt);
    let (mut h, _bus) = harness(&stt, &s16_caps(16000));
    h.push(silence(16000, Some(40_000), 100, false)).unwrap();
    for _ in 0..19 {
        h.push(silence(16000, None, 100, false)).unwrap();
    }
    h.push_event(gst::event::Eos::new());
    assert!(recorder.wait_eos(WAIT));
    assert_words_match(&recorder.words(), &script, |ms| (40_000 + ms) * MS);
}

#[test]
fn finalize_event_and_signal_each_send_finalize() {
    let script = Script::from_utterances(&[("One two.", 100, 900), ("Three four.", 1300, 2600)]);
    let server = server(script.clone(), |c| {
        c.auto_final_lag_ms = None;
        c.endpoints = false;
    });
    let stt = element(&server);
    stt.set_property("pace", 0.0);
    let recorder = Recorder::attach(&stt);
    let (mut h, bus) = harness(&stt, &s16_caps(16000));
    for i in 0..10 {
        h.push(silence(16000, Some(i * 100), 100, false)).unwrap();
    }
    // In order with the audio: after exactly 1 s of it.
    h.push_event(gst::event::CustomDownstream::new(
        gst::Structure::new_empty("soniox/finalize"),
    ));
    assert!(
        recorder.wait_for(WAIT, |s| words(s).len() == 2),
        "the finalized words come out"
    );
    for i in 10..30 {
        h.push(silence(16000, Some(i * 100), 100, false)).unwrap();
    }
    assert!(server.wait_until(WAIT, |s| s[0].audio.len() == 3 * 32_000));
    stt.emit_by_name::<()>("finalize", &[]);
    assert!(
        recorder.wait_for(WAIT, |s| words(s).len() == 4),
        "the signal finalizes the rest"
    );
    h.push_event(gst::event::Eos::new());
    assert!(recorder.wait_eos(WAIT));

    let session = server.sessions().remove(0);
    let finalizes: Vec<usize> = session
        .events
        .iter()
        .filter(|e| matches!(e.kind, ClientEventKind::Finalize { .. }))
        .map(|e| e.audio_bytes_before)
        .collect();
    assert_eq!(
        finalizes,
        vec![32_000, 3 * 32_000],
        "each sends one finalize, the event in stream order"
    );
    let finalized = drain_bus(&bus)
        .iter()
        .filter(|m| {
            m.structure()
                .is_some_and(|s| s.name() == "soniox/finalized")
        })
        .count();
    assert_eq!(finalized, 2, "soniox/finalized for each <fin>");
    // The custom event was consumed, not forwarded.
    assert!(!recorder
        .seen()
        .iter()
        .any(|s| matches!(s, Seen::Custom(n) if n == "soniox/finalize")));
    assert_words_match(&recorder.words(), &script, |ms| ms * MS);
}

#[test]
fn output_segment_base_is_shifted_by_lateness() {
    let script = Script::from_utterances(&[("Late words.", 100, 900)]);
    let server = server(script, |_| {});
    let (pipeline, stt) = launch(&format!(
        "audiotestsrc num-buffers=10 samplesperbuffer=1600 ! audio/x-raw,rate=16000,channels=1 ! \
         sonioxstt name=stt pace=0 lateness=1000 url={} api-key={KEY} ! fakesink sync=false",
        server.url()
    ));
    let recorder = Recorder::attach(&stt);
    assert!(run(&pipeline, WAIT).eos);
    let segment = recorder
        .seen()
        .into_iter()
        .find_map(|s| match s {
            Seen::Segment(segment) => Some(segment),
            _ => None,
        })
        .unwrap();
    assert_eq!(segment.base(), Some(gst::ClockTime::from_seconds(1)));
}

#[test]
fn speaker_changes_come_before_the_new_speakers_first_word() {
    let script = Script::parse(
        "speaker 1\n100 400 Hello\n400 800 there.\n\nspeaker 2\n1500 1900 Hi\n1900 2300 back.\n\nspeaker 1\n3000 3400 Bye.\n",
    )
    .unwrap();
    let server = server(script.clone(), |_| {});
    let (pipeline, stt) = launch(&format!(
        "audiotestsrc num-buffers=45 samplesperbuffer=1600 ! audio/x-raw,rate=16000,channels=1 ! \
         sonioxstt name=stt pace=0 enable-speaker-diarization=true language-code=en-US url={} api-key={KEY} ! \
         fakesink sync=false",
        server.url()
    ));
    let recorder = Recorder::attach(&stt);
    assert!(run(&pipeline, WAIT).eos);
    assert_eq!(
        server.sessions()[0].start_request.as_ref().unwrap()["enable_speaker_diarization"],
        true
    );
    assert_eq!(
        server.sessions()[0].start_request.as_ref().unwrap()["language_hints"],
        serde_json::json!(["en"])
    );
    let order: Vec<String> = recorder
        .seen()
        .into_iter()
        .filter_map(|s| match s {
            Seen::Word { text, .. } => Some(text),
            Seen::SpeakerChange(speaker) => Some(format!("<speaker {speaker}>")),
            Seen::Language(language) => Some(format!("<language {language}>")),
            _ => None,
        })
        .collect();
    assert_eq!(
        order,
        vec![
            "<language en>",
            "<speaker 1>",
            "Hello",
            "there.",
            "<speaker 2>",
            "Hi",
            "back.",
            "<speaker 1>",
            "Bye."
        ]
    );
}

#[test]
fn a_flush_aborts_the_session_and_the_next_buffer_starts_a_clean_one() {
    let script = Script::from_utterances(&[("One two three.", 100, 900)]);
    let server = server(script.clone(), |_| {});
    let stt = element(&server);
    stt.set_property("pace", 0.0);
    let recorder = Recorder::attach(&stt);
    let (mut h, _bus) = harness(&stt, &s16_caps(16000));
    // Half a second into the first session: the words are still non-final there.
    for i in 0..5 {
        h.push(silence(16000, Some(i * 100), 100, false)).unwrap();
    }
    assert!(server.wait_until(WAIT, |s| s.first().is_some_and(|r| r.audio.len() == 16_000)));
    let start = std::time::Instant::now();
    assert!(h.push_event(gst::event::FlushStart::new()));
    assert!(h.push_event(gst::event::FlushStop::new(true)));
    assert!(
        start.elapsed() < std::time::Duration::from_secs(1),
        "flush took {:?}",
        start.elapsed()
    );
    assert!(
        server.wait_until(WAIT, |s| s[0].end.is_some()),
        "the first session was closed"
    );

    let mut segment = gst::FormattedSegment::<gst::ClockTime>::new();
    segment.set_start(gst::ClockTime::from_seconds(10));
    segment.set_time(gst::ClockTime::from_seconds(10));
    assert!(h.push_event(gst::event::Segment::new(&segment)));
    for i in 0..20 {
        h.push(silence(16000, Some(10_000 + i * 100), 100, i == 0))
            .unwrap();
    }
    h.push_event(gst::event::Eos::new());
    assert!(recorder.wait_eos(WAIT));
    let sessions = server.sessions();
    assert_eq!(sessions.len(), 2, "a new session after the flush");
    assert_ne!(
        sessions[0].end,
        Some(SessionEnd::Finished),
        "the first was aborted, not drained"
    );
    assert_eq!(sessions[1].audio.len(), 2 * 32_000);
    assert_words_match(&recorder.words(), &script, |ms| (10_000 + ms) * MS);
}

#[test]
fn bad_language_hints_are_a_warning_and_not_sent_and_endpoint_sensitivity_is() {
    let server = server(Script::from_utterances(&[("Hi.", 100, 400)]), |_| {});
    let (pipeline, _stt) = launch(&format!(
        "audiotestsrc num-buffers=10 samplesperbuffer=1600 ! audio/x-raw,rate=16000,channels=1 ! \
         sonioxstt name=stt pace=0 language-hints=\"<english,de,xx>\" endpoint-sensitivity=0.25 \
         url={} api-key={KEY} ! fakesink sync=false",
        server.url()
    ));
    let run = run(&pipeline, WAIT);
    assert!(run.eos, "{:?}", run.error());
    assert!(
        run.warnings().contains(
            &"Language hints that are not ISO 639-1 codes are not sent: english, xx".to_string()
        ),
        "{:?}",
        run.warnings()
    );
    let request = server.sessions()[0].start_request.clone().unwrap();
    assert_eq!(request["language_hints"], serde_json::json!(["de"]));
    assert_eq!(request["endpoint_sensitivity"], 0.25);
}
