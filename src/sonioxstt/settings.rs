// SPDX-License-Identifier: MPL-2.0
//! What the properties set (contract §3), declared once, and how they become a start request.

use std::time::Duration;

use gst::prelude::*;

use super::format::AudioFormat;
use super::{Granularity, Mode, Region, Translation};
use crate::soniox::languages::is_iso_639_1;
use crate::soniox::protocol::{self, context_value, StartRequest};
use crate::soniox::session::{region_url, ApiKey};
use crate::transcript::cues::Limits;

pub const DEFAULT_MODEL: &str = "stt-rt-v5";
/// The model of `mode=async` when `model` is left at its (real-time) default.
pub const DEFAULT_ASYNC_MODEL: &str = "stt-async-v5";
const DEFAULT_ASYNC_TIMEOUT_MS: u32 = 1_800_000;
pub const DEFAULT_LATENCY_MS: u32 = 3000;
pub const DEFAULT_TRANSLATE_LATENCY_MS: u32 = 1000;
const DEFAULT_KEEPALIVE_MS: u32 = 5000;
const DEFAULT_DRAIN_TIMEOUT_MS: u32 = 10_000;
const DEFAULT_PACE: f64 = 1.0;
const DEFAULT_MAX_RECONNECTS: u32 = 5;
/// 290 minutes: rotate before Soniox's 300-minute session limit.
const DEFAULT_MAX_SESSION_DURATION_MS: u32 = 17_400_000;
/// Audio kept for a replay after a reconnect, at most.
pub const REPLAY_LIMIT: Duration = Duration::from_secs(60);
const MAX_CLIENT_REFERENCE_ID: usize = 256;
/// Soniox's limit on the context, in characters of what is sent.
const MAX_CONTEXT: usize = 10_000;
/// How far ahead of real time non-live audio may go at the start of a session.
pub const PACE_BURST: Duration = Duration::from_secs(3);
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Live audio held while the socket cannot take it; beyond this the oldest is dropped.
pub const LIVE_QUEUE: Duration = Duration::from_secs(10);
/// Non-live audio queued ahead of the socket before the streaming thread waits; a waiting
/// streaming thread is woken once half of it has gone out. Two seconds: a file read faster
/// than the socket takes it costs a wakeup of each side per second of audio, not per 250 ms
/// (scale at pace=0: the element's own CPU 0.86 → 0.65 s per audio hour against 500 ms),
/// for 64 KiB of 16 kHz S16 audio.
pub const NON_LIVE_QUEUE: Duration = Duration::from_secs(2);
/// Live audio is taken from the queue on a grid of this period, shared by all streams, and
/// what is queued at a grid point goes out as one frame (two 20 ms RTP packets: one frame of
/// 40 ms). Soniox's own examples send 120 ms frames; this adds at most 40 ms (20 ms on
/// average) before the audio leaves.
pub const SEND_GRID: Duration = Duration::from_millis(40);
/// Audio queued back to back is sent in frames of up to this much audio.
pub const MERGED_FRAME: Duration = Duration::from_millis(120);
pub const API_KEY_ENV: &str = "SONIOX_API_KEY";

/// The properties' values. `Debug` is safe: the key prints redacted.
#[derive(Debug, Clone)]
pub struct Settings {
    pub api_key: Option<ApiKey>,
    pub region: Region,
    pub url: Option<String>,
    pub model: String,
    pub language_code: Option<String>,
    pub language_hints: Vec<String>,
    pub language_hints_strict: bool,
    pub context: Option<String>,
    pub enable_speaker_diarization: bool,
    pub enable_language_identification: bool,
    pub enable_endpoint_detection: bool,
    pub max_endpoint_delay_ms: u32,
    pub endpoint_sensitivity: f64,
    pub client_reference_id: Option<String>,
    pub latency_ms: u32,
    pub lateness_ms: u32,
    pub keepalive_interval_ms: u32,
    pub drain_timeout_ms: u32,
    pub pace: f64,
    pub post_messages: bool,
    pub max_reconnects: u32,
    pub max_session_duration_ms: u32,
    pub granularity: Granularity,
    pub max_cue_chars: u32,
    pub max_cue_duration_ms: u32,
    pub translation: Translation,
    pub translate_latency_ms: u32,
    pub mode: Mode,
    pub rest_url: Option<String>,
    pub async_timeout_ms: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            api_key: None,
            region: Region::Us,
            url: None,
            model: DEFAULT_MODEL.to_string(),
            language_code: None,
            language_hints: Vec::new(),
            language_hints_strict: false,
            context: None,
            enable_speaker_diarization: false,
            enable_language_identification: false,
            enable_endpoint_detection: true,
            max_endpoint_delay_ms: 0,
            endpoint_sensitivity: 0.0,
            client_reference_id: None,
            latency_ms: DEFAULT_LATENCY_MS,
            lateness_ms: 0,
            keepalive_interval_ms: DEFAULT_KEEPALIVE_MS,
            drain_timeout_ms: DEFAULT_DRAIN_TIMEOUT_MS,
            pace: DEFAULT_PACE,
            post_messages: true,
            max_reconnects: DEFAULT_MAX_RECONNECTS,
            max_session_duration_ms: DEFAULT_MAX_SESSION_DURATION_MS,
            granularity: Granularity::Word,
            max_cue_chars: 84,
            max_cue_duration_ms: 7000,
            translation: Translation::OneWay,
            translate_latency_ms: DEFAULT_TRANSLATE_LATENCY_MS,
            mode: Mode::Realtime,
            rest_url: None,
            async_timeout_ms: DEFAULT_ASYNC_TIMEOUT_MS,
        }
    }
}

impl Settings {
    /// The endpoint: `url` when set, else the region's.
    pub fn endpoint(&self) -> String {
        self.url
            .clone()
            .unwrap_or_else(|| region_url(self.region.nick()))
    }

    /// The REST endpoint of `mode=async`: `rest-url` when set, else the region's.
    pub fn rest_endpoint(&self) -> String {
        self.rest_url
            .clone()
            .unwrap_or_else(|| crate::soniox::batch::rest::region_rest_url(self.region.nick()))
    }

    /// The async transcription request (without `file_id`), from the same settings as a
    /// real-time start request.
    pub fn transcription_request(
        &self,
        translation: Option<protocol::Translation>,
    ) -> Result<serde_json::Value, String> {
        let model = match self.model.as_str() {
            DEFAULT_MODEL => DEFAULT_ASYNC_MODEL,
            other => other,
        };
        let mut request = serde_json::json!({
            "model": model,
            "enable_speaker_diarization": self.enable_speaker_diarization,
            "enable_language_identification": self.enable_language_identification,
        });
        let hints = self.hints();
        if !hints.is_empty() {
            request["language_hints"] = serde_json::json!(hints);
        }
        if let Some(context) = self.checked_context()? {
            request["context"] = context;
        }
        if let Some(translation) = translation {
            request["translation"] = serde_json::to_value(translation).expect("serializes");
        }
        if let Some(id) = &self.client_reference_id {
            request["client_reference_id"] = serde_json::json!(id);
        }
        Ok(request)
    }

    pub fn async_timeout(&self) -> Duration {
        Duration::from_millis(self.async_timeout_ms.into())
    }

    /// The key: the property, else `SONIOX_API_KEY` (read now, at connect time).
    pub fn resolve_key(&self) -> Option<ApiKey> {
        self.api_key
            .clone()
            .or_else(|| std::env::var(API_KEY_ENV).ok().and_then(ApiKey::new))
    }

    /// Language hints as sent: `language-code` reduced to its language first, then
    /// `language-hints`, lower-cased, without duplicates, only ISO 639-1 codes.
    pub fn hints(&self) -> Vec<String> {
        self.all_hints()
            .into_iter()
            .filter(|h| is_iso_639_1(h))
            .collect()
    }

    /// The hints that are not ISO 639-1 codes (never sent).
    pub fn bad_hints(&self) -> Vec<String> {
        self.all_hints()
            .into_iter()
            .filter(|h| !is_iso_639_1(h))
            .collect()
    }

    fn all_hints(&self) -> Vec<String> {
        let mut hints: Vec<String> = Vec::new();
        let code = self.language_code.as_deref().map(primary_language);
        for hint in code.into_iter().chain(
            self.language_hints
                .iter()
                .map(|h| h.trim().to_ascii_lowercase()),
        ) {
            if !hint.is_empty() && !hints.contains(&hint) {
                hints.push(hint);
            }
        }
        hints
    }

    /// The language known before any audio (for the tag event).
    pub fn known_language(&self) -> Option<String> {
        self.hints().into_iter().next()
    }

    /// The context as sent, after the checks a session and a job both need (the client
    /// reference id's and the context's lengths).
    fn checked_context(&self) -> Result<Option<serde_json::Value>, String> {
        if let Some(id) = &self.client_reference_id {
            if id.chars().count() > MAX_CLIENT_REFERENCE_ID {
                return Err(format!(
                    "client-reference-id is longer than {MAX_CLIENT_REFERENCE_ID} characters"
                ));
            }
        }
        let context = self.context.as_deref().map(context_value);
        if let Some(context) = &context {
            let length = context.to_string().chars().count();
            if length > MAX_CONTEXT {
                return Err(format!(
                    "context is {length} characters long as sent; Soniox takes at most {MAX_CONTEXT}"
                ));
            }
        }
        Ok(context)
    }

    /// The start request of a session (with its `translation`, if it translates).
    pub fn start_request(
        &self,
        format: &AudioFormat,
        translation: Option<protocol::Translation>,
    ) -> Result<StartRequest, String> {
        let context = self.checked_context()?;
        Ok(StartRequest {
            model: self.model.clone(),
            audio_format: format.soniox.to_string(),
            sample_rate: Some(format.rate),
            num_channels: Some(format.channels),
            language_hints: self.hints(),
            language_hints_strict: self.language_hints_strict,
            context,
            enable_speaker_diarization: self.enable_speaker_diarization,
            enable_language_identification: self.enable_language_identification,
            enable_endpoint_detection: self.enable_endpoint_detection,
            max_endpoint_delay_ms: (self.max_endpoint_delay_ms > 0)
                .then_some(self.max_endpoint_delay_ms),
            endpoint_sensitivity: (self.endpoint_sensitivity != 0.0)
                .then_some(self.endpoint_sensitivity),
            client_reference_id: self.client_reference_id.clone(),
            translation,
        })
    }

    pub fn keepalive_interval(&self) -> Duration {
        Duration::from_millis(self.keepalive_interval_ms.into())
    }

    pub fn max_session_duration(&self) -> Duration {
        Duration::from_millis(self.max_session_duration_ms.into())
    }

    pub fn drain_timeout(&self) -> Duration {
        Duration::from_millis(self.drain_timeout_ms.into())
    }

    /// The cue limits of `granularity=sentence`.
    pub fn cue_limits(&self) -> Limits {
        Limits {
            max_chars: self.max_cue_chars as usize,
            max_duration: u64::from(self.max_cue_duration_ms) * 1_000_000,
        }
    }

    pub fn latency(&self) -> gst::ClockTime {
        gst::ClockTime::from_mseconds(self.latency_ms.into())
    }

    /// What translation pads add to `latency`.
    pub fn translate_latency(&self) -> gst::ClockTime {
        gst::ClockTime::from_mseconds(self.translate_latency_ms.into())
    }

    pub fn lateness(&self) -> gst::ClockTime {
        gst::ClockTime::from_mseconds(self.lateness_ms.into())
    }
}

/// `en-US` → `en`.
pub fn primary_language(tag: &str) -> String {
    tag.trim()
        .split(['-', '_'])
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase()
}

fn non_empty(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.trim().is_empty())
}

/// The element's properties, declared once.
pub fn properties() -> Vec<glib::ParamSpec> {
    let ms = |name: &str, nick: &str, blurb: &str, min: u32, max: u32, default: u32| {
        glib::ParamSpecUInt::builder(name)
            .nick(nick)
            .blurb(blurb)
            .minimum(min)
            .maximum(max)
            .default_value(default)
            .mutable_playing()
            .build()
    };
    let d = Settings::default();
    vec![
        glib::ParamSpecString::builder("api-key")
            .nick("API key")
            .blurb("Soniox API key or temporary key. When unset, SONIOX_API_KEY is read at connect time. Write-only: it is never logged or readable back")
            .write_only()
            .mutable_ready()
            .build(),
        glib::ParamSpecEnum::builder_with_default("region", d.region)
            .nick("Region")
            .blurb("Soniox region whose endpoint is used when url is unset (us: stt-rt.soniox.com, eu: stt-rt.eu.soniox.com, jp: stt-rt.jp.soniox.com)")
            .mutable_ready()
            .build(),
        glib::ParamSpecString::builder("url")
            .nick("URL")
            .blurb("Overrides the WebSocket endpoint entirely (on-prem, proxies, tests); ws:// is allowed. Unset or empty: the region's endpoint")
            .mutable_ready()
            .build(),
        glib::ParamSpecString::builder("model")
            .nick("Model")
            .blurb("Soniox real-time model, sent as is")
            .default_value(Some(DEFAULT_MODEL))
            .mutable_ready()
            .build(),
        glib::ParamSpecString::builder("language-code")
            .nick("Language code")
            .blurb("BCP-47 tag (e.g. en-US); its language (en) becomes the first language hint (transcriberbin compatibility)")
            .mutable_ready()
            .build(),
        gst::ParamSpecArray::builder("language-hints")
            .nick("Language hints")
            .blurb("ISO 639-1 codes of the expected languages (e.g. <en,de>); duplicates removed, and anything that is not an ISO 639-1 code is left out with a warning")
            .element_spec(
                &glib::ParamSpecString::builder("language-hint")
                    .nick("Language hint")
                    .blurb("ISO 639-1 code")
                    .build(),
            )
            .mutable_ready()
            .build(),
        glib::ParamSpecBoolean::builder("language-hints-strict")
            .nick("Strict language hints")
            .blurb("Strongly prefer the hinted languages")
            .default_value(d.language_hints_strict)
            .mutable_ready()
            .build(),
        glib::ParamSpecString::builder("context")
            .nick("Context")
            .blurb("Domain context: a JSON object is sent as Soniox's structured context (general, text, terms, translation_terms); any other string is sent as {\"text\": …}")
            .mutable_ready()
            .build(),
        glib::ParamSpecBoolean::builder("enable-speaker-diarization")
            .nick("Speaker diarization")
            .blurb("Label tokens with speakers and send rstranscribe/speaker-change events")
            .default_value(d.enable_speaker_diarization)
            .mutable_ready()
            .build(),
        glib::ParamSpecBoolean::builder("enable-language-identification")
            .nick("Language identification")
            .blurb("Label tokens with their language")
            .default_value(d.enable_language_identification)
            .mutable_ready()
            .build(),
        glib::ParamSpecBoolean::builder("enable-endpoint-detection")
            .nick("Endpoint detection")
            .blurb("Let Soniox detect the end of utterances (finalizes words sooner, posts soniox/endpoint)")
            .default_value(d.enable_endpoint_detection)
            .mutable_ready()
            .build(),
        ms(
            "max-endpoint-delay",
            "Max endpoint delay",
            "Longest delay in ms between the end of speech and the endpoint; 0 = service default, else 500–3000",
            0,
            3000,
            d.max_endpoint_delay_ms,
        ),
        glib::ParamSpecDouble::builder("endpoint-sensitivity")
            .nick("Endpoint sensitivity")
            .blurb("Soniox v5 endpointing sensitivity from -1 to 1: higher ends utterances sooner; 0 = the service default (not sent)")
            .minimum(-1.0)
            .maximum(1.0)
            .default_value(d.endpoint_sensitivity)
            .mutable_ready()
            .build(),
        glib::ParamSpecString::builder("client-reference-id")
            .nick("Client reference ID")
            .blurb("Reference shown in Soniox usage logs (at most 256 characters)")
            .mutable_ready()
            .build(),
        ms(
            "latency",
            "Latency",
            "Latency in ms that the element adds to a live pipeline: words are pushed before their running time + latency",
            0,
            u32::MAX,
            d.latency_ms,
        ),
        ms(
            "lateness",
            "Lateness",
            "Shifts the output segment's base by this many ms, so text is rendered later by a fixed amount",
            0,
            u32::MAX,
            d.lateness_ms,
        ),
        glib::ParamSpecUInt::builder("max-observed-delay")
            .nick("Max observed delay")
            .blurb("Largest observed delay in ms between a word's audio being sent and the word being pushed (running time)")
            .read_only()
            .build(),
        ms(
            "keepalive-interval",
            "Keepalive interval",
            "A keepalive is sent whenever no audio went out for this many ms (1000–19000)",
            1000,
            19_000,
            d.keepalive_interval_ms,
        ),
        glib::ParamSpecUInt::builder("max-reconnects")
            .nick("Max reconnects")
            .blurb("Reconnect attempts in a row (after transport errors, 408, 429, 5xx) before giving up with an error; 0 = never reconnect")
            .default_value(d.max_reconnects)
            .mutable_playing()
            .build(),
        ms(
            "max-session-duration",
            "Max session duration",
            "When a session has carried this many ms of audio (live: of time), continue in a new one without losing words, before Soniox's 300-minute limit",
            1000,
            u32::MAX,
            d.max_session_duration_ms,
        ),
        ms(
            "drain-timeout",
            "Drain timeout",
            "At EOS, the longest wait in ms for the service's last words",
            0,
            u32::MAX,
            d.drain_timeout_ms,
        ),
        glib::ParamSpecDouble::builder("pace")
            .nick("Pace")
            .blurb("Non-live input is sent at most this many times faster than real time, after a catch-up burst of 3 s; 0 = as fast as the connection takes it. Live input is never held back")
            .minimum(0.0)
            .maximum(1000.0)
            .default_value(DEFAULT_PACE)
            .mutable_ready()
            .build(),
        glib::ParamSpecBoolean::builder("post-messages")
            .nick("Post messages")
            .blurb("Post soniox/transcript, soniox/endpoint, soniox/finalized and soniox/session element messages on the bus")
            .default_value(d.post_messages)
            .mutable_playing()
            .build(),
        glib::ParamSpecEnum::builder_with_default("granularity", d.granularity)
            .nick("Granularity")
            .blurb("What one text buffer holds: a word, or a caption cue (a sentence or a pause-delimited phrase in at most two lines, within max-cue-chars and max-cue-duration)")
            .mutable_ready()
            .build(),
        glib::ParamSpecUInt::builder("max-cue-chars")
            .nick("Max cue characters")
            .blurb("granularity=sentence: the longest cue in characters; a line holds at most half of it (84: two lines of 42)")
            .minimum(8)
            .maximum(1000)
            .default_value(d.max_cue_chars)
            .mutable_ready()
            .build(),
        ms(
            "max-cue-duration",
            "Max cue duration",
            "granularity=sentence: the longest cue in ms",
            500,
            u32::MAX,
            d.max_cue_duration_ms,
        ),
        glib::ParamSpecEnum::builder_with_default("translation", d.translation)
            .nick("Translation")
            .blurb("How the translation pads' languages are used: one-way (each pad's language is a target; the first is translated in the transcription session, each further one in a Soniox session of its own, billed as such) or two-way (exactly two pads, their languages translated into each other in one session)")
            .mutable_ready()
            .build(),
        glib::ParamSpecEnum::builder_with_default("mode", d.mode)
            .nick("Mode")
            .blurb("realtime: stream over Soniox's WebSocket API; async: non-live input (a file) is kept until EOS, then transcribed as a whole through Soniox's async REST API (faster than real time, cheaper), and the words pushed")
            .mutable_ready()
            .build(),
        glib::ParamSpecString::builder("rest-url")
            .nick("REST URL")
            .blurb("Overrides the REST endpoint of mode=async (tests, proxies). Unset: the region's (https://api[.eu/.jp].soniox.com)")
            .mutable_ready()
            .build(),
        ms(
            "async-timeout",
            "Async timeout",
            "mode=async: the longest wait in ms for the transcription after the upload",
            1000,
            u32::MAX,
            d.async_timeout_ms,
        ),
        ms(
            "translate-latency",
            "Translate latency",
            "What translation pads add to latency, in ms: they answer LATENCY queries with latency + translate-latency and push their text by that deadline",
            0,
            u32::MAX,
            d.translate_latency_ms,
        ),
    ]
}

/// What setting a property changed that the element must act upon.
#[derive(Debug, PartialEq, Eq)]
pub enum Changed {
    Nothing,
    Latency,
}

impl Settings {
    /// Applies a property. Invalid values are clamped (with the reason returned in `Err`).
    pub fn set(&mut self, name: &str, value: &glib::Value) -> Result<Changed, String> {
        let string = || {
            non_empty(
                value
                    .get::<Option<String>>()
                    .expect("type checked by GObject"),
            )
        };
        let uint = || value.get::<u32>().expect("type checked by GObject");
        let boolean = || value.get::<bool>().expect("type checked by GObject");
        match name {
            "api-key" => self.api_key = string().and_then(ApiKey::new),
            "region" => self.region = value.get().expect("type checked by GObject"),
            "url" => self.url = string(),
            "model" => self.model = string().unwrap_or_else(|| DEFAULT_MODEL.to_string()),
            "language-code" => self.language_code = string(),
            "language-hints" => {
                let array = value.get::<gst::Array>().expect("type checked by GObject");
                self.language_hints = array
                    .iter()
                    .filter_map(|v| v.get::<String>().ok())
                    .collect();
            }
            "language-hints-strict" => self.language_hints_strict = boolean(),
            "context" => self.context = string(),
            "enable-speaker-diarization" => self.enable_speaker_diarization = boolean(),
            "enable-language-identification" => self.enable_language_identification = boolean(),
            "enable-endpoint-detection" => self.enable_endpoint_detection = boolean(),
            "max-endpoint-delay" => {
                let v = uint();
                self.max_endpoint_delay_ms = if v == 0 { 0 } else { v.clamp(500, 3000) };
                if self.max_endpoint_delay_ms != v {
                    return Err(format!(
                        "max-endpoint-delay {v} is outside 500–3000; using {}",
                        self.max_endpoint_delay_ms
                    ));
                }
            }
            "client-reference-id" => self.client_reference_id = string(),
            "endpoint-sensitivity" => {
                self.endpoint_sensitivity = value.get::<f64>().expect("type checked by GObject")
            }
            "latency" => {
                let v = uint();
                let changed = v != self.latency_ms;
                self.latency_ms = v;
                if changed {
                    return Ok(Changed::Latency);
                }
            }
            "lateness" => self.lateness_ms = uint(),
            "keepalive-interval" => self.keepalive_interval_ms = uint(),
            "drain-timeout" => self.drain_timeout_ms = uint(),
            "pace" => self.pace = value.get::<f64>().expect("type checked by GObject"),
            "post-messages" => self.post_messages = boolean(),
            "max-reconnects" => self.max_reconnects = uint(),
            "max-session-duration" => self.max_session_duration_ms = uint(),
            "granularity" => self.granularity = value.get().expect("type checked by GObject"),
            "max-cue-chars" => self.max_cue_chars = uint(),
            "max-cue-duration" => self.max_cue_duration_ms = uint(),
            "translation" => self.translation = value.get().expect("type checked by GObject"),
            "mode" => self.mode = value.get().expect("type checked by GObject"),
            "rest-url" => self.rest_url = string(),
            "async-timeout" => self.async_timeout_ms = uint(),
            "translate-latency" => {
                let v = uint();
                let changed = v != self.translate_latency_ms;
                self.translate_latency_ms = v;
                if changed {
                    return Ok(Changed::Latency);
                }
            }
            other => unreachable!("unknown property {other}"),
        }
        Ok(Changed::Nothing)
    }

    /// Reads a property. `api-key` is write-only and never read here.
    pub fn get(&self, name: &str, max_observed_delay_ms: u32) -> glib::Value {
        match name {
            "region" => self.region.to_value(),
            "url" => self.url.to_value(),
            "model" => self.model.to_value(),
            "language-code" => self.language_code.to_value(),
            "language-hints" => gst::Array::new(self.language_hints.iter()).to_value(),
            "language-hints-strict" => self.language_hints_strict.to_value(),
            "context" => self.context.to_value(),
            "enable-speaker-diarization" => self.enable_speaker_diarization.to_value(),
            "enable-language-identification" => self.enable_language_identification.to_value(),
            "enable-endpoint-detection" => self.enable_endpoint_detection.to_value(),
            "max-endpoint-delay" => self.max_endpoint_delay_ms.to_value(),
            "client-reference-id" => self.client_reference_id.to_value(),
            "endpoint-sensitivity" => self.endpoint_sensitivity.to_value(),
            "latency" => self.latency_ms.to_value(),
            "lateness" => self.lateness_ms.to_value(),
            "max-observed-delay" => max_observed_delay_ms.to_value(),
            "keepalive-interval" => self.keepalive_interval_ms.to_value(),
            "drain-timeout" => self.drain_timeout_ms.to_value(),
            "pace" => self.pace.to_value(),
            "post-messages" => self.post_messages.to_value(),
            "max-reconnects" => self.max_reconnects.to_value(),
            "max-session-duration" => self.max_session_duration_ms.to_value(),
            "granularity" => self.granularity.to_value(),
            "max-cue-chars" => self.max_cue_chars.to_value(),
            "max-cue-duration" => self.max_cue_duration_ms.to_value(),
            "translation" => self.translation.to_value(),
            "mode" => self.mode.to_value(),
            "rest-url" => self.rest_url.to_value(),
            "async-timeout" => self.async_timeout_ms.to_value(),
            "translate-latency" => self.translate_latency_ms.to_value(),
            other => unreachable!("property {other} is not readable"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn format() -> AudioFormat {
        AudioFormat {
            soniox: "pcm_s16le",
            rate: 16000,
            channels: 1,
            bytes_per_frame: 2,
        }
    }

    #[test]
    fn the_default_start_request_is_the_contracts() {
        let request = Settings::default().start_request(&format(), None).unwrap();
        assert_eq!(request.model, "stt-rt-v5");
        assert_eq!(request.audio_format, "pcm_s16le");
        assert_eq!(request.sample_rate, Some(16000));
        assert_eq!(request.num_channels, Some(1));
        assert!(request.enable_endpoint_detection);
        assert!(request.language_hints.is_empty());
        assert_eq!(request.max_endpoint_delay_ms, None);
    }

    #[test]
    fn language_code_becomes_the_first_hint_without_duplicates() {
        let settings = Settings {
            language_code: Some("en-US".into()),
            language_hints: vec!["de".into(), "EN".into(), "de".into(), " fr ".into()],
            ..Default::default()
        };
        assert_eq!(settings.hints(), vec!["en", "de", "fr"]);
        assert_eq!(settings.known_language().as_deref(), Some("en"));
    }

    #[test]
    fn hints_that_are_not_iso_639_1_codes_are_left_out() {
        let settings = Settings {
            language_code: Some("english-US".into()),
            language_hints: vec!["de".into(), "xx".into(), "French".into()],
            ..Default::default()
        };
        assert_eq!(settings.hints(), vec!["de"]);
        assert_eq!(settings.bad_hints(), vec!["english", "xx", "french"]);
    }

    #[test]
    fn endpoint_sensitivity_is_sent_only_when_set() {
        assert_eq!(
            Settings::default()
                .start_request(&format(), None)
                .unwrap()
                .endpoint_sensitivity,
            None
        );
        let settings = Settings {
            endpoint_sensitivity: -0.5,
            ..Default::default()
        };
        let json = settings.start_request(&format(), None).unwrap().to_json();
        assert!(json.contains(r#""endpoint_sensitivity":-0.5"#), "{json}");
    }

    #[test]
    fn a_context_beyond_sonioxs_limit_is_refused_before_connecting() {
        let fits = Settings {
            context: Some("x".repeat(9_000)),
            ..Default::default()
        };
        assert!(fits.start_request(&format(), None).is_ok());
        let long = Settings {
            context: Some("x".repeat(200_000)),
            ..Default::default()
        };
        assert_eq!(
            long.start_request(&format(), None).unwrap_err(),
            "context is 200011 characters long as sent; Soniox takes at most 10000"
        );
    }

    #[test]
    fn a_too_long_client_reference_id_is_refused() {
        let settings = Settings {
            client_reference_id: Some("x".repeat(257)),
            ..Default::default()
        };
        assert!(settings
            .start_request(&format(), None)
            .unwrap_err()
            .contains("256"));
    }

    #[test]
    fn endpoints_default_to_the_region() {
        let mut settings = Settings::default();
        assert_eq!(
            settings.endpoint(),
            "wss://stt-rt.soniox.com/transcribe-websocket"
        );
        settings.region = Region::Eu;
        assert_eq!(
            settings.endpoint(),
            "wss://stt-rt.eu.soniox.com/transcribe-websocket"
        );
        settings.url = Some("ws://127.0.0.1:1/x".into());
        assert_eq!(settings.endpoint(), "ws://127.0.0.1:1/x");
    }
}
