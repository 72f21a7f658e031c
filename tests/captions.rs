// SPDX-License-Identifier: MPL-2.0
//! The live captions example (examples/captions.rs), run headless against the stand-in the way
//! a user runs it: the PNG it saves shows the transcript of that moment.

use std::path::Path;
use std::time::{Duration, Instant};

use gst::prelude::*;
use soniox_mock::Script;

mod common;

/// The video and the overlay settings of examples/captions.rs (`VIDEO_CAPS`, `OVERLAY`).
const VIDEO: &str = "videotestsrc pattern=smpte75 num-buffers=1 \
                     ! video/x-raw,format=I420,width=640,height=360,framerate=25/1";
const OVERLAY: &str = "valignment=bottom halignment=center line-alignment=center \
                       font-desc=\"Sans 20\" wrap-mode=none shaded-background=true";
const FRAME_MS: u64 = 40; // 25 frames per second
const WIDTH: usize = 640;
const HEIGHT: usize = 360;

/// "0:00:08.124" → 8124.
fn parse_ms(time: &str) -> u64 {
    let parts: Vec<&str> = time.split(':').collect();
    let seconds: f64 = parts[2].parse().unwrap();
    let minutes: u64 = parts[1].parse().unwrap();
    let hours: u64 = parts[0].parse().unwrap();
    (hours * 3600 + minutes * 60) * 1000 + (seconds * 1000.0).round() as u64
}

/// The caption rule, from the script: the words of the utterance going on at `ms` that have
/// started, wrapped greedily into lines of at most 40 characters, at most 2 lines (the oldest
/// lines roll away).
fn expected_caption(script: &Script, ms: u64) -> String {
    let utterance = script
        .utterances
        .iter()
        .rev()
        .find(|u| u.words[0].start_ms <= ms)
        .expect("an utterance has started");
    let words: Vec<&str> = utterance
        .words
        .iter()
        .filter(|w| w.start_ms <= ms)
        .map(|w| w.text.as_str())
        .collect();
    let mut lines: Vec<String> = Vec::new();
    for word in words {
        match lines.last_mut() {
            Some(line) if line.chars().count() + 1 + word.chars().count() <= 40 => {
                line.push(' ');
                line.push_str(word);
            }
            _ => lines.push(word.to_string()),
        }
    }
    let keep = lines.len().saturating_sub(2);
    lines[keep..].join("\n")
}

/// Runs a pipeline description to its end.
fn play(description: &str, configure: impl FnOnce(&gst::Pipeline)) {
    let pipeline = gst::parse::launch(description)
        .unwrap()
        .downcast::<gst::Pipeline>()
        .unwrap();
    configure(&pipeline);
    pipeline.set_state(gst::State::Playing).unwrap();
    let bus = pipeline.bus().unwrap();
    let message = bus
        .timed_pop_filtered(
            gst::ClockTime::from_seconds(10),
            &[gst::MessageType::Eos, gst::MessageType::Error],
        )
        .expect("the pipeline ends");
    pipeline.set_state(gst::State::Null).unwrap();
    if let gst::MessageView::Error(e) = message.view() {
        panic!("{description}: {} ({:?})", e.error(), e.debug());
    }
}

/// A PNG's pixels, as RGB bytes.
fn rgb(png: &Path) -> Vec<u8> {
    let raw = png.with_extension("rgb");
    play(
        "filesrc name=in ! pngdec ! videoconvert ! video/x-raw,format=RGB ! filesink name=out",
        |p| {
            p.by_name("in").unwrap().set_property("location", png);
            p.by_name("out").unwrap().set_property("location", &raw);
        },
    );
    let pixels = std::fs::read(&raw).unwrap();
    let _ = std::fs::remove_file(raw);
    pixels
}

/// The test pattern frame, with `caption` drawn by textoverlay if given, as a PNG.
fn reference(caption: Option<&str>, png: &Path) {
    let overlay = match caption {
        Some(_) => format!("! textoverlay name=overlay {OVERLAY}"),
        None => String::new(),
    };
    play(
        &format!("{VIDEO} {overlay} ! videoconvert ! pngenc ! filesink name=out"),
        |p| {
            if let Some(text) = caption {
                p.by_name("overlay").unwrap().set_property("text", text);
            }
            p.by_name("out").unwrap().set_property("location", png);
        },
    );
}

#[test]
fn the_snapshot_shows_the_caption_of_that_moment() {
    // 8.1 s is inside the second utterance ("It turns live audio into text, one word at a
    // time.", 5.155–8.540 s), where its caption takes two lines; no word starts in the frame
    // after it.
    const AT_MS: u64 = 8100;
    let script = Script::load(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/samples/sample.script"
    ))
    .unwrap();
    assert!(
        script
            .words()
            .all(|w| !(AT_MS..=AT_MS + FRAME_MS).contains(&w.start_ms)),
        "the moment is not at a word boundary"
    );
    let dir = std::env::temp_dir().join(format!("captions-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let png = dir.join("snapshot.png");

    gst::init().unwrap();
    let binary = common::example_binary("captions");
    let start = Instant::now();
    let (success, output) = common::run_example(
        &binary,
        &["--headless", "--snapshot", "8.1", png.to_str().unwrap()],
        Duration::from_secs(40),
    );
    let elapsed = start.elapsed();
    assert!(success, "the example succeeds:\n{output}");
    assert!(
        output.contains("SONIOX_API_KEY is not set: using the built-in stand-in server"),
        "it says it uses the stand-in:\n{output}"
    );

    // "saved FILE at 0:00:08.124: caption "...""
    let saved = output
        .lines()
        .find_map(|l| l.strip_prefix(&format!("saved {} at ", png.display())))
        .unwrap_or_else(|| panic!("a snapshot is reported:\n{output}"));
    let (time, caption) = saved.split_once(": caption ").unwrap();
    let frame_ms = parse_ms(time);
    assert!(
        (AT_MS..AT_MS + FRAME_MS).contains(&frame_ms),
        "the snapshot is the first frame at or after 8.1 s, not {time}"
    );
    let expected = expected_caption(&script, frame_ms);
    assert_eq!(expected, "It turns live audio into text, one word\nat a");
    assert_eq!(
        caption,
        format!("{expected:?}"),
        "the reported caption is what was said up to then"
    );

    // Each caption change up to the snapshot was printed, at the start of its newest word.
    let printed: Vec<(u64, String)> = output
        .lines()
        .filter_map(|l| {
            let (time, text) = l.strip_prefix("  ")?.split_once("  ")?;
            Some((parse_ms(time), text.replace(" / ", "\n")))
        })
        .filter(|(ms, _)| *ms <= frame_ms)
        .collect();
    let mut want = vec![(0, "—".to_string())];
    want.extend(
        script
            .words()
            .filter(|w| w.start_ms <= frame_ms)
            .map(|w| (w.start_ms, expected_caption(&script, w.start_ms))),
    );
    assert_eq!(printed, want, "the captions printed as they changed");

    // The PNG shows that caption: the same frame with the caption drawn by textoverlay has the
    // same pixels, and differs from the frame without a caption.
    assert_eq!(
        &std::fs::read(&png).expect("the PNG exists")[..8],
        b"\x89PNG\r\n\x1a\n"
    );
    let shot = rgb(&png);
    assert_eq!(shot.len(), WIDTH * HEIGHT * 3, "a 640×360 picture");
    let captioned = dir.join("captioned.png");
    reference(Some(&expected), &captioned);
    let bare = dir.join("bare.png");
    reference(None, &bare);
    let bare = rgb(&bare);
    assert_ne!(shot, bare, "the snapshot has a caption");
    let captioned = rgb(&captioned);
    assert_eq!(shot.len(), captioned.len());
    let differing = shot.iter().zip(&captioned).filter(|(a, b)| a != b).count();
    assert_eq!(
        differing, 0,
        "the snapshot is the frame with that caption ({differing} bytes differ)"
    );

    assert!(
        output.contains("Video frames dropped as late: 0"),
        "the video kept time:\n{output}"
    );
    assert!(
        elapsed < Duration::from_secs(18),
        "the example stops after the snapshot ({elapsed:?})"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
