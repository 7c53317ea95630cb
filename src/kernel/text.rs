//! Document identifiers as the registry compares them. A source document number (`南环有偿〔2026〕15号`)
//! or a certificate number is typed by people with full-width or half-width digits, with one
//! kind of bracket or another, with spaces, and sometimes with invisible characters pasted in
//! from a word processor; all of these name one document. [`document_key`] is the one form in
//! which identifiers are compared and kept unique. What is shown stays as entered.

use unicode_normalization::UnicodeNormalization;

/// Characters that are not seen: zero-width spaces and joiners, the byte-order mark, the soft
/// hyphen, bidirectional marks and embeddings, invisible operators, variation selectors, Hangul
/// fillers and tag characters. A copy of a document number may carry any of them unnoticed.
fn invisible(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}' | '\u{1160}' | '\u{17B4}' | '\u{17B5}'
        | '\u{180B}'..='\u{180F}'
        | '\u{200B}'..='\u{200F}'
        | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{206F}'
        | '\u{3164}'
        | '\u{FE00}'..='\u{FE0F}'
        | '\u{FEFF}'
        | '\u{FFA0}'
        | '\u{FFF9}'..='\u{FFFB}'
        | '\u{1BCA0}'..='\u{1BCA3}'
        | '\u{1D173}'..='\u{1D17A}'
        | '\u{E0000}'..='\u{E0FFF}')
        || c.is_control()
}

/// The bracket pairs a year is written in (`〔2026〕`, `[2026]`, `【2026】`, `(2026)`, …): all one.
fn bracket(c: char) -> char {
    match c {
        '〔' | '[' | '【' | '〖' | '〘' | '（' | '［' | '{' | '｛' | '⦅' | '｟' | '〈' | '《'
        | '<' => '(',
        '〕' | ']' | '】' | '〗' | '〙' | '）' | '］' | '}' | '｝' | '⦆' | '｠' | '〉' | '》'
        | '>' => ')',
        c => c,
    }
}

/// Letters that are one letter in the traditional and the simplified script (`第15號` is
/// `第15号`), and ASCII letters in either case (`EVIL-API-1` is `evil-api-1`).
fn letter(c: char) -> char {
    match c {
        '號' => '号',
        c => c.to_ascii_lowercase(),
    }
}

/// Every run of digits without its leading zeros (a run of zeros alone is the number 0): the
/// official form pads a serial (`第0002871号`, `〔2026〕015号`), which clerks also type unpadded.
fn unpadded(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    let mut zeros = 0usize;
    let mut in_run = false;
    for c in key.chars() {
        if c.is_ascii_digit() {
            if c == '0' && !in_run {
                zeros += 1;
                continue;
            }
            in_run = true;
            zeros = 0;
            out.push(c);
            continue;
        }
        if zeros > 0 {
            out.push('0');
        }
        zeros = 0;
        in_run = false;
        out.push(c);
    }
    if zeros > 0 {
        out.push('0');
    }
    out
}

/// The comparison form of a document identifier: invisible characters dropped, Unicode NFKC
/// (full-width digits and letters become ASCII, compatibility forms their plain letters), every
/// bracket variant one pair of round brackets, and no whitespace at all (a space typed inside a
/// number does not make another number). Idempotent: removing a space can let combining marks
/// reorder under NFKC, so the pass repeats until nothing changes (at most a few times). Then
/// traditional and simplified forms of a letter and the cases of ASCII letters are one, and
/// digit runs lose their zero padding.
pub fn document_key(raw: &str) -> String {
    fn pass(s: &str) -> String {
        let visible: String = s.chars().filter(|c| !invisible(*c)).collect();
        visible
            .nfkc()
            .filter(|c| !c.is_whitespace() && !invisible(*c))
            .map(bracket)
            .map(letter)
            .collect()
    }
    let mut key = pass(raw);
    for _ in 0..4 {
        let again = pass(&key);
        if again == key {
            break;
        }
        key = again;
    }
    unpadded(&key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn traditional_hao_is_simplified_hao() {
        assert_eq!(
            document_key("南环有偿〔2026〕15號"),
            document_key("南环有偿〔2026〕15号")
        );
    }

    #[test]
    fn ascii_letters_fold_case() {
        assert_eq!(document_key("EVIL-API-1"), document_key("evil-api-1"));
        assert_eq!(document_key("ＥＶＩＬ-api-1"), "evil-api-1");
    }

    #[test]
    fn zero_padding_of_digit_runs_folds() {
        assert_eq!(document_key("〔2026〕015号"), document_key("〔2026〕15号"));
        assert_eq!(
            document_key("闽(2021)顺昌县不动产权第0003127号"),
            document_key("闽(2021)顺昌县不动产权第3127号")
        );
        assert_eq!(document_key("第000号"), "第0号");
        assert_eq!(document_key("第0号"), "第0号");
        assert_eq!(document_key("a00"), "a0");
        assert_eq!(document_key("2026"), "2026");
        assert_eq!(document_key("1005"), "1005");
        assert_ne!(document_key("第105号"), document_key("第15号"));
    }

    #[test]
    fn angle_brackets_fold_with_the_others() {
        assert_eq!(document_key("南环有偿〈2026〉15号"), "南环有偿(2026)15号");
        assert_eq!(document_key("南环有偿《2026》15号"), "南环有偿(2026)15号");
    }

    #[test]
    fn one_document_however_it_is_typed() {
        let key = document_key("南环有偿〔2026〕15号");
        assert_eq!(key, "南环有偿(2026)15号");
        for typed in [
            "南环有偿[2026]15号",
            "南环有偿【2026】15号",
            "南环有偿（2026）15号",
            "南环有偿〔2026〕１５号",
            "南环有偿〔２０２６〕15号",
            "南环有偿〔2026〕1\u{200B}5号",
            "\u{FEFF}南环有偿〔2026〕15号",
            "南环有偿〔2026〕\u{00AD}15号",
            "南环有偿\u{200E}〔2026〕15\u{2060}号",
            " 南环有偿 〔2026〕\u{3000}15号\t",
            "南环有偿［2026］15号",
        ] {
            assert_eq!(document_key(typed), key, "{typed:?}");
        }
    }

    #[test]
    fn different_documents_stay_different() {
        let key = document_key("南环有偿〔2026〕15号");
        for other in [
            "南环有偿〔2026〕16号",
            "南环有偿〔2026〕150号",
            "南环有偿〔2025〕15号",
            "南环交易〔2026〕15号",
        ] {
            assert_ne!(document_key(other), key, "{other}");
        }
    }

    proptest! {
        #[test]
        fn the_key_is_its_own_key(s in "\\PC{0,40}") {
            let k = document_key(&s);
            prop_assert_eq!(document_key(&k), k.clone());
            prop_assert!(!k.chars().any(|c| c.is_whitespace() || invisible(c)));
        }
    }
}
