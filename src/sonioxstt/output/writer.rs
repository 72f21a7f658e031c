// SPDX-License-Identifier: MPL-2.0
//! One output pad's writer: what it pushes (buffers, GAPs, events) and where its text stream
//! has got to. Only the src task pushes through it, so nothing on a pad overtakes anything.

use std::time::{Duration, Instant};

use gst::prelude::*;
use gst::subclass::prelude::*;

use super::super::imp::{SonioxStt, CAT};
use super::super::meta::{self, WordMeta};

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
    /// Where the text stream has got to (end of the last buffer or gap pushed), ns.
    position: Option<u64>,
    last_late_warning: Option<Instant>,
}

impl PadWriter {
    pub fn new(pad: gst::Pad) -> PadWriter {
        PadWriter {
            pad,
            position: None,
            last_late_warning: None,
        }
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
}
