// SPDX-License-Identifier: MPL-2.0
//! `mode=async` (contract §7a): a file through the stand-in's async REST API.

mod common;

use std::sync::{Arc, Mutex};
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

/// The bytes crossing `pad`, as they cross it.
fn record_bytes(pad: &gst::Pad) -> Arc<Mutex<Vec<u8>>> {
    let bytes = Arc::new(Mutex::new(Vec::new()));
    let into = bytes.clone();
    pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
        if let Some(buffer) = info.buffer() {
            into.lock()
                .unwrap()
                .extend_from_slice(&buffer.map_readable().unwrap());
        }
        gst::PadProbeReturn::Ok
    });
    bytes
}

/// The stages of `soniox/job`, each once in a row.
fn stages(run: &Run) -> Vec<String> {
    run.structures("soniox/job")
        .iter()
        .map(|s| s.get::<String>("stage").unwrap())
        .fold(Vec::new(), |mut v, s| {
            if v.last() != Some(&s) {
                v.push(s);
            }
            v
        })
}

#[test]
fn a_60_s_file_is_transcribed_as_a_whole_with_exact_times_and_nothing_left_behind() {
    // The sample's words every 20 s, over 60 s of a 16 kHz tone.
    let script = Script::repeating(&sample_script(), 20_000, 60_000);
    // Long enough that a poll finds the job processing.
    let server = server(script.clone(), |c| {
        c.job_delay = Duration::from_millis(2500)
    });
    let (pipeline, stt) = launch(&format!(
        "audiotestsrc samplesperbuffer=1600 num-buffers=600 ! \
         audio/x-raw,format=S16LE,rate=16000,channels=1 ! sonioxstt name=stt mode=async \
         rest-url={} url=ws://127.0.0.1:9/nowhere api-key={KEY} ! fakesink sync=false",
        server.rest_url()
    ));
    let input = record_bytes(&stt.static_pad("sink").unwrap());
    let recorder = Recorder::attach(&stt);
    let run = run(&pipeline, Duration::from_secs(30));
    assert!(run.eos, "{:?}", run.error());
    assert!(run.elapsed < Duration::from_secs(10), "{:?}", run.elapsed);
    assert_words_match(&recorder.words(), &script, |ms| ms * MS);
    assert_eq!(recorder.words().len(), 3 * sample_script().words().count());

    let files = server.uploaded_files();
    assert_eq!(files.len(), 1);
    let uploaded = soniox_mock::wav_data(&files[0].bytes).unwrap().to_vec();
    let input = input.lock().unwrap().clone();
    assert_eq!(input.len(), 60 * 32_000);
    assert!(uploaded == input, "the audio uploaded is the input's");
    assert!(files[0].deleted, "the file is deleted");
    let jobs = server.transcription_jobs();
    assert_eq!(jobs.len(), 1);
    assert!(jobs[0].deleted, "the transcription is deleted");
    assert_eq!(jobs[0].request["model"], "stt-async-v5");
    assert_eq!(server.connection_count(), 0, "no WebSocket connection");

    assert_eq!(
        stages(&run),
        ["uploading", "queued", "processing", "completed"]
    );
    let last = run.structures("soniox/job").last().unwrap().clone();
    assert_eq!(
        last.get::<u64>("uploaded-bytes").unwrap(),
        files[0].bytes.len() as u64
    );
    assert_eq!(
        last.get::<u64>("total-bytes").unwrap(),
        files[0].bytes.len() as u64
    );
    assert_eq!(last.get::<u64>("audio-duration").unwrap(), 60_000 * MS);
    assert!(last.get::<String>("transcription-id").is_ok());
    assert!(last.get::<String>("file-id").is_ok());
    let progress: Vec<gst::ProgressType> = run
        .messages
        .iter()
        .filter_map(|m| match m.view() {
            gst::MessageView::Progress(p) => Some(p.get().0),
            _ => None,
        })
        .collect();
    assert_eq!(progress.first(), Some(&gst::ProgressType::Start));
    assert_eq!(progress.last(), Some(&gst::ProgressType::Complete));
    assert!(progress.len() >= 4, "progress messages: {progress:?}");
}

/// What a user sees of a run on `src`: the words (or cues) and the utterance ends.
fn observed(seen: &[Seen]) -> Vec<String> {
    seen.iter()
        .filter_map(|s| match s {
            Seen::Word {
                text,
                pts,
                duration,
                ..
            } => Some(format!("{text:?} {pts:?} {duration:?}")),
            Seen::Custom(name) => Some(name.clone()),
            Seen::SpeakerChange(speaker) => Some(format!("speaker {speaker}")),
            _ => None,
        })
        .collect()
}

#[test]
fn async_cues_and_utterance_ends_are_the_real_time_ones() {
    let script = sample_script();
    let server = server(script.clone(), |c| c.job_delay = Duration::from_millis(100));
    let extra = "granularity=sentence enable-speaker-diarization=true";
    let (run, recorder) = run_async(&server, extra);
    assert!(run.eos, "{:?}", run.error());
    let (pipeline, stt) = sample_pipeline(&server, extra);
    let realtime = Recorder::attach(&stt);
    let realtime_run = common::run(&pipeline, WAIT);
    assert!(realtime_run.eos, "{:?}", realtime_run.error());

    let cues = observed(&recorder.seen());
    assert_eq!(cues, observed(&realtime.seen()));
    let ends = cues
        .iter()
        .filter(|c| *c == "rstranscribe/final-transcript")
        .count();
    assert_eq!(ends, script.utterances.len(), "{cues:#?}");
    assert_eq!(
        run.structures("soniox/endpoint").len(),
        realtime_run.structures("soniox/endpoint").len()
    );
}

/// μ-law and A-law: Soniox gets the 16-bit values the codes stand for, as GStreamer's own
/// decoders give them.
#[test]
fn g711_audio_is_uploaded_as_the_samples_it_stands_for() {
    for (encoder, decoder) in [("mulawenc", "mulawdec"), ("alawenc", "alawdec")] {
        let script = sample_script();
        let server = server(script.clone(), |c| c.job_delay = Duration::from_millis(100));
        let (pipeline, stt) = launch(&format!(
            "audiotestsrc samplesperbuffer=800 num-buffers=200 volume=0.5 ! \
             audio/x-raw,format=S16LE,rate=8000,channels=1 ! {encoder} ! tee name=t \
             t. ! queue ! sonioxstt name=stt mode=async rest-url={} api-key={KEY} ! \
             fakesink sync=false t. ! queue ! {decoder} name=dec ! fakesink sync=false",
            server.rest_url()
        ));
        let decoded = record_bytes(&pipeline.by_name("dec").unwrap().static_pad("src").unwrap());
        let recorder = Recorder::attach(&stt);
        let run = run(&pipeline, WAIT);
        assert!(run.eos, "{encoder}: {:?}", run.error());
        assert_words_match(&recorder.words(), &script, |ms| ms * MS);
        let files = server.uploaded_files();
        let reader = hound::WavReader::new(std::io::Cursor::new(files[0].bytes.to_vec())).unwrap();
        assert_eq!(reader.spec().sample_rate, 8000);
        assert_eq!(reader.spec().bits_per_sample, 16);
        let uploaded = soniox_mock::wav_data(&files[0].bytes).unwrap().to_vec();
        let decoded = decoded.lock().unwrap().clone();
        assert_eq!(decoded.len(), 20 * 16_000);
        assert!(
            uploaded == decoded,
            "{encoder}: the uploaded samples are the decoded input"
        );
    }
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
    let stages = stages(&run);
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
    // PAUSED→READY abandons it, and says so.
    pipeline.set_state(gst::State::Ready).unwrap();
    let mut cancelled = (false, false);
    while let Some(message) = bus.timed_pop(gst::ClockTime::from_seconds(5)) {
        match message.view() {
            gst::MessageView::Progress(p) if p.get().0 == gst::ProgressType::Canceled => {
                cancelled.1 = true;
            }
            gst::MessageView::Element(e) => {
                let s = e.structure().unwrap();
                if s.name() == "soniox/job" {
                    cancelled.0 = s.get::<String>("stage").unwrap() == "cancelled";
                }
            }
            _ => {}
        }
        if cancelled == (true, true) {
            break;
        }
    }
    assert_eq!(
        cancelled,
        (true, true),
        "soniox/job cancelled, progress canceled"
    );
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

/// The README's `transcribe --async`: the job's stages, then every word with its times.
#[test]
fn the_transcribe_example_with_async_prints_the_stages_and_the_words() {
    let binary = example_binary("transcribe");
    let (success, output) = run_example(&binary, &["--async"], WAIT);
    assert!(success, "the example succeeds:\n{output}");
    let at = |needle: &str| {
        output
            .find(needle)
            .unwrap_or_else(|| panic!("{needle:?} in:\n{output}"))
    };
    assert!(at("(job: uploading, 0 of 640044 bytes)") < at("(job: queued)"));
    assert!(at("(job: completed)") < at("[0:00:00.500 → 0:00:00.902] Hello,"));
    assert!(output.contains(&format!("Transcript: {}", sample_script().final_text())));
}
