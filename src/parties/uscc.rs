//! Party identifiers: the unified social credit code (GB 32100-2015, R1) and the resident ID
//! number (GB 11643-1999, R15). Pure rules, no storage.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::fmt;
use std::str::FromStr;

/// The 31 characters of a credit code, in value order (no I, O, S, V, Z).
const CHARSET: &str = "0123456789ABCDEFGHJKLMNPQRTUWXY";
/// W_i = 3^(i-1) mod 31.
const WEIGHTS: [u32; 17] = [
    1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28,
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CreditCodeError {
    #[error("must be 18 characters")]
    Length,
    #[error(
        "character {position} is not one of 0-9 or the capital letters A-Y other than I, O, S, V"
    )]
    Charset { position: usize },
    #[error("characters 3 to 8 must be the 6-digit code of the registering authority's region")]
    RegionCode,
    #[error("check character is wrong: expected {expected}")]
    CheckCharacter { expected: char },
}

/// A unified social credit code whose form and check character are right.
///
/// [`CreditCode::parse`] takes its input as given: no trimming, and lowercase letters are a
/// `Charset` error. What people type goes through [`CreditCode::read`], which reads lowercase
/// letters as the capitals they can only mean (the code's set has no lowercase letters), so the
/// code stored is always in capitals. Characters 3–8 must be digits, but their province prefix is
/// not checked against GB/T 2260, because authorities at national level register with `100000`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CreditCode(String);

impl CreditCode {
    pub fn parse(s: &str) -> Result<CreditCode, CreditCodeError> {
        if s.chars().count() != 18 {
            return Err(CreditCodeError::Length);
        }
        if let Some(i) = s.chars().position(|c| !CHARSET.contains(c)) {
            return Err(CreditCodeError::Charset { position: i + 1 });
        }
        // All characters are now ASCII, so byte ranges are character ranges.
        if !s[2..8].bytes().all(|b| b.is_ascii_digit()) {
            return Err(CreditCodeError::RegionCode);
        }
        let expected = check_character(&s[..17]).ok_or(CreditCodeError::Length)?;
        if !s.ends_with(expected) {
            return Err(CreditCodeError::CheckCharacter { expected });
        }
        Ok(CreditCode(s.to_owned()))
    }

    /// A code as a person typed it: ASCII lowercase letters read as capitals, then [`parse`]d.
    /// Nothing else is forgiven (no trimming, no full-width characters), so a typo stays a typo.
    ///
    /// [`parse`]: CreditCode::parse
    pub fn read(s: &str) -> Result<CreditCode, CreditCodeError> {
        CreditCode::parse(&s.to_ascii_uppercase())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Characters 3–8: the registering authority's administrative division code.
    pub fn region_code(&self) -> &str {
        &self.0[2..8]
    }
}

impl FromStr for CreditCode {
    type Err = CreditCodeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        CreditCode::parse(s)
    }
}

impl fmt::Display for CreditCode {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The 18th character for the first 17, or `None` unless they are 17 characters of the code's set.
/// Characters 3–8 are not checked here, so that generators can use it on any prefix.
pub fn check_character(first17: &str) -> Option<char> {
    if first17.chars().count() != 17 {
        return None;
    }
    let mut sum = 0;
    for (c, w) in first17.chars().zip(WEIGHTS) {
        sum += CHARSET.find(c)? as u32 * w;
    }
    CHARSET.chars().nth(((31 - sum % 31) % 31) as usize)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum IdNumberError {
    #[error("must be 18 characters")]
    Length,
    #[error("must be 17 digits followed by a digit or X")]
    Format,
    #[error("check digit is wrong: expected {expected}")]
    CheckDigit { expected: char },
}

/// A resident ID number whose check digit is right. It never prints in full: `Debug` shows
/// [`IdNumber::masked`] and there is no `Display`; the registry keeps only [`IdNumber::keyed_hash`]
/// (R15).
///
/// A lowercase `x` check digit is accepted and stored as `X`: people type it both ways, and the
/// keyed hash must be the same for both or a bank's search would miss the farmer.
#[derive(Clone, PartialEq, Eq)]
pub struct IdNumber(String);

const ID_WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
const ID_CHECK: &[u8; 11] = b"10X98765432";

impl IdNumber {
    pub fn parse(s: &str) -> Result<IdNumber, IdNumberError> {
        if s.chars().count() != 18 {
            return Err(IdNumberError::Length);
        }
        if !s.is_ascii() {
            return Err(IdNumberError::Format);
        }
        let canonical = s.replace('x', "X");
        let (body, last) = canonical.split_at(17);
        if !body.bytes().all(|b| b.is_ascii_digit())
            || !(last == "X" || last.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(IdNumberError::Format);
        }
        let sum: u32 = body
            .bytes()
            .zip(ID_WEIGHTS)
            .map(|(b, w)| u32::from(b - b'0') * w)
            .sum();
        let expected = char::from(ID_CHECK[(sum % 11) as usize]);
        if !last.starts_with(expected) {
            return Err(IdNumberError::CheckDigit { expected });
        }
        Ok(IdNumber(canonical))
    }

    /// Only the province (the first 2 digits) kept, the other 16 starred: "35****************".
    ///
    /// A mask is safe only if what it leaves unknown cannot be tried out through an exact-match
    /// search. The number is region (6) + birth date (8) + sequence (3) + check (1). Showing the
    /// first 4 and last 4 left only the county (2 digits, a few dozen in a province), the birth
    /// date and one sequence digit unknown — and the shown check digit let a guesser discard 10 in
    /// 11 candidates offline: about a thousand searches for someone whose age and county are
    /// known. With the province alone, even a guesser who knows the county and the birth date
    /// still faces the full sequence (1,000 candidates, no check digit to filter with), which a
    /// daily quota of look-ups makes weeks of audited searching rather than minutes. Those who see
    /// the mask (banks on a notice, the holder) know the person by name and their own records;
    /// digits would only help a stranger.
    pub fn masked(&self) -> String {
        format!("{}{}", &self.0[..2], "*".repeat(16))
    }

    /// hex(HMAC-SHA256(key, number)): what the registry stores and searches by.
    pub fn keyed_hash(&self, key: &[u8]) -> String {
        let mut mac = match Hmac::<Sha256>::new_from_slice(key) {
            Ok(mac) => mac,
            Err(_) => unreachable!("HMAC takes a key of any length"),
        };
        mac.update(self.0.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }
}

impl fmt::Debug for IdNumber {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.debug_tuple("IdNumber").field(&self.masked()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const CIB: &str = "91350000158142711F"; // 兴业银行股份有限公司

    #[test]
    fn industrial_bank_code() {
        assert_eq!(check_character(&CIB[..17]), Some('F'));
        let code = CreditCode::parse(CIB).unwrap();
        assert_eq!((code.as_str(), code.region_code()), (CIB, "350000"));
        assert_eq!(code.to_string(), CIB);
        assert_eq!(
            CreditCode::parse("91350000158142711G"),
            Err(CreditCodeError::CheckCharacter { expected: 'F' })
        );
    }

    #[test]
    fn credit_code_errors() {
        use CreditCodeError::*;
        assert_eq!(CreditCode::parse(""), Err(Length));
        assert_eq!(CreditCode::parse(&CIB[..17]), Err(Length));
        assert_eq!(CreditCode::parse(&format!("{CIB} ")), Err(Length));
        assert_eq!(
            CreditCode::parse("91350000158142711f"),
            Err(Charset { position: 18 })
        );
        assert_eq!(
            CreditCode::parse("9I350000158142711F"),
            Err(Charset { position: 2 })
        );
        assert_eq!(
            CreditCode::parse("91350000158142711兴"),
            Err(Charset { position: 18 })
        );
        assert_eq!(CreditCode::parse("9135A000158142711F"), Err(RegionCode));
        assert_eq!(check_character("9135000015814271"), None);
        assert_eq!(check_character("9I350000158142711"), None);
    }

    #[test]
    fn lowercase_is_read_as_capitals() {
        assert_eq!(
            CreditCode::read("91350000158142711f").map(|c| c.0),
            Ok(CIB.to_string())
        );
        assert_eq!(
            CreditCode::read("91350000158142711g"),
            Err(CreditCodeError::CheckCharacter { expected: 'F' })
        );
        // Lowercase i, o, s, v, z are no more valid than their capitals.
        assert_eq!(
            CreditCode::read("9i350000158142711F"),
            Err(CreditCodeError::Charset { position: 2 })
        );
        assert_eq!(
            CreditCode::read(" 91350000158142711F"),
            Err(CreditCodeError::Length)
        );
    }

    #[test]
    fn id_numbers() {
        use IdNumberError::*;
        // The standard's own example ends in X.
        assert!(IdNumber::parse("11010519491231002X").is_ok());
        assert_eq!(
            IdNumber::parse("11010519491231002x"),
            IdNumber::parse("11010519491231002X")
        );
        assert_eq!(
            IdNumber::parse("110105194912310021"),
            Err(CheckDigit { expected: 'X' })
        );
        assert_eq!(IdNumber::parse("11010519491231002"), Err(Length));
        assert_eq!(IdNumber::parse("1101051949123100X2"), Err(Format));
        assert_eq!(IdNumber::parse("11010519491231002Y"), Err(Format));
        assert_eq!(IdNumber::parse("兴1010519491231002X"), Err(Format));

        let id = IdNumber::parse("350702199001016234").unwrap();
        assert_eq!(id.masked(), "35****************");
        assert_eq!(id.masked().len(), 18);
        assert_eq!(format!("{id:?}"), r#"IdNumber("35****************")"#);
        assert_eq!(
            IdNumber::parse("350702199001016235"),
            Err(CheckDigit { expected: '4' })
        );
    }

    #[test]
    fn keyed_hash_is_hmac_sha256() {
        let id = IdNumber::parse("11010519491231002X").unwrap();
        let hash = id.keyed_hash(b"key");
        assert_eq!(hash.len(), 64);
        assert_eq!(
            hash,
            IdNumber::parse("11010519491231002x")
                .unwrap()
                .keyed_hash(b"key")
        );
        assert_ne!(hash, id.keyed_hash(b"other key"));
        // Computed independently: Python's hmac.new(b"key", b"11010519491231002X", hashlib.sha256).
        assert_eq!(
            hash,
            "c702e187e6363f417304a7cb1ac993b0f8d3b0255ed35027ccd9ddc60b32b2d4"
        );
    }

    fn prefix() -> impl Strategy<Value = String> {
        let any_char = proptest::sample::select(CHARSET.chars().collect::<Vec<_>>());
        let digit = proptest::sample::select("0123456789".chars().collect::<Vec<_>>());
        (
            proptest::collection::vec(any_char.clone(), 2),
            proptest::collection::vec(digit, 6),
            proptest::collection::vec(any_char, 9),
        )
            .prop_map(|(a, b, c)| a.into_iter().chain(b).chain(c).collect())
    }

    proptest! {
        #[test]
        fn check_character_completes_any_prefix(first17 in prefix()) {
            let check = check_character(&first17).unwrap();
            let code = format!("{first17}{check}");
            prop_assert_eq!(CreditCode::parse(&code).map(|c| c.0), Ok(code.clone()));
            for other in CHARSET.chars().filter(|&c| c != check) {
                prop_assert_eq!(
                    CreditCode::parse(&format!("{first17}{other}")),
                    Err(CreditCodeError::CheckCharacter { expected: check })
                );
            }
        }
    }
}
