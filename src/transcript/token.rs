// SPDX-License-Identifier: MPL-2.0
//! A token as any backend reports it: Soniox's piece of text, already timed on the input's
//! timeline (nanoseconds of input PTS), with the moment its audio went out.

use std::time::Instant;

/// One token, timed in input nanoseconds.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Token {
    pub text: String,
    pub is_final: bool,
    /// Input PTS (ns) of the sample where it starts, and of the one past its end.
    pub pts: Option<u64>,
    pub end: Option<u64>,
    /// When the audio where it starts was sent (live latency), if known.
    pub sent: Option<Instant>,
    pub confidence: Option<f64>,
    pub speaker: Option<String>,
    pub language: Option<String>,
    /// `original`, `translation` or `none` (translation on), as Soniox sent it.
    pub translation_status: Option<String>,
    pub source_language: Option<String>,
    /// `<fin>` only: it answers a finalize that the element's user asked for (not one the
    /// element sent on its own to keep its latency).
    pub requested: bool,
    /// Spoken audio that an earlier connection of the session made final already: it came
    /// again in a replay (for the translation it still owed); its words were pushed.
    pub replayed: bool,
}

impl Token {
    /// Soniox's endpoint marker.
    pub const END: &'static str = "<end>";
    /// Soniox's finalize marker.
    pub const FIN: &'static str = "<fin>";

    /// A translated token (not the original speech).
    pub fn is_translation(&self) -> bool {
        self.translation_status.as_deref() == Some("translation")
    }

    /// `<end>` or `<fin>`: markers, never text.
    pub fn is_marker(&self) -> bool {
        self.text == Self::END || self.text == Self::FIN
    }
}
