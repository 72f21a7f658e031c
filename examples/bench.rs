// SPDX-License-Identifier: MPL-2.0
//! Many streams in one process, as a media server runs them: N pipelines
//! `filesrc ! wavparse ! sonioxstt ! fakesink` over the bundled 20 s sample, all at once,
//! against the in-process stand-in. Prints throughput, CPU per hour of audio (the element's
//! threads and the stand-in's counted apart), threads and memory.
//!
//! ```text
//! cargo run --release --example bench -- [--streams N] [--pace P]
//! ```
//! `--pace 0` (the default) measures throughput; `--pace 1` runs in real time, the way
//! live calls arrive, and shows what concurrent sessions cost at rest.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use gst::prelude::*;

const SAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/samples/sample.wav");
const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/samples/sample.script");
const KEY: &str = "bench-key";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut streams = 20usize;
    let mut pace = 0.0f64;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--streams" => streams = args.next().ok_or("--streams N")?.parse()?,
            "--pace" => pace = args.next().ok_or("--pace P")?.parse()?,
            other => {
                return Err(format!("unknown argument {other}; use --streams N --pace P").into())
            }
        }
    }
    gst::init()?;
    gstsoniox::plugin_register_static()?;
    let script = soniox_mock::Script::load(SCRIPT)?;
    let words_per_stream = script.words().count();
    let server = soniox_mock::MockServer::start(soniox_mock::MockConfig::new(KEY, script));
    let threads_idle = thread_count();

    let mut pipelines = Vec::new();
    let words = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    for _ in 0..streams {
        let pipeline = gst::parse::launch(&format!(
            "filesrc location={SAMPLE} ! wavparse ! sonioxstt name=stt pace={pace} url={} api-key={KEY} ! fakesink",
            server.url()
        ))?
        .downcast::<gst::Pipeline>()
        .unwrap();
        let counter = words.clone();
        let stt = pipeline.by_name("stt").unwrap();
        stt.static_pad("src")
            .unwrap()
            .add_probe(gst::PadProbeType::BUFFER, move |_, _| {
                counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                gst::PadProbeReturn::Ok
            });
        pipelines.push(pipeline);
    }

    let cpu_before = cpu_by_thread_kind();
    let start = Instant::now();
    for pipeline in &pipelines {
        pipeline.set_state(gst::State::Playing)?;
    }
    let mut peak_threads = 0;
    for pipeline in &pipelines {
        let bus = pipeline.bus().unwrap();
        loop {
            peak_threads = peak_threads.max(thread_count());
            let Some(message) = bus.timed_pop(gst::ClockTime::from_mseconds(100)) else {
                continue;
            };
            match message.view() {
                gst::MessageView::Eos(_) => break,
                gst::MessageView::Error(e) => {
                    return Err(format!("stream failed: {}", e.error()).into())
                }
                _ => {}
            }
        }
    }
    let wall = start.elapsed();
    let cpu_after = cpu_by_thread_kind();
    let rss = rss_kib();
    for pipeline in &pipelines {
        pipeline.set_state(gst::State::Null)?;
    }

    let audio = Duration::from_secs(20) * streams as u32;
    let words = words.load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(
        words,
        words_per_stream * streams,
        "every word of every stream came out"
    );
    let cpu = |kind: &str| {
        cpu_after.get(kind).copied().unwrap_or(0.0) - cpu_before.get(kind).copied().unwrap_or(0.0)
    };
    let per_audio_hour = |seconds: f64| seconds / audio.as_secs_f64() * 3600.0;
    let (element, stand_in) = (cpu("element"), cpu("stand-in"));
    println!("streams                 {streams} × 20 s of 16 kHz S16LE, pace {pace}");
    println!("wall time               {:.2} s", wall.as_secs_f64());
    println!(
        "throughput              {:.0} s of audio per second ({:.1}× real time per stream)",
        audio.as_secs_f64() / wall.as_secs_f64(),
        20.0 / wall.as_secs_f64()
    );
    println!("words pushed            {words} (all of them)");
    println!(
        "CPU, element side       {element:.2} s = {:.1} CPU-s per hour of audio",
        per_audio_hour(element)
    );
    println!(
        "CPU, stand-in server    {stand_in:.2} s = {:.1} CPU-s per hour of audio (not part of the element)",
        per_audio_hour(stand_in)
    );
    println!("threads                 {threads_idle} idle, {peak_threads} at peak (GStreamer streaming threads + 2 shared runtime threads)");
    println!("resident memory         {} MiB at the end", rss / 1024);
    Ok(())
}

fn thread_count() -> usize {
    std::fs::read_dir("/proc/self/task").map_or(0, |d| d.count())
}

/// CPU seconds used so far by the threads alive now, by kind (stand-in threads are named
/// `soniox-mock…`; everything else is the pipelines and the element).
fn cpu_by_thread_kind() -> BTreeMap<&'static str, f64> {
    let ticks = 100.0; // USER_HZ on Linux
    let mut cpu = BTreeMap::new();
    for task in std::fs::read_dir("/proc/self/task")
        .into_iter()
        .flatten()
        .flatten()
    {
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
            continue;
        };
        let Some((name, rest)) = stat.split_once(") ") else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let used: f64 =
            fields[11].parse::<f64>().unwrap_or(0.0) + fields[12].parse::<f64>().unwrap_or(0.0);
        let kind = if name.contains("soniox-mock") {
            "stand-in"
        } else {
            "element"
        };
        *cpu.entry(kind).or_insert(0.0) += used / ticks;
    }
    cpu
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}
