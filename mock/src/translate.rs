//! The stand-in's translation (protocol doc §2.2, §6.2, §6.5): which spoken words are
//! translated, into what, and the made-up translation it sends.
//!
//! The stand-in does not translate: the "translation" of a chunk of words is the chunk marked
//! with its target language ([`translated`]), so tests can tell exactly which originals each
//! translation chunk follows.

/// The `translation` object of a start request, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TranslationMode {
    /// `{"type":"one_way","target_language":..}`: all speech is translated into `target`, but
    /// for speech already in it.
    OneWay { target: String },
    /// `{"type":"two_way","language_a":..,"language_b":..}`: speech in one of the two is
    /// translated into the other; speech in any other language only transcribed.
    TwoWay { a: String, b: String },
}

impl TranslationMode {
    /// Into which language speech in `spoken` is translated; `None`: it is not translated
    /// (its tokens are marked `none`).
    pub fn target_for(&self, spoken: &str) -> Option<&str> {
        match self {
            // Speech already in the target language is not translated (marked `none`).
            TranslationMode::OneWay { target } if spoken == target => None,
            TranslationMode::OneWay { target } => Some(target),
            TranslationMode::TwoWay { a, b } if spoken == a => Some(b),
            TranslationMode::TwoWay { a, b } if spoken == b => Some(a),
            TranslationMode::TwoWay { .. } => None,
        }
    }
}

/// The `translation_status` of spoken tokens that will be translated.
pub(crate) const ORIGINAL: &str = "original";
/// The `translation_status` of spoken tokens that will not be.
pub(crate) const NONE: &str = "none";
/// The `translation_status` of translation tokens.
pub(crate) const TRANSLATION: &str = "translation";

/// What the stand-in sends as the translation of `chunk` (spoken words joined by spaces)
/// into `target`: `"[fr] Hello, and welcome"`.
pub fn translated(chunk: &str, target: &str) -> String {
    format!("[{target}] {}", chunk.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_way_translates_each_of_its_languages_into_the_other_and_nothing_else() {
        let mode = TranslationMode::TwoWay {
            a: "en".into(),
            b: "es".into(),
        };
        assert_eq!(mode.target_for("en"), Some("es"));
        assert_eq!(mode.target_for("es"), Some("en"));
        assert_eq!(mode.target_for("de"), None);
        let one = TranslationMode::OneWay {
            target: "fr".into(),
        };
        assert_eq!(one.target_for("en"), Some("fr"));
        assert_eq!(one.target_for("fr"), None);
        assert_eq!(translated(" Hello, and", "fr"), "[fr] Hello, and");
    }
}
