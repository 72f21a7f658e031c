// SPDX-License-Identifier: MPL-2.0
//! GStreamer plugin `soniox`: the `sonioxstt` element streams audio to Soniox real-time
//! speech-to-text and pushes timestamped final words.
//!
//! The service and transcript logic (`soniox`, `transcript`) are free of GStreamer and
//! usable on their own; `sonioxstt` is the thin element on top.

use gst::glib;

pub mod runtime;
pub mod soniox;
mod sonioxstt;
pub mod transcript;

pub use sonioxstt::{Region, SonioxStt};

fn plugin_init(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    sonioxstt::register(plugin)
}

gst::plugin_define!(
    soniox,
    env!("CARGO_PKG_DESCRIPTION"),
    plugin_init,
    concat!(env!("CARGO_PKG_VERSION"), "-", env!("COMMIT_ID")),
    "MPL",
    env!("CARGO_PKG_NAME"),
    env!("CARGO_PKG_NAME"),
    env!("CARGO_PKG_REPOSITORY"),
    env!("BUILD_REL_DATE")
);
