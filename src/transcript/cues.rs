// SPDX-License-Identifier: MPL-2.0
//! Turning words into caption cues (contract §4b), free of GStreamer.
//!
//! A cue ends after a word that ends a sentence, before a word that would take it past the
//! character or duration limit or that follows a pause of [`PAUSE`] or more, and wherever
//! the caller closes it (an endpoint, a requested finalize, a speaker change, the end of the
//! stream, a live deadline). Its text is laid out in at most two lines of at most half the
//! character limit, broken at word boundaries.

use std::time::Instant;

use super::words::{is_unspaced, Word};

/// A pause between two words this long or longer ends a cue, ns.
pub const PAUSE: u64 = 700_000_000;

/// What ends a sentence when a word ends with it (closing quotes and brackets aside).
const SENTENCE_ENDS: &[char] = &['.', '?', '!', '…', '。', '？', '！'];
/// What may follow the sentence end inside the same word.
const CLOSING: &[char] = &['"', '\'', '”', '’', ')', ']', '»', '」', '』', '）'];

/// A finished cue. Times are input PTS in ns.
#[derive(Debug, Clone, PartialEq)]
pub struct Cue {
    /// The cue as shown: one line, or two joined by `\n`.
    pub text: String,
    pub pts: Option<u64>,
    pub end: Option<u64>,
    /// When the audio of its last word went out: a live cue's deadline (and its delay, as
    /// `max-observed-delay` counts it) runs from there (contract §4b).
    pub sent: Option<Instant>,
    /// The lowest confidence of its words.
    pub confidence: Option<f64>,
    /// Shared by all its words, when known.
    pub speaker: Option<String>,
    pub language: Option<String>,
    /// How many words it holds.
    pub words: usize,
}

impl From<Word> for Cue {
    /// A word as a buffer of its own (`granularity=word`).
    fn from(word: Word) -> Cue {
        Cue {
            text: word.text,
            pts: word.pts,
            end: word.end,
            sent: word.sent,
            confidence: word.confidence,
            speaker: word.speaker,
            language: word.language,
            words: 1,
        }
    }
}

/// The cue limits (contract §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The longest cue in characters; a line holds at most half of it.
    pub max_chars: usize,
    /// The longest cue in time, ns.
    pub max_duration: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_chars: 84,
            max_duration: 7_000_000_000,
        }
    }
}

/// Gathers words into cues.
#[derive(Debug, Default)]
pub struct CueBuilder {
    limits: Limits,
    open: Vec<Word>,
}

impl CueBuilder {
    pub fn new(limits: Limits) -> CueBuilder {
        CueBuilder {
            limits,
            open: Vec::new(),
        }
    }

    /// Adds a word; returns the cues it finished (the open one, when the word cannot join
    /// it, and the word's own when it ends a sentence).
    pub fn push(&mut self, word: Word) -> Vec<Cue> {
        let mut done = Vec::new();
        if !self.open.is_empty() && !self.joins(&word) {
            done.extend(self.close());
        }
        let ends = ends_sentence(&word.text);
        self.open.push(word);
        if ends {
            done.extend(self.close());
        }
        done
    }

    /// Ends the open cue, if any.
    pub fn close(&mut self) -> Option<Cue> {
        if self.open.is_empty() {
            return None;
        }
        let words = std::mem::take(&mut self.open);
        Some(self.cue(words))
    }

    /// Nothing that starts before `settled` (input PTS) is still to come: the open cue is
    /// finished when no next word can follow it within [`PAUSE`].
    pub fn settle(&mut self, settled: u64) -> Option<Cue> {
        let end = self.open_end()?;
        (settled >= end.saturating_add(PAUSE)).then(|| self.close())?
    }

    /// Where the open cue starts: nothing downstream may move past it.
    pub fn held_pts(&self) -> Option<u64> {
        self.open.iter().find_map(|w| w.pts)
    }

    /// When the last word of the open cue went out: the open cue's live deadline counts from
    /// it (contract §4b: a cue is pushed by its last word's deadline).
    pub fn held_sent(&self) -> Option<Instant> {
        last_sent(&self.open)
    }

    pub fn is_open(&self) -> bool {
        !self.open.is_empty()
    }

    fn open_end(&self) -> Option<u64> {
        self.open.iter().rev().find_map(|w| w.end.or(w.pts))
    }

    fn joins(&self, word: &Word) -> bool {
        if let (Some(end), Some(pts)) = (self.open_end(), word.pts) {
            if pts.saturating_sub(end) >= PAUSE {
                return false;
            }
        }
        if let (Some(start), Some(end)) = (self.held_pts(), word.end.or(word.pts)) {
            if end.saturating_sub(start) > self.limits.max_duration {
                return false;
            }
        }
        let mut texts: Vec<&str> = self.open.iter().map(|w| w.text.as_str()).collect();
        texts.push(&word.text);
        layout(&texts, self.limits.max_chars).is_some()
    }

    fn cue(&self, words: Vec<Word>) -> Cue {
        let texts: Vec<&str> = words.iter().map(|w| w.text.as_str()).collect();
        // A single word longer than a line stands as it is.
        let text = layout(&texts, self.limits.max_chars).unwrap_or_else(|| join(&texts));
        let shared = |get: fn(&Word) -> Option<&String>| {
            let first = get(&words[0]);
            words
                .iter()
                .all(|w| get(w) == first)
                .then(|| first.cloned())
                .flatten()
        };
        Cue {
            text,
            pts: words.iter().find_map(|w| w.pts),
            end: words.iter().rev().find_map(|w| w.end.or(w.pts)),
            sent: last_sent(&words),
            confidence: words
                .iter()
                .filter_map(|w| w.confidence)
                .min_by(f64::total_cmp),
            speaker: shared(|w| w.speaker.as_ref()),
            language: shared(|w| w.language.as_ref()),
            words: words.len(),
        }
    }
}

/// A unit of several words (a translated chunk) too long for one cue, cut at its inner
/// spaces into parts that each fit, its time shared in proportion to their length. A single
/// word too long for a cue stays whole.
pub fn split_to_fit(unit: Word, max_chars: usize) -> Vec<Word> {
    let words: Vec<&str> = unit.text.split_whitespace().collect();
    if words.len() < 2 || layout(&words, max_chars).is_some() {
        return vec![unit];
    }
    let mut parts: Vec<Vec<&str>> = vec![Vec::new()];
    for word in words {
        let last = parts.last_mut().expect("never empty");
        last.push(word);
        if last.len() > 1 && layout(last, max_chars).is_none() {
            last.pop();
            parts.push(vec![word]);
        }
    }
    let texts: Vec<String> = parts.iter().map(|p| p.join(" ")).collect();
    let total: usize = texts.iter().map(|t| t.chars().count()).sum();
    let at = |chars: usize| match (unit.pts, unit.end) {
        (Some(a), Some(b)) if b >= a && total > 0 => {
            Some(a + ((b - a) as u128 * chars as u128 / total as u128) as u64)
        }
        (pts, _) => pts,
    };
    let mut done = 0;
    let count = texts.len();
    texts
        .into_iter()
        .enumerate()
        .map(|(i, text)| {
            let chars = text.chars().count();
            let part = Word {
                pts: at(done),
                end: if i + 1 == count {
                    unit.end
                } else {
                    at(done + chars)
                },
                text,
                ..unit.clone()
            };
            done += chars;
            part
        })
        .collect()
}

/// When the last of `words` that has the time went out: a cue's live deadline counts from it.
fn last_sent(words: &[Word]) -> Option<Instant> {
    words.iter().rev().find_map(|w| w.sent)
}

/// Whether a word ends a sentence.
pub fn ends_sentence(word: &str) -> bool {
    word.trim_end_matches(CLOSING).ends_with(SENTENCE_ENDS)
}

/// Whether a space goes between two words: not inside a script written without spaces.
fn spaced(before: &str, after: &str) -> bool {
    let last = before.chars().rev().find(|c| c.is_alphanumeric());
    let first = after.chars().find(|c| c.is_alphanumeric());
    !(last.is_some_and(is_unspaced) || first.is_some_and(is_unspaced))
}

/// The words joined as spoken, on one line.
fn join(words: &[&str]) -> String {
    let mut text = String::new();
    for (i, word) in words.iter().enumerate() {
        if i > 0 && spaced(words[i - 1], word) {
            text.push(' ');
        }
        text.push_str(word);
    }
    text
}

/// The words in at most two lines of at most `max_chars / 2` characters each, broken at a
/// word boundary so that the longer line is as short as it can be; `None` if they do not fit.
/// A unit of several words (a translated chunk) may be broken at its inner spaces.
pub fn layout(units: &[&str], max_chars: usize) -> Option<String> {
    let words: Vec<&str> = units.iter().flat_map(|u| u.split_whitespace()).collect();
    let words = words.as_slice();
    let line = (max_chars / 2).max(1);
    let one = join(words);
    if one.chars().count() <= line {
        return Some(one);
    }
    (1..words.len())
        .map(|cut| (join(&words[..cut]), join(&words[cut..])))
        .map(|(a, b)| (a.chars().count().max(b.chars().count()), a, b))
        .filter(|(longest, _, _)| *longest <= line)
        .min_by_key(|(longest, _, _)| *longest)
        .map(|(_, a, b)| format!("{a}\n{b}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    fn word(text: &str, start_ms: u64, end_ms: u64) -> Word {
        Word {
            text: text.into(),
            pts: Some(start_ms * MS),
            end: Some(end_ms * MS),
            confidence: Some(0.9),
            ..Word::default()
        }
    }

    fn texts(cues: &[Cue]) -> Vec<&str> {
        cues.iter().map(|c| c.text.as_str()).collect()
    }

    #[test]
    fn a_sentence_is_one_cue_timed_by_its_first_and_last_word() {
        let mut b = CueBuilder::new(Limits::default());
        assert!(b.push(word("Hello", 100, 400)).is_empty());
        assert_eq!(b.held_pts(), Some(100 * MS));
        let mut low = word("there.", 450, 900);
        low.confidence = Some(0.4);
        let cues = b.push(low);
        assert_eq!(texts(&cues), ["Hello there."]);
        assert_eq!(cues[0].pts, Some(100 * MS));
        assert_eq!(cues[0].end, Some(900 * MS));
        assert_eq!(cues[0].confidence, Some(0.4));
        assert_eq!(cues[0].words, 2);
        assert!(!b.is_open());
        assert!(ends_sentence("(so?)") && ends_sentence("“Stop!”") && !ends_sentence("Mr"));
    }

    #[test]
    fn pauses_and_settling_end_a_cue() {
        let mut b = CueBuilder::new(Limits::default());
        b.push(word("one", 0, 300));
        assert_eq!(b.settle(999 * MS), None, "a next word could still follow");
        let cues = b.push(word("two", 1000, 1200));
        assert_eq!(texts(&cues), ["one"], "700 ms of pause");
        assert_eq!(b.settle(1900 * MS).unwrap().text, "two");
        assert_eq!(b.close(), None);
    }

    #[test]
    fn limits_break_a_long_run_into_two_line_cues() {
        let limits = Limits {
            max_chars: 20,
            max_duration: 2_000_000_000,
        };
        let mut b = CueBuilder::new(limits);
        let mut cues = Vec::new();
        for (i, w) in "aa bbb cccc dd eeeee f gg hhhh".split(' ').enumerate() {
            let start = i as u64 * 300;
            cues.extend(b.push(word(w, start, start + 250)));
        }
        cues.extend(b.close());
        for cue in &cues {
            assert!(cue.text.lines().count() <= 2);
            assert!(cue.text.lines().all(|l| l.chars().count() <= 10), "{cue:?}");
            assert!(cue.end.unwrap() - cue.pts.unwrap() <= 2_000_000_000);
        }
        let all: Vec<String> = cues.iter().map(|c| c.text.replace('\n', " ")).collect();
        assert_eq!(all.join(" "), "aa bbb cccc dd eeeee f gg hhhh");
        assert_eq!(texts(&cues)[0], "aa bbb\ncccc dd");
    }

    #[test]
    fn layout_balances_lines_and_never_spaces_unspaced_scripts() {
        assert_eq!(layout(&["a", "b"], 84).unwrap(), "a b");
        assert_eq!(
            layout(&["aaaa", "bb", "cc", "dddd"], 14).unwrap(),
            "aaaa bb\ncc dddd"
        );
        assert_eq!(layout(&["toolongword"], 10), None);
        assert_eq!(
            layout(&["今日", "は", "晴れ", "。"], 84).unwrap(),
            "今日は晴れ。"
        );
        assert_eq!(layout(&["สวัสดี", "ครับ"], 84).unwrap(), "สวัสดีครับ");
    }

    #[test]
    fn a_translated_chunk_is_laid_out_at_its_inner_spaces_and_cut_when_too_long() {
        assert_eq!(
            layout(&["Bonjour à tous,", "et bienvenue"], 30).unwrap(),
            "Bonjour à tous,\net bienvenue"
        );
        let chunk = word("un deux trois quatre cinq six sept", 0, 3200);
        let parts = split_to_fit(chunk, 16);
        let shown: Vec<(&str, u64, u64)> = parts
            .iter()
            .map(|p| (p.text.as_str(), p.pts.unwrap() / MS, p.end.unwrap() / MS))
            .collect();
        // Two lines of 8 at most: parts of 13, 15 and 4 characters, 100 ms each.
        assert_eq!(
            shown,
            [
                ("un deux trois", 0, 1300),
                ("quatre cinq six", 1300, 2800),
                ("sept", 2800, 3200)
            ]
        );
        assert_eq!(split_to_fit(word("short", 0, 10), 16).len(), 1);
    }

    #[test]
    fn a_cue_shares_only_what_all_its_words_share() {
        let mut b = CueBuilder::new(Limits::default());
        let mut a = word("Hola", 0, 200);
        a.language = Some("es".into());
        a.speaker = Some("1".into());
        let mut c = word("amigo", 250, 500);
        c.language = Some("pt".into());
        c.speaker = Some("1".into());
        b.push(a);
        b.push(c);
        let cue = b.close().unwrap();
        assert_eq!(cue.speaker.as_deref(), Some("1"));
        assert_eq!(cue.language, None);
    }
}
