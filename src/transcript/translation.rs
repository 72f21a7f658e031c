// SPDX-License-Identifier: MPL-2.0
//! Translated text for one translation pad (contract §4a), free of GStreamer.
//!
//! Soniox sends the translation in the same token stream as the speech: a chunk of spoken
//! tokens marked `original`, then the chunk that translates it, marked `translation`, with
//! no times. A [`Translator`] gives each translation chunk the span of the originals it
//! follows and hands out, in the order of the speech:
//! - one [`Word`] per final translation chunk in the pad's language (its text as sent, times
//!   from its originals);
//! - one-way only: the words of speech Soniox did not translate because it is already in the
//!   target language (marked `none`), as spoken;
//! - speaker changes, and the end of each utterance after its translation (which Soniox may
//!   send after the `<end>`).
//!
//! A chunk is complete when what follows it shows it is: a final spoken token or a marker,
//! the end of the stream, a broken connection, or (live) its deadline. Until the originals of
//! a chunk are translated, nothing after them goes out, so the pad's text stays in order and
//! [`Translator::held_pts`] tells how far GAPs may go.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::token::Token;
use super::words::{lowest, Assembled, Boundary, Word, WordAssembler};

/// Whose speech a pad carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Everything is translated into the pad's language; speech already in it comes as spoken.
    OneWay,
    /// Two languages translated into each other: the pad gets the translations into its own.
    TwoWay,
}

/// Originals waiting for (or given) their translation.
#[derive(Debug)]
struct Span {
    pts: Option<u64>,
    end: Option<u64>,
    sent: Option<Instant>,
    speaker: Option<String>,
    translation: Option<Chunk>,
    /// Its translation is complete.
    done: bool,
}

#[derive(Debug)]
struct Chunk {
    text: String,
    language: Option<String>,
    confidence: Option<f64>,
    speaker: Option<String>,
}

#[derive(Debug)]
enum Entry {
    Span(Span),
    Word(Word),
    Boundary(Boundary),
}

/// What [`Translator::finish`] and [`Translator::break_connection`] could not translate.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Untranslated {
    /// Spans of originals whose translation never came.
    pub spans: usize,
}

/// Turns one session's tokens into one pad's translated text.
#[derive(Debug)]
pub struct Translator {
    language: String,
    direction: Direction,
    queue: VecDeque<Entry>,
    /// Speech in the pad's language (one-way), made into words.
    spoken: WordAssembler,
    /// After a broken connection: the first untranslated original, dropped and awaited
    /// again from the replay; nothing may move past it until the new connection has settled
    /// past it.
    floor: Option<u64>,
    last_speaker: Option<String>,
    /// Text handed out since the last boundary, and where it ends.
    utterance: String,
    utterance_end: Option<u64>,
    /// Where the last text handed out ends.
    last_end: Option<u64>,
}

impl Translator {
    pub fn new(language: &str, direction: Direction) -> Translator {
        Translator {
            language: language.to_string(),
            direction,
            queue: VecDeque::new(),
            spoken: WordAssembler::new(),
            floor: None,
            last_speaker: None,
            utterance: String::new(),
            utterance_end: None,
            last_end: None,
        }
    }

    pub fn language(&self) -> &str {
        &self.language
    }

    /// Feeds the tokens of one server message; returns what is ready, in order.
    pub fn feed(&mut self, tokens: &[Token]) -> Vec<Assembled> {
        for token in tokens.iter().filter(|t| t.is_final && !t.text.is_empty()) {
            if token.text == Token::END || token.text == Token::FIN {
                let kind = if token.text == Token::END {
                    Boundary::Endpoint
                } else {
                    Boundary::Finalized {
                        requested: token.requested,
                    }
                };
                self.end_spoken();
                self.complete();
                self.queue.push_back(Entry::Boundary(kind));
            } else if token.is_marker() {
            } else if token.is_translation() {
                self.translation(token);
            } else if token.translation_status.as_deref() == Some("none") {
                self.complete();
                if self.direction == Direction::OneWay {
                    for out in self.spoken.feed(std::slice::from_ref(token)).out {
                        if let Assembled::Word(word) = out {
                            self.queue.push_back(Entry::Word(word));
                        }
                    }
                }
            } else {
                self.original(token);
            }
        }
        self.release()
    }

    /// The session ended: what was translated goes out, the rest never will be.
    pub fn finish(&mut self) -> (Vec<Assembled>, Untranslated) {
        self.end_spoken();
        self.complete();
        let lost = self.drop_untranslated();
        self.queue.push_back(Entry::Boundary(Boundary::EndOfStream));
        self.floor = None;
        (self.release(), lost)
    }

    /// The connection broke: translations received are complete; originals still waiting
    /// come again from the replay (with the utterance ends after them), so they are dropped
    /// here, and GAPs wait at the first of them.
    pub fn break_connection(&mut self) -> Vec<Assembled> {
        self.end_spoken();
        self.complete();
        // The replay starts at the first original with no translation: from there on,
        // everything comes again.
        if let Some(first) = self.queue.iter().position(is_untranslated) {
            if let Entry::Span(span) = &self.queue[first] {
                self.floor = self.floor.or(span.pts);
            }
            self.queue.truncate(first);
        }
        self.release()
    }

    /// Soniox finalized the audio up to `settled` (input PTS) on the current connection.
    pub fn settle(&mut self, settled: u64) {
        if self.floor.is_some_and(|floor| settled > floor) {
            self.floor = None;
        }
    }

    /// Input PTS before which nothing more can come out: the first text still held.
    pub fn held_pts(&self) -> Option<u64> {
        let first = self.queue.iter().find_map(|e| match e {
            Entry::Span(span) => span.pts,
            Entry::Word(word) => word.pts,
            Entry::Boundary(_) => None,
        });
        [first, self.spoken.pending_pts(), self.floor]
            .into_iter()
            .flatten()
            .min()
    }

    /// When the chunk that holds the pad up must go out (live: its originals' audio went out
    /// at `sent`, and the pad keeps `budget`): a translation being received is then taken as
    /// complete; originals with no translation at all are given up at twice the budget.
    pub fn deadline(&self, budget: Duration) -> Option<Instant> {
        let Some(Entry::Span(span)) = self.queue.front() else {
            return None;
        };
        let sent = span.sent?;
        Some(match span.translation {
            Some(_) => sent + budget,
            None => sent + budget * 2,
        })
    }

    /// Applies the deadline at `now` (see [`Self::deadline`]); returns what is ready and how
    /// many spans were given up.
    pub fn expire(&mut self, now: Instant, budget: Duration) -> (Vec<Assembled>, usize) {
        let mut out = Vec::new();
        let mut given_up = 0;
        while self.deadline(budget).is_some_and(|d| d <= now) {
            match self.queue.front_mut() {
                Some(Entry::Span(span)) if span.translation.is_some() => span.done = true,
                Some(Entry::Span(_)) => {
                    self.queue.pop_front();
                    given_up += 1;
                }
                _ => break,
            }
            out.extend(self.release());
        }
        (out, given_up)
    }

    fn original(&mut self, token: &Token) {
        self.end_spoken();
        self.complete();
        if let Some(Entry::Span(span)) = self.queue.back_mut() {
            if span.translation.is_none() {
                span.end = span.end.max(token.end);
                if span.pts.is_none() {
                    span.pts = token.pts;
                }
                return;
            }
        }
        self.queue.push_back(Entry::Span(Span {
            pts: token.pts,
            end: token.end,
            sent: token.sent,
            speaker: token.speaker.clone(),
            translation: None,
            done: false,
        }));
    }

    /// A translation token covers every original before it that has none yet (merged into
    /// one span, with what came between them after it), or continues the last chunk.
    fn translation(&mut self, token: &Token) {
        let first = self.queue.iter().position(is_untranslated);
        let at = match first {
            Some(first) => {
                let mut later = self.queue.split_off(first + 1);
                let mut rest = VecDeque::new();
                for entry in later.drain(..) {
                    match (entry, self.queue.back_mut()) {
                        (Entry::Span(more), Some(Entry::Span(span)))
                            if more.translation.is_none() =>
                        {
                            span.end = span.end.max(more.end);
                        }
                        (other, _) => rest.push_back(other),
                    }
                }
                self.queue.append(&mut rest);
                Some(first)
            }
            None => self.queue.iter().rposition(|e| matches!(e, Entry::Span(_))),
        };
        let at = at.unwrap_or_else(|| {
            // No originals to follow (they went with a broken connection): timed where the
            // text has got to, so that it never goes back.
            self.queue.push_back(Entry::Span(Span {
                pts: self.last_end,
                end: self.last_end,
                sent: None,
                speaker: None,
                translation: None,
                done: false,
            }));
            self.queue.len() - 1
        });
        let Entry::Span(span) = &mut self.queue[at] else {
            unreachable!("a span was found or made at {at}");
        };
        let chunk = span.translation.get_or_insert_with(|| Chunk {
            text: String::new(),
            language: token.language.clone(),
            confidence: token.confidence,
            speaker: token.speaker.clone(),
        });
        chunk.text.push_str(&token.text);
        chunk.confidence = lowest(chunk.confidence, token.confidence);
    }

    /// A spoken word in the pad's language waiting for the token that completes it goes in
    /// line now: something else follows it.
    fn end_spoken(&mut self) {
        for out in self.spoken.break_connection() {
            if let Assembled::Word(word) = out {
                self.queue.push_back(Entry::Word(word));
            }
        }
    }

    /// Something other than translation follows: the translations received are complete.
    fn complete(&mut self) {
        for entry in self.queue.iter_mut() {
            if let Entry::Span(span) = entry {
                span.done |= span.translation.is_some();
            }
        }
    }

    fn drop_untranslated(&mut self) -> Untranslated {
        let before = self.queue.len();
        self.queue.retain(|e| !is_untranslated(e));
        Untranslated {
            spans: before - self.queue.len(),
        }
    }

    /// Hands out the entries at the front that are ready.
    fn release(&mut self) -> Vec<Assembled> {
        let mut out = Vec::new();
        while let Some(entry) = self.queue.front() {
            if matches!(entry, Entry::Span(span) if !span.done) {
                break;
            }
            match self.queue.pop_front().expect("checked above") {
                Entry::Span(span) => {
                    if let Some(word) = self.translated(span) {
                        self.word(word, &mut out);
                    }
                }
                Entry::Word(word) => self.word(word, &mut out),
                Entry::Boundary(kind) => out.push(Assembled::Boundary {
                    kind,
                    text: std::mem::take(&mut self.utterance),
                    end: self.utterance_end.take(),
                }),
            }
        }
        out
    }

    /// The word a translated span makes on this pad, if its translation is the pad's.
    fn translated(&self, span: Span) -> Option<Word> {
        let chunk = span.translation?;
        let ours = match (&chunk.language, self.direction) {
            (Some(language), _) => *language == self.language,
            (None, Direction::OneWay) => true,
            (None, Direction::TwoWay) => false,
        };
        let text = chunk.text.trim();
        // Never before what went out already.
        let pts = span.pts.max(self.last_end);
        (ours && !text.is_empty()).then(|| Word {
            text: text.to_string(),
            pts,
            end: span.end.max(pts),
            sent: span.sent,
            confidence: chunk.confidence,
            speaker: chunk.speaker.or(span.speaker),
            language: chunk.language.or_else(|| Some(self.language.clone())),
        })
    }

    fn word(&mut self, word: Word, out: &mut Vec<Assembled>) {
        if let Some(speaker) = &word.speaker {
            if self.last_speaker.as_ref() != Some(speaker) {
                self.last_speaker = Some(speaker.clone());
                out.push(Assembled::SpeakerChange(speaker.clone()));
            }
        }
        if !self.utterance.is_empty() {
            self.utterance.push(' ');
        }
        self.utterance.push_str(&word.text);
        if word.end.is_some() {
            self.utterance_end = word.end;
            self.last_end = self.last_end.max(word.end);
        }
        out.push(Assembled::Word(word));
    }
}

fn is_untranslated(entry: &Entry) -> bool {
    matches!(entry, Entry::Span(span) if span.translation.is_none())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    fn spoken(text: &str, status: &str, start_ms: u64, end_ms: u64) -> Token {
        Token {
            text: text.into(),
            is_final: true,
            pts: Some(start_ms * MS),
            end: Some(end_ms * MS),
            confidence: Some(0.9),
            translation_status: Some(status.into()),
            ..Token::default()
        }
    }

    fn original(text: &str, start_ms: u64, end_ms: u64) -> Token {
        spoken(text, "original", start_ms, end_ms)
    }

    fn translated(text: &str, language: &str) -> Token {
        Token {
            text: text.into(),
            is_final: true,
            language: Some(language.into()),
            translation_status: Some("translation".into()),
            ..Token::default()
        }
    }

    fn marker(text: &str) -> Token {
        Token {
            text: text.into(),
            is_final: true,
            ..Token::default()
        }
    }

    /// Words as (text, start ms, end ms); boundaries as "|".
    fn shown(out: &[Assembled]) -> Vec<(String, u64, u64)> {
        out.iter()
            .filter_map(|a| match a {
                Assembled::Word(w) => {
                    Some((w.text.clone(), w.pts.unwrap() / MS, w.end.unwrap() / MS))
                }
                Assembled::Boundary { .. } => Some(("|".into(), 0, 0)),
                Assembled::SpeakerChange(_) => None,
            })
            .collect()
    }

    fn w(text: &str, start: u64, end: u64) -> (String, u64, u64) {
        (text.into(), start, end)
    }

    fn bar() -> (String, u64, u64) {
        ("|".into(), 0, 0)
    }

    #[test]
    fn a_chunk_takes_the_span_of_the_originals_it_follows() {
        let mut fr = Translator::new("fr", Direction::OneWay);
        let out = fr.feed(&[
            original("Hello", 100, 400),
            original(",", 400, 420),
            original(" world", 500, 900),
            translated("Bonjour", "fr"),
            translated(" le monde", "fr"),
        ]);
        assert!(out.is_empty(), "the chunk may go on in the next message");
        assert_eq!(fr.held_pts(), Some(100 * MS));
        let out = fr.feed(&[original(" again", 1000, 1300)]);
        assert_eq!(shown(&out), [w("Bonjour le monde", 100, 900)]);
        assert_eq!(fr.held_pts(), Some(1000 * MS));
        let (out, lost) = fr.finish();
        assert_eq!(shown(&out), [bar()], "no translation came for 'again'");
        assert_eq!(lost.spans, 1);
    }

    #[test]
    fn the_end_of_an_utterance_goes_after_its_translation_even_when_end_came_first() {
        let mut fr = Translator::new("fr", Direction::OneWay);
        let out = fr.feed(&[original("Hi", 0, 300), marker(Token::END)]);
        assert!(
            out.is_empty(),
            "the utterance's translation is still to come"
        );
        let out = fr.feed(&[translated("Salut", "fr"), marker(Token::FIN)]);
        assert_eq!(shown(&out), [w("Salut", 0, 300), bar(), bar()]);
    }

    #[test]
    fn two_way_pads_take_only_translations_into_their_language() {
        let tokens = [
            original("Good", 0, 200),
            original(" morning", 200, 500),
            translated("Buenos", "es"),
            translated(" días", "es"),
            original(" Hola", 900, 1200),
            translated(" Hello", "en"),
            spoken(" Bonjour", "none", 1500, 1800),
            marker(Token::END),
        ];
        let mut es = Translator::new("es", Direction::TwoWay);
        let mut en = Translator::new("en", Direction::TwoWay);
        assert_eq!(shown(&es.feed(&tokens)), [w("Buenos días", 0, 500), bar()]);
        assert_eq!(shown(&en.feed(&tokens)), [w("Hello", 900, 1200), bar()]);
    }

    #[test]
    fn one_way_speech_already_in_the_target_comes_as_spoken_in_order() {
        let mut fr = Translator::new("fr", Direction::OneWay);
        let out = fr.feed(&[
            original("Hello", 0, 300),
            spoken(" Bonjour", "none", 400, 700),
            spoken(" à", "none", 700, 800),
            spoken(" tous", "none", 800, 1000),
        ]);
        assert!(
            out.is_empty(),
            "French words wait behind the untranslated English"
        );
        let out = fr.feed(&[translated("Salut", "fr"), marker(Token::END)]);
        // The translation follows its originals in the stream, but goes out in time order.
        assert_eq!(
            shown(&out),
            [
                w("Salut", 0, 300),
                w("Bonjour", 400, 700),
                w("à", 700, 800),
                w("tous", 800, 1000),
                bar()
            ]
        );
    }

    #[test]
    fn a_live_deadline_completes_a_chunk_and_gives_up_on_a_missing_one() {
        let start = Instant::now();
        let budget = Duration::from_secs(4);
        let mut fr = Translator::new("fr", Direction::OneWay);
        let sent = |mut t: Token, at: Instant| {
            t.sent = Some(at);
            t
        };
        fr.feed(&[sent(original("One", 0, 300), start), translated("Un", "fr")]);
        assert_eq!(fr.deadline(budget), Some(start + budget));
        let (out, given_up) = fr.expire(start + budget, budget);
        assert_eq!((shown(&out), given_up), (vec![w("Un", 0, 300)], 0));
        fr.feed(&[sent(original(" two", 400, 700), start)]);
        assert_eq!(fr.deadline(budget), Some(start + budget * 2));
        let (out, given_up) = fr.expire(start + budget * 2, budget);
        assert_eq!((out.len(), given_up), (0, 1));
        assert_eq!(fr.deadline(budget), None);
    }

    #[test]
    fn a_broken_connection_drops_what_the_replay_brings_again() {
        let mut fr = Translator::new("fr", Direction::OneWay);
        let out = fr.feed(&[
            original("One", 0, 300),
            translated("Un", "fr"),
            original(" two", 400, 700),
            marker(Token::END),
        ]);
        assert_eq!(shown(&out), [w("Un", 0, 300)], "its translation had come");
        assert!(fr.break_connection().is_empty());
        assert_eq!(fr.held_pts(), Some(400 * MS), "GAPs wait for the replay");
        fr.settle(300 * MS);
        assert_eq!(fr.held_pts(), Some(400 * MS));
        // The replay: "two" and its <end> again, then the translation.
        let out = fr.feed(&[
            original(" two", 400, 700),
            marker(Token::END),
            translated(" deux", "fr"),
        ]);
        assert!(out.is_empty());
        fr.settle(800 * MS);
        let (out, lost) = fr.finish();
        assert_eq!(shown(&out), [w("deux", 400, 700), bar(), bar()]);
        assert_eq!(lost.spans, 0);
    }

    #[test]
    fn a_translation_covers_every_untranslated_original_before_it() {
        let mut fr = Translator::new("fr", Direction::OneWay);
        let out = fr.feed(&[
            original("One", 0, 300),
            marker(Token::END),
            original(" two", 400, 700),
            translated("Un deux", "fr"),
            marker(Token::END),
        ]);
        assert_eq!(shown(&out), [w("Un deux", 0, 700), bar(), bar()]);
    }

    #[test]
    fn speaker_changes_go_before_the_first_chunk_of_a_new_speaker() {
        let mut fr = Translator::new("fr", Direction::OneWay);
        let with = |mut t: Token, speaker: &str| {
            t.speaker = Some(speaker.into());
            t
        };
        let out = fr.feed(&[
            with(original("Hi", 0, 300), "1"),
            with(translated("Salut", "fr"), "1"),
            with(original(" Yes", 500, 800), "2"),
            with(translated(" Oui", "fr"), "2"),
            marker(Token::END),
        ]);
        let speakers: Vec<String> = out
            .iter()
            .filter_map(|a| match a {
                Assembled::SpeakerChange(s) => Some(format!("speaker {s}")),
                Assembled::Word(w) => Some(w.text.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(speakers, ["speaker 1", "Salut", "speaker 2", "Oui"]);
    }
}
