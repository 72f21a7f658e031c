// SPDX-License-Identifier: MPL-2.0
//! The sink side of `sonioxstt`: audio into the current session's queue (opening and
//! rotating sessions), serialized events in order to the src task, caps and segment changes
//! that drain the session, finalize requests and input gaps.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use gst::prelude::*;
use gst::subclass::prelude::*;

use super::format::{self, AudioFormat};
use super::imp::{SonioxStt, CAT};
use super::keys::SignalKeys;
use super::messages::{self, SessionLife};
use super::output::{self, Item};
use super::{plan, settings, Mode};
use crate::soniox::audio_queue::{AudioQueue, Overflow, Queued};
use crate::soniox::batch::job::JobConfig;
use crate::soniox::batch::rest::RestClient;
use crate::soniox::batch::task::{JobSession, Limits};
use crate::soniox::credentials::{Credentials, KeySource};
use crate::soniox::session::{
    sends_key_in_clear, ApiKey, Pacing, Reported, SessionConfig, SessionEvent, SessionHandle, Work,
};
use crate::transcript::token::Token;

/// See [`ActiveSession::endpoint_pts`].
const NO_ENDPOINT: u64 = u64::MAX;
/// Audio this close after an endpoint (ns) is taken to be in the pause that followed it.
const ENDPOINT_FRESH_NS: u64 = 500_000_000;

/// Audio this much past a change of the translation pads rotates even without a pause (the
/// element tells a pause only from a fresh endpoint, which non-live input, sent ahead of
/// what Soniox has heard, rarely gives).
const CHANGE_WITHOUT_PAUSE: Duration = Duration::from_secs(5);

/// A stream's Soniox sessions, fed the same audio: the one that transcribes (and translates
/// into the first target), and one per further one-way target (contract §4a).
#[derive(Debug)]
pub(super) struct ActiveSession {
    /// Counts the element's sessions (a session may use several connections).
    id: u32,
    format: AudioFormat,
    pub(super) handle: SessionHandle,
    /// The sessions that only translate, with their numbers.
    extra: Vec<(u32, SessionHandle)>,
    /// The queues of all its sessions, the transcribing one first: what the chain feeds,
    /// built once (not per buffer).
    queues: Arc<[Arc<AudioQueue>]>,
    live: bool,
    started: Instant,
    /// Audio queued for it, in bytes.
    pushed: u64,
    /// Input time (ns) up to which Soniox had heard when it last reported an endpoint
    /// ([`NO_ENDPOINT`]: none yet): right after it is a pause, a good moment to rotate.
    endpoint_pts: Arc<AtomicU64>,
    /// The translation pads as they were when it started (see
    /// `SonioxStt::translation_generation`), and `pushed` when they were seen to change.
    generation: u64,
    changed_at: Option<u64>,
    /// `mode=async`: how far each of its jobs got (also updated on the runtime).
    jobs: Vec<Arc<std::sync::Mutex<messages::JobProgress>>>,
}

impl ActiveSession {
    pub(super) fn queue(&self) -> &Arc<AudioQueue> {
        self.handle.queue()
    }

    /// `mode=async`: says on the bus that its running jobs are abandoned.
    pub(super) fn cancel_jobs(&self, imp: &SonioxStt) {
        for job in &self.jobs {
            imp.post_job_cancelled(&mut job.lock().unwrap());
        }
    }

    /// The queues of all its sessions; the transcribing one first.
    pub(super) fn queues(&self) -> impl Iterator<Item = &Arc<AudioQueue>> {
        self.queues.iter()
    }

    /// The numbers of all its sessions.
    pub(super) fn ids(&self) -> impl Iterator<Item = u32> + '_ {
        std::iter::once(self.id).chain(self.extra.iter().map(|(id, _)| *id))
    }

    pub(super) fn is_finished(&self) -> bool {
        self.handle.is_finished() && self.extra.iter().all(|(_, h)| h.is_finished())
    }

    /// Whether the audio at `next_pts` comes right after an endpoint: in a pause.
    fn in_pause(&self, next_pts: Option<u64>) -> bool {
        let endpoint = self.endpoint_pts.load(Ordering::Relaxed);
        next_pts.is_some_and(|pts| {
            endpoint != NO_ENDPOINT && pts.saturating_sub(endpoint) <= ENDPOINT_FRESH_NS
        })
    }

    /// Whether the session has carried enough audio (live: time) to hand over to a new
    /// one before the audio at `next_pts`. Within the last tenth before `limit` (at most
    /// 60 s), it hands over where the audio is right after an endpoint, so that the cut
    /// falls in a pause and no word is split between the sessions; at `limit` in any case.
    pub(super) fn due_for_rotation(&self, limit: Duration, next_pts: Option<u64>) -> bool {
        let carried = if self.live {
            self.started.elapsed()
        } else {
            Duration::from_nanos(self.handle.queue().duration_ns(self.pushed))
        };
        let early = limit.saturating_sub((limit / 10).min(Duration::from_secs(60)));
        carried >= limit || (carried >= early && self.in_pause(next_pts))
    }

    /// Whether the translation pads changed since the session started (generation
    /// `current` now) and the audio at `next_pts` is a clean cut for a new session: in a
    /// pause, or [`CHANGE_WITHOUT_PAUSE`] after the change if no pause came.
    fn due_for_change(&mut self, current: u64, next_pts: Option<u64>) -> bool {
        if self.generation == current {
            return false;
        }
        let since = *self.changed_at.get_or_insert(self.pushed);
        let waited = Duration::from_nanos(self.queue().duration_ns(self.pushed - since));
        self.in_pause(next_pts) || waited >= CHANGE_WITHOUT_PAUSE
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

impl SonioxStt {
    // ---- input: audio -------------------------------------------------------------------

    pub(super) fn sink_chain(
        &self,
        buffer: gst::Buffer,
    ) -> Result<gst::FlowSuccess, gst::FlowError> {
        let pts = buffer.pts().map(gst::ClockTime::nseconds);
        let queues = self.session_for_audio(buffer.size() as u64, pts)?;
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
        // Every session of the stream gets the same bytes.
        let audio = Bytes::from_owner(audio);
        let mut dropping = None;
        for queue in queues.iter() {
            let pushed = queue
                .push_audio(pts, discont, audio.clone())
                .map_err(|_| self.flow_after_session_loss())?;
            if pushed.started_dropping && dropping.is_none() {
                dropping = Some((queue, pushed));
            }
        }
        if let Some((queue, pushed)) = dropping {
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
    pub(super) fn flow_after_session_loss(&self) -> gst::FlowError {
        let state = self.state();
        match state.check_flow() {
            Err(flow) => flow,
            // The session failed; the src task posts the error.
            Ok(()) => gst::FlowError::Error,
        }
    }

    /// The queues of the sessions that take the next `len` bytes of audio; opens them (or
    /// rotates to new ones) when needed.
    pub(super) fn session_for_audio(
        &self,
        len: u64,
        pts: Option<u64>,
    ) -> Result<Arc<[Arc<AudioQueue>]>, gst::FlowError> {
        let limit = self.settings.lock().unwrap().max_session_duration();
        let generation = self.translation_generation.load(Ordering::Relaxed);
        let rotate = {
            let mut state = self.state();
            state.check_flow()?;
            match &mut state.session {
                Some(session) => {
                    if session.due_for_rotation(limit, pts) {
                        Some((session.id, "max-session-duration"))
                    } else if session.due_for_change(generation, pts) {
                        Some((session.id, "translation pads changed"))
                    } else {
                        session.pushed += len;
                        return Ok(session.queues.clone());
                    }
                }
                None => None,
            }
        };
        if let Some((id, reason)) = rotate {
            gst::info!(CAT, imp = self, "session {id}: {reason}: rotating");
            let connection = self.state().connections.load(Ordering::Relaxed);
            self.drain_session();
            self.post(messages::session(SessionLife::Rotated, connection, reason));
        }
        let queues = self.start_session()?;
        if let Some(session) = self.state().session.as_mut() {
            session.pushed += len;
        }
        Ok(queues)
    }

    /// Opens the sessions for the first buffer of a stream (or after a caps change, or a
    /// rotation): the transcription session and one per further translation target.
    pub(super) fn start_session(&self) -> Result<Arc<[Arc<AudioQueue>]>, gst::FlowError> {
        let settings = self.settings();
        let format = self.state().format.ok_or(gst::FlowError::NotNegotiated)?;
        let generation = self.translation_generation.load(Ordering::Relaxed);
        let members =
            plan::plan(settings.translation, &self.translation_pads()).map_err(|reason| {
                gst::element_imp_error!(self, gst::CoreError::Negotiation, ("{}", reason));
                gst::FlowError::Error
            })?;
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
        let mut requests = Vec::with_capacity(members.len());
        for member in &members {
            let request = settings
                .start_request(&format, member.translation.clone())
                .map_err(|reason| {
                    gst::element_imp_error!(self, gst::LibraryError::Settings, ("{}", reason));
                    gst::FlowError::Error
                })?;
            requests.push(request);
        }
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
                fixed: fixed.clone(),
                fresh: Some(keys),
            },
            start_request: requests[0].clone(),
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
            send_grid: live.then_some(settings::SEND_GRID),
        };
        // What is queued goes out in frames of up to 120 ms, on frame bounds.
        let merge_bytes = {
            let frame = u64::from(format.bytes_per_frame).max(1);
            (bytes_per_second * settings::MERGED_FRAME.as_millis() as u64 / 1000 / frame * frame)
                .max(frame)
        };
        let new_queue = || {
            Arc::new(
                if live {
                    let limit = settings::LIVE_QUEUE.as_secs() * bytes_per_second;
                    // While the connection is suspect or being replaced: up to the replay window.
                    let hold = settings::REPLAY_LIMIT.as_secs() * bytes_per_second;
                    AudioQueue::new(Overflow::DropOldest, limit, bytes_per_second)
                        .holding_up_to(hold)
                } else {
                    let limit =
                        settings::NON_LIVE_QUEUE.as_millis() as u64 * bytes_per_second / 1000;
                    AudioQueue::new(Overflow::Block, limit, bytes_per_second)
                }
                .merging_up_to(merge_bytes),
            )
        };

        let job_sessions = match settings.mode {
            Mode::Realtime => None,
            Mode::Async => Some(self.job_sessions(&settings, &format, &members, live, &fixed)?),
        };

        let mut state = self.state();
        state.check_flow()?;
        let output = state.output.clone().ok_or(gst::FlowError::Flushing)?;
        state.forget_finished();
        let endpoint_pts = Arc::new(AtomicU64::new(NO_ENDPOINT));
        let mut handles = Vec::with_capacity(members.len());
        let mut jobs = Vec::new();
        for (member, start_request) in members.into_iter().zip(requests) {
            state.sessions_started += 1;
            let id = state.sessions_started;
            gst::info!(
                CAT,
                imp = self,
                "starting session {id}: {} ({} Hz), {}, live {live}, translation {:?}",
                format.soniox,
                format.rate,
                config.url,
                start_request.translation
            );
            let config = SessionConfig {
                start_request,
                ..config.clone()
            };
            let element = self.obj().downgrade();
            // Only the transcription session's endpoints mark pauses.
            let seen_endpoint = member.transcribes.then(|| endpoint_pts.clone());
            let connections = state.connections.clone();
            let member = Arc::new(member);
            let queue = new_queue();
            let job = job_sessions
                .as_ref()
                .map(|jobs| jobs[handles.len()].clone());
            // mode=async: how far the job got, for its `error` stage.
            let progress = job
                .is_some()
                .then(|| Arc::new(std::sync::Mutex::new(messages::JobProgress::default())));
            jobs.extend(progress.clone());
            let wrap = move |r: Reported| {
                match (&r.event, element.upgrade()) {
                    (SessionEvent::Job(event), _) => {
                        if let Some(progress) = &progress {
                            progress.lock().unwrap().note(event);
                        }
                    }
                    (SessionEvent::Failed(error), Some(element)) => {
                        if let Some(progress) = &progress {
                            element.imp().post_job_failed(&mut progress.lock().unwrap());
                        }
                        // At once, ahead of queued words: the chain must not fail first.
                        element.imp().session_failed(r.connection, error);
                    }
                    (SessionEvent::Results(results), _)
                        if results.tokens.iter().any(|t| t.text == Token::END) =>
                    {
                        if let (Some(seen), Some(pts)) = (&seen_endpoint, results.heard) {
                            seen.store(pts, Ordering::Relaxed);
                        }
                    }
                    _ => {}
                }
                Item::Session {
                    session: id,
                    connection: r.connection,
                    live,
                    member: member.clone(),
                    event: r.event,
                }
            };
            let work = match job {
                Some(job) => Work::Job(job),
                None => Work::Realtime(Box::new(config)),
            };
            let handle = SessionHandle::spawn(work, queue, connections, output.clone(), wrap);
            handles.push((id, handle));
        }
        let mut handles = handles.into_iter();
        let (id, handle) = handles.next().expect("a plan has a transcription session");
        let extra: Vec<(u32, SessionHandle)> = handles.collect();
        let queues: Arc<[Arc<AudioQueue>]> = std::iter::once(handle.queue())
            .chain(extra.iter().map(|(_, h)| h.queue()))
            .cloned()
            .collect();
        state.session = Some(ActiveSession {
            id,
            format,
            handle,
            extra,
            queues: queues.clone(),
            live,
            started: Instant::now(),
            pushed: 0,
            endpoint_pts,
            generation,
            changed_at: None,
            jobs,
        });
        Ok(queues)
    }

    /// `mode=async`: a job per session of the plan; refused for live input or without a
    /// permanent key.
    fn job_sessions(
        &self,
        settings: &settings::Settings,
        format: &AudioFormat,
        members: &[plan::Member<gst::Pad>],
        live: bool,
        key: &Option<ApiKey>,
    ) -> Result<Vec<JobSession>, gst::FlowError> {
        let fail = |text: String| {
            gst::element_imp_error!(self, gst::StreamError::Failed, ("{}", text));
            gst::FlowError::Error
        };
        if live {
            return Err(fail(
                "mode=async transcribes whole files, and this input is live: use mode=realtime"
                    .into(),
            ));
        }
        let Some(key) = key.clone() else {
            return Err(fail(format!(
                "mode=async needs a permanent API key (api-key or {}): Soniox's REST API refuses temporary keys",
                settings::API_KEY_ENV
            )));
        };
        let client =
            RestClient::new(&settings.rest_endpoint(), key).map_err(|e| fail(e.to_string()))?;
        members
            .iter()
            .map(|member| {
                let request = settings
                    .transcription_request(member.translation.clone())
                    .map_err(fail)?;
                Ok(JobSession {
                    job: JobConfig {
                        client: client.clone(),
                        request,
                        timeout: settings.async_timeout(),
                        first_poll: Duration::from_secs(1),
                    },
                    format: format.soniox,
                    rate: format.rate,
                    channels: format.channels as u16,
                    bytes_per_second: format.bytes_per_second(),
                    limits: Limits::SONIOX,
                })
            })
            .collect()
    }

    pub(super) fn upstream_is_live(&self) -> bool {
        let mut query = gst::query::Latency::new();
        self.sinkpad.peer_query(&mut query) && query.result().0
    }

    /// Ends the audio of the current session; it drains on its own. Returns the sessions
    /// that have not ended yet.
    pub(super) fn end_audio(&self) -> Vec<u32> {
        let mut state = self.state();
        state.forget_finished();
        if let Some(session) = state.session.take() {
            for queue in session.queues() {
                let _ = queue.push_control(Queued::EndOfAudio);
            }
            state.draining.push(session);
        }
        state.draining.iter().flat_map(ActiveSession::ids).collect()
    }

    /// Ends the current session's audio and holds everything after it until it has drained.
    pub(super) fn drain_session(&self) {
        let after = self.end_audio();
        if !after.is_empty() {
            gst::debug!(CAT, imp = self, "draining sessions {after:?}");
            self.send_item(Item::Drain { after });
        }
    }

    /// Asks the current session to finalize what it has, in order with the audio queued so
    /// far. Never blocks.
    pub(super) fn request_finalize(&self) {
        let state = self.state();
        match &state.session {
            Some(session) => {
                gst::debug!(CAT, imp = self, "finalize requested");
                for queue in session.queues() {
                    let _ = queue.push_control(Queued::Finalize);
                }
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
    pub(super) fn input_gap(&self, event: gst::Event) -> bool {
        let gst::EventView::Gap(gap) = event.view() else {
            return false;
        };
        let (pts, duration) = gap.get();
        let gap = Queued::Gap {
            pts: pts.nseconds(),
            duration: duration.map(gst::ClockTime::nseconds),
        };
        let queued = self.state().session.as_ref().is_some_and(|session| {
            session
                .queues()
                .map(|queue| queue.push_control(gap.clone()).is_ok())
                .fold(false, |any, ok| any | ok)
        });
        queued || self.send_item(Item::Event(event))
    }

    // ---- input: events -------------------------------------------------------------------

    pub(super) fn sink_event(&self, pad: &gst::Pad, event: gst::Event) -> bool {
        use gst::EventView;
        gst::log!(CAT, obj = pad, "handling {event:?}");
        match event.view() {
            EventView::FlushStart(_) => {
                let ret = self.push_to_all_src_pads(&event);
                self.stop_streaming();
                ret
            }
            EventView::FlushStop(_) => {
                self.reset_stream();
                let ret = self.push_to_all_src_pads(&event);
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
                // Settings (and the transcriberbin around the element) are read only when
                // the tag is still to be sent.
                if let Some(language) = tag.then(|| self.settings().known_language()).flatten() {
                    self.send_item(Item::Event(output::language_tag(&language)));
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

    pub(super) fn set_caps(&self, caps: &gst::CapsRef) -> bool {
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

    /// Pushes a flush event on `src` and every translation pad.
    fn push_to_all_src_pads(&self, event: &gst::Event) -> bool {
        let mut ok = true;
        for pad in self.obj().src_pads() {
            ok &= pad.push_event(event.clone());
        }
        ok
    }

    /// Queues an item for the src task (from the streaming thread: may wait for room).
    pub(super) fn send_item(&self, item: Item) -> bool {
        let output = self.state().output.clone();
        output.is_some_and(|output| output.blocking_send(item).is_ok())
    }
}
