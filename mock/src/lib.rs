//! A stand-in for Soniox's real-time speech-to-text WebSocket API, for tests and demos.
//!
//! The server does not recognize speech: it plays a [`Script`] (words with times) against
//! each session's audio timeline (derived from the bytes received and the declared format)
//! and answers like Soniox does: result messages with final and non-final tokens, `<end>`
//! on endpoints, `<fin>` after `finalize`, `finished` after the empty frame, and Soniox's
//! error JSON for everything Soniox would reject. [`Fault`]s inject failures per connection;
//! every connection is recorded in a [`SessionRecord`].
//!
//! Reconnects and session rotation: with [`MockConfig::reference_audio`] or
//! [`MockConfig::timecoded`] ([`timecoded_s16le`] audio) each session finds where its audio
//! sits in the client's stream ([`StreamPosition`]) and plays the script from there, with token
//! times counted from the session's first audio byte, as Soniox does. Without either, every
//! session plays the script from 0 ms.
//!
//! [`MockServer::start_tls`] serves `wss://localhost:PORT/...` with a fresh self-signed
//! certificate (untrusted unless a client adds [`MockServer::certificate_der`]).
//! [`MockConfig::keep_audio`] `= false` keeps the records small for hours-long runs;
//! [`Script::repeating`] builds long scripts.
//!
//! ```no_run
//! use soniox_mock::{MockConfig, MockServer, Script};
//!
//! let script = Script::from_utterances(&[("Hello world.", 200, 1200)]);
//! let server = MockServer::start(MockConfig::new("test-key", script));
//! println!("{}", server.url()); // ws://127.0.0.1:PORT/transcribe-websocket
//! // ... run the client against it ...
//! server.wait_until(std::time::Duration::from_secs(5), |s| s.iter().any(|r| r.end.is_some()));
//! ```

mod audio;
mod config;
mod engine;
mod faults;
mod handshake;
mod jobs;
mod keys;
mod languages;
mod position;
mod protocol;
mod record;
mod rest;
mod script;
mod server;
mod session;
mod start_request;
mod tls;
mod tokenize;
mod translate;

#[cfg(test)]
mod tests;

pub use config::{MockConfig, SentHook};
pub use faults::Fault;
pub use jobs::{silent_wav, JobFault, TranscriptionJob, UploadedFile};
pub use keys::TemporaryKeyOptions;
pub use position::{
    timecode_offset_ms, timecoded_s16le, wav_data, StreamPosition, AMBIGUITY_LIMIT_MS,
    REFERENCE_PROBE_BYTES,
};
pub use record::{
    ClientEvent, ClientEventKind, RestRequest, SessionEnd, SessionRecord, KEPT_ENDED, KEPT_FIRST,
    KEPT_LATEST,
};
pub use script::{Script, ScriptWord, Utterance};
pub use server::MockServer;
pub use translate::{translated, TranslationMode};
