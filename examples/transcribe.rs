// SPDX-License-Identifier: MPL-2.0
//! Transcribes a WAV file through a real pipeline and prints each word with its timestamps:
//!
//! ```text
//! filesrc ! wavparse ! audioconvert ! audioresample ! sonioxstt ! fakesink
//! ```
//!
//! With `SONIOX_API_KEY` set it talks to Soniox. Without it, it starts the project's stand-in
//! server in-process and says so: the stand-in does not recognize speech, it plays the
//! sample's scripted transcript (`samples/sample.script`) against the audio it receives.
//!
//! ```text
//! cargo run --example transcribe [-- [--pace N | --async] [FILE.wav]]
//! ```
//! `--pace 0` sends the audio as fast as the connection takes it; the default (1) streams
//! it at real-time speed, like a live source. `--async` sends the whole file through
//! Soniox's async REST API instead (`mode=async`): faster than real time, and cheaper; the
//! words come after the end of the file, and the job's stages are printed as they pass.

use std::path::PathBuf;
use std::process::ExitCode;

use gst::prelude::*;

mod support;

const SAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/samples/sample.wav");
const SAMPLE_SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/samples/sample.script");
const STAND_IN_KEY: &str = "stand-in-key";

fn main() -> ExitCode {
    let mut pace = 1.0;
    let mut batch = false;
    let mut file = PathBuf::from(SAMPLE);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--pace" => match args.next().and_then(|p| p.parse().ok()) {
                Some(p) => pace = p,
                None => return usage("--pace takes a number"),
            },
            "--async" => batch = true,
            "-h" | "--help" => return usage(""),
            _ if arg.starts_with('-') => return usage(&format!("unknown option {arg}")),
            _ => file = PathBuf::from(arg),
        }
    }
    match run(&file, pace, batch) {
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
    eprintln!("usage: transcribe [--pace N | --async] [FILE.wav]");
    ExitCode::from(2)
}

fn run(file: &PathBuf, pace: f64, batch: bool) -> Result<(), Box<dyn std::error::Error>> {
    gst::init()?;
    gstsoniox::plugin_register_static()?;

    // Soniox when a key is set, else the stand-in.
    let stand_in = match std::env::var("SONIOX_API_KEY") {
        Ok(key) if !key.trim().is_empty() => {
            println!(
                "Transcribing {} with Soniox (SONIOX_API_KEY is set).",
                file.display()
            );
            None
        }
        _ => {
            let script = soniox_mock::Script::load(SAMPLE_SCRIPT)?;
            let server =
                soniox_mock::MockServer::start(soniox_mock::MockConfig::new(STAND_IN_KEY, script));
            println!(
                "SONIOX_API_KEY is not set: using the built-in stand-in server at {}.\n\
                 It does not recognize speech: its words come from samples/sample.script.",
                if batch {
                    server.rest_url()
                } else {
                    server.url()
                }
            );
            Some(server)
        }
    };

    let pipeline = gst::Pipeline::new();
    let source = gst::ElementFactory::make("filesrc")
        .property("location", file)
        .build()?;
    let parse = gst::ElementFactory::make("wavparse").build()?;
    let convert = gst::ElementFactory::make("audioconvert").build()?;
    let resample = gst::ElementFactory::make("audioresample").build()?;
    let stt = gst::ElementFactory::make("sonioxstt")
        .property("pace", pace)
        .property_from_str("mode", if batch { "async" } else { "realtime" })
        .build()?;
    if let Some(server) = &stand_in {
        stt.set_property("url", server.url());
        stt.set_property("rest-url", server.rest_url());
        stt.set_property("api-key", STAND_IN_KEY);
    }
    let sink = gst::ElementFactory::make("fakesink")
        .property("sync", false)
        .build()?;
    pipeline.add_many([&source, &parse, &convert, &resample, &stt, &sink])?;
    gst::Element::link_many([&source, &parse, &convert, &resample, &stt, &sink])?;

    // Words (buffers) and utterance ends (events) as they leave sonioxstt, in order.
    let words = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let collected = words.clone();
    stt.static_pad("src").unwrap().add_probe(
        gst::PadProbeType::BUFFER | gst::PadProbeType::EVENT_DOWNSTREAM,
        move |_pad, info| {
            match &info.data {
                Some(gst::PadProbeData::Buffer(buffer)) => {
                    let text = buffer
                        .map_readable()
                        .map(|m| String::from_utf8_lossy(&m).into_owned());
                    let text = text.unwrap_or_default();
                    let time =
                        |t: Option<gst::ClockTime>| t.map_or("?".into(), |t| format!("{t:.3}"));
                    let start = time(buffer.pts());
                    let end = time(buffer.pts().zip(buffer.duration()).map(|(p, d)| p + d));
                    println!("  [{start} → {end}] {text}");
                    collected.lock().unwrap().push(text);
                }
                Some(gst::PadProbeData::Event(event))
                    if event
                        .structure()
                        .is_some_and(|s| s.name() == "rstranscribe/final-transcript") =>
                {
                    println!("  — end of utterance —");
                }
                _ => {}
            }
            gst::PadProbeReturn::Ok
        },
    );

    // mode=async: the job's stages (soniox/job) as they pass.
    let bus = pipeline.bus().ok_or("no bus")?;
    bus.enable_sync_message_emission();
    bus.connect_sync_message(Some("element"), |_, message| {
        let Some(job) = message.structure().filter(|s| s.name() == "soniox/job") else {
            return;
        };
        let stage = job.get::<String>("stage").unwrap_or_default();
        let sent = job.get::<u64>("uploaded-bytes").unwrap_or(0);
        let total = job.get::<u64>("total-bytes").unwrap_or(0);
        match stage.as_str() {
            "uploading" => println!("  (job: uploading, {sent} of {total} bytes)"),
            other => println!("  (job: {other})"),
        }
    });

    support::play_to_the_end(&pipeline)?;
    println!("\nTranscript: {}", words.lock().unwrap().join(" "));
    Ok(())
}
