// SPDX-License-Identifier: MPL-2.0
//! The latency promise of a live session (contract §5).
//!
//! A word must be pushed before its audio's running time + `latency`, and downstream must
//! never wait longer than that on silence (§5 "Silence"). Soniox makes tokens final on its
//! own schedule, and may say nothing at all while nothing is said. The promise follows the
//! *settled* point: how far the text is known for good (the service's `final_audio_proc_ms`,
//! but not past a non-final token or a final word that may still grow). When the audio
//! right after it would miss its deadline, the session asks for `{"type":"finalize"}` early
//! enough for the answer to come back in time: at (moment that audio went out) + `latency`
//! − (round trip + a safety margin). The answer makes the words final, or, over silence,
//! moves `final_audio_proc_ms` on, so the element can push a GAP. Finalize requests are at
//! least [`MIN_SPACING`] apart and never sent while one is in flight (sent, its `<fin>` not
//! yet received).

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::protocol::Token;
use crate::transcript::timeline::Timeline;

/// The shortest time between two finalize requests.
pub const MIN_SPACING: Duration = Duration::from_millis(1500);
/// Added to the measured round trip: the time to turn tokens into words and push them.
const SAFETY: Duration = Duration::from_millis(300);
/// The round trip assumed before one was measured.
const INITIAL_ROUND_TRIP: Duration = Duration::from_millis(200);
/// A finalize whose `<fin>` never came stops counting as in flight after this long.
const IN_FLIGHT_EXPIRY: Duration = Duration::from_secs(5);

#[derive(Debug)]
pub struct Promise {
    /// The element's `latency` property, ms (it may change while playing); `None` for
    /// non-live input, which has no deadline (only input pauses hurry a finalize).
    latency_ms: Option<Arc<AtomicU32>>,
    last_finalize: Option<Instant>,
    in_flight: Option<Instant>,
    round_trip: Duration,
    /// When the audio right after the settled point went out; `None` when all audio sent is
    /// settled.
    pending_since: Option<Instant>,
    /// The settled point, ms of session audio.
    settled_ms: u64,
    /// Where the latest final word started, while it may still grow (no marker, no new word
    /// after it yet).
    open_word_ms: Option<u64>,
    /// Soniox's `final_audio_proc_ms`.
    final_ms: u64,
    /// The input paused after this much session audio: finalize up to there as soon as the
    /// spacing allows, since nothing else will make it final.
    urgent_until_ms: Option<u64>,
}

impl Promise {
    pub fn new(latency_ms: Option<Arc<AtomicU32>>) -> Promise {
        Promise {
            latency_ms,
            last_finalize: None,
            in_flight: None,
            round_trip: INITIAL_ROUND_TRIP,
            pending_since: None,
            settled_ms: 0,
            open_word_ms: None,
            final_ms: 0,
            urgent_until_ms: None,
        }
    }

    /// Takes note of a result message (`timeline`: when its tokens' audio went out).
    pub fn observe(
        &mut self,
        tokens: &[Token],
        final_ms: Option<u64>,
        timeline: &Timeline,
        now: Instant,
    ) {
        if tokens.iter().any(|t| t.text == Token::FIN) {
            if let Some(sent) = self.in_flight.take() {
                let measured = now.saturating_duration_since(sent);
                self.round_trip = (self.round_trip * 3 + measured) / 4;
            }
        }
        for token in tokens.iter().filter(|t| t.is_final && !t.is_translation()) {
            if token.is_marker() {
                self.open_word_ms = None;
            } else if token.text.starts_with(char::is_whitespace) || self.open_word_ms.is_none() {
                self.open_word_ms = token.start_ms.or(self.open_word_ms);
            }
        }
        let earliest_tail = tokens
            .iter()
            .filter(|t| !t.is_final && !t.is_marker() && !t.is_translation())
            .filter_map(|t| t.start_ms)
            .min();
        self.final_ms = self.final_ms.max(final_ms.unwrap_or(0));
        self.settled_ms = [Some(self.final_ms), earliest_tail, self.open_word_ms]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(self.final_ms);
        self.pending_since = None;
        self.audio_sent(timeline, now);
        if earliest_tail.is_none()
            && self
                .urgent_until_ms
                .is_some_and(|until| self.final_ms >= until)
        {
            self.urgent_until_ms = None;
        }
    }

    /// Audio went out (`timeline` has it): if it is the first after the settled point, its
    /// deadline starts now.
    pub fn audio_sent(&mut self, timeline: &Timeline, now: Instant) {
        if self.pending_since.is_none() && self.settled_ms < timeline.recorded_ms() {
            self.pending_since = Some(timeline.sent_at_ms(self.settled_ms).unwrap_or(now));
        }
    }

    /// The input paused (a GAP) after `sent_ms` of session audio: finalize what is not
    /// final yet as soon as allowed.
    pub fn hurry(&mut self, sent_ms: u64) {
        if self.settled_ms < sent_ms {
            self.urgent_until_ms = Some(sent_ms);
        }
    }

    /// Session time (ms) before which nothing can change any more: what is final, and not
    /// past a non-final token or a final word that may still grow.
    pub fn settled_ms(&self) -> u64 {
        self.settled_ms
    }

    /// When to send the next finalize, if one is needed.
    pub fn due(&self, now: Instant) -> Option<Instant> {
        if self
            .in_flight
            .is_some_and(|sent| now < sent + IN_FLIGHT_EXPIRY)
        {
            return None;
        }
        let deadline = self.latency_ms.as_ref().and_then(|latency| {
            let latency = Duration::from_millis(latency.load(Ordering::Relaxed).into());
            let pending = self.pending_since?;
            Some(
                (pending + latency)
                    .checked_sub(self.round_trip + SAFETY)
                    .unwrap_or(pending),
            )
        });
        let target = match (self.urgent_until_ms, deadline) {
            (Some(_), _) => now,
            (None, Some(deadline)) => deadline,
            (None, None) => return None,
        };
        Some(match self.last_finalize {
            Some(last) => target.max(last + MIN_SPACING),
            None => target,
        })
    }

    /// A finalize went out (the promise's own, or one the user asked for): it covers all
    /// audio sent so far.
    pub fn finalize_sent(&mut self, now: Instant) {
        self.last_finalize = Some(now);
        self.in_flight = Some(now);
        self.urgent_until_ms = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BPS: u64 = 32_000;

    fn token(text: &str, start_ms: u64, is_final: bool) -> Token {
        Token {
            text: text.into(),
            start_ms: Some(start_ms),
            end_ms: Some(start_ms + 200),
            confidence: None,
            is_final,
            speaker: None,
            language: None,
            translation_status: None,
            source_language: None,
        }
    }

    fn fin() -> Token {
        Token {
            text: Token::FIN.into(),
            ..token("", 0, true)
        }
    }

    /// 1 s of audio sent in 100 ms chunks, the chunk at `i` × 100 ms going out at t0 + i × 100.
    fn timeline(t0: Instant) -> Timeline {
        let mut timeline = Timeline::new(BPS);
        for i in 0..10 {
            timeline.record(Some(i * 100_000_000), false, 3200);
            timeline.mark_sent(t0 + Duration::from_millis(i * 100));
        }
        timeline
    }

    #[test]
    fn finalize_comes_before_the_earliest_pending_token_would_miss_latency() {
        let t0 = Instant::now();
        let timeline = timeline(t0);
        let mut promise = Promise::new(Some(Arc::new(AtomicU32::new(2000))));
        assert_eq!(promise.due(t0), None, "nothing sent yet");
        promise.observe(
            &[token(" a", 100, true), fin(), token(" b", 300, false)],
            Some(300),
            &timeline,
            t0,
        );
        // b's audio went out at t0 + 300 ms: due 2000 − 200 (round trip) − 300 (safety) later.
        assert_eq!(promise.due(t0), Some(t0 + Duration::from_millis(1800)));
        promise.finalize_sent(t0 + Duration::from_millis(1800));
        assert_eq!(
            promise.due(t0 + Duration::from_millis(1900)),
            None,
            "in flight"
        );
    }

    #[test]
    fn a_final_word_that_may_still_grow_is_not_settled() {
        let t0 = Instant::now();
        let timeline = timeline(t0);
        let mut promise = Promise::new(Some(Arc::new(AtomicU32::new(2000))));
        // " a" is final up to 300 ms, but its word may go on: its start counts.
        promise.observe(&[token(" a", 100, true)], Some(300), &timeline, t0);
        assert_eq!(promise.due(t0), Some(t0 + Duration::from_millis(1600)));
        // A new word starts: the first one is complete.
        promise.observe(&[token(" b", 300, true)], Some(500), &timeline, t0);
        assert_eq!(promise.due(t0), Some(t0 + Duration::from_millis(1800)));
    }

    #[test]
    fn silence_the_service_says_nothing_about_is_not_settled_either() {
        let t0 = Instant::now();
        let timeline = timeline(t0);
        let mut promise = Promise::new(Some(Arc::new(AtomicU32::new(2000))));
        // All final up to 400 ms, and no word since: the audio from 400 ms waits.
        promise.observe(&[], Some(400), &timeline, t0);
        assert_eq!(promise.due(t0), Some(t0 + Duration::from_millis(1900)));
        // Everything sent is final: nothing to ask for.
        promise.observe(&[], Some(1000), &timeline, t0);
        assert_eq!(promise.due(t0), None);
        // A service that never said anything: its deadline starts with the first audio.
        let mut quiet = Promise::new(Some(Arc::new(AtomicU32::new(2000))));
        quiet.audio_sent(&timeline, t0);
        assert_eq!(quiet.due(t0), Some(t0 + Duration::from_millis(1500)));
    }

    #[test]
    fn finalizes_are_spaced_and_the_round_trip_is_learned() {
        let t0 = Instant::now();
        let timeline = timeline(t0);
        let mut promise = Promise::new(Some(Arc::new(AtomicU32::new(2000))));
        promise.finalize_sent(t0);
        promise.observe(
            &[fin(), token(" c", 0, false)],
            None,
            &timeline,
            t0 + Duration::from_millis(600),
        );
        // Round trip (3 × 200 + 600) / 4 = 300 ms: target t0 + 2000 − 600 = 1400 ms, but the
        // previous finalize was at t0, so not before 1500 ms.
        assert_eq!(promise.due(t0), Some(t0 + MIN_SPACING));
    }

    #[test]
    fn a_latency_change_applies_at_once() {
        let t0 = Instant::now();
        let timeline = timeline(t0);
        let latency = Arc::new(AtomicU32::new(3000));
        let mut promise = Promise::new(Some(latency.clone()));
        promise.observe(&[token(" d", 500, false)], Some(500), &timeline, t0);
        assert_eq!(promise.due(t0), Some(t0 + Duration::from_millis(3000)));
        latency.store(2000, Ordering::Relaxed);
        assert_eq!(promise.due(t0), Some(t0 + Duration::from_millis(2000)));
        promise.observe(&[], Some(1000), &timeline, t0);
        assert_eq!(promise.due(t0), None, "nothing pending any more");
    }

    #[test]
    fn a_pause_in_the_input_finalizes_what_is_not_final_yet() {
        let t0 = Instant::now();
        let timeline = timeline(t0);
        let mut promise = Promise::new(None); // non-live: no deadline of its own
        promise.observe(&[token(" e", 500, false)], Some(400), &timeline, t0);
        assert_eq!(promise.due(t0), None);
        promise.hurry(1000);
        let now = t0 + Duration::from_millis(50);
        assert_eq!(promise.due(now), Some(now));
        promise.finalize_sent(now);
        promise.observe(&[fin()], Some(1000), &timeline, now);
        assert_eq!(promise.due(now + MIN_SPACING), None, "all final");
        // Silence only, but not yet final: still worth a finalize.
        promise.hurry(1500);
        let later = now + Duration::from_millis(100);
        assert_eq!(promise.due(later), Some(now + MIN_SPACING), "spaced");
        // Already final up to the pause: nothing to do.
        promise.observe(&[], Some(1500), &timeline, later);
        promise.hurry(1500);
        assert_eq!(promise.due(later + MIN_SPACING), None);
    }

    #[test]
    fn a_lost_fin_does_not_block_finalizing_forever() {
        let t0 = Instant::now();
        let timeline = timeline(t0);
        let mut promise = Promise::new(Some(Arc::new(AtomicU32::new(2000))));
        promise.observe(&[token(" f", 0, false)], None, &timeline, t0);
        promise.finalize_sent(t0);
        assert_eq!(promise.due(t0 + Duration::from_secs(1)), None);
        assert!(promise.due(t0 + IN_FLIGHT_EXPIRY).is_some());
    }
}
