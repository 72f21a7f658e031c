// SPDX-License-Identifier: MPL-2.0
//! Real-time behaviour: the latency promise, GAP events over silence, pacing of files, and
//! a server that stops reading. These runs take real time (10–20 s each); they run in
//! parallel with each other.

mod common;

use std::time::{Duration, Instant};

use common::*;
use gst::prelude::*;

const RATE: u64 = 16_000;
const BYTES_PER_MS: u64 = RATE * 2 / 1000;
const CHUNK_MS: u64 = 20;

/// Words pushed: text, PTS, duration.
type Words = Vec<(String, Option<u64>, Option<u64>)>;

/// A live `sonioxstt` in a harness (upstream answers the latency query as live).
fn live_harness(stt: &gst::Element) -> (gst_check::Harness, gst::Bus) {
    let (mut h, bus) = harness(stt, &s16_caps(RATE as i32));
    h.set_upstream_latency(gst::ClockTime::from_mseconds(CHUNK_MS));
    (h, bus)
}

/// The sample pushed live into `stt`, in real time, then EOS, waited for: what `src` carried,
/// the harness (it holds the element), its bus, and when each chunk was pushed.
fn sample_live(stt: &gst::Element) -> (Recorder, gst_check::Harness, gst::Bus, Vec<Instant>) {
    let recorder = Recorder::attach(stt);
    let (mut h, bus) = live_harness(stt);
    let audio = wav_data(&sample_wav());
    let (pushed_at, _) = push_live(&mut h, &audio, RATE, CHUNK_MS);
    h.push_event(gst::event::Eos::new());
    assert!(recorder.wait_eos(WAIT));
    (recorder, h, bus, pushed_at)
}

fn warnings(bus: &gst::Bus) -> Vec<String> {
    drain_bus(bus)
        .iter()
        .filter_map(|m| match m.view() {
            gst::MessageView::Warning(w) => Some(w.error().to_string()),
            _ => None,
        })
        .collect()
}

#[test]
fn live_words_keep_the_latency_promise_when_the_service_finalizes_only_on_request() {
    words_keep_the_latency_promise(false);
}

#[test]
fn live_words_keep_the_latency_promise_when_the_service_is_quiet_too() {
    words_keep_the_latency_promise(true);
}

/// Against a service that makes nothing final by itself (and, if `quiet`, says nothing
/// while no word is due).
fn words_keep_the_latency_promise(quiet: bool) {
    const LATENCY_MS: u64 = 2000;
    let script = sample_script();
    let server = server(script.clone(), |c| {
        c.auto_final_lag_ms = None;
        c.endpoints = false;
        c.quiet = quiet;
    });
    let stt = element(&server);
    stt.set_property("latency", LATENCY_MS as u32);
    let (recorder, _h, bus, pushed_at) = sample_live(&stt);

    assert_words_match(&recorder.words(), &script, |ms| ms * MS);
    // Each word, from the moment the buffer holding its first sample was pushed.
    let mut worst = Duration::ZERO;
    for (seen, at) in recorder.seen_at() {
        let Seen::Word { text, pts, .. } = seen else {
            continue;
        };
        let chunk = (pts.unwrap() / MS / CHUNK_MS) as usize;
        let delay = at - pushed_at[chunk];
        worst = worst.max(delay);
        assert!(
            delay <= Duration::from_millis(LATENCY_MS + 200),
            "{text} reached src {delay:?} after its audio was pushed"
        );
    }
    let session = &server.sessions()[0];
    let finalizes: Vec<Duration> = session
        .events
        .iter()
        .filter(|e| matches!(e.kind, ClientEventKind::Finalize { .. }))
        .map(|e| e.at)
        .collect();
    assert!(
        finalizes.len() >= 5,
        "the element asked for finals itself: {finalizes:?}"
    );
    for pair in finalizes.windows(2) {
        // Sent ≥ 1.5 s apart; the server's clock reads them as they arrive (± a few ms).
        assert!(
            pair[1] - pair[0] >= Duration::from_millis(1490),
            "finalize requests {:?} apart",
            pair[1] - pair[0]
        );
    }
    let observed = stt.property::<u32>("max-observed-delay");
    assert!(
        observed > 0 && u64::from(observed) < LATENCY_MS,
        "max-observed-delay {observed} ms"
    );
    assert!(
        (worst.as_millis() as i64 - i64::from(observed)).abs() <= 100,
        "max-observed-delay {observed} ms agrees with the worst delay seen ({worst:?})"
    );
    assert!(warnings(&bus).is_empty(), "no late-word warning");
}

/// `granularity=sentence`, live, against a service that makes words final by itself (as
/// Soniox does, about 500 ms behind, with endpoints): each cue is a whole sentence.
#[test]
fn live_sentence_cues_are_whole_sentences_when_words_turn_final_steadily() {
    let (cues, sentences) = live_sentence_cues(|_| {});
    assert_eq!(cues, sentences, "one cue per sentence");
}

/// The same against a service that makes nothing final until the element asks: a sentence
/// whose next word comes too late for the last word's deadline is cut there, never across
/// two sentences.
#[test]
fn live_sentence_cues_are_cut_rather_than_late_when_the_service_finalizes_only_on_request() {
    let (cues, sentences) = live_sentence_cues(|c| {
        c.auto_final_lag_ms = None;
        c.endpoints = false;
    });
    let mut rest = sentences.iter();
    let mut sentence = rest.next().unwrap().as_str();
    for cue in &cues {
        if sentence.is_empty() {
            sentence = rest.next().unwrap();
        }
        let after = sentence
            .strip_prefix(cue.as_str())
            .unwrap_or_else(|| panic!("{cue:?} is not the start of {sentence:?}"));
        sentence = after.trim_start();
    }
}

/// The sample live, `granularity=sentence latency=2000`: each cue reaches src by its last
/// word's deadline (contract §4b), so no finished cue is held back; together the cues hold
/// every word once, in order, never overlapping. Returns the cues (one line each) and the
/// script's sentences.
fn live_sentence_cues(configure: impl FnOnce(&mut MockConfig)) -> (Vec<String>, Vec<String>) {
    const LATENCY_MS: u64 = 2000;
    let script = sample_script();
    let server = server(script.clone(), configure);
    let stt = element(&server);
    stt.set_property("latency", LATENCY_MS as u32);
    stt.set_property_from_str("granularity", "sentence");
    let (recorder, _h, bus, pushed_at) = sample_live(&stt);

    let cues = recorder.words();
    let all: Vec<String> = cues
        .iter()
        .flat_map(|c| {
            c.0.split_whitespace()
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect();
    let said: Vec<String> = script.words().map(|w| w.text.clone()).collect();
    assert_eq!(all, said, "every word, once, in order");
    for pair in cues.windows(2) {
        let end = pair[0].1.unwrap() + pair[0].2.unwrap();
        assert!(end <= pair[1].1.unwrap(), "overlap: {pair:?}");
    }
    for (seen, at) in recorder.seen_at() {
        let Seen::Word {
            text,
            pts,
            duration,
            ..
        } = seen
        else {
            continue;
        };
        let end_ms = (pts.unwrap() + duration.unwrap()) / MS;
        let last = script
            .words()
            .find(|w| w.end_ms.abs_diff(end_ms) <= 1)
            .unwrap_or_else(|| panic!("the cue {text:?} ends with a word of the script"));
        let delay = at - pushed_at[(last.start_ms / CHUNK_MS) as usize];
        assert!(
            delay <= Duration::from_millis(LATENCY_MS + 200),
            "the cue {text:?} reached src {delay:?} after its last word's audio was pushed"
        );
    }
    assert!(warnings(&bus).is_empty(), "no late-word warning");
    let sentences = script.utterances.iter().map(|u| u.text()).collect();
    (
        cues.iter().map(|c| c.0.replace('\n', " ")).collect(),
        sentences,
    )
}

/// 2 s of speech, 5 s of silence, 2 s of speech, 1 s of silence: 10 s live against a
/// stand-in that is `quiet` (no progress messages while no word is due) or not, with
/// `latency_ms`. Returns the script, what src carried and when, and when each 20 ms of audio
/// was pushed.
fn speech_pause_speech(
    quiet: bool,
    latency_ms: u32,
) -> (Script, Vec<(Seen, Instant)>, Vec<Instant>) {
    let script = Script::from_utterances(&[
        ("One two three four.", 300, 1900),
        ("Five six seven eight.", 7000, 8800),
    ]);
    let server = server(script.clone(), |c| c.quiet = quiet);
    let stt = element(&server);
    stt.set_property("latency", latency_ms);
    let recorder = Recorder::attach(&stt);
    let (mut h, _bus) = live_harness(&stt);
    let audio = vec![0u8; (10_000 * BYTES_PER_MS) as usize];
    let (pushed_at, _) = push_live(&mut h, &audio, RATE, CHUNK_MS);
    h.push_event(gst::event::Eos::new());
    assert!(recorder.wait_eos(WAIT));
    assert_words_match(&recorder.words(), &script, |ms| ms * MS);
    (script, recorder.seen_at(), pushed_at)
}

/// For every 10 ms of stream time: how long after its audio was pushed src had carried a word
/// or a GAP reaching past it (or EOS). The longest such wait.
fn longest_wait_for_coverage(seen: &[(Seen, Instant)], pushed_at: &[Instant]) -> Duration {
    let mut covered = 0u64;
    // (covered up to, since when), in order.
    let mut steps: Vec<(u64, Instant)> = Vec::new();
    for (item, at) in seen {
        let (start, end) = match item {
            Seen::Word { pts, duration, .. } => (pts.unwrap(), pts.unwrap() + duration.unwrap()),
            Seen::Gap { pts, duration } => (*pts, pts + duration.unwrap_or(0)),
            Seen::Eos(_) => (0, u64::MAX),
            _ => continue,
        };
        assert!(start + MS >= covered.min(start + MS), "{item:?}");
        if start <= covered + MS && end > covered {
            covered = end;
            steps.push((covered, *at));
        }
    }
    let mut longest = Duration::ZERO;
    for (chunk, pushed) in pushed_at.iter().enumerate() {
        for t in [
            chunk as u64 * CHUNK_MS,
            chunk as u64 * CHUNK_MS + CHUNK_MS / 2,
        ] {
            let t = t * MS;
            let (_, at) = steps
                .iter()
                .find(|(up_to, _)| *up_to > t)
                .expect("everything is covered by EOS");
            longest = longest.max(at.saturating_duration_since(*pushed));
        }
    }
    longest
}

fn gap_events_cover_the_silence_between_utterances(quiet: bool) {
    let (_, seen, _) = speech_pause_speech(quiet, 3000);
    let timed: Vec<(&Seen, Instant)> = seen
        .iter()
        .filter(|(s, _)| matches!(s, Seen::Word { .. } | Seen::Gap { .. }))
        .map(|(s, at)| (s, *at))
        .collect();
    // On the wire: from the first word to the last, never a second without a buffer or GAP.
    let first = timed
        .iter()
        .position(|(s, _)| matches!(s, Seen::Word { .. }))
        .unwrap();
    let last = timed
        .iter()
        .rposition(|(s, _)| matches!(s, Seen::Word { .. }))
        .unwrap();
    let longest_quiet = timed[first..=last]
        .windows(2)
        .map(|pair| pair[1].1 - pair[0].1)
        .max()
        .unwrap();
    // Against a quiet service GAPs come with the answers to the element's own finalizes,
    // which it sends as the latency (3 s) runs out.
    let bound = if quiet { 3 } else { 1 };
    assert!(
        longest_quiet <= Duration::from_secs(bound),
        "{longest_quiet:?} without a buffer or a GAP"
    );
    // In stream time: words and GAPs cover the silence, in order, never going back.
    let mut covered = 0;
    for (item, _) in &timed {
        let (start, end) = match item {
            Seen::Word { pts, duration, .. } => (pts.unwrap(), pts.unwrap() + duration.unwrap()),
            Seen::Gap { pts, duration } => (*pts, pts + duration.unwrap()),
            _ => unreachable!(),
        };
        assert!(start + MS >= covered, "{item:?} goes back before {covered}");
        if start <= covered + MS {
            covered = covered.max(end);
        }
    }
    let gaps_inside_silence = timed
        .iter()
        .filter(|(s, _)| matches!(s, Seen::Gap { pts, .. } if (2000 * MS..7000 * MS).contains(pts)))
        .count();
    assert!(
        gaps_inside_silence >= 3,
        "{gaps_inside_silence} GAPs in the silence"
    );
    assert!(
        covered >= 8800 * MS,
        "words and GAPs cover the stream without holes up to the last word (got to {covered} ns)"
    );
}

#[test]
fn gap_events_cover_silence_between_utterances() {
    gap_events_cover_the_silence_between_utterances(false);
}

#[test]
fn gap_events_cover_silence_between_utterances_even_when_the_service_is_quiet() {
    gap_events_cover_the_silence_between_utterances(true);
}

/// Contract §5 "Silence": by running time t + latency src has carried a word or a GAP
/// reaching past stream time t (here with 0.5 s to spare for a finalize's round trip).
fn every_instant_is_passed_within(quiet: bool) {
    let (_, seen, pushed_at) = speech_pause_speech(quiet, 2000);
    let longest = longest_wait_for_coverage(&seen, &pushed_at);
    println!("quiet {quiet}: every instant passed on src within {longest:?} of its capture");
    assert!(
        longest <= Duration::from_millis(2500),
        "an instant waited {longest:?} after its audio was captured"
    );
}

#[test]
fn every_instant_is_passed_on_src_within_latency_when_the_service_reports_progress() {
    every_instant_is_passed_within(false);
}

#[test]
fn every_instant_is_passed_on_src_within_latency_when_the_service_is_quiet() {
    every_instant_is_passed_within(true);
}

/// Runs the bundled sample as a file at `pace`: wall time, words, bytes the server got.
fn file_at_pace(pace: &str) -> (Duration, Words, usize) {
    let script = sample_script();
    let server = server(script, |_| {});
    let (pipeline, stt) = launch(&format!(
        "filesrc location={} ! wavparse ! sonioxstt name=stt pace={pace} url={} api-key={KEY} ! fakesink sync=false",
        sample_wav().display(),
        server.url()
    ));
    let recorder = Recorder::attach(&stt);
    let run = run(&pipeline, Duration::from_secs(60));
    assert!(run.eos, "EOS, no error: {:?}", run.error());
    let received = server.sessions()[0].audio.len();
    (run.elapsed, recorder.words(), received)
}

#[test]
fn a_file_at_pace_1_streams_in_real_time_after_the_burst() {
    let (elapsed, words, received) = file_at_pace("1");
    assert!(
        elapsed >= Duration::from_secs(14),
        "20 s of audio took {elapsed:?}"
    );
    assert_eq!(received, wav_data(&sample_wav()).len(), "every byte");
    assert_words_match(&words, &sample_script(), |ms| ms * MS);
}

#[test]
fn a_file_at_pace_0_goes_as_fast_as_the_socket_takes_it() {
    let (elapsed, words, received) = file_at_pace("0");
    assert!(
        elapsed < Duration::from_secs(3),
        "20 s of audio took {elapsed:?}"
    );
    assert_eq!(received, wav_data(&sample_wav()).len(), "every byte");
    assert_words_match(&words, &sample_script(), |ms| ms * MS);
}

/// Live input against a server that misbehaves with `fault` (after 2 s of audio); `audio_ms`
/// of the sample are pushed in real time. Returns what the harness saw and the server got.
struct FaultyRun {
    input: Vec<u8>,
    sessions: Vec<SessionRecord>,
    words: Words,
    longest_push: Duration,
    warnings: Vec<String>,
}

fn faulty_live_run(fault: Fault, audio_ms: u64) -> FaultyRun {
    // Timecoded audio: the stand-in (and the test) can tell where any piece of it comes from.
    let server = server(sample_script(), |c| {
        c.timecoded = true;
        c.session_faults = vec![vec![fault]];
    });
    let stt = element(&server);
    let recorder = Recorder::attach(&stt);
    let (mut h, bus) = live_harness(&stt);
    let input = soniox_mock::timecoded_s16le(RATE as u32, 0, audio_ms);
    let (_, longest_push) = push_live(&mut h, &input, RATE, CHUNK_MS);
    h.push_event(gst::event::Eos::new());
    assert!(recorder.wait_eos(WAIT));
    FaultyRun {
        input,
        sessions: server.sessions(),
        words: recorder.words(),
        longest_push,
        warnings: warnings(&bus),
    }
}

fn stall_for(duration: Duration) -> Fault {
    Fault::StallReadingAt {
        audio_ms: 2000,
        duration,
    }
}

#[test]
fn a_server_that_stops_reading_for_5_s_gets_the_held_audio_and_no_word_is_lost() {
    let run = faulty_live_run(stall_for(Duration::from_secs(5)), 10_000);
    assert!(
        run.longest_push <= Duration::from_millis(100),
        "a chain call took {:?}",
        run.longest_push
    );
    assert_eq!(run.sessions.len(), 1, "no reconnect: {:?}", run.warnings);
    assert_eq!(run.sessions[0].end, Some(SessionEnd::Finished));
    assert!(
        run.sessions[0].audio == run.input,
        "the server got every byte, in order"
    );
    assert!(
        !run.warnings.iter().any(|w| w.contains("dropped")),
        "nothing dropped: {:?}",
        run.warnings
    );
    assert_words_match(&run.words, &said_before(&sample_script(), 10_000), |ms| {
        ms * MS
    });
}

#[test]
fn a_server_that_stops_reading_for_13_s_is_replaced_and_no_word_is_lost() {
    let run = faulty_live_run(stall_for(Duration::from_secs(13)), 18_000);
    assert!(
        run.longest_push <= Duration::from_millis(100),
        "a chain call took {:?}",
        run.longest_push
    );
    assert_eq!(run.sessions.len(), 2, "{:?}", run.warnings);
    // The audio was held while the connection was suspect.
    assert_warned_and_nothing_dropped(
        &run.warnings,
        "Connection to Soniox lost: Soniox took no data for 10 s",
    );
    assert_words_match(&run.words, &said_before(&sample_script(), 18_000), |ms| {
        ms * MS
    });
}

#[test]
fn a_server_that_cannot_keep_up_drops_the_oldest_audio_with_a_warning_and_later_times_stay_exact() {
    // Alive (it answers pings and finalizes) but reading at a quarter of real time for 18 s.
    let fault = Fault::SlowReadingAt {
        audio_ms: 2000,
        speed: 0.25,
        duration: Duration::from_secs(18),
    };
    let run = faulty_live_run(fault, 20_000);
    assert!(
        run.longest_push <= Duration::from_millis(100),
        "a chain call took {:?}",
        run.longest_push
    );
    assert_eq!(run.sessions.len(), 1, "no reconnect: {:?}", run.warnings);
    let received = &run.sessions[0].audio;
    let hole_ms = (run.input.len() - received.len()) as u64 / BYTES_PER_MS;
    println!("a server at a quarter of real time: {hole_ms} ms of the oldest audio dropped");
    assert!(
        (500..=8000).contains(&hole_ms),
        "the oldest audio beyond 10 s was dropped: {hole_ms} ms"
    );
    assert!(
        run.warnings.iter().any(|w| w.contains("dropped")),
        "a warning says audio was dropped: {:?}",
        run.warnings
    );
    // Every word keeps the input time of its audio: the server heard it at session time t,
    // and the element maps t through the holes to the input time of that audio (read from
    // the timecode of each 10 ms the server got).
    let piece = (10 * BYTES_PER_MS) as usize;
    let input_ms: Vec<u64> = received
        .chunks_exact(piece)
        .map(|p| soniox_mock::timecode_offset_ms(p, RATE as u32).expect("a timecoded piece"))
        .collect();
    let heard = said_before(&sample_script(), received.len() as u64 / BYTES_PER_MS);
    assert_words_match(&run.words, &heard, |ms| {
        let i = ((ms / 10) as usize).min(input_ms.len() - 1);
        (input_ms[i] + ms - i as u64 * 10) * MS
    });
}

#[test]
fn a_live_session_rotates_in_the_pause_right_after_an_endpoint() {
    // max-session-duration 7 s: rotation may come from 6.3 s on, preferably in a pause.
    // "Before the pause." ends at 5.9 s, and its endpoint is due at 6.4 s; "After" spans 7 s,
    // the hard limit. The endpoint of "Hello there." (2.5 s) is long stale by then.
    let script = Script::from_utterances(&[
        ("Hello there.", 1000, 2000),
        ("Before the pause.", 4000, 5900),
        ("After it.", 6900, 8000),
    ]);
    let server = server(script.clone(), |c| c.timecoded = true);
    let stt = element(&server);
    stt.set_property("max-session-duration", 7000u32);
    let recorder = Recorder::attach(&stt);
    let (mut h, bus) = live_harness(&stt);
    push_live(
        &mut h,
        &soniox_mock::timecoded_s16le(RATE as u32, 0, 9000),
        RATE,
        CHUNK_MS,
    );
    h.push_event(gst::event::Eos::new());
    assert!(recorder.wait_eos(WAIT));

    assert_words_match(&recorder.words(), &script, |ms| ms * MS);
    let sessions = server.sessions();
    assert_eq!(sessions.len(), 2);
    assert!(sessions.iter().all(|s| s.end == Some(SessionEnd::Finished)));
    let cut = sessions[1]
        .stream_offset_ms
        .expect("the second session's position");
    assert!(
        (6400..6900).contains(&cut),
        "the new session starts at {cut} ms: in the pause after the endpoint at 6.4 s"
    );
    assert!(warnings(&bus).is_empty(), "{:?}", warnings(&bus));
}
