//! Dead-letter bodies as the console shows them before an operator reveals one: emails and
//! phone numbers masked (`Pii`), everything else as sent.

use serde_json::Value;

use crate::body::BodyKind;
use crate::telemetry::Pii;

/// The console masks whatever `log.mask_pii` says: that setting is for logs, and a page is
/// read over a shoulder.
const PII: Pii = Pii { mask: true };

/// `body` readable with its emails and phones masked: JSON pretty-printed, a form one
/// `key=value` a line (decoded), anything unreadable scanned as text.
pub fn masked_body(kind: BodyKind, body: &[u8]) -> String {
    match kind {
        BodyKind::Json => match serde_json::from_slice::<Value>(body) {
            Ok(mut value) => {
                mask_value(None, &mut value);
                serde_json::to_string_pretty(&value)
                    .unwrap_or_else(|_| mask_text(&String::from_utf8_lossy(body)))
            }
            Err(_) => mask_text(&String::from_utf8_lossy(body)),
        },
        BodyKind::Form => form_urlencoded::parse(body)
            .map(|(key, value)| format!("{key}={}", mask_field(Some(&key), &value)))
            .collect::<Vec<_>>()
            .join("\n"),
    }
}

/// A body as stored, for the revealed view: nothing masked, nothing reformatted.
pub fn raw_body(body: &[u8]) -> String {
    String::from_utf8_lossy(body).into_owned()
}

fn mask_value(key: Option<&str>, value: &mut Value) {
    match value {
        Value::String(text) => *text = mask_field(key, text),
        Value::Number(number) if key.is_some_and(is_phone_key) => {
            *value = Value::String(PII.phone(&number.to_string()));
        }
        Value::Array(items) => items.iter_mut().for_each(|item| mask_value(key, item)),
        Value::Object(map) => {
            for (key, item) in map.iter_mut() {
                mask_value(Some(key), item);
            }
        }
        _ => {}
    }
}

/// One value under `key`: by what the key says it holds, else by what it looks like.
fn mask_field(key: Option<&str>, text: &str) -> String {
    if text.is_empty() {
        return String::new();
    }
    if key.is_some_and(is_phone_key) || looks_like_phone(text) {
        return PII.phone(text);
    }
    if key.is_some_and(|k| k.to_ascii_lowercase().contains("email")) && !text.contains('@') {
        return PII.text(text);
    }
    mask_text(text)
}

fn is_phone_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    ["phone", "mobile", "whatsapp", "work_number", "fax"]
        .iter()
        .any(|hint| key.contains(hint))
}

/// A whole value shaped like a phone number: `+`, `(` or a digit first, only digits and
/// separators, 7 to 15 digits, and neither a date nor a decimal number.
fn looks_like_phone(text: &str) -> bool {
    let text = text.trim();
    let digits = text.chars().filter(char::is_ascii_digit).count();
    text.starts_with(|c: char| c.is_ascii_digit() || c == '+' || c == '(')
        && text
            .chars()
            .all(|c| c.is_ascii_digit() || " +-().".contains(c))
        && (7..=15).contains(&digits)
        && !looks_like_date(text)
        && !looks_like_decimal(text)
}

fn looks_like_decimal(text: &str) -> bool {
    text.split_once('.').is_some_and(|(whole, fraction)| {
        !whole.is_empty()
            && whole.chars().all(|c| c.is_ascii_digit())
            && fraction.chars().all(|c| c.is_ascii_digit())
    })
}

fn looks_like_date(text: &str) -> bool {
    let groups: Vec<usize> = text.split(['-', '.', '/']).map(str::len).collect();
    matches!(groups.as_slice(), [4, 2, 2] | [2, 2, 4])
}

fn is_email_local(c: char) -> bool {
    c.is_ascii_alphanumeric() || "._%+-".contains(c)
}

fn is_email_domain(c: char) -> bool {
    c.is_ascii_alphanumeric() || ".-".contains(c)
}

/// Every `local@domain.tld` inside `text` masked, the rest unchanged.
fn mask_emails(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('@') {
        let before = &rest[..at];
        let after = &rest[at + 1..];
        let local_start = before
            .char_indices()
            .rev()
            .take_while(|(_, c)| is_email_local(*c))
            .last()
            .map_or(before.len(), |(i, _)| i);
        let domain_len = after
            .char_indices()
            .take_while(|(_, c)| is_email_domain(*c))
            .last()
            .map_or(0, |(i, c)| i + c.len_utf8());
        let domain = after[..domain_len].trim_end_matches(['.', '-']);
        if local_start < before.len() && domain.contains('.') {
            out.push_str(&before[..local_start]);
            out.push_str(&PII.email(&format!("{}@{domain}", &before[local_start..])));
            rest = &after[domain.len()..];
        } else {
            out.push_str(&rest[..=at]);
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// Text of unknown shape (a body that does not parse, a free-text value): emails anywhere,
/// and runs of digits shaped like a phone number (a run next to `:` is a time, not a phone).
fn mask_text(text: &str) -> String {
    let text = mask_emails(text);
    let mut out = String::with_capacity(text.len());
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let starts = chars[i].is_ascii_digit() || chars[i] == '+';
        if !starts || (i > 0 && (chars[i - 1].is_ascii_alphanumeric() || chars[i - 1] == ':')) {
            out.push(chars[i]);
            i += 1;
            continue;
        }
        let mut end = i + 1;
        while end < chars.len() && (chars[end].is_ascii_digit() || " -().".contains(chars[end])) {
            end += 1;
        }
        while end > i + 1 && !chars[end - 1].is_ascii_digit() {
            end -= 1;
        }
        let run: String = chars[i..end].iter().collect();
        let next = chars.get(end).copied();
        let digits = run.chars().filter(char::is_ascii_digit).count();
        let phone = (7..=15).contains(&digits)
            && !looks_like_date(&run)
            && !next.is_some_and(|c| c == ':' || c.is_ascii_alphanumeric());
        if phone {
            out.push_str(&PII.phone(&run));
        } else {
            out.push_str(&run);
        }
        i = end;
    }
    out
}

/// Free text from CleverTap or a template (a reason): emails and phones masked, the rest
/// unchanged.
pub fn masked_text(text: &str) -> String {
    mask_text(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_freshsales_contact_shows_no_email_or_phone() {
        let body = crate::demo::SAMPLE_CONTACT.as_bytes();
        let shown = masked_body(BodyKind::Json, body);
        assert!(!shown.contains("amelia.hart@"), "{shown}");
        assert!(!shown.contains("7700 900"), "{shown}");
        assert!(shown.contains("am***@example.com"), "{shown}");
        assert!(shown.contains("16001234567"), "ids stay readable: {shown}");
        assert!(shown.contains("26-11-2026 09:14:33"), "dates stay: {shown}");
        assert!(shown.contains("\"Amelia\""), "{shown}");
    }

    #[test]
    fn values_are_masked_by_key_and_by_shape() {
        let body = br#"{"d":[{"identity":"jo@x.io","profileData":{"Phone":4477009001,"Note":"call Jo <jo@x.io> at +1 (415) 555-0134","Born":"1990-04-01","Tel":"+447700900123"}}]}"#;
        let shown = masked_body(BodyKind::Json, body);
        for hidden in ["jo@x.io", "4477009001", "900123", "555-0134"] {
            assert!(!shown.contains(hidden), "{hidden} in {shown}");
        }
        assert!(shown.contains("1990-04-01"), "{shown}");
        assert!(shown.contains("call Jo"), "{shown}");
        assert!(shown.contains("jo***@x.io"), "{shown}");
    }

    #[test]
    fn a_form_body_is_decoded_then_masked() {
        let body = b"contact_email=amelia.hart%40example.com&contact_mobile_number=%2B44+7700+900123&name=Amelia";
        let shown = masked_body(BodyKind::Form, body);
        assert_eq!(
            shown,
            "contact_email=am***@example.com\ncontact_mobile_number=+44**********23\nname=Amelia"
        );
    }

    #[test]
    fn an_unreadable_body_is_scanned_as_text() {
        let body = br#"{"contact_email":"amelia.hart@example.com","contact_mobile_number":"+44 7700 900123","at":"26-11-2026 09:14:33",,"#;
        let shown = masked_body(BodyKind::Json, body);
        assert!(!shown.contains("amelia.hart@"), "{shown}");
        assert!(!shown.contains("7700 900"), "{shown}");
        assert!(shown.contains("26-11-2026 09:14:33"), "{shown}");
        assert!(shown.ends_with(",,"), "the rest unchanged: {shown}");
    }

    #[test]
    fn text_without_personal_data_is_unchanged() {
        let reason = "Profile data is incorrect. Phone number is not valid.";
        assert_eq!(masked_text(reason), reason);
        assert_eq!(masked_text("a @ b and x@y"), "a @ b and x@y");
    }
}
