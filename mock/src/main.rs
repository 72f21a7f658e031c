//! `soniox-mock [--port N] [--key KEY] [--script FILE] [--no-auto-finals] [--tls]
//! [--cert-out FILE] [--reference-wav FILE] [--timecoded]`
//!
//! Serves the stand-in Soniox API on 127.0.0.1 until killed; prints its URL first.

use std::process::ExitCode;
use std::sync::Arc;

use soniox_mock::{wav_data, MockConfig, MockServer, Script};

const USAGE: &str = "usage: soniox-mock [OPTIONS]

  --port N             listen on 127.0.0.1:N (default 0 = any free port)
  --key KEY            the valid API key (default \"mock-key\")
  --script FILE        the scripted transcript (default: a short built-in one)
  --no-auto-finals     words turn final only on endpoints, finalize and end of audio
  --tls                serve wss://localhost:PORT with a new self-signed certificate
  --cert-out FILE      with --tls: write that certificate (PEM) to FILE
  --reference-wav FILE the client's input (a WAV file): each session finds its audio in
                       it and plays the script from there (reconnects, rotation)
  --timecoded          sessions send soniox_mock::timecoded_s16le audio: read their
                       stream position from it";

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(message)) => {
            eprintln!("soniox-mock: {message}\n\n{USAGE}");
            ExitCode::from(2)
        }
        Err(Failure::Fatal(message)) => {
            eprintln!("soniox-mock: {message}");
            ExitCode::FAILURE
        }
    }
}

enum Failure {
    Usage(String),
    Fatal(String),
}

fn run() -> Result<(), Failure> {
    let mut port = 0u16;
    let mut key = "mock-key".to_string();
    let mut script = None;
    let mut auto_finals = true;
    let mut tls = false;
    let mut cert_out = None;
    let mut reference = None;
    let mut timecoded = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| {
            args.next()
                .ok_or_else(|| Failure::Usage(format!("{name} needs a value")))
        };
        match arg.as_str() {
            "--port" => {
                let text = value("--port")?;
                port = text
                    .parse()
                    .map_err(|_| Failure::Usage(format!("bad port {text:?}")))?;
            }
            "--key" => key = value("--key")?,
            "--script" => {
                let path = value("--script")?;
                script = Some(
                    Script::load(&path)
                        .map_err(|e| Failure::Fatal(format!("cannot load script: {e}")))?,
                );
            }
            "--no-auto-finals" => auto_finals = false,
            "--tls" => tls = true,
            "--cert-out" => cert_out = Some(value("--cert-out")?),
            "--reference-wav" => {
                let path = value("--reference-wav")?;
                let wav = std::fs::read(&path)
                    .map_err(|e| Failure::Fatal(format!("cannot read {path}: {e}")))?;
                let data = wav_data(&wav)
                    .ok_or_else(|| Failure::Fatal(format!("{path}: no WAV data chunk")))?;
                reference = Some(Arc::new(data.to_vec()));
            }
            "--timecoded" => timecoded = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            other => return Err(Failure::Usage(format!("unknown argument {other:?}"))),
        }
    }
    let script = script.unwrap_or_else(default_script);
    let mut config = MockConfig::new(&key, script);
    if !auto_finals {
        config.auto_final_lag_ms = None;
    }
    config.reference_audio = reference;
    config.timecoded = timecoded;
    // Nobody reads the records of a standalone server: keep them from growing.
    config.keep_audio = false;
    if cert_out.is_some() && !tls {
        return Err(Failure::Usage("--cert-out needs --tls".to_string()));
    }
    let server = if tls {
        MockServer::start_tls_on(config, port)
    } else {
        MockServer::start_on(config, port)
    }
    .map_err(|e| Failure::Fatal(format!("cannot listen: {e}")))?;
    if let (Some(path), Some(pem)) = (&cert_out, server.certificate_pem()) {
        std::fs::write(path, pem)
            .map_err(|e| Failure::Fatal(format!("cannot write {path}: {e}")))?;
    }
    println!("{}", server.url());
    // The REST API (temporary keys, the async API), on a port of its own.
    println!("{}", server.rest_url());
    loop {
        std::thread::park();
    }
}

fn default_script() -> Script {
    Script::from_utterances(&[
        ("Hello from the Soniox stand-in server.", 500, 2500),
        ("This transcript is scripted, not recognized.", 3500, 6000),
        ("Every session replays it from the start.", 7000, 9500),
    ])
}
