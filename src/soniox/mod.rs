// SPDX-License-Identifier: MPL-2.0
//! The Soniox service, free of GStreamer: wire protocol, sessions and what feeds them.

pub mod audio_queue;
pub mod batch;
pub mod check;
mod connection;
pub mod credentials;
pub mod event;
pub mod languages;
mod liveness;
pub mod promise;
pub mod protocol;
pub mod replay;
pub mod session;
mod untranslated;
mod writer;
