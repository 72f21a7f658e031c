// SPDX-License-Identifier: MPL-2.0
//! Which Soniox sessions a stream needs for its translation pads, and where each one's text
//! goes (contract §4a): one-way, the first target is translated in the transcription session
//! and each further target in a session of its own, fed the same audio, whose original words
//! are not used; two-way, exactly two pads in one session.

use super::Translation;
use crate::soniox::protocol;
use crate::transcript::translation::Direction;

/// A translation pad as the plan sees it: the pad (`P`), its name and its language.
#[derive(Debug, Clone)]
pub struct PadLanguage<P> {
    pub pad: P,
    pub name: String,
    pub language: Option<String>,
}

/// One Soniox session of the stream.
#[derive(Debug, Clone, PartialEq)]
pub struct Member<P> {
    /// Its start request's `translation`.
    pub translation: Option<protocol::Translation>,
    /// Its original words go to `src` (and the bus): the transcription session.
    pub transcribes: bool,
    /// The translation pads it feeds.
    pub lanes: Vec<Lane<P>>,
}

/// A translation pad fed by a session.
#[derive(Debug, Clone, PartialEq)]
pub struct Lane<P> {
    pub pad: P,
    pub language: String,
    pub direction: Direction,
}

/// The sessions for `pads` (in pad order); the first transcribes. An error says what to fix.
pub fn plan<P: Clone>(
    mode: Translation,
    pads: &[PadLanguage<P>],
) -> Result<Vec<Member<P>>, String> {
    let mut languages = Vec::with_capacity(pads.len());
    for pad in pads {
        let Some(language) = &pad.language else {
            return Err(format!(
                "{name} has no language: set {name}::language-code (e.g. fr)",
                name = pad.name
            ));
        };
        languages.push(language.clone());
    }
    let lane = |pad: &PadLanguage<P>, language: &str, direction| Lane {
        pad: pad.pad.clone(),
        language: language.to_string(),
        direction,
    };
    match mode {
        _ if pads.is_empty() => Ok(vec![Member {
            translation: None,
            transcribes: true,
            lanes: Vec::new(),
        }]),
        Translation::TwoWay => {
            let [a, b] = languages.as_slice() else {
                return Err(format!(
                    "translation=two-way needs exactly two translation pads, and there are {}",
                    pads.len()
                ));
            };
            if a == b {
                return Err(format!(
                    "translation=two-way needs two different languages, and both pads have {a}"
                ));
            }
            Ok(vec![Member {
                translation: Some(protocol::Translation::TwoWay {
                    language_a: a.clone(),
                    language_b: b.clone(),
                }),
                transcribes: true,
                lanes: vec![
                    lane(&pads[0], a, Direction::TwoWay),
                    lane(&pads[1], b, Direction::TwoWay),
                ],
            }])
        }
        Translation::OneWay => {
            let mut targets: Vec<&String> = Vec::new();
            for language in &languages {
                if !targets.contains(&language) {
                    targets.push(language);
                }
            }
            Ok(targets
                .iter()
                .enumerate()
                .map(|(i, target)| Member {
                    translation: Some(protocol::Translation::OneWay {
                        target_language: target.to_string(),
                    }),
                    transcribes: i == 0,
                    lanes: pads
                        .iter()
                        .zip(&languages)
                        .filter(|(_, language)| language == target)
                        .map(|(pad, _)| lane(pad, target, Direction::OneWay))
                        .collect(),
                })
                .collect())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pads(languages: &[Option<&str>]) -> Vec<PadLanguage<u32>> {
        languages
            .iter()
            .enumerate()
            .map(|(i, l)| PadLanguage {
                pad: i as u32,
                name: format!("translate_src_{i}"),
                language: l.map(str::to_string),
            })
            .collect()
    }

    fn one_way(target: &str) -> Option<protocol::Translation> {
        Some(protocol::Translation::OneWay {
            target_language: target.into(),
        })
    }

    #[test]
    fn without_pads_one_session_transcribes() {
        let plan = plan(Translation::OneWay, &pads(&[])).unwrap();
        assert_eq!(plan.len(), 1);
        assert!(plan[0].transcribes && plan[0].translation.is_none());
    }

    #[test]
    fn one_way_translates_the_first_target_in_the_transcription_session() {
        let plan = plan(
            Translation::OneWay,
            &pads(&[Some("fr"), Some("de"), Some("fr")]),
        )
        .unwrap();
        assert_eq!(plan.len(), 2, "one session per target language");
        assert_eq!(plan[0].translation, one_way("fr"));
        assert!(plan[0].transcribes);
        let lanes: Vec<u32> = plan[0].lanes.iter().map(|l| l.pad).collect();
        assert_eq!(lanes, [0, 2], "both French pads");
        assert_eq!(plan[1].translation, one_way("de"));
        assert!(!plan[1].transcribes, "its original words are not used");
        assert_eq!(plan[1].lanes[0].pad, 1);
    }

    #[test]
    fn two_way_takes_exactly_two_pads_of_different_languages() {
        let plan2 = plan(Translation::TwoWay, &pads(&[Some("en"), Some("es")])).unwrap();
        assert_eq!(
            plan2[0].translation,
            Some(protocol::Translation::TwoWay {
                language_a: "en".into(),
                language_b: "es".into()
            })
        );
        assert_eq!(plan2[0].lanes[1].language, "es");
        assert_eq!(
            plan(Translation::TwoWay, &pads(&[Some("en")])).unwrap_err(),
            "translation=two-way needs exactly two translation pads, and there are 1"
        );
        let three = plan(
            Translation::TwoWay,
            &pads(&[Some("en"), Some("es"), Some("de")]),
        );
        assert!(three.unwrap_err().contains("there are 3"));
        let same = plan(Translation::TwoWay, &pads(&[Some("en"), Some("en")]));
        assert!(same.unwrap_err().contains("both pads have en"));
    }

    #[test]
    fn a_pad_without_a_language_is_named() {
        assert_eq!(
            plan(Translation::OneWay, &pads(&[Some("fr"), None])).unwrap_err(),
            "translate_src_1 has no language: set translate_src_1::language-code (e.g. fr)"
        );
    }
}
