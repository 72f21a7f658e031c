//! A stand-in for Soniox's real-time speech-to-text WebSocket API, for tests and demos.
//!
//! The server does not recognize speech: it plays a [`Script`] (words with times) against
//! each session's audio timeline (derived from the bytes received and the declared format)
//! and answers like Soniox does: result messages with final and non-final tokens, `<end>`
//! on endpoints, `<fin>` after `finalize`, `finished` after the empty frame, and Soniox's
//! error JSON for everything Soniox would reject. [`Fault`]s inject failures per connection;
//! every connection is recorded in a [`SessionRecord`].
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
mod languages;
mod protocol;
mod record;
mod script;
mod server;
mod session;
mod start_request;
mod tokenize;

#[cfg(test)]
mod tests;

pub use config::MockConfig;
pub use faults::Fault;
pub use record::{ClientEvent, ClientEventKind, SessionEnd, SessionRecord};
pub use script::{Script, ScriptWord, Utterance};
pub use server::MockServer;
