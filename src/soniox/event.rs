// SPDX-License-Identifier: MPL-2.0
//! What a session reports to the element, already on the input's timeline: the connection
//! that received a message maps its times once, through its own table, so nothing
//! downstream needs a timeline (and an async job can report the very same events).

use super::protocol::{self, ServerMessage};
use crate::transcript::timeline::Timeline;
use crate::transcript::token::Token;

/// One result message, timed in input nanoseconds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Results {
    pub tokens: Vec<Token>,
    /// As Soniox sent them (ms of the connection's audio), for the bus.
    pub final_audio_proc_ms: Option<u64>,
    pub total_audio_proc_ms: Option<u64>,
    /// Input PTS up to which Soniox has finalized the audio: no final token starts before it.
    pub settled: Option<u64>,
    /// Input PTS up to which Soniox has heard the audio.
    pub heard: Option<u64>,
    /// Input PTS where the connection's audio starts.
    pub origin: Option<u64>,
}

impl Results {
    /// Maps `message` through the connection's `timeline`; `origin`: where its audio starts.
    pub fn map(message: &ServerMessage, timeline: &Timeline, origin: Option<u64>) -> Results {
        let at = |ms: Option<u64>| ms.and_then(|ms| timeline.pts_at_ms(ms));
        Results {
            tokens: message
                .tokens
                .iter()
                .map(|token| timed(token, timeline))
                .collect(),
            final_audio_proc_ms: message.final_audio_proc_ms,
            total_audio_proc_ms: message.total_audio_proc_ms,
            settled: at(message.final_audio_proc_ms),
            heard: at(message.total_audio_proc_ms),
            origin,
        }
    }
}

fn timed(token: &protocol::Token, timeline: &Timeline) -> Token {
    let at = |ms: Option<u64>| ms.and_then(|ms| timeline.pts_at_ms(ms));
    Token {
        text: token.text.clone(),
        is_final: token.is_final,
        pts: at(token.start_ms),
        end: at(token.end_ms),
        sent: token.start_ms.and_then(|ms| timeline.sent_at_ms(ms)),
        confidence: token.confidence,
        speaker: token.speaker.clone(),
        language: token.language.clone(),
        translation_status: token.translation_status.clone(),
        source_language: token.source_language.clone(),
        requested: false,
        replayed: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_mapped_once_through_the_connections_table() {
        // 1 s of 16 kHz S16LE recorded at input PTS 10 s, then a jump to 20 s.
        let mut timeline = Timeline::new(32_000);
        timeline.record(Some(10_000_000_000), false, 32_000);
        timeline.record(Some(20_000_000_000), true, 32_000);
        let message = ServerMessage::parse(
            r#"{"tokens": [{"text": " Hi", "start_ms": 900, "end_ms": 1100, "confidence": 0.5, "is_final": true},
                           {"text": "<end>", "is_final": true}],
                "final_audio_proc_ms": 1200, "total_audio_proc_ms": 1500}"#,
        )
        .unwrap();
        let results = Results::map(&message, &timeline, Some(10_000_000_000));
        let hi = &results.tokens[0];
        assert_eq!(hi.pts, Some(10_900_000_000));
        assert_eq!(hi.end, Some(20_100_000_000), "past the jump");
        assert_eq!(hi.confidence, Some(0.5));
        assert_eq!(results.tokens[1].pts, None, "markers carry no time");
        assert_eq!(results.settled, Some(20_200_000_000));
        assert_eq!(results.heard, Some(20_500_000_000));
        assert_eq!(results.final_audio_proc_ms, Some(1200));
    }
}
