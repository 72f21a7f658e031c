//! `soniox-mock [--port N] [--key KEY] [--script FILE] [--no-auto-finals]`
//!
//! Serves the stand-in Soniox API on 127.0.0.1 until killed; prints its URL first.

use std::process::ExitCode;

use soniox_mock::{MockConfig, MockServer, Script};

const USAGE: &str = "usage: soniox-mock [--port N] [--key KEY] [--script FILE] [--no-auto-finals]

  --port N          listen on 127.0.0.1:N (default 0 = any free port)
  --key KEY         the valid API key (default \"mock-key\")
  --script FILE     the scripted transcript (default: a short built-in one)
  --no-auto-finals  words turn final only on endpoints, finalize and end of audio";

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
    let server = MockServer::start_on(config, port)
        .map_err(|e| Failure::Fatal(format!("cannot listen: {e}")))?;
    println!("{}", server.url());
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
