// SPDX-License-Identifier: MPL-2.0
//! The key never reaches the debug log, even at level 9. Alone in its binary: it turns the
//! whole process's logging up and sets `SONIOX_API_KEY`.

mod common;

use std::sync::{Arc, Mutex};

use common::*;
use gst::prelude::*;

const SECRET: &str = "sekrit-7Hq2xV9pL4";
const WRONG_SECRET: &str = "sekrit-wrong-Zc81Ud";
const SOURCE: &str =
    "audiotestsrc num-buffers=15 samplesperbuffer=1600 ! audio/x-raw,rate=16000,channels=1";

/// Every log line that shows a key, as "category:level: text".
#[derive(Clone, Default)]
struct Leaks(Arc<Mutex<(usize, Vec<String>)>>);

impl Leaks {
    fn capture_everything() -> Leaks {
        let leaks = Leaks::default();
        let shared = leaks.0.clone();
        gst::log::add_log_function(
            move |category, level, _file, _function, _line, object, message| {
                let text = message.get().map(|m| m.to_string()).unwrap_or_default();
                let object = object.map(|o| format!("{o:?}")).unwrap_or_default();
                let mut shared = shared.lock().unwrap();
                shared.0 += 1;
                if [SECRET, WRONG_SECRET]
                    .iter()
                    .any(|k| text.contains(k) || object.contains(k))
                {
                    shared
                        .1
                        .push(format!("{}:{level:?}: {text}", category.name()));
                }
            },
        );
        gst::log::remove_default_log_function();
        gst::log::set_active(true);
        gst::log::set_default_threshold(gst::DebugLevel::Memdump);
        leaks
    }

    fn take(&self) -> (usize, Vec<String>) {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

fn assert_no_key_in(run: &Run) {
    for message in &run.messages {
        let text = format!("{message:?}");
        assert!(
            !text.contains(SECRET) && !text.contains(WRONG_SECRET),
            "the key reached the bus: {text}"
        );
    }
}

#[test]
fn the_key_never_reaches_the_debug_log_at_level_9() {
    init();
    let script = Script::from_utterances(&[("Keep it secret.", 100, 900)]);
    let server = MockServer::start(MockConfig::new(SECRET, script.clone()));
    let leaks = Leaks::capture_everything();

    // gst-launch users: the key in SONIOX_API_KEY.
    std::env::set_var("SONIOX_API_KEY", SECRET);
    let (pipeline, stt) = launch(&format!(
        "{SOURCE} ! sonioxstt name=stt pace=0 url={} ! fakesink",
        server.url()
    ));
    let recorder = Recorder::attach(&stt);
    let run1 = run(&pipeline, WAIT);
    assert!(run1.eos, "{:?}", run1.error());
    assert_words_match(&recorder.words(), &script, |ms| ms * MS);
    assert_eq!(
        server.sessions()[0].authorization.as_deref(),
        Some(format!("Bearer {SECRET}").as_str())
    );
    std::env::remove_var("SONIOX_API_KEY");

    // Applications: the key as a property; here one the service rejects.
    let (pipeline, stt) = launch(&format!(
        "{SOURCE} ! sonioxstt name=stt pace=0 url={} ! fakesink",
        server.url()
    ));
    stt.set_property("api-key", WRONG_SECRET);
    let run2 = run(&pipeline, WAIT);
    assert!(run2.error().is_some());

    // Applications that hand each connection a key through request-api-key.
    let (pipeline, stt) = launch(&format!(
        "{SOURCE} ! sonioxstt name=stt pace=0 url={} ! fakesink",
        server.url()
    ));
    stt.connect("request-api-key", false, |_| Some(SECRET.to_value()));
    let run4 = run(&pipeline, WAIT);
    assert!(run4.eos, "{:?}", run4.error());
    assert_no_key_in(&run4);

    let (lines, found) = leaks.take();
    assert!(
        lines > 10_000,
        "the log was really at level 9 ({lines} lines)"
    );
    assert!(found.is_empty(), "the key reached the log: {found:#?}");
    assert_no_key_in(&run1);
    assert_no_key_in(&run2);

    // A key written into a pipeline description is logged by GStreamer's own parser (at
    // INFO and DEBUG, before any element exists): that is why the README tells gst-launch
    // users to use SONIOX_API_KEY. Nothing after the parser shows it.
    let (pipeline, _stt) = launch(&format!(
        "{SOURCE} ! sonioxstt name=stt pace=0 url={} api-key={SECRET} ! fakesink",
        server.url()
    ));
    let run3 = run(&pipeline, WAIT);
    assert!(run3.eos, "{:?}", run3.error());
    gst::log::set_default_threshold(gst::DebugLevel::None);
    let (_, found) = leaks.take();
    let from_parser = |line: &String| {
        line.starts_with("GST_PIPELINE:")
            || line.starts_with(&format!("default:Debug: unescaping {SECRET}"))
    };
    assert!(
        found.iter().all(from_parser),
        "only the parser shows it: {found:#?}"
    );
    assert_no_key_in(&run3);
}

#[test]
fn the_key_cannot_be_read_back() {
    init();
    let stt = gst::ElementFactory::make("sonioxstt")
        .property("api-key", SECRET)
        .build()
        .unwrap();
    let pspec = stt.find_property("api-key").unwrap();
    assert!(!pspec.flags().contains(glib::ParamFlags::READABLE));
    assert!(!format!("{stt:?}").contains(SECRET));
}
