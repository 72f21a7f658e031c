// SPDX-License-Identifier: MPL-2.0
//! `examples/bus_messages.py`, run as the README types it (the system's PyGObject), against
//! the stand-in: the words with their SonioxWordMeta, and a non-zero exit on an error.

mod common;

use std::process::{Command, Output};

use common::*;

fn run_python_example(server: &MockServer, key: &str) -> Output {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/bus_messages.py");
    let registry =
        std::env::temp_dir().join(format!("sonioxstt-python-{}.bin", std::process::id()));
    Command::new("/usr/bin/python3")
        .arg(script)
        .arg(sample_wav())
        .arg(server.url())
        .env("GST_PLUGIN_PATH", plugin_dir())
        .env("GST_REGISTRY", registry)
        .env("SONIOX_API_KEY", key)
        .output()
        .expect("/usr/bin/python3 with PyGObject (python3-gi, gir1.2-gstreamer-1.0)")
}

#[test]
fn the_python_example_prints_every_word_with_its_meta() {
    let server = server(sample_script(), |_| {});
    let output = run_python_example(&server, KEY);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let words: Vec<&str> = stdout.lines().filter(|l| l.starts_with("word:")).collect();
    assert_eq!(words.len(), sample_script().words().count(), "{stdout}");
    for (line, word) in words.iter().zip(sample_script().words()) {
        assert!(
            line.contains(&format!("'{}' (confidence 0.", word.text)),
            "{line}"
        );
        let pts = format!("{:.3} s", word.start_ms as f64 / 1000.0);
        assert!(line.contains(&pts), "{line} should show {pts}");
    }
    assert!(stdout.contains("final:   'Hello,'"), "{stdout}");
    assert!(stdout.contains("session 1: finished"), "{stdout}");
}

#[test]
fn the_python_example_exits_non_zero_on_an_error() {
    let server = server(sample_script(), |_| {});
    let output = run_python_example(&server, "not-the-key");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("error: Soniox rejected the request (401"),
        "{stderr}"
    );
}
