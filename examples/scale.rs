// SPDX-License-Identifier: MPL-2.0
//! What `sonioxstt` costs a media server, against a floor measured in the same run.
//!
//! ```text
//! cargo run --release --example scale -- [--rounds 11] [--minutes 10] [--live-seconds 30]
//!     [--streams 50,100,200,500] [--stream-seconds 20] [--stream-rounds 3]
//!     [--only cpu|live|streams|latency]
//! ```
//!
//! `SCALE_STT_PROPERTIES="post-messages=false"` (say) adds properties to every `sonioxstt`.
//!
//! Everything runs against the stand-in in a process of its own (this binary again, with
//! `serve`), and each measured run in a fresh process of its own, so that one run's threads,
//! caches and allocations do not bill another:
//!
//! - **cpu**: `--rounds` interleaved runs of three programs over `--minutes` of 16 kHz S16LE
//!   audio in 20 ms frames, as fast as they go: the element (`filesrc ! wavparse !
//!   audiobuffersplit ! sonioxstt pace=0 ! fakesink`), the same pipeline without
//!   `sonioxstt` (its cost is the pipeline's, not the element's), and a minimal
//!   tokio-tungstenite client written for this benchmark (frames out, results read until
//!   `finished`: the floor). Prints CPU seconds per audio hour of each, the element's own
//!   (element minus baseline), and element ÷ floor per round (min / median / max); the
//!   element runs twice, as it comes and with `post-messages=false` (no bus messages: what a
//!   media server that does not read the bus would set), interleaved with the rest.
//! - **live**: the same at real time: `audiotestsrc is-live=true` in 20 ms buffers for
//!   `--live-seconds`, and the floor sending a frame every 20 ms.
//! - **streams**: N live streams in one process (`audiotestsrc is-live=true ! sonioxstt !
//!   fakesink`, 20 ms buffers) for `--stream-seconds`, with and without the element: the
//!   element's share of one core, threads, memory per stream (and after NULL), words out.
//! - **latency**: the same N live streams with the stand-in in the process, which notes when
//!   each message left it: from the message that made a word final to the word leaving
//!   `src` (p50 / p99 / max), with N streams running.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use gst::prelude::*;
use tokio_tungstenite::tungstenite::Message;

mod support;

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/samples/sample.script");
const KEY: &str = "bench-key";
const RATE: u64 = 16_000;
/// 20 ms of 16 kHz S16LE mono.
const FRAME: usize = 640;

type Error = Box<dyn std::error::Error>;

fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("serve") => return serve(args[1].parse()?),
        Some("run") => return child(&args[1..]),
        _ => {}
    }
    let mut options = Options::default();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{arg} takes a value"));
        match arg.as_str() {
            "--rounds" => options.rounds = value()?.parse()?,
            "--minutes" => options.minutes = value()?.parse()?,
            "--live-seconds" => options.live_seconds = value()?.parse()?,
            "--stream-seconds" => options.stream_seconds = value()?.parse()?,
            "--stream-rounds" => options.stream_rounds = value()?.parse()?,
            "--streams" => {
                options.streams = value()?
                    .split(',')
                    .map(str::parse)
                    .collect::<Result<_, _>>()?
            }
            "--only" => options.only = Some(value()?.clone()),
            other => return Err(format!("unknown argument {other} (see the file's header)").into()),
        }
    }
    let wants = |part: &str| options.only.as_deref().is_none_or(|only| only == part);
    // Long enough a script for every part.
    let script_seconds = (options.minutes * 60)
        .max(options.live_seconds)
        .max(options.stream_seconds)
        + 60;
    let server = StandIn::start(script_seconds)?;
    println!(
        "stand-in at {} (a process of its own); 2 cores here",
        server.url
    );
    if wants("cpu") {
        cpu(&server, &options, false)?;
    }
    if wants("live") {
        cpu(&server, &options, true)?;
    }
    if wants("streams") {
        for &n in &options.streams {
            streams(&server, n, options.stream_seconds, options.stream_rounds)?;
        }
    }
    if wants("latency") {
        for &n in &options.streams {
            latency(n, options.stream_seconds)?;
        }
    }
    Ok(())
}

struct Options {
    rounds: usize,
    minutes: u64,
    live_seconds: u64,
    stream_seconds: u64,
    stream_rounds: usize,
    streams: Vec<usize>,
    only: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            rounds: 11,
            minutes: 10,
            live_seconds: 30,
            stream_seconds: 20,
            stream_rounds: 3,
            streams: vec![50, 100, 200, 500],
            only: None,
        }
    }
}

/// The stand-in, in a process of its own.
struct StandIn {
    child: std::process::Child,
    url: String,
}

impl StandIn {
    fn start(seconds: u64) -> Result<StandIn, Error> {
        let mut child = Command::new(std::env::current_exe()?)
            .args(["serve", &seconds.to_string()])
            .stdout(Stdio::piped())
            .spawn()?;
        let mut lines = BufReader::new(child.stdout.take().ok_or("no stdout")?).lines();
        let url = lines.next().ok_or("the stand-in said nothing")??;
        Ok(StandIn { child, url })
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn script(seconds: u64) -> Result<soniox_mock::Script, Error> {
    let unit = soniox_mock::Script::load(SCRIPT)?;
    Ok(soniox_mock::Script::repeating(
        &unit,
        20_000,
        seconds * 1000,
    ))
}

fn stand_in_config(seconds: u64) -> Result<soniox_mock::MockConfig, Error> {
    let mut config = soniox_mock::MockConfig::new(KEY, script(seconds)?);
    // A media server's stand-in keeps no audio: its memory stays flat.
    config.keep_audio = false;
    config.idle_timeout = Duration::from_secs(600);
    Ok(config)
}

/// `serve SECONDS`: the stand-in; prints its WebSocket URL, then waits to be killed.
fn serve(seconds: u64) -> Result<(), Error> {
    let server = soniox_mock::MockServer::start(stand_in_config(seconds)?);
    println!("{}", server.url());
    loop {
        std::thread::park();
    }
}

// ---- one measured run per process ------------------------------------------------------

/// What a run reports of itself.
#[derive(Debug, Clone, Copy, Default)]
struct Usage {
    cpu_us: u64,
    voluntary_switches: u64,
    words: u64,
}

fn usage_now() -> Usage {
    // SAFETY: getrusage only writes the struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let us = |t: libc::timeval| t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64;
    Usage {
        cpu_us: us(usage.ru_utime) + us(usage.ru_stime),
        voluntary_switches: usage.ru_nvcsw as u64,
        words: 0,
    }
}

/// `run KIND URL SECONDS [live]` in a process of its own; prints `usage CPU_US VCSW WORDS`
/// (`run streams …` and `run latency …`: see those).
fn child(args: &[String]) -> Result<(), Error> {
    let kind = args[0].as_str();
    let url = &args[1];
    let seconds: u64 = args[2].parse()?;
    init()?;
    match kind {
        "streams" | "latency" => {
            let n: usize = args.get(3).ok_or("N streams")?.parse()?;
            return match kind {
                "streams" => {
                    streams_child(url, seconds, n, args.get(4).is_some_and(|a| a == "with"))
                }
                _ => latency_child(seconds, n),
            };
        }
        _ => {}
    }
    let live = args.get(3).is_some_and(|a| a == "live");
    let wav = wav_file(seconds)?;
    let audio = std::fs::read(&wav)?;
    let before = usage_now();
    let words = match kind {
        "element" | "quiet" | "baseline" => {
            let stt = match kind {
                "element" => Some(""),
                "quiet" => Some("post-messages=false"),
                _ => None,
            };
            pipeline_run(stt, url, &wav, seconds, live)?
        }
        "client" => client_run(url, &audio[44..], live)?,
        other => return Err(format!("no run {other}").into()),
    };
    let after = usage_now();
    println!(
        "usage {} {} {}",
        after.cpu_us - before.cpu_us,
        after.voluntary_switches - before.voluntary_switches,
        words
    );
    Ok(())
}

/// A WAV file of `seconds` of a quiet tone, made once per length.
fn wav_file(seconds: u64) -> Result<std::path::PathBuf, Error> {
    let path = std::env::temp_dir().join(format!("sonioxstt-scale-{seconds}s.wav"));
    if path.exists() {
        return Ok(path);
    }
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: RATE as u32,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let partial = path.with_extension(format!("{}.part", std::process::id()));
    let mut writer = hound::WavWriter::create(&partial, spec)?;
    for i in 0..seconds * RATE {
        let t = i as f64 / RATE as f64;
        writer.write_sample((f64::sin(t * 440.0 * std::f64::consts::TAU) * 3000.0) as i16)?;
    }
    writer.finalize()?;
    std::fs::rename(&partial, &path)?;
    Ok(path)
}

/// The pipeline, with `sonioxstt` (and `stt`'s properties for it) or without; returns the
/// words out.
fn pipeline_run(
    stt: Option<&str>,
    url: &str,
    wav: &std::path::Path,
    seconds: u64,
    live: bool,
) -> Result<u64, Error> {
    let source = if live {
        let buffers = seconds * 50;
        format!(
            "audiotestsrc is-live=true samplesperbuffer=320 num-buffers={buffers} volume=0.1 ! \
             audio/x-raw,format=S16LE,rate=16000,channels=1"
        )
    } else {
        format!(
            "filesrc location={} ! wavparse ! audiobuffersplit output-buffer-duration=1/50",
            wav.display()
        )
    };
    let element = stt.is_some();
    let stt = match stt {
        Some(more) => format!(
            "sonioxstt name=stt pace=0 url={url} api-key={KEY} {more} {} ! ",
            extra_properties()
        ),
        None => String::new(),
    };
    let pipeline = gst::parse::launch(&format!("{source} ! {stt}fakesink name=sink"))?
        .downcast::<gst::Pipeline>()
        .map_err(|_| "not a pipeline")?;
    let words = Arc::new(AtomicU64::new(0));
    if element {
        let counter = words.clone();
        let stt = pipeline.by_name("stt").ok_or("no stt")?;
        stt.static_pad("src")
            .ok_or("no src")?
            .add_probe(gst::PadProbeType::BUFFER, move |_, _| {
                counter.fetch_add(1, Ordering::Relaxed);
                gst::PadProbeReturn::Ok
            });
    }
    play(&pipeline)?;
    Ok(words.load(Ordering::Relaxed))
}

fn play(pipeline: &gst::Pipeline) -> Result<(), Error> {
    pipeline.set_state(gst::State::Playing)?;
    let bus = pipeline.bus().ok_or("no bus")?;
    let message = bus.timed_pop_filtered(
        gst::ClockTime::NONE,
        &[gst::MessageType::Eos, gst::MessageType::Error],
    );
    let result: Result<(), Error> = match message.as_ref().map(|m| m.view()) {
        None => Err("the bus closed".into()),
        Some(gst::MessageView::Error(e)) => Err(e.error().to_string().into()),
        Some(_) => Ok(()),
    };
    pipeline.set_state(gst::State::Null)?;
    result
}

/// The floor: a minimal client. A start request, then the audio in 20 ms frames (as fast
/// as the socket takes them, or one every 20 ms when `live`), an empty frame, and results
/// read until `finished`; returns the final words it got.
fn client_run(url: &str, audio: &[u8], live: bool) -> Result<u64, Error> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let (socket, _) = tokio_tungstenite::connect_async(url).await?;
        let (mut sink, mut stream) = socket.split();
        let start = serde_json::json!({
            "api_key": KEY,
            "model": "stt-rt-v5",
            "audio_format": "pcm_s16le",
            "sample_rate": RATE,
            "num_channels": 1,
        });
        sink.send(Message::text(start.to_string())).await?;
        let reader = tokio::spawn(async move {
            let mut words = 0u64;
            while let Some(Ok(message)) = stream.next().await {
                let Message::Text(text) = message else {
                    continue;
                };
                let value: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
                for token in value["tokens"].as_array().into_iter().flatten() {
                    let text = token["text"].as_str().unwrap_or("");
                    if token["is_final"] == true && (text.starts_with(' ') || words == 0) {
                        words += 1;
                    }
                }
                if value["finished"] == true {
                    break;
                }
            }
            words
        });
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        for frame in audio.chunks(FRAME) {
            if live {
                tick.tick().await;
            }
            sink.send(Message::binary(bytes::Bytes::copy_from_slice(frame)))
                .await?;
        }
        sink.send(Message::text("")).await?;
        let words = reader.await?;
        Ok::<u64, Error>(words)
    })
}

// ---- the parts -----------------------------------------------------------------------

fn measure(kind: &str, url: &str, seconds: u64, live: bool) -> Result<Usage, Error> {
    let mut command = Command::new(std::env::current_exe()?);
    command.args(["run", kind, url, &seconds.to_string()]);
    if live {
        command.arg("live");
    }
    let fields = child_figures(command, "usage")?;
    Ok(Usage {
        cpu_us: fields[0] as u64,
        voluntary_switches: fields[1] as u64,
        words: fields[2] as u64,
    })
}

/// Runs a measured child and reads the figures of its line that starts with `tag`.
fn child_figures(mut command: Command, tag: &str) -> Result<Vec<f64>, Error> {
    let output = command.stderr(Stdio::inherit()).output()?;
    let text = String::from_utf8_lossy(&output.stdout);
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix(tag)?.strip_prefix(' '))
        .ok_or_else(|| format!("no {tag} line in {text:?}"))?;
    Ok(line
        .split_whitespace()
        .map(str::parse)
        .collect::<Result<_, _>>()?)
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn spread(values: &[f64]) -> String {
    let mut sorted = values.to_vec();
    let mid = median(&mut sorted);
    format!(
        "{:.2} / {:.2} / {:.2}",
        sorted[0],
        mid,
        sorted[sorted.len() - 1]
    )
}

/// CPU per audio hour: element, baseline, floor, interleaved.
fn cpu(server: &StandIn, options: &Options, live: bool) -> Result<(), Error> {
    let seconds = if live {
        options.live_seconds
    } else {
        options.minutes * 60
    };
    let rounds = if live {
        options.rounds.min(5)
    } else {
        options.rounds
    };
    let hours = seconds as f64 / 3600.0;
    let per_hour = |u: &Usage| u.cpu_us as f64 / 1e6 / hours;
    let kinds = ["element", "quiet", "baseline", "client"];
    let mut results: HashMap<&str, Vec<Usage>> = HashMap::new();
    for round in 0..rounds {
        // A different order each round.
        for k in 0..kinds.len() {
            let kind = kinds[(k + round) % kinds.len()];
            let usage = measure(kind, &server.url, seconds, live)?;
            results.entry(kind).or_default().push(usage);
        }
    }
    let title = if live {
        format!("real time, 20 ms live buffers, {seconds} s of audio, {rounds} rounds")
    } else {
        format!("as fast as possible, 20 ms frames, {seconds} s of audio, {rounds} rounds")
    };
    println!("\ncpu: {title}");
    println!("  CPU s per audio hour (min / median / max), voluntary context switches (median)");
    for kind in kinds {
        let runs = &results[kind];
        let cpu: Vec<f64> = runs.iter().map(per_hour).collect();
        let mut switches: Vec<f64> = runs.iter().map(|u| u.voluntary_switches as f64).collect();
        println!(
            "  {:<32} {}   {:>8.0}   words {}",
            match kind {
                "element" => "pipeline with sonioxstt",
                "quiet" => "the same, post-messages=false",
                "baseline" => "the same pipeline without it",
                _ => "minimal client (the floor)",
            },
            spread(&cpu),
            median(&mut switches),
            runs[0].words
        );
    }
    // Per round: a pipeline's CPU minus the baseline's, and that over the floor's.
    let own = |kind: &str| -> Vec<f64> {
        (0..rounds)
            .map(|r| per_hour(&results[kind][r]) - per_hour(&results["baseline"][r]))
            .collect()
    };
    let over_floor = |own: &[f64]| -> Vec<f64> {
        (0..rounds)
            .map(|r| own[r] / per_hour(&results["client"][r]))
            .collect()
    };
    for (kind, label) in [
        ("element", "sonioxstt's own (with − without)"),
        ("quiet", "the same, post-messages=false"),
    ] {
        let own = own(kind);
        println!("  {label:<32} {}", spread(&own));
        println!(
            "  {:<32} {}   (goal ≤ 2)",
            "  its own ÷ the floor, per round",
            spread(&over_floor(&own))
        );
    }
    Ok(())
}

fn thread_count() -> u64 {
    support::proc_status("Threads")
}

/// N live streams for `seconds`, with and without the element, each in a process of its own,
/// interleaved over `rounds`: medians.
fn streams(server: &StandIn, n: usize, seconds: u64, rounds: usize) -> Result<(), Error> {
    let mut runs = Vec::new();
    for round in 0..rounds {
        let first = round % 2 == 0;
        let a = live_streams_in_child(&server.url, n, seconds, first)?;
        let b = live_streams_in_child(&server.url, n, seconds, !first)?;
        runs.push(if first { (a, b) } else { (b, a) });
    }
    let med = |f: &dyn Fn(&(LiveRun, LiveRun)) -> f64| {
        let mut v: Vec<f64> = runs.iter().map(f).collect();
        median(&mut v)
    };
    let shares: Vec<f64> = runs
        .iter()
        .map(|(w, wo)| (w.cpu_s - wo.cpu_s) / seconds as f64 * 100.0)
        .collect();
    let (with, _) = &runs[0];
    let words_ok = runs.iter().all(|(w, _)| w.words == w.expected);
    println!(
        "\nstreams: {n} live streams for {seconds} s (20 ms buffers), {rounds} rounds, medians\n  \
         sonioxstt's share of one core {:.1} % (min / median / max {}; goal ≤ 25 % at 200)\n  \
         process CPU {:.1} s with, {:.1} s without   threads at peak {:.0} (without: {:.0})\n  \
         memory per stream {:.0} KiB at peak (goal ≤ 1024); after NULL {:.1} KiB still allocated, \
         {:.0} KiB more resident (free heap the allocator keeps), {:+.1} KiB after a second round\n  \
         words out {} of {} per run ({})",
        med(&|(w, wo)| (w.cpu_s - wo.cpu_s) / seconds as f64 * 100.0),
        spread(&shares),
        med(&|(w, _)| w.cpu_s),
        med(&|(_, wo)| wo.cpu_s),
        med(&|(w, _)| w.threads as f64),
        med(&|(_, wo)| wo.threads as f64),
        med(&|(w, wo)| (w.peak_kib as f64 - wo.peak_kib as f64) / n as f64),
        med(&|(w, wo)| (w.heap_kib as f64 - wo.heap_kib as f64) / n as f64),
        med(&|(w, wo)| (w.after_kib as f64 - wo.after_kib as f64) / n as f64),
        med(&|(w, wo)| (w.growth_kib - wo.growth_kib) / n as f64),
        with.words,
        with.expected,
        if words_ok {
            "every word, every run"
        } else {
            "MISSING WORDS"
        }
    );
    Ok(())
}

struct LiveRun {
    cpu_s: f64,
    threads: u64,
    peak_kib: u64,
    after_kib: u64,
    heap_kib: u64,
    growth_kib: f64,
    words: u64,
    expected: u64,
}

fn live_streams_in_child(
    url: &str,
    n: usize,
    seconds: u64,
    element: bool,
) -> Result<LiveRun, Error> {
    let mut command = Command::new(std::env::current_exe()?);
    command.args([
        "run",
        "streams",
        url,
        &seconds.to_string(),
        &n.to_string(),
        if element { "with" } else { "without" },
    ]);
    let f = child_figures(command, "streams")?;
    Ok(LiveRun {
        cpu_s: f[0],
        threads: f[1] as u64,
        peak_kib: f[2] as u64,
        after_kib: f[3] as u64,
        heap_kib: f[4] as u64,
        growth_kib: f[5],
        words: f[6] as u64,
        expected: f[7] as u64,
    })
}

/// Builds N live pipelines; `probe` is given each one's `sonioxstt` (if any) and index.
fn live_pipelines(
    url: &str,
    n: usize,
    seconds: u64,
    element: bool,
    mut probe: impl FnMut(usize, &gst::Element),
) -> Result<Vec<gst::Pipeline>, Error> {
    let buffers = seconds * 50;
    (0..n)
        .map(|i| {
            let stt = if element {
                format!(
                    "sonioxstt name=stt url={url} api-key={KEY} client-reference-id=s{i} {} ! ",
                    extra_properties()
                )
            } else {
                String::new()
            };
            let pipeline = gst::parse::launch(&format!(
                "audiotestsrc is-live=true samplesperbuffer=320 num-buffers={buffers} volume=0.1 ! \
                 audio/x-raw,format=S16LE,rate=16000,channels=1 ! {stt}fakesink"
            ))?
            .downcast::<gst::Pipeline>()
            .map_err(|_| "not a pipeline")?;
            if let Some(stt) = pipeline.by_name("stt") {
                probe(i, &stt);
            }
            Ok(pipeline)
        })
        .collect()
}

/// Runs the pipelines to EOS together; returns the peak thread count.
fn run_together(pipelines: &[gst::Pipeline]) -> Result<u64, Error> {
    for pipeline in pipelines {
        pipeline.set_state(gst::State::Playing)?;
    }
    let mut peak = thread_count();
    for pipeline in pipelines {
        let bus = pipeline.bus().ok_or("no bus")?;
        loop {
            let message = bus.timed_pop_filtered(
                gst::ClockTime::from_mseconds(500),
                &[gst::MessageType::Eos, gst::MessageType::Error],
            );
            peak = peak.max(thread_count());
            match message.as_ref().map(|m| m.view()) {
                Some(gst::MessageView::Error(e)) => return Err(e.error().to_string().into()),
                Some(_) => break,
                None => {}
            }
        }
    }
    Ok(peak)
}

/// `run streams URL SECONDS N with|without`: prints
/// `streams CPU_S THREADS PEAK_KIB AFTER_KIB HEAP_KIB GROWTH_KIB WORDS EXPECTED`: after NULL,
/// the resident set and what is still allocated; then a second, shorter round of as many
/// streams and how much the resident set grew over it (a leak grows it, a cache does not).
fn streams_child(url: &str, seconds: u64, n: usize, element: bool) -> Result<(), Error> {
    let threads_before = thread_count();
    let words = Arc::new(AtomicU64::new(0));
    let pipelines = live_pipelines(url, n, seconds, element, |_, stt| {
        let counter = words.clone();
        stt.static_pad("src")
            .unwrap()
            .add_probe(gst::PadProbeType::BUFFER, move |_, _| {
                counter.fetch_add(1, Ordering::Relaxed);
                gst::PadProbeReturn::Ok
            });
    })?;
    let before = usage_now();
    let threads = run_together(&pipelines)?;
    let after = usage_now();
    let peak_kib = support::proc_status("VmHWM");
    stop_and_settle(pipelines, threads_before)?;
    let (after_kib, heap_kib) = memory_now();
    let again = live_pipelines(url, n, 3, element, |_, _| {})?;
    run_together(&again)?;
    stop_and_settle(again, threads_before)?;
    let growth_kib = memory_now().0 as f64 - after_kib as f64;
    let expected = if element {
        script(seconds)?
            .words()
            .filter(|w| w.end_ms <= seconds * 1000)
            .count() as u64
            * n as u64
    } else {
        0
    };
    println!(
        "streams {} {threads} {peak_kib} {after_kib} {heap_kib} {growth_kib} {} {expected}",
        (after.cpu_us - before.cpu_us) as f64 / 1e6,
        words.load(Ordering::Relaxed)
    );
    Ok(())
}

/// Sets the pipelines to NULL and drops them, then waits (at most 5 s) for the threads they
/// used to end: GLib's thread pool keeps an idle thread for half a second before it ends.
fn stop_and_settle(pipelines: Vec<gst::Pipeline>, threads_before: u64) -> Result<(), Error> {
    for pipeline in &pipelines {
        pipeline.set_state(gst::State::Null)?;
    }
    drop(pipelines);
    // The shared runtime's worker and blocking threads stay.
    let deadline = Instant::now() + Duration::from_secs(5);
    while thread_count() > threads_before + 4 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

/// The resident set after giving free heap back to the system, and what is still allocated
/// (KiB).
fn memory_now() -> (u64, u64) {
    // SAFETY: malloc_trim only gives free heap memory back to the system; mallinfo2 reads
    // the allocator's counters.
    let in_use = unsafe {
        libc::malloc_trim(0);
        libc::mallinfo2().uordblks
    };
    (support::proc_status("VmRSS"), in_use as u64 / 1024)
}

/// From the message that made a word final (as it left the in-process stand-in) to the
/// word leaving `src`, with N live streams running.
fn latency(n: usize, seconds: u64) -> Result<(), Error> {
    let output = Command::new(std::env::current_exe()?)
        .args(["run", "latency", "-", &seconds.to_string(), &n.to_string()])
        .stderr(Stdio::inherit())
        .output()?;
    let text = String::from_utf8_lossy(&output.stdout);
    let line = text
        .lines()
        .find(|l| l.starts_with("latency"))
        .ok_or_else(|| format!("no latency line in {text:?}"))?;
    println!("\n{line}");
    Ok(())
}

/// When the stand-in sent the message that made each token final: (connection, start_ms).
type FinalAt = Arc<Mutex<HashMap<(usize, u64), Instant>>>;

fn latency_child(seconds: u64, n: usize) -> Result<(), Error> {
    let final_at: FinalAt = Arc::default();
    let mut config = stand_in_config(seconds + 60)?;
    let noted = final_at.clone();
    config.on_sent = Some(Arc::new(move |connection, message| {
        let now = Instant::now();
        let mut noted = noted.lock().unwrap();
        for token in message["tokens"].as_array().into_iter().flatten() {
            if let (true, Some(start)) = (token["is_final"] == true, token["start_ms"].as_u64()) {
                noted.entry((connection, start)).or_insert(now);
            }
        }
    }));
    let server = soniox_mock::MockServer::start(config);
    // Each stream: the PTS of its first buffer, and (word PTS, when it left src).
    type Pushed = Arc<Mutex<(Option<u64>, Vec<(u64, Instant)>)>>;
    let pushed: Vec<Pushed> = (0..n).map(|_| Pushed::default()).collect();
    let pipelines = live_pipelines(&server.url(), n, seconds, true, |i, stt| {
        let first = pushed[i].clone();
        stt.static_pad("sink")
            .unwrap()
            .add_probe(gst::PadProbeType::BUFFER, move |_, info| {
                let mut first = first.lock().unwrap();
                if first.0.is_none() {
                    first.0 = info.buffer().and_then(|b| b.pts()).map(|p| p.nseconds());
                }
                gst::PadProbeReturn::Ok
            });
        let words = pushed[i].clone();
        stt.static_pad("src")
            .unwrap()
            .add_probe(gst::PadProbeType::BUFFER, move |_, info| {
                let now = Instant::now();
                if let Some(pts) = info.buffer().and_then(|b| b.pts()) {
                    words.lock().unwrap().1.push((pts.nseconds(), now));
                }
                gst::PadProbeReturn::Ok
            });
    })?;
    run_together(&pipelines)?;
    for pipeline in &pipelines {
        pipeline.set_state(gst::State::Null)?;
    }
    // Which connection was which stream.
    let mut stream_of = HashMap::new();
    for session in server.sessions() {
        let id = session
            .start_request
            .as_ref()
            .and_then(|r| r["client_reference_id"].as_str().map(str::to_string));
        if let Some(i) = id.and_then(|id| id.strip_prefix('s')?.parse::<usize>().ok()) {
            stream_of.insert(session.index, i);
        }
    }
    let final_at = final_at.lock().unwrap();
    let mut by_stream: Vec<HashMap<u64, Instant>> = vec![HashMap::new(); n];
    for (&(connection, start_ms), &at) in final_at.iter() {
        if let Some(&i) = stream_of.get(&connection) {
            by_stream[i].insert(start_ms, at);
        }
    }
    let mut delays = Vec::new();
    let mut unmatched = 0;
    for (i, pushed) in pushed.iter().enumerate() {
        let pushed = pushed.lock().unwrap();
        let origin = pushed.0.unwrap_or(0);
        for &(pts, at) in &pushed.1 {
            let ms = (pts.saturating_sub(origin) + 500_000) / 1_000_000;
            let sent = [ms, ms.saturating_sub(1), ms + 1]
                .iter()
                .find_map(|ms| by_stream[i].get(ms));
            match sent {
                Some(sent) => delays.push(at.saturating_duration_since(*sent).as_secs_f64() * 1e3),
                None => unmatched += 1,
            }
        }
    }
    delays.sort_by(f64::total_cmp);
    let pick = |q: f64| delays[((delays.len() - 1) as f64 * q) as usize];
    println!(
        "latency: {n} live streams, message that made a word final → the word on src: \
         p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms over {} words ({unmatched} unmatched; goal p99 ≤ 1 ms at 200)",
        pick(0.5),
        pick(0.99),
        delays[delays.len() - 1],
        delays.len()
    );
    Ok(())
}

/// More `sonioxstt` properties for every run, from `SCALE_STT_PROPERTIES` (e.g.
/// `post-messages=false`, to see what the bus messages cost).
fn extra_properties() -> String {
    std::env::var("SCALE_STT_PROPERTIES").unwrap_or_default()
}

fn init() -> Result<(), Error> {
    gst::init()?;
    gstsoniox::plugin_register_static()?;
    Ok(())
}
