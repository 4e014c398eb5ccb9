//! Turns free-text phone numbers into E.164, the only form CleverTap's `Phone` accepts.

use phonenumber::country;
use phonenumber::metadata::DATABASE;

/// E.164 text for a phone, or None when it cannot be a real number.
///
/// A number passes when libphonenumber knows it as valid, or when its length is possible for
/// its country: fictional ranges (Ofcom's 07700 900xxx, new area codes) are real-looking numbers
/// CleverTap accepts, while "555-0199" without an area code is not.
pub(crate) fn to_e164(text: &str, region: country::Id) -> Option<String> {
    let text = text.trim();
    // libphonenumber's parse is costly (its regex cache hashes long patterns on every call)
    // and one record often parses the same number twice: the template's `phone` filter, then
    // the normalisation of `Phone`. Remember recent answers per thread, bounded.
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

const MEMO_CAPACITY: usize = 1024;

thread_local! {
    static MEMO: std::cell::RefCell<std::collections::HashMap<(country::Id, String), Option<String>>> =
        std::cell::RefCell::new(std::collections::HashMap::new());
}

fn parse_e164(text: &str, region: country::Id) -> Option<String> {
    if text.is_empty() || !text.bytes().any(|b| b.is_ascii_digit()) || text.len() > 64 {
        return None;
    }
    let number = phonenumber::parse(Some(region), text).ok()?;
    let e164 = number.format().mode(phonenumber::Mode::E164).to_string();
    let code = number.code().value();
    let national_len = e164.len().checked_sub(1 + code.to_string().len())?;
    // Only the code's main region counts: small regions sharing +1 allow 7-digit local
    // numbers, which would let "555-0199" through as "+15550199".
    let possible = DATABASE.by_code(&code).is_some_and(|metas| {
        let main: Vec<_> = metas
            .iter()
            .filter(|m| m.is_main_country_for_code())
            .collect();
        let metas = if main.is_empty() {
            metas.iter().collect()
        } else {
            main
        };
        metas.iter().any(|meta| {
            let d = meta.descriptors();
            // Lengths live on the per-type descriptors; the general one is often empty.
            let kinds = [
                d.fixed_line(),
                d.mobile(),
                d.toll_free(),
                d.premium_rate(),
                d.shared_cost(),
                d.personal_number(),
                d.voip(),
                d.uan(),
                d.pager(),
            ];
            let len = u16::try_from(national_len).unwrap_or(u16::MAX);
            d.general().possible_length().contains(&len)
                || kinds
                    .iter()
                    .flatten()
                    .any(|k| k.possible_length().contains(&len))
        })
    });
    (phonenumber::is_valid(&number) || possible)
        .then_some(e164)
        .filter(|s| is_e164(s))
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

pub(crate) fn parse_region(code: &str) -> Option<country::Id> {
    code.trim().to_ascii_uppercase().parse().ok()
}

/// Loads libphonenumber's metadata now rather than on the first webhook with a phone (its
/// lazy load takes long enough to show in the first delivery's latency).
pub fn warm_up() {
    let _ = to_e164("+14155550100", country::Id::US);
}

#[cfg(test)]
mod tests {
    use super::*;

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
            ("local number without area code", "555-0199", None),
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
        assert!(parse_region("XX").is_none(), "unknown region");
    }
}
