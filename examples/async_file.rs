// SPDX-License-Identifier: MPL-2.0
//! `mode=async` on a long file: M minutes of 16 kHz S16LE audio (`audiotestsrc`, as fast as it
//! comes) through `sonioxstt mode=async ! fakesink`, against the stand-in's async API in a
//! process of its own (this program run with `--serve`). Prints the wall time from PLAYING to
//! EOS, the words out, and the process's peak memory above what it held before the audio.
//!
//! ```text
//! cargo run --release --example async_file -- [--minutes 60]
//! ```

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Instant;

use gst::prelude::*;

mod support;

const KEY: &str = "bench-key";
const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/samples/sample.script");

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut minutes = 60u64;
    let mut serve = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--minutes" => minutes = args.next().ok_or("--minutes M")?.parse()?,
            "--serve" => serve = Some(args.next().ok_or("--serve MINUTES")?.parse::<u64>()?),
            other => return Err(format!("unknown argument {other}; use --minutes M").into()),
        }
    }
    if let Some(minutes) = serve {
        return run_stand_in(minutes);
    }

    // The stand-in, in a process of its own: its copy of the upload is not counted here.
    let mut child = Command::new(std::env::current_exe()?)
        .args(["--serve", &minutes.to_string()])
        .stdout(Stdio::piped())
        .spawn()?;
    let mut lines = BufReader::new(child.stdout.take().ok_or("no stdout")?).lines();
    let rest_url = lines.next().ok_or("the stand-in said nothing")??;

    gst::init()?;
    gstsoniox::plugin_register_static()?;
    let buffers = minutes * 60 * 10; // 100 ms each
    let pipeline = gst::parse::launch(&format!(
        "audiotestsrc wave=silence is-live=false samplesperbuffer=1600 num-buffers={buffers} ! \
         audio/x-raw,format=S16LE,rate=16000,channels=1 ! \
         sonioxstt name=stt mode=async rest-url={rest_url} api-key={KEY} ! fakesink"
    ))?
    .downcast::<gst::Pipeline>()
    .map_err(|_| "not a pipeline")?;
    let words = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = words.clone();
    let stt = pipeline.by_name("stt").ok_or("no sonioxstt")?;
    stt.static_pad("src")
        .ok_or("no src pad")?
        .add_probe(gst::PadProbeType::BUFFER, move |_, _| {
            counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            gst::PadProbeReturn::Ok
        });
    let before = support::proc_status("VmRSS");
    let start = Instant::now();
    pipeline.set_state(gst::State::Playing)?;
    let bus = pipeline.bus().ok_or("no bus")?;
    let mut outcome = Err("no EOS".to_string());
    for message in bus.iter_timed(gst::ClockTime::NONE) {
        match message.view() {
            gst::MessageView::Eos(_) => {
                outcome = Ok(());
                break;
            }
            gst::MessageView::Error(e) => {
                outcome = Err(e.error().to_string());
                break;
            }
            _ => {}
        }
    }
    let elapsed = start.elapsed();
    let peak = support::proc_status("VmHWM");
    pipeline.set_state(gst::State::Null)?;
    let _ = child.kill();
    outcome?;
    let audio_mib = (minutes * 60 * 32_000) as f64 / (1 << 20) as f64;
    let above_mib = peak.saturating_sub(before) as f64 / 1024.0;
    println!("mode=async, {minutes} min of 16 kHz S16LE audio ({audio_mib:.1} MiB)");
    println!("  PLAYING to EOS     {:.2} s", elapsed.as_secs_f64());
    println!(
        "  words out          {}",
        words.load(std::sync::atomic::Ordering::Relaxed)
    );
    println!(
        "  peak memory        {above_mib:.1} MiB above the {:.1} MiB before the audio \
         (audio + {:.1} MiB)",
        before as f64 / 1024.0,
        above_mib - audio_mib
    );
    Ok(())
}

/// The stand-in with the sample's words repeated over `minutes`; prints its REST URL.
fn run_stand_in(minutes: u64) -> Result<(), Box<dyn std::error::Error>> {
    let unit = soniox_mock::Script::load(SCRIPT)?;
    let script = soniox_mock::Script::repeating(&unit, 20_000, minutes * 60_000);
    let server = soniox_mock::MockServer::start(soniox_mock::MockConfig::new(KEY, script));
    println!("{}", server.rest_url());
    loop {
        std::thread::park();
    }
}
