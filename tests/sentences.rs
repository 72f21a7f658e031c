// SPDX-License-Identifier: MPL-2.0
//! `granularity=sentence` (contract §4b) through the subtitle encoders people use, and
//! `SonioxWordMeta` (§4 "Meta") on every buffer.

mod common;

use common::subtitles::*;
use common::*;

#[test]
fn the_sample_through_srtenc_gives_one_cue_per_sentence() {
    let (cues, run) = sample_to_file("granularity=sentence", "srtenc");
    assert_cues_are_the_sentences(&cues);
    // The long sentences take two lines.
    assert!(cues.iter().any(|c| c.lines.len() == 2), "{cues:?}");
    // Each cue is told on the bus too.
    let posted = run.structures("soniox/cue");
    assert_eq!(posted.len(), cues.len());
    for (message, cue) in posted.iter().zip(&cues) {
        assert_eq!(message.get::<&str>("pad").unwrap(), "src");
        assert_eq!(message.get::<&str>("text").unwrap(), cue.lines.join("\n"));
        let pts = message.get::<u64>("pts").unwrap();
        assert!((pts / MS).abs_diff(cue.start_ms) <= 1);
    }
}

#[test]
fn the_sample_through_webvttenc_gives_one_cue_per_sentence() {
    let (cues, _run) = sample_to_file("granularity=sentence", "webvttenc");
    assert_cues_are_the_sentences(&cues);
}

/// 20 s of speech with no punctuation and no pause: the limits alone cut the cues.
#[test]
fn without_punctuation_the_limits_cut_the_cues() {
    let text: Vec<String> = (0..70).map(|i| format!("word{i}")).collect();
    let script = Script::from_utterances(&[(&text.join(" "), 0, 20_000)]);
    let server = server(script, |_| {});
    // Not live: nothing is dropped, however fast it goes.
    let (pipeline, stt) = launch(&format!(
        "audiotestsrc wave=silence num-buffers=205 samplesperbuffer=1600 \
         ! audio/x-raw,format=S16LE,rate=16000,channels=1 \
         ! sonioxstt name=stt pace=0 url={} api-key={KEY} granularity=sentence ! fakesink",
        server.url()
    ));
    let recorder = Recorder::attach(&stt);
    let run = run(&pipeline, WAIT);
    assert!(run.eos, "{:?}", run.error());
    let cues = recorder.words();
    assert!(cues.len() >= 3, "{cues:?}");
    for (text, pts, duration) in &cues {
        let lines: Vec<&str> = text.split('\n').collect();
        assert!(lines.len() <= 2, "{text:?}");
        assert!(lines.iter().all(|l| l.chars().count() <= 42), "{text:?}");
        assert!(text.replace('\n', "").chars().count() <= 84, "{text:?}");
        assert!(
            duration.unwrap() <= 7000 * MS,
            "{text:?} lasts {duration:?}"
        );
        assert!(pts.is_some());
    }
    let all: Vec<String> = cues.iter().map(|c| c.0.replace('\n', " ")).collect();
    assert_eq!(all.join(" "), text.join(" "), "no word lost");
    for pair in cues.windows(2) {
        let end = pair[0].1.unwrap() + pair[0].2.unwrap();
        assert!(end <= pair[1].1.unwrap(), "overlap: {pair:?}");
    }
}

/// The meta of each buffer the recorder saw.
fn metas(seen: &[Seen]) -> Vec<(String, Option<gst::Structure>)> {
    seen.iter()
        .filter_map(|s| match s {
            Seen::Word { text, meta, .. } => Some((text.clone(), meta.clone())),
            _ => None,
        })
        .collect()
}

fn sample_with_recorder(extra: &str) -> Vec<(String, Option<gst::Structure>)> {
    let server = server(sample_script(), |_| {});
    let (pipeline, stt) = sample_pipeline(&server, extra);
    let recorder = Recorder::attach(&stt);
    let run = run(&pipeline, WAIT);
    assert!(run.eos, "{:?}", run.error());
    metas(&recorder.seen())
}

#[test]
fn every_word_carries_soniox_word_meta() {
    let words = sample_with_recorder("");
    assert_eq!(words.len(), sample_script().words().count());
    for (text, meta) in &words {
        let meta = meta
            .as_ref()
            .unwrap_or_else(|| panic!("{text} has no meta"));
        let confidence = meta.get::<f64>("confidence").unwrap();
        assert!((0.0..=1.0).contains(&confidence), "{text}: {confidence}");
        assert_eq!(meta.get::<u32>("session").unwrap(), 1);
        assert!(!meta.has_field("speaker") && !meta.has_field("language"));
    }
}

#[test]
fn speaker_and_language_join_the_meta_when_on_and_cues_carry_it_too() {
    let extra = "enable-speaker-diarization=true enable-language-identification=true";
    for granularity in ["word", "sentence"] {
        let words = sample_with_recorder(&format!("{extra} granularity={granularity}"));
        assert!(!words.is_empty());
        for (text, meta) in &words {
            let meta = meta
                .as_ref()
                .unwrap_or_else(|| panic!("{text} has no meta"));
            assert!(meta.get::<f64>("confidence").is_ok(), "{text}");
            assert_eq!(meta.get::<&str>("speaker").unwrap(), "1", "{text}");
            assert_eq!(meta.get::<&str>("language").unwrap(), "en", "{text}");
        }
    }
}

#[test]
fn the_bus_hears_of_a_response_only_when_its_text_changed() {
    let server = server(sample_script(), |_| {});
    let (pipeline, _stt) = sample_pipeline(&server, "");
    let run = run(&pipeline, WAIT);
    assert!(run.eos);
    let transcripts = run.structures("soniox/transcript");
    assert!(!transcripts.is_empty());
    let mut interim = String::new();
    for s in &transcripts {
        let final_text = s.get::<String>("final").unwrap();
        let now = s.get::<String>("interim").unwrap();
        assert!(
            !final_text.is_empty() || now != interim,
            "nothing new in {s:?}"
        );
        interim = now;
    }
    // Nothing final is lost by posting less.
    let finals: String = transcripts
        .iter()
        .map(|s| s.get::<String>("final").unwrap())
        .collect();
    assert_eq!(
        finals.split_whitespace().collect::<Vec<_>>(),
        sample_script()
            .words()
            .map(|w| w.text.as_str())
            .collect::<Vec<_>>()
    );
}
