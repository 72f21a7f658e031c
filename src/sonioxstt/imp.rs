// SPDX-License-Identifier: MPL-2.0
//! The `sonioxstt` element: pads, properties, events, queries and state changes.
//!
//! Threads: the sink streaming thread (chain, serialized events) sends audio to the current
//! session and serialized events to the src task; the session runs on the shared tokio
//! runtime; the src task ([`super::output`]) pushes everything downstream.
//!
//! Lock order: `state`, then `settings`. Neither lock is held while blocking: sending to a
//! full channel, pushing downstream, or stopping the src task.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use gst::prelude::*;
use gst::subclass::prelude::*;
use once_cell::sync::Lazy;
use tokio::sync::mpsc;

use super::format::{self, AudioFormat};
use super::keys::{self, SignalKeys};
use super::messages::{self, SessionLife};
use super::output::{self, Item, Output};
use super::settings::{self, Changed, Settings};
use crate::soniox::audio_queue::{AudioQueue, Overflow, Queued};
use crate::soniox::credentials::{Credentials, KeySource};
use crate::soniox::protocol::Token;
use crate::soniox::session::{
    sends_key_in_clear, Pacing, SessionConfig, SessionError, SessionEvent, SessionHandle,
};

pub static CAT: Lazy<gst::DebugCategory> = Lazy::new(|| {
    gst::DebugCategory::new(
        "sonioxstt",
        gst::DebugColorFlags::empty(),
        Some("Soniox real-time speech-to-text"),
    )
});

/// See [`ActiveSession::endpoint_pts`].
const NO_ENDPOINT: u64 = u64::MAX;
/// Audio this close after an endpoint (ns) is taken to be in the pause that followed it.
const ENDPOINT_FRESH_NS: u64 = 500_000_000;

/// A session that may still receive audio or drain.
#[derive(Debug)]
struct ActiveSession {
    /// Counts the element's sessions (a session may use several connections).
    id: u32,
    format: AudioFormat,
    handle: SessionHandle,
    live: bool,
    started: Instant,
    /// Audio queued for it, in bytes.
    pushed: u64,
    /// Input time (ns) up to which Soniox had heard when it last reported an endpoint
    /// ([`NO_ENDPOINT`]: none yet): right after it is a pause, a good moment to rotate.
    endpoint_pts: Arc<AtomicU64>,
}

impl ActiveSession {
    fn queue(&self) -> &Arc<AudioQueue> {
        self.handle.queue()
    }

    /// Whether the session has carried enough audio (live: time) to hand over to a new
    /// one before the audio at `next_pts`. Within the last tenth before `limit` (at most
    /// 60 s), it hands over where the audio is right after an endpoint, so that the cut
    /// falls in a pause and no word is split between the sessions; at `limit` in any case.
    fn due_for_rotation(&self, limit: Duration, next_pts: Option<u64>) -> bool {
        let carried = if self.live {
            self.started.elapsed()
        } else {
            Duration::from_nanos(self.handle.queue().duration_ns(self.pushed))
        };
        let early = limit.saturating_sub((limit / 10).min(Duration::from_secs(60)));
        let endpoint = self.endpoint_pts.load(Ordering::Relaxed);
        let in_pause = next_pts.is_some_and(|pts| {
            endpoint != NO_ENDPOINT && pts.saturating_sub(endpoint) <= ENDPOINT_FRESH_NS
        });
        carried >= limit || (carried >= early && in_pause)
    }
}

/// What a running stream owns.
#[derive(Debug, Default)]
pub struct State {
    /// Where items for the src task go; `None` while the task is stopped.
    output: Option<mpsc::Sender<Item>>,
    flushing: bool,
    /// Sticky flow result of the output side (error, downstream EOS or not-linked).
    flow: Option<gst::FlowError>,
    format: Option<AudioFormat>,
    /// The session receiving audio.
    session: Option<ActiveSession>,
    /// Sessions that got their end of audio and are draining.
    draining: Vec<ActiveSession>,
    sessions_started: u32,
    /// Numbers the connections (what bus messages call `session`), from 1.
    connections: Arc<AtomicU32>,
    /// The last input segment, to tell a real change from a repeat.
    segment: Option<gst::FormattedSegment<gst::ClockTime>>,
    sent_caps: bool,
    sent_tag: bool,
}

impl State {
    fn check_flow(&self) -> Result<(), gst::FlowError> {
        if self.flushing {
            return Err(gst::FlowError::Flushing);
        }
        self.flow.map_or(Ok(()), Err)
    }

    fn forget_finished(&mut self) {
        self.draining.retain(|s| !s.handle.is_finished());
    }
}

/// Whether two segments put the same timestamps at the same running times.
fn same_timeline(
    a: &gst::FormattedSegment<gst::ClockTime>,
    b: &gst::FormattedSegment<gst::ClockTime>,
) -> bool {
    a.rate() == b.rate()
        && a.applied_rate() == b.applied_rate()
        && a.flags() == b.flags()
        && a.start() == b.start()
        && a.stop() == b.stop()
        && a.time() == b.time()
        && a.base() == b.base()
}

pub struct SonioxStt {
    pub srcpad: gst::Pad,
    sinkpad: gst::Pad,
    settings: Mutex<Settings>,
    state: Mutex<State>,
    max_observed_delay_ms: AtomicU32,
    /// The `latency` property, shared with live sessions (their promise follows changes).
    latency_ms: Arc<AtomicU32>,
}

impl SonioxStt {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap()
    }

    fn settings(&self) -> Settings {
        self.settings.lock().unwrap().clone()
    }

    pub fn is_flushing(&self) -> bool {
        self.state().flushing
    }

    // ---- input: audio -------------------------------------------------------------------

    fn sink_chain(&self, buffer: gst::Buffer) -> Result<gst::FlowSuccess, gst::FlowError> {
        let pts = buffer.pts().map(gst::ClockTime::nseconds);
        let queue = self.session_for_audio(buffer.size() as u64, pts)?;
        let discont = buffer.flags().contains(gst::BufferFlags::DISCONT);
        let audio = buffer.into_mapped_buffer_readable().map_err(|_| {
            gst::element_imp_error!(
                self,
                gst::StreamError::Failed,
                ("Could not map an audio buffer")
            );
            gst::FlowError::Error
        })?;
        if audio.is_empty() {
            return Ok(gst::FlowSuccess::Ok);
        }
        // Live: never waits (the oldest audio goes beyond the limit); else waits for room.
        let pushed = queue
            .push_audio(pts, discont, Bytes::from_owner(audio))
            .map_err(|_| self.flow_after_session_loss())?;
        if pushed.started_dropping {
            let dropped = Duration::from_nanos(queue.duration_ns(pushed.dropped_bytes));
            gst::element_imp_warning!(
                self,
                gst::ResourceError::Write,
                (
                    "Soniox is not taking audio as fast as it comes: more than {} s was waiting, \
                     so the oldest audio is being dropped",
                    settings::LIVE_QUEUE.as_secs()
                ),
                ["first drop: {} ms", dropped.as_millis()]
            );
        }
        Ok(gst::FlowSuccess::Ok)
    }

    /// What the chain returns when the session stopped taking audio.
    fn flow_after_session_loss(&self) -> gst::FlowError {
        let state = self.state();
        match state.check_flow() {
            Err(flow) => flow,
            // The session failed; the src task posts the error.
            Ok(()) => gst::FlowError::Error,
        }
    }

    /// The queue of the session that takes the next `len` bytes of audio; opens one (or
    /// rotates to a new one) when needed.
    fn session_for_audio(
        &self,
        len: u64,
        pts: Option<u64>,
    ) -> Result<Arc<AudioQueue>, gst::FlowError> {
        let limit = self.settings.lock().unwrap().max_session_duration();
        let rotate = {
            let mut state = self.state();
            state.check_flow()?;
            match &mut state.session {
                Some(session) if !session.due_for_rotation(limit, pts) => {
                    session.pushed += len;
                    return Ok(session.queue().clone());
                }
                Some(session) => Some(session.id),
                None => None,
            }
        };
        if let Some(id) = rotate {
            gst::info!(
                CAT,
                imp = self,
                "session {id} reached max-session-duration: rotating"
            );
            let connection = self.state().connections.load(Ordering::Relaxed);
            self.drain_session();
            self.post(messages::session(SessionLife::Rotated, connection, ""));
        }
        let queue = self.start_session()?;
        if let Some(session) = self.state().session.as_mut() {
            session.pushed += len;
        }
        Ok(queue)
    }

    /// Opens a session for the first buffer of a stream (or after a caps change).
    fn start_session(&self) -> Result<Arc<AudioQueue>, gst::FlowError> {
        let settings = self.settings();
        let format = self.state().format.ok_or(gst::FlowError::NotNegotiated)?;
        // Fresh keys from the application when it connected `request-api-key`.
        let keys = Arc::new(SignalKeys::new(&self.obj()));
        let fixed = settings.resolve_key();
        if fixed.is_none() && !keys.fetches() {
            gst::element_imp_error!(
                self,
                gst::ResourceError::NotAuthorized,
                (
                    "No Soniox API key: set the api-key property or {}",
                    settings::API_KEY_ENV
                )
            );
            return Err(gst::FlowError::Error);
        }
        let start_request = settings.start_request(&format).map_err(|reason| {
            gst::element_imp_error!(self, gst::LibraryError::Settings, ("{}", reason));
            gst::FlowError::Error
        })?;
        let bad_hints = settings.bad_hints();
        if !bad_hints.is_empty() {
            gst::element_imp_warning!(
                self,
                gst::LibraryError::Settings,
                (
                    "Language hints that are not ISO 639-1 codes are not sent: {}",
                    bad_hints.join(", ")
                )
            );
        }
        let url = settings.endpoint();
        if sends_key_in_clear(&url) {
            gst::element_imp_warning!(
                self,
                gst::ResourceError::Settings,
                ("The API key is sent unencrypted to {}: use wss://", url)
            );
        }
        let live = self.upstream_is_live();
        let bytes_per_second = format.bytes_per_second();
        let pacing = (!live && settings.pace > 0.0).then_some(Pacing {
            bytes_per_second,
            speed: settings.pace,
            burst: settings::PACE_BURST,
        });
        let config = SessionConfig {
            url,
            credentials: Credentials {
                fixed,
                fresh: Some(keys),
            },
            start_request,
            keepalive_interval: settings.keepalive_interval(),
            drain_timeout: settings.drain_timeout(),
            connect_timeout: settings::CONNECT_TIMEOUT,
            pacing,
            latency_ms: live.then(|| self.latency_ms.clone()),
            max_reconnects: settings.max_reconnects,
            replay_limit: settings::REPLAY_LIMIT,
            frame_bytes: format.bytes_per_frame.into(),
            bytes_per_second,
            // Live: about half a second of audio (the kernel doubles it).
            send_buffer: live.then(|| (bytes_per_second / 2).clamp(8 << 10, 256 << 10) as u32),
        };
        let queue = Arc::new(if live {
            let limit = settings::LIVE_QUEUE.as_secs() * bytes_per_second;
            // While the connection is suspect or being replaced: up to the replay window.
            let hold = settings::REPLAY_LIMIT.as_secs() * bytes_per_second;
            AudioQueue::new(Overflow::DropOldest, limit, bytes_per_second).holding_up_to(hold)
        } else {
            let limit = settings::NON_LIVE_QUEUE.as_millis() as u64 * bytes_per_second / 1000;
            AudioQueue::new(Overflow::Block, limit, bytes_per_second)
        });

        let mut state = self.state();
        state.check_flow()?;
        let output = state.output.clone().ok_or(gst::FlowError::Flushing)?;
        state.forget_finished();
        state.sessions_started += 1;
        let id = state.sessions_started;
        gst::info!(
            CAT,
            imp = self,
            "starting session {id}: {} ({} Hz), {}, live {live}",
            format.soniox,
            format.rate,
            config.url
        );
        let endpoint_pts = Arc::new(AtomicU64::new(NO_ENDPOINT));
        let element = self.obj().downgrade();
        let seen_endpoint = endpoint_pts.clone();
        let connections = state.connections.clone();
        let handle = SessionHandle::spawn(config, queue.clone(), connections, output, move |r| {
            match (&r.event, element.upgrade()) {
                (SessionEvent::Failed(error), Some(element)) => {
                    // At once, ahead of queued words: the chain must not fail first.
                    element.imp().session_failed(r.session, error);
                }
                (SessionEvent::Message(m), _) if m.tokens.iter().any(|t| t.text == Token::END) => {
                    let heard = m.total_audio_proc_ms.and_then(|ms| {
                        r.timeline
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .pts_at_ms(ms)
                    });
                    if let Some(pts) = heard {
                        seen_endpoint.store(pts, Ordering::Relaxed);
                    }
                }
                _ => {}
            }
            Item::Session {
                stream: id,
                session: r.session,
                timeline: r.timeline,
                live,
                event: r.event,
            }
        });
        state.session = Some(ActiveSession {
            id,
            format,
            handle,
            live,
            started: Instant::now(),
            pushed: 0,
            endpoint_pts,
        });
        Ok(queue)
    }

    fn upstream_is_live(&self) -> bool {
        let mut query = gst::query::Latency::new();
        self.sinkpad.peer_query(&mut query) && query.result().0
    }

    /// Ends the audio of the current session; it drains on its own. Returns the sessions
    /// that have not ended yet.
    fn end_audio(&self) -> Vec<u32> {
        let mut state = self.state();
        state.forget_finished();
        if let Some(session) = state.session.take() {
            let _ = session.queue().push_control(Queued::EndOfAudio);
            state.draining.push(session);
        }
        state.draining.iter().map(|s| s.id).collect()
    }

    /// Ends the current session's audio and holds everything after it until it has drained.
    fn drain_session(&self) {
        let after = self.end_audio();
        if !after.is_empty() {
            gst::debug!(CAT, imp = self, "draining sessions {after:?}");
            self.send_item(Item::Drain { after });
        }
    }

    /// Asks the current session to finalize what it has, in order with the audio queued so
    /// far. Never blocks.
    fn request_finalize(&self) {
        let state = self.state();
        match &state.session {
            Some(session) => {
                gst::debug!(CAT, imp = self, "finalize requested");
                let _ = session.queue().push_control(Queued::Finalize);
            }
            None => gst::debug!(
                CAT,
                imp = self,
                "finalize requested without a session: nothing to do"
            ),
        }
    }

    /// A GAP on the sink: no audio for that time. With a session, it goes in order with the
    /// audio (the session finalizes what it has; the output forwards the gap after the
    /// words before it); without one, straight on.
    fn input_gap(&self, event: gst::Event) -> bool {
        let gst::EventView::Gap(gap) = event.view() else {
            return false;
        };
        let (pts, duration) = gap.get();
        let queued = self.state().session.as_ref().is_some_and(|session| {
            session
                .queue()
                .push_control(Queued::Gap {
                    pts: pts.nseconds(),
                    duration: duration.map(gst::ClockTime::nseconds),
                })
                .is_ok()
        });
        queued || self.send_item(Item::Event(event))
    }

    // ---- input: events -------------------------------------------------------------------

    fn sink_event(&self, pad: &gst::Pad, event: gst::Event) -> bool {
        use gst::EventView;
        gst::log!(CAT, obj = pad, "handling {event:?}");
        match event.view() {
            EventView::FlushStart(_) => {
                let ret = self.srcpad.push_event(event);
                self.stop_streaming();
                ret
            }
            EventView::FlushStop(_) => {
                self.reset_stream();
                let ret = self.srcpad.push_event(event);
                self.start_output();
                ret
            }
            EventView::StreamStart(stream_start) => {
                let stream_id = format!("{}/sonioxstt", stream_start.stream_id());
                let mut builder =
                    gst::event::StreamStart::builder(&stream_id).seqnum(event.seqnum());
                if let Some(group) = stream_start.group_id() {
                    builder = builder.group_id(group);
                }
                self.send_item(Item::Event(builder.build()))
            }
            EventView::Caps(caps) => self.set_caps(caps.caps()),
            EventView::Segment(segment) => {
                let Ok(segment) = segment.segment().clone().downcast::<gst::ClockTime>() else {
                    gst::element_imp_error!(
                        self,
                        gst::StreamError::Format,
                        ("sonioxstt needs a TIME segment")
                    );
                    return false;
                };
                let changed = {
                    let mut state = self.state();
                    let changed = state.session.is_some()
                        && state
                            .segment
                            .as_ref()
                            .is_some_and(|old| !same_timeline(old, &segment));
                    state.segment = Some(segment.clone());
                    changed
                };
                if changed {
                    // Words of the old segment go out in it, before the new segment.
                    gst::debug!(CAT, imp = self, "new segment: draining the session");
                    self.drain_session();
                }
                let mut out = segment.clone();
                out.set_base(
                    segment.base().unwrap_or(gst::ClockTime::ZERO)
                        + self.settings.lock().unwrap().lateness(),
                );
                let ok = self.send_item(Item::Event(
                    gst::event::Segment::builder(&out)
                        .seqnum(event.seqnum())
                        .build(),
                ));
                let tag = {
                    let mut state = self.state();
                    !std::mem::replace(&mut state.sent_tag, true)
                };
                if let Some(language) = self
                    .settings
                    .lock()
                    .unwrap()
                    .known_language()
                    .filter(|_| tag)
                {
                    let mut tags = gst::TagList::new();
                    tags.get_mut()
                        .expect("new tag list")
                        .add::<gst::tags::LanguageCode>(
                            &language.as_str(),
                            gst::TagMergeMode::Replace,
                        );
                    self.send_item(Item::Event(gst::event::Tag::new(tags)));
                }
                ok
            }
            EventView::Eos(_) => {
                let after = self.end_audio();
                self.send_item(Item::Eos {
                    seqnum: event.seqnum(),
                    after,
                })
            }
            EventView::CustomDownstream(_) if messages::is_finalize_request(&event) => {
                self.request_finalize();
                true
            }
            EventView::Gap(_) => self.input_gap(event),
            // Audio tags say nothing about the text stream.
            EventView::Tag(_) => true,
            _ if event.is_serialized() => self.send_item(Item::Event(event)),
            _ => gst::Pad::event_default(pad, Some(&*self.obj()), event),
        }
    }

    fn set_caps(&self, caps: &gst::CapsRef) -> bool {
        let format = match AudioFormat::from_caps(caps) {
            Ok(format) => format,
            Err(reason) => {
                gst::element_imp_error!(self, gst::StreamError::Format, ("{}", reason));
                return false;
            }
        };
        gst::debug!(CAT, imp = self, "audio format {format:?}");
        let (changed, first) = {
            let mut state = self.state();
            state.format = Some(format);
            let changed = state.session.as_ref().is_some_and(|s| s.format != format);
            (changed, !std::mem::replace(&mut state.sent_caps, true))
        };
        if changed {
            // The next buffer opens a session in the new format; this one drains first.
            self.drain_session();
        }
        !first || self.send_item(Item::Event(gst::event::Caps::new(&format::src_caps())))
    }

    /// Queues an item for the src task (from the streaming thread: may wait for room).
    fn send_item(&self, item: Item) -> bool {
        let output = self.state().output.clone();
        output.is_some_and(|output| output.blocking_send(item).is_ok())
    }

    // ---- output side ----------------------------------------------------------------------

    fn start_output(&self) {
        let (sender, receiver) = mpsc::channel(output::CAPACITY);
        self.state().output = Some(sender);
        let mut output = Output::new(self.obj().downgrade(), receiver);
        if let Err(e) = self.srcpad.start_task(move || output.iterate()) {
            gst::error!(CAT, imp = self, "could not start the src task: {e}");
        }
    }

    /// Aborts every session at once (no drain) and stops the src task. Returns promptly.
    fn stop_streaming(&self) {
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
    fn reset_stream(&self) {
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

    // ---- bus --------------------------------------------------------------------------------

    pub fn post(&self, structure: gst::Structure) {
        self.post_with(|| structure);
    }

    /// Posts an element message when `post-messages` is on.
    pub fn post_with(&self, build: impl FnOnce() -> gst::Structure) {
        if self.settings.lock().unwrap().post_messages {
            let message = gst::message::Element::builder(build())
                .src(&*self.obj())
                .build();
            let _ = self.obj().post_message(message);
        }
    }

    /// The `latency` property.
    pub fn latency(&self) -> Duration {
        Duration::from_millis(self.latency_ms.load(Ordering::Relaxed).into())
    }

    /// A live word went out `delay` after its audio: updates `max-observed-delay`.
    pub fn note_delay(&self, delay: Duration) {
        let ms = u32::try_from(delay.as_millis()).unwrap_or(u32::MAX);
        let previous = self.max_observed_delay_ms.fetch_max(ms, Ordering::Relaxed);
        if ms > previous {
            self.obj().notify("max-observed-delay");
        }
    }

    pub fn warn_late(&self, delay: Duration, latency: Duration) {
        gst::element_imp_warning!(
            self,
            gst::StreamError::Failed,
            (
                "A word came {} ms after its audio, later than latency ({} ms): raise latency",
                delay.as_millis(),
                latency.as_millis()
            ),
            ["at most one such warning per minute"]
        );
    }

    pub fn warn_reconnecting(&self, id: u32, error: &SessionError, attempt: u32, delay: Duration) {
        gst::element_imp_warning!(
            self,
            gst::ResourceError::Read,
            (
                "{}: reconnecting in {:.2} s (attempt {} of {}), replaying what was not final",
                error,
                delay.as_secs_f32(),
                attempt,
                self.settings.lock().unwrap().max_reconnects
            ),
            ["session {}", id]
        );
    }

    pub fn warn_replay_overflow(&self, id: u32, forgotten_ms: u64) {
        gst::element_imp_warning!(
            self,
            gst::ResourceError::Write,
            (
                "Soniox has not finalized the last {} s of audio: older audio would be lost if the connection broke now",
                settings::REPLAY_LIMIT.as_secs()
            ),
            ["session {}: the replay buffer forgot {} ms", id, forgotten_ms]
        );
    }

    pub fn warn_drain_timeout(&self, id: u32) {
        gst::element_imp_warning!(
            self,
            gst::ResourceError::Read,
            ("Soniox did not finish within drain-timeout: the last words were pushed as they were"),
            ["session {}", id]
        );
    }

    /// The drain deadline passed while reconnecting, and some audio was never made final.
    pub fn warn_untranscribed(&self, id: u32, reason: &str, untranscribed_ms: u64) {
        gst::element_imp_warning!(
            self,
            gst::ResourceError::Read,
            (
                "Soniox did not finish within drain-timeout while reconnecting ({}): {:.1} s of audio were never transcribed; the last words were pushed as they were",
                reason,
                untranscribed_ms as f64 / 1000.0
            ),
            ["session {}", id]
        );
    }

    /// The drain deadline passed while reconnecting, and Soniox made nothing final at all.
    pub fn fail_untranscribed(&self, id: u32, reason: &str, untranscribed_ms: u64) {
        let text = format!(
            "Soniox transcribed none of the audio: drain-timeout passed while reconnecting ({reason})"
        );
        let debug = format!(
            "session {id}: {:.1} s of audio were never transcribed",
            untranscribed_ms as f64 / 1000.0
        );
        gst::warning!(CAT, imp = self, "{text}");
        let message = self.error_message(gst::ResourceError::Failed, &text, &debug);
        let _ = self.obj().post_message(message);
    }

    /// A session failed: post the error and make the chain return it. Called on the runtime.
    fn session_failed(&self, id: u32, error: &SessionError) {
        if self.is_flushing() {
            return;
        }
        // Post first: once the flow is set, the chain returns ERROR and upstream posts its
        // own, less helpful error.
        self.post_session_error(id, error);
        self.state().flow = Some(gst::FlowError::Error);
    }

    fn post_session_error(&self, id: u32, error: &SessionError) {
        let text = error.to_string();
        // After retries, the last failure says what kind of problem it is.
        let cause = match error {
            SessionError::GaveUp { last, .. } => last.as_ref(),
            other => other,
        };
        let debug = match cause.service() {
            Some(e) => format!(
                "session {id}, request id {}",
                e.request_id.as_deref().unwrap_or("unknown")
            ),
            None => format!("session {id}"),
        };
        gst::warning!(CAT, imp = self, "session {id} failed: {text}");
        let message = match cause {
            _ if cause
                .service()
                .is_some_and(|e| matches!(e.code, Some(401 | 403))) =>
            {
                self.error_message(gst::ResourceError::NotAuthorized, &text, &debug)
            }
            SessionError::NoKey | SessionError::KeyUnavailable(_) => {
                self.error_message(gst::ResourceError::NotAuthorized, &text, &debug)
            }
            _ if cause.service().is_some_and(|e| e.code == Some(400)) => {
                self.error_message(gst::LibraryError::Settings, &text, &debug)
            }
            SessionError::Connect { .. }
            | SessionError::Tls { .. }
            | SessionError::InvalidUrl { .. } => {
                self.error_message(gst::ResourceError::OpenReadWrite, &text, &debug)
            }
            _ => self.error_message(gst::ResourceError::Failed, &text, &debug),
        };
        let _ = self.obj().post_message(message);
    }

    fn error_message<T: gst::MessageErrorDomain>(
        &self,
        domain: T,
        text: &str,
        debug: &str,
    ) -> gst::Message {
        gst::message::Error::builder(domain, text)
            .debug(debug)
            .src(&*self.obj())
            .build()
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
