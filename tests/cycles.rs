// SPDX-License-Identifier: MPL-2.0
//! Starting and stopping again and again, with audio flowing. Alone in its binary so that
//! thread and file-descriptor counts are this test's own.

mod common;

use std::time::{Duration, Instant};

use common::*;
use gst::prelude::*;

fn threads() -> usize {
    std::fs::read_dir("/proc/self/task").unwrap().count()
}

fn fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

#[test]
fn cycling_null_playing_with_audio_flowing_stops_fast_and_leaks_nothing() {
    const CYCLES: usize = 15;
    let script = Script::from_utterances(&[("Round and round.", 100, 900)]);
    let server = server(script, |_| {});
    let (pipeline, _stt) = launch(&format!(
        "audiotestsrc is-live=true samplesperbuffer=1600 ! audio/x-raw,format=S16LE,rate=16000,channels=1 ! \
         sonioxstt name=stt url={} api-key={KEY} ! fakesink",
        server.url()
    ));
    let mut baseline = None;
    let mut slowest = Duration::ZERO;
    for cycle in 0..CYCLES {
        pipeline.set_state(gst::State::Playing).unwrap();
        // Audio reaches the server in this cycle's session.
        assert!(
            server.wait_until(WAIT, |s| s.len() == cycle + 1
                && s[cycle].audio.len() >= 6400),
            "cycle {cycle}: audio flows"
        );
        let start = Instant::now();
        pipeline.set_state(gst::State::Null).unwrap();
        let stop = start.elapsed();
        slowest = slowest.max(stop);
        assert!(
            stop < Duration::from_secs(1),
            "cycle {cycle}: stopping took {stop:?}"
        );
        // The server sees each connection go away.
        assert!(server.wait_until(WAIT, |s| s[cycle].end.is_some()));
        if cycle == 2 {
            baseline = Some((threads(), fds()));
        }
    }
    let (threads_before, fds_before) = baseline.unwrap();
    assert!(
        threads() <= threads_before,
        "threads {} → {}",
        threads_before,
        threads()
    );
    assert!(
        fds() <= fds_before,
        "file descriptors {} → {}",
        fds_before,
        fds()
    );
    eprintln!("slowest stop: {slowest:?}");
}
