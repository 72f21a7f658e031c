// SPDX-License-Identifier: MPL-2.0
//! Turning Soniox tokens into words.
//!
//! Soniox tokens are sub-word pieces. The rules (contract §4):
//! - a token whose text starts with whitespace starts a new word;
//! - a punctuation-only token joins the word before it (opening marks after a space start one);
//! - a token of a script written without spaces (Chinese, Japanese, Thai, …) is a unit of its
//!   own: it starts a word and the next token starts another;
//! - `<end>` and `<fin>` are never text: they end the utterance.
//!
//! Only final tokens of the original speech become words. A word is complete, and handed
//! out, as soon as the next final token starts a new word, the first non-final token starts a
//! new word, or an endpoint, finalize marker or the end of the stream arrives.

use std::time::Instant;

use super::token::Token;

/// A complete word of the original speech. Times are input PTS in ns.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Word {
    pub text: String,
    pub pts: Option<u64>,
    pub end: Option<u64>,
    /// When its first audio went out (live latency).
    pub sent: Option<Instant>,
    /// The lowest confidence of its tokens.
    pub confidence: Option<f64>,
    pub speaker: Option<String>,
    pub language: Option<String>,
}

/// What ended an utterance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Boundary {
    /// `<end>`: the service detected the end of an utterance.
    Endpoint,
    /// `<fin>`: a finalization completed; `requested`: the user asked for it.
    Finalized { requested: bool },
    /// The session ended (finished, drained or timed out).
    EndOfStream,
}

/// What the assembler hands out, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Assembled {
    /// The speaker of the words that follow differs from the words before (diarization).
    SpeakerChange(String),
    Word(Word),
    /// An utterance ended. `text` is its final text (empty when no word came since the
    /// previous boundary); `end` is where its last word ends.
    Boundary {
        kind: Boundary,
        text: String,
        end: Option<u64>,
    },
}

/// The result of feeding one server message.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Fed {
    pub out: Vec<Assembled>,
    /// Text of this message's new final tokens of the original speech, as sent.
    pub final_text: String,
    /// The current non-final tail of the original speech, as sent.
    pub interim_text: String,
}

/// Joins the final tokens of one session into words.
#[derive(Debug, Default)]
pub struct WordAssembler {
    pending: Option<PendingWord>,
    last_speaker: Option<String>,
    utterance: String,
    utterance_end: Option<u64>,
    /// The non-final tail of the latest message, kept for a drain that times out.
    interim: Vec<Token>,
    /// A new connection continues the utterance: its first token starts a new word even
    /// without a leading space (a session's first token has none).
    after_break: bool,
    /// Spoken tokens since the last marker: some replayed (pushed already), some new.
    replayed_since_marker: bool,
    fresh_since_marker: bool,
}

#[derive(Debug)]
struct PendingWord {
    word: Word,
    /// The word is a unit of a script without spaces: the next piece starts a new word.
    unit: bool,
}

impl WordAssembler {
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds the tokens of one server message.
    pub fn feed(&mut self, tokens: &[Token]) -> Fed {
        let mut fed = Fed::default();
        self.interim.clear();
        for token in tokens {
            if token.is_marker() {
                // An utterance end replayed with the words it ended was handed out already.
                let replayed = self.replayed_since_marker && !self.fresh_since_marker;
                if token.is_final {
                    self.replayed_since_marker = false;
                    self.fresh_since_marker = false;
                }
                if replayed {
                    continue;
                }
            } else if token.replayed {
                // An earlier connection made it final: its word went out already.
                self.replayed_since_marker = true;
                continue;
            } else if !token.is_translation() && !token.text.is_empty() {
                self.fresh_since_marker |= token.is_final;
            }
            if token.is_final && token.text == Token::END {
                self.boundary(Boundary::Endpoint, &mut fed.out);
            } else if token.is_final && token.text == Token::FIN {
                let requested = token.requested;
                self.boundary(Boundary::Finalized { requested }, &mut fed.out);
            } else if token.is_marker() || token.text.is_empty() || token.is_translation() {
                // Non-final markers, empty pieces and translations never become words.
            } else if token.is_final {
                fed.final_text.push_str(&token.text);
                self.add_piece(token, &mut fed.out);
            } else {
                fed.interim_text.push_str(&token.text);
                self.interim.push(token.clone());
            }
        }
        // The first non-final token may show that the pending final word is complete.
        if let Some(first) = self.interim.first() {
            if self
                .pending
                .as_ref()
                .is_some_and(|p| starts_new_word(p, &first.text))
            {
                self.flush_word(&mut fed.out);
            }
        }
        fed
    }

    /// The session ended normally: the pending word is complete, the utterance too.
    pub fn finish(&mut self) -> Vec<Assembled> {
        let mut out = Vec::new();
        self.interim.clear();
        self.boundary(Boundary::EndOfStream, &mut out);
        out
    }

    /// The connection broke and a new one continues the stream, replaying what was not
    /// final: the pending final word is complete, the non-final tail is void, and the
    /// utterance goes on.
    pub fn break_connection(&mut self) -> Vec<Assembled> {
        let mut out = Vec::new();
        self.interim.clear();
        self.flush_word(&mut out);
        self.after_break = true;
        out
    }

    /// The non-final tail of the latest message (emptied).
    pub fn take_interim(&mut self) -> Vec<Token> {
        std::mem::take(&mut self.interim)
    }

    /// Puts back a non-final tail (of a broken connection) for [`Self::finish_with_interim`].
    pub fn restore_interim(&mut self, tokens: Vec<Token>) {
        self.interim = tokens;
    }

    /// The session ended without finalizing its last tokens (drain timeout): the non-final
    /// tail is taken as it is.
    pub fn finish_with_interim(&mut self) -> Vec<Assembled> {
        let mut out = Vec::new();
        for token in std::mem::take(&mut self.interim) {
            self.add_piece(&token, &mut out);
        }
        self.boundary(Boundary::EndOfStream, &mut out);
        out
    }

    /// Whether a word is waiting for the token that completes it.
    pub fn has_pending_word(&self) -> bool {
        self.pending.is_some()
    }

    /// Where the word waiting for completion starts (its time is not mapped yet).
    pub fn pending_pts(&self) -> Option<u64> {
        self.pending.as_ref().and_then(|p| p.word.pts)
    }

    fn boundary(&mut self, kind: Boundary, out: &mut Vec<Assembled>) {
        self.flush_word(out);
        let text = std::mem::take(&mut self.utterance).trim().to_string();
        out.push(Assembled::Boundary {
            kind,
            text,
            end: self.utterance_end.take(),
        });
    }

    fn add_piece(&mut self, token: &Token, out: &mut Vec<Assembled>) {
        if std::mem::take(&mut self.after_break)
            && !self.utterance.is_empty()
            && !token.text.starts_with(char::is_whitespace)
        {
            self.utterance.push(' ');
        }
        self.utterance.push_str(&token.text);
        for piece in split_at_whitespace(token) {
            let punctuation = is_punctuation_only(&piece.text);
            let opening = punctuation && piece.after_space && is_opening_mark(&piece.text);
            let joins = match &self.pending {
                None => false,
                Some(_) if punctuation => !opening,
                Some(p) => !starts_new_word(p, &piece.raw),
            };
            if joins {
                let pending = self.pending.as_mut().expect("checked above");
                pending.word.text.push_str(&piece.text);
                // A word never ends before it starts, nor earlier than its pieces so far.
                let word = &mut pending.word;
                word.end = word
                    .end
                    .max(piece.end)
                    .map(|end| end.max(word.pts.unwrap_or(0)));
                word.confidence = lowest(word.confidence, token.confidence);
                pending.unit &= punctuation;
            } else {
                self.flush_word(out);
                self.pending = Some(PendingWord {
                    unit: is_unit_script(&piece.text),
                    word: Word {
                        text: piece.text,
                        pts: piece.pts,
                        end: piece.end,
                        sent: token.sent,
                        confidence: token.confidence,
                        speaker: token.speaker.clone(),
                        language: token.language.clone(),
                    },
                });
            }
        }
    }

    fn flush_word(&mut self, out: &mut Vec<Assembled>) {
        let Some(PendingWord { word, .. }) = self.pending.take() else {
            return;
        };
        if let Some(speaker) = &word.speaker {
            if self.last_speaker.as_ref() != Some(speaker) {
                self.last_speaker = Some(speaker.clone());
                out.push(Assembled::SpeakerChange(speaker.clone()));
            }
        }
        if word.end.is_some() {
            self.utterance_end = word.end;
        }
        out.push(Assembled::Word(word));
    }
}

/// The lower of two confidences, either of which may be unknown.
pub(crate) fn lowest(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Whether a piece with raw text `raw` (leading whitespace included) starts a new word
/// after `pending`.
fn starts_new_word(pending: &PendingWord, raw: &str) -> bool {
    raw.starts_with(char::is_whitespace)
        || (pending.unit && !is_punctuation_only(raw.trim_start()))
        || is_unit_script(raw.trim_start())
}

/// A piece of a token between whitespace, with its share of the token's time.
struct Piece {
    raw: String,
    text: String,
    after_space: bool,
    pts: Option<u64>,
    end: Option<u64>,
}

/// Splits a token at inner whitespace (rare: Soniox pieces are words or smaller). Each piece
/// gets a share of the token's time in proportion to its length.
fn split_at_whitespace(token: &Token) -> Vec<Piece> {
    let text = token.text.as_str();
    let mut spans = Vec::new();
    let mut start = None;
    for (i, c) in text.char_indices() {
        match (c.is_whitespace(), start) {
            (false, None) => start = Some(i),
            (true, Some(s)) => {
                spans.push((s, i));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        spans.push((s, text.len()));
    }
    let total: usize = spans
        .iter()
        .map(|(s, e)| text[*s..*e].chars().count())
        .sum();
    let (t0, t1) = (token.pts, token.end);
    let mut done = 0usize;
    let mut previous_end = 0usize;
    spans
        .into_iter()
        .map(|(s, e)| {
            let chars = text[s..e].chars().count();
            let at = |n: usize| match (t0, t1) {
                (Some(a), Some(b)) if b >= a && total > 0 => {
                    Some(a + ((b - a) as u128 * n as u128 / total as u128) as u64)
                }
                _ => None,
            };
            let piece = Piece {
                raw: text[previous_end..e].to_string(),
                text: text[s..e].to_string(),
                after_space: s > previous_end,
                pts: if done == 0 { t0 } else { at(done) },
                end: if done + chars == total {
                    t1
                } else {
                    at(done + chars)
                },
            };
            done += chars;
            previous_end = e;
            piece
        })
        .collect()
}

fn is_punctuation_only(text: &str) -> bool {
    !text.is_empty() && text.chars().all(is_punctuation)
}

fn is_punctuation(c: char) -> bool {
    c.is_ascii_punctuation()
        || matches!(c,
            '\u{00A1}' | '\u{00AB}' | '\u{00B7}' | '\u{00BB}' | '\u{00BF}' // ¡ « · » ¿
            | '\u{2010}'..='\u{2027}'   // dashes, quotes, ellipsis
            | '\u{2039}' | '\u{203A}'   // ‹ ›
            | '\u{3001}'..='\u{3003}'   // 、 。 〃
            | '\u{3008}'..='\u{3011}'   // 〈 〉 《 》 「 」 『 』 【 】
            | '\u{FF01}'..='\u{FF0F}'   // fullwidth ！ ＂ … ／
            | '\u{FF1A}'..='\u{FF1F}'   // ： ； ＜ ＝ ＞ ？
            | '\u{FF5B}'..='\u{FF65}'   // ｛ … ･
            | '\u{060C}' | '\u{061F}' | '\u{0964}' | '\u{0965}') // ، ؟ । ॥
}

fn is_opening_mark(text: &str) -> bool {
    text.chars().next().is_some_and(|c| {
        matches!(
            c,
            '(' | '['
                | '{'
                | '¡'
                | '¿'
                | '«'
                | '‹'
                | '\u{201C}'
                | '\u{2018}'
                | '\u{300C}'
                | '\u{300E}'
                | '\u{3010}'
                | '\u{3008}'
                | '\u{300A}'
                | '\u{FF08}'
        )
    })
}

/// Scripts written without spaces between words: each token is a unit of its own.
fn is_unit_script(text: &str) -> bool {
    text.chars()
        .find(|c| c.is_alphanumeric())
        .is_some_and(is_unspaced)
}

/// Whether `c` belongs to a script written without spaces between words.
pub fn is_unspaced(c: char) -> bool {
    matches!(c,
            '\u{0E00}'..='\u{0EFF}'    // Thai, Lao
            | '\u{1000}'..='\u{109F}'  // Myanmar
            | '\u{1780}'..='\u{17FF}'  // Khmer
            | '\u{3040}'..='\u{30FF}'  // Hiragana, Katakana
            | '\u{31F0}'..='\u{31FF}'  // Katakana extensions
            | '\u{3400}'..='\u{4DBF}'  // CJK extension A
            | '\u{4E00}'..='\u{9FFF}'  // CJK unified ideographs
            | '\u{F900}'..='\u{FAFF}'  // CJK compatibility ideographs
            | '\u{FF66}'..='\u{FF9F}'  // halfwidth Katakana
            | '\u{20000}'..='\u{2FA1F}') // CJK extensions B+
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tok(text: &str, start: u64, end: u64, is_final: bool) -> Token {
        Token {
            text: text.into(),
            pts: Some(start),
            end: Some(end),
            is_final,
            ..Default::default()
        }
    }

    fn marker(text: &str) -> Token {
        Token {
            text: text.into(),
            is_final: true,
            ..Default::default()
        }
    }

    fn words(out: &[Assembled]) -> Vec<(String, Option<u64>, Option<u64>)> {
        out.iter()
            .filter_map(|a| match a {
                Assembled::Word(w) => Some((w.text.clone(), w.pts, w.end)),
                _ => None,
            })
            .collect()
    }

    fn texts(out: &[Assembled]) -> Vec<String> {
        words(out).into_iter().map(|w| w.0).collect()
    }

    #[test]
    fn a_broken_connection_keeps_the_utterance_and_voids_the_tail() {
        let mut a = WordAssembler::new();
        let fed = a.feed(&[
            tok(" Hello", 0, 300, true),
            tok(",", 300, 320, true),
            tok(" wor", 400, 600, false),
        ]);
        assert_eq!(texts(&fed.out), ["Hello,"]);
        assert!(texts(&a.feed(&[tok(" big", 330, 390, true)]).out).is_empty());
        assert_eq!(texts(&a.break_connection()), ["big"], "final, so complete");
        assert!(!a.has_pending_word());
        // The new connection hears the replayed audio: " wor" was void, " world" comes.
        let out = a.feed(&[tok("world", 0, 200, true), marker("<end>")]).out;
        assert_eq!(texts(&out), ["world"]);
        let Some(Assembled::Boundary { text, .. }) = out.last() else {
            panic!("an endpoint boundary")
        };
        assert_eq!(
            text, "Hello, big world",
            "one utterance across the connections"
        );
    }

    #[test]
    fn joins_sub_word_pieces_and_punctuation() {
        let mut a = WordAssembler::new();
        let fed = a.feed(&[
            tok("Hel", 100, 200, true),
            tok("lo", 200, 300, true),
            tok(",", 300, 320, true),
            tok(" GStr", 400, 500, true),
            tok("eamer", 500, 700, true),
            tok("!", 700, 720, true),
        ]);
        assert_eq!(
            words(&fed.out),
            vec![("Hello,".to_string(), Some(100), Some(320))],
            "the last word waits for what completes it"
        );
        assert_eq!(fed.final_text, "Hello, GStreamer!");
        assert!(a.has_pending_word());
        let out = a.finish();
        assert_eq!(
            words(&out),
            vec![("GStreamer!".to_string(), Some(400), Some(720))]
        );
        assert_eq!(
            out.last().unwrap(),
            &Assembled::Boundary {
                kind: Boundary::EndOfStream,
                text: "Hello, GStreamer!".into(),
                end: Some(720)
            }
        );
    }

    #[test]
    fn a_non_final_token_that_starts_a_word_completes_the_pending_word() {
        let mut a = WordAssembler::new();
        let fed = a.feed(&[tok("What's", 120, 420, true), tok(" the", 420, 540, false)]);
        assert_eq!(texts(&fed.out), vec!["What's"]);
        assert_eq!(fed.interim_text, " the");
        assert!(!a.has_pending_word());
    }

    #[test]
    fn a_non_final_token_that_continues_the_word_keeps_it_pending() {
        let mut a = WordAssembler::new();
        let fed = a.feed(&[tok(" wea", 540, 700, true), tok("ther", 700, 900, false)]);
        assert!(texts(&fed.out).is_empty());
        let fed = a.feed(&[
            tok("ther", 700, 900, true),
            tok("?", 900, 960, true),
            marker("<end>"),
        ]);
        assert_eq!(
            words(&fed.out),
            vec![("weather?".to_string(), Some(540), Some(960))]
        );
        assert_eq!(
            fed.out.last().unwrap(),
            &Assembled::Boundary {
                kind: Boundary::Endpoint,
                text: "weather?".into(),
                end: Some(960)
            }
        );
    }

    #[test]
    fn non_final_text_never_becomes_a_word() {
        let mut a = WordAssembler::new();
        let fed = a.feed(&[tok(" How", 0, 100, false), tok("'re", 100, 200, false)]);
        assert!(fed.out.is_empty());
        assert_eq!(fed.interim_text, " How're");
        // The guess changes before becoming final.
        let fed = a.feed(&[tok(" How", 0, 100, true), tok(" are", 100, 200, true)]);
        assert_eq!(texts(&fed.out), vec!["How"]);
        assert_eq!(texts(&a.finish()), vec!["are"]);
    }

    #[test]
    fn markers_are_events_never_text() {
        let mut a = WordAssembler::new();
        let fed = a.feed(&[tok(" one", 0, 100, true), marker("<fin>"), marker("<end>")]);
        assert_eq!(texts(&fed.out), vec!["one"]);
        assert_eq!(fed.final_text, " one");
        let boundaries: Vec<_> = fed
            .out
            .iter()
            .filter_map(|a| match a {
                Assembled::Boundary { kind, text, .. } => Some((*kind, text.clone())),
                _ => None,
            })
            .collect();
        assert_eq!(
            boundaries,
            vec![
                (Boundary::Finalized { requested: false }, "one".into()),
                (Boundary::Endpoint, String::new())
            ]
        );
    }

    #[test]
    fn scripts_without_spaces_give_one_word_per_token() {
        let mut a = WordAssembler::new();
        let mut out = a
            .feed(&[
                tok("你好", 0, 300, true),
                tok("世界", 300, 600, true),
                tok("。", 600, 650, true),
                tok("こんにちは", 700, 900, true),
                tok("ABC", 900, 1000, true),
            ])
            .out;
        out.extend(a.finish());
        assert_eq!(texts(&out), vec!["你好", "世界。", "こんにちは", "ABC"]);
    }

    #[test]
    fn thai_tokens_are_units() {
        let mut a = WordAssembler::new();
        let mut out = a
            .feed(&[tok("สวัสดี", 0, 300, true), tok("ครับ", 300, 500, true)])
            .out;
        out.extend(a.finish());
        assert_eq!(texts(&out), vec!["สวัสดี", "ครับ"]);
    }

    #[test]
    fn opening_marks_attach_to_the_next_word() {
        let mut a = WordAssembler::new();
        let mut out = a
            .feed(&[
                tok("Dijo", 0, 100, true),
                tok(" ¿", 100, 110, true),
                tok("qué", 110, 200, true),
                tok("?", 200, 210, true),
            ])
            .out;
        out.extend(a.finish());
        assert_eq!(texts(&out), vec!["Dijo", "¿qué?"]);
    }

    #[test]
    fn leading_punctuation_without_a_word_is_a_word() {
        let mut a = WordAssembler::new();
        let mut out = a
            .feed(&[tok("...", 0, 50, true), tok(" so", 60, 100, true)])
            .out;
        out.extend(a.finish());
        assert_eq!(texts(&out), vec!["...", "so"]);
    }

    #[test]
    fn tokens_with_inner_spaces_are_split_with_shared_time() {
        let mut a = WordAssembler::new();
        let mut out = a.feed(&[tok(" ten Morgen", 1000, 2000, true)]).out;
        out.extend(a.finish());
        assert_eq!(
            words(&out),
            vec![
                ("ten".to_string(), Some(1000), Some(1333)),
                ("Morgen".to_string(), Some(1333), Some(2000))
            ]
        );
    }

    #[test]
    fn speaker_changes_come_before_the_first_word_of_the_new_speaker() {
        let with = |text: &str, speaker: &str| Token {
            speaker: Some(speaker.into()),
            ..tok(text, 0, 10, true)
        };
        let mut a = WordAssembler::new();
        let mut out = a
            .feed(&[with("Hi", "1"), with(" there", "1"), with(" Hello", "2")])
            .out;
        out.extend(a.finish());
        let kinds: Vec<String> = out
            .iter()
            .map(|a| match a {
                Assembled::SpeakerChange(s) => format!("speaker {s}"),
                Assembled::Word(w) => w.text.clone(),
                Assembled::Boundary { .. } => "|".into(),
            })
            .collect();
        assert_eq!(
            kinds,
            vec!["speaker 1", "Hi", "there", "speaker 2", "Hello", "|"]
        );
    }

    #[test]
    fn what_an_earlier_connection_made_final_is_not_handed_out_again() {
        let mut a = WordAssembler::new();
        let replayed = |text: &str, start: u64, end: u64| Token {
            replayed: true,
            ..tok(text, start, end, true)
        };
        let fed = a.feed(&[
            replayed("One", 0, 300),
            replayed(" two", 300, 600),
            marker("<end>"),
            tok(" Three", 1000, 1300, true),
            marker("<end>"),
        ]);
        assert_eq!(fed.final_text, " Three");
        assert_eq!(
            words(&fed.out),
            [("Three".to_string(), Some(1000), Some(1300))]
        );
        let ends: Vec<String> = fed
            .out
            .iter()
            .filter_map(|a| match a {
                Assembled::Boundary { text, .. } => Some(text.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(
            ends,
            ["Three"],
            "the replayed utterance's end went out before"
        );
    }

    #[test]
    fn translations_and_empty_tokens_are_not_words() {
        let mut a = WordAssembler::new();
        let translated = Token {
            translation_status: Some("translation".into()),
            ..tok("Gu", 0, 0, true)
        };
        let mut out = a
            .feed(&[
                tok("Good", 0, 200, true),
                tok("", 200, 200, true),
                translated,
            ])
            .out;
        out.extend(a.finish());
        assert_eq!(texts(&out), vec!["Good"]);
    }

    #[test]
    fn drain_timeout_takes_the_non_final_tail() {
        let mut a = WordAssembler::new();
        a.feed(&[
            tok("One", 0, 100, true),
            tok(" two", 100, 200, false),
            tok(" thr", 200, 250, false),
        ]);
        let out = a.finish_with_interim();
        assert_eq!(texts(&out), vec!["two", "thr"]);
        assert_eq!(
            out.last().unwrap(),
            &Assembled::Boundary {
                kind: Boundary::EndOfStream,
                text: "One two thr".into(),
                end: Some(250)
            }
        );
    }

    #[test]
    fn utterance_text_resets_after_each_boundary() {
        let mut a = WordAssembler::new();
        a.feed(&[tok("A", 0, 10, true), marker("<end>")]);
        let fed = a.feed(&[tok(" B", 20, 30, true), marker("<end>")]);
        assert!(fed.out.contains(&Assembled::Boundary {
            kind: Boundary::Endpoint,
            text: "B".into(),
            end: Some(30)
        }));
    }
}
