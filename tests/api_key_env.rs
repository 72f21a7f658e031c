// SPDX-License-Identifier: MPL-2.0
//! `SONIOX_API_KEY`: the fallback when `api-key` is unset. One test, alone in its binary,
//! because it changes the process environment.

mod common;

use common::*;

#[test]
fn the_environment_key_is_read_at_connect_time_and_its_absence_is_a_clear_error() {
    let script = Script::from_utterances(&[("From the environment.", 100, 1200)]);
    let server = server(script.clone(), |_| {});
    let description = format!(
        "audiotestsrc num-buffers=20 samplesperbuffer=1600 ! audio/x-raw,rate=16000,channels=1 ! \
         sonioxstt name=stt pace=0 url={} ! fakesink sync=false",
        server.url()
    );

    // No key at all: an error naming the variable, and no connection.
    std::env::remove_var("SONIOX_API_KEY");
    let (without_key, _stt) = launch(&description);
    let (text, _) = run(&without_key, WAIT).error().expect("an element error");
    assert_eq!(
        text,
        "No Soniox API key: set the api-key property or SONIOX_API_KEY"
    );
    assert_eq!(server.connection_count(), 0);

    // The variable alone is enough; it is read when connecting, not when the element is made.
    let (with_env_key, stt) = launch(&description);
    std::env::set_var("SONIOX_API_KEY", KEY);
    let recorder = Recorder::attach(&stt);
    let run = run(&with_env_key, WAIT);
    assert!(run.eos, "error: {:?}", run.error());
    assert_words_match(&recorder.words(), &script, |ms| ms * MS);
    assert_eq!(
        server.sessions()[0].authorization.as_deref(),
        Some(format!("Bearer {KEY}").as_str())
    );
}
