//! Plays a [`Script`] against a session's audio timeline and builds result messages.
//!
//! A word is *started* once `received_ms > start_ms`. Started words that are not final form
//! the non-final tail: complete words (`end_ms <= received_ms`) with their real pieces, a partly
//! received word as a single guess piece (first half of its letters) spanning
//! `[start_ms, received_ms]`. Words turn final as whole words, each exactly once: by the
//! automatic lag, by an endpoint (`<end>`), by `finalize` (`<fin>`) or by the end-of-audio drain.
//!
//! The cost of a result does not grow with the script's length (hours of words): words before
//! `first_pending` are final, utterances before `first_open` are done, and for scripts in
//! timeline order (as [`Script::parse`] enforces) words that have not started are not visited.

use crate::protocol::{ResultMessage, Token, END_TOKEN, FIN_TOKEN};
use crate::script::Script;
use crate::tokenize::{self, Piece};
use crate::translate::{self, TranslationMode};

const FINAL_CONFIDENCE: f64 = 0.95;
const NON_FINAL_CONFIDENCE: f64 = 0.6;

/// What the session's start request and the server configuration turn on.
#[derive(Clone, Debug)]
pub(crate) struct EngineOptions {
    pub auto_final_lag_ms: Option<u64>,
    /// Endpoint detection requested by the client and allowed by the configuration.
    pub endpoints: bool,
    pub endpoint_silence_ms: u64,
    pub diarization: bool,
    /// `Some(language)` when language identification is on.
    pub language: Option<String>,
    /// The language of utterances the script gives none (the first hint, or `en`).
    pub default_language: String,
    /// The start request's `translation`.
    pub translation: Option<TranslationMode>,
    /// Send each final translation chunk in the message after its originals' (so that it may
    /// come after their `<end>`), instead of right after them.
    pub late_translation: bool,
}

struct Word {
    start_ms: u64,
    end_ms: u64,
    pieces: Vec<Piece>,
    guess: String,
    speaker: String,
    /// The language it is spoken in.
    language: String,
    /// Its text, as the translation of a chunk joins it.
    text: String,
    is_final: bool,
}

struct UtteranceState {
    words: std::ops::Range<usize>,
    last_end_ms: u64,
    /// `<end>` sent, or not to be sent because `finalize` already closed the utterance.
    endpoint_done: bool,
}

/// Which words a finalization takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Heard {
    /// Those whose audio has arrived whole.
    Whole,
    /// Every word started (the audio ended: a word cut off ends there).
    Started,
}

pub(crate) struct Engine {
    words: Vec<Word>,
    utterances: Vec<UtteranceState>,
    options: EngineOptions,
    final_ms: u64,
    /// Words are sorted by `start_ms` (then so are utterances by their first word).
    ordered: bool,
    /// Every word before this index is final.
    first_pending: usize,
    /// Every utterance before this index is done: all words final, `<end>` sent or not due.
    first_open: usize,
    /// Final translation tokens sent so far (the first of a session has no leading space).
    translated: usize,
    /// With `late_translation`: final translation tokens for the next message.
    held_translation: Vec<Token>,
}

impl Engine {
    pub fn new(script: &Script, options: EngineOptions) -> Engine {
        let mut words = Vec::new();
        let mut utterances = Vec::new();
        for utterance in &script.utterances {
            let first = words.len();
            let speaker = utterance.speaker.clone().unwrap_or_else(|| "1".to_string());
            let language =
                (utterance.language.clone()).unwrap_or_else(|| options.default_language.clone());
            for word in &utterance.words {
                let space = tokenize::leading_space(words.len(), &word.text);
                words.push(Word {
                    start_ms: word.start_ms,
                    end_ms: word.end_ms.max(word.start_ms),
                    pieces: tokenize::pieces(&word.text, word.start_ms, word.end_ms, space),
                    guess: tokenize::guess(&word.text, space),
                    speaker: speaker.clone(),
                    language: language.clone(),
                    text: word.text.clone(),
                    is_final: false,
                });
            }
            if words.len() > first {
                utterances.push(UtteranceState {
                    last_end_ms: words[first..].iter().map(|w| w.end_ms).max().unwrap_or(0),
                    words: first..words.len(),
                    endpoint_done: false,
                });
            }
        }
        let ordered = words.windows(2).all(|w| w[0].start_ms <= w[1].start_ms);
        Engine {
            words,
            utterances,
            options,
            final_ms: 0,
            ordered,
            first_pending: 0,
            first_open: 0,
            translated: 0,
            held_translation: Vec::new(),
        }
    }

    /// Indices of the utterances that may change at `received_ms`.
    fn live_utterances(&self, received_ms: u64) -> std::ops::Range<usize> {
        let open = &self.utterances[self.first_open..];
        let end = if self.ordered {
            open.partition_point(|u| self.words[u.words.start].start_ms <= received_ms)
        } else {
            open.len()
        };
        self.first_open..self.first_open + end
    }

    /// Indices of the words that may be started and not final at `received_ms` (filter with
    /// `start_ms < received_ms`).
    fn live_words(&self, received_ms: u64) -> std::ops::Range<usize> {
        let pending = &self.words[self.first_pending..];
        let end = if self.ordered {
            pending.partition_point(|w| w.start_ms < received_ms)
        } else {
            pending.len()
        };
        self.first_pending..self.first_pending + end
    }

    /// Moves the cursors past final words and done utterances.
    fn advance_cursors(&mut self) {
        while self
            .words
            .get(self.first_pending)
            .is_some_and(|w| w.is_final)
        {
            self.first_pending += 1;
        }
        while self.utterances.get(self.first_open).is_some_and(|u| {
            u.words.end <= self.first_pending && (u.endpoint_done || !self.options.endpoints)
        }) {
            self.first_open += 1;
        }
    }

    /// Whether an utterance's endpoint has become due (the session then answers at once).
    pub fn endpoint_due(&self, received_ms: u64) -> bool {
        self.utterances[self.live_utterances(received_ms)]
            .iter()
            .any(|u| self.endpoint_reached(u, received_ms))
    }

    fn endpoint_reached(&self, utterance: &UtteranceState, received_ms: u64) -> bool {
        self.options.endpoints
            && !utterance.endpoint_done
            && received_ms
                >= utterance
                    .last_end_ms
                    .saturating_add(self.options.endpoint_silence_ms)
    }

    /// A regular result: new finals (lag, endpoints + `<end>`), then the non-final tail.
    pub fn tick(&mut self, received_ms: u64) -> ResultMessage {
        let mut tokens = std::mem::take(&mut self.held_translation);
        let mut endpoint = false;
        for u in self.live_utterances(received_ms) {
            let reached = self.endpoint_reached(&self.utterances[u], received_ms);
            let mut made_final = Vec::new();
            for i in self.utterances[u].words.clone() {
                let lag_passed = self
                    .options
                    .auto_final_lag_ms
                    .is_some_and(|lag| received_ms >= self.words[i].end_ms.saturating_add(lag));
                if !self.words[i].is_final && (reached || lag_passed) {
                    self.make_final(i, received_ms, &mut tokens);
                    made_final.push(i);
                }
            }
            if reached {
                self.utterances[u].endpoint_done = true;
                tokens.push(Token::special(END_TOKEN));
                endpoint = true;
            }
            // The translation follows its originals, after the `<end>` they may have had.
            self.final_translation(&made_final, &mut tokens);
        }
        let bound = if endpoint {
            received_ms
        } else if let Some(lag) = self.options.auto_final_lag_ms {
            received_ms.saturating_sub(lag)
        } else {
            self.final_ms
        };
        self.advance_cursors();
        self.advance_final(bound, received_ms);
        tokens.extend(self.tail(received_ms));
        self.message(tokens, received_ms)
    }

    /// `{"type":"finalize"}`: every word whose audio has arrived turns final, then `<fin>`. A
    /// word still being spoken stays non-final (the stand-in cannot cut a word in two), and
    /// `final_audio_proc_ms` stops at its start.
    pub fn finalize(&mut self, received_ms: u64) -> ResultMessage {
        let mut tokens = std::mem::take(&mut self.held_translation);
        tokens.extend(self.finalize_started(received_ms, Heard::Whole));
        tokens.push(Token::special(FIN_TOKEN));
        for u in self.live_utterances(received_ms) {
            let utterance = &mut self.utterances[u];
            if self.words[utterance.words.clone()]
                .iter()
                .all(|w| w.is_final)
            {
                utterance.endpoint_done = true;
            }
        }
        self.advance_cursors();
        self.message(tokens, received_ms)
    }

    /// End of audio: every started word turns final (no `<end>`/`<fin>`); `None` if none was
    /// pending. Words that never started are dropped.
    pub fn drain(&mut self, received_ms: u64) -> Option<ResultMessage> {
        let mut tokens = std::mem::take(&mut self.held_translation);
        tokens.extend(self.finalize_started(received_ms, Heard::Started));
        // Nothing is held past the end.
        tokens.append(&mut self.held_translation);
        let message = self.message(tokens, received_ms);
        (!message.tokens.is_empty()).then_some(message)
    }

    fn finalize_started(&mut self, received_ms: u64, heard: Heard) -> Vec<Token> {
        let mut tokens = Vec::new();
        // Words of one language in a row; each run's translation follows it (chunks
        // alternate with their originals).
        let mut run: Vec<usize> = Vec::new();
        for i in self.live_words(received_ms) {
            let word = &self.words[i];
            let heard = match heard {
                Heard::Whole => word.end_ms <= received_ms,
                Heard::Started => word.start_ms < received_ms,
            };
            if !word.is_final && heard {
                if run
                    .last()
                    .is_some_and(|&r| self.words[r].language != word.language)
                {
                    let done = std::mem::take(&mut run);
                    self.final_translation(&done, &mut tokens);
                }
                self.make_final(i, received_ms, &mut tokens);
                run.push(i);
            }
        }
        self.final_translation(&run, &mut tokens);
        self.advance_cursors();
        self.advance_final(received_ms, received_ms);
        tokens
    }

    /// Word `i` turns final with the audio received so far: the times of a word only partly
    /// received end there (Soniox never times a token past the audio it got).
    fn make_final(&mut self, i: usize, received_ms: u64, tokens: &mut Vec<Token>) {
        self.words[i].is_final = true;
        let word = &self.words[i];
        for piece in &word.pieces {
            let (start, end) = (
                piece.start_ms.min(received_ms),
                piece.end_ms.min(received_ms),
            );
            tokens.push(self.token(word, piece.text.clone(), start, end, true));
        }
    }

    /// Moves `final_audio_proc_ms` up to `bound`, but not past a started word that is still
    /// non-final; never down.
    fn advance_final(&mut self, bound: u64, received_ms: u64) {
        let pending = self.words[self.live_words(received_ms)]
            .iter()
            .filter(|w| !w.is_final && w.start_ms < received_ms)
            .map(|w| w.start_ms)
            .min();
        let reachable = pending.map_or(bound, |start| bound.min(start));
        self.final_ms = self.final_ms.max(reachable.min(received_ms));
    }

    fn tail(&mut self, received_ms: u64) -> Vec<Token> {
        let mut tokens = Vec::new();
        let pending: Vec<usize> = self
            .live_words(received_ms)
            .filter(|&i| !self.words[i].is_final && self.words[i].start_ms < received_ms)
            .collect();
        for word in pending.iter().map(|&i| &self.words[i]) {
            if word.end_ms <= received_ms {
                for piece in &word.pieces {
                    tokens.push(self.token(
                        word,
                        piece.text.clone(),
                        piece.start_ms,
                        piece.end_ms,
                        false,
                    ));
                }
            } else {
                tokens.push(self.token(
                    word,
                    word.guess.clone(),
                    word.start_ms,
                    received_ms,
                    false,
                ));
            }
        }
        // The provisional translation of the provisional words.
        tokens.extend(self.translation(&pending, false));
        tokens
    }

    /// The final translation of words just made final: after them in `tokens`, or held for
    /// the next message (`late_translation`).
    fn final_translation(&mut self, words: &[usize], tokens: &mut Vec<Token>) {
        let translation = self.translation(words, true);
        if self.options.late_translation {
            self.held_translation.extend(translation);
        } else {
            tokens.extend(translation);
        }
    }

    /// The translation of `words` (indices, in order): one chunk per run of words spoken in
    /// the same language, each chunk's translated words as tokens with no times, after them.
    /// Words whose language is not translated (two-way) get none.
    fn translation(&mut self, words: &[usize], is_final: bool) -> Vec<Token> {
        let Some(mode) = self.options.translation.clone() else {
            return Vec::new();
        };
        let mut runs: Vec<Vec<usize>> = Vec::new();
        for &i in words {
            match runs.last_mut() {
                Some(run) if self.words[run[0]].language == self.words[i].language => run.push(i),
                _ => runs.push(vec![i]),
            }
        }
        let mut tokens = Vec::new();
        // Tokens are concatenated verbatim: the first translation token of a session has no
        // leading space.
        let mut first = self.translated == 0;
        for run in runs {
            let source = self.words[run[0]].language.clone();
            let Some(target) = mode.target_for(&source).map(str::to_string) else {
                continue;
            };
            let chunk: Vec<&str> = run.iter().map(|&i| self.words[i].text.as_str()).collect();
            let text = translate::translated(&chunk.join(" "), &target);
            let speaker = (self.options.diarization).then(|| self.words[run[0]].speaker.clone());
            for word in text.split(' ') {
                let leading = if std::mem::take(&mut first) { "" } else { " " };
                if is_final {
                    self.translated += 1;
                }
                tokens.push(Token {
                    text: format!("{leading}{word}"),
                    start_ms: None,
                    end_ms: None,
                    confidence: Some(if is_final {
                        FINAL_CONFIDENCE
                    } else {
                        NON_FINAL_CONFIDENCE
                    }),
                    is_final,
                    speaker: speaker.clone(),
                    language: Some(target.clone()),
                    translation_status: Some(translate::TRANSLATION),
                    source_language: Some(source.clone()),
                });
            }
        }
        tokens
    }

    fn token(
        &self,
        word: &Word,
        text: String,
        start_ms: u64,
        end_ms: u64,
        is_final: bool,
    ) -> Token {
        Token {
            text,
            start_ms: Some(start_ms),
            end_ms: Some(end_ms),
            confidence: Some(if is_final {
                FINAL_CONFIDENCE
            } else {
                NON_FINAL_CONFIDENCE
            }),
            is_final,
            speaker: self.options.diarization.then(|| word.speaker.clone()),
            language: self
                .options
                .language
                .is_some()
                .then(|| word.language.clone()),
            translation_status: self.options.translation.as_ref().map(|mode| {
                if mode.target_for(&word.language).is_some() {
                    translate::ORIGINAL
                } else {
                    translate::NONE
                }
            }),
            source_language: None,
        }
    }

    fn message(&self, tokens: Vec<Token>, received_ms: u64) -> ResultMessage {
        ResultMessage {
            tokens,
            final_audio_proc_ms: self.final_ms,
            total_audio_proc_ms: received_ms,
            finished: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn script() -> Script {
        Script::parse(
            "200 600 Hello,\n650 1200 GStreamer\n1250 1700 world.\n\nspeaker 2\n2600 2900 Bye\n",
        )
        .unwrap()
    }

    fn options() -> EngineOptions {
        EngineOptions {
            auto_final_lag_ms: Some(1000),
            endpoints: false,
            endpoint_silence_ms: 500,
            diarization: false,
            language: None,
            default_language: "en".into(),
            translation: None,
            late_translation: false,
        }
    }

    fn texts(m: &ResultMessage, is_final: bool) -> Vec<String> {
        m.tokens
            .iter()
            .filter(|t| t.is_final == is_final)
            .map(|t| t.text.clone())
            .collect()
    }

    fn translating(mode: TranslationMode) -> EngineOptions {
        EngineOptions {
            translation: Some(mode),
            ..options()
        }
    }

    fn into_french() -> EngineOptions {
        translating(TranslationMode::OneWay {
            target: "fr".into(),
        })
    }

    /// Into French, words final only at endpoints.
    fn into_french_at_endpoints() -> EngineOptions {
        EngineOptions {
            endpoints: true,
            auto_final_lag_ms: None,
            ..into_french()
        }
    }

    fn translation_text(m: &ResultMessage, is_final: bool) -> String {
        m.tokens
            .iter()
            .filter(|t| t.is_final == is_final && t.translation_status == Some("translation"))
            .map(|t| t.text.as_str())
            .collect()
    }

    #[test]
    fn one_way_translation_chunks_follow_their_originals_with_no_times() {
        let mut e = Engine::new(&script(), into_french());
        // 1200 + lag 1000: "Hello," and "GStreamer" are final, "world." is not.
        let m = e.tick(2300);
        let statuses: Vec<_> = m.tokens.iter().map(|t| t.translation_status).collect();
        assert!(statuses.iter().all(Option::is_some), "{:?}", m.tokens);
        let last_original = m
            .tokens
            .iter()
            .rposition(|t| t.is_final && t.translation_status == Some("original"))
            .unwrap();
        let first_translation = m
            .tokens
            .iter()
            .position(|t| t.translation_status == Some("translation"))
            .unwrap();
        assert!(first_translation > last_original);
        assert_eq!(translation_text(&m, true), "[fr] Hello, GStreamer");
        for t in m
            .tokens
            .iter()
            .filter(|t| t.translation_status == Some("translation"))
        {
            assert_eq!((t.start_ms, t.end_ms), (None, None));
            assert_eq!(t.language.as_deref(), Some("fr"));
            assert_eq!(t.source_language.as_deref(), Some("en"));
        }
        // The provisional tail ends with the provisional translation of "world.".
        assert_eq!(translation_text(&m, false), " [fr] world.");
        assert!(!m.tokens.last().unwrap().is_final);
        let m = e.tick(2800);
        assert_eq!(translation_text(&m, true), " [fr] world.");
    }

    #[test]
    fn an_endpoint_comes_before_the_translation_of_its_last_words() {
        let mut e = Engine::new(&script(), into_french_at_endpoints());
        let m = e.tick(2300);
        let texts: Vec<&str> = m.tokens.iter().map(|t| t.text.as_str()).collect();
        let end = texts.iter().position(|t| *t == END_TOKEN).unwrap();
        let translation = m
            .tokens
            .iter()
            .position(|t| t.translation_status == Some("translation"))
            .unwrap();
        assert!(end < translation, "{texts:?}");
        assert_eq!(translation_text(&m, true), "[fr] Hello, GStreamer world.");
    }

    #[test]
    fn a_late_translation_comes_in_the_next_message_after_the_end() {
        let opts = EngineOptions {
            late_translation: true,
            ..into_french_at_endpoints()
        };
        let mut e = Engine::new(&script(), opts);
        let m = e.tick(2300);
        assert!(m.tokens.iter().any(|t| t.text == END_TOKEN));
        assert_eq!(translation_text(&m, true), "");
        let m = e.tick(2400);
        assert_eq!(translation_text(&m, true), "[fr] Hello, GStreamer world.");
        // The drain sends what it made final and its translation together: nothing is left.
        let m = e.drain(3000).unwrap();
        assert_eq!(translation_text(&m, true), " [fr] Bye");
    }

    #[test]
    fn two_way_translates_by_the_language_spoken_and_marks_the_rest_none() {
        let script = Script::parse(
            "200 600 Hello,\n650 1200 friend.\n\nlanguage es\n2000 2500 Hola.\n\nlanguage de\n3000 3500 Hallo.\n",
        )
        .unwrap();
        let two_way = TranslationMode::TwoWay {
            a: "en".into(),
            b: "es".into(),
        };
        let mut e = Engine::new(&script, translating(two_way));
        let m = e.drain(4000).unwrap();
        assert_eq!(translation_text(&m, true), "[es] Hello, friend. [en] Hola.");
        let spoken_from = |ms| m.tokens.iter().find(|t| t.start_ms == Some(ms)).unwrap();
        assert_eq!(spoken_from(3000).translation_status, Some("none"), "Hallo.");
        assert_eq!(
            spoken_from(2000).translation_status,
            Some("original"),
            "Hola."
        );
        // Language identification reports each utterance's own language.
        let mut lid = Engine::new(
            &script,
            EngineOptions {
                language: Some("en".into()),
                ..options()
            },
        );
        let m = lid.drain(4000).unwrap();
        let mut languages: Vec<_> = m
            .tokens
            .iter()
            .filter_map(|t| t.language.as_deref())
            .collect();
        languages.dedup();
        assert_eq!(languages, ["en", "es", "de"]);
    }

    #[test]
    fn tail_guesses_then_real_pieces() {
        let mut e = Engine::new(&script(), options());
        let m = e.tick(120);
        assert!(m.tokens.is_empty());
        assert_eq!((m.final_audio_proc_ms, m.total_audio_proc_ms), (0, 120));
        let m = e.tick(360);
        assert_eq!(texts(&m, false), ["Hel"]);
        assert_eq!(
            (m.tokens[0].start_ms, m.tokens[0].end_ms),
            (Some(200), Some(360))
        );
        assert_eq!(m.tokens[0].confidence, Some(0.6));
        let m = e.tick(720);
        assert_eq!(texts(&m, false), ["He", "llo", ",", " GStre"]);
        let m = e.tick(1250);
        assert_eq!(texts(&m, false), ["He", "llo", ",", " GStr", "eamer"]);
        assert!(m
            .tokens
            .iter()
            .all(|t| t.speaker.is_none() && t.language.is_none()));
    }

    #[test]
    fn auto_finals_follow_the_lag_once_each() {
        let mut e = Engine::new(&script(), options());
        let m = e.tick(1599);
        assert!(texts(&m, true).is_empty());
        assert_eq!(m.final_audio_proc_ms, 200);
        let m = e.tick(1600);
        assert_eq!(texts(&m, true), ["He", "llo", ","]);
        assert_eq!(texts(&m, false), [" GStr", "eamer", " wor"]);
        assert_eq!(m.final_audio_proc_ms, 600);
        assert_eq!(m.tokens[0].confidence, Some(0.95));
        let m = e.tick(1700);
        assert!(texts(&m, true).is_empty());
        assert_eq!(m.final_audio_proc_ms, 650);
        let m = e.tick(3000);
        assert_eq!(texts(&m, true), [" GStr", "eamer", " wo", "rld", "."]);
        assert_eq!(texts(&m, false), [" Bye"]);
        assert_eq!(m.final_audio_proc_ms, 2000);
        let m = e.tick(5000);
        assert_eq!(texts(&m, true), [" Bye"]);
        assert_eq!(m.final_audio_proc_ms, 4000);
        assert!(e.tick(6000).tokens.is_empty());
    }

    #[test]
    fn without_auto_finals_nothing_turns_final_by_itself() {
        let mut e = Engine::new(
            &script(),
            EngineOptions {
                auto_final_lag_ms: None,
                ..options()
            },
        );
        let m = e.tick(10_000);
        assert!(texts(&m, true).is_empty());
        assert_eq!(m.final_audio_proc_ms, 0);
        assert_eq!(texts(&m, false).concat(), "Hello, GStreamer world. Bye");
    }

    #[test]
    fn endpoints_finalize_the_utterance_and_add_end() {
        let opts = EngineOptions {
            endpoints: true,
            diarization: true,
            language: Some("en".into()),
            ..options()
        };
        let mut e = Engine::new(&script(), opts);
        assert!(!e.endpoint_due(2199));
        let m = e.tick(2199);
        assert_eq!(texts(&m, true), ["He", "llo", ","]);
        assert!(e.endpoint_due(2200));
        let m = e.tick(2200);
        assert_eq!(
            texts(&m, true),
            [" GStr", "eamer", " wo", "rld", ".", "<end>"]
        );
        assert_eq!(m.final_audio_proc_ms, 2200);
        let end = m.tokens.iter().find(|t| t.text == "<end>").unwrap();
        assert_eq!(end, &Token::special("<end>"));
        assert_eq!(m.tokens[0].speaker.as_deref(), Some("1"));
        assert_eq!(m.tokens[0].language.as_deref(), Some("en"));
        assert!(!e.endpoint_due(3000));
        let m = e.tick(3000);
        assert_eq!(texts(&m, false), [" Bye"]);
        assert_eq!(m.tokens[0].speaker.as_deref(), Some("2"));
        let m = e.tick(3400);
        assert_eq!(texts(&m, true), [" Bye", "<end>"]);
        assert_eq!(m.final_audio_proc_ms, 3400);
    }

    #[test]
    fn finalize_takes_the_words_heard_whole_and_adds_fin() {
        let mut e = Engine::new(
            &script(),
            EngineOptions {
                endpoints: true,
                ..options()
            },
        );
        let m = e.finalize(700);
        assert_eq!(texts(&m, true), ["He", "llo", ",", "<fin>"]);
        assert_eq!(
            texts(&m, false),
            Vec::<String>::new(),
            "a finalize answer has no tail"
        );
        assert_eq!(
            (m.final_audio_proc_ms, m.total_audio_proc_ms),
            (650, 700),
            "final up to the word still being spoken"
        );
        let m = e.finalize(1200);
        assert_eq!(texts(&m, true), [" GStr", "eamer", "<fin>"]);
        assert_eq!(m.tokens[1].end_ms, Some(1200));
        // The first utterance still has "world." pending, so its endpoint comes later.
        let m = e.tick(2200);
        assert_eq!(texts(&m, true), [" wo", "rld", ".", "<end>"]);
        // An utterance closed entirely by finalize gets no <end>.
        assert_eq!(
            texts(&e.finalize(2800), true),
            ["<fin>"],
            "Bye is being said"
        );
        let m = e.finalize(2950);
        assert_eq!(texts(&m, true), [" Bye", "<fin>"]);
        assert!(!e.endpoint_due(5000));
    }

    #[test]
    fn scripts_out_of_timeline_order_still_play_every_word() {
        // Built by hand (Script::parse would refuse it): the later utterance comes first.
        let parsed = script();
        let unordered = Script {
            utterances: vec![parsed.utterances[1].clone(), parsed.utterances[0].clone()],
        };
        let mut e = Engine::new(
            &unordered,
            EngineOptions {
                endpoints: true,
                ..options()
            },
        );
        assert!(!e.ordered);
        let m = e.tick(2400);
        assert_eq!(
            texts(&m, true),
            [" He", "llo", ",", " GStr", "eamer", " wo", "rld", ".", "<end>"]
        );
        let m = e.tick(3400);
        assert_eq!(texts(&m, true), ["Bye", "<end>"]);
        assert!(e.tick(5000).tokens.is_empty());
    }

    #[test]
    fn long_scripts_cost_only_their_live_words() {
        let long = Script::repeating(&script(), 3000, 3_600_000);
        let mut e = Engine::new(&long, options());
        let mut finals = 0;
        for step in 1..=30_010u64 {
            let m = e.tick(step * 120);
            finals += m.tokens.iter().filter(|t| t.is_final).count();
        }
        assert_eq!(finals, 1200 * 9);
        assert_eq!(e.first_pending, e.words.len());
        assert_eq!(e.first_open, e.utterances.len());
    }

    #[test]
    fn drain_finalizes_started_words_only() {
        let mut e = Engine::new(&script(), options());
        let m = e.drain(1300).unwrap();
        assert_eq!(
            texts(&m, true),
            ["He", "llo", ",", " GStr", "eamer", " wo", "rld", "."]
        );
        assert_eq!(m.final_audio_proc_ms, 1300);
        assert!(e.drain(1300).is_none());
        let m = e.tick(1400);
        assert!(m.tokens.is_empty());
    }
}
