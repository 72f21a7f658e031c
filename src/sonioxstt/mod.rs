// SPDX-License-Identifier: MPL-2.0
//! `sonioxstt`: live audio in, timestamped final words out, through Soniox real-time
//! speech-to-text. See `sonioxstt-spec.md` for the contract.

use gst::glib;
use gst::prelude::*;

mod format;
mod imp;
mod input;
mod keys;
mod messages;
mod meta;
mod output;
mod plan;
mod report;
mod settings;
mod translate_pad;

pub use translate_pad::TranslateSrcPad;

glib::wrapper! {
    pub struct SonioxStt(ObjectSubclass<imp::SonioxStt>)
        @extends gst::Element, gst::Object, @implements gst::ChildProxy;
}

/// Soniox data-residency regions; each has its own endpoint and keys.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstSonioxRegion")]
pub enum Region {
    #[default]
    #[enum_value(name = "United States (stt-rt.soniox.com)", nick = "us")]
    Us = 0,
    #[enum_value(name = "European Union (stt-rt.eu.soniox.com)", nick = "eu")]
    Eu = 1,
    #[enum_value(name = "Japan (stt-rt.jp.soniox.com)", nick = "jp")]
    Jp = 2,
}

/// What one buffer on a text pad holds (contract §3, §4b).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstSonioxGranularity")]
pub enum Granularity {
    #[default]
    #[enum_value(name = "One word per buffer", nick = "word")]
    Word = 0,
    #[enum_value(
        name = "One caption cue (a sentence, at most two lines) per buffer",
        nick = "sentence"
    )]
    Sentence = 1,
}

/// How the translation pads' languages are used (contract §3, §4a).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstSonioxTranslation")]
pub enum Translation {
    #[default]
    #[enum_value(
        name = "One-way: each translation pad's language is a target (one Soniox session per target)",
        nick = "one-way"
    )]
    OneWay = 0,
    #[enum_value(
        name = "Two-way: exactly two translation pads, their languages translated into each other",
        nick = "two-way"
    )]
    TwoWay = 1,
}

/// How the element uses Soniox (contract §3, §7a).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstSonioxMode")]
pub enum Mode {
    #[default]
    #[enum_value(
        name = "Real time: streamed over Soniox's WebSocket API",
        nick = "realtime"
    )]
    Realtime = 0,
    #[enum_value(
        name = "Async: a whole file (non-live input) through Soniox's async REST API, after EOS",
        nick = "async"
    )]
    Async = 1,
}

impl Region {
    pub fn nick(self) -> &'static str {
        match self {
            Region::Us => "us",
            Region::Eu => "eu",
            Region::Jp => "jp",
        }
    }
}

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    meta::register();
    TranslateSrcPad::static_type().mark_as_plugin_api(gst::PluginAPIFlags::empty());
    gst::Element::register(
        Some(plugin),
        "sonioxstt",
        gst::Rank::NONE,
        SonioxStt::static_type(),
    )
}
