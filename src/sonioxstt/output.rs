// SPDX-License-Identifier: MPL-2.0
//! The src pad task: the one owner of everything that goes downstream.
//!
//! Serialized events from the sink (stream-start, caps, segment, tag, EOS) and session events
//! (results, end, failure) arrive in one bounded channel, in order. The task turns tokens into
//! words, words into timestamped buffers through the session's timeline, posts the bus
//! messages, and pushes buffers, custom events and EOS, so none can overtake another.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gst::prelude::*;
use gst::subclass::prelude::*;
use tokio::sync::mpsc;

use super::imp::{SonioxStt, CAT};
use super::messages::{self, SessionLife};
use crate::soniox::protocol::{ServerMessage, Token};
use crate::soniox::session::SessionEvent;
use crate::transcript::timeline::Timeline;
use crate::transcript::words::{Assembled, Boundary, Word, WordAssembler};

/// How many items may wait for the src task.
pub const CAPACITY: usize = 64;
/// At most one "late word" warning per this period.
const LATE_WARNING_PERIOD: Duration = Duration::from_secs(60);

/// What the src task is asked to do, in stream order.
#[derive(Debug)]
pub enum Item {
    /// A serialized event for downstream.
    Event(gst::Event),
    /// Something a session reported, with the connection it came from (`session`, as bus
    /// messages number them) and that connection's timeline.
    Session {
        /// The element's session (stream of connections): what barriers wait for.
        stream: u32,
        session: u32,
        timeline: Arc<Mutex<Timeline>>,
        /// The session's input is live (its words have a latency to keep).
        live: bool,
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

/// A time in ns as a `ClockTime`, unless it is the one value a `ClockTime` cannot hold
/// (`GST_CLOCK_TIME_NONE`): building one from it would panic.
fn clock_time(ns: u64) -> Option<gst::ClockTime> {
    (ns != u64::MAX).then(|| gst::ClockTime::from_nseconds(ns))
}

/// The src task's own state; it lives in the task closure and dies with the task.
pub struct Output {
    element: glib::WeakRef<super::SonioxStt>,
    items: mpsc::Receiver<Item>,
    /// Per connection.
    sessions: BTreeMap<u32, SessionOutput>,
    /// Streams (element sessions) that have ended.
    ended: BTreeSet<u32>,
    /// What a broken connection hands to the next one of its stream.
    inherited: BTreeMap<u32, Inherited>,
    /// Sessions that must end before the deferred items go out.
    barrier: Vec<u32>,
    deferred: VecDeque<Item>,
    /// After an error or a downstream flow error, items are received and dropped, so that
    /// senders never block on a task that no longer pushes.
    failed: bool,
    /// Where the text stream has got to (end of the last word or gap pushed), ns.
    position: Option<u64>,
    last_late_warning: Option<Instant>,
}

/// What a broken connection hands to the next one of its stream.
#[derive(Default)]
struct Inherited {
    assembler: WordAssembler,
    unconfirmed: Option<Unconfirmed>,
    words: u64,
}

/// The non-final tail of a broken connection, with the timeline its times are on: pushed as
/// it was if the drain times out before a new connection says anything.
struct Unconfirmed {
    tokens: Vec<Token>,
    timeline: Arc<Mutex<Timeline>>,
}

struct SessionOutput {
    assembler: WordAssembler,
    /// See [`Unconfirmed`]; cleared by the first tokens of this connection.
    unconfirmed: Option<Unconfirmed>,
    timeline: Arc<Mutex<Timeline>>,
    live: bool,
    /// The next buffer is the session's first.
    discont: bool,
    /// Soniox's `final_audio_proc_ms`: no final token will come before it.
    final_ms: u64,
    /// Session time up to which words or gaps went out.
    covered_ms: u64,
    /// GAP events from the input, waiting for the words before them.
    input_gaps: VecDeque<InputGap>,
    /// Words pushed for the stream so far (over all its connections).
    words: u64,
}

struct InputGap {
    after_ms: u64,
    pts: u64,
    duration: Option<u64>,
}

impl Output {
    pub fn new(element: glib::WeakRef<super::SonioxStt>, items: mpsc::Receiver<Item>) -> Output {
        Output {
            element,
            items,
            sessions: BTreeMap::new(),
            ended: BTreeSet::new(),
            inherited: BTreeMap::new(),
            barrier: Vec::new(),
            deferred: VecDeque::new(),
            failed: false,
            position: None,
            last_late_warning: None,
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
        match self.dispatch(imp, item) {
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

    /// Handles an item now, or defers it behind a barrier.
    fn dispatch(&mut self, imp: &SonioxStt, item: Item) -> Result<(), gst::FlowError> {
        let passes = match &item {
            Item::Session { stream, .. } => {
                self.barrier.is_empty() || self.barrier.contains(stream)
            }
            _ => self.barrier.is_empty(),
        };
        if !passes {
            self.deferred.push_back(item);
            return Ok(());
        }
        match item {
            Item::Event(event) => {
                self.note_event(&event);
                if !imp.srcpad.push_event(event) {
                    gst::debug!(CAT, imp = imp, "downstream refused an event");
                }
                Ok(())
            }
            Item::Session {
                stream,
                session,
                timeline,
                live,
                event,
            } => self.session_event(imp, stream, session, timeline, live, event),
            Item::Drain { after } => {
                self.barrier = after
                    .into_iter()
                    .filter(|id| !self.ended.contains(id))
                    .collect();
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

    /// Keeps the text position in step with events that move it.
    fn note_event(&mut self, event: &gst::Event) {
        match event.view() {
            gst::EventView::Gap(gap) => {
                let (pts, duration) = gap.get();
                let end = pts.nseconds() + duration.map_or(0, gst::ClockTime::nseconds);
                self.position = Some(self.position.map_or(end, |p| p.max(end)));
            }
            gst::EventView::Segment(_) | gst::EventView::FlushStop(_) => self.position = None,
            _ => {}
        }
    }

    fn session_event(
        &mut self,
        imp: &SonioxStt,
        stream: u32,
        id: u32,
        timeline: Arc<Mutex<Timeline>>,
        live: bool,
        event: SessionEvent,
    ) -> Result<(), gst::FlowError> {
        if self.ended.contains(&stream) {
            return Ok(());
        }
        if !self.sessions.contains_key(&id) {
            let inherited = self.inherited.remove(&stream).unwrap_or_default();
            self.sessions.insert(
                id,
                SessionOutput {
                    assembler: inherited.assembler,
                    unconfirmed: inherited.unconfirmed,
                    timeline,
                    live,
                    discont: true,
                    final_ms: 0,
                    covered_ms: 0,
                    input_gaps: VecDeque::new(),
                    words: inherited.words,
                },
            );
        }
        match event {
            SessionEvent::Connected => {
                gst::info!(CAT, imp = imp, "session {id} connected");
                imp.post(messages::session(SessionLife::Connected, id, ""));
                Ok(())
            }
            SessionEvent::Message(message) => self.message(imp, id, &message),
            SessionEvent::InputGap {
                after_ms,
                pts,
                duration,
            } => {
                self.session(id).input_gaps.push_back(InputGap {
                    after_ms,
                    pts,
                    duration,
                });
                self.advance(imp, id, false);
                Ok(())
            }
            SessionEvent::ReplayOverflow { forgotten_ms } => {
                imp.warn_replay_overflow(id, forgotten_ms);
                Ok(())
            }
            SessionEvent::Reconnecting {
                error,
                attempt,
                delay,
            } => {
                // What was final is pushed; the rest comes again from the replay.
                let session = self.session(id);
                let tokens = session.assembler.take_interim();
                if !tokens.is_empty() {
                    session.unconfirmed = Some(Unconfirmed {
                        tokens,
                        timeline: session.timeline.clone(),
                    });
                }
                let out = session.assembler.break_connection();
                self.emit(imp, id, out)?;
                let session = self.sessions.remove(&id).expect("session output exists");
                self.inherited.insert(
                    stream,
                    Inherited {
                        assembler: session.assembler,
                        unconfirmed: session.unconfirmed,
                        words: session.words,
                    },
                );
                imp.warn_reconnecting(id, &error, attempt, delay);
                imp.post(messages::session(
                    SessionLife::Reconnecting,
                    id,
                    &error.to_string(),
                ));
                Ok(())
            }
            SessionEvent::Finished => {
                let out = self.session(id).assembler.finish();
                self.emit(imp, id, out)?;
                self.advance(imp, id, true);
                gst::info!(CAT, imp = imp, "session {id} finished");
                imp.post(messages::session(SessionLife::Finished, id, ""));
                self.end_stream(imp, stream, id)
            }
            SessionEvent::DrainTimedOut(unfinished) => {
                let session = self.session(id);
                // No new connection said anything: the broken one's tail, on its timeline.
                if let Some(unconfirmed) = session.unconfirmed.take() {
                    session.assembler.restore_interim(unconfirmed.tokens);
                    session.timeline = unconfirmed.timeline;
                }
                let out = self.session(id).assembler.finish_with_interim();
                self.emit(imp, id, out)?;
                self.advance(imp, id, true);
                let words = self.session(id).words;
                match &unfinished.reconnecting {
                    // Not a word, not even silence made final: that is a failure, not an end.
                    Some(reason)
                        if words == 0
                            && !unfinished.finalized_any
                            && unfinished.untranscribed_ms > 0 =>
                    {
                        imp.fail_untranscribed(id, reason, unfinished.untranscribed_ms);
                        self.sessions.remove(&id);
                        self.ended.insert(stream);
                        return Err(gst::FlowError::Error);
                    }
                    Some(reason) => imp.warn_untranscribed(id, reason, unfinished.untranscribed_ms),
                    None => imp.warn_drain_timeout(id),
                }
                imp.post(messages::session(
                    SessionLife::Finished,
                    id,
                    "drain timeout",
                ));
                self.end_stream(imp, stream, id)
            }
            SessionEvent::Failed(_) => {
                // Already posted when it happened (see `SonioxStt::session_failed`).
                self.sessions.remove(&id);
                self.ended.insert(stream);
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
            // This connection heard the replayed audio again: its words replace the old tail.
            session.unconfirmed = None;
            let timeline = session.timeline.lock().unwrap();
            imp.post_with(|| {
                messages::transcript(message, &fed.final_text, &fed.interim_text, id, &timeline)
            });
        }
        self.emit(imp, id, fed.out)?;
        if let Some(final_ms) = message.final_audio_proc_ms {
            let session = self.session(id);
            session.final_ms = session.final_ms.max(final_ms);
        }
        self.advance(imp, id, false);
        let session = self.session(id);
        let keep_from = session
            .assembler
            .pending_start_ms()
            .map_or(session.final_ms, |p| p.min(session.final_ms))
            .min(session.covered_ms);
        session.timeline.lock().unwrap().forget_before_ms(keep_from);
        Ok(())
    }

    /// Moves the text stream on with GAP events over the time no word can cover any more:
    /// up to `final_audio_proc_ms` (not past a word still being assembled), and the input's
    /// own gaps once the words before them are out. `ended`: the session has no more words.
    fn advance(&mut self, imp: &SonioxStt, id: u32, ended: bool) {
        let session = self.session(id);
        let settled_ms = match session.assembler.pending_start_ms() {
            _ if ended => u64::MAX,
            Some(pending) => pending.min(session.final_ms),
            None => session.final_ms,
        };
        loop {
            let session = self.session(id);
            let Some(gap) = session.input_gaps.front() else {
                break;
            };
            if gap.after_ms > settled_ms {
                break;
            }
            let gap = session.input_gaps.pop_front().expect("checked above");
            self.gap_to(imp, id, gap.after_ms);
            let end = gap.pts + gap.duration.unwrap_or(0);
            let start = self.position.map_or(gap.pts, |p| p.max(gap.pts));
            self.push_gap(imp, start, end.checked_sub(start).filter(|d| *d > 0));
        }
        if !ended {
            self.gap_to(imp, id, settled_ms);
        }
    }

    /// A GAP from where the session's text got to, up to session time `ms`.
    fn gap_to(&mut self, imp: &SonioxStt, id: u32, ms: u64) {
        let session = self.session(id);
        if ms <= session.covered_ms {
            return;
        }
        let (start, end) = {
            let timeline = session.timeline.lock().unwrap();
            (
                timeline.pts_at_ms(session.covered_ms),
                timeline.pts_at_ms(ms),
            )
        };
        session.covered_ms = ms;
        let (Some(start), Some(end)) = (start, end) else {
            return;
        };
        let start = self.position.map_or(start, |p| p.max(start));
        if end > start {
            self.push_gap(imp, start, Some(end - start));
        }
    }

    fn push_gap(&mut self, imp: &SonioxStt, start: u64, duration: Option<u64>) {
        let Some(start) = clock_time(start) else {
            return;
        };
        let event = gst::event::Gap::builder(start)
            .duration(duration.and_then(clock_time))
            .build();
        gst::log!(CAT, imp = imp, "pushing {event:?}");
        self.note_event(&event);
        imp.srcpad.push_event(event);
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
                Assembled::Word(word) => self.push_word(imp, id, word)?,
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

    fn push_word(&mut self, imp: &SonioxStt, id: u32, word: Word) -> Result<(), gst::FlowError> {
        let session = self.session(id);
        let (pts, end, sent) = {
            let timeline = session.timeline.lock().unwrap();
            let map = |ms: Option<u64>| ms.and_then(|ms| timeline.pts_at_ms(ms));
            let sent = word.start_ms.and_then(|ms| timeline.sent_at_ms(ms));
            (map(word.start_ms), map(word.end_ms), sent)
        };
        if let Some(end_ms) = word.end_ms {
            session.covered_ms = session.covered_ms.max(end_ms);
        }
        session.words += 1;
        let live = session.live;
        let mut buffer = gst::Buffer::from_mut_slice(word.text.into_bytes());
        {
            let buffer = buffer.get_mut().expect("a new buffer is writable");
            buffer.set_pts(pts.and_then(clock_time));
            buffer.set_duration(
                pts.zip(end)
                    .and_then(|(p, e)| clock_time(e.saturating_sub(p))),
            );
            if std::mem::take(&mut session.discont) {
                buffer.set_flags(gst::BufferFlags::DISCONT);
            }
        }
        if let Some(end) = end.or(pts) {
            self.position = Some(self.position.map_or(end, |p| p.max(end)));
        }
        gst::log!(CAT, imp = imp, "pushing {buffer:?}");
        imp.srcpad.push(buffer)?;
        if let (true, Some(sent)) = (live, sent) {
            self.observe_delay(imp, sent.elapsed());
        }
        Ok(())
    }

    /// A live word went out `delay` after its audio did.
    fn observe_delay(&mut self, imp: &SonioxStt, delay: Duration) {
        let latency = imp.latency();
        imp.note_delay(delay);
        if delay > latency
            && self
                .last_late_warning
                .is_none_or(|t| t.elapsed() >= LATE_WARNING_PERIOD)
        {
            self.last_late_warning = Some(Instant::now());
            imp.warn_late(delay, latency);
        }
    }

    fn session(&mut self, id: u32) -> &mut SessionOutput {
        self.sessions.get_mut(&id).expect("session output exists")
    }

    /// Forgets an ended stream and its last connection; releases what waited for it.
    fn end_stream(&mut self, imp: &SonioxStt, stream: u32, id: u32) -> Result<(), gst::FlowError> {
        self.sessions.remove(&id);
        self.inherited.remove(&stream);
        self.ended.insert(stream);
        let was_waiting = !self.barrier.is_empty();
        self.barrier.retain(|&b| b != stream);
        if was_waiting && self.barrier.is_empty() {
            for item in std::mem::take(&mut self.deferred) {
                self.dispatch(imp, item)?;
            }
        }
        Ok(())
    }
}
