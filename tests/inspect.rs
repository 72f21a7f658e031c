// SPDX-License-Identifier: MPL-2.0
//! What `gst-inspect-1.0 sonioxstt` shows a user, from the built plugin library.

mod common;
use std::process::Command;

/// Properties of the contract (§3) that exist now; the (later) ones come with later work.
const PROPERTIES: &[&str] = &[
    "api-key",
    "region",
    "url",
    "model",
    "language-code",
    "language-hints",
    "language-hints-strict",
    "context",
    "enable-speaker-diarization",
    "enable-language-identification",
    "enable-endpoint-detection",
    "max-endpoint-delay",
    "endpoint-sensitivity",
    "client-reference-id",
    "latency",
    "lateness",
    "max-observed-delay",
    "keepalive-interval",
    "drain-timeout",
    "pace",
    "post-messages",
    "max-reconnects",
    "max-session-duration",
    "granularity",
    "max-cue-chars",
    "max-cue-duration",
    "translation",
    "translate-latency",
    "mode",
    "rest-url",
    "async-timeout",
];

fn inspect() -> String {
    let registry =
        std::env::temp_dir().join(format!("sonioxstt-inspect-{}.bin", std::process::id()));
    let output = Command::new("gst-inspect-1.0")
        .arg("sonioxstt")
        .env("GST_PLUGIN_PATH", common::plugin_dir())
        .env("GST_REGISTRY", &registry)
        .output()
        .expect("gst-inspect-1.0 runs (package gstreamer1.0-tools)");
    let _ = std::fs::remove_file(registry);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// The lines of one property's block in gst-inspect's output.
fn property_block<'a>(text: &'a str, name: &str) -> Vec<&'a str> {
    let mut lines = text.lines().skip_while(|l| {
        !l.starts_with(&format!("  {name} ")) && !l.starts_with(&format!("  {name}:"))
    });
    let first = lines
        .next()
        .unwrap_or_else(|| panic!("property {name} is listed"));
    std::iter::once(first)
        .chain(lines.take_while(|l| l.starts_with("                        ")))
        .collect()
}

#[test]
fn gst_inspect_shows_the_contract() {
    let text = inspect();
    assert!(text.contains("Klass                    Audio/Text/Filter"));
    assert!(text.contains("Rank                     none (0)"));
    assert!(text.contains("Name                     soniox"));
    assert!(text.contains("License                  MPL"));

    // Sink caps: every raw format, μ-law and A-law, mono, 8–48 kHz; S16LE first.
    let sink = &text
        [text.find("SINK template: 'sink'").unwrap()..text.find("SRC template: 'src'").unwrap()];
    assert!(sink.contains(
        "format: { (string)S16LE, (string)S16BE, (string)S32LE, (string)S32BE, (string)F32LE, \
         (string)F32BE, (string)F64LE, (string)F64BE, (string)S8, (string)U8 }"
    ));
    for line in [
        "audio/x-raw",
        "audio/x-mulaw",
        "audio/x-alaw",
        "layout: interleaved",
        "rate: [ 8000, 48000 ]",
        "channels: 1",
    ] {
        assert!(sink.contains(line), "sink caps show {line}");
    }
    let src = &text[text.find("SRC template: 'src'").unwrap()..];
    assert!(src.contains("text/x-raw") && src.contains("format: utf8"));

    // Every property with a blurb; api-key write-only.
    for name in PROPERTIES {
        let block = property_block(&text, name);
        let blurb = block[0].split_once(':').unwrap().1.trim();
        assert!(blurb.len() > 10, "{name} has a blurb: {blurb:?}");
    }
    let flags = |name: &str| {
        property_block(&text, name)
            .into_iter()
            .find(|l| l.trim_start().starts_with("flags:"))
            .unwrap()
            .trim()
            .to_string()
    };
    assert!(
        flags("api-key").starts_with("flags: writable,"),
        "{}",
        flags("api-key")
    );
    assert!(!flags("api-key").contains("readable"));
    assert!(property_block(&text, "api-key")
        .iter()
        .any(|l| l.contains("Write only")));
    assert_eq!(flags("max-observed-delay"), "flags: readable");

    let signals = &text[text.find("Element Signals:").expect("a signals section")..];
    assert!(
        signals.contains("\"request-api-key\"") && signals.contains("guint"),
        "the request-api-key signal, with the connection's number"
    );
    let actions = &text[text.find("Element Actions:").expect("an actions section")..];
    assert!(
        actions.contains("\"finalize\""),
        "the finalize action signal"
    );
}
