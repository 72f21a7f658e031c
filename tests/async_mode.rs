// SPDX-License-Identifier: MPL-2.0
//! `mode=async` (contract §7a): a file through the stand-in's async REST API.

mod common;

use std::time::Duration;

use common::*;
use gst::prelude::*;

/// The sample through `sonioxstt mode=async`, its WebSocket URL pointing nowhere.
fn run_async(server: &MockServer, extra: &str) -> (Run, Recorder) {
    let (pipeline, stt) = launch(&format!(
        "filesrc location={} ! wavparse ! sonioxstt name=stt mode=async rest-url={} \
         url=ws://127.0.0.1:9/nowhere api-key={KEY} {extra} ! fakesink sync=false",
        sample_wav().display(),
        server.rest_url()
    ));
    let recorder = Recorder::attach(&stt);
    let run = run(&pipeline, Duration::from_secs(30));
    (run, recorder)
}

#[test]
fn a_file_is_transcribed_as_a_whole_with_exact_times_and_nothing_left_behind() {
    let script = sample_script();
    // Long enough that a poll finds the job processing.
    let server = server(script.clone(), |c| {
        c.job_delay = Duration::from_millis(2500)
    });
    let (run, recorder) = run_async(&server, "");
    assert!(run.eos, "{:?}", run.error());
    assert!(run.elapsed < Duration::from_secs(10), "{:?}", run.elapsed);
    assert_words_match(&recorder.words(), &script, |ms| ms * MS);

    let files = server.uploaded_files();
    assert_eq!(files.len(), 1);
    let uploaded = soniox_mock::wav_data(&files[0].bytes).unwrap().to_vec();
    assert_eq!(
        uploaded,
        wav_data(&sample_wav()),
        "the audio uploaded is the input's"
    );
    assert!(files[0].deleted, "the file is deleted");
    let jobs = server.transcription_jobs();
    assert_eq!(jobs.len(), 1);
    assert!(jobs[0].deleted, "the transcription is deleted");
    assert_eq!(jobs[0].request["model"], "stt-async-v5");
    assert_eq!(server.connection_count(), 0, "no WebSocket connection");

    let stages: Vec<String> = run
        .structures("soniox/job")
        .iter()
        .map(|s| s.get::<String>("stage").unwrap())
        .fold(Vec::new(), |mut v, s| {
            if v.last() != Some(&s) {
                v.push(s);
            }
            v
        });
    assert_eq!(stages, ["uploading", "queued", "processing", "completed"]);
    let last = run.structures("soniox/job").last().unwrap().clone();
    assert_eq!(
        last.get::<u64>("uploaded-bytes").unwrap(),
        files[0].bytes.len() as u64
    );
    assert!(last.get::<String>("transcription-id").is_ok());
    let progress = run
        .messages
        .iter()
        .filter(|m| m.type_() == gst::MessageType::Progress)
        .count();
    assert!(progress >= 4, "progress messages: {progress}");
}

#[test]
fn live_input_in_async_mode_is_an_error_that_says_why() {
    let server = server(sample_script(), |_| {});
    let (pipeline, _stt) = launch(&format!(
        "audiotestsrc is-live=true ! audio/x-raw,format=S16LE,rate=16000,channels=1 ! \
         sonioxstt name=stt mode=async rest-url={} api-key={KEY} ! fakesink",
        server.rest_url()
    ));
    let run = run(&pipeline, WAIT);
    let (error, _) = run.error().expect("an error");
    assert!(
        error.contains("mode=async") && error.contains("live"),
        "{error}"
    );
    assert!(server.uploaded_files().is_empty());
}

#[test]
fn a_failed_job_is_an_error_with_its_message_and_nothing_is_left_behind() {
    let server = server(sample_script(), |c| {
        c.job_faults = vec![JobFault::JobError {
            message: "Audio is too noisy.".into(),
        }];
    });
    let (run, _) = run_async(&server, "");
    let (error, _) = run.error().expect("an error");
    assert!(error.contains("Audio is too noisy."), "{error}");
    let stages: Vec<String> = run
        .structures("soniox/job")
        .iter()
        .map(|s| s.get::<String>("stage").unwrap())
        .collect();
    assert_eq!(
        stages.last().map(String::as_str),
        Some("error"),
        "{stages:?}"
    );
    assert!(server.uploaded_files().iter().all(|f| f.deleted));
    assert!(server.transcription_jobs().iter().all(|j| j.deleted));
}

#[test]
fn an_upload_refused_once_with_503_is_retried_and_a_401_is_not() {
    let server = server(sample_script(), |c| {
        c.job_faults = vec![JobFault::upload_refused_once(503)];
    });
    let (run, recorder) = run_async(&server, "");
    assert!(run.eos, "{:?}", run.error());
    assert_eq!(recorder.words().len(), sample_script().words().count());

    let server = server_with_key("another-key");
    let (run, _) = run_async(&server, "");
    let (error, _) = run.error().expect("an error");
    assert!(error.contains("401"), "{error}");
    assert_eq!(server.rest_requests().len(), 1, "no retry");
}

fn server_with_key(key: &str) -> MockServer {
    MockServer::start(MockConfig::new(key, sample_script()))
}

/// A pipeline stopped while Soniox transcribes: the job is abandoned, and the file and the
/// transcription are deleted all the same.
#[test]
fn a_job_abandoned_by_stopping_the_pipeline_leaves_nothing_behind() {
    let server = server(sample_script(), |c| c.job_delay = Duration::from_secs(60));
    let (pipeline, _stt) = launch(&format!(
        "filesrc location={} ! wavparse ! sonioxstt name=stt mode=async rest-url={} \
         api-key={KEY} ! fakesink sync=false",
        sample_wav().display(),
        server.rest_url()
    ));
    let bus = pipeline.bus().unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    // Wait for the job to be queued.
    let queued = loop {
        let Some(message) = bus.timed_pop(gst::ClockTime::from_seconds(20)) else {
            break false;
        };
        let stage = message
            .structure()
            .filter(|s| s.name() == "soniox/job")
            .and_then(|s| s.get::<String>("stage").ok());
        if stage.as_deref() == Some("queued") {
            break true;
        }
    };
    assert!(queued, "the job was queued");
    pipeline.set_state(gst::State::Null).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !(server.uploaded_files().iter().all(|f| f.deleted)
        && server.transcription_jobs().iter().all(|j| j.deleted))
    {
        assert!(std::time::Instant::now() < deadline, "not deleted");
        // Waiting for the stand-in to be told: its records change only when it is.
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(server.transcription_jobs().len(), 1);
}
