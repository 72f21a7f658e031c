// SPDX-License-Identifier: MPL-2.0
//! Test support: the plugin registered in-process, the bundled sample, a recorder of what
//! `sonioxstt` pushes on `src`, and pipeline runs that collect the bus.
#![allow(dead_code)] // each test binary uses a different part

use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, Once};
use std::time::{Duration, Instant};

use gst::prelude::*;
#[allow(unused_imports)]
pub use soniox_mock::{
    ClientEventKind, Fault, JobFault, MockConfig, MockServer, Script, SessionEnd, SessionRecord,
};

pub mod subtitles;

pub const KEY: &str = "test-key-5b1d9e";
pub const MS: u64 = 1_000_000;
/// Generous bound for things that take milliseconds when they work.
pub const WAIT: Duration = Duration::from_secs(20);

pub fn init() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        gst::init().unwrap();
        gstsoniox::plugin_register_static().expect("register the soniox plugin");
    });
}

pub fn sample_wav() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("samples/sample.wav")
}

pub fn sample_script() -> Script {
    Script::load(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("samples/sample.script")).unwrap()
}

/// The audio bytes of a WAV file's `data` chunk.
pub fn wav_data(path: &PathBuf) -> Vec<u8> {
    let bytes = std::fs::read(path).unwrap();
    let mut at = 12;
    while at + 8 <= bytes.len() {
        let size = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().unwrap()) as usize;
        if &bytes[at..at + 4] == b"data" {
            return bytes[at + 8..at + 8 + size].to_vec();
        }
        at += 8 + size + (size & 1);
    }
    panic!("no data chunk in {}", path.display());
}

/// Runs `cargo build ARGS` for this package (the profile the tests were built with) and
/// returns the target folder (`target/<profile>`). `cargo test` does not build the cdylib
/// or the examples that some tests run.
pub fn cargo_build(args: &[&str]) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.ancestors().nth(2).unwrap().to_path_buf(); // target/<profile>
    let mut build = cargo();
    build
        .arg("build")
        .args(args)
        .args(["-p", "gst-plugin-soniox"])
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    if dir.ends_with("release") {
        build.arg("--release");
    }
    assert!(build.status().unwrap().success(), "cargo build {args:?}");
    dir
}

/// The folder holding `libgstsoniox.so`, built now if needed (`cargo test` builds only the rlib).
pub fn plugin_dir() -> PathBuf {
    let dir = cargo_build(&["--lib"]);
    assert!(
        dir.join("libgstsoniox.so").exists(),
        "no libgstsoniox.so in {}",
        dir.display()
    );
    dir
}

/// The cargo target folder the tests were built in.
fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    // target/<profile>/deps/<test>
    exe.ancestors().nth(3).unwrap().to_path_buf()
}

/// A cargo command without what cargo set for this test only: some build scripts (ring's)
/// rebuild when one changes.
fn cargo() -> std::process::Command {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = std::process::Command::new(cargo);
    for (name, _) in std::env::vars() {
        let for_this_test = [
            "CARGO_MANIFEST_",
            "CARGO_PKG_",
            "CARGO_CRATE_",
            "CARGO_PRIMARY_PACKAGE",
            "CARGO_TARGET_TMPDIR",
            "CARGO_RUSTC_CURRENT_DIR",
            "OUT_DIR",
        ];
        if for_this_test.iter().any(|p| name.starts_with(p)) {
            command.env_remove(name);
        }
    }
    command
}

/// The gst-plugins-rs caption elements (textaccumulate, textwrap, and closedcaption 0.13.5:
/// transcriberbin, tttocea608, cea608tojson), built once from `consumers/` (a cargo project of
/// its own: they use other gstreamer-rs versions) into `target/consumers`, and loaded into
/// this process. Later runs find them built.
pub fn consumer_plugins() {
    static LOADED: Once = Once::new();
    init();
    LOADED.call_once(|| {
        let target = target_dir().join("consumers");
        let mut build = cargo();
        build
            .args(["build", "--release", "--target-dir"])
            .arg(&target)
            .current_dir(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("consumers"));
        for package in CONSUMER_PACKAGES {
            build.args(["-p", package]);
        }
        assert!(
            build.status().unwrap().success(),
            "building the caption plugins in consumers/ (they need libpango1.0-dev and libcairo2-dev)"
        );
        for library in ["gstrsclosedcaption", "gsttextwrap", "gsttextaccumulate"] {
            let path = target.join(format!("release/lib{library}.so"));
            gst::Plugin::load_file(&path)
                .unwrap_or_else(|e| panic!("loading {}: {e}", path.display()));
        }
    });
}

const CONSUMER_PACKAGES: [&str; 3] = [
    "gst-plugin-closedcaption",
    "gst-plugin-textwrap",
    "gst-plugin-textaccumulate",
];

/// A stand-in server with the test key.
pub fn server(script: Script, configure: impl FnOnce(&mut MockConfig)) -> MockServer {
    let mut config = MockConfig::new(KEY, script);
    configure(&mut config);
    MockServer::start(config)
}

/// A `sonioxstt` pointed at `server` with the test key.
pub fn element(server: &MockServer) -> gst::Element {
    init();
    gst::ElementFactory::make("sonioxstt")
        .property("url", server.url())
        .property("api-key", KEY)
        .build()
        .unwrap()
}

/// When EOS enters `stt` (the end of the audio).
pub fn end_of_audio(stt: &gst::Element) -> Arc<Mutex<Option<Instant>>> {
    let at = Arc::new(Mutex::new(None));
    let seen = at.clone();
    stt.static_pad("sink").unwrap().add_probe(
        gst::PadProbeType::EVENT_DOWNSTREAM,
        move |_, info| {
            if let Some(gst::PadProbeData::Event(e)) = &info.data {
                if e.type_() == gst::EventType::Eos {
                    seen.lock().unwrap().get_or_insert_with(Instant::now);
                }
            }
            gst::PadProbeReturn::Ok
        },
    );
    at
}

/// Something `sonioxstt` pushed on `src`.
#[derive(Debug, Clone, PartialEq)]
pub enum Seen {
    Word {
        text: String,
        pts: Option<u64>,
        duration: Option<u64>,
        discont: bool,
        /// The buffer's `SonioxWordMeta` structure, if it has one.
        meta: Option<gst::Structure>,
    },
    /// A custom downstream event, by structure name.
    Custom(String),
    /// `rstranscribe/speaker-change`, with its `speaker`.
    SpeakerChange(String),
    /// A tag event's language code.
    Language(String),
    Gap {
        pts: u64,
        duration: Option<u64>,
    },
    Segment(gst::FormattedSegment<gst::ClockTime>),
    Eos(gst::Seqnum),
}

/// Records buffers and events crossing a pad, in order.
#[derive(Clone, Default)]
pub struct Recorder {
    seen: Arc<(Mutex<Vec<Seen>>, Condvar)>,
    /// When each item of `seen` crossed the pad.
    times: Arc<Mutex<Vec<Instant>>>,
}

impl Recorder {
    /// Records what goes out of `element`'s `src` pad.
    pub fn attach(element: &gst::Element) -> Recorder {
        Recorder::attach_pad(&element.static_pad("src").unwrap())
    }

    /// Records what goes out of `pad` (e.g. a translation pad).
    pub fn attach_pad(pad: &gst::Pad) -> Recorder {
        let recorder = Recorder::default();
        let seen = recorder.seen.clone();
        let times = recorder.times.clone();
        pad.add_probe(
            gst::PadProbeType::BUFFER | gst::PadProbeType::EVENT_DOWNSTREAM,
            move |_pad, info| {
                let item = match &info.data {
                    Some(gst::PadProbeData::Buffer(buffer)) => Some(Seen::Word {
                        text: String::from_utf8(buffer.map_readable().unwrap().to_vec()).unwrap(),
                        pts: buffer.pts().map(|t| t.nseconds()),
                        duration: buffer.duration().map(|t| t.nseconds()),
                        discont: buffer.flags().contains(gst::BufferFlags::DISCONT),
                        meta: gst::meta::CustomMeta::from_buffer(buffer, "SonioxWordMeta")
                            .ok()
                            .map(|m| m.structure().to_owned()),
                    }),
                    Some(gst::PadProbeData::Event(event)) => match event.view() {
                        gst::EventView::CustomDownstream(_) => {
                            let s = event.structure().unwrap();
                            Some(match s.get::<String>("speaker") {
                                Ok(speaker) if s.name() == "rstranscribe/speaker-change" => {
                                    Seen::SpeakerChange(speaker)
                                }
                                _ => Seen::Custom(s.name().to_string()),
                            })
                        }
                        gst::EventView::Tag(tag) => tag
                            .tag()
                            .get::<gst::tags::LanguageCode>()
                            .map(|l| Seen::Language(l.get().to_string())),
                        gst::EventView::Gap(gap) => {
                            let (pts, duration) = gap.get();
                            Some(Seen::Gap {
                                pts: pts.nseconds(),
                                duration: duration.map(|d| d.nseconds()),
                            })
                        }
                        gst::EventView::Segment(s) => {
                            Some(Seen::Segment(s.segment().clone().downcast().unwrap()))
                        }
                        gst::EventView::Eos(_) => Some(Seen::Eos(event.seqnum())),
                        _ => None,
                    },
                    _ => None,
                };
                if let Some(item) = item {
                    let mut list = seen.0.lock().unwrap();
                    list.push(item);
                    times.lock().unwrap().push(Instant::now());
                    drop(list);
                    seen.1.notify_all();
                }
                gst::PadProbeReturn::Ok
            },
        );
        recorder
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.0.lock().unwrap().clone()
    }

    /// What was seen, each with the moment it crossed the pad.
    pub fn seen_at(&self) -> Vec<(Seen, Instant)> {
        let seen = self.seen.0.lock().unwrap();
        let times = self.times.lock().unwrap();
        seen.iter().cloned().zip(times.iter().copied()).collect()
    }

    /// Waits until `pred` holds for what was seen; false on timeout.
    pub fn wait_for(&self, timeout: Duration, pred: impl Fn(&[Seen]) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        let mut seen = self.seen.0.lock().unwrap();
        while !pred(&seen) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            seen = self.seen.1.wait_timeout(seen, left).unwrap().0;
        }
        true
    }

    /// When EOS crossed the pad, if it did.
    pub fn eos_at(&self) -> Option<Instant> {
        self.seen_at()
            .into_iter()
            .find_map(|(seen, at)| matches!(seen, Seen::Eos(_)).then_some(at))
    }

    pub fn wait_eos(&self, timeout: Duration) -> bool {
        self.wait_for(timeout, |s| s.iter().any(|x| matches!(x, Seen::Eos(_))))
    }

    /// The words, with their times.
    pub fn words(&self) -> Vec<(String, Option<u64>, Option<u64>)> {
        words(&self.seen())
    }
}

pub fn words(seen: &[Seen]) -> Vec<(String, Option<u64>, Option<u64>)> {
    seen.iter()
        .filter_map(|s| match s {
            Seen::Word {
                text,
                pts,
                duration,
                ..
            } => Some((text.clone(), *pts, *duration)),
            _ => None,
        })
        .collect()
}

/// The words of `script` a session hears in its first `ms` of audio (the stand-in says the
/// words that started in it; one cut off by the end of the audio ends there).
pub fn said_before(script: &Script, ms: u64) -> Script {
    let mut said = script.clone();
    for utterance in &mut said.utterances {
        utterance.words.retain(|w| w.start_ms < ms);
        for word in &mut utterance.words {
            word.end_ms = word.end_ms.min(ms);
        }
    }
    said.utterances.retain(|u| !u.words.is_empty());
    said
}

/// The words of `script` as the sessions heard them: a word that a session's start (its
/// stream position) falls into was heard by the session before only, up to where its audio
/// ended (a rotation at the hard limit cuts wherever the audio is).
pub fn heard_across_sessions(script: &Script, sessions: &[SessionRecord]) -> Script {
    let cuts: Vec<u64> = sessions
        .iter()
        .skip(1)
        .filter_map(|s| s.stream_offset_ms)
        .collect();
    let mut heard = script.clone();
    for word in heard.utterances.iter_mut().flat_map(|u| &mut u.words) {
        if let Some(&cut) = cuts.iter().find(|&&c| word.start_ms < c && c < word.end_ms) {
            word.end_ms = cut;
        }
    }
    heard
}

/// Asserts the words are exactly the script's, each timed within 1 ms of the token times
/// mapped through `to_pts` (session ms → expected input ns).
pub fn assert_words_match(
    words: &[(String, Option<u64>, Option<u64>)],
    script: &Script,
    to_pts: impl Fn(u64) -> u64,
) {
    let expected: Vec<_> = script.words().collect();
    let texts: Vec<&str> = words.iter().map(|w| w.0.as_str()).collect();
    let want: Vec<&str> = expected.iter().map(|w| w.text.as_str()).collect();
    if texts != want {
        // Long transcripts: show where they part, not all of them.
        let at = texts.iter().zip(&want).take_while(|(a, b)| a == b).count();
        let window = |v: &[&str]| v[at.saturating_sub(3)..(at + 4).min(v.len())].join(" ");
        panic!(
            "the words pushed are not the script's, in order: {} pushed, {} expected; \
             from word {at}: pushed [{}], expected [{}] (times {:?})",
            texts.len(),
            want.len(),
            window(&texts),
            window(&want),
            words.get(at.saturating_sub(1)..(at + 2).min(words.len())),
        );
    }
    for ((text, pts, duration), word) in words.iter().zip(expected) {
        let start = to_pts(word.start_ms);
        let end = to_pts(word.end_ms);
        let pts = pts.unwrap_or_else(|| panic!("{text} has no PTS"));
        let duration = duration.unwrap_or_else(|| panic!("{text} has no duration"));
        assert!(
            pts.abs_diff(start) <= MS,
            "{text}: PTS {pts} vs token start {start}"
        );
        assert!(
            duration.abs_diff(end - start) <= MS,
            "{text}: duration {duration} vs token span {}",
            end - start
        );
    }
}

/// Asserts that a warning starts with `start` and that no live audio was dropped.
pub fn assert_warned_and_nothing_dropped(warnings: &[String], start: &str) {
    assert!(
        warnings.iter().any(|w| w.starts_with(start)),
        "a warning starting {start:?}: {warnings:?}"
    );
    assert!(
        !warnings.iter().any(|w| w.contains("dropped")),
        "no live audio was dropped: {warnings:?}"
    );
}

/// What a pipeline run posted on the bus.
pub struct Run {
    pub messages: Vec<gst::Message>,
    pub eos: bool,
    pub elapsed: Duration,
}

impl Run {
    /// Element messages of that structure name, from any element.
    pub fn structures(&self, name: &str) -> Vec<gst::Structure> {
        self.messages
            .iter()
            .filter(|m| m.type_() == gst::MessageType::Element)
            .filter_map(|m| {
                m.structure()
                    .filter(|s| s.name() == name)
                    .map(|s| s.to_owned())
            })
            .collect()
    }

    pub fn error(&self) -> Option<(String, String)> {
        self.messages.iter().find_map(|m| match m.view() {
            gst::MessageView::Error(e) => Some((
                e.error().to_string(),
                e.debug().unwrap_or_default().to_string(),
            )),
            _ => None,
        })
    }

    pub fn warnings(&self) -> Vec<String> {
        self.messages
            .iter()
            .filter_map(|m| match m.view() {
                gst::MessageView::Warning(w) => Some(w.error().to_string()),
                _ => None,
            })
            .collect()
    }

    /// `soniox/session` events in order, e.g. `["connected", "finished"]`.
    pub fn session_events(&self) -> Vec<String> {
        self.structures("soniox/session")
            .iter()
            .map(|s| s.get::<String>("event").unwrap())
            .collect()
    }
}

/// Plays `pipeline` until EOS, an error or `timeout`, collecting the bus, then stops it.
pub fn run(pipeline: &gst::Pipeline, timeout: Duration) -> Run {
    let bus = pipeline.bus().unwrap();
    let start = Instant::now();
    pipeline.set_state(gst::State::Playing).unwrap();
    let mut messages = Vec::new();
    let mut eos = false;
    while let Some(message) = bus.timed_pop(gst::ClockTime::from_nseconds(
        timeout.saturating_sub(start.elapsed()).as_nanos() as u64,
    )) {
        let done = match message.view() {
            gst::MessageView::Eos(_) => {
                eos = true;
                true
            }
            gst::MessageView::Error(_) => true,
            _ => false,
        };
        messages.push(message);
        if done {
            break;
        }
    }
    let elapsed = start.elapsed();
    pipeline.set_state(gst::State::Null).unwrap();
    Run {
        messages,
        eos,
        elapsed,
    }
}

/// Builds a pipeline from a description with one `sonioxstt name=stt` in it.
pub fn launch(description: &str) -> (gst::Pipeline, gst::Element) {
    init();
    let pipeline = gst::parse::launch(description)
        .unwrap()
        .downcast::<gst::Pipeline>()
        .unwrap();
    let stt = pipeline.by_name("stt").expect("a sonioxstt named stt");
    (pipeline, stt)
}

/// `filesrc ! wavparse ! sonioxstt pace=0 ! fakesink` over the bundled sample.
pub fn sample_pipeline(server: &MockServer, extra: &str) -> (gst::Pipeline, gst::Element) {
    launch(&format!(
        "filesrc location={} ! wavparse ! sonioxstt name=stt pace=0 url={} api-key={KEY} {extra} ! fakesink sync=false",
        sample_wav().display(),
        server.url()
    ))
}

/// S16LE 16 kHz mono caps.
pub fn s16_caps(rate: i32) -> gst::Caps {
    gst::Caps::builder("audio/x-raw")
        .field("format", "S16LE")
        .field("layout", "interleaved")
        .field("rate", rate)
        .field("channels", 1)
        .build()
}

/// A buffer of `ms` of S16LE silence at `rate`, stamped `pts_ms`.
pub fn silence(rate: u64, pts_ms: Option<u64>, ms: u64, discont: bool) -> gst::Buffer {
    let bytes = (rate * ms / 1000 * 2) as usize;
    let mut buffer = gst::Buffer::from_mut_slice(vec![0u8; bytes]);
    {
        let b = buffer.get_mut().unwrap();
        b.set_pts(pts_ms.map(gst::ClockTime::from_mseconds));
        b.set_duration(gst::ClockTime::from_mseconds(ms));
        if discont {
            b.set_flags(gst::BufferFlags::DISCONT);
        }
    }
    buffer
}

/// Pushes `ms` of silence at `rate` in 100 ms buffers stamped from `pts_ms`.
pub fn push_silence(h: &mut gst_check::Harness, rate: u64, pts_ms: u64, ms: u64) {
    for i in 0..ms / 100 {
        h.push(silence(rate, Some(pts_ms + i * 100), 100, false))
            .unwrap();
    }
}

/// Pushes `audio` (S16LE at `rate`) into a live harness at real-time speed in chunks of
/// `chunk_ms`, stamped from 0. Returns the moment each chunk was pushed and the longest a
/// single push (chain call) took.
pub fn push_live(
    h: &mut gst_check::Harness,
    audio: &[u8],
    rate: u64,
    chunk_ms: u64,
) -> (Vec<Instant>, Duration) {
    let chunk_bytes = (rate * 2 * chunk_ms / 1000) as usize;
    let start = Instant::now();
    let mut pushed_at = Vec::new();
    let mut longest = Duration::ZERO;
    for (i, chunk) in audio.chunks(chunk_bytes).enumerate() {
        let due = start + Duration::from_millis(i as u64 * chunk_ms);
        // Pacing a live source: real time is the scenario, not synchronisation.
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
        let mut buffer = gst::Buffer::from_slice(chunk.to_vec());
        {
            let b = buffer.get_mut().unwrap();
            b.set_pts(gst::ClockTime::from_mseconds(i as u64 * chunk_ms));
            b.set_duration(gst::ClockTime::from_mseconds(chunk_ms));
        }
        let before = Instant::now();
        h.push(buffer).unwrap();
        longest = longest.max(before.elapsed());
        pushed_at.push(before);
    }
    (pushed_at, longest)
}

/// A harness around `element`, with the element's messages going to the returned bus.
pub fn harness(element: &gst::Element, caps: &gst::Caps) -> (gst_check::Harness, gst::Bus) {
    let bus = gst::Bus::new();
    element.set_bus(Some(&bus));
    let mut h = gst_check::Harness::with_element(element, Some("sink"), Some("src"));
    h.set_src_caps(caps.clone());
    (h, bus)
}

/// Element messages of `name` waiting on `bus`.
pub fn drain_bus(bus: &gst::Bus) -> Vec<gst::Message> {
    std::iter::from_fn(|| bus.pop()).collect()
}

/// An example's binary, built now if needed (`cargo test` alone does not build it first).
pub fn example_binary(name: &str) -> PathBuf {
    let dir = cargo_build(&["--example", name]);
    let binary = dir.join("examples").join(name);
    assert!(binary.exists(), "no {}", binary.display());
    binary
}

/// Runs an example with `args` and no SONIOX_API_KEY: whether it succeeded, and its standard
/// output. Killed if it runs longer than `limit`.
pub fn run_example(binary: &std::path::Path, args: &[&str], limit: Duration) -> (bool, String) {
    use std::io::{BufRead, BufReader};
    let mut child = std::process::Command::new(binary)
        .args(args)
        .env_remove("SONIOX_API_KEY")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (line_tx, lines) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if line_tx.send(line.unwrap()).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + limit;
    let mut output = String::new();
    loop {
        match lines.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(line) => {
                println!("example: {line}");
                output.push_str(&line);
                output.push('\n');
            }
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break, // its output ended
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                let _ = child.kill();
                panic!("the example still runs after {limit:?}:\n{output}");
            }
        }
    }
    reader.join().unwrap();
    (child.wait().unwrap().success(), output)
}
