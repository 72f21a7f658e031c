// SPDX-License-Identifier: MPL-2.0
//! One element session's output: its tokens become words (and, with `granularity=sentence`,
//! cues), which go out through the pad's writer with GAPs over the time no text can cover
//! any more. It lives across the session's connections (reconnects, replays).
//!
//! [`SessionOutput::settled`] is the one place that decides how far GAPs may go: what Soniox
//! has finalized, not past a word still being assembled nor a cue still open.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use gst::prelude::*;
use gst::subclass::prelude::*;

use super::super::imp::{SonioxStt, CAT};
use super::super::messages::{self, SessionLife};
use super::super::meta::WordMeta;
use super::writer::{PadWriter, Text};
use crate::soniox::event::Results;
use crate::soniox::session::SessionEvent;
use crate::transcript::cues::{Cue, CueBuilder, Limits};
use crate::transcript::token::Token;
use crate::transcript::words::{Assembled, Boundary, Word, WordAssembler};

/// A live cue goes out this much before its last word's deadline, at most.
const DEADLINE_MARGIN: Duration = Duration::from_millis(200);

/// What a session's output does with its words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    Words,
    Cues(Limits),
}

/// How a session event left the session.
#[derive(Debug, PartialEq, Eq)]
pub enum Life {
    Running,
    /// No more output: what waited for it may go.
    Ended,
}

pub struct SessionOutput {
    /// The connection whose events came last (what bus messages call `session`).
    connection: u32,
    live: bool,
    assembler: WordAssembler,
    cues: Option<CueBuilder>,
    /// The non-final tail of a broken connection: pushed as it was if the drain times out
    /// before a new connection says anything; cleared by the first tokens of the next.
    unconfirmed: Vec<Token>,
    /// The next buffer is a new connection's first.
    discont: bool,
    /// Input PTS up to which Soniox has finalized the audio.
    settled: Option<u64>,
    /// Input PTS up to which words or GAPs went out.
    covered: Option<u64>,
    /// Where the current connection's audio starts.
    origin: Option<u64>,
    /// GAP events from the input, waiting for the words before them.
    input_gaps: VecDeque<InputGap>,
    /// Words out so far (over all connections).
    words: u64,
    /// The interim text last posted on the bus.
    posted_interim: String,
}

struct InputGap {
    after: Option<u64>,
    pts: u64,
    duration: Option<u64>,
}

impl SessionOutput {
    pub fn new(connection: u32, live: bool, shape: Shape) -> SessionOutput {
        SessionOutput {
            connection,
            live,
            assembler: WordAssembler::new(),
            cues: match shape {
                Shape::Words => None,
                Shape::Cues(limits) => Some(CueBuilder::new(limits)),
            },
            unconfirmed: Vec::new(),
            discont: true,
            settled: None,
            covered: None,
            origin: None,
            input_gaps: VecDeque::new(),
            words: 0,
            posted_interim: String::new(),
        }
    }

    /// Handles one event of connection `connection`.
    pub fn handle(
        &mut self,
        imp: &SonioxStt,
        pad: &mut PadWriter,
        connection: u32,
        event: SessionEvent,
    ) -> Result<Life, gst::FlowError> {
        if connection != self.connection {
            self.connection = connection;
            self.discont = true;
            self.origin = None;
        }
        let id = connection;
        match event {
            SessionEvent::Connected => {
                gst::info!(CAT, imp = imp, "session {id} connected");
                imp.post(messages::session(SessionLife::Connected, id, ""));
            }
            SessionEvent::Results(results) => self.results(imp, pad, results)?,
            SessionEvent::InputGap {
                after,
                origin,
                pts,
                duration,
            } => {
                self.origin = self.origin.or(origin);
                self.input_gaps.push_back(InputGap {
                    after,
                    pts,
                    duration,
                });
                self.advance(imp, pad, false)?;
            }
            SessionEvent::ReplayOverflow { forgotten_ms } => {
                imp.warn_replay_overflow(id, forgotten_ms);
            }
            SessionEvent::Reconnecting {
                error,
                attempt,
                delay,
            } => {
                // What was final is pushed; the rest comes again from the replay.
                let tokens = self.assembler.take_interim();
                if !tokens.is_empty() {
                    self.unconfirmed = tokens;
                }
                let out = self.assembler.break_connection();
                self.emit(imp, pad, out)?;
                imp.warn_reconnecting(id, &error, attempt, delay);
                imp.post(messages::session(
                    SessionLife::Reconnecting,
                    id,
                    &error.to_string(),
                ));
            }
            SessionEvent::Finished => {
                let out = self.assembler.finish();
                self.emit(imp, pad, out)?;
                self.advance(imp, pad, true)?;
                gst::info!(CAT, imp = imp, "session {id} finished");
                imp.post(messages::session(SessionLife::Finished, id, ""));
                return Ok(Life::Ended);
            }
            SessionEvent::DrainTimedOut(unfinished) => {
                // No new connection said anything: the broken one's tail, as it was.
                if !self.unconfirmed.is_empty() {
                    let tokens = std::mem::take(&mut self.unconfirmed);
                    self.assembler.restore_interim(tokens);
                }
                let out = self.assembler.finish_with_interim();
                self.emit(imp, pad, out)?;
                self.advance(imp, pad, true)?;
                match &unfinished.reconnecting {
                    // Not a word, not even silence made final: that is a failure, not an end.
                    Some(reason)
                        if self.words == 0
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
        }
        Ok(Life::Running)
    }

    fn results(
        &mut self,
        imp: &SonioxStt,
        pad: &mut PadWriter,
        results: Results,
    ) -> Result<(), gst::FlowError> {
        self.origin = self.origin.or(results.origin);
        let fed = self.assembler.feed(&results.tokens);
        if !results.tokens.is_empty() {
            // This connection heard the replayed audio again: its words replace the old tail.
            self.unconfirmed.clear();
            // Only news goes on the bus: new final text, or an interim tail that changed.
            if !fed.final_text.is_empty() || fed.interim_text != self.posted_interim {
                self.posted_interim.clone_from(&fed.interim_text);
                let connection = self.connection;
                imp.post_with(|| {
                    messages::transcript(&results, &fed.final_text, &fed.interim_text, connection)
                });
            }
        }
        self.emit(imp, pad, fed.out)?;
        if results.settled.is_some() {
            self.settled = self.settled.max(results.settled);
        }
        self.advance(imp, pad, false)
    }

    /// Input PTS before which nothing can reach the pad any more: what Soniox has
    /// finalized, not past a word still being assembled nor the cue still open. `MAX` once
    /// the session has no more words.
    fn settled(&self, ended: bool) -> Option<u64> {
        if ended {
            return Some(u64::MAX);
        }
        [
            self.assembler.pending_pts(),
            self.cues.as_ref().and_then(CueBuilder::held_pts),
        ]
        .into_iter()
        .flatten()
        .fold(self.settled, |s, held| s.map(|s| s.min(held)))
    }

    /// Moves the text on: closes a cue no word can join any more, then GAPs up to what is
    /// settled, and the input's own gaps once the words before them are out.
    fn advance(
        &mut self,
        imp: &SonioxStt,
        pad: &mut PadWriter,
        ended: bool,
    ) -> Result<(), gst::FlowError> {
        if let (Some(settled), Some(cues)) = (self.settled, self.cues.as_mut()) {
            if let Some(cue) = cues.settle(settled) {
                self.push_cue(imp, pad, cue)?;
            }
        }
        let settled = self.settled(ended);
        while let Some(gap) = self.input_gaps.front() {
            if gap.after > settled {
                break;
            }
            let gap = self.input_gaps.pop_front().expect("checked above");
            if let Some(after) = gap.after {
                self.gap_to(imp, pad, after);
            }
            pad.input_gap(imp, gap.pts, gap.duration);
        }
        if let (false, Some(settled)) = (ended, settled) {
            self.gap_to(imp, pad, settled);
        }
        Ok(())
    }

    /// A GAP from where the session's text got to, up to input PTS `end`.
    fn gap_to(&mut self, imp: &SonioxStt, pad: &mut PadWriter, end: u64) {
        let Some(start) = self.covered.or(self.origin) else {
            return;
        };
        if end <= start {
            return;
        }
        self.covered = Some(end);
        pad.gap_between(imp, start, end);
    }

    /// When the open cue must go out (live only).
    pub fn deadline(&self, latency: Duration) -> Option<Instant> {
        if !self.live {
            return None;
        }
        let sent = self.cues.as_ref()?.held_sent()?;
        let margin = DEADLINE_MARGIN.min(latency / 10);
        Some(sent + latency.saturating_sub(margin))
    }

    /// Pushes the open cue if its deadline has come.
    pub fn expire(
        &mut self,
        imp: &SonioxStt,
        pad: &mut PadWriter,
        now: Instant,
    ) -> Result<(), gst::FlowError> {
        if self.deadline(imp.latency()).is_some_and(|d| d <= now) {
            if let Some(cue) = self.cues.as_mut().and_then(CueBuilder::close) {
                self.push_cue(imp, pad, cue)?;
                self.advance(imp, pad, false)?;
            }
        }
        Ok(())
    }

    /// Pushes assembled words and events downstream, posts endpoint/finalized messages.
    fn emit(
        &mut self,
        imp: &SonioxStt,
        pad: &mut PadWriter,
        out: Vec<Assembled>,
    ) -> Result<(), gst::FlowError> {
        for assembled in out {
            match assembled {
                Assembled::Word(word) => self.word(imp, pad, word)?,
                Assembled::SpeakerChange(speaker) => {
                    self.close_cue(imp, pad)?;
                    pad.push_event(imp, messages::speaker_change_event(&speaker));
                }
                Assembled::Boundary { kind, text, end } => {
                    let closes = !matches!(kind, Boundary::Finalized { requested: false });
                    let cued = self.cues.is_some();
                    let pushed_cue = closes && self.close_cue(imp, pad)?;
                    // Words: after each utterance; cues: after a cue that ends one.
                    let ends_utterance = if cued {
                        closes && (pushed_cue || !text.is_empty())
                    } else {
                        !text.is_empty()
                    };
                    if ends_utterance {
                        pad.push_event(imp, messages::final_transcript_event());
                    }
                    let id = self.connection;
                    match kind {
                        Boundary::Endpoint => imp.post(messages::endpoint(end, &text, id)),
                        Boundary::Finalized { .. } => imp.post(messages::finalized(id)),
                        Boundary::EndOfStream => {}
                    }
                }
            }
        }
        Ok(())
    }

    fn word(
        &mut self,
        imp: &SonioxStt,
        pad: &mut PadWriter,
        word: Word,
    ) -> Result<(), gst::FlowError> {
        self.words += 1;
        let Some(cues) = self.cues.as_mut() else {
            if let Some(end) = word.end {
                self.covered = self.covered.max(Some(end));
            }
            let meta = WordMeta {
                confidence: word.confidence,
                speaker: word.speaker,
                language: word.language,
                session: self.connection,
            };
            let text = Text {
                text: word.text,
                pts: word.pts,
                end: word.end,
                sent: word.sent,
                discont: std::mem::take(&mut self.discont),
                meta,
            };
            return pad.push_text(imp, text, self.live);
        };
        for cue in cues.push(word) {
            self.push_cue(imp, pad, cue)?;
        }
        Ok(())
    }

    /// Pushes the open cue, if any; returns whether there was one.
    fn close_cue(&mut self, imp: &SonioxStt, pad: &mut PadWriter) -> Result<bool, gst::FlowError> {
        match self.cues.as_mut().and_then(CueBuilder::close) {
            Some(cue) => self.push_cue(imp, pad, cue).map(|()| true),
            None => Ok(false),
        }
    }

    fn push_cue(
        &mut self,
        imp: &SonioxStt,
        pad: &mut PadWriter,
        cue: Cue,
    ) -> Result<(), gst::FlowError> {
        if let Some(end) = cue.end {
            self.covered = self.covered.max(Some(end));
        }
        let name = pad.pad().name();
        imp.post_with(|| {
            messages::cue(
                &name,
                &cue.text,
                cue.pts,
                cue.end,
                cue.speaker.as_deref(),
                cue.language.as_deref(),
            )
        });
        let text = Text {
            text: cue.text,
            pts: cue.pts,
            end: cue.end,
            sent: cue.sent,
            discont: std::mem::take(&mut self.discont),
            meta: WordMeta {
                confidence: cue.confidence,
                speaker: cue.speaker,
                language: cue.language,
                session: self.connection,
            },
        };
        pad.push_text(imp, text, self.live)
    }
}
