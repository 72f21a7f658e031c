// SPDX-License-Identifier: MPL-2.0
//! The table from audio sent in a session to input timestamps.
//!
//! Soniox times tokens in milliseconds of the audio it received in the session. The input's
//! timestamps may jump (DISCONT, gaps, a live source that paused): the table keeps an anchor
//! wherever the input's timestamps stop following the audio, so a token time maps back to the
//! exact input timestamp of the sample it names, and no jump ever shifts later words.
//!
//! Positions are counted in bytes of audio sent (so partial frames cannot drift) and times in
//! nanoseconds.

use std::collections::VecDeque;
use std::time::Instant;

const NS_PER_MS: u64 = 1_000_000;
const NS_PER_S: u128 = 1_000_000_000;

/// A point where the input timestamps were (re)synchronised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Anchor {
    /// Session position, bytes of audio sent before this point.
    offset: u64,
    /// Input timestamp of that byte, ns.
    pts: u64,
}

#[derive(Debug, Clone)]
pub struct Timeline {
    bytes_per_second: u64,
    /// How far the input timestamps may stray from the audio before a new anchor is set.
    tolerance_ns: u64,
    anchors: VecDeque<Anchor>,
    /// See [`Self::origin`].
    origin: Option<u64>,
    /// Bytes of audio recorded so far.
    offset: u64,
    /// When audio went out: (end offset of a chunk, the moment it was sent), in order.
    sent: VecDeque<(u64, Instant)>,
}

impl Timeline {
    /// `bytes_per_second` = sample rate × bytes per frame. Input timestamps that differ from
    /// the audio's own clock by more than 1 ms start a new anchor.
    pub fn new(bytes_per_second: u64) -> Self {
        assert!(bytes_per_second > 0, "audio has a rate");
        Timeline {
            bytes_per_second,
            tolerance_ns: NS_PER_MS,
            anchors: VecDeque::new(),
            origin: None,
            offset: 0,
            sent: VecDeque::new(),
        }
    }

    /// Records `len` bytes of audio, about to be sent, whose first byte has input timestamp
    /// `pts` (`None`: it follows the previous audio). `discont` forces a new anchor.
    pub fn record(&mut self, pts: Option<u64>, discont: bool, len: u64) {
        let expected = self.anchors.back().map(|_| self.pts_at_offset(self.offset));
        let anchor_pts = match (pts, expected) {
            (Some(pts), None) => Some(pts),
            (None, None) => Some(0),
            (Some(pts), Some(expected))
                if discont || pts.abs_diff(expected) > self.tolerance_ns =>
            {
                Some(pts)
            }
            _ => None,
        };
        if let Some(pts) = anchor_pts {
            if self.offset == 0 || self.origin.is_none() {
                self.origin = Some(pts);
            }
            if self.anchors.back().is_some_and(|a| a.offset == self.offset) {
                self.anchors.pop_back();
            }
            self.anchors.push_back(Anchor {
                offset: self.offset,
                pts,
            });
        }
        self.offset += len;
    }

    /// Records that the audio recorded so far went out at `at` (for the latency promise).
    pub fn mark_sent(&mut self, at: Instant) {
        if self.sent.back().is_some_and(|&(end, _)| end == self.offset) {
            return;
        }
        self.sent.push_back((self.offset, at));
    }

    /// When the audio at `ms` on the session's timeline went out, if it did.
    pub fn sent_at_ms(&self, ms: u64) -> Option<Instant> {
        let offset = self.ms_to_offset(ms);
        let index = self.sent.partition_point(|&(end, _)| end <= offset);
        self.sent.get(index).map(|&(_, at)| at)
    }

    /// Audio recorded so far, in ms of the session's timeline.
    pub fn recorded_ms(&self) -> u64 {
        self.offset_to_ns(self.offset) / NS_PER_MS
    }

    /// The input timestamp (ns) of the audio at `ms` on the session's timeline, or `None`
    /// before any audio was recorded.
    pub fn pts_at_ms(&self, ms: u64) -> Option<u64> {
        let session_ns = ms.saturating_mul(NS_PER_MS);
        let index = self
            .anchors
            .partition_point(|a| self.offset_to_ns(a.offset) <= session_ns)
            .saturating_sub(1);
        let anchor = self.anchors.get(index)?;
        let anchor_ns = self.offset_to_ns(anchor.offset);
        Some(if session_ns >= anchor_ns {
            anchor.pts.saturating_add(session_ns - anchor_ns)
        } else {
            anchor.pts.saturating_sub(anchor_ns - session_ns)
        })
    }

    /// The input timestamp (ns) of the first audio recorded, kept when older anchors are
    /// forgotten.
    pub fn origin(&self) -> Option<u64> {
        self.origin
    }

    /// Forgets anchors that only map times before `ms` (Soniox will not send them again).
    pub fn forget_before_ms(&mut self, ms: u64) {
        let session_ns = ms.saturating_mul(NS_PER_MS);
        while self.anchors.len() > 1 && self.offset_to_ns(self.anchors[1].offset) <= session_ns {
            self.anchors.pop_front();
        }
        let offset = self.ms_to_offset(ms);
        while self.sent.front().is_some_and(|&(end, _)| end <= offset) {
            self.sent.pop_front();
        }
    }

    /// Number of anchors held (for tests and bounds checks).
    pub fn anchor_count(&self) -> usize {
        self.anchors.len()
    }

    fn ms_to_offset(&self, ms: u64) -> u64 {
        (ms as u128 * self.bytes_per_second as u128 / 1000) as u64
    }

    fn offset_to_ns(&self, offset: u64) -> u64 {
        (offset as u128 * NS_PER_S / self.bytes_per_second as u128) as u64
    }

    fn pts_at_offset(&self, offset: u64) -> u64 {
        let anchor = self.anchors.back().expect("called with an anchor");
        anchor.pts + (self.offset_to_ns(offset) - self.offset_to_ns(anchor.offset))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;
    const MS: u64 = 1_000_000;
    /// 16 kHz S16LE mono.
    const BPS: u64 = 32_000;

    #[test]
    fn continuous_audio_maps_one_to_one_from_its_first_timestamp() {
        let mut t = Timeline::new(BPS);
        assert_eq!(t.pts_at_ms(0), None);
        for i in 0..10 {
            t.record(Some(5 * S + i * 100 * MS), false, 3200);
        }
        assert_eq!(t.anchor_count(), 1);
        assert_eq!(t.pts_at_ms(0), Some(5 * S));
        assert_eq!(t.pts_at_ms(437), Some(5 * S + 437 * MS));
    }

    #[test]
    fn a_jump_moves_only_what_follows_it() {
        let mut t = Timeline::new(BPS);
        t.record(Some(0), false, 2 * BPS); // 0–2 s
        t.record(Some(8 * S), true, 2 * BPS); // jumps 6 s forward
        assert_eq!(t.pts_at_ms(1999), Some(1999 * MS));
        assert_eq!(t.pts_at_ms(2000), Some(8 * S));
        assert_eq!(t.pts_at_ms(3500), Some(9 * S + 500 * MS));
    }

    #[test]
    fn a_gap_without_discont_flag_is_still_anchored() {
        let mut t = Timeline::new(BPS);
        t.record(Some(0), false, BPS);
        t.record(Some(14 * S), false, BPS);
        assert_eq!(t.pts_at_ms(1250), Some(14 * S + 250 * MS));
    }

    #[test]
    fn small_jitter_within_a_millisecond_keeps_the_audio_clock() {
        let mut t = Timeline::new(BPS);
        t.record(Some(0), false, 3200);
        t.record(Some(100 * MS + 400_000), false, 3200);
        assert_eq!(t.anchor_count(), 1);
        assert_eq!(t.pts_at_ms(150), Some(150 * MS));
    }

    #[test]
    fn buffers_without_timestamps_follow_the_previous_audio() {
        let mut t = Timeline::new(8000); // 8 kHz μ-law
        t.record(None, false, 800);
        t.record(None, false, 800);
        assert_eq!(t.pts_at_ms(150), Some(150 * MS));
        let mut t = Timeline::new(8000);
        t.record(Some(3 * S), false, 800);
        t.record(None, false, 800);
        assert_eq!(t.pts_at_ms(150), Some(3 * S + 150 * MS));
    }

    #[test]
    fn forgetting_keeps_the_anchor_that_covers_later_times() {
        let mut t = Timeline::new(BPS);
        for i in 0..5 {
            t.record(Some(i * 10 * S), true, BPS);
        }
        assert_eq!(t.anchor_count(), 5);
        t.forget_before_ms(2500);
        assert_eq!(t.anchor_count(), 3);
        assert_eq!(t.pts_at_ms(2500), Some(20 * S + 500 * MS));
        assert_eq!(t.pts_at_ms(4200), Some(40 * S + 200 * MS));
    }

    #[test]
    fn times_are_exact_for_odd_rates() {
        let mut t = Timeline::new(44_100 * 4); // F32LE 44.1 kHz
        t.record(Some(S / 3), false, 44_100 * 4 * 3);
        assert_eq!(t.pts_at_ms(1234), Some(S / 3 + 1234 * MS));
    }

    #[test]
    fn send_moments_are_found_by_token_time_and_forgotten_with_anchors() {
        let mut t = Timeline::new(BPS);
        let start = Instant::now();
        let at = |ms| start + std::time::Duration::from_millis(ms);
        for i in 0..4 {
            t.record(Some(i * 100 * MS), false, 3200);
            t.mark_sent(at(i * 100));
        }
        assert_eq!(t.sent_at_ms(0), Some(at(0)));
        assert_eq!(t.sent_at_ms(99), Some(at(0)));
        assert_eq!(t.sent_at_ms(100), Some(at(100)));
        assert_eq!(t.sent_at_ms(399), Some(at(300)));
        assert_eq!(t.sent_at_ms(400), None, "not sent yet");
        assert_eq!(t.recorded_ms(), 400);
        t.forget_before_ms(250);
        assert_eq!(t.sent_at_ms(250), Some(at(200)));
        assert_eq!(t.sent_at_ms(300), Some(at(300)));
    }

    #[test]
    fn anchors_at_the_same_offset_replace_each_other() {
        let mut t = Timeline::new(BPS);
        t.record(Some(0), false, 0);
        t.record(Some(7 * S), true, BPS);
        assert_eq!(t.anchor_count(), 1);
        assert_eq!(t.pts_at_ms(0), Some(7 * S));
    }
}
