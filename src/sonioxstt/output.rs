// SPDX-License-Identifier: MPL-2.0
//! The src pad task: the one owner of everything that goes downstream.
//!
//! Serialized events from the sink (stream-start, caps, segment, tag, EOS) and session events
//! (results, end, failure) arrive in one bounded channel, in order. The task turns tokens into
//! words, words into timestamped buffers through the session's timeline, posts the bus
//! messages, and pushes buffers, custom events and EOS, so none can overtake another.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use gst::prelude::*;
use gst::subclass::prelude::*;
use tokio::sync::mpsc;

use super::imp::{SonioxStt, CAT};
use super::messages::{self, SessionLife};
use crate::soniox::protocol::ServerMessage;
use crate::soniox::session::SessionEvent;
use crate::transcript::timeline::Timeline;
use crate::transcript::words::{Assembled, Boundary, WordAssembler};

/// How many items may wait for the src task.
pub const CAPACITY: usize = 64;

/// What the src task is asked to do, in stream order.
#[derive(Debug)]
pub enum Item {
    /// A serialized event for downstream.
    Event(gst::Event),
    /// Something a session reported. Every event carries the session's timeline.
    Session {
        id: u32,
        timeline: Arc<Mutex<Timeline>>,
        event: SessionEvent,
    },
    /// End of stream, once the sessions listed have ended.
    Eos {
        seqnum: gst::Seqnum,
        after: Vec<u32>,
    },
    /// Wake up and pause: the element is flushing or stopping.
    Stop,
}

/// The src task's own state; it lives in the task closure and dies with the task.
pub struct Output {
    element: glib::WeakRef<super::SonioxStt>,
    items: mpsc::Receiver<Item>,
    sessions: BTreeMap<u32, SessionOutput>,
    ended: BTreeSet<u32>,
    pending_eos: Option<(gst::Seqnum, Vec<u32>)>,
    /// After an error or a downstream flow error, items are received and dropped, so that
    /// senders never block on a task that no longer pushes.
    failed: bool,
}

struct SessionOutput {
    assembler: WordAssembler,
    timeline: Arc<Mutex<Timeline>>,
    /// The next buffer is the session's first.
    discont: bool,
}

impl Output {
    pub fn new(element: glib::WeakRef<super::SonioxStt>, items: mpsc::Receiver<Item>) -> Output {
        Output {
            element,
            items,
            sessions: BTreeMap::new(),
            ended: BTreeSet::new(),
            pending_eos: None,
            failed: false,
        }
    }

    /// One iteration of the src pad task.
    pub fn iterate(&mut self) {
        let item = self.items.blocking_recv();
        let Some(element) = self.element.upgrade() else {
            return;
        };
        let imp = element.imp();
        let item = match item {
            Some(Item::Stop) | None => None,
            Some(_) if imp.is_flushing() => None,
            Some(item) => Some(item),
        };
        let Some(item) = item else {
            let _ = imp.srcpad.pause_task();
            return;
        };
        if self.failed {
            return;
        }
        match self.handle(imp, item) {
            Ok(()) => {}
            Err(gst::FlowError::Flushing) => {
                let _ = imp.srcpad.pause_task();
            }
            Err(flow) => {
                gst::debug!(CAT, imp = imp, "output stopped: {flow:?}");
                self.failed = true;
                imp.set_output_flow(flow);
            }
        }
    }

    fn handle(&mut self, imp: &SonioxStt, item: Item) -> Result<(), gst::FlowError> {
        match item {
            Item::Event(event) => {
                if !imp.srcpad.push_event(event) {
                    gst::debug!(CAT, imp = imp, "downstream refused an event");
                }
                Ok(())
            }
            Item::Session {
                id,
                timeline,
                event,
            } => self.session_event(imp, id, timeline, event),
            Item::Eos { seqnum, after } => {
                self.pending_eos = Some((seqnum, after));
                self.push_eos_when_drained(imp);
                Ok(())
            }
            Item::Stop => Ok(()),
        }
    }

    fn session_event(
        &mut self,
        imp: &SonioxStt,
        id: u32,
        timeline: Arc<Mutex<Timeline>>,
        event: SessionEvent,
    ) -> Result<(), gst::FlowError> {
        if self.ended.contains(&id) {
            return Ok(());
        }
        self.sessions.entry(id).or_insert_with(|| SessionOutput {
            assembler: WordAssembler::new(),
            timeline,
            discont: true,
        });
        match event {
            SessionEvent::Connected => {
                gst::info!(CAT, imp = imp, "session {id} connected");
                imp.post(messages::session(SessionLife::Connected, id, ""));
                Ok(())
            }
            SessionEvent::Message(message) => self.message(imp, id, &message),
            SessionEvent::Finished => {
                let out = self.session(id).assembler.finish();
                self.emit(imp, id, out)?;
                gst::info!(CAT, imp = imp, "session {id} finished");
                imp.post(messages::session(SessionLife::Finished, id, ""));
                self.end_session(imp, id);
                Ok(())
            }
            SessionEvent::DrainTimedOut => {
                let out = self.session(id).assembler.finish_with_interim();
                self.emit(imp, id, out)?;
                imp.warn_drain_timeout(id);
                imp.post(messages::session(
                    SessionLife::Finished,
                    id,
                    "drain timeout",
                ));
                self.end_session(imp, id);
                Ok(())
            }
            SessionEvent::Failed(_) => {
                // Already posted when it happened (see `SonioxStt::session_failed`).
                self.end_session_quietly(id);
                Err(gst::FlowError::Error)
            }
        }
    }

    fn message(
        &mut self,
        imp: &SonioxStt,
        id: u32,
        message: &ServerMessage,
    ) -> Result<(), gst::FlowError> {
        let session = self.session(id);
        let fed = session.assembler.feed(&message.tokens);
        if !message.tokens.is_empty() {
            let timeline = session.timeline.lock().unwrap();
            imp.post_with(|| {
                messages::transcript(message, &fed.final_text, &fed.interim_text, id, &timeline)
            });
        }
        self.emit(imp, id, fed.out)?;
        if let Some(final_ms) = message.final_audio_proc_ms {
            let session = self.session(id);
            let keep_from = session
                .assembler
                .pending_start_ms()
                .map_or(final_ms, |p| p.min(final_ms));
            session.timeline.lock().unwrap().forget_before_ms(keep_from);
        }
        Ok(())
    }

    /// Pushes assembled words and events downstream, posts endpoint/finalized messages.
    fn emit(
        &mut self,
        imp: &SonioxStt,
        id: u32,
        out: Vec<Assembled>,
    ) -> Result<(), gst::FlowError> {
        for assembled in out {
            match assembled {
                Assembled::Word(word) => {
                    let session = self.session(id);
                    let (pts, end) = {
                        let timeline = session.timeline.lock().unwrap();
                        let map = |ms: Option<u64>| ms.and_then(|ms| timeline.pts_at_ms(ms));
                        (map(word.start_ms), map(word.end_ms))
                    };
                    let mut buffer = gst::Buffer::from_mut_slice(word.text.into_bytes());
                    {
                        let buffer = buffer.get_mut().expect("a new buffer is writable");
                        buffer.set_pts(pts.map(gst::ClockTime::from_nseconds));
                        buffer.set_duration(
                            pts.zip(end)
                                .map(|(p, e)| gst::ClockTime::from_nseconds(e.saturating_sub(p))),
                        );
                        if std::mem::take(&mut session.discont) {
                            buffer.set_flags(gst::BufferFlags::DISCONT);
                        }
                    }
                    gst::log!(CAT, imp = imp, "pushing {buffer:?}");
                    imp.srcpad.push(buffer)?;
                }
                Assembled::SpeakerChange(speaker) => {
                    imp.srcpad
                        .push_event(messages::speaker_change_event(&speaker));
                }
                Assembled::Boundary { kind, text, end_ms } => {
                    if !text.is_empty() {
                        imp.srcpad.push_event(messages::final_transcript_event());
                    }
                    match kind {
                        Boundary::Endpoint => {
                            let pts = end_ms.and_then(|ms| {
                                self.session(id).timeline.lock().unwrap().pts_at_ms(ms)
                            });
                            imp.post(messages::endpoint(pts, &text, id));
                        }
                        Boundary::Finalized => imp.post(messages::finalized(id)),
                        Boundary::EndOfStream => {}
                    }
                }
            }
        }
        Ok(())
    }

    fn session(&mut self, id: u32) -> &mut SessionOutput {
        self.sessions.get_mut(&id).expect("session output exists")
    }

    fn end_session(&mut self, imp: &SonioxStt, id: u32) {
        self.end_session_quietly(id);
        self.push_eos_when_drained(imp);
    }

    fn end_session_quietly(&mut self, id: u32) {
        self.sessions.remove(&id);
        self.ended.insert(id);
    }

    fn push_eos_when_drained(&mut self, imp: &SonioxStt) {
        let drained = match &self.pending_eos {
            Some((_, after)) => after.iter().all(|id| self.ended.contains(id)),
            None => false,
        };
        if drained {
            let (seqnum, _) = self.pending_eos.take().expect("checked above");
            gst::debug!(CAT, imp = imp, "pushing EOS");
            imp.srcpad
                .push_event(gst::event::Eos::builder().seqnum(seqnum).build());
        }
    }
}
