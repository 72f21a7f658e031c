//! ISO 639-1 language codes (two lowercase letters), for `language_hints` and `translation`.

/// The element's list (one file for both).
const ISO_639_1: &str = include_str!("../../src/soniox/iso-639-1.txt");

/// Whether `code` is a valid ISO 639-1 code, written in lowercase.
pub(crate) fn is_iso_639_1(code: &str) -> bool {
    code.len() == 2 && ISO_639_1.split_whitespace().any(|c| c == code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_and_complete() {
        let codes: Vec<&str> = ISO_639_1.split_whitespace().collect();
        assert!(codes.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(codes.len(), 184);
        for code in ["en", "de", "zh", "ja", "sl", "zu", "aa"] {
            assert!(is_iso_639_1(code), "{code}");
        }
        for code in ["EN", "eng", "e", "", "xx", "en-US", "zz"] {
            assert!(!is_iso_639_1(code), "{code}");
        }
    }
}
