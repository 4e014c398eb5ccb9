//! Turns free-text phone numbers into E.164, the only form CleverTap's `Phone` accepts.
//!
//! The rule, the same for the template filter `phone` and the reserved field `Phone`: a number
//! is sent as the E.164 that Google's libphonenumber (`rlibphonenumber`, a port of it) gives
//! for `parse(text, default_region)`, when
//!
//! 1. libphonenumber calls it valid, or its length is possible for its country as a whole
//!    number (`IS_POSSIBLE`): fictional but well-formed ranges such as Ofcom's
//!    `+44 7700 900123` pass, while `555-0199` is possible only as a local number without its
//!    area code (`IS_POSSIBLE_LOCAL_ONLY`) and is refused;
//! 2. the result has 7 to 15 digits and no leading 0 (CleverTap's own check, [`is_e164`]);
//! 3. libphonenumber did not silently drop a letter typed among the digits (`O` for `0`):
//!    it spells three letters or more as a vanity number (`1-800-FLOWERS`) and reads an
//!    extension's label (`x12`, `ext. 12`), but drops one or two other letters, which would
//!    send another number.
//!
//! Anything else is refused (None): the value is dropped and counted, never replaced by a
//! guess. A number written with its country code (`+49 …`, `00 49 …` where `00` is the default
//! region's international prefix) is read with its own country's rules, never the default
//! region's, and extensions are left out (E.164 has none). `tests/fixtures/phones.jsonl` holds
//! what libphonenumber itself answers for each number of the corpus, and `tests/phones.rs`
//! holds freshtap to it.

use std::cell::RefCell;
use std::collections::HashMap;

use rlibphonenumber::{NumberLengthType, PHONE_NUMBER_UTIL, PhoneNumberFormat};

/// A default region for numbers written without a country code: an ISO 3166 alpha-2 code
/// libphonenumber has numbering rules for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Region(rlibphonenumber::Region);

impl Region {
    pub(crate) const US: Region = Region(rlibphonenumber::Region::US);
}

/// The region for an ISO 3166 alpha-2 code, in any case; None when libphonenumber has no
/// numbering rules for it ("XX", "001").
pub(crate) fn parse_region(code: &str) -> Option<Region> {
    let region: rlibphonenumber::Region = code.trim().parse().ok()?;
    // Every pair of letters parses; only the regions with metadata have a country code.
    PHONE_NUMBER_UTIL
        .get_country_code_for_region(region)
        .map(|_| Region(region))
}

/// E.164 text for a phone, or None when the module's rule refuses it.
pub(crate) fn to_e164(text: &str, region: Region) -> Option<String> {
    let text = text.trim();
    // libphonenumber refuses longer input outright; refusing first keeps such text out of the
    // memo too.
    if text.chars().count() > MAX_INPUT_CHARS {
        return None;
    }
    // Parsing is costly (dozens of regular expressions) and one record often parses the same
    // number twice: the template's `phone` filter, then the normalisation of `Phone`. Remember
    // recent answers per thread, bounded.
    let key = (region, text.to_owned());
    if let Some(known) = MEMO.with(|memo| memo.borrow().get(&key).cloned()) {
        return known;
    }
    let answer = parse_e164(text, region);
    MEMO.with(|memo| {
        let mut memo = memo.borrow_mut();
        if memo.len() >= MEMO_CAPACITY {
            memo.clear();
        }
        memo.insert(key, answer.clone());
    });
    answer
}

/// libphonenumber's own bound on the text it will parse (its `MAX_INPUT_STRING_LENGTH`),
/// which the Rust port does not apply.
const MAX_INPUT_CHARS: usize = 250;

const MEMO_CAPACITY: usize = 1024;

thread_local! {
    static MEMO: RefCell<HashMap<(Region, String), Option<String>>> =
        RefCell::new(HashMap::new());
}

fn parse_e164(text: &str, region: Region) -> Option<String> {
    let util = &*PHONE_NUMBER_UTIL;
    let number = util.parse(text, Some(region.0)).ok()?;
    let whole = util.is_valid_number(&number)
        || matches!(
            util.is_possible_number_with_reason(&number),
            Ok(NumberLengthType::IsPossible)
        );
    if !whole || drops_a_letter(text, number.extension()) {
        return None;
    }
    let e164 = util.format(&number, PhoneNumberFormat::E164);
    is_e164(&e164).then(|| e164.into_owned())
}

/// Whether libphonenumber dropped a letter touching or between the digits of the number
/// (`extension` is the one it read). Mirrors its steps: the number starts at the first digit
/// or `+`, a tel: URI's parameters and a second number (`/ x…`) are not part of it, an
/// extension's label is not part of it, and three letters or more make a vanity number.
fn drops_a_letter(text: &str, extension: &str) -> bool {
    let Some(start) = text.find(|c: char| c.is_numeric() || c == '+' || c == '＋') else {
        return false;
    };
    let mut number = &text[start..];
    for end in [";phone-context=", ";isub="] {
        if let Some(at) = number.find(end) {
            number = &number[..at];
        }
    }
    number = before_second_number(number);
    number = before_extension_label(number, extension);
    let chars: Vec<char> = number.chars().collect();
    let letters = chars.iter().filter(|c| c.is_ascii_alphabetic()).count();
    if letters == 0 || letters >= 3 {
        return false;
    }
    let first = chars.iter().position(|c| c.is_numeric());
    let last = chars.iter().rposition(|c| c.is_numeric());
    let inside = match (first, last) {
        (Some(first), Some(last)) => chars[first..=last].iter().any(char::is_ascii_alphabetic),
        _ => false,
    };
    let touching = chars.windows(2).any(|pair| {
        (pair[0].is_ascii_alphabetic() && pair[1].is_numeric())
            || (pair[0].is_numeric() && pair[1].is_ascii_alphabetic())
    });
    inside || touching
}

/// The text before libphonenumber's second-number marker: a slash, spaces, then `x`.
fn before_second_number(number: &str) -> &str {
    for (at, c) in number.char_indices() {
        if c == '/' || c == '\\' {
            let rest = number[at + 1..].trim_start_matches(' ');
            if rest.starts_with('x') {
                return &number[..at];
            }
        }
    }
    number
}

/// The number without its extension's label and digits: the last run of letters, when only
/// the extension's digits follow it.
fn before_extension_label<'a>(number: &'a str, extension: &str) -> &'a str {
    if extension.is_empty() {
        return number;
    }
    let Some(last_letter) = number.rfind(|c: char| c.is_ascii_alphabetic()) else {
        return number;
    };
    let label_start = number[..last_letter]
        .trim_end_matches(|c: char| c.is_ascii_alphabetic())
        .len();
    let digits_after = number[last_letter + 1..]
        .chars()
        .filter(|c| c.is_numeric())
        .count();
    if digits_after == extension.chars().count() {
        &number[..label_start]
    } else {
        number
    }
}

/// CleverTap's own shape check for `Phone`.
pub(crate) fn is_e164(s: &str) -> bool {
    let Some(digits) = s.strip_prefix('+') else {
        return false;
    };
    (7..=15).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0')
}

/// Loads libphonenumber's metadata and compiles its patterns now rather than on the first
/// webhook with a phone (that takes long enough to show in the first delivery's latency).
pub fn warm_up() {
    let _ = to_e164("+14155550100", Region::US);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn formats_or_refuses_each_sample_phone() {
        let us = parse_region("US").unwrap();
        let cases = [
            (
                "uk drama range with +",
                "+44 7700 900123",
                Some("+447700900123"),
            ),
            (
                "us with parentheses",
                "+1 (415) 555-0134",
                Some("+14155550134"),
            ),
            ("us without +", "(415) 555-0100", Some("+14155550100")),
            (
                "test webhook toll free",
                "+1-866-832-3090",
                Some("+18668323090"),
            ),
            ("us with leading 1", "19266529503", Some("+19266529503")),
            (
                "german mobile keeps its 1",
                "+49 1512 3456789",
                Some("+4915123456789"),
            ),
            (
                "trunk prefix in parentheses",
                "+44 (0)20 7946 0958",
                Some("+442079460958"),
            ),
            ("local number without area code", "555-0199", None),
            ("letter o among the digits", "+1 415 555 O1340", None),
            ("double plus", "+44+441234", None),
            ("too short", "223", None),
            ("letters", "call me", None),
            ("empty", "", None),
        ];
        for (name, input, want) in cases {
            assert_eq!(to_e164(input, us).as_deref(), want, "case {name}");
        }
    }

    #[test]
    fn default_region_applies_to_numbers_without_plus() {
        let gb = parse_region("gb").unwrap();
        assert_eq!(
            to_e164("07911 123456", gb).as_deref(),
            Some("+447911123456"),
            "gb national"
        );
        assert_eq!(
            parse_region(" de "),
            Some(Region(rlibphonenumber::Region::DE))
        );
        for unknown in ["XX", "001", "", "USA", "U1"] {
            assert!(
                parse_region(unknown).is_none(),
                "unknown region {unknown:?}"
            );
        }
    }

    #[test]
    fn extension_labels_and_vanity_words_are_not_dropped_letters() {
        let us = Region::US;
        let cases = [
            ("+1 415 555 0134 ext. 12", Some("+14155550134")),
            ("+1 415 555 0134 x12", Some("+14155550134")),
            ("1-800-FLOWERS ext 5", Some("+18003569377")),
            ("+1 415 555 0134 / x 12", Some("+14155550134")),
            ("+1 415 555 O1340 ext 12", None),
            ("tel:+1-415-555-O134;phone-context=example.com", None),
        ];
        for (input, want) in cases {
            assert_eq!(to_e164(input, us).as_deref(), want, "case {input:?}");
        }
    }

    #[test]
    fn text_longer_than_libphonenumber_reads_is_refused() {
        let long = format!("{} +44 20 7946 0958", "-".repeat(MAX_INPUT_CHARS));
        assert_eq!(to_e164(&long, Region::US), None);
        let fits = format!("{} +44 20 7946 0958", "-".repeat(200));
        assert_eq!(to_e164(&fits, Region::US).as_deref(), Some("+442079460958"));
    }

    fn regions() -> impl Strategy<Value = Region> {
        prop::sample::select(vec!["US", "GB", "DE", "IN", "BR", "JP", "NG", "MX"])
            .prop_map(|code| parse_region(code).unwrap())
    }

    /// Whatever `to_e164` returns passes CleverTap's check and reads back as itself, with any
    /// default region.
    fn holds_as_fixed_point(
        text: &str,
        region: Region,
        other: Region,
    ) -> Result<(), TestCaseError> {
        if let Some(e164) = to_e164(text, region) {
            prop_assert!(is_e164(&e164), "not e164: {}", e164);
            prop_assert_eq!(to_e164(&e164, region), Some(e164.clone()));
            prop_assert_eq!(to_e164(&e164, other), Some(e164.clone()));
        }
        Ok(())
    }

    proptest! {
        #[test]
        fn answers_are_e164_fixed_points(text in "\\PC{0,40}", region in regions(), other in regions()) {
            holds_as_fixed_point(&text, region, other)?;
        }

        #[test]
        fn phone_like_answers_are_e164_fixed_points(
            text in "[+0-9 ()\\-.xOl#]{0,24}", region in regions(), other in regions()
        ) {
            holds_as_fixed_point(&text, region, other)?;
        }
    }
}
