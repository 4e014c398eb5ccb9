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
            value: parse_form(body)?,
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

/// The records of a `{"d":[…]}` JSON body left unparsed, to be read one at a time: a body of
/// a thousand records is never held parsed whole (about eight times its size). `None` when the
/// body does not read this way (not an object with one array `d`): read it whole with [`parse`].
pub fn upload_records(body: &[u8]) -> Option<UploadRecords<'_>> {
    serde_json::from_slice(body).ok()
}

#[derive(serde::Deserialize)]
pub struct UploadRecords<'a> {
    #[serde(borrow)]
    d: Vec<&'a serde_json::value::RawValue>,
}

impl UploadRecords<'_> {
    pub fn len(&self) -> usize {
        self.d.len()
    }

    pub fn is_empty(&self) -> bool {
        self.d.is_empty()
    }

    /// Each record parsed, in order; stops early at a record that is valid JSON but no value
    /// (a number out of range): [`parse`] refuses such a body whole, so a caller whose count
    /// falls short of [`Self::len`] reads the body with it instead.
    pub fn values(&self) -> impl Iterator<Item = Value> + '_ {
        self.d
            .iter()
            .map_while(|raw| serde_json::from_str::<Value>(raw.get()).ok())
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

/// Form bodies become an object of strings; a repeated key keeps its last value. A name or
/// value that is not UTF-8 once percent-decoded refuses the body: decoding it lossily would put
/// U+FFFD where the sender had a letter, sending CleverTap a name or an identity the sender
/// never had; refused, the body is kept as an `invalid_body` dead letter to fix and replay.
fn parse_form(body: &[u8]) -> Result<Value, BodyError> {
    let mut map = Map::new();
    for pair in body.split(|&b| b == b'&').filter(|p| !p.is_empty()) {
        let (name, value) = match pair.iter().position(|&b| b == b'=') {
            Some(at) => (&pair[..at], &pair[at + 1..]),
            None => (pair, &b""[..]),
        };
        let name = String::from_utf8(percent_decode(name)).map_err(|_| BodyError {
            message: "a form field name is not valid UTF-8".into(),
        })?;
        let value = String::from_utf8(percent_decode(value)).map_err(|_| BodyError {
            // The field name is the sender's structure, never the value.
            message: format!("form field `{name}` is not valid UTF-8"),
        })?;
        map.insert(name, Value::String(value));
    }
    Ok(Value::Object(map))
}

/// `application/x-www-form-urlencoded` decoding: `+` is a space, `%XX` a byte; a `%` not
/// followed by two hex digits stays as it is (as browsers and `form_urlencoded` do).
fn percent_decode(input: &[u8]) -> Vec<u8> {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        let byte = input[i];
        let escaped = (byte == b'%')
            .then(|| Some((hex(*input.get(i + 1)?)?, hex(*input.get(i + 2)?)?)))
            .flatten();
        match (byte, escaped) {
            (_, Some((high, low))) => {
                out.push(high << 4 | low);
                i += 3;
            }
            (b'+', None) => {
                out.push(b' ');
                i += 1;
            }
            (other, None) => {
                out.push(other);
                i += 1;
            }
        }
    }
    out
}

pub fn body_hash(body: &[u8]) -> [u8; 32] {
    Sha256::digest(body).into()
}

/// Freshsales' "Test this Webhook" address; its sample also uses `123456` for every number and
/// `"freshsales"` for text (Freshsales reference §1).
const TEST_EMAIL: &str = "support-team@freshsales.io";
const TEST_ID: i64 = 123_456;
/// The record's own keys in a Simple-mode body: `contact_email`, `deal_id`, … — not an owner's
/// or a related record's (`contact_owner_email`, `deal_sales_account_id`).
const MODULES: [&str; 9] = [
    "",
    "contact_",
    "lead_",
    "deal_",
    "sales_account_",
    "account_",
    "task_",
    "appointment_",
    "call_log_",
];

/// Whether a body is wholly Freshsales' "Test this Webhook" sample, judged by its identity
/// fields only: a Simple-mode body whose own email is the test address, or whose own id is
/// `123456` beside at least two `"freshsales"` values; an upload of exactly one record whose
/// `identity` or `objectId` is the test address. A property that merely equals the test address
/// (a referrer, an owner's email) or a multi-record upload is never a test.
pub fn is_test_payload(body: &Value) -> bool {
    let Some(object) = body.as_object() else {
        return false;
    };
    if let Some(records) = object.get("d").and_then(Value::as_array) {
        return match records.as_slice() {
            [record] => is_test_record(record),
            _ => false,
        };
    }
    // The body's keys read once, no key built: this runs on every webhook.
    let own = |field: &'static str| {
        object
            .iter()
            .filter(move |(key, _)| {
                MODULES
                    .iter()
                    .any(|module| key.strip_prefix(module) == Some(field))
            })
            .map(|(_, value)| value)
    };
    let test_id = own("id").any(|id| {
        id.as_i64() == Some(TEST_ID) || id.as_str().is_some_and(|s| s.trim() == "123456")
    });
    let freshsales = object.values().filter(|v| *v == "freshsales").count();
    own("email").any(is_test_email) || (test_id && freshsales >= 2)
}

/// Whether the one record of an upload is Freshsales' test record (its identity or objectId
/// the test address); [`is_test_payload`] of `{"d":[record]}`.
pub fn is_test_record(record: &Value) -> bool {
    ["identity", "objectId"]
        .iter()
        .any(|key| record.get(key).is_some_and(is_test_email))
}

fn is_test_email(value: &Value) -> bool {
    value
        .as_str()
        .is_some_and(|s| s.trim().eq_ignore_ascii_case(TEST_EMAIL))
}

#[cfg(test)]
mod props;
#[cfg(test)]
mod tests;
