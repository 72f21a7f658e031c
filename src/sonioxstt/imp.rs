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
//! full channel, pushing downstream, or stopping the src task.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use gst::prelude::*;
use gst::subclass::prelude::*;
use once_cell::sync::Lazy;
use tokio::sync::mpsc;

use super::format::{self, AudioFormat};
use super::input::ActiveSession;
use super::keys;
use super::output::{self, Item, Output};
use super::settings::{self, Changed, Settings};

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
        self.draining.retain(|s| !s.handle.is_finished());
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
}

impl SonioxStt {
    pub(super) fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap()
    }

    /// The settings a session starts with: the properties, and, when `language-code` is
    /// unset, the language of the transcriberbin the element sits in (gst-plugins-rs 0.13
    /// passes its `language-code` on only when it changes from its default, `en-US`).
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

    fn src_query(&self, pad: &gst::Pad, query: &mut gst::QueryRef) -> bool {
        match query.view_mut() {
            gst::QueryViewMut::Latency(latency) => {
                let ours = self.settings.lock().unwrap().latency();
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

#[glib::object_subclass]
impl ObjectSubclass for SonioxStt {
    const NAME: &'static str = "GstSonioxStt";
    type Type = super::SonioxStt;
    type ParentType = gst::Element;

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
                let latency = self.settings.lock().unwrap().latency();
                self.latency_ms
                    .store(latency.mseconds() as u32, Ordering::Relaxed);
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
            ]
        });
        TEMPLATES.as_ref()
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
