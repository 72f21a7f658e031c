// SPDX-License-Identifier: MPL-2.0
//! The src pad task: the one owner of everything that goes downstream.
//!
//! Serialized events from the sink (stream-start, caps, segment, tag, EOS) and session events
//! (timed results, end, failure) arrive in one bounded channel, in order. The [`router`] keeps
//! their global order across element sessions; each session's output ([`session`]) turns
//! tokens into words or cues; the pad's [`writer`] pushes buffers, GAPs and events, so none
//! can overtake another.

mod lane;
mod router;
mod session;
mod writer;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use gst::prelude::*;
use gst::subclass::prelude::*;
use tokio::sync::mpsc;

use super::imp::{SonioxStt, CAT};
use super::plan::Member;
use super::Granularity;
use crate::runtime::RUNTIME;
use crate::soniox::session::SessionEvent;
use router::Router;
use session::{Life, SessionOutput};
pub use writer::language_tag;
use writer::Writers;

/// How many items may wait for the src task.
pub const CAPACITY: usize = 64;

/// What the src task is asked to do, in stream order.
#[derive(Debug)]
pub enum Item {
    /// A serialized event for downstream.
    Event(gst::Event),
    /// Something an element session reported, from its connection `connection` (what bus
    /// messages call `session`).
    Session {
        session: u32,
        connection: u32,
        /// The session's input is live (its text has a latency to keep).
        live: bool,
        /// What the session transcribes and translates, for which pads.
        member: Arc<Member<gst::Pad>>,
        event: SessionEvent,
    },
    /// Everything after this waits until the sessions listed have ended (their audio was
    /// ended: a caps or segment change), so the old session's words go out first.
    Drain { after: Vec<u32> },
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
    router: Router,
    sessions: BTreeMap<u32, SessionOutput>,
    writers: Writers,
    /// After an error or a downstream flow error, items are received and dropped, so that
    /// senders never block on a task that no longer pushes.
    failed: bool,
}

impl Output {
    pub fn new(
        element: glib::WeakRef<super::SonioxStt>,
        src: gst::Pad,
        items: mpsc::Receiver<Item>,
    ) -> Output {
        Output {
            element,
            items,
            router: Router::default(),
            sessions: BTreeMap::new(),
            writers: Writers::new(src),
            failed: false,
        }
    }

    /// One iteration of the src pad task: the next item, or a live cue's deadline.
    pub fn iterate(&mut self) {
        let deadline = self.element.upgrade().and_then(|element| {
            self.sessions
                .values()
                .filter_map(|s| s.deadline(element.imp()))
                .min()
        });
        // `None`: the deadline came first. A closed channel stops the task like `Stop`.
        let item = match deadline {
            None => Some(self.items.blocking_recv().unwrap_or(Item::Stop)),
            Some(deadline) => {
                let deadline = tokio::time::Instant::from_std(deadline);
                let items = &mut self.items;
                // The timer needs the runtime's context: built inside the future it runs in.
                let wait = async { tokio::time::timeout_at(deadline, items.recv()).await };
                match RUNTIME.block_on(wait) {
                    Ok(item) => Some(item.unwrap_or(Item::Stop)),
                    Err(_elapsed) => None,
                }
            }
        };
        let Some(element) = self.element.upgrade() else {
            return;
        };
        let imp = element.imp();
        if self.handle(imp, item) {
            // What came meanwhile, in the same turn of the task.
            while let Ok(item) = self.items.try_recv() {
                if !self.handle(imp, Some(item)) {
                    break;
                }
            }
        }
    }

    /// Handles an item (`None`: a deadline came); `false` once the task pauses or output
    /// has failed.
    fn handle(&mut self, imp: &SonioxStt, item: Option<Item>) -> bool {
        if matches!(item, Some(Item::Stop)) || imp.is_flushing() {
            let _ = imp.srcpad.pause_task();
            return false;
        }
        if self.failed {
            return false;
        }
        let result = match item {
            Some(item) => self.dispatch(imp, item),
            None => Ok(()),
        }
        .and_then(|()| self.expire(imp));
        match result {
            Ok(()) => true,
            Err(gst::FlowError::Flushing) => {
                let _ = imp.srcpad.pause_task();
                false
            }
            Err(flow) => {
                gst::debug!(CAT, imp = imp, "output stopped: {flow:?}");
                self.failed = true;
                imp.set_output_flow(flow);
                false
            }
        }
    }

    /// Pushes the live cues whose deadline has come.
    fn expire(&mut self, imp: &SonioxStt) -> Result<(), gst::FlowError> {
        let now = Instant::now();
        for session in self.sessions.values_mut() {
            session.expire(imp, &mut self.writers, now)?;
        }
        Ok(())
    }

    /// Handles an item now, or defers it behind a barrier.
    fn dispatch(&mut self, imp: &SonioxStt, item: Item) -> Result<(), gst::FlowError> {
        let Some(item) = self.router.admit(item) else {
            return Ok(());
        };
        match item {
            Item::Event(event) => {
                self.writers.sink_event(imp, event);
                Ok(())
            }
            Item::Session {
                session,
                connection,
                live,
                member,
                event,
            } => self.session_event(imp, session, connection, live, &member, event),
            Item::Drain { after } => {
                self.router.wait_for(after);
                Ok(())
            }
            Item::Eos { seqnum, after } => {
                gst::debug!(CAT, imp = imp, "EOS after sessions {after:?}");
                self.dispatch(imp, Item::Drain { after })?;
                let eos = gst::event::Eos::builder().seqnum(seqnum).build();
                self.dispatch(imp, Item::Event(eos))
            }
            Item::Stop => Ok(()),
        }
    }

    fn session_event(
        &mut self,
        imp: &SonioxStt,
        id: u32,
        connection: u32,
        live: bool,
        member: &Member<gst::Pad>,
        event: SessionEvent,
    ) -> Result<(), gst::FlowError> {
        if self.router.has_ended(id) {
            return Ok(());
        }
        let session = self.sessions.entry(id).or_insert_with(|| {
            let settings = imp.settings();
            let cues = match settings.granularity {
                Granularity::Word => None,
                Granularity::Sentence => Some(settings.cue_limits()),
            };
            SessionOutput::new(connection, live, member, cues)
        });
        match session.handle(imp, &mut self.writers, connection, event) {
            Ok(Life::Running) => Ok(()),
            Ok(Life::Ended) => self.end_session(imp, id),
            Err(flow) => {
                self.sessions.remove(&id);
                self.router.end(id);
                Err(flow)
            }
        }
    }

    /// Forgets an ended session; releases what waited for it.
    fn end_session(&mut self, imp: &SonioxStt, id: u32) -> Result<(), gst::FlowError> {
        self.sessions.remove(&id);
        for item in self.router.end(id) {
            self.dispatch(imp, item)?;
        }
        Ok(())
    }
}
