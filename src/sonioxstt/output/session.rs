// SPDX-License-Identifier: MPL-2.0
//! One Soniox session's output: its events go to each of its lanes — `src` for the
//! transcription session, and every translation pad it feeds (contract §4a) — each of which
//! turns tokens into words or cues and pushes them through its pad's writer with GAPs over
//! the time no text can cover any more. It lives across the session's connections
//! (reconnects, replays).
//!
//! [`Lane::advance`] is the one place that decides how far a pad's GAPs may go: what Soniox
//! has finalized, not past a word still being assembled, a translation still awaited, nor a
//! cue still open.

use std::time::Instant;

use gst::subclass::prelude::*;

use super::super::imp::{SonioxStt, CAT};
use super::super::messages::{self, SessionLife, TranslationText};
use super::super::plan::Member;
use super::lane::{Context, InputGap, Lane, Source, Target};
use super::writer::{PadWriter, Writers};
use crate::soniox::batch::job::JobEvent;
use crate::soniox::batch::task;
use crate::soniox::event::Results;
use crate::soniox::session::SessionEvent;
use crate::transcript::cues::Limits;
use crate::transcript::token::Token;
use crate::transcript::translation::Translator;
use crate::transcript::words::WordAssembler;

/// How a session event left the session.
#[derive(Debug, PartialEq, Eq)]
pub enum Life {
    Running,
    /// No more output: what waited for it may go.
    Ended,
}

pub struct SessionOutput {
    ctx: Context,
    /// Its original words are the programme's (`src`, the bus); otherwise it only translates.
    transcribes: bool,
    lanes: Vec<Lane>,
    /// The non-final tail of a broken connection: pushed as it was if the drain times out
    /// before a new connection says anything; cleared by the first tokens of the next.
    unconfirmed: Vec<Token>,
    /// Words out on `src` so far (over all connections).
    words: u64,
    /// The interim texts last posted on the bus.
    posted_interim: String,
    posted_translation_interim: String,
    /// `mode=async`: what the job reported so far.
    job: JobState,
}

/// A `mode=async` job as the bus hears of it.
#[derive(Default)]
struct JobState {
    progress: messages::JobProgress,
    /// Upload progress is posted by each tenth.
    posted_tenth: u64,
}

impl SessionOutput {
    pub fn new(
        connection: u32,
        live: bool,
        member: &Member<gst::Pad>,
        cues: Option<Limits>,
    ) -> SessionOutput {
        let mut lanes = Vec::with_capacity(member.lanes.len() + 1);
        if member.transcribes {
            lanes.push(Lane::new(
                Target::Src,
                Source::Words(WordAssembler::new()),
                cues,
            ));
        }
        for lane in &member.lanes {
            lanes.push(Lane::new(
                Target::Translation(lane.pad.clone()),
                Source::Translation(Translator::new(&lane.language, lane.direction)),
                cues,
            ));
        }
        SessionOutput {
            ctx: Context {
                connection,
                live,
                settled: None,
                origin: None,
            },
            transcribes: member.transcribes,
            lanes,
            unconfirmed: Vec::new(),
            words: 0,
            posted_interim: String::new(),
            posted_translation_interim: String::new(),
            job: JobState::default(),
        }
    }

    /// Runs `f` on every lane with its pad's writer (lanes whose pad is gone are skipped).
    fn each_lane(
        &mut self,
        imp: &SonioxStt,
        writers: &mut Writers,
        mut f: impl FnMut(&mut Lane, &mut PadWriter, &Context) -> Result<(), gst::FlowError>,
    ) -> Result<(), gst::FlowError> {
        let ctx = self.ctx;
        for lane in &mut self.lanes {
            let language = match &lane.source {
                Source::Translation(translator) => Some(translator.language().to_string()),
                Source::Words(_) => None,
            };
            let Some(pad) = writers.get(imp, &lane.target, language.as_deref()) else {
                continue;
            };
            let result = f(lane, pad, &ctx);
            writers.judge(imp, &lane.target, result)?;
        }
        Ok(())
    }

    /// Handles one event of connection `connection`.
    pub fn handle(
        &mut self,
        imp: &SonioxStt,
        writers: &mut Writers,
        connection: u32,
        event: SessionEvent,
    ) -> Result<Life, gst::FlowError> {
        if connection != self.ctx.connection {
            self.ctx.connection = connection;
            self.ctx.origin = None;
            for lane in &mut self.lanes {
                lane.discont = true;
            }
        }
        let id = connection;
        match event {
            SessionEvent::Connected => {
                gst::info!(CAT, imp = imp, "session {id} connected");
                imp.post(messages::session(SessionLife::Connected, id, ""));
            }
            SessionEvent::Results(results) => self.results(imp, writers, results)?,
            SessionEvent::InputGap {
                after,
                origin,
                pts,
                duration,
            } => {
                self.ctx.origin = self.ctx.origin.or(origin);
                let gap = InputGap {
                    after,
                    pts,
                    duration,
                };
                self.each_lane(imp, writers, |lane, pad, ctx| {
                    lane.input_gap(gap);
                    lane.advance(imp, pad, ctx, false)
                })?;
            }
            SessionEvent::ReplayOverflow { forgotten_ms } => {
                imp.warn_replay_overflow(id, forgotten_ms);
            }
            SessionEvent::Reconnecting {
                error,
                attempt,
                delay,
            } => {
                let mut unconfirmed = Vec::new();
                self.each_lane(imp, writers, |lane, pad, ctx| {
                    let out = match &mut lane.source {
                        // What was final is pushed; the rest comes again from the replay.
                        Source::Words(assembler) => {
                            unconfirmed = assembler.take_interim();
                            assembler.break_connection()
                        }
                        Source::Translation(translator) => translator.break_connection(),
                    };
                    lane.emit(imp, pad, ctx, out)
                })?;
                if !unconfirmed.is_empty() {
                    self.unconfirmed = unconfirmed;
                }
                imp.warn_reconnecting(id, &error, attempt, delay);
                imp.post(messages::session(
                    SessionLife::Reconnecting,
                    id,
                    &error.to_string(),
                ));
            }
            SessionEvent::Finished => {
                self.finish(imp, writers, false)?;
                gst::info!(CAT, imp = imp, "session {id} finished");
                imp.post(messages::session(SessionLife::Finished, id, ""));
                return Ok(Life::Ended);
            }
            SessionEvent::DrainTimedOut(unfinished) => {
                self.finish(imp, writers, true)?;
                match &unfinished.reconnecting {
                    // Not a word, not even silence made final: that is a failure, not an end.
                    Some(reason)
                        if self.transcribes
                            && self.words == 0
                            && !unfinished.finalized_any
                            && unfinished.untranscribed_ms > 0 =>
                    {
                        imp.fail_untranscribed(id, reason, unfinished.untranscribed_ms);
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
                return Ok(Life::Ended);
            }
            SessionEvent::Failed(_) => {
                // Already posted when it happened (see `SonioxStt::session_failed`).
                return Err(gst::FlowError::Error);
            }
            SessionEvent::Job(event) => self.job(imp, &event),
        }
        Ok(Life::Running)
    }

    /// The session ended: everything held goes out. `timed_out`: the drain timed out, and
    /// the non-final tail of the transcription is taken as it is.
    fn finish(
        &mut self,
        imp: &SonioxStt,
        writers: &mut Writers,
        timed_out: bool,
    ) -> Result<(), gst::FlowError> {
        let mut unconfirmed = std::mem::take(&mut self.unconfirmed);
        let mut words = 0;
        self.each_lane(imp, writers, |lane, pad, ctx| {
            let out = match &mut lane.source {
                Source::Words(assembler) if timed_out => {
                    // No new connection said anything: the broken one's tail, as it was.
                    if !unconfirmed.is_empty() {
                        assembler.restore_interim(std::mem::take(&mut unconfirmed));
                    }
                    assembler.finish_with_interim()
                }
                Source::Words(assembler) => assembler.finish(),
                Source::Translation(translator) => {
                    let (out, lost) = translator.finish();
                    if lost.spans > 0 {
                        imp.warn_translation_missing(translator.language(), lost.spans);
                    }
                    out
                }
            };
            if !lane.is_translation() {
                words += count_words(&out);
            }
            lane.emit(imp, pad, ctx, out)?;
            lane.advance(imp, pad, ctx, true)
        })?;
        self.words += words;
        Ok(())
    }

    fn results(
        &mut self,
        imp: &SonioxStt,
        writers: &mut Writers,
        results: Results,
    ) -> Result<(), gst::FlowError> {
        self.ctx.origin = self.ctx.origin.or(results.origin);
        if results.settled.is_some() {
            self.ctx.settled = self.ctx.settled.max(results.settled);
        }
        if !results.tokens.is_empty() {
            // This connection heard the replayed audio again: its words replace the old tail.
            self.unconfirmed.clear();
        }
        let translation = TranslationText::of(&results.tokens);
        let mut fed_text = None;
        let mut words = 0;
        self.each_lane(imp, writers, |lane, pad, ctx| {
            let out = match &mut lane.source {
                Source::Words(assembler) => {
                    let fed = assembler.feed(&results.tokens);
                    fed_text = Some((fed.final_text, fed.interim_text));
                    fed.out
                }
                Source::Translation(translator) => {
                    if let Some(settled) = results.settled {
                        translator.settle(settled);
                    }
                    translator.feed(&results.tokens)
                }
            };
            if !lane.is_translation() {
                words += count_words(&out);
            }
            lane.emit(imp, pad, ctx, out)?;
            lane.advance(imp, pad, ctx, false)
        })?;
        self.words += words;
        self.post_transcript(imp, &results, fed_text, translation);
        Ok(())
    }

    /// Only news goes on the bus: new final text, or an interim tail that changed. A
    /// session that only translates posts its translation, not its originals (`src`'s).
    fn post_transcript(
        &mut self,
        imp: &SonioxStt,
        results: &Results,
        fed: Option<(String, String)>,
        translation: Option<TranslationText>,
    ) {
        if results.tokens.is_empty() {
            return;
        }
        let (final_text, interim_text) = fed.unwrap_or_default();
        let mut news = !final_text.is_empty() || interim_text != self.posted_interim;
        if let Some(t) = &translation {
            news |= !t.final_text.is_empty() || t.interim_text != self.posted_translation_interim;
            self.posted_translation_interim.clone_from(&t.interim_text);
        }
        if !news {
            return;
        }
        self.posted_interim.clone_from(&interim_text);
        let connection = self.ctx.connection;
        let transcribes = self.transcribes;
        imp.post_with(|| {
            messages::transcript(
                results,
                &final_text,
                &interim_text,
                translation.as_ref(),
                transcribes,
                connection,
            )
        });
    }

    /// A stage of a `mode=async` job: `soniox/job`, and a GStreamer `progress` message.
    fn job(&mut self, imp: &SonioxStt, event: &JobEvent) {
        let job = &mut self.job;
        let last = job.progress.stage;
        job.progress.note(event);
        if let JobEvent::Uploading { sent, total, .. } = event {
            let tenth = sent * 10 / (*total).max(1);
            if last == job.progress.stage && tenth == job.posted_tenth && sent < total {
                return;
            }
            job.posted_tenth = tenth;
        }
        let stage = task::stage(event);
        imp.post(job.progress.message(stage));
        let kind = match event {
            _ if last.is_none() => gst::ProgressType::Start,
            JobEvent::Completed => gst::ProgressType::Complete,
            _ => gst::ProgressType::Continue,
        };
        imp.post_progress(kind, stage);
    }

    /// When held text must go out (live only), over all lanes.
    pub fn deadline(&self, imp: &SonioxStt) -> Option<Instant> {
        self.lanes
            .iter()
            .filter_map(|lane| lane.deadline(&self.ctx, lane.budget(imp)))
            .min()
    }

    /// Pushes what is held past its deadline.
    pub fn expire(
        &mut self,
        imp: &SonioxStt,
        writers: &mut Writers,
        now: Instant,
    ) -> Result<(), gst::FlowError> {
        if !self.ctx.live {
            return Ok(());
        }
        self.each_lane(imp, writers, |lane, pad, ctx| {
            lane.expire(imp, pad, ctx, now)
        })
    }
}

fn count_words(out: &[crate::transcript::words::Assembled]) -> u64 {
    out.iter()
        .filter(|a| matches!(a, crate::transcript::words::Assembled::Word(_)))
        .count() as u64
}
