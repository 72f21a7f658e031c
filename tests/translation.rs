// SPDX-License-Identifier: MPL-2.0
//! Translation pads (contract §2 `translate_src_%u`, §4a): what each pad carries, timed by the
//! originals its text translates, against the stand-in's translation (each chunk of spoken
//! words comes back as "[fr] the words"), one-way and two-way, with the `<end>` before or
//! after the translation.

mod common;

use common::*;
use gst::prelude::*;
use serde_json::json;

/// A script word, as the test expects it back.
#[derive(Debug, Clone)]
struct Said {
    text: String,
    start_ms: u64,
    end_ms: u64,
    /// The last word of its utterance.
    last: bool,
}

/// The words of `script` whose utterances `keep` (by language, `None`: the session's).
fn said(script: &Script, keep: impl Fn(Option<&str>) -> bool) -> Vec<Said> {
    script
        .utterances
        .iter()
        .filter(|u| keep(u.language.as_deref()))
        .flat_map(|u| {
            let n = u.words.len();
            u.words.iter().enumerate().map(move |(i, w)| Said {
                text: w.text.clone(),
                start_ms: w.start_ms,
                end_ms: w.end_ms,
                last: i + 1 == n,
            })
        })
        .collect()
}

/// The run of a sample-like pipeline with translation pads (one queue per branch, as after
/// a demuxer): `languages` on translate_src_0, 1, …, set through the child proxy.
struct Translated {
    run: Run,
    src: Recorder,
    pads: Vec<Recorder>,
}

/// `script` (its text) through [`translate`], which must end in EOS.
fn translate_script(script: &str, extra: &str, languages: &[&str]) -> Translated {
    let server = server(Script::parse(script).unwrap(), |_| {});
    let out = translate(&server, extra, languages);
    assert!(out.run.eos, "{:?}", out.run.error());
    out
}

fn translate(server: &MockServer, extra: &str, languages: &[&str]) -> Translated {
    let mut description = format!(
        "filesrc location={} ! wavparse ! sonioxstt name=stt pace=0 url={} api-key={KEY} {extra}",
        sample_wav().display(),
        server.url()
    );
    for (i, language) in languages.iter().enumerate() {
        description.push_str(&format!(" translate_src_{i}::language-code={language}"));
    }
    description.push_str(" stt.src ! queue ! fakesink sync=false");
    for i in 0..languages.len() {
        description.push_str(&format!(
            " stt.translate_src_{i} ! queue ! fakesink sync=false"
        ));
    }
    let (pipeline, stt) = launch(&description);
    let src = Recorder::attach(&stt);
    let pads = (0..languages.len())
        .map(|i| Recorder::attach_pad(&stt.static_pad(&format!("translate_src_{i}")).unwrap()))
        .collect();
    let run = run(&pipeline, WAIT);
    Translated { run, src, pads }
}

/// Asserts that `seen` is exactly the translation of `words` into `target`: each buffer one
/// chunk "[target] w1 w2 …" of consecutive words, in order, none missing or doubled, timed
/// from its first word's start to its last word's end within 1 ms; a final-transcript after
/// the chunk that ends each utterance, before anything else is pushed.
fn assert_translated(seen: &[Seen], words: &[Said], target: &str) {
    let prefix = format!("[{target}] ");
    let mut next = 0;
    let mut utterance_ended = false;
    let mut chunks = 0;
    for item in seen {
        match item {
            Seen::Word {
                text,
                pts,
                duration,
                meta,
                ..
            } => {
                assert!(
                    !utterance_ended,
                    "a final-transcript goes after the chunk that ends an utterance, before {text:?}"
                );
                let chunk = text
                    .strip_prefix(&prefix)
                    .unwrap_or_else(|| panic!("{text:?} is not a {target} translation"));
                let first = next;
                for word in chunk.split(' ') {
                    let expected = words.get(next).unwrap_or_else(|| {
                        panic!("{text:?}: more translated words than were said")
                    });
                    assert_eq!(word, expected.text, "in {text:?}");
                    next += 1;
                }
                let (first, last) = (&words[first], &words[next - 1]);
                let (pts, duration) = (pts.unwrap(), duration.unwrap());
                assert!(
                    pts.abs_diff(first.start_ms * MS) <= MS,
                    "{text:?}: PTS {pts} vs its originals' start {} ms",
                    first.start_ms
                );
                assert!(
                    (pts + duration).abs_diff(last.end_ms * MS) <= MS,
                    "{text:?}: end {} vs its originals' end {} ms",
                    pts + duration,
                    last.end_ms
                );
                let meta = meta.as_ref().expect("SonioxWordMeta");
                assert_eq!(meta.get::<String>("language").unwrap(), target);
                utterance_ended = last.last;
                chunks += 1;
            }
            Seen::Custom(name) if name == "rstranscribe/final-transcript" => {
                utterance_ended = false;
            }
            _ => {}
        }
    }
    assert!(
        !utterance_ended,
        "a final-transcript after the last utterance"
    );
    assert_eq!(next, words.len(), "every word said was translated, once");
    assert!(chunks > 0);
}

fn languages_tagged(seen: &[Seen]) -> Vec<String> {
    seen.iter()
        .filter_map(|s| match s {
            Seen::Language(language) => Some(language.clone()),
            _ => None,
        })
        .collect()
}

fn eos_count(seen: &[Seen]) -> usize {
    seen.iter().filter(|s| matches!(s, Seen::Eos(_))).count()
}

fn one_way_french(late_translation: bool) {
    let script = sample_script();
    let server = server(script.clone(), |c| c.late_translation = late_translation);
    let out = translate(&server, "", &["fr-FR"]);
    assert!(out.run.eos, "{:?}", out.run.error());

    let sessions = server.sessions();
    assert_eq!(sessions.len(), 1, "one target: one session");
    let request = sessions[0].start_request.clone().unwrap();
    assert_eq!(
        request["translation"],
        json!({"type": "one_way", "target_language": "fr"})
    );
    // src: the original words, exactly once.
    assert_words_match(&out.src.words(), &script, |ms| ms * MS);
    // The pad: the translation, timed by its originals.
    let seen = out.pads[0].seen();
    assert_translated(&seen, &said(&script, |_| true), "fr");
    assert_eq!(languages_tagged(&seen), ["fr"]);
    assert_eq!(eos_count(&seen), 1);
    assert_eq!(eos_count(&out.src.seen()), 1);
    assert!(
        seen.iter()
            .any(|s| matches!(s, Seen::Gap { duration: Some(d), .. } if *d > 0)),
        "GAPs over the silences"
    );
}

#[test]
fn one_way_french_gets_each_chunk_timed_by_its_originals() {
    one_way_french(false);
}

#[test]
fn a_translation_that_comes_after_its_end_keeps_the_final_transcript_after_it() {
    one_way_french(true);
}

/// An English-Spanish conversation, one utterance each in turn, with a bit of French.
fn bilingual() -> Script {
    Script::parse(
        "500 900 Good\n900 1500 morning.\n\n\
         language es\n2500 2900 Buenos\n2900 3500 días.\n\n\
         language fr\n4500 5000 Bonjour.\n\n\
         6000 6400 How\n6400 6700 are\n6700 7200 you?\n\n\
         language es\n8000 8500 Muy\n8500 9000 bien.\n",
    )
    .unwrap()
}

#[test]
fn two_way_gives_each_pad_the_translations_into_its_language() {
    let script = bilingual();
    let server = server(script.clone(), |_| {});
    let out = translate(&server, "translation=two-way", &["en", "es"]);
    assert!(out.run.eos, "{:?}", out.run.error());
    let sessions = server.sessions();
    assert_eq!(sessions.len(), 1, "two-way: one session");
    assert_eq!(
        sessions[0].start_request.clone().unwrap()["translation"],
        json!({"type": "two_way", "language_a": "en", "language_b": "es"})
    );
    assert_words_match(&out.src.words(), &script, |ms| ms * MS);
    let from = |language: &'static str| move |l: Option<&str>| l.unwrap_or("en") == language;
    // Spanish speech, translated into English, on the English pad; and the other way.
    assert_translated(&out.pads[0].seen(), &said(&script, from("es")), "en");
    assert_translated(&out.pads[1].seen(), &said(&script, from("en")), "es");
    assert_eq!(languages_tagged(&out.pads[0].seen()), ["en"]);
    assert_eq!(languages_tagged(&out.pads[1].seen()), ["es"]);
}

#[test]
fn two_way_with_other_than_two_pads_is_an_error_naming_the_count() {
    for languages in [&["en"][..], &["en", "es", "de"][..]] {
        let server = server(bilingual(), |_| {});
        let out = translate(&server, "translation=two-way", languages);
        let (error, _) = out.run.error().expect("an error");
        assert!(
            error.contains(&format!(
                "exactly two translation pads, and there are {}",
                languages.len()
            )),
            "{error}"
        );
        assert!(server.sessions().is_empty(), "nothing was sent");
    }
}

#[test]
fn a_pad_with_no_language_while_audio_flows_is_an_error_naming_it() {
    let server = server(sample_script(), |_| {});
    let (pipeline, _stt) = launch(&format!(
        "filesrc location={} ! wavparse ! sonioxstt name=stt pace=0 url={} api-key={KEY} \
         stt.src ! queue ! fakesink stt.translate_src_0 ! queue ! fakesink",
        sample_wav().display(),
        server.url()
    ));
    let run = run(&pipeline, WAIT);
    let (error, _) = run.error().expect("an error");
    assert!(error.contains("translate_src_0 has no language"), "{error}");
}

#[test]
fn one_way_into_two_languages_runs_a_session_for_each_and_keeps_src_single() {
    let script = sample_script();
    let server = server(script.clone(), |_| {});
    let out = translate(&server, "", &["fr", "de"]);
    assert!(out.run.eos, "{:?}", out.run.error());
    let mut targets: Vec<serde_json::Value> = server
        .sessions()
        .iter()
        .map(|s| s.start_request.clone().unwrap()["translation"]["target_language"].clone())
        .collect();
    targets.sort_by_key(|t| t.to_string());
    assert_eq!(targets, [json!("de"), json!("fr")], "a session per target");
    assert_words_match(&out.src.words(), &script, |ms| ms * MS);
    let all = said(&script, |_| true);
    assert_translated(&out.pads[0].seen(), &all, "fr");
    assert_translated(&out.pads[1].seen(), &all, "de");
    // The bus carries the programme once: the German session posts only its translation.
    let finals: String = out
        .run
        .structures("soniox/transcript")
        .iter()
        .map(|s| s.get::<String>("final").unwrap())
        .collect();
    assert_eq!(finals.matches("Hello").count(), 1, "{finals}");
    let translated: String = out
        .run
        .structures("soniox/transcript")
        .iter()
        .map(|s| s.get::<String>("translation-final").unwrap())
        .collect();
    assert!(translated.contains("[fr] Hello,") && translated.contains("[de] Hello,"));
}

#[test]
fn speech_already_in_the_target_reaches_its_pad_as_spoken() {
    let out = translate_script(
        "500 900 Hello\n900 1500 there.\n\nlanguage fr\n2500 2900 Bonjour\n2900 3500 Paris.\n",
        "",
        &["fr"],
    );
    let pad = words(&out.pads[0].seen());
    let (translated, spoken) = pad.split_at(pad.len() - 2);
    let translated: Vec<&str> = translated
        .iter()
        .map(|w| w.0.strip_prefix("[fr] ").unwrap())
        .collect();
    assert_eq!(translated.join(" "), "Hello there.");
    let spoken: Vec<_> = spoken
        .iter()
        .map(|(t, p, d)| (t.as_str(), *p, *d))
        .collect();
    assert_eq!(
        spoken,
        [
            ("Bonjour", Some(2500 * MS), Some(400 * MS)),
            ("Paris.", Some(2900 * MS), Some(600 * MS))
        ],
        "the French words as spoken, timed as spoken"
    );
}

#[test]
fn translation_pads_answer_latency_with_translate_latency_more() {
    init();
    let pipeline = gst::parse::launch(
        "audiotestsrc is-live=true ! audio/x-raw,format=S16LE,rate=16000,channels=1 ! \
         sonioxstt name=stt latency=2000 translate-latency=1500 url=ws://127.0.0.1:9/x api-key=k \
         stt.src ! fakesink stt.translate_src_0 ! fakesink",
    )
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    let stt = pipeline.by_name("stt").unwrap();
    pipeline.set_state(gst::State::Paused).unwrap();
    let query = |pad: &str| {
        let mut q = gst::query::Latency::new();
        assert!(stt.static_pad(pad).unwrap().query(&mut q), "{pad} answers");
        q.result()
    };
    // On top of what the source itself says (nothing, or a buffer's worth once it has
    // negotiated: that depends on how far it got).
    let upstream = || {
        let mut q = gst::query::Latency::new();
        match stt.static_pad("sink").unwrap().peer_query(&mut q) {
            true => q.result().1,
            false => gst::ClockTime::ZERO,
        }
    };
    let (live, min, _) = query("translate_src_0");
    assert!(live);
    assert_eq!(
        min,
        upstream() + gst::ClockTime::from_mseconds(3500),
        "no language yet, and it answers"
    );
    assert_eq!(
        query("src").1,
        upstream() + gst::ClockTime::from_mseconds(2000)
    );
    let pad = stt.static_pad("translate_src_0").unwrap();
    pad.set_property("language-code", "fr");
    assert_eq!(
        pad.property::<Option<String>>("language-code").as_deref(),
        Some("fr")
    );
    // The child proxy reaches it by name, as gst-launch does.
    let proxy = stt.dynamic_cast_ref::<gst::ChildProxy>().unwrap();
    assert_eq!(
        proxy
            .child_property::<Option<String>>("translate_src_0::language-code")
            .as_deref(),
        Some("fr")
    );
    pipeline.set_state(gst::State::Null).unwrap();
}

/// A stand-in that recognizes where in the sample each session's audio comes from (so
/// replays and rotations hear the right words), translating late: each chunk in the
/// message after its originals, so a connection can break in between.
fn recognizing(configure: impl FnOnce(&mut MockConfig)) -> MockServer {
    server(sample_script(), |c| {
        c.reference_audio = Some(std::sync::Arc::new(wav_data(&sample_wav())));
        c.late_translation = true;
        configure(c);
    })
}

#[test]
fn a_reconnect_replays_what_was_final_but_not_yet_translated() {
    let script = sample_script();
    for drop_ms in [3000, 4300, 6000, 7600, 9800] {
        let server = recognizing(|c| {
            c.session_faults = vec![vec![Fault::DropAt { audio_ms: drop_ms }]];
        });
        let out = translate(&server, "", &["fr"]);
        assert!(out.run.eos, "drop at {drop_ms}: {:?}", out.run.error());
        assert_eq!(
            server.sessions().len(),
            2,
            "drop at {drop_ms}: one reconnect"
        );
        assert_words_match(&out.src.words(), &script, |ms| ms * MS);
        assert_translated(&out.pads[0].seen(), &said(&script, |_| true), "fr");
    }
}

#[test]
fn a_rotation_keeps_every_translated_chunk_once() {
    let script = sample_script();
    let server = recognizing(|_| {});
    let out = translate(&server, "max-session-duration=7000", &["fr"]);
    assert!(out.run.eos, "{:?}", out.run.error());
    let sessions = server.sessions();
    assert!(sessions.len() >= 2, "rotated");
    // A rotation at the hard limit may cut a word: the session before heard it up to there.
    let heard = heard_across_sessions(&script, &sessions);
    assert_words_match(&out.src.words(), &heard, |ms| ms * MS);
    assert_translated(&out.pads[0].seen(), &said(&heard, |_| true), "fr");
}

/// Live: each chunk reaches its pad within `latency + translate-latency` of its originals'
/// audio, also the last chunk of a sentence, which only its deadline can complete (the next
/// original comes after a pause longer than that).
#[test]
fn live_translations_keep_latency_plus_translate_latency() {
    const RATE: u64 = 16_000;
    const CHUNK_MS: u64 = 20;
    const BUDGET_MS: u64 = 1500 + 500;
    let script = sample_script();
    let server = server(script.clone(), |c| c.late_translation = true);
    let stt = element(&server);
    stt.set_property("latency", 1500u32);
    stt.set_property("translate-latency", 500u32);
    let pad = stt.request_pad_simple("translate_src_0").unwrap();
    pad.set_property("language-code", "fr");
    let sink = gst::ElementFactory::make("fakesink")
        .property("sync", false)
        .property("async", false)
        .build()
        .unwrap();
    sink.set_state(gst::State::Playing).unwrap();
    pad.link(&sink.static_pad("sink").unwrap()).unwrap();
    let translated = Recorder::attach_pad(&pad);
    let (mut h, _bus) = harness(&stt, &s16_caps(RATE as i32));
    h.set_upstream_latency(gst::ClockTime::from_mseconds(CHUNK_MS));
    let mut query = gst::query::Latency::new();
    assert!(pad.query(&mut query));
    assert_eq!(
        query.result().1,
        gst::ClockTime::from_mseconds(CHUNK_MS + BUDGET_MS)
    );

    let (pushed_at, _) = push_live(&mut h, &wav_data(&sample_wav()), RATE, CHUNK_MS);
    h.push_event(gst::event::Eos::new());
    assert!(translated.wait_eos(WAIT));
    assert_translated(&translated.seen(), &said(&script, |_| true), "fr");
    for (seen, at) in translated.seen_at() {
        let Seen::Word { text, pts, .. } = seen else {
            continue;
        };
        let chunk = (pts.unwrap() / MS / CHUNK_MS) as usize;
        let delay = at - pushed_at[chunk];
        assert!(
            delay <= std::time::Duration::from_millis(BUDGET_MS + 200),
            "{text} reached its pad {delay:?} after its audio was pushed"
        );
    }
    sink.set_state(gst::State::Null).unwrap();
}

/// `granularity=sentence` on a translation pad: cues of whole chunks, at most two lines of
/// 42 characters, never overlapping, holding the whole translation in order.
#[test]
fn sentence_cues_on_a_translation_pad_hold_the_whole_translation() {
    let script = sample_script();
    let server = server(script.clone(), |_| {});
    let out = translate(&server, "granularity=sentence", &["fr"]);
    assert!(out.run.eos, "{:?}", out.run.error());
    let cues = words(&out.pads[0].seen());
    let mut end = 0;
    for (text, pts, duration) in &cues {
        assert!(text.lines().count() <= 2, "{text:?}");
        assert!(text.lines().all(|l| l.chars().count() <= 42), "{text:?}");
        let pts = pts.unwrap();
        assert!(pts >= end, "{text:?} overlaps the cue before");
        end = pts + duration.unwrap();
    }
    let all: Vec<String> = cues
        .iter()
        .flat_map(|(text, _, _)| text.split_whitespace().map(str::to_string))
        .filter(|w| w != "[fr]")
        .collect();
    let spoken: Vec<String> = script.words().map(|w| w.text.clone()).collect();
    assert_eq!(all, spoken);
    let posted = out.run.structures("soniox/cue");
    assert!(posted
        .iter()
        .any(|c| c.get::<String>("pad").unwrap() == "translate_src_0"));
    // Cues are fewer than chunks: chunks of one sentence share a cue.
    assert!(cues.len() < spoken.len(), "{cues:?}");
}

/// At input time 6 s, a translation pad is requested (and linked) while the file plays: the
/// element rotates to a translating session at the next pause, or 5 s of audio later if no
/// pause shows (as with a file sent ahead of what Soniox has heard), losing no word.
#[test]
fn a_pad_requested_while_playing_takes_effect_at_the_next_cut() {
    use std::sync::{Arc, Mutex};
    let script = sample_script();
    let server = recognizing(|_| {});
    let (pipeline, stt) = launch(&format!(
        "filesrc location={} ! wavparse ! sonioxstt name=stt pace=0 url={} api-key={KEY} \
         ! queue ! fakesink sync=false",
        sample_wav().display(),
        server.url()
    ));
    let src = Recorder::attach(&stt);
    let added: Arc<Mutex<Option<Recorder>>> = Arc::default();
    let into = added.clone();
    at_6s(&pipeline, &stt, move |pipeline, stt| {
        let pad = stt.request_pad_simple("translate_src_%u").unwrap();
        pad.set_property("language-code", "fr");
        *into.lock().unwrap() = Some(Recorder::attach_pad(&pad));
        let queue = gst::ElementFactory::make("queue").build().unwrap();
        // async=false: a sink added to a playing pipeline must not take it back to PAUSED
        // while it waits for its first buffer.
        let sink = gst::ElementFactory::make("fakesink")
            .property("sync", false)
            .property("async", false)
            .build()
            .unwrap();
        pipeline.add_many([&queue, &sink]).unwrap();
        queue.link(&sink).unwrap();
        sink.sync_state_with_parent().unwrap();
        queue.sync_state_with_parent().unwrap();
        pad.link(&queue.static_pad("sink").unwrap()).unwrap();
    });
    let run = run(&pipeline, WAIT);
    assert!(run.eos, "{:?}", run.error());
    let sessions = server.sessions();
    assert_eq!(sessions.len(), 2, "one rotation");
    assert!(sessions[0].start_request.clone().unwrap()["translation"].is_null());
    assert_eq!(
        sessions[1].start_request.clone().unwrap()["translation"],
        json!({"type": "one_way", "target_language": "fr"})
    );
    let rotated = run.structures("soniox/session");
    assert!(
        rotated
            .iter()
            .any(|s| s.get::<String>("event").unwrap() == "rotated"
                && s.get::<String>("reason").unwrap() == "translation pads changed"),
        "{rotated:?}"
    );
    let cut = sessions[1]
        .stream_offset_ms
        .expect("the second session was placed");
    assert!(
        (6000 - 600..=11_000 + 600).contains(&cut),
        "after the request, within 5 s: {cut} ms"
    );
    // Every word once (a word the cut went through was heard by the first session to there).
    let heard = heard_across_sessions(&script, &sessions);
    assert_words_match(&src.words(), &heard, |ms| ms * MS);
    let after: Vec<Said> = said(&script, |_| true)
        .into_iter()
        .filter(|w| w.start_ms >= cut)
        .collect();
    let recorder = added
        .lock()
        .unwrap()
        .clone()
        .expect("the pad was requested");
    let seen = recorder.seen();
    assert_translated(&seen, &after, "fr");
    assert_eq!(languages_tagged(&seen), ["fr"]);
    assert_eq!(eos_count(&seen), 1);
}

/// Calls `f` once, from the streaming thread (as an application's probe would), when the
/// input of `stt` reaches 6 s.
fn at_6s(
    pipeline: &gst::Pipeline,
    stt: &gst::Element,
    f: impl Fn(&gst::Pipeline, &gst::Element) + Send + Sync + 'static,
) {
    let weak = pipeline.downgrade();
    let done = std::sync::atomic::AtomicBool::new(false);
    stt.static_pad("sink")
        .unwrap()
        .add_probe(gst::PadProbeType::BUFFER, move |_, info| {
            let Some(gst::PadProbeData::Buffer(buffer)) = &info.data else {
                return gst::PadProbeReturn::Ok;
            };
            let (Some(pts), Some(pipeline)) = (buffer.pts(), weak.upgrade()) else {
                return gst::PadProbeReturn::Ok;
            };
            if pts < gst::ClockTime::from_seconds(6)
                || done.swap(true, std::sync::atomic::Ordering::Relaxed)
            {
                return gst::PadProbeReturn::Ok;
            }
            f(&pipeline, &pipeline.by_name("stt").unwrap());
            gst::PadProbeReturn::Remove
        });
}

/// Runs the sample with a French pad (its branch queued) and, when the input reaches 6 s,
/// `change` on the pad and its branch (from the streaming thread, as an application's probe
/// would); returns the run, the src and pad recorders.
fn change_at_6s(
    server: &MockServer,
    change: impl Fn(&gst::Pipeline, &gst::Element, &gst::Pad) + Send + Sync + 'static,
) -> (Run, Recorder, Recorder) {
    let (pipeline, stt) = launch(&format!(
        "filesrc location={} ! wavparse ! sonioxstt name=stt pace=0 url={} api-key={KEY} \
         translate_src_0::language-code=fr \
         stt.src ! queue ! fakesink sync=false \
         stt.translate_src_0 ! queue name=branch ! fakesink sync=false",
        sample_wav().display(),
        server.url()
    ));
    let src = Recorder::attach(&stt);
    let pad = stt.static_pad("translate_src_0").unwrap();
    let translated = Recorder::attach_pad(&pad);
    at_6s(&pipeline, &stt, move |pipeline, stt| {
        change(pipeline, stt, &stt.static_pad("translate_src_0").unwrap());
    });
    let run = run(&pipeline, WAIT);
    (run, src, translated)
}

/// The translated words of `seen`, in order, without the "[xx]" marks, with their languages.
fn translated_words(seen: &[Seen]) -> Vec<(String, String)> {
    words(seen)
        .iter()
        .flat_map(|(text, _, _)| {
            let (mark, rest) = text.split_once(' ').unwrap();
            let language = mark.trim_matches(['[', ']']).to_string();
            rest.split(' ')
                .map(move |w| (w.to_string(), language.clone()))
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn a_pad_given_another_language_while_playing_switches_at_the_next_cut() {
    let script = sample_script();
    let server = recognizing(|_| {});
    let (run, src, pad) = change_at_6s(&server, |_, _, pad| {
        pad.set_property("language-code", "de");
    });
    assert!(run.eos, "{:?}", run.error());
    let sessions = server.sessions();
    assert_eq!(sessions.len(), 2, "one rotation");
    assert_eq!(
        sessions[1].start_request.clone().unwrap()["translation"]["target_language"],
        "de"
    );
    let heard = heard_across_sessions(&script, &sessions);
    assert_words_match(&src.words(), &heard, |ms| ms * MS);
    let cut = sessions[1].stream_offset_ms.unwrap();
    // French up to the cut, German after it; every word once.
    let expected: Vec<(String, String)> = heard
        .words()
        .map(|w| {
            let language = if w.start_ms < cut { "fr" } else { "de" };
            (w.text.clone(), language.to_string())
        })
        .collect();
    let seen = pad.seen();
    assert_eq!(translated_words(&seen), expected);
    assert_eq!(languages_tagged(&seen), ["fr", "de"]);
    assert_eq!(eos_count(&seen), 1);
}

#[test]
fn a_pad_released_while_playing_ends_its_translation_at_the_next_cut() {
    let script = sample_script();
    let server = recognizing(|_| {});
    let (run, src, pad) = change_at_6s(&server, |pipeline, stt, pad| {
        let branch = pipeline.by_name("branch").unwrap();
        let sink = branch.static_pad("sink").unwrap();
        pad.unlink(&sink).unwrap();
        stt.release_request_pad(pad);
        // The application ends the branch it cut off.
        sink.send_event(gst::event::Eos::new());
    });
    assert!(run.eos, "{:?}", run.error());
    let sessions = server.sessions();
    assert_eq!(sessions.len(), 2, "one rotation");
    assert!(sessions[1].start_request.clone().unwrap()["translation"].is_null());
    let heard = heard_across_sessions(&script, &sessions);
    assert_words_match(&src.words(), &heard, |ms| ms * MS);
    // What went out before the release is French, in order, each word at most once.
    let before: Vec<String> = translated_words(&pad.seen())
        .into_iter()
        .map(|(w, _)| w)
        .collect();
    let said: Vec<String> = heard.words().map(|w| w.text.clone()).collect();
    assert!(said.starts_with(&before), "{before:?}");
}

#[test]
fn speaker_changes_reach_the_translation_pad_before_the_new_speakers_chunk() {
    let out = translate_script(
        "speaker 1\n500 900 Hello\n900 1500 there.\n\nspeaker 2\n2500 2900 Hi\n2900 3500 back.\n",
        "enable-speaker-diarization=true",
        &["fr"],
    );
    let order: Vec<String> = out.pads[0]
        .seen()
        .iter()
        .filter_map(|s| match s {
            Seen::SpeakerChange(speaker) => Some(format!("speaker {speaker}")),
            Seen::Word { text, .. } => Some(text.clone()),
            _ => None,
        })
        .collect();
    let first_hi = order.iter().position(|t| t.contains("Hi")).unwrap();
    assert_eq!(order[0], "speaker 1");
    assert_eq!(order[first_hi - 1], "speaker 2", "{order:?}");
    assert_eq!(order.iter().filter(|t| t.starts_with("speaker")).count(), 2);
}

/// One thread pushes all the pads: a sink that waits for PLAYING behind a tiny queue must not
/// keep the other pads' sinks from prerolling (each pad gets an empty GAP at the start).
#[test]
fn a_full_queue_on_src_does_not_keep_the_translation_sinks_from_prerolling() {
    let server = server(sample_script(), |_| {});
    let (pipeline, _stt) = launch(&format!(
        "filesrc location={} ! wavparse ! sonioxstt name=stt pace=0 url={} api-key={KEY} \
         translate_src_0::language-code=fr translate_src_1::language-code=de \
         stt.src ! queue max-size-buffers=1 max-size-bytes=0 max-size-time=0 ! fakesink \
         stt.translate_src_0 ! queue ! fakesink stt.translate_src_1 ! queue ! fakesink",
        sample_wav().display(),
        server.url()
    ));
    let run = run(&pipeline, WAIT);
    assert!(run.eos, "{:?}", run.error());
}

/// `mode=async`: the same pads from one job per session of the plan, its transcript timed
/// by the same table.
#[test]
fn translation_pads_work_in_async_mode_one_way_and_two_way() {
    let script = sample_script();
    let server = common::server(script.clone(), |c| {
        c.job_delay = std::time::Duration::from_millis(100)
    });
    let extra = format!("mode=async rest-url={}", server.rest_url());
    let out = translate(&server, &extra, &["fr", "de"]);
    assert!(out.run.eos, "{:?}", out.run.error());
    assert_eq!(server.connection_count(), 0, "no WebSocket");
    let mut targets: Vec<serde_json::Value> = server
        .transcription_jobs()
        .iter()
        .map(|j| j.request["translation"]["target_language"].clone())
        .collect();
    targets.sort_by_key(|t| t.to_string());
    assert_eq!(targets, [json!("de"), json!("fr")], "a job per target");
    assert!(server.transcription_jobs().iter().all(|j| j.deleted));
    assert_words_match(&out.src.words(), &script, |ms| ms * MS);
    let all = said(&script, |_| true);
    assert_translated(&out.pads[0].seen(), &all, "fr");
    assert_translated(&out.pads[1].seen(), &all, "de");

    let script = bilingual();
    let server = common::server(script.clone(), |c| {
        c.job_delay = std::time::Duration::from_millis(100)
    });
    let extra = format!(
        "mode=async rest-url={} translation=two-way",
        server.rest_url()
    );
    let out = translate(&server, &extra, &["en", "es"]);
    assert!(out.run.eos, "{:?}", out.run.error());
    assert_eq!(
        server.transcription_jobs()[0].request["translation"],
        json!({"type": "two_way", "language_a": "en", "language_b": "es"})
    );
    assert_words_match(&out.src.words(), &script, |ms| ms * MS);
    let from = |language: &'static str| move |l: Option<&str>| l.unwrap_or("en") == language;
    assert_translated(&out.pads[0].seen(), &said(&script, from("es")), "en");
    assert_translated(&out.pads[1].seen(), &said(&script, from("en")), "es");
}
