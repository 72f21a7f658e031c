// SPDX-License-Identifier: MPL-2.0
//! Where a connection's audio still owes a translation: Soniox makes original tokens final
//! before it sends their translation (sometimes in a later message), so a connection that
//! breaks in between leaves final originals untranslated. The replay then starts at the
//! first of them rather than at `final_audio_proc_ms`, and the next connection translates
//! them again (the element skips the originals it already pushed, see `Token::replayed`).

use super::protocol::Token;

/// Tracks the first final `original` token not yet followed by a final translation token.
#[derive(Debug, Default)]
pub struct Untranslated {
    since_ms: Option<u64>,
}

impl Untranslated {
    pub fn observe(&mut self, tokens: &[Token]) {
        for token in tokens.iter().filter(|t| t.is_final) {
            if token.is_translation() {
                // A translation covers every original before it.
                self.since_ms = None;
            } else if token.translation_status.as_deref() == Some("original") {
                if let Some(start) = token.start_ms {
                    self.since_ms.get_or_insert(start);
                }
            }
        }
    }

    /// Where a replay must start (connection ms): `final_ms`, or earlier where final
    /// originals wait for their translation.
    pub fn replay_from(&self, final_ms: u64) -> u64 {
        self.since_ms.map_or(final_ms, |since| since.min(final_ms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(text: &str, status: &str, start_ms: Option<u64>) -> Token {
        Token {
            text: text.into(),
            start_ms,
            end_ms: start_ms.map(|s| s + 100),
            is_final: true,
            translation_status: Some(status.into()),
            ..Token::default()
        }
    }

    #[test]
    fn the_replay_goes_back_to_the_first_original_with_no_translation_yet() {
        let mut owed = Untranslated::default();
        assert_eq!(owed.replay_from(900), 900, "translation off: final_ms");
        owed.observe(&[
            token("One", "original", Some(100)),
            token("Un", "translation", None),
            token(" two", "original", Some(400)),
            token(" three", "original", Some(600)),
            token(" drei", "none", Some(700)),
        ]);
        assert_eq!(owed.replay_from(900), 400);
        assert_eq!(owed.replay_from(300), 300);
        owed.observe(&[token(" deux trois", "translation", None)]);
        assert_eq!(owed.replay_from(900), 900);
    }
}
