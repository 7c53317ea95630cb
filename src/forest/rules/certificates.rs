//! R14: one official certificate number, one mortgage; the forms in which numbers are compared
//! and stored.

/// The 不动产登记证明号 as compared and stored (R14: one number, one mortgage). Clerks and banks
/// type it with full-width or half-width brackets and digits, with or without spaces; all of these
/// are the same certificate. Full-width ASCII forms (U+FF01–U+FF5E) become their ASCII letters,
/// and every space (the ideographic space U+3000 included) is removed; Chinese characters stay.
pub fn certificate_number(raw: &str) -> String {
    raw.chars()
        .filter(|c| !c.is_whitespace())
        .map(|c| match c {
            '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
            c => c,
        })
        .collect()
}

/// Whether two certificate numbers name one certificate: the same in the registry's comparison
/// form of document identifiers (`kernel::text::document_key`: full-width forms, bracket variants,
/// spaces and invisible characters such as a zero-width space folded away) once every run of
/// digits loses its leading zeros (the official form pads the serial to seven digits,
/// `第0002871号`, which clerks also type as `第2871号`).
pub fn same_certificate(a: &str, b: &str) -> bool {
    certificate_key(a) == certificate_key(b)
}

/// The form in which a parcel's certificate number is kept unique: [`same_certificate`] holds
/// exactly when two numbers have one key.
pub fn certificate_key(raw: &str) -> String {
    crate::kernel::text::document_key(raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padded_and_unpadded_serials_are_one_certificate() {
        let official = "闽(2026)顺昌县不动产证明第0002871号";
        assert!(same_certificate(
            official,
            "闽(2026)顺昌县不动产证明第2871号"
        ));
        assert!(same_certificate(
            official,
            "闽（2026）顺昌县 不动产证明第０２８７１号"
        ));
        assert!(!same_certificate(
            official,
            "闽(2026)顺昌县不动产证明第2872号"
        ));
        assert!(!same_certificate(
            official,
            "闽(2026)顺昌县不动产证明第28710号"
        ));
        assert!(same_certificate(
            official,
            "闽(2026)顺昌县不动产证明第000\u{200B}2871号"
        ));
        assert!(same_certificate(
            official,
            "\u{FEFF}闽〔2026〕顺昌县不动产证明第2871\u{00AD}号"
        ));
        assert!(same_certificate("A-0", "A-000"));
        assert!(!same_certificate("A-0", "A-"));
        assert!(!same_certificate("A-10", "A-1"));
    }

    #[test]
    fn certificate_numbers_in_full_width_or_with_spaces_are_the_same() {
        let ascii = "闽(2026)顺昌县不动产证明第0002871号";
        assert_eq!(
            certificate_number("闽（２０２６）顺昌县不动产证明第０００２８７１号"),
            ascii
        );
        assert_eq!(
            certificate_number(" 闽（2026）顺昌县\u{3000}不动产证明 第0002871号\t"),
            ascii
        );
        assert_eq!(certificate_number(ascii), ascii);
        // Other full-width punctuation maps too; Chinese characters and 〔〕 are not ASCII forms.
        assert_eq!(certificate_number("闽〔2026〕Ａ－１"), "闽〔2026〕A-1");
    }
}
