// SPDX-License-Identifier: MPL-2.0
//! Starting and stopping again and again, with audio flowing. Alone in its binary so that
//! thread and file-descriptor counts are this test's own.

mod common;

use std::time::{Duration, Instant};

use common::*;
use gst::prelude::*;

#[test]
fn cycling_null_playing_with_audio_flowing_stops_fast_and_leaks_nothing() {
    const CYCLES: usize = 15;
    // GLib keeps idle task-pool threads around for reuse, a varying number of them: have it
    // keep none, so that every thread left after a stop is one that did not end.
    glib::ThreadPool::set_max_unused_threads(Some(0));
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
        let names = thread_names();
        let runtime = names
            .iter()
            .filter(|n| n.as_str() == "soniox-runtime")
            .count();
        assert_eq!(
            runtime, 2,
            "the shared runtime keeps its two threads: {names:?}"
        );
        // The shared runtime started in the first cycle; from then on, nothing may stay.
        let (threads_before, fds_before) = *baseline
            .get_or_insert_with(|| (settled(usize::MAX, threads), settled(usize::MAX, fds)));
        let threads_now = settled(threads_before, threads);
        let fds_now = settled(fds_before, fds);
        assert!(
            threads_now <= threads_before,
            "cycle {cycle}: {threads_now} threads, {threads_before} before: {:?}",
            thread_names()
        );
        assert!(
            fds_now <= fds_before,
            "cycle {cycle}: {fds_now} file descriptors, {fds_before} before"
        );
    }
    eprintln!("slowest stop: {slowest:?}; threads and fds: {baseline:?}");
}

/// `count()` once closing things are gone: GLib ends idle pool threads asynchronously, and
/// the stand-in (in this process) drops its socket just after recording the session's end.
/// Neither can be awaited, so this looks again for up to 2 s.
fn settled(target: usize, count: fn() -> usize) -> usize {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let now = count();
        if now <= target || Instant::now() > deadline {
            return now;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn threads() -> usize {
    std::fs::read_dir("/proc/self/task").unwrap().count()
}

fn thread_names() -> Vec<String> {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .map(|t| {
            std::fs::read_to_string(t.unwrap().path().join("comm"))
                .unwrap()
                .trim()
                .to_string()
        })
        .collect()
}

fn fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}
