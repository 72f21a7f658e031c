// SPDX-License-Identifier: MPL-2.0
//! What the service says is checked before anything uses it (contract §8).
//!
//! One [`Checker`] per connection follows the messages and refuses those that cannot be
//! right: times beyond the audio sent on the connection, `final_audio_proc_ms` or
//! `total_audio_proc_ms` going back, more than [`MAX_TOKENS`] tokens, a token that ends before it starts, a final token after
//! a non-final one, a final token
//! that goes back before the previous one or repeats it, a token that goes back before the
//! one ahead of it, `finished` before the end of the audio was sent or short of it. A refused
//! message breaks the connection (the session reconnects and replays), so nothing of it is
//! ever pushed. Times a little past the audio sent (rounding) are clamped to it, so every
//! time that gets through maps inside the input; the times of `<end>` and `<fin>` are
//! dropped (Soniox does not specify them).

use super::protocol::ServerMessage;

/// Times up to this far beyond the audio sent are taken as rounding and clamped.
pub const BEYOND_SLACK_MS: u64 = 100;
/// `finished` may report this much less final audio than was sent (rounding, a last partial
/// frame) without counting as short.
pub const FINISHED_SLACK_MS: u64 = 1000;

/// More tokens than this in one message is not a transcript (Soniox sends the new finals and
/// the non-final tail: a few hundred at most, even after a long finalize).
pub const MAX_TOKENS: usize = 10_000;

/// Follows one connection's messages.
#[derive(Debug, Default)]
pub struct Checker {
    final_ms: u64,
    total_ms: u64,
    /// The last final token of the original speech: start, end, text.
    last_final: Option<(u64, u64, String)>,
}

impl Checker {
    pub fn new() -> Checker {
        Checker::default()
    }

    /// The latest `final_audio_proc_ms` taken (0 before any).
    pub fn final_ms(&self) -> u64 {
        self.final_ms
    }

    /// The latest `total_audio_proc_ms` taken (0 before any).
    pub fn total_ms(&self) -> u64 {
        self.total_ms
    }

    /// Checks `message`, received when `sent_ms` of audio had been sent on the connection
    /// (`ended`: and the end of the audio). Returns it with its times clamped to the audio
    /// sent, or what is wrong with it.
    pub fn check(
        &mut self,
        mut message: ServerMessage,
        sent_ms: u64,
        ended: bool,
    ) -> Result<ServerMessage, String> {
        if message.tokens.len() > MAX_TOKENS {
            return Err(format!(
                "a message of {} tokens (at most {MAX_TOKENS} are taken)",
                message.tokens.len()
            ));
        }
        // `what` names the time, made only for an error (not for every token).
        let within = |what: &dyn Fn() -> String, ms: u64| -> Result<u64, String> {
            if ms > sent_ms.saturating_add(BEYOND_SLACK_MS) {
                Err(format!(
                    "{} {ms} ms is beyond the {sent_ms} ms of audio sent",
                    what()
                ))
            } else {
                Ok(ms.min(sent_ms))
            }
        };
        let mut final_ms = self.final_ms;
        if let Some(ms) = message.final_audio_proc_ms {
            let ms = within(&|| "final_audio_proc_ms".into(), ms)?;
            if ms < self.final_ms {
                return Err(format!(
                    "final_audio_proc_ms went back from {} to {ms} ms",
                    self.final_ms
                ));
            }
            final_ms = ms;
            message.final_audio_proc_ms = Some(ms);
        }
        let mut total_ms = self.total_ms;
        if let Some(ms) = message.total_audio_proc_ms {
            let ms = within(&|| "total_audio_proc_ms".into(), ms)?;
            if ms < self.total_ms {
                return Err(format!(
                    "total_audio_proc_ms went back from {} to {ms} ms",
                    self.total_ms
                ));
            }
            total_ms = ms;
            message.total_audio_proc_ms = Some(ms);
        }
        if let (Some(done), Some(total)) =
            (message.final_audio_proc_ms, message.total_audio_proc_ms)
        {
            if done > total {
                return Err(format!(
                    "final_audio_proc_ms {done} ms is beyond total_audio_proc_ms {total} ms"
                ));
            }
        }
        let mut last_final = self.last_final.clone();
        // Tokens come in time order: the start of the previous timed token of the speech.
        let mut previous_start = last_final.as_ref().map_or(0, |(start, _, _)| *start);
        // Finals come first, then the non-final tail.
        let mut in_tail = false;
        for token in &mut message.tokens {
            if token.is_marker() {
                token.start_ms = None;
                token.end_ms = None;
                continue;
            }
            let name = || format!("token {:?}", excerpt(&token.text));
            if !token.is_translation() {
                if token.is_final && in_tail {
                    return Err(format!("final {} after a non-final one", name()));
                }
                in_tail |= !token.is_final;
            }
            if let Some(ms) = token.start_ms {
                token.start_ms = Some(within(&|| format!("{} starts at", name()), ms)?);
            }
            if let Some(ms) = token.end_ms {
                token.end_ms = Some(within(&|| format!("{} ends at", name()), ms)?);
            }
            if let (Some(start), Some(end)) = (token.start_ms, token.end_ms) {
                if end < start {
                    return Err(format!(
                        "{} ends at {end} ms, before it starts at {start} ms",
                        name()
                    ));
                }
            }
            let (Some(start), false) = (token.start_ms, token.is_translation()) else {
                continue;
            };
            if let Some((last_start, last_end, last_text)) = &last_final {
                if start < *last_start {
                    let kind = if token.is_final { "final" } else { "non-final" };
                    return Err(format!(
                        "{kind} {} at {start} ms goes back before the final token at {last_start} ms",
                        name()
                    ));
                }
                if token.is_final
                    && start == *last_start
                    && token.end_ms.unwrap_or(start) == *last_end
                    && token.text == *last_text
                {
                    return Err(format!("final {} at {start} ms came twice", name()));
                }
            }
            if start < previous_start {
                return Err(format!(
                    "{} at {start} ms goes back before the token at {previous_start} ms",
                    name()
                ));
            }
            previous_start = start;
            if token.is_final {
                last_final = Some((start, token.end_ms.unwrap_or(start), token.text.clone()));
            }
        }
        if message.finished {
            if !ended {
                return Err("finished before the end of the audio was sent".to_string());
            }
            if final_ms.saturating_add(FINISHED_SLACK_MS) < sent_ms {
                return Err(format!(
                    "finished with only {final_ms} ms of the {sent_ms} ms of audio sent final"
                ));
            }
        }
        self.final_ms = final_ms;
        self.total_ms = total_ms;
        self.last_final = last_final;
        Ok(message)
    }
}

fn excerpt(text: &str) -> String {
    const MAX: usize = 40;
    match text.char_indices().nth(MAX) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(json: &str) -> ServerMessage {
        ServerMessage::parse(json).unwrap()
    }

    fn tokens(list: &[(&str, u64, u64, bool)]) -> String {
        let tokens: Vec<String> = list
            .iter()
            .map(|(text, start, end, is_final)| {
                format!(
                    r#"{{"text": "{text}", "start_ms": {start}, "end_ms": {end}, "is_final": {is_final}}}"#
                )
            })
            .collect();
        format!(r#"{{"tokens": [{}]}}"#, tokens.join(","))
    }

    #[test]
    fn good_messages_pass_with_marker_times_dropped() {
        let mut checker = Checker::new();
        let first = message(
            r#"{"tokens": [{"text": "Hi", "start_ms": 100, "end_ms": 300, "is_final": true},
                           {"text": "<end>", "start_ms": 99999999, "is_final": true},
                           {"text": " there", "start_ms": 300, "end_ms": 500, "is_final": false}],
                "final_audio_proc_ms": 300, "total_audio_proc_ms": 600}"#,
        );
        let checked = checker.check(first, 600, false).unwrap();
        assert_eq!(checked.tokens[1].start_ms, None, "<end> has no time");
        assert_eq!(checked.tokens[0].start_ms, Some(100));
        let next = message(&tokens(&[
            (" there", 300, 500, true),
            ("!", 500, 500, true),
        ]));
        assert!(checker.check(next, 700, false).is_ok());
        let finished = message(
            r#"{"tokens": [], "final_audio_proc_ms": 700, "total_audio_proc_ms": 700, "finished": true}"#,
        );
        assert!(checker.check(finished, 700, true).is_ok());
    }

    #[test]
    fn times_a_little_past_the_audio_are_clamped_and_further_ones_refused() {
        let mut checker = Checker::new();
        let checked = checker
            .check(message(&tokens(&[("a", 950, 1040, false)])), 1000, false)
            .unwrap();
        assert_eq!(checked.tokens[0].end_ms, Some(1000));
        let error = checker
            .check(
                message(&tokens(&[(" ghost", 999_999, 1_000_000, true)])),
                1000,
                false,
            )
            .unwrap_err();
        assert_eq!(
            error,
            "token \" ghost\" starts at 999999 ms is beyond the 1000 ms of audio sent"
        );
        let huge = message(r#"{"tokens": [], "final_audio_proc_ms": 8000000000000}"#);
        assert!(checker
            .check(huge, 1000, false)
            .unwrap_err()
            .starts_with("final_audio_proc_ms 8000000000000 ms is beyond"));
    }

    #[test]
    fn a_flood_of_tokens_is_refused() {
        let flood = vec![("a", 10, 10, false); MAX_TOKENS + 1];
        let error = Checker::new()
            .check(message(&tokens(&flood)), 1000, false)
            .unwrap_err();
        assert_eq!(error, "a message of 10001 tokens (at most 10000 are taken)");
    }

    #[test]
    fn progress_that_goes_back_is_refused() {
        let mut checker = Checker::new();
        let forward =
            message(r#"{"tokens": [], "final_audio_proc_ms": 500, "total_audio_proc_ms": 800}"#);
        checker.check(forward, 1000, false).unwrap();
        let back = message(r#"{"tokens": [], "final_audio_proc_ms": 400}"#);
        assert_eq!(
            checker.check(back, 1000, false).unwrap_err(),
            "final_audio_proc_ms went back from 500 to 400 ms"
        );
        let inverted =
            message(r#"{"tokens": [], "final_audio_proc_ms": 900, "total_audio_proc_ms": 850}"#);
        assert!(checker
            .check(inverted, 1000, false)
            .unwrap_err()
            .contains("beyond total_audio_proc_ms"));
    }

    #[test]
    fn repeated_backward_and_inverted_tokens_are_refused() {
        let mut checker = Checker::new();
        let words = tokens(&[("One", 0, 200, true), (" two", 200, 400, true)]);
        checker.check(message(&words), 1000, false).unwrap();
        assert!(checker
            .check(message(&words), 1000, false)
            .unwrap_err()
            .contains("goes back before the final token at 200 ms"));
        let again = tokens(&[(" two", 200, 400, true)]);
        assert_eq!(
            checker.check(message(&again), 1000, false).unwrap_err(),
            "final token \" two\" at 200 ms came twice"
        );
        let early_tail = tokens(&[(" zero", 100, 150, false)]);
        assert!(checker
            .check(message(&early_tail), 1000, false)
            .unwrap_err()
            .starts_with("non-final token"));
        let final_after_tail = tokens(&[(" five", 800, 900, false), (" six", 900, 950, true)]);
        assert_eq!(
            checker
                .check(message(&final_after_tail), 1000, false)
                .unwrap_err(),
            "final token \" six\" after a non-final one"
        );
        let inverted = tokens(&[(" three", 600, 500, true)]);
        assert!(checker
            .check(message(&inverted), 1000, false)
            .unwrap_err()
            .contains("before it starts"));
        let unordered_tail = tokens(&[(" five", 800, 900, false), (" four", 700, 800, false)]);
        assert_eq!(
            checker
                .check(message(&unordered_tail), 1000, false)
                .unwrap_err(),
            "token \" four\" at 700 ms goes back before the token at 800 ms"
        );
        // A refused message changes nothing: the next good one still passes.
        let next = tokens(&[(",", 400, 400, true), (" three", 450, 600, true)]);
        assert!(checker.check(message(&next), 1000, false).is_ok());
    }

    #[test]
    fn finished_must_come_after_the_end_of_the_audio_and_cover_it() {
        let finished = |ms: u64| {
            message(&format!(
                r#"{{"tokens": [], "final_audio_proc_ms": {ms}, "total_audio_proc_ms": {ms}, "finished": true}}"#
            ))
        };
        let mut checker = Checker::new();
        assert_eq!(
            checker.check(finished(6000), 6000, false).unwrap_err(),
            "finished before the end of the audio was sent"
        );
        assert_eq!(
            checker.check(finished(6000), 20_000, true).unwrap_err(),
            "finished with only 6000 ms of the 20000 ms of audio sent final"
        );
        assert!(checker.check(finished(19_500), 20_000, true).is_ok());
    }
}
