// SPDX-License-Identifier: MPL-2.0
//! Live captions burned into video: `sonioxstt`'s words become rolling two-line captions that
//! `textoverlay` draws on a live video stream.
//!
//! ```text
//! cargo run --example captions [-- [--headless] [--snapshot SECONDS FILE.png] [--camera] [FILE.wav]]
//! ```
//!
//! - By default the video is a live test pattern (`videotestsrc is-live=true`) and the audio is
//!   the bundled sample (or `FILE.wav`), played at real-time speed; `--camera` uses a camera
//!   (`v4l2src`) and the microphone (`autoaudiosrc`) instead.
//! - `--headless` renders into a `fakesink` (still at real-time speed) instead of a window.
//! - `--snapshot SECONDS FILE.png` saves the first captioned frame at or after that time (from
//!   the start of the stream) and prints the caption drawn on it; headless, the example then
//!   stops.
//!
//! With `SONIOX_API_KEY` set it talks to Soniox. Without it, it starts the project's stand-in
//! server in-process and says so: the stand-in does not recognize speech, it plays the sample's
//! scripted transcript (`samples/sample.script`) against the audio it receives.
//!
//! The pipeline, all live:
//!
//! ```text
//! videotestsrc ! queue ! textoverlay ! tee ! queue ! autovideosink (or fakesink)
//!                             ↑             tee ! queue ! videoconvert ! pngenc ! fakesink (--snapshot)
//!   appsrc (captions) ────────┘
//! filesrc ! wavparse ! identity sync=true ! audioconvert ! audioresample ! sonioxstt ! fakesink
//! ```
//!
//! `sonioxstt` pushes one buffer per final word, `latency` after its audio at the latest. A
//! probe on its `src` pad turns the words into captions: the words of the current utterance
//! wrapped into at most two lines of 40 characters (when a third would be needed, the top line
//! rolls away), each caption shown from its newest word's start to the next word's start. At
//! the end of an utterance the last caption stays 1.5 s, then the screen clears. The captions
//! are printed as they change.
//!
//! They go into an `appsrc` feeding `textoverlay`'s text pad as buffers that never overlap,
//! each with a valid PTS and duration, and GAP events where there is nothing to show.
//! `textoverlay` holds each video frame until the text stream has covered its time, so a caption
//! is drawn on exactly the frames of its time span; the `appsrc` declares the latency this adds,
//! so the video sink still plays every frame in time.
//!
//! The text stream moves on when a word arrives, when `sonioxstt` sends a GAP event (silence),
//! and, should neither come, with the pipeline clock: `sonioxstt` pushes every word within
//! `latency` of its audio, so time older than that (plus a margin) can have no new word and is
//! filled as it is. A word arriving even later is shown from its arrival on.
//!
//! The end of an utterance is taken from the `soniox/endpoint` message rather than the
//! `rstranscribe/final-transcript` event: that event also follows each finalization
//! `sonioxstt` asks for to keep its latency promise, which may fall mid-sentence.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use gst::prelude::*;

const SAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/samples/sample.wav");
const SAMPLE_SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/samples/sample.script");
const STAND_IN_KEY: &str = "stand-in-key";

/// `sonioxstt`'s `latency`: every word is pushed at most this long after its audio.
const STT_LATENCY: gst::ClockTime = gst::ClockTime::from_mseconds(2000);
/// When the clock says a time is this old, no word can start there any more.
const SETTLED: gst::ClockTime = gst::ClockTime::from_mseconds(2500);
/// What the captions add to the pipeline's latency: the video waits this long for its text.
const CAPTION_LATENCY: gst::ClockTime = gst::ClockTime::from_mseconds(2700);
/// How long the last caption of an utterance stays on screen after its last word ends.
const HOLD: gst::ClockTime = gst::ClockTime::from_mseconds(1500);
/// Captions have at most this many lines of at most this many characters.
const MAX_LINES: usize = 2;
const LINE_CHARS: usize = 40;

/// The video format and `textoverlay`'s settings (tests/captions.rs renders the same).
const VIDEO_CAPS: &str = "video/x-raw,format=I420,width=640,height=360,framerate=25/1";
const OVERLAY: &str = "valignment=bottom halignment=center line-alignment=center \
                       font-desc=\"Sans 20\" wrap-mode=none shaded-background=true";

struct Options {
    headless: bool,
    camera: bool,
    snapshot: Option<(gst::ClockTime, PathBuf)>,
    file: PathBuf,
}

fn main() -> ExitCode {
    let mut options = Options {
        headless: false,
        camera: false,
        snapshot: None,
        file: PathBuf::from(SAMPLE),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--headless" => options.headless = true,
            "--camera" => options.camera = true,
            "--snapshot" => {
                let seconds = args.next().and_then(|s| s.parse::<f64>().ok());
                let file = args.next();
                match (seconds, file) {
                    (Some(s), Some(file)) if s >= 0.0 && s.is_finite() => {
                        let time = gst::ClockTime::from_nseconds((s * 1e9).round() as u64);
                        options.snapshot = Some((time, PathBuf::from(file)));
                    }
                    _ => return usage("--snapshot takes a time in seconds and a PNG file name"),
                }
            }
            "-h" | "--help" => return usage(""),
            _ if arg.starts_with('-') => return usage(&format!("unknown option {arg}")),
            _ => options.file = PathBuf::from(arg),
        }
    }
    match run(&options) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn usage(problem: &str) -> ExitCode {
    if !problem.is_empty() {
        eprintln!("error: {problem}");
    }
    eprintln!("usage: captions [--headless] [--snapshot SECONDS FILE.png] [--camera] [FILE.wav]");
    ExitCode::from(2)
}

/// The pipeline description; locations, the URL and the key are set as properties afterwards.
fn describe(options: &Options) -> String {
    let video = if options.camera {
        format!("v4l2src ! videoconvert ! videoscale ! videorate ! {VIDEO_CAPS}")
    } else {
        format!("videotestsrc name=video-source is-live=true pattern=smpte75 ! {VIDEO_CAPS}")
    };
    let audio = if options.camera {
        "autoaudiosrc ! audioconvert ! audioresample ! audio/x-raw,format=S16LE,rate=16000,channels=1"
    } else {
        // identity sync=true plays the file at real-time speed, as a live source would.
        "filesrc name=audio-file ! wavparse ! identity sync=true ! audioconvert ! audioresample"
    };
    let display = if options.headless {
        // Like a display sink: frames later than 20 ms are dropped (and counted).
        "fakesink sync=true qos=true max-lateness=20000000"
    } else {
        "videoconvert ! autovideosink"
    };
    // The video waits in textoverlay for its captions: the queue in front of it holds that long.
    let wait = (CAPTION_LATENCY + gst::ClockTime::from_seconds(2)).nseconds();
    let mut description = format!(
        "{video} ! queue max-size-buffers=0 max-size-bytes=0 max-size-time={wait} \
           ! textoverlay name=overlay {OVERLAY} ! tee name=video \
         video. ! queue ! {display} \
         appsrc name=captions is-live=true format=time caps=text/x-raw,format=utf8 \
           min-latency={} ! overlay.text_sink \
         {audio} ! sonioxstt name=stt latency={} ! fakesink sync=false async=false",
        CAPTION_LATENCY.nseconds(),
        STT_LATENCY.mseconds(),
    );
    if options.snapshot.is_some() {
        description.push_str(
            " video. ! queue name=snapshot ! videoconvert ! pngenc \
              ! fakesink name=png sync=false async=false",
        );
    }
    description
}

fn run(options: &Options) -> Result<(), Box<dyn std::error::Error>> {
    gst::init()?;
    gstsoniox::plugin_register_static()?;

    // Soniox when a key is set, else the stand-in.
    let stand_in = match std::env::var("SONIOX_API_KEY") {
        Ok(key) if !key.trim().is_empty() => {
            println!("Captioning with Soniox (SONIOX_API_KEY is set).");
            None
        }
        _ => {
            let script = soniox_mock::Script::load(SAMPLE_SCRIPT)?;
            let server =
                soniox_mock::MockServer::start(soniox_mock::MockConfig::new(STAND_IN_KEY, script));
            println!(
                "SONIOX_API_KEY is not set: using the built-in stand-in server at {}.\n\
                 It does not recognize speech: its words come from samples/sample.script.",
                server.url()
            );
            Some(server)
        }
    };

    let pipeline = gst::parse::launch(&describe(options))?
        .downcast::<gst::Pipeline>()
        .map_err(|_| "not a pipeline")?;
    let element = |name: &str| {
        pipeline
            .by_name(name)
            .ok_or_else(|| format!("no element {name}"))
    };
    let stt = element("stt")?;
    if let Some(server) = &stand_in {
        stt.set_property("url", server.url());
        stt.set_property("api-key", STAND_IN_KEY);
    }
    if !options.camera {
        element("audio-file")?.set_property("location", &options.file);
        println!("Audio: {}", options.file.display());
    }

    let captions = Arc::new(Mutex::new(Captions::new(element("captions")?)));
    follow_words(&pipeline, &stt, &captions);
    if let Some((time, file)) = &options.snapshot {
        take_snapshot(
            &element("snapshot")?,
            &element("png")?,
            *time,
            file.clone(),
            &captions,
        );
    }

    let result = match pipeline.set_state(gst::State::Playing) {
        Ok(_) => watch(&pipeline, &captions, options),
        // An element could not start (no camera, no microphone...): it posted why.
        Err(e) => match pipeline
            .bus()
            .and_then(|b| b.pop_filtered(&[gst::MessageType::Error]))
        {
            Some(message) => match message.view() {
                gst::MessageView::Error(e) => {
                    Err(format!("{} ({})", e.error(), e.debug().unwrap_or_default()).into())
                }
                _ => Err(e.into()),
            },
            None => Err(e.into()),
        },
    };
    pipeline.set_state(gst::State::Null)?;
    result
}

/// Runs the bus until the end, an error or (headless) the snapshot; meanwhile moves the
/// captions on with the clock.
fn watch(
    pipeline: &gst::Pipeline,
    captions: &Mutex<Captions>,
    options: &Options,
) -> Result<(), Box<dyn std::error::Error>> {
    let bus = pipeline.bus().ok_or("no bus")?;
    let mut snapshot_taken = false;
    let mut dropped = 0;
    let mut video_until = None;
    let result = loop {
        let message = bus.timed_pop(gst::ClockTime::from_mseconds(40));
        if let Some(now) = pipeline.current_running_time() {
            if let Some(settled) = now.checked_sub(SETTLED) {
                captions.lock().unwrap().advance(settled);
            }
            if video_until.is_some_and(|until| now >= until) {
                video_until = None;
                if let Some(source) = pipeline.by_name("video-source") {
                    source.send_event(gst::event::Eos::new());
                }
            }
        }
        let Some(message) = message else { continue };
        match message.view() {
            gst::MessageView::Eos(_) => break Ok(()),
            gst::MessageView::Error(e) => {
                let from_display = e
                    .src()
                    .is_some_and(|s| s.path_string().contains("autovideosink"));
                let hint = if from_display {
                    "\n(no display? --headless runs without one)"
                } else {
                    ""
                };
                let debug = e.debug().unwrap_or_default();
                break Err(format!("{} ({debug}){hint}", e.error()).into());
            }
            gst::MessageView::StateChanged(s)
                if s.src() == Some(pipeline.upcast_ref()) && s.current() == gst::State::Playing =>
            {
                let mut query = gst::query::Latency::new();
                if pipeline.query(&mut query) {
                    let (_live, latency, _) = query.result();
                    println!(
                        "Playing. The video is shown {latency:.1} behind: the time its captions need."
                    );
                }
            }
            // A video sink dropped late frames (counted since the start).
            gst::MessageView::Qos(q) => dropped = dropped.max(q.stats().1.value()),
            gst::MessageView::Warning(w) => eprintln!("warning: {}", w.error()),
            gst::MessageView::Element(m) => {
                let Some(s) = m.structure() else { continue };
                if s.name() == "soniox/session" {
                    let event = s.get::<String>("event").unwrap_or_default();
                    println!("session {}: {event}", s.get::<u32>("session").unwrap_or(0));
                }
            }
            gst::MessageView::Application(m) => {
                let Some(s) = m.structure() else { continue };
                match s.name().as_str() {
                    "captions/snapshot" => {
                        let file = s.get::<String>("file")?;
                        let time = s.get::<gst::ClockTime>("time")?;
                        let caption = s.get::<String>("caption")?;
                        println!("saved {file} at {time:.3}: caption {caption:?}");
                        snapshot_taken = true;
                        if options.headless {
                            break Ok(());
                        }
                    }
                    // The audio ended: the video ends too, after the last caption.
                    "captions/done" => {
                        if pipeline.by_name("video-source").is_some() {
                            video_until = Some(s.get::<gst::ClockTime>("until")?);
                        } else {
                            println!("The transcript ended (Ctrl-C to stop).");
                        }
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    };
    println!("Video frames dropped as late: {dropped}");
    match &options.snapshot {
        Some((time, _)) if result.is_ok() && !snapshot_taken => {
            Err(format!("the stream ended before {time:.3}: no snapshot").into())
        }
        _ => result,
    }
}

/// Feeds what `sonioxstt` pushes (words, GAPs, EOS) and the ends of utterances to the
/// captions.
fn follow_words(pipeline: &gst::Pipeline, stt: &gst::Element, captions: &Arc<Mutex<Captions>>) {
    // `soniox/endpoint` is posted right after the utterance's last word, by the thread pushing
    // the words: read there (a sync handler), it comes in order with them.
    let ends = captions.clone();
    let bus = pipeline.bus().unwrap();
    bus.set_sync_handler(move |_bus, message| {
        if let gst::MessageView::Element(m) = message.view() {
            if m.structure().is_some_and(|s| s.name() == "soniox/endpoint") {
                ends.lock().unwrap().end_utterance();
            }
        }
        gst::BusSyncReply::Pass
    });
    let captions = captions.clone();
    stt.static_pad("src").unwrap().add_probe(
        gst::PadProbeType::BUFFER | gst::PadProbeType::EVENT_DOWNSTREAM,
        move |pad, info| {
            let mut captions = captions.lock().unwrap();
            match &info.data {
                Some(gst::PadProbeData::Buffer(buffer)) => {
                    let text = buffer
                        .map_readable()
                        .map(|m| String::from_utf8_lossy(&m).trim().to_string())
                        .unwrap_or_default();
                    if let Some(start) = buffer.pts() {
                        let end = start + buffer.duration().unwrap_or_default();
                        captions.word(&text, start, end);
                    }
                }
                Some(gst::PadProbeData::Event(event)) => match event.view() {
                    gst::EventView::Segment(s) => {
                        if let Ok(segment) = s.segment().clone().downcast::<gst::ClockTime>() {
                            captions.segment = segment;
                        }
                    }
                    gst::EventView::Gap(gap) => {
                        let (start, duration) = gap.get();
                        captions.gap(start + duration.unwrap_or_default());
                    }
                    gst::EventView::Eos(_) => {
                        captions.finish();
                        let until = captions.cursor;
                        drop(captions);
                        if let Some(stt) = pad.parent_element() {
                            let done = gst::Structure::builder("captions/done")
                                .field("until", until)
                                .build();
                            let _ = stt.post_message(
                                gst::message::Application::builder(done).src(&stt).build(),
                            );
                        }
                    }
                    _ => {}
                },
                _ => {}
            }
            gst::PadProbeReturn::Ok
        },
    );
}

/// Lets the first frame at or after `time` into the snapshot branch, writes its PNG to `file`
/// and posts `captions/snapshot` with the caption drawn on it.
fn take_snapshot(
    branch: &gst::Element,
    png: &gst::Element,
    time: gst::ClockTime,
    file: PathBuf,
    captions: &Arc<Mutex<Captions>>,
) {
    let chosen = Arc::new(Mutex::new(None::<(gst::ClockTime, String)>));
    let captions = captions.clone();
    let choose = chosen.clone();
    branch
        .static_pad("sink")
        .unwrap()
        .add_probe(gst::PadProbeType::BUFFER, move |pad, info| {
            let mut chosen = choose.lock().unwrap();
            let Some(gst::PadProbeData::Buffer(frame)) = &info.data else {
                return gst::PadProbeReturn::Ok;
            };
            if chosen.is_some() {
                return gst::PadProbeReturn::Handled; // dropped
            }
            let segment = pad
                .sticky_event::<gst::event::Segment>(0)
                .and_then(|s| s.segment().clone().downcast::<gst::ClockTime>().ok());
            let start = segment
                .zip(frame.pts())
                .and_then(|(s, t)| s.to_running_time(t));
            match start {
                Some(start) if start >= time => {
                    let end = start + frame.duration().unwrap_or(gst::ClockTime::MSECOND);
                    let caption = captions.lock().unwrap().shown(start, end);
                    *chosen = Some((start, caption));
                    gst::PadProbeReturn::Ok
                }
                _ => gst::PadProbeReturn::Handled, // dropped
            }
        });
    png.static_pad("sink")
        .unwrap()
        .add_probe(gst::PadProbeType::BUFFER, move |pad, info| {
            let Some(gst::PadProbeData::Buffer(encoded)) = &info.data else {
                return gst::PadProbeReturn::Ok;
            };
            let Some((time, caption)) = chosen.lock().unwrap().clone() else {
                return gst::PadProbeReturn::Handled;
            };
            let element = pad.parent_element().unwrap();
            let written = encoded
                .map_readable()
                .map_err(|e| e.to_string())
                .and_then(|m| std::fs::write(&file, &m).map_err(|e| e.to_string()));
            match written {
                Ok(()) => {
                    let s = gst::Structure::builder("captions/snapshot")
                        .field("file", file.display().to_string())
                        .field("time", time)
                        .field("caption", caption)
                        .build();
                    let _ = element
                        .post_message(gst::message::Application::builder(s).src(&element).build());
                }
                Err(e) => gst::element_error!(
                    element,
                    gst::ResourceError::Write,
                    ("Could not write {}: {e}", file.display())
                ),
            }
            gst::PadProbeReturn::Handled // written: the fakesink has nothing to do
        });
}

/// Words to captions, pushed into the `appsrc` feeding `textoverlay`'s text pad.
///
/// Times are running times. The caption stream is complete up to `cursor`: every moment
/// before it has been covered, once, by a caption buffer or a GAP event.
struct Captions {
    appsrc: gst::Element,
    /// `sonioxstt`'s output segment, to turn word timestamps into running times.
    segment: gst::FormattedSegment<gst::ClockTime>,
    cursor: gst::ClockTime,
    /// The words on screen, of the utterance going on or just ended.
    words: Vec<String>,
    /// What shows from `cursor` on ("" = nothing).
    text: String,
    in_utterance: bool,
    /// Where the latest word ends.
    last_end: gst::ClockTime,
    /// After an utterance ended: when its last caption goes away.
    hold_until: Option<gst::ClockTime>,
    /// What was pushed: (start, end, text), oldest first, merged when the text is the same.
    history: VecDeque<(gst::ClockTime, gst::ClockTime, String)>,
    finished: bool,
}

impl Captions {
    fn new(appsrc: gst::Element) -> Captions {
        Captions {
            appsrc,
            segment: gst::FormattedSegment::new(),
            cursor: gst::ClockTime::ZERO,
            words: Vec::new(),
            text: String::new(),
            in_utterance: false,
            last_end: gst::ClockTime::ZERO,
            hold_until: None,
            history: VecDeque::new(),
            finished: false,
        }
    }

    fn running_time(&self, t: gst::ClockTime) -> Option<gst::ClockTime> {
        self.segment.to_running_time(t)
    }

    /// A final word spoken from `start` to `end` (`sonioxstt` timestamps).
    fn word(&mut self, word: &str, start: gst::ClockTime, end: gst::ClockTime) {
        let (Some(start), Some(end)) = (self.running_time(start), self.running_time(end)) else {
            return;
        };
        // Until the word starts, the caption before it stays (or the hold, or nothing).
        self.advance(start);
        if !self.in_utterance {
            self.in_utterance = true;
            self.hold_until = None;
            self.words.clear();
        }
        self.words.push(word.to_string());
        self.text = roll_up(&mut self.words);
        self.last_end = end;
        self.advance(end);
    }

    /// The utterance is over: its caption stays a while after its last word.
    fn end_utterance(&mut self) {
        if self.in_utterance {
            self.in_utterance = false;
            self.hold_until = Some(self.last_end + HOLD);
        }
    }

    /// A GAP event from `sonioxstt`: no word starts before `end`.
    fn gap(&mut self, end: gst::ClockTime) {
        if let Some(end) = self.running_time(end) {
            self.advance(end);
        }
    }

    /// End of the words: the last caption's hold, then the end of the caption stream.
    fn finish(&mut self) {
        self.end_utterance();
        if let Some(hold) = self.hold_until {
            self.advance(hold);
        }
        self.finished = true;
        let _ = self
            .appsrc
            .emit_by_name::<gst::FlowReturn>("end-of-stream", &[]);
    }

    /// Nothing new starts before `to`: cover the time up to it.
    fn advance(&mut self, to: gst::ClockTime) {
        if let Some(hold) = self
            .hold_until
            .filter(|&hold| !self.in_utterance && to >= hold)
        {
            self.cover(hold);
            self.hold_until = None;
            self.words.clear();
            self.text.clear();
        }
        self.cover(to);
    }

    /// Pushes what shows from `cursor` to `end`: a caption buffer, or a GAP when nothing does.
    fn cover(&mut self, end: gst::ClockTime) {
        if self.finished || end <= self.cursor {
            return;
        }
        let (start, duration) = (self.cursor, end - self.cursor);
        self.cursor = end;
        if self.text.is_empty() {
            self.appsrc
                .send_event(gst::event::Gap::new(start, duration));
        } else {
            let mut buffer = gst::Buffer::from_slice(self.text.clone().into_bytes());
            let b = buffer.get_mut().unwrap();
            b.set_pts(start);
            b.set_duration(duration);
            let _ = self
                .appsrc
                .emit_by_name::<gst::FlowReturn>("push-buffer", &[&buffer]);
        }
        match self.history.back_mut() {
            Some(last) if last.2 == self.text && last.1 == start => last.1 = end,
            _ => {
                let shown = if self.text.is_empty() {
                    "—".to_string()
                } else {
                    self.text.replace('\n', " / ")
                };
                println!("  {start:.3}  {shown}");
                self.history.push_back((start, end, self.text.clone()));
            }
        }
        // What a snapshot may still ask about is recent.
        while self.history.len() > 1000 {
            self.history.pop_front();
        }
    }

    /// The caption `textoverlay` draws on a frame spanning `start..end`: the first one of the
    /// caption stream that overlaps it.
    fn shown(&self, start: gst::ClockTime, end: gst::ClockTime) -> String {
        self.history
            .iter()
            .find(|(from, to, _)| *to > start && *from < end)
            .map(|(_, _, text)| text.clone())
            .unwrap_or_default()
    }
}

/// The caption for `words`: wrapped into lines of at most `LINE_CHARS` characters; when that
/// takes more than `MAX_LINES` lines, the top lines roll away (their words are dropped).
fn roll_up(words: &mut Vec<String>) -> String {
    loop {
        let lines = wrap(words);
        if lines.len() <= MAX_LINES {
            return lines
                .iter()
                .map(|line| line.join(" "))
                .collect::<Vec<_>>()
                .join("\n");
        }
        let dropped = lines[0].len();
        words.drain(..dropped);
    }
}

/// Greedy word wrap; a word longer than a line gets a line of its own.
fn wrap(words: &[String]) -> Vec<Vec<&str>> {
    let mut lines: Vec<Vec<&str>> = Vec::new();
    let mut width = 0;
    for word in words {
        let len = word.chars().count();
        match lines.last_mut() {
            Some(line) if width + 1 + len <= LINE_CHARS => {
                line.push(word);
                width += 1 + len;
            }
            _ => {
                lines.push(vec![word]);
                width = len;
            }
        }
    }
    lines
}
