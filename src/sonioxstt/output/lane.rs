// SPDX-License-Identifier: MPL-2.0
//! One pad's share of a session's output: its source of words (the original speech, or one
//! translation), its cues, and how far its text and GAPs have got. `src` and every
//! translation pad fed by a session have a lane each; the session's events reach them all.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use gst::prelude::*;

use super::super::imp::SonioxStt;
use super::super::messages;
use super::super::meta::WordMeta;
use super::writer::{PadWriter, Text};
use crate::transcript::cues::{split_to_fit, Cue, CueBuilder, Limits};
use crate::transcript::translation::Translator;
use crate::transcript::words::{Assembled, Boundary, Word, WordAssembler};

/// A live cue or chunk goes out this much before its deadline, at most.
const DEADLINE_MARGIN: Duration = Duration::from_millis(200);

/// Where a lane's text goes.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    Src,
    Translation(gst::Pad),
}

/// What a lane makes its words from.
pub enum Source {
    /// The original speech (`src`).
    Words(WordAssembler),
    /// One language of the translation (a translation pad).
    Translation(Translator),
}

/// A GAP from the input, waiting for the words before it.
#[derive(Debug, Clone, Copy)]
pub struct InputGap {
    pub after: Option<u64>,
    pub pts: u64,
    pub duration: Option<u64>,
}

/// What a lane needs to know of its session.
#[derive(Debug, Clone, Copy)]
pub struct Context {
    /// The connection whose events came last (what bus messages call `session`).
    pub connection: u32,
    pub live: bool,
    /// Input PTS up to which Soniox has finalized the audio.
    pub settled: Option<u64>,
    /// Where the current connection's audio starts.
    pub origin: Option<u64>,
}

pub struct Lane {
    pub target: Target,
    pub source: Source,
    cues: Option<CueBuilder>,
    max_cue_chars: usize,
    /// The next buffer is a new connection's first.
    pub discont: bool,
    /// Input PTS up to which words or GAPs went out.
    covered: Option<u64>,
    input_gaps: VecDeque<InputGap>,
}

impl Lane {
    pub fn new(target: Target, source: Source, cues: Option<Limits>) -> Lane {
        Lane {
            target,
            source,
            max_cue_chars: cues.map_or(usize::MAX, |l| l.max_chars),
            cues: cues.map(CueBuilder::new),
            discont: true,
            covered: None,
            input_gaps: VecDeque::new(),
        }
    }

    pub fn is_translation(&self) -> bool {
        matches!(self.source, Source::Translation(_))
    }

    /// The time this lane's text may take after its audio (`latency`, plus
    /// `translate-latency` for a translation).
    pub fn budget(&self, imp: &SonioxStt) -> Duration {
        match self.source {
            Source::Words(_) => imp.latency(),
            Source::Translation(_) => imp.latency() + imp.translate_latency(),
        }
    }

    pub fn input_gap(&mut self, gap: InputGap) {
        self.input_gaps.push_back(gap);
    }

    /// Input PTS before which nothing can reach the pad any more: what Soniox has
    /// finalized, not past a word being assembled, a translation awaited, nor the cue still
    /// open. `MAX` once the session has no more words.
    fn settled(&self, ctx: &Context, ended: bool) -> Option<u64> {
        if ended {
            return Some(u64::MAX);
        }
        let held = match &self.source {
            Source::Words(assembler) => assembler.pending_pts(),
            Source::Translation(translator) => translator.held_pts(),
        };
        [held, self.cues.as_ref().and_then(CueBuilder::held_pts)]
            .into_iter()
            .flatten()
            .fold(ctx.settled, |s, held| s.map(|s| s.min(held)))
    }

    /// Moves the text on: closes a cue no word can join any more, then GAPs up to what is
    /// settled, and the input's own gaps once the words before them are out.
    pub fn advance(
        &mut self,
        imp: &SonioxStt,
        pad: &mut PadWriter,
        ctx: &Context,
        ended: bool,
    ) -> Result<(), gst::FlowError> {
        // No next word can join the open cue once what is settled is a pause past it: not
        // past a word still being assembled (its end may come in a later message) nor, for
        // a translation, past what is awaiting its translation.
        let held = match &self.source {
            Source::Words(assembler) => assembler.pending_pts(),
            Source::Translation(translator) => translator.held_pts(),
        };
        let cue_settled = match held {
            Some(held) => ctx.settled.map(|s| s.min(held)),
            None => ctx.settled,
        };
        if let (Some(settled), Some(cues)) = (cue_settled, self.cues.as_mut()) {
            if let Some(cue) = cues.settle(settled) {
                self.push(imp, pad, ctx, cue, true)?;
            }
        }
        let settled = self.settled(ctx, ended);
        while let Some(gap) = self.input_gaps.front() {
            if gap.after > settled {
                break;
            }
            let gap = self.input_gaps.pop_front().expect("checked above");
            if let Some(after) = gap.after {
                self.gap_to(imp, pad, ctx, after);
            }
            pad.input_gap(imp, gap.pts, gap.duration);
        }
        if let (false, Some(settled)) = (ended, settled) {
            self.gap_to(imp, pad, ctx, settled);
        }
        Ok(())
    }

    /// A GAP from where the lane's text got to, up to input PTS `end`.
    fn gap_to(&mut self, imp: &SonioxStt, pad: &mut PadWriter, ctx: &Context, end: u64) {
        let Some(start) = self.covered.or(ctx.origin) else {
            return;
        };
        if end <= start {
            return;
        }
        self.covered = Some(end);
        pad.gap_between(imp, start, end);
    }

    /// When the lane's held text must go out (live only): the open cue by its last word's
    /// deadline, a translation by its originals'.
    pub fn deadline(&self, ctx: &Context, budget: Duration) -> Option<Instant> {
        if !ctx.live {
            return None;
        }
        let budget = budget.saturating_sub(DEADLINE_MARGIN.min(budget / 10));
        let cue = self
            .cues
            .as_ref()
            .and_then(CueBuilder::held_sent)
            .map(|sent| sent + budget);
        let translation = match &self.source {
            Source::Translation(translator) => translator.deadline(budget),
            Source::Words(_) => None,
        };
        cue.into_iter().chain(translation).min()
    }

    /// Pushes what is held past its deadline.
    pub fn expire(
        &mut self,
        imp: &SonioxStt,
        pad: &mut PadWriter,
        ctx: &Context,
        now: Instant,
    ) -> Result<(), gst::FlowError> {
        let budget = self.budget(imp);
        if self.deadline(ctx, budget).is_none_or(|d| d > now) {
            return Ok(());
        }
        if let Source::Translation(translator) = &mut self.source {
            let margin = DEADLINE_MARGIN.min(budget / 10);
            let (out, given_up) = translator.expire(now, budget.saturating_sub(margin));
            if given_up > 0 {
                imp.warn_translation_missing(translator.language(), given_up);
            }
            self.emit(imp, pad, ctx, out)?;
        }
        let cue_due = self
            .cues
            .as_ref()
            .and_then(CueBuilder::held_sent)
            .is_some_and(|sent| {
                sent + budget.saturating_sub(DEADLINE_MARGIN.min(budget / 10)) <= now
            });
        if cue_due {
            if let Some(cue) = self.cues.as_mut().and_then(CueBuilder::close) {
                self.push(imp, pad, ctx, cue, true)?;
            }
        }
        self.advance(imp, pad, ctx, false)
    }

    /// Pushes assembled words and events downstream; the transcription lane also posts
    /// endpoint and finalized messages.
    pub fn emit(
        &mut self,
        imp: &SonioxStt,
        pad: &mut PadWriter,
        ctx: &Context,
        out: Vec<Assembled>,
    ) -> Result<(), gst::FlowError> {
        for assembled in out {
            match assembled {
                Assembled::Word(word) => self.word(imp, pad, ctx, word)?,
                Assembled::SpeakerChange(speaker) => {
                    self.close_cue(imp, pad, ctx)?;
                    pad.push_event(imp, messages::speaker_change_event(&speaker));
                }
                Assembled::Boundary { kind, text, end } => {
                    let closes = !matches!(kind, Boundary::Finalized { requested: false });
                    let cued = self.cues.is_some();
                    let pushed_cue = closes && self.close_cue(imp, pad, ctx)?;
                    // Words: after each utterance; cues: after a cue that ends one.
                    let ends_utterance = if cued {
                        closes && (pushed_cue || !text.is_empty())
                    } else {
                        !text.is_empty()
                    };
                    if ends_utterance {
                        pad.push_event(imp, messages::final_transcript_event());
                    }
                    if self.is_translation() {
                        continue;
                    }
                    let id = ctx.connection;
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
        ctx: &Context,
        word: Word,
    ) -> Result<(), gst::FlowError> {
        let translated = self.is_translation();
        let Some(cues) = self.cues.as_mut() else {
            return self.push(imp, pad, ctx, Cue::from(word), false);
        };
        let parts = if translated {
            split_to_fit(word, self.max_cue_chars)
        } else {
            vec![word]
        };
        let mut done = Vec::new();
        for part in parts {
            done.extend(cues.push(part));
        }
        for cue in done {
            self.push(imp, pad, ctx, cue, true)?;
        }
        Ok(())
    }

    /// Pushes the open cue, if any; returns whether there was one.
    pub fn close_cue(
        &mut self,
        imp: &SonioxStt,
        pad: &mut PadWriter,
        ctx: &Context,
    ) -> Result<bool, gst::FlowError> {
        match self.cues.as_mut().and_then(CueBuilder::close) {
            Some(cue) => self.push(imp, pad, ctx, cue, true).map(|()| true),
            None => Ok(false),
        }
    }

    /// Pushes one buffer: a word, or a cue (`posted` on the bus as `soniox/cue`).
    fn push(
        &mut self,
        imp: &SonioxStt,
        pad: &mut PadWriter,
        ctx: &Context,
        cue: Cue,
        posted: bool,
    ) -> Result<(), gst::FlowError> {
        if posted {
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
        }
        if let Some(end) = cue.end {
            self.covered = self.covered.max(Some(end));
        }
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
                session: ctx.connection,
            },
        };
        pad.push_text(imp, text, ctx.live)
    }
}
