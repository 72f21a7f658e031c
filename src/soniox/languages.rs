// SPDX-License-Identifier: MPL-2.0
//! Language codes as Soniox takes them: ISO 639-1, two lower-case letters.

/// The ISO 639-1 codes (the same file serves the stand-in).
const ISO_639_1: &str = include_str!("iso-639-1.txt");

/// Whether `code` is an ISO 639-1 code, written in lower case.
pub fn is_iso_639_1(code: &str) -> bool {
    code.len() == 2 && ISO_639_1.split_whitespace().any(|c| c == code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes() {
        assert_eq!(ISO_639_1.split_whitespace().count(), 184);
        for code in ["en", "de", "zh", "ja", "sl", "zu", "aa"] {
            assert!(is_iso_639_1(code), "{code}");
        }
        for code in ["EN", "eng", "english", "e", "", "xx", "en-US", "zz"] {
            assert!(!is_iso_639_1(code), "{code}");
        }
    }
}
