// SPDX-License-Identifier: MPL-2.0
//! sonioxstt's output through the gst-plugins-rs caption elements people chain it with, built
//! from `consumers/` (closedcaption 0.13.5, the newest for GStreamer 1.22; textwrap 0.13;
//! textaccumulate 0.15.4): textaccumulate, transcriberbin, tttocea608 and cea608tojson.

mod common;

use std::sync::{Arc, Mutex};

use common::subtitles::*;
use common::*;
use gst::prelude::*;

/// What cea608tojson pushed: the buffer's PTS (ms) and the rows it shows, top to bottom.
#[derive(Debug, Clone)]
struct Screen {
    pts_ms: u64,
    rows: Vec<String>,
}

/// Collects what reaches the `fakesink` named `name`, read as cea608tojson's JSON.
fn screens(pipeline: &gst::Pipeline, name: &str) -> Arc<Mutex<Vec<Screen>>> {
    let sink = pipeline.by_name(name).unwrap();
    sink.set_property("signal-handoffs", true);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let into = seen.clone();
    sink.connect("handoff", false, move |args| {
        let buffer = args[1].get::<gst::Buffer>().unwrap();
        let map = buffer.map_readable().unwrap();
        let json: serde_json::Value = serde_json::from_slice(&map).unwrap();
        let mut lines: Vec<(u64, String)> = json["lines"]
            .as_array()
            .unwrap()
            .iter()
            .map(|line| {
                let text: String = line["chunks"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|c| c["text"].as_str().unwrap())
                    .collect();
                (line["row"].as_u64().unwrap(), text)
            })
            .collect();
        lines.sort();
        into.lock().unwrap().push(Screen {
            pts_ms: buffer.pts().unwrap().mseconds(),
            rows: lines.into_iter().map(|(_, text)| text).collect(),
        });
        None
    });
    seen
}

fn script_words(script: &Script) -> Vec<String> {
    script.words().map(|w| w.text.clone()).collect()
}

/// Word mode, with textaccumulate doing the grouping: still one cue per sentence, exact times.
#[test]
fn word_mode_through_textaccumulate_gives_whole_sentences() {
    consumer_plugins();
    let (cues, _run) = sample_to_file("", "textaccumulate ! srtenc");
    assert_cues_hold_the_sentences(&cues);
}

/// Sentence cues through tttocea608's pop-on mode: each caption pops on with one sentence,
/// after that sentence starts and before the next one does.
#[test]
fn sentence_cues_pop_on_as_cea608_captions() {
    consumer_plugins();
    let server = server(sample_script(), |_| {});
    let (pipeline, _stt) = launch(&format!(
        "filesrc location={} ! wavparse ! sonioxstt name=stt pace=0 url={} api-key={KEY} \
         granularity=sentence ! tttocea608 mode=pop-on ! cea608tojson ! fakesink name=out",
        sample_wav().display(),
        server.url(),
    ));
    let screens = screens(&pipeline, "out");
    let run = run(&pipeline, WAIT);
    assert!(run.eos, "{:?}", run.error());
    let shown: Vec<Screen> = screens
        .lock()
        .unwrap()
        .iter()
        .filter(|s| !s.rows.is_empty())
        .cloned()
        .collect();
    let script = sample_script();
    assert_eq!(shown.len(), script.utterances.len(), "{shown:?}");
    for (i, (screen, sentence)) in shown.iter().zip(&script.utterances).enumerate() {
        assert_eq!(screen.rows.join(" "), sentence.text(), "{screen:?}");
        assert!(screen.rows.len() <= 2, "{screen:?}");
        assert!(screen.pts_ms >= sentence.words[0].start_ms, "{screen:?}");
        if let Some(next) = script.utterances.get(i + 1) {
            assert!(screen.pts_ms < next.words[0].start_ms, "{screen:?}");
        }
    }
}

/// The sample's script with its last sentence moved 1.5 s later: it ends 185 ms before the
/// audio does, too soon for an endpoint (500 ms of silence), so with no automatic finals
/// only the drain at EOS makes its words final.
fn last_sentence_only_the_drain_finalizes() -> Script {
    let mut script = sample_script();
    for word in &mut script.utterances.last_mut().unwrap().words {
        word.start_ms += 1500;
        word.end_ms += 1500;
    }
    script
}

/// What a CC1 roll-up viewer reads: each bottom row as it last stood before it rolled up.
fn rolled_up_text(screens: &[Screen]) -> Vec<String> {
    let mut lines = Vec::new();
    let mut bottom = String::new();
    for screen in screens {
        let Some(now) = screen.rows.last() else {
            continue;
        };
        if !now.starts_with(bottom.trim_end()) {
            lines.push(std::mem::take(&mut bottom));
        }
        bottom = now.clone();
    }
    lines.push(bottom);
    lines
        .iter()
        .flat_map(|l| l.split_whitespace())
        .map(str::to_string)
        .collect()
}

/// transcriberbin (closedcaption 0.13.5) with sonioxstt as its transcriber, in the one mode
/// that works on GStreamer 1.22 (`mux-method=cea708 mode=roll-up2`), read back from the video
/// as CC1: the whole transcript rolls up, the words only the drain made final included, each
/// at its time; sonioxstt took transcriberbin's latency and language.
#[test]
fn transcriberbin_rolls_up_the_whole_transcript_on_cc1() {
    consumer_plugins();
    let script = last_sentence_only_the_drain_finalizes();
    let server = server(script.clone(), |c| c.auto_final_lag_ms = None);
    // 22 s of video: it outlasts the 20 s of audio.
    let (pipeline, stt) = launch(&format!(
        "transcriberbin name=tb mux-method=cea708 mode=roll-up2 latency=8000 language-code=de-DE \
           transcriber=\"sonioxstt name=stt url={} api-key={KEY}\" \
         videotestsrc num-buffers=660 ! video/x-raw,width=160,height=120,framerate=30000/1001 \
           ! tb.sink_video \
         filesrc location={} ! wavparse ! tb.sink_audio \
         tb.src_video ! ccextractor name=cc \
         cc.caption ! queue ! ccconverter ! closedcaption/x-cea-608,format=raw \
           ! cea608tojson unbuffered=true ! fakesink name=out \
         cc.src ! queue ! fakesink \
         tb.src_audio ! queue ! fakesink",
        server.url(),
        sample_wav().display(),
    ));
    let screens = screens(&pipeline, "out");
    let run = run(&pipeline, std::time::Duration::from_secs(90));
    assert!(run.eos, "{:?}", run.error());
    let screens = screens.lock().unwrap().clone();

    assert_eq!(
        rolled_up_text(&screens),
        script_words(&script),
        "{screens:?}"
    );
    // The last sentence had no endpoint: only the drain made it final. (The latency is long
    // enough that no finalize of the element's own comes first.)
    assert_eq!(
        run.structures("soniox/endpoint").len(),
        script.utterances.len() - 1
    );
    // Each sentence's last word is on screen close to when it was said.
    for sentence in &script.utterances {
        let last = sentence.words.last().unwrap();
        let shown = screens
            .iter()
            .find(|s| {
                s.rows
                    .last()
                    .is_some_and(|r| r.trim_end().ends_with(&last.text))
            })
            .unwrap_or_else(|| panic!("{} never shown: {screens:?}", last.text));
        assert!(
            shown.pts_ms + 200 >= last.start_ms && shown.pts_ms <= last.end_ms + 1000,
            "{} said at {}–{} ms, shown at {} ms",
            last.text,
            last.start_ms,
            last.end_ms,
            shown.pts_ms
        );
    }

    assert_eq!(stt.property::<u32>("latency"), 8000);
    let request = server.sessions()[0].start_request.clone().unwrap();
    assert_eq!(request["language_hints"][0], "de", "{request}");
}

/// The text of each CEA-708 service in `cc_data` (byte triplets), in the order it was
/// written: printable characters, a new line for each carriage return. Window commands and
/// their parameters are skipped (CEA-708-E §7); only what a viewer reads is kept.
fn dtvcc_text(
    cc_data: &[u8],
    services: &mut std::collections::BTreeMap<u8, String>,
    packet: &mut Vec<u8>,
) {
    for triplet in cc_data.chunks_exact(3) {
        let (valid, kind) = (triplet[0] & 0x04 != 0, triplet[0] & 0x03);
        if !valid || kind < 2 {
            continue;
        }
        if kind == 3 {
            dtvcc_packet(packet, services);
            packet.clear();
        }
        packet.extend_from_slice(&triplet[1..]);
    }
}

/// One DTVCC packet: a header byte, then service blocks.
fn dtvcc_packet(packet: &[u8], services: &mut std::collections::BTreeMap<u8, String>) {
    let Some((&header, mut rest)) = packet.split_first() else {
        return;
    };
    let size = match header & 0x3f {
        0 => 127,
        code => code as usize * 2 - 1,
    };
    rest = &rest[..size.min(rest.len())];
    while let Some((&block, after)) = rest.split_first() {
        let (service, len) = (block >> 5, (block & 0x1f) as usize);
        if service == 0 || len > after.len() {
            break;
        }
        let text = services.entry(service).or_default();
        let mut data = &after[..len];
        while let Some((&c, more)) = data.split_first() {
            // Bytes each code takes after itself.
            let skip = match c {
                0x0d => {
                    text.push('\n');
                    0
                }
                0x10 => 1,
                0x11..=0x17 => 1,
                0x18..=0x1f => 2,
                0x00..=0x0f => 0,
                0x20..=0x7e => {
                    text.push(c as char);
                    0
                }
                0x7f => 0,
                0x80..=0x87 | 0x8e | 0x8f | 0x93..=0x96 => 0,
                0x88..=0x8d => 1,
                0x90 | 0x92 => 2,
                0x91 => 3,
                0x97 => 4,
                0x98..=0x9f => 6,
                0xa0..=0xff => {
                    text.push(c as char);
                    0
                }
            };
            data = &more[skip.min(more.len())..];
        }
        rest = &after[len..];
    }
}

/// transcriberbin's translation: the transcript on CEA-708 service 1 and sonioxstt's French
/// translation pad on service 2 (`mux-method=cea708`; the 608 mux is missing on 1.22).
#[test]
fn transcriberbin_captions_the_transcript_and_its_translation_on_two_services() {
    consumer_plugins();
    let script = sample_script();
    let server = server(script.clone(), |_| {});
    let (pipeline, _stt) = launch(&format!(
        "transcriberbin name=tb mux-method=cea708 mode=roll-up2 latency=8000 \
           translation-languages=\"languages, transcript=708_1, fr=708_2\" \
           cc-caps=\"closedcaption/x-cea-708,format=cc_data\" \
           transcriber=\"sonioxstt name=stt url={} api-key={KEY}\" \
         videotestsrc num-buffers=660 ! video/x-raw,width=160,height=120,framerate=30000/1001 \
           ! tb.sink_video \
         filesrc location={} ! wavparse ! tb.sink_audio \
         tb.src_video ! ccextractor name=cc \
         cc.caption ! queue ! ccconverter ! closedcaption/x-cea-708,format=cc_data ! fakesink name=out \
         cc.src ! queue ! fakesink \
         tb.src_audio ! queue ! fakesink",
        server.url(),
        sample_wav().display(),
    ));
    let sink = pipeline.by_name("out").unwrap();
    sink.set_property("signal-handoffs", true);
    let services = Arc::new(Mutex::new((std::collections::BTreeMap::new(), Vec::new())));
    let into = services.clone();
    sink.connect("handoff", false, move |args| {
        let buffer = args[1].get::<gst::Buffer>().unwrap();
        let map = buffer.map_readable().unwrap();
        let mut guard = into.lock().unwrap();
        let (services, packet) = &mut *guard;
        dtvcc_text(&map, services, packet);
        None
    });
    let run = run(&pipeline, std::time::Duration::from_secs(90));
    assert!(run.eos, "{:?}", run.error());
    let request = server.sessions()[0].start_request.clone().unwrap();
    assert_eq!(
        request["translation"],
        serde_json::json!({"type": "one_way", "target_language": "fr"})
    );
    let mut guard = services.lock().unwrap();
    let (services, packet) = &mut *guard;
    dtvcc_packet(packet, services); // the last one
    let words_on = |service: u8| -> Vec<String> {
        services
            .get(&service)
            .map(|t| t.split_whitespace().map(str::to_string).collect())
            .unwrap_or_default()
    };
    let spoken = script_words(&script);
    // Service 1: the transcript, every word in order.
    assert_eq!(words_on(1), spoken, "{services:?}");
    // Service 2: the translation chunks, "[fr]" and the words they translate.
    let translated: Vec<String> = words_on(2).into_iter().filter(|w| w != "[fr]").collect();
    assert_eq!(translated, spoken, "{services:?}");
    assert!(words_on(2).contains(&"[fr]".to_string()));
}
