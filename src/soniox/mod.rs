// SPDX-License-Identifier: MPL-2.0
//! The Soniox service, free of GStreamer: wire protocol and sessions.

pub mod protocol;
pub mod session;
