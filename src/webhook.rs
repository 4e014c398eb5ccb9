//! A raw webhook body: content type, JSON/form → field map, Freshsales test payloads, body hash.

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

pub use crate::body::BodyKind;

impl BodyKind {
    /// From a `Content-Type` header (parameters such as `charset` ignored); a missing header is
    /// sniffed (`{`/`[` → JSON, else form). `None` for a declared type that is neither.
    pub fn from_content_type(header: Option<&str>, body: &[u8]) -> Option<Self> {
        let Some(header) = header else {
            return Some(if opens_like_json(body) {
                Self::Json
            } else {
                Self::Form
            });
        };
        let essence = header
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        match essence.as_str() {
            "application/json" | "text/json" => Some(Self::Json),
            // curl's -d declares a form even for JSON: a "form" that opens like JSON is JSON.
            "application/x-www-form-urlencoded" if opens_like_json(body) => Some(Self::Json),
            "application/x-www-form-urlencoded" => Some(Self::Form),
            _ if essence.ends_with("+json") => Some(Self::Json),
            _ => None,
        }
    }
}

fn opens_like_json(body: &[u8]) -> bool {
    matches!(
        body.iter().find(|b| !b.is_ascii_whitespace()),
        Some(b'{' | b'[')
    )
}

/// Why a body could not be read; the message names line and column for JSON.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct BodyError {
    pub message: String,
}

/// A body read into JSON. `repaired` is set when an Advanced-mode body needed repair.
#[derive(Debug)]
pub struct Parsed {
    pub value: Value,
    pub repaired: bool,
}

/// Reads a stored or incoming body; the same function serves intake and delivery so a body
/// accepted once always reads the same way.
pub fn parse(kind: BodyKind, body: &[u8]) -> Result<Parsed, BodyError> {
    match kind {
        BodyKind::Form => Ok(Parsed {
            value: parse_form(body),
            repaired: false,
        }),
        BodyKind::Json => match serde_json::from_slice::<Value>(body) {
            Ok(value) => Ok(Parsed {
                value,
                repaired: false,
            }),
            Err(error) => {
                if let Some(fixed) = crate::mapping::repair_json(body)
                    && let Ok(value) = serde_json::from_slice::<Value>(&fixed)
                {
                    return Ok(Parsed {
                        value,
                        repaired: true,
                    });
                }
                Err(BodyError {
                    message: format!(
                        "body is not valid JSON: {} at line {} column {}",
                        describe(&error),
                        error.line(),
                        error.column()
                    ),
                })
            }
        },
    }
}

fn describe(error: &serde_json::Error) -> String {
    // serde_json appends " at line L column C" to its message; we say it once, ourselves.
    let text = error.to_string();
    match text.find(" at line ") {
        Some(at) => text[..at].to_owned(),
        None => text,
    }
}

/// Form bodies become an object of strings; a repeated key keeps its last value.
fn parse_form(body: &[u8]) -> Value {
    let map: Map<String, Value> = form_urlencoded::parse(body)
        .map(|(k, v)| (k.into_owned(), Value::String(v.into_owned())))
        .collect();
    Value::Object(map)
}

pub fn body_hash(body: &[u8]) -> [u8; 32] {
    Sha256::digest(body).into()
}

/// Freshsales "Test this Webhook" sends dummy values: any value `support-team@freshsales.io`,
/// or a `*_id` of 123456 together with two values "freshsales" (Freshsales reference §1).
pub fn is_test_payload(body: &Value) -> bool {
    let mut freshsales = 0;
    let mut dummy_id = false;
    let mut found_email = false;
    walk(body, None, &mut |key, value| match value {
        Value::String(s) if s.eq_ignore_ascii_case("support-team@freshsales.io") => {
            found_email = true
        }
        Value::String(s) if s == "freshsales" => freshsales += 1,
        Value::Number(n)
            if n.as_i64() == Some(123_456) && key.is_some_and(|k| k.ends_with("_id")) =>
        {
            dummy_id = true;
        }
        Value::String(s) if s == "123456" && key.is_some_and(|k| k.ends_with("_id")) => {
            dummy_id = true
        }
        _ => {}
    });
    found_email || (dummy_id && freshsales >= 2)
}

fn walk<'a>(
    value: &'a Value,
    key: Option<&'a str>,
    visit: &mut impl FnMut(Option<&'a str>, &'a Value),
) {
    match value {
        Value::Object(map) => map.iter().for_each(|(k, v)| walk(v, Some(k), visit)),
        Value::Array(items) => items.iter().for_each(|v| walk(v, key, visit)),
        scalar => visit(key, scalar),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn content_types_are_recognised_or_refused() {
        let cases = [
            (Some("application/json"), &b"{}"[..], Some(BodyKind::Json)),
            (
                Some("application/json; charset=utf-8"),
                b"{}",
                Some(BodyKind::Json),
            ),
            (
                Some("application/x-www-form-urlencoded"),
                b"a=b",
                Some(BodyKind::Form),
            ),
            (None, b"  {\"a\":1}", Some(BodyKind::Json)),
            (None, b"a=1&b=2", Some(BodyKind::Form)),
            (Some("application/xml"), b"<a/>", None),
            (Some("text/plain"), b"{}", None),
        ];
        for (header, body, expected) in cases {
            assert_eq!(
                BodyKind::from_content_type(header, body),
                expected,
                "{header:?}"
            );
        }
    }

    #[test]
    fn broken_json_names_line_and_column() {
        let error =
            parse(BodyKind::Json, b"{\n \"a\": \"Dwayne \"The Rock\"\"}").expect_err("invalid");
        assert!(error.message.contains("line 2 column"), "{}", error.message);
    }

    #[test]
    fn form_bodies_become_a_field_map() {
        let parsed = parse(
            BodyKind::Form,
            b"contact_email=amelia.hart%40example.com&contact_mobile_number=%2B44+7700+900123",
        )
        .expect("form parses");
        assert_eq!(
            parsed.value,
            json!({"contact_email":"amelia.hart@example.com","contact_mobile_number":"+44 7700 900123"})
        );
    }

    #[test]
    fn freshsales_test_payloads_are_recognised() {
        let simple = json!({"contact_id":123456,"contact_first_name":"freshsales","contact_last_name":"freshsales",
            "contact_email":"support-team@freshsales.io"});
        let advanced = json!({"d":[{"objectId":"support-team@freshsales.io","type":"profile"}]});
        let ids_only =
            json!({"deal_id":123456,"deal_name":"freshsales","deal_owner_name":"freshsales"});
        let real = json!({"contact_id":16_001_234_567_i64,"contact_first_name":"Amelia","contact_email":"amelia@example.com"});
        let one_word = json!({"deal_id":123456,"deal_name":"freshsales"});
        assert!(is_test_payload(&simple), "simple");
        assert!(is_test_payload(&advanced), "advanced");
        assert!(is_test_payload(&ids_only), "ids");
        assert!(!is_test_payload(&real), "real contact");
        assert!(
            !is_test_payload(&one_word),
            "one freshsales value is not enough"
        );
    }
}
