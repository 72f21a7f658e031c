// SPDX-License-Identifier: MPL-2.0
//! The `sonioxstt` element: pads, properties, queries and state changes (the glue). The
//! sink side is in [`super::input`], the src task in [`super::output`], bus messages,
//! warnings and errors in [`super::report`].
//!
//! Threads: the sink streaming thread (chain, serialized events) sends audio to the current
//! session and serialized events to the src task; the session runs on the shared tokio
//! runtime; the src task ([`super::output`]) pushes everything downstream.
//!
//! Lock order: `state`, then `settings`. Neither lock is held while blocking: sending to a
//! full channel, pushing downstream, or stopping the src task. A `mode=async` job's progress
//! lock (`ActiveSession::jobs`) is taken alone, never with `state` or `settings`.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use gst::prelude::*;
use gst::subclass::prelude::*;
use once_cell::sync::Lazy;
use tokio::sync::mpsc;

use super::format::{self, AudioFormat};
use super::input::ActiveSession;
use super::keys;
use super::output::{self, Item, Output};
use super::plan::PadLanguage;
use super::settings::{self, Changed, Settings};
use super::TranslateSrcPad;

pub static CAT: Lazy<gst::DebugCategory> = Lazy::new(|| {
    gst::DebugCategory::new(
        "sonioxstt",
        gst::DebugColorFlags::empty(),
        Some("Soniox real-time speech-to-text"),
    )
});

/// What a running stream owns.
#[derive(Debug, Default)]
pub struct State {
    /// Where items for the src task go; `None` while the task is stopped.
    pub(super) output: Option<mpsc::Sender<Item>>,
    pub(super) flushing: bool,
    /// Sticky flow result of the output side (error, downstream EOS or not-linked).
    pub(super) flow: Option<gst::FlowError>,
    pub(super) format: Option<AudioFormat>,
    /// The session receiving audio.
    pub(super) session: Option<ActiveSession>,
    /// Sessions that got their end of audio and are draining.
    pub(super) draining: Vec<ActiveSession>,
    pub(super) sessions_started: u32,
    /// Numbers the connections (what bus messages call `session`), from 1.
    pub(super) connections: Arc<AtomicU32>,
    /// The last input segment, to tell a real change from a repeat.
    pub(super) segment: Option<gst::FormattedSegment<gst::ClockTime>>,
    pub(super) sent_caps: bool,
    pub(super) sent_tag: bool,
}

impl State {
    pub(super) fn check_flow(&self) -> Result<(), gst::FlowError> {
        if self.flushing {
            return Err(gst::FlowError::Flushing);
        }
        self.flow.map_or(Ok(()), Err)
    }

    pub(super) fn forget_finished(&mut self) {
        self.draining.retain(|s| !s.is_finished());
    }
}

pub struct SonioxStt {
    pub srcpad: gst::Pad,
    pub(super) sinkpad: gst::Pad,
    pub(super) settings: Mutex<Settings>,
    pub(super) state: Mutex<State>,
    pub(super) max_observed_delay_ms: AtomicU32,
    /// The `latency` property, shared with live sessions (their promise follows changes).
    pub(super) latency_ms: Arc<AtomicU32>,
    pub(super) translate_latency_ms: AtomicU32,
    /// Counts changes of the translation pads (requested, released, re-languaged): a
    /// session started before the last one is replaced at the next pause.
    pub(super) translation_generation: AtomicU64,
}

impl SonioxStt {
    pub(super) fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap()
    }

    /// The settings a session starts with: the properties, and, when `language-code` is
    /// unset, the language of the transcriberbin the element sits in (gst-plugins-rs 0.13
    /// passes its `language-code` on only when it changes from its default, `en-US`).
    /// `mode=async`.
    pub(super) fn is_async(&self) -> bool {
        self.settings.lock().unwrap().mode == super::Mode::Async
    }

    pub(super) fn settings(&self) -> Settings {
        let mut settings = self.settings.lock().unwrap().clone();
        if settings.language_code.is_none() {
            settings.language_code = self.transcriberbin_language();
        }
        settings
    }

    fn transcriberbin_language(&self) -> Option<String> {
        let mut parent = self.obj().parent();
        while let Some(object) = parent {
            let element = object.downcast_ref::<gst::Element>();
            let factory = element.and_then(|e| e.factory());
            if factory.is_some_and(|f| f.name() == "transcriberbin") {
                let has_code = object
                    .find_property("language-code")
                    .is_some_and(|p| p.value_type() == String::static_type());
                return has_code
                    .then(|| object.property::<Option<String>>("language-code"))
                    .flatten();
            }
            parent = object.parent();
        }
        None
    }

    pub fn is_flushing(&self) -> bool {
        self.state().flushing
    }

    /// A translation pad was requested, released or given another language.
    pub fn translation_pads_changed(&self) {
        self.translation_generation.fetch_add(1, Ordering::Relaxed);
        gst::debug!(CAT, imp = self, "translation pads changed");
    }

    /// The translation pads in the order of their numbers, with their languages.
    pub(super) fn translation_pads(&self) -> Vec<PadLanguage<gst::Pad>> {
        let mut pads: Vec<(u32, PadLanguage<gst::Pad>)> = self
            .obj()
            .src_pads()
            .into_iter()
            .filter_map(|pad| pad.downcast::<TranslateSrcPad>().ok())
            .map(|pad| {
                let name = pad.name().to_string();
                let number = pad_number(&name).unwrap_or(u32::MAX);
                let language = pad.language();
                (
                    number,
                    PadLanguage {
                        pad: pad.upcast(),
                        name,
                        language,
                    },
                )
            })
            .collect();
        pads.sort_by_key(|(number, _)| *number);
        pads.into_iter().map(|(_, pad)| pad).collect()
    }

    // ---- output side ----------------------------------------------------------------------

    pub(super) fn start_output(&self) {
        let (sender, receiver) = mpsc::channel(output::CAPACITY);
        self.state().output = Some(sender);
        let mut output = Output::new(self.obj().downgrade(), self.srcpad.clone(), receiver);
        if let Err(e) = self.srcpad.start_task(move || output.iterate()) {
            gst::error!(CAT, imp = self, "could not start the src task: {e}");
        }
    }

    /// Aborts every session at once (no drain) and stops the src task. Returns promptly.
    pub(super) fn stop_streaming(&self) {
        let (output, sessions) = {
            let mut state = self.state();
            state.flushing = true;
            let mut sessions: Vec<ActiveSession> = state.draining.drain(..).collect();
            sessions.extend(state.session.take());
            (state.output.take(), sessions)
        };
        for session in &sessions {
            session.cancel_jobs(self);
        }
        drop(sessions); // aborts the session tasks; a chain waiting on one returns
        if let Some(output) = output {
            let _ = output.try_send(Item::Stop);
        }
        let _ = self.srcpad.stop_task();
    }

    /// Forgets the stream after a flush or a stop; caps stay.
    pub(super) fn reset_stream(&self) {
        let mut state = self.state();
        state.flushing = false;
        state.flow = None;
        state.session = None;
        state.draining.clear();
        state.segment = None;
    }

    pub fn set_output_flow(&self, flow: gst::FlowError) {
        if matches!(
            flow,
            gst::FlowError::NotLinked | gst::FlowError::NotNegotiated
        ) {
            gst::element_imp_error!(
                self,
                gst::StreamError::Failed,
                ("Internal data stream error."),
                ["streaming stopped, reason {:?}", flow]
            );
        }
        self.state().flow = Some(flow);
    }

    // ---- queries ------------------------------------------------------------------------

    /// Queries on `src` and the translation pads: a translation pad's latency has
    /// `translate-latency` more.
    fn src_query(&self, pad: &gst::Pad, query: &mut gst::QueryRef) -> bool {
        match query.view_mut() {
            gst::QueryViewMut::Latency(latency) => {
                let ours = {
                    let settings = self.settings.lock().unwrap();
                    match pad.is::<TranslateSrcPad>() {
                        true => settings.latency() + settings.translate_latency(),
                        false => settings.latency(),
                    }
                };
                let mut upstream = gst::query::Latency::new();
                if !self.sinkpad.peer_query(&mut upstream) {
                    // Upstream cannot answer yet (a live source before caps, in PAUSED):
                    // answer what this element adds, so the pipeline can plan for it.
                    latency.set(true, ours, gst::ClockTime::NONE);
                    return true;
                }
                let (live, min, max) = upstream.result();
                if live {
                    latency.set(true, min + ours, max.map(|max| max + ours));
                } else {
                    latency.set(live, min, max);
                }
                gst::debug!(CAT, imp = self, "latency {latency:?}");
                true
            }
            _ => gst::Pad::query_default(pad, Some(&*self.obj()), query),
        }
    }
}

/// `translate_src_7` → 7.
fn pad_number(name: &str) -> Option<u32> {
    name.strip_prefix("translate_src_")?.parse().ok()
}

#[glib::object_subclass]
impl ObjectSubclass for SonioxStt {
    const NAME: &'static str = "GstSonioxStt";
    type Type = super::SonioxStt;
    type ParentType = gst::Element;
    type Interfaces = (gst::ChildProxy,);

    fn with_class(klass: &Self::Class) -> Self {
        let templ = klass.pad_template("sink").expect("sink template");
        let sinkpad = gst::Pad::builder_from_template(&templ)
            .chain_function(|pad, parent, buffer| {
                SonioxStt::catch_panic_pad_function(
                    parent,
                    || Err(gst::FlowError::Error),
                    |imp| {
                        imp.sink_chain(buffer).inspect_err(|flow| {
                            gst::debug!(CAT, obj = pad, "chain returns {flow:?}");
                        })
                    },
                )
            })
            .event_function(|pad, parent, event| {
                SonioxStt::catch_panic_pad_function(
                    parent,
                    || false,
                    |imp| imp.sink_event(pad, event),
                )
            })
            .build();
        let templ = klass.pad_template("src").expect("src template");
        let srcpad = gst::Pad::builder_from_template(&templ)
            .query_function(|pad, parent, query| {
                SonioxStt::catch_panic_pad_function(
                    parent,
                    || false,
                    |imp| imp.src_query(pad, query),
                )
            })
            .activatemode_function(|_pad, parent, mode, active| {
                SonioxStt::catch_panic_pad_function(
                    parent,
                    || Err(gst::loggable_error!(CAT, "panic in src pad activation")),
                    |imp| {
                        if mode != gst::PadMode::Push {
                            return Err(gst::loggable_error!(CAT, "only push mode is supported"));
                        }
                        if active {
                            *imp.state() = State::default();
                            imp.start_output();
                        } else {
                            imp.stop_streaming();
                        }
                        Ok(())
                    },
                )
            })
            .flags(gst::PadFlags::FIXED_CAPS)
            .build();
        SonioxStt {
            srcpad,
            sinkpad,
            settings: Mutex::new(Settings::default()),
            state: Mutex::new(State::default()),
            max_observed_delay_ms: AtomicU32::new(0),
            latency_ms: Arc::new(AtomicU32::new(settings::DEFAULT_LATENCY_MS)),
            translate_latency_ms: AtomicU32::new(settings::DEFAULT_TRANSLATE_LATENCY_MS),
            translation_generation: AtomicU64::new(0),
        }
    }
}

impl ObjectImpl for SonioxStt {
    fn constructed(&self) {
        self.parent_constructed();
        let obj = self.obj();
        obj.add_pad(&self.sinkpad).expect("add sink pad");
        obj.add_pad(&self.srcpad).expect("add src pad");
    }

    fn properties() -> &'static [glib::ParamSpec] {
        static PROPERTIES: Lazy<Vec<glib::ParamSpec>> = Lazy::new(settings::properties);
        PROPERTIES.as_ref()
    }

    fn signals() -> &'static [glib::subclass::Signal] {
        static SIGNALS: Lazy<Vec<glib::subclass::Signal>> = Lazy::new(|| {
            vec![
                glib::subclass::Signal::builder("finalize")
                    .action()
                    .class_handler(|args| {
                        let element = args[0]
                            .get::<super::SonioxStt>()
                            .expect("signal on sonioxstt");
                        element.imp().request_finalize();
                        None
                    })
                    .build(),
                // Emitted on a thread of its own before each connection (argument: the
                // connection's number); the handler returns a key (e.g. a freshly minted
                // temporary key), or NULL for the api-key property / SONIOX_API_KEY.
                glib::subclass::Signal::builder(keys::SIGNAL)
                    .param_types([u32::static_type()])
                    .return_type::<Option<String>>()
                    .build(),
            ]
        });
        SIGNALS.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        let result = self.settings.lock().unwrap().set(pspec.name(), value);
        match result {
            Ok(Changed::Latency) => {
                let (latency, translate) = {
                    let settings = self.settings.lock().unwrap();
                    (settings.latency(), settings.translate_latency())
                };
                self.latency_ms
                    .store(latency.mseconds() as u32, Ordering::Relaxed);
                self.translate_latency_ms
                    .store(translate.mseconds() as u32, Ordering::Relaxed);
                gst::debug!(CAT, imp = self, "latency changed to {latency}");
                let _ = self
                    .obj()
                    .post_message(gst::message::Latency::builder().src(&*self.obj()).build());
            }
            Ok(Changed::Nothing) => {}
            Err(reason) => gst::warning!(CAT, imp = self, "{reason}"),
        }
        if pspec.name() != "api-key" {
            gst::debug!(CAT, imp = self, "set {}", pspec.name());
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        let delay = self.max_observed_delay_ms.load(Ordering::Relaxed);
        self.settings.lock().unwrap().get(pspec.name(), delay)
    }
}

impl GstObjectImpl for SonioxStt {}

impl ElementImpl for SonioxStt {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static METADATA: Lazy<gst::subclass::ElementMetadata> = Lazy::new(|| {
            gst::subclass::ElementMetadata::new(
                "Soniox speech-to-text",
                "Audio/Text/Filter",
                "Transcribes live audio to timestamped words with Soniox real-time speech-to-text",
                "gst-plugin-soniox developers",
            )
        });
        Some(&*METADATA)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static TEMPLATES: Lazy<Vec<gst::PadTemplate>> = Lazy::new(|| {
            vec![
                gst::PadTemplate::new(
                    "sink",
                    gst::PadDirection::Sink,
                    gst::PadPresence::Always,
                    &format::sink_caps(),
                )
                .expect("sink template"),
                gst::PadTemplate::new(
                    "src",
                    gst::PadDirection::Src,
                    gst::PadPresence::Always,
                    &format::src_caps(),
                )
                .expect("src template"),
                gst::PadTemplate::with_gtype(
                    "translate_src_%u",
                    gst::PadDirection::Src,
                    gst::PadPresence::Request,
                    &format::src_caps(),
                    TranslateSrcPad::static_type(),
                )
                .expect("translate_src template"),
            ]
        });
        TEMPLATES.as_ref()
    }

    fn request_new_pad(
        &self,
        templ: &gst::PadTemplate,
        name: Option<&str>,
        _caps: Option<&gst::Caps>,
    ) -> Option<gst::Pad> {
        let obj = self.obj();
        let name = match name {
            Some(name) if pad_number(name).is_some() => name.to_string(),
            Some(name) => {
                gst::warning!(
                    CAT,
                    imp = self,
                    "no pad named {name}: translate_src_%u only"
                );
                return None;
            }
            None => {
                let next = obj
                    .src_pads()
                    .iter()
                    .filter_map(|p| pad_number(&p.name()))
                    .max()
                    .map_or(0, |n| n + 1);
                format!("translate_src_{next}")
            }
        };
        if obj.static_pad(&name).is_some() {
            gst::warning!(CAT, imp = self, "{name} exists already");
            return None;
        }
        let pad = gst::PadBuilder::<TranslateSrcPad>::from_template(templ)
            .name(name.as_str())
            .query_function(|pad, parent, query| {
                SonioxStt::catch_panic_pad_function(
                    parent,
                    || false,
                    |imp| imp.src_query(pad.upcast_ref(), query),
                )
            })
            .flags(gst::PadFlags::FIXED_CAPS)
            .build();
        if obj.current_state() > gst::State::Ready {
            let _ = pad.set_active(true);
        }
        obj.add_pad(&pad).ok()?;
        obj.child_added(&pad, &name);
        self.translation_pads_changed();
        Some(pad.upcast())
    }

    fn release_pad(&self, pad: &gst::Pad) {
        let obj = self.obj();
        let name = pad.name();
        let _ = pad.set_active(false);
        if obj.remove_pad(pad).is_ok() {
            obj.child_removed(pad, &name);
            self.translation_pads_changed();
        }
    }

    fn change_state(
        &self,
        transition: gst::StateChange,
    ) -> Result<gst::StateChangeSuccess, gst::StateChangeError> {
        gst::debug!(CAT, imp = self, "{transition:?}");
        if transition == gst::StateChange::PausedToReady {
            // Before the pads deactivate: unblock a chain waiting on a session.
            self.stop_streaming();
        }
        self.parent_change_state(transition)
    }
}

impl ChildProxyImpl for SonioxStt {
    fn child_by_index(&self, index: u32) -> Option<glib::Object> {
        self.obj()
            .pads()
            .into_iter()
            .nth(index as usize)
            .map(|pad| pad.upcast())
    }

    fn children_count(&self) -> u32 {
        self.obj().num_pads() as u32
    }

    fn child_by_name(&self, name: &str) -> Option<glib::Object> {
        self.obj().static_pad(name).map(|pad| pad.upcast())
    }
}
