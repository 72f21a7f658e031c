// SPDX-License-Identifier: MPL-2.0
//! Whether a connection is alive (contract §8, "Half-open and silent connections").
//!
//! A TCP connection can stay open while nothing comes through it: a server that stopped
//! reading and sending, a proxy that swallows frames, a peer that vanished without a FIN.
//! The connection sends a WebSocket ping at once and every [`PING_INTERVAL`], and counts as
//! broken when
//! - nothing at all (not even a pong) came for [`SILENCE_LIMIT`],
//! - a `finalize` got no `<fin>` within [`FIN_LIMIT`],
//! - a frame could not be sent within [`SEND_LIMIT`].
//!
//! Before that it may be *suspect*: nothing came for [`SUSPECT_QUIET`], a ping is not answered
//! within [`SUSPECT_PING`], a finalize not within [`SUSPECT_FIN`], or a frame has been on its
//! way for [`SUSPECT_SEND`]. (A healthy connection answers well within these.) While suspect,
//! live audio is held up to the replay window rather than the live queue's limit, so that a
//! failure found this way loses nothing.
//!
//! Pure bookkeeping: the caller passes the time and acts on the answers.

use std::collections::VecDeque;
use std::fmt;
use std::time::Duration;

use tokio::time::Instant;

pub const PING_INTERVAL: Duration = Duration::from_secs(10);
pub const SILENCE_LIMIT: Duration = Duration::from_secs(20);
pub const FIN_LIMIT: Duration = Duration::from_secs(10);
pub const SEND_LIMIT: Duration = Duration::from_secs(10);
/// Nothing heard for this long makes the connection suspect.
pub const SUSPECT_QUIET: Duration = Duration::from_secs(3);
/// A ping unanswered for this long makes the connection suspect.
pub const SUSPECT_PING: Duration = Duration::from_secs(2);
/// A finalize unanswered for this long makes the connection suspect.
pub const SUSPECT_FIN: Duration = Duration::from_secs(5);
/// A frame on its way this long makes the connection suspect.
pub const SUSPECT_SEND: Duration = Duration::from_secs(1);

/// Why a connection counts as broken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unresponsive {
    /// Nothing came for [`SILENCE_LIMIT`].
    Silent,
    /// A finalize got no `<fin>` within [`FIN_LIMIT`].
    NoFin,
    /// A frame could not be sent within [`SEND_LIMIT`].
    StuckSend,
}

impl fmt::Display for Unresponsive {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unresponsive::Silent => write!(
                f,
                "nothing came from Soniox for {} s, not even an answer to a ping",
                SILENCE_LIMIT.as_secs()
            ),
            Unresponsive::NoFin => write!(
                f,
                "Soniox did not answer a finalize within {} s",
                FIN_LIMIT.as_secs()
            ),
            Unresponsive::StuckSend => {
                write!(f, "Soniox took no data for {} s", SEND_LIMIT.as_secs())
            }
        }
    }
}

#[derive(Debug)]
pub struct Liveness {
    last_heard: Instant,
    next_ping: Instant,
    /// Since when a ping waits for its pong (a new connection waits for its first).
    unanswered_ping: Option<Instant>,
    /// Finalizes sent and not answered with `<fin>` yet, oldest first.
    finalizes: VecDeque<Instant>,
}

impl Liveness {
    /// A connection established at `now`: it pings at once.
    pub fn new(now: Instant) -> Liveness {
        Liveness {
            last_heard: now,
            next_ping: now,
            unanswered_ping: Some(now),
            finalizes: VecDeque::new(),
        }
    }

    /// A frame (any frame) came.
    pub fn heard(&mut self, now: Instant) {
        self.last_heard = now;
    }

    /// A pong came.
    pub fn pong(&mut self) {
        self.unanswered_ping = None;
    }

    /// When the next ping is due.
    pub fn ping_due(&self) -> Instant {
        self.next_ping
    }

    pub fn ping_sent(&mut self, now: Instant) {
        self.next_ping = now + PING_INTERVAL;
        self.unanswered_ping.get_or_insert(now);
    }

    pub fn finalize_sent(&mut self, now: Instant) {
        self.finalizes.push_back(now);
    }

    /// A `<fin>` came: it answers the oldest finalize.
    pub fn fin(&mut self) {
        self.finalizes.pop_front();
    }

    /// When the connection counts as broken, and why, if nothing changes before; `sending`
    /// is when the frame on its way (if any) was started.
    pub fn deadline(&self, sending: Option<Instant>) -> (Instant, Unresponsive) {
        let mut deadline = (self.last_heard + SILENCE_LIMIT, Unresponsive::Silent);
        let candidates = [
            self.finalizes
                .front()
                .map(|&oldest| (oldest + FIN_LIMIT, Unresponsive::NoFin)),
            sending.map(|since| (since + SEND_LIMIT, Unresponsive::StuckSend)),
        ];
        for (at, why) in candidates.into_iter().flatten() {
            if at < deadline.0 {
                deadline = (at, why);
            }
        }
        deadline
    }

    /// When the connection turns suspect if nothing changes; `sending` as for
    /// [`Liveness::deadline`].
    pub fn suspect_at(&self, sending: Option<Instant>) -> Instant {
        [
            Some(self.last_heard + SUSPECT_QUIET),
            self.unanswered_ping.map(|since| since + SUSPECT_PING),
            self.finalizes.front().map(|&since| since + SUSPECT_FIN),
            sending.map(|since| since + SUSPECT_SEND),
        ]
        .into_iter()
        .flatten()
        .min()
        .expect("the first is always there")
    }

    /// Whether the connection is suspect at `now`.
    pub fn suspect(&self, now: Instant, sending: Option<Instant>) -> bool {
        now >= self.suspect_at(sending)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn a_silent_connection_is_broken_20_s_after_it_was_last_heard() {
        let t0 = Instant::now();
        let mut live = Liveness::new(t0);
        assert_eq!(live.ping_due(), t0, "a new connection pings at once");
        live.ping_sent(t0);
        assert_eq!(live.ping_due(), t0 + 10 * S);
        assert!(!live.suspect(t0 + S, None));
        assert!(live.suspect(t0 + 2 * S, None), "no pong within 2 s");
        live.heard(t0 + S);
        live.pong();
        assert!(!live.suspect(t0 + 2 * S, None));
        assert_eq!(live.suspect_at(None), t0 + 4 * S, "3 s without a word");
        assert_eq!(live.deadline(None), (t0 + 21 * S, Unresponsive::Silent));
        live.ping_sent(t0 + 10 * S);
        assert_eq!(live.deadline(None).0, t0 + 21 * S, "a ping proves nothing");
    }

    #[test]
    fn a_finalize_without_fin_is_broken_after_10_s() {
        let t0 = Instant::now();
        let mut live = Liveness::new(t0);
        live.pong();
        live.finalize_sent(t0 + S);
        live.finalize_sent(t0 + 3 * S);
        live.heard(t0 + 5 * S);
        assert!(!live.suspect(t0 + 5 * S, None));
        assert!(live.suspect(t0 + 6 * S, None), "5 s without <fin>");
        assert_eq!(live.deadline(None), (t0 + 11 * S, Unresponsive::NoFin));
        live.fin();
        assert_eq!(live.deadline(None), (t0 + 13 * S, Unresponsive::NoFin));
        live.fin();
        assert_eq!(live.deadline(None), (t0 + 25 * S, Unresponsive::Silent));
    }

    #[test]
    fn a_stuck_send_is_suspect_after_a_second_and_broken_after_10() {
        let t0 = Instant::now();
        let mut live = Liveness::new(t0);
        live.pong();
        let since = Some(t0 + S / 2);
        assert!(!live.suspect(t0 + S, since));
        assert!(live.suspect(t0 + 3 * S / 2, since));
        assert_eq!(
            live.deadline(since),
            (t0 + 21 * S / 2, Unresponsive::StuckSend)
        );
        assert_eq!(
            Unresponsive::StuckSend.to_string(),
            "Soniox took no data for 10 s"
        );
    }
}
