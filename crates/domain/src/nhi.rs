//! The National Health Index number (HISO 10046:2023), both formats, with their check characters.

use serde::{Deserialize, Deserializer, Serialize};
use std::fmt;

/// Why a string is not an NHI number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NhiError {
    /// Not seven characters of the form `AAANNNC` or `AAANNAX`.
    #[error(
        "an NHI number is 7 characters: 3 letters (not I or O), then 4 digits or 2 digits and 2 letters, e.g. ZZZ0016"
    )]
    Format,
    /// The shape is right but the check character does not match.
    #[error("this NHI number's check character does not match; please check it was typed correctly")]
    CheckDigit,
}

/// A valid NHI number, upper case. The only way to make one is [`Nhi::parse`].
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Nhi(String);

/// Letters exclude I and O: A=1..H=8, J=9..N=13, P=14..Z=24.
fn letter_value(c: u8) -> Option<u32> {
    match c {
        b'A'..=b'H' => Some(u32::from(c - b'A') + 1),
        b'J'..=b'N' => Some(u32::from(c - b'J') + 9),
        b'P'..=b'Z' => Some(u32::from(c - b'P') + 14),
        _ => None,
    }
}

fn letter_for_value(v: u32) -> Option<u8> {
    (b'A'..=b'Z').find(|&c| letter_value(c) == Some(v))
}

fn weighted_sum(stem: &[u8]) -> Option<u32> {
    let mut sum = 0;
    for (i, &c) in stem.iter().enumerate() {
        let v = if c.is_ascii_digit() { u32::from(c - b'0') } else { letter_value(c)? };
        let weight = 7 - u32::try_from(i).ok()?;
        sum += v * weight;
    }
    Some(sum)
}

impl Nhi {
    /// Parses an NHI number, accepting lower case and surrounding spaces.
    ///
    /// # Errors
    /// [`NhiError::Format`] for the wrong shape, [`NhiError::CheckDigit`] for a wrong check character.
    pub fn parse(input: &str) -> Result<Self, NhiError> {
        let s = input.trim().to_ascii_uppercase();
        let b = s.as_bytes();
        if b.len() != 7 || !b[..3].iter().all(|&c| letter_value(c).is_some()) {
            return Err(NhiError::Format);
        }
        let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
        let letters = |r: std::ops::Range<usize>| b[r].iter().all(|&c| letter_value(c).is_some());
        if digits(3..7) {
            let sum = weighted_sum(&b[..6]).ok_or(NhiError::Format)?;
            let r = sum % 11;
            if r == 0 {
                return Err(NhiError::CheckDigit);
            }
            let check = (11 - r) % 10;
            if u32::from(b[6] - b'0') != check {
                return Err(NhiError::CheckDigit);
            }
        } else if digits(3..5) && letters(5..7) {
            let sum = weighted_sum(&b[..6]).ok_or(NhiError::Format)?;
            let check = letter_for_value(23 - sum % 23).ok_or(NhiError::CheckDigit)?;
            if b[6] != check {
                return Err(NhiError::CheckDigit);
            }
        } else {
            return Err(NhiError::Format);
        }
        Ok(Self(s))
    }

    /// The number as seven upper-case characters.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// NHIs starting with Z are reserved for testing (HISO 10046).
    #[must_use]
    pub fn is_test_number(&self) -> bool {
        self.0.starts_with('Z')
    }
}

impl fmt::Display for Nhi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Nhi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // An NHI identifies a person: keep it out of debug output and logs.
        f.write_str("Nhi(***)")
    }
}

impl<'de> Deserialize<'de> for Nhi {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;

    const VALID: &[&str] = &[
        "ZZZ0016", "ZZZ0024", "ZZZ0032", "ZAA0067", "ZAA0075", "ZAA0083", "ZAA0091", "ZAA0105", "ZAA0113", "ZAA0121",
        "ZAA0130", "ZAA0148", "ZAA0156", "ZAC5361", "ZZZ00AC", "ZBN77VL", "ZSC21TN", "ZVB97XQ", "ZDR69YX", "ZHW58CV",
    ];

    #[test]
    fn published_test_numbers_are_valid() {
        for n in VALID {
            assert_eq!(Nhi::parse(n).unwrap().as_str(), *n, "{n}");
        }
    }

    #[test]
    fn known_invalid_numbers_are_refused() {
        assert_eq!(Nhi::parse("ZZZ0044"), Err(NhiError::CheckDigit));
        assert_eq!(Nhi::parse("ZZZ00AA"), Err(NhiError::CheckDigit));
        assert_eq!(Nhi::parse("ZZZ0017"), Err(NhiError::CheckDigit));
        for bad in ["", "ZZZ001", "ZZZ00166", "ZIZ0016", "ZOZ0016", "1ZZ0016", "ZZZ0A16", "ZZZ-016"] {
            assert_eq!(Nhi::parse(bad), Err(NhiError::Format), "{bad}");
        }
    }

    #[test]
    fn lower_case_and_spaces_are_normalised() {
        assert_eq!(Nhi::parse(" zbn77vl ").unwrap().as_str(), "ZBN77VL");
    }

    #[test]
    fn debug_hides_the_number() {
        assert!(!format!("{:?}", Nhi::parse("ZZZ0016").unwrap()).contains("ZZZ"));
    }

    fn letter() -> impl Strategy<Value = char> {
        prop::sample::select("ABCDEFGHJKLMNPQRSTUVWXYZ".chars().collect::<Vec<_>>())
    }

    proptest! {
        /// Every old-format stem with a non-zero remainder has exactly one valid check digit,
        /// (11 − r) mod 10, computed here from the standard's text; a stem with r = 0 has none.
        #[test]
        fn old_format_has_exactly_one_check_digit(a in letter(), b in letter(), c in letter(), n in 0u32..1000) {
            let stem = format!("{a}{b}{c}{n:03}");
            let valid: Vec<u32> = (0..10).filter(|d| Nhi::parse(&format!("{stem}{d}")).is_ok()).collect();
            let alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ";
            let value = |ch: char| alphabet.find(ch).map_or_else(|| ch.to_digit(10).unwrap_or(99), |i| u32::try_from(i).unwrap_or(99) + 1);
            let sum: u32 = stem.chars().zip([7, 6, 5, 4, 3, 2]).map(|(ch, w)| value(ch) * w).sum();
            let r = sum % 11;
            let expected = if r == 0 { vec![] } else { vec![(11 - r) % 10] };
            prop_assert_eq!(valid, expected);
        }

        /// Every new-format stem has exactly one valid check letter, and it is never Z.
        #[test]
        fn new_format_has_exactly_one_check_letter(a in letter(), b in letter(), c in letter(), n in 0u32..100, d in letter()) {
            let stem = format!("{a}{b}{c}{n:02}{d}");
            let valid: Vec<char> = "ABCDEFGHJKLMNPQRSTUVWXYZ".chars()
                .filter(|x| Nhi::parse(&format!("{stem}{x}")).is_ok()).collect();
            prop_assert_eq!(valid.len(), 1);
            prop_assert_ne!(valid[0], 'Z');
        }

        /// Changing one of the always-numeric characters, or the check character, is detected.
        #[test]
        fn single_substitution_is_detected(i in 0usize..20, pos in prop::sample::select(vec![3usize, 4, 6]), sub in "[A-HJ-NP-Z0-9]") {
            let n = VALID[i];
            let mut chars: Vec<char> = n.chars().collect();
            let new = sub.chars().next().unwrap();
            prop_assume!(chars[pos] != new);
            prop_assume!(pos == 6 || new.is_ascii_digit());
            chars[pos] = new;
            let changed: String = chars.into_iter().collect();
            prop_assert!(Nhi::parse(&changed).is_err(), "{} -> {}", n, changed);
        }

        /// Arbitrary input never panics, and anything accepted round-trips.
        #[test]
        fn parse_never_panics(s in "\\PC{0,12}") {
            if let Ok(n) = Nhi::parse(&s) {
                prop_assert_eq!(Nhi::parse(n.as_str()), Ok(n.clone()));
            }
        }
    }
}
