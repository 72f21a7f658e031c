//! Turning a script word into Soniox-like sub-word tokens.
//!
//! - Trailing ASCII punctuation (`.,!?;:`) becomes one token of its own ("Hello," → "Hello" + ",").
//! - The letters part is split into pieces: up to 4 characters → 1 piece, 5–9 → 2, 10+ → 3
//!   ("GStreamer" → "GStr" + "eamer").
//! - The first piece carries a leading space, except for the session's very first word and
//!   for words written in scripts without spaces (CJK, kana, Thai).
//! - Times: pieces cover the word contiguously, proportional to their character counts; the
//!   first starts at the word's `start_ms`, the last token ends at its `end_ms`; a punctuation
//!   token gets the last `min(60, span / 4)` ms.

use crate::script::scale;

/// One token's text and span.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Piece {
    pub text: String,
    pub start_ms: u64,
    pub end_ms: u64,
}

const TRAILING_PUNCTUATION: &[char] = &['.', ',', '!', '?', ';', ':'];

/// Whether word number `index` (0-based, session-wide) gets a leading space.
pub(crate) fn leading_space(index: usize, word: &str) -> bool {
    index > 0 && !is_spaceless_word(word)
}

/// The word's tokens.
pub(crate) fn pieces(word: &str, start_ms: u64, end_ms: u64, leading_space: bool) -> Vec<Piece> {
    let end_ms = end_ms.max(start_ms);
    let (letters, punctuation) = split_punctuation(word);
    let span = end_ms - start_ms;
    let punctuation_ms = if punctuation.is_empty() {
        0
    } else {
        (span / 4).min(60)
    };
    let letters_end = end_ms - punctuation_ms;

    let chars: Vec<char> = letters.chars().collect();
    let n = chars.len();
    let cuts: Vec<usize> = match n {
        0..=4 => vec![0, n],
        5..=9 => vec![0, n / 2, n],
        _ => vec![0, n / 3, 2 * n / 3, n],
    };
    let mut out = Vec::with_capacity(cuts.len());
    for pair in cuts.windows(2) {
        let mut text = String::new();
        if pair[0] == 0 && leading_space {
            text.push(' ');
        }
        text.extend(&chars[pair[0]..pair[1]]);
        let total = n.max(1) as u64;
        out.push(Piece {
            text,
            start_ms: start_ms + scale(letters_end - start_ms, pair[0] as u64, total),
            end_ms: start_ms + scale(letters_end - start_ms, pair[1].max(1) as u64, total),
        });
    }
    if let Some(last) = out.last_mut() {
        last.end_ms = letters_end;
    }
    if !punctuation.is_empty() {
        out.push(Piece {
            text: punctuation.to_string(),
            start_ms: letters_end,
            end_ms,
        });
    }
    out
}

/// The interim guess for a partly heard word: the first half of its letters (rounded up),
/// with the same leading space as its first piece.
pub(crate) fn guess(word: &str, leading_space: bool) -> String {
    let (letters, _) = split_punctuation(word);
    let n = letters.chars().count();
    let mut text = String::new();
    if leading_space {
        text.push(' ');
    }
    text.extend(letters.chars().take(n.div_ceil(2)));
    text
}

/// Splits off the run of trailing ASCII punctuation, unless the word is nothing else.
fn split_punctuation(word: &str) -> (&str, &str) {
    let letters = word.trim_end_matches(TRAILING_PUNCTUATION);
    if letters.is_empty() {
        (word, "")
    } else {
        (letters, &word[letters.len()..])
    }
}

fn is_spaceless_word(word: &str) -> bool {
    let (letters, _) = split_punctuation(word);
    !letters.is_empty() && letters.chars().all(is_spaceless_char)
}

/// Characters of writing systems that put no spaces between words.
fn is_spaceless_char(c: char) -> bool {
    matches!(c as u32,
        0x0E00..=0x0E7F       // Thai
        | 0x2E80..=0x2FDF     // CJK radicals, Kangxi radicals
        | 0x3000..=0x303F     // CJK symbols and punctuation
        | 0x3040..=0x309F     // Hiragana
        | 0x30A0..=0x30FF     // Katakana
        | 0x3100..=0x312F     // Bopomofo
        | 0x31F0..=0x31FF     // Katakana phonetic extensions
        | 0x3400..=0x4DBF     // CJK extension A
        | 0x4E00..=0x9FFF     // CJK unified ideographs
        | 0xF900..=0xFAFF     // CJK compatibility ideographs
        | 0xFF00..=0xFFEF     // half-width and full-width forms
        | 0x20000..=0x2FA1F   // CJK extensions B and later
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(p: &[Piece]) -> Vec<&str> {
        p.iter().map(|p| p.text.as_str()).collect()
    }

    fn check(word: &str, start: u64, end: u64, space: bool) -> Vec<Piece> {
        let p = pieces(word, start, end, space);
        let joined: String = p.iter().map(|p| p.text.as_str()).collect();
        assert_eq!(joined.trim(), word, "texts join back");
        assert_eq!(joined.starts_with(' '), space);
        assert_eq!(
            p.first().unwrap().start_ms,
            start,
            "{word}: first starts at word start"
        );
        assert_eq!(
            p.last().unwrap().end_ms,
            end,
            "{word}: last ends at word end"
        );
        for pair in p.windows(2) {
            assert_eq!(pair[0].end_ms, pair[1].start_ms, "{word}: contiguous");
        }
        for piece in &p {
            assert!(piece.start_ms <= piece.end_ms, "{word}: {piece:?}");
            assert!(!piece.text.trim().is_empty());
        }
        p
    }

    #[test]
    fn punctuation_becomes_its_own_token() {
        let p = check("Hello,", 200, 600, false);
        assert_eq!(texts(&p), ["He", "llo", ","]);
        assert_eq!(p[2].start_ms, 540);
        let p = check("Really?!", 0, 100, true);
        assert_eq!(texts(&p), [" Rea", "lly", "?!"]);
        assert_eq!(p[2].start_ms, 75);
    }

    #[test]
    fn long_words_split_into_pieces() {
        assert_eq!(
            texts(&check("GStreamer", 650, 1200, true)),
            [" GStr", "eamer"]
        );
        assert_eq!(texts(&check("word", 0, 100, true)), [" word"]);
        assert_eq!(
            texts(&check("transcription", 0, 1300, true)),
            [" tran", "scri", "ption"]
        );
        let p = check("abcdefghij", 0, 1000, true);
        assert_eq!(p[0].end_ms, 300);
        assert_eq!(p[1].end_ms, 600);
    }

    #[test]
    fn spans_and_edges_hold_for_many_words() {
        let words = [
            "a",
            "ab.",
            "Hello,",
            "GStreamer!",
            "x...",
            "...",
            "internationalization;",
            "é",
            "naïveté.",
        ];
        for (i, word) in words.iter().enumerate() {
            for (start, len) in [(0u64, 0u64), (0, 1), (13, 7), (1000, 333), (5, 10_000)] {
                check(word, start, start + len, i % 2 == 1);
            }
        }
    }

    #[test]
    fn spaceless_scripts_get_no_leading_space() {
        assert!(!leading_space(0, "Hello"));
        assert!(leading_space(1, "Hello"));
        assert!(!leading_space(1, "你好"));
        assert!(!leading_space(3, "こんにちは。"));
        assert!(!leading_space(3, "カタカナ"));
        assert!(!leading_space(2, "สวัสดี"));
        assert!(leading_space(2, "Tokyo東京"));
        let p = check("こんにちは", 0, 500, leading_space(4, "こんにちは"));
        assert_eq!(texts(&p), ["こん", "にちは"]);
    }

    #[test]
    fn guesses_are_the_first_half_of_the_letters() {
        assert_eq!(guess("Hello,", false), "Hel");
        assert_eq!(guess("GStreamer", true), " GStre");
        assert_eq!(guess("ab", true), " a");
        assert_eq!(guess("a.", true), " a");
    }
}
