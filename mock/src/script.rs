//! Scripted transcripts: what the stand-in server pretends to recognize.
//!
//! File format (see [`Script::parse`]):
//! ```text
//! # Lines starting with '#' are comments.
//! # One word per line: <start_ms> <end_ms> <word>
//! # A blank line ends an utterance.
//! # A line "speaker <label>" sets the speaker of the utterance that follows,
//! # a line "language <code>" its language.
//! speaker 1
//! 200 600 Hello,
//! 650 1200 GStreamer
//!
//! speaker 2
//! language es
//! 2600 2900 Adiós.
//! ```

use std::path::Path;

use crate::tokenize;

/// A whole scripted transcript: utterances in timeline order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Script {
    pub utterances: Vec<Utterance>,
}

/// A group of words ended by an endpoint (`<end>`); `speaker` defaults to `"1"` on the wire.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Utterance {
    pub speaker: Option<String>,
    /// The language it is spoken in (a `language` line); `None`: the session's (its first
    /// language hint, or `en`). Matters for two-way translation and language identification.
    pub language: Option<String>,
    pub words: Vec<ScriptWord>,
}

impl Utterance {
    /// Its words joined by single spaces.
    pub fn text(&self) -> String {
        self.words
            .iter()
            .map(|w| w.text.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// One word (possibly with trailing punctuation, e.g. `"Hello,"`) and its span on the
/// session's audio timeline, in milliseconds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScriptWord {
    pub text: String,
    pub start_ms: u64,
    pub end_ms: u64,
}

impl Script {
    /// Parses the script file format. Errors name the 1-based line.
    ///
    /// Rules: words must not overlap and must be in timeline order (`start_ms` ≥ the previous
    /// word's `end_ms`), `end_ms` ≥ `start_ms`, exactly one word per line.
    pub fn parse(text: &str) -> Result<Script, String> {
        let mut utterances = Vec::new();
        let mut current = Utterance::default();
        let mut previous_end: Option<u64> = None;
        for (n, raw) in text.lines().enumerate() {
            let line_no = n + 1;
            let line = raw.trim();
            if line.starts_with('#') {
                continue;
            }
            if line.is_empty() {
                end_utterance(&mut current, &mut utterances);
                continue;
            }
            let mut parts = line.split_whitespace();
            let first = parts.next().unwrap_or_default();
            if first == "speaker" {
                let label = parts.collect::<Vec<_>>().join(" ");
                if label.is_empty() {
                    return Err(format!("line {line_no}: \"speaker\" needs a label"));
                }
                end_utterance(&mut current, &mut utterances);
                current.speaker = Some(label);
                continue;
            }
            if first == "language" {
                let code = parts.next().unwrap_or_default();
                if code.is_empty() || parts.next().is_some() {
                    return Err(format!("line {line_no}: \"language\" needs one code"));
                }
                end_utterance(&mut current, &mut utterances);
                current.language = Some(code.to_string());
                continue;
            }
            let start_ms = parse_ms(first, line_no, "start_ms")?;
            let end_ms = parse_ms(parts.next().unwrap_or_default(), line_no, "end_ms")?;
            let word = parts
                .next()
                .ok_or_else(|| format!("line {line_no}: missing word after the times"))?;
            if parts.next().is_some() {
                return Err(format!("line {line_no}: one word per line expected"));
            }
            if end_ms < start_ms {
                return Err(format!(
                    "line {line_no}: end_ms {end_ms} < start_ms {start_ms}"
                ));
            }
            if let Some(prev) = previous_end {
                if start_ms < prev {
                    return Err(format!(
                        "line {line_no}: start_ms {start_ms} is before the previous word's end ({prev})"
                    ));
                }
            }
            previous_end = Some(end_ms);
            current.words.push(ScriptWord {
                text: word.to_string(),
                start_ms,
                end_ms,
            });
        }
        end_utterance(&mut current, &mut utterances);
        Ok(Script { utterances })
    }

    /// Reads and parses a script file; a parse error becomes `io::ErrorKind::InvalidData`.
    /// Error messages start with the path.
    pub fn load(path: impl AsRef<Path>) -> std::io::Result<Script> {
        let path = path.as_ref();
        let named = |kind, e: &dyn std::fmt::Display| {
            std::io::Error::new(kind, format!("{}: {e}", path.display()))
        };
        let text = std::fs::read_to_string(path).map_err(|e| named(e.kind(), &e))?;
        Script::parse(&text).map_err(|e| named(std::io::ErrorKind::InvalidData, &e))
    }

    /// Each utterance's text (split on whitespace) spread evenly over `[start_ms, end_ms]`,
    /// each word getting a share proportional to its character count. Words are contiguous:
    /// the first starts at `start_ms`, the last ends at `end_ms`. Empty texts are skipped.
    pub fn from_utterances(utterances: &[(&str, u64, u64)]) -> Script {
        let mut out = Vec::new();
        for &(text, start_ms, end_ms) in utterances {
            let words: Vec<&str> = text.split_whitespace().collect();
            if words.is_empty() {
                continue;
            }
            let end_ms = end_ms.max(start_ms);
            let weights: Vec<u64> = words.iter().map(|w| w.chars().count() as u64).collect();
            let total: u64 = weights.iter().sum();
            let mut cumulative = 0u64;
            let mut word_start = start_ms;
            let mut script_words = Vec::with_capacity(words.len());
            for (word, weight) in words.iter().zip(&weights) {
                cumulative += weight;
                let word_end = start_ms + scale(end_ms - start_ms, cumulative, total);
                script_words.push(ScriptWord {
                    text: (*word).to_string(),
                    start_ms: word_start,
                    end_ms: word_end,
                });
                word_start = word_end;
            }
            out.push(Utterance {
                speaker: None,
                language: None,
                words: script_words,
            });
        }
        Script { utterances: out }
    }

    /// What a session whose first audio byte is `offset_ms` into the stream hears: the words
    /// that start at or after `offset_ms`, with times counted from `offset_ms`. Utterances left
    /// without words are dropped; speakers are kept. `starting_at(0)` is the script itself.
    pub fn starting_at(&self, offset_ms: u64) -> Script {
        let utterances = self
            .utterances
            .iter()
            .filter_map(|u| {
                let words: Vec<ScriptWord> = u
                    .words
                    .iter()
                    .filter(|w| w.start_ms >= offset_ms)
                    .map(|w| ScriptWord {
                        text: w.text.clone(),
                        start_ms: w.start_ms - offset_ms,
                        end_ms: w.end_ms.max(w.start_ms) - offset_ms,
                    })
                    .collect();
                (!words.is_empty()).then(|| Utterance {
                    speaker: u.speaker.clone(),
                    language: u.language.clone(),
                    words,
                })
            })
            .collect();
        Script { utterances }
    }

    /// `unit` again and again, every `period_ms`, for a stream of `total_ms`: copy `k` is
    /// `unit` shifted by `k * period_ms`; words that would end after `total_ms` are left out.
    /// Cheap to build for hours of audio (e.g. the sample script every 20 s for 2 h).
    ///
    /// Panics if `period_ms` is 0 or a word of `unit` ends after `period_ms` (copies would
    /// overlap).
    pub fn repeating(unit: &Script, period_ms: u64, total_ms: u64) -> Script {
        assert!(period_ms > 0, "Script::repeating: period_ms must be > 0");
        let unit_end = unit.words().map(|w| w.end_ms.max(w.start_ms)).max();
        assert!(
            unit_end.is_none_or(|end| end <= period_ms),
            "Script::repeating: the unit ends at {} ms, after the period of {period_ms} ms",
            unit_end.unwrap_or_default()
        );
        let mut utterances = Vec::new();
        if unit_end.is_none() {
            return Script { utterances };
        }
        let mut shift = 0u64;
        while shift < total_ms {
            for u in &unit.utterances {
                let words: Vec<ScriptWord> = u
                    .words
                    .iter()
                    .map(|w| ScriptWord {
                        text: w.text.clone(),
                        start_ms: w.start_ms + shift,
                        end_ms: w.end_ms.max(w.start_ms) + shift,
                    })
                    .filter(|w| w.end_ms <= total_ms)
                    .collect();
                if !words.is_empty() {
                    utterances.push(Utterance {
                        speaker: u.speaker.clone(),
                        language: u.language.clone(),
                        words,
                    });
                }
            }
            shift += period_ms;
        }
        Script { utterances }
    }

    /// All words of all utterances, in order.
    pub fn words(&self) -> impl Iterator<Item = &ScriptWord> {
        self.utterances.iter().flat_map(|u| u.words.iter())
    }

    /// All words joined by single spaces.
    pub fn transcript(&self) -> String {
        self.utterances
            .iter()
            .map(Utterance::text)
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// What the final tokens of a session that received all of the script's audio concatenate
    /// to: like [`Script::transcript`], but with no space before words of scripts written
    /// without spaces (CJK, kana, Thai).
    pub fn final_text(&self) -> String {
        let mut out = String::new();
        for (i, word) in self.words().enumerate() {
            if tokenize::leading_space(i, &word.text) {
                out.push(' ');
            }
            out.push_str(&word.text);
        }
        out
    }
}

fn end_utterance(current: &mut Utterance, utterances: &mut Vec<Utterance>) {
    if !current.words.is_empty() {
        utterances.push(std::mem::take(current));
    }
}

fn parse_ms(field: &str, line_no: usize, name: &str) -> Result<u64, String> {
    field
        .parse::<u64>()
        .map_err(|_| format!("line {line_no}: {name} must be a whole number of ms, got {field:?}"))
}

/// `span * part / whole` without overflow, rounded down.
pub(crate) fn scale(span: u64, part: u64, whole: u64) -> u64 {
    if whole == 0 {
        return span;
    }
    (u128::from(span) * u128::from(part) / u128::from(whole)) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
# a comment
speaker 1
200 600 Hello,
650 1200 GStreamer
1250 1700 world.


# speaker and language for the next utterance
speaker 2
language es

2600 2900 Bye
";

    #[test]
    fn parses_utterances_speakers_and_comments() {
        let script = Script::parse(SAMPLE).unwrap();
        assert_eq!(script.utterances.len(), 2);
        assert_eq!(script.utterances[0].speaker.as_deref(), Some("1"));
        assert_eq!(script.utterances[1].speaker.as_deref(), Some("2"));
        assert_eq!(script.utterances[0].language, None);
        assert_eq!(script.utterances[1].language.as_deref(), Some("es"));
        assert_eq!(script.utterances[0].words.len(), 3);
        assert_eq!(
            script.utterances[0].words[1],
            ScriptWord {
                text: "GStreamer".into(),
                start_ms: 650,
                end_ms: 1200
            }
        );
        assert_eq!(script.transcript(), "Hello, GStreamer world. Bye");
        assert_eq!(script.final_text(), "Hello, GStreamer world. Bye");
        assert_eq!(script.words().count(), 4);
    }

    #[test]
    fn crlf_and_no_trailing_blank_line() {
        let script = Script::parse("0 100 a\r\n100 200 b").unwrap();
        assert_eq!(script.transcript(), "a b");
        assert_eq!(script.utterances.len(), 1);
        assert_eq!(script.utterances[0].speaker, None);
    }

    #[test]
    fn parse_errors_name_the_line() {
        for (text, needle) in [
            ("x 100 a", "line 1: start_ms"),
            ("0 y a", "line 1: end_ms"),
            ("0 100", "line 1: missing word"),
            ("0 100 a b", "line 1: one word"),
            ("# c\n200 100 a", "line 2: end_ms 100 < start_ms 200"),
            ("0 100 a\n50 150 b", "line 2: start_ms 50"),
            ("speaker", "line 1: \"speaker\" needs a label"),
        ] {
            let err = Script::parse(text).unwrap_err();
            assert!(err.contains(needle), "{text:?} -> {err}");
        }
    }

    #[test]
    fn load_reports_invalid_data() {
        let dir = std::env::temp_dir().join(format!("soniox-mock-script-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let good = dir.join("good.script");
        std::fs::write(&good, SAMPLE).unwrap();
        assert_eq!(Script::load(&good).unwrap(), Script::parse(SAMPLE).unwrap());
        let bad = dir.join("bad.script");
        std::fs::write(&bad, "oops").unwrap();
        let err = Script::load(&bad).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn from_utterances_spreads_words_by_characters() {
        let script =
            Script::from_utterances(&[("ab abcd ab", 1000, 1800), ("  ", 0, 5), ("x", 2000, 2100)]);
        assert_eq!(script.utterances.len(), 2);
        let words = &script.utterances[0].words;
        assert_eq!(words[0].start_ms, 1000);
        assert_eq!(words[0].end_ms, 1200);
        assert_eq!(words[1].start_ms, 1200);
        assert_eq!(words[1].end_ms, 1600);
        assert_eq!(words[2].end_ms, 1800);
        assert_eq!(script.transcript(), "ab abcd ab x");
        assert_eq!(script.utterances[1].words[0].start_ms, 2000);
        assert_eq!(script.utterances[1].words[0].end_ms, 2100);
    }

    #[test]
    fn starting_at_keeps_later_words_on_the_new_timeline() {
        let script = Script::parse(SAMPLE).unwrap();
        assert_eq!(script.starting_at(0), script);
        let later = script.starting_at(650);
        assert_eq!(later.transcript(), "GStreamer world. Bye");
        assert_eq!(later.utterances.len(), 2);
        assert_eq!(later.utterances[1].speaker.as_deref(), Some("2"));
        assert_eq!(
            later.utterances[0].words[0],
            ScriptWord {
                text: "GStreamer".into(),
                start_ms: 0,
                end_ms: 550
            }
        );
        // A word that started before the offset is never said, even if it ends after it.
        let later = script.starting_at(651);
        assert_eq!(later.transcript(), "world. Bye");
        assert_eq!(later.utterances[0].words[0].start_ms, 599);
        let last = script.starting_at(2000);
        assert_eq!(last.utterances.len(), 1);
        assert_eq!(last.utterances[0].words[0].start_ms, 600);
        assert!(script.starting_at(2601).utterances.is_empty());
    }

    #[test]
    fn repeating_copies_the_unit_every_period() {
        let unit = Script::parse(SAMPLE).unwrap();
        let long = Script::repeating(&unit, 3000, 10_000);
        // Copies at 0, 3000, 6000, 9000; the last keeps only words ending by 10 000 ms.
        assert_eq!(long.utterances.len(), 7);
        assert_eq!(long.words().count(), 4 * 3 + 1);
        let starts: Vec<u64> = long
            .utterances
            .iter()
            .map(|u| u.words[0].start_ms)
            .collect();
        assert_eq!(starts, [200, 2600, 3200, 5600, 6200, 8600, 9200]);
        assert_eq!(long.utterances[6].words.len(), 1);
        assert_eq!(long.utterances[6].words[0].end_ms, 9600);
        assert_eq!(long.utterances[5].speaker.as_deref(), Some("2"));
        // Round trip through the file format: in timeline order, no overlaps.
        let text: String = long
            .words()
            .map(|w| format!("{} {} {}\n", w.start_ms, w.end_ms, w.text))
            .collect();
        assert_eq!(
            Script::parse(&text).unwrap().transcript(),
            long.transcript()
        );
        // Two hours of the sample-sized unit stay cheap.
        let hours = Script::repeating(&unit, 20_000, 2 * 3600 * 1000);
        assert_eq!(hours.words().count(), 360 * 4);
        assert!(Script::repeating(&Script::default(), 1000, 5000)
            .utterances
            .is_empty());
    }

    #[test]
    #[should_panic(expected = "after the period")]
    fn repeating_refuses_overlapping_copies() {
        Script::repeating(&Script::parse(SAMPLE).unwrap(), 2000, 10_000);
    }

    #[test]
    fn final_text_has_no_spaces_between_cjk_words() {
        let script = Script::from_utterances(&[("Hello 你好 世界 ok", 0, 1000)]);
        assert_eq!(script.final_text(), "Hello你好世界 ok");
    }
}
