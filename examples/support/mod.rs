// SPDX-License-Identifier: MPL-2.0
//! What the examples share: playing a pipeline to its end while telling what `sonioxstt`
//! reports on the bus, and reading the process's own figures.

use gst::prelude::*;

/// Plays `pipeline` until EOS or an error, printing `soniox/session` events and warnings as
/// they come; stops it either way.
#[allow(dead_code)] // not every example plays one this way
pub fn play_to_the_end(pipeline: &gst::Pipeline) -> Result<(), Box<dyn std::error::Error>> {
    pipeline.set_state(gst::State::Playing)?;
    let bus = pipeline.bus().ok_or("no bus")?;
    let mut result: Result<(), String> = Ok(());
    for message in bus.iter_timed(gst::ClockTime::NONE) {
        match message.view() {
            gst::MessageView::Eos(_) => break,
            gst::MessageView::Error(e) => {
                result = Err(format!("{} ({})", e.error(), e.debug().unwrap_or_default()));
                break;
            }
            gst::MessageView::Warning(w) => println!("warning: {}", w.error()),
            gst::MessageView::Element(element) => {
                if let Some(s) = element.structure().filter(|s| s.name() == "soniox/session") {
                    let event = s.get::<String>("event").unwrap_or_default();
                    println!("session {}: {event}", s.get::<u32>("session").unwrap_or(0));
                }
            }
            _ => {}
        }
    }
    pipeline.set_state(gst::State::Null)?;
    Ok(result?)
}

/// A number from `/proc/self/status` (Linux): a memory field in KiB (`VmRSS`, `VmHWM`),
/// `Threads`; 0 if absent.
#[allow(dead_code)] // not every example reads it
pub fn proc_status(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix(field)?
                .trim_start_matches(':')
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or(0)
}
