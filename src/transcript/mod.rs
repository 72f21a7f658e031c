// SPDX-License-Identifier: MPL-2.0
//! From tokens to timed words, free of GStreamer.

pub mod cues;
pub mod timeline;
pub mod token;
pub mod translation;
pub mod words;
