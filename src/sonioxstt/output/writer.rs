// SPDX-License-Identifier: MPL-2.0
//! One output pad's writer: what it pushes (buffers, GAPs, events) and where its text stream
//! has got to. Only the src task pushes through it, so nothing on a pad overtakes anything.

use std::time::{Duration, Instant};

use gst::prelude::*;
use gst::subclass::prelude::*;

use super::super::imp::{SonioxStt, CAT};
use super::super::meta::{self, WordMeta};
use super::super::TranslateSrcPad;
use super::lane::Target;

/// At most one "late word" warning per this period.
const LATE_WARNING_PERIOD: Duration = Duration::from_secs(60);

/// A time in ns as a `ClockTime`, unless it is the one value a `ClockTime` cannot hold
/// (`GST_CLOCK_TIME_NONE`): building one from it would panic.
pub fn clock_time(ns: u64) -> Option<gst::ClockTime> {
    (ns != u64::MAX).then(|| gst::ClockTime::from_nseconds(ns))
}

/// A buffer of text with its times (input PTS, ns).
pub struct Text {
    pub text: String,
    pub pts: Option<u64>,
    pub end: Option<u64>,
    /// When its audio went out (live: the delay is measured from it).
    pub sent: Option<Instant>,
    /// The first buffer of a new connection.
    pub discont: bool,
    pub meta: WordMeta,
}

pub struct PadWriter {
    pad: gst::Pad,
    /// A translation pad (its text has `translate-latency` more).
    translation: bool,
    /// The language of the last tag pushed.
    tagged: Option<String>,
    /// Where the text stream has got to (end of the last buffer or gap pushed), ns.
    position: Option<u64>,
    last_late_warning: Option<Instant>,
}

impl PadWriter {
    pub fn new(pad: gst::Pad, translation: bool) -> PadWriter {
        PadWriter {
            pad,
            translation,
            tagged: None,
            position: None,
            last_late_warning: None,
        }
    }

    /// A tag with the pad's language, unless it went out already.
    pub fn tag(&mut self, imp: &SonioxStt, language: &str) {
        if self.tagged.as_deref() == Some(language) {
            return;
        }
        self.tagged = Some(language.to_string());
        self.push_event(imp, language_tag(language));
    }

    pub fn pad(&self) -> &gst::Pad {
        &self.pad
    }

    /// Pushes a serialized event; keeps the position in step with events that move it.
    pub fn push_event(&mut self, imp: &SonioxStt, event: gst::Event) {
        self.note_event(&event);
        if !self.pad.push_event(event) {
            gst::debug!(CAT, imp = imp, "downstream refused an event");
        }
    }

    fn note_event(&mut self, event: &gst::Event) {
        match event.view() {
            gst::EventView::Gap(gap) => {
                let (pts, duration) = gap.get();
                let end = pts.nseconds() + duration.map_or(0, gst::ClockTime::nseconds);
                self.advance_to(end);
            }
            gst::EventView::Segment(_) | gst::EventView::FlushStop(_) => self.position = None,
            _ => {}
        }
    }

    fn advance_to(&mut self, end: u64) {
        self.position = Some(self.position.map_or(end, |p| p.max(end)));
    }

    /// An empty GAP at `at`: lets the sink preroll, promises nothing.
    pub fn preroll(&mut self, imp: &SonioxStt, at: u64) {
        self.push_gap(imp, self.position.map_or(at, |p| p.max(at)), Some(0));
    }

    /// A GAP from `start` (not before what was pushed already) for `duration`.
    pub fn push_gap(&mut self, imp: &SonioxStt, start: u64, duration: Option<u64>) {
        let Some(start) = clock_time(start) else {
            return;
        };
        let event = gst::event::Gap::builder(start)
            .duration(duration.and_then(clock_time))
            .build();
        gst::log!(CAT, imp = imp, "pushing {event:?} on {}", self.pad.name());
        self.push_event(imp, event);
    }

    /// A GAP over `start..end`, from where the text has got to at the earliest.
    pub fn gap_between(&mut self, imp: &SonioxStt, start: u64, end: u64) {
        let start = self.position.map_or(start, |p| p.max(start));
        if end > start {
            self.push_gap(imp, start, Some(end - start));
        }
    }

    /// A GAP event from the input, over `pts` for `duration`.
    pub fn input_gap(&mut self, imp: &SonioxStt, pts: u64, duration: Option<u64>) {
        let end = pts + duration.unwrap_or(0);
        let start = self.position.map_or(pts, |p| p.max(pts));
        self.push_gap(imp, start, end.checked_sub(start).filter(|d| *d > 0));
    }

    /// Pushes one buffer of text; in a live pipeline, measures how late it is.
    pub fn push_text(
        &mut self,
        imp: &SonioxStt,
        text: Text,
        live: bool,
    ) -> Result<(), gst::FlowError> {
        let mut buffer = gst::Buffer::from_mut_slice(text.text.into_bytes());
        {
            let buffer = buffer.get_mut().expect("a new buffer is writable");
            buffer.set_pts(text.pts.and_then(clock_time));
            buffer.set_duration(
                text.pts
                    .zip(text.end)
                    .and_then(|(p, e)| clock_time(e.saturating_sub(p))),
            );
            if text.discont {
                buffer.set_flags(gst::BufferFlags::DISCONT);
            }
            meta::attach(buffer, &text.meta);
        }
        if let Some(end) = text.end.or(text.pts) {
            self.advance_to(end);
        }
        gst::log!(CAT, imp = imp, "pushing {buffer:?} on {}", self.pad.name());
        self.pad.push(buffer)?;
        if let (true, Some(sent)) = (live, text.sent) {
            self.observe_delay(imp, sent.elapsed());
        }
        Ok(())
    }

    /// A live buffer went out `delay` after its audio did.
    fn observe_delay(&mut self, imp: &SonioxStt, delay: Duration) {
        let latency = if self.translation {
            imp.latency() + imp.translate_latency()
        } else {
            imp.note_delay(delay);
            imp.latency()
        };
        if delay > latency
            && self
                .last_late_warning
                .is_none_or(|t| t.elapsed() >= LATE_WARNING_PERIOD)
        {
            self.last_late_warning = Some(Instant::now());
            imp.warn_late(delay, latency);
        }
    }
}

/// A tag event with a `language-code`.
pub fn language_tag(language: &str) -> gst::Event {
    let mut tags = gst::TagList::new();
    tags.get_mut()
        .expect("new tag list")
        .add::<gst::tags::LanguageCode>(&language, gst::TagMergeMode::Replace);
    gst::event::Tag::new(tags)
}

/// The writers of all the element's text pads, and the sticky events a translation pad
/// requested mid-stream gets first.
pub struct Writers {
    pub src: PadWriter,
    translations: Vec<PadWriter>,
    stream_start: Option<gst::Event>,
    caps: Option<gst::Event>,
    segment: Option<gst::Event>,
}

impl Writers {
    pub fn new(src: gst::Pad) -> Writers {
        Writers {
            src: PadWriter::new(src, false),
            translations: Vec::new(),
            stream_start: None,
            caps: None,
            segment: None,
        }
    }

    /// The writer of `target`, tagged with `language`; `None` if its pad was released.
    pub fn get(
        &mut self,
        imp: &SonioxStt,
        target: &Target,
        language: Option<&str>,
    ) -> Option<&mut PadWriter> {
        let pad = match target {
            Target::Src => return Some(&mut self.src),
            Target::Translation(pad) => pad,
        };
        if pad.parent().as_ref() != Some(imp.obj().upcast_ref::<gst::Object>()) {
            return None;
        }
        let writer = self.translation(imp, pad);
        if let Some(language) = language {
            writer.tag(imp, language);
        }
        Some(writer)
    }

    /// The writer of translation pad `pad`; a new one first pushes the stream's sticky
    /// events.
    fn translation(&mut self, imp: &SonioxStt, pad: &gst::Pad) -> &mut PadWriter {
        let index = match self.translations.iter().position(|w| w.pad() == pad) {
            Some(index) => index,
            None => {
                let mut writer = PadWriter::new(pad.clone(), true);
                let start = self.stream_start.as_ref().map(|e| stream_start_for(e, pad));
                for event in start.iter().chain(&self.caps).chain(&self.segment) {
                    writer.push_event(imp, event.clone());
                }
                // Mid-stream: from where `src` has got to.
                if self.segment.is_some() {
                    if let Some(at) = self.src.position.or_else(|| self.segment_start()) {
                        writer.preroll(imp, at);
                    }
                }
                self.translations.push(writer);
                self.translations.len() - 1
            }
        };
        &mut self.translations[index]
    }

    /// What pushing to `target` returned, as the stream takes it: a translation pad that
    /// is not linked, at EOS or released does not stop the others.
    pub fn judge(
        &self,
        imp: &SonioxStt,
        target: &Target,
        result: Result<(), gst::FlowError>,
    ) -> Result<(), gst::FlowError> {
        match (target, result) {
            (
                Target::Translation(pad),
                Err(
                    flow @ (gst::FlowError::NotLinked
                    | gst::FlowError::Eos
                    | gst::FlowError::Flushing),
                ),
            ) if !imp.is_flushing() => {
                gst::debug!(CAT, imp = imp, "{} returned {flow:?}: going on", pad.name());
                Ok(())
            }
            (_, result) => result,
        }
    }

    /// A serialized event from the input: `src` gets it; the translation pads get the
    /// sticky ones (their own stream-start), GAPs and EOS.
    pub fn sink_event(&mut self, imp: &SonioxStt, event: gst::Event) {
        let all = match event.view() {
            gst::EventView::StreamStart(_) => {
                self.stream_start = Some(event.clone());
                true
            }
            gst::EventView::Caps(_) => {
                self.caps = Some(event.clone());
                true
            }
            gst::EventView::Segment(_) => {
                self.segment = Some(event.clone());
                true
            }
            gst::EventView::Gap(_) | gst::EventView::Eos(_) => true,
            _ => false,
        };
        let mut prerolls = Vec::new();
        if all {
            let pads: Vec<TranslateSrcPad> = imp
                .obj()
                .src_pads()
                .into_iter()
                .filter_map(|p| p.downcast::<TranslateSrcPad>().ok())
                .collect();
            for pad in pads {
                let known = self
                    .translations
                    .iter()
                    .any(|w| w.pad() == pad.upcast_ref::<gst::Pad>());
                let writer = self.translation(imp, pad.upcast_ref());
                // A new writer has just pushed the sticky events it needs.
                let sticky = matches!(
                    event.type_(),
                    gst::EventType::StreamStart | gst::EventType::Caps | gst::EventType::Segment
                );
                if known || !sticky {
                    let event = match event.view() {
                        gst::EventView::StreamStart(_) => {
                            stream_start_for(&event, pad.upcast_ref())
                        }
                        _ => event.clone(),
                    };
                    writer.push_event(imp, event);
                }
                if let (gst::EventType::Segment, Some(language)) = (event.type_(), pad.language()) {
                    writer.tag(imp, &language);
                }
                prerolls.push(pad);
            }
        }
        let segment = event.type_() == gst::EventType::Segment;
        self.src.push_event(imp, event);
        // One thread pushes all the pads: every pad's sink must be able to preroll before
        // any of them waits for PLAYING (a queue after one pad fills up while another's
        // text is still to come), so each gets an empty GAP at the segment's start. So does
        // `src` in `mode=async`, whose text comes only after the end of the audio (a branch
        // beside it, after a tee, must not wait for PLAYING meanwhile).
        let holds_back = !prerolls.is_empty() || imp.is_async();
        if let (true, true, Some(start)) = (segment, holds_back, self.segment_start()) {
            self.src.preroll(imp, start);
            for pad in prerolls {
                self.translation(imp, pad.upcast_ref()).preroll(imp, start);
            }
        }
    }

    fn segment_start(&self) -> Option<u64> {
        let gst::EventView::Segment(segment) = self.segment.as_ref()?.view() else {
            return None;
        };
        let segment = segment.segment().downcast_ref::<gst::ClockTime>()?;
        Some(segment.start().map_or(0, gst::ClockTime::nseconds))
    }
}

/// The stream-start of translation pad `pad`: the input's stream with the pad's name.
fn stream_start_for(event: &gst::Event, pad: &gst::Pad) -> gst::Event {
    let gst::EventView::StreamStart(start) = event.view() else {
        return event.clone();
    };
    let id = format!("{}/{}", start.stream_id(), pad.name());
    let mut builder = gst::event::StreamStart::builder(&id).seqnum(event.seqnum());
    if let Some(group) = start.group_id() {
        builder = builder.group_id(group);
    }
    builder.build()
}
