// SPDX-License-Identifier: MPL-2.0
//! Runs `sonioxstt` on temporary keys: the application keeps its permanent key and mints a
//! single-use temporary key through Soniox's REST API (`POST /v1/auth/temporary-api-key`) for
//! each connection the element opens, in the element's `request-api-key` signal. The element
//! never holds the permanent key, and a reconnect or rotation gets a key of its own.
//!
//! ```text
//! cargo run --example temporary_keys [-- [--no-fault] [FILE.wav]]
//! ```
//! With `SONIOX_API_KEY` set it mints keys from Soniox (`SONIOX_REST_URL` overrides
//! `https://api.soniox.com`) and transcribes there. Without it, it starts the project's
//! stand-in (WebSocket and REST API), whose first connection fails after 6 s of audio (503),
//! so that a second connection with a second key carries on; `--no-fault` leaves that out.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use gst::prelude::*;

mod support;

const SAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/samples/sample.wav");
const SAMPLE_SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/samples/sample.script");
const STAND_IN_KEY: &str = "stand-in-permanent-key";

fn main() -> ExitCode {
    let mut file = PathBuf::from(SAMPLE);
    let mut fault = true;
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--no-fault" => fault = false,
            "-h" | "--help" => {
                eprintln!("usage: temporary_keys [--no-fault] [FILE.wav]");
                return ExitCode::SUCCESS;
            }
            _ if arg.starts_with('-') => {
                eprintln!("error: unknown option {arg}");
                return ExitCode::from(2);
            }
            _ => file = PathBuf::from(arg),
        }
    }
    match run(&file, fault) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Mints one single-use key for a WebSocket connection; never prints the keys.
struct Minter {
    client: reqwest::blocking::Client,
    rest_url: String,
    permanent_key: String,
}

impl Minter {
    fn mint(&self, session: u32) -> Result<String, String> {
        let body = serde_json::json!({
            "usage_type": "transcribe_websocket",
            "expires_in_seconds": 60,
            "single_use": true,
            "client_reference_id": format!("gst-soniox-example-{session}"),
        });
        let response = self
            .client
            .post(format!("{}/v1/auth/temporary-api-key", self.rest_url))
            .bearer_auth(&self.permanent_key)
            .json(&body)
            .send()
            .map_err(|e| e.to_string())?;
        let status = response.status();
        let answer: serde_json::Value = response.json().map_err(|e| e.to_string())?;
        if !status.is_success() {
            return Err(format!("{status}: {}", answer["message"]));
        }
        let expires = answer["expires_at"].as_str().unwrap_or("?").to_string();
        let key = answer["api_key"]
            .as_str()
            .ok_or("no api_key in the answer")?
            .to_string();
        println!("session {session}: minted a single-use temporary key (expires at {expires})");
        Ok(key)
    }
}

fn run(file: &PathBuf, fault: bool) -> Result<(), Box<dyn std::error::Error>> {
    gst::init()?;
    gstsoniox::plugin_register_static()?;

    let (stand_in, permanent_key, rest_url) = match std::env::var("SONIOX_API_KEY") {
        Ok(key) if !key.trim().is_empty() => {
            let rest = std::env::var("SONIOX_REST_URL")
                .unwrap_or_else(|_| "https://api.soniox.com".to_string());
            println!("Minting temporary keys from {rest} (SONIOX_API_KEY is set).");
            (None, key.trim().to_string(), rest)
        }
        _ => {
            let script = soniox_mock::Script::load(SAMPLE_SCRIPT)?;
            let mut config = soniox_mock::MockConfig::new(STAND_IN_KEY, script);
            let sample = std::fs::read(SAMPLE)?;
            let audio = soniox_mock::wav_data(&sample).ok_or("no audio in the sample")?;
            config.reference_audio = Some(Arc::new(audio.to_vec()));
            if fault {
                config.session_faults =
                    vec![vec![soniox_mock::Fault::service_unavailable_at(6000)]];
            }
            let server = soniox_mock::MockServer::start(config);
            println!(
                "SONIOX_API_KEY is not set: using the built-in stand-in at {} (REST at {}).",
                server.url(),
                server.rest_url()
            );
            let rest = server.rest_url();
            (Some(server), STAND_IN_KEY.to_string(), rest)
        }
    };
    let minter = Minter {
        client: reqwest::blocking::Client::new(),
        rest_url,
        permanent_key,
    };

    let pipeline = gst::parse::launch(
        "filesrc name=src ! wavparse ! audioconvert ! audioresample ! \
         sonioxstt name=stt pace=0 ! fakesink sync=false",
    )?
    .downcast::<gst::Pipeline>()
    .map_err(|_| "not a pipeline")?;
    pipeline
        .by_name("src")
        .ok_or("no filesrc")?
        .set_property("location", file);
    let stt = pipeline.by_name("stt").ok_or("no sonioxstt")?;
    if let Some(server) = &stand_in {
        stt.set_property("url", server.url());
    }
    // Emitted on a thread of its own before each connection: blocking here is fine.
    stt.connect("request-api-key", false, move |args| {
        let session = args[1].get::<u32>().unwrap_or(0);
        let key = minter
            .mint(session)
            .map_err(|e| eprintln!("session {session}: no temporary key: {e}"))
            .ok();
        Some(key.to_value())
    });
    let words = Arc::new(Mutex::new(Vec::<String>::new()));
    let collected = words.clone();
    stt.static_pad("src").ok_or("no src pad")?.add_probe(
        gst::PadProbeType::BUFFER,
        move |_, info| {
            if let Some(gst::PadProbeData::Buffer(buffer)) = &info.data {
                if let Ok(map) = buffer.map_readable() {
                    collected
                        .lock()
                        .unwrap()
                        .push(String::from_utf8_lossy(&map).into_owned());
                }
            }
            gst::PadProbeReturn::Ok
        },
    );

    support::play_to_the_end(&pipeline)?;
    println!("\nTranscript: {}", words.lock().unwrap().join(" "));
    Ok(())
}
