//! Per-record checks of the simulated `/1/upload`: the CleverTap codes 509–526 and their texts.

use std::borrow::Cow;
use std::collections::HashMap;

use serde::Serialize;
use serde_json::{Map, Value};

/// Default restricted system events: answered 513 (`Web Page Viewed` seen answered so; the others
/// assumed alike).
pub const DEFAULT_RESTRICTED_EVENTS: &[&str] = &[
    "Web Page Viewed",
    "App Launched",
    "App Installed",
    "App Uninstalled",
    "Notification Sent",
    "Notification Viewed",
    "Notification Clicked",
    "UTM Visited",
];

/// Largest `ts` still taken as epoch seconds; `ts >= 10^11` is milliseconds and invalid.
const TS_LIMIT: u64 = 100_000_000_000;

/// The rules a batch is judged by (a borrowed view of the simulator configuration).
#[derive(Debug, Clone, Copy)]
pub struct Rules<'a> {
    pub enforce_custom_id_charset: bool,
    pub restricted_events: &'a [String],
    pub max_event_properties: usize,
}

/// One `unprocessed` item of a 200 answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Unprocessed {
    pub status: &'static str,
    pub code: u16,
    pub error: String,
    pub record: Value,
}

/// An accepted record with the key (identity, else objectId, FBID, GPID) it is stored under.
#[derive(Debug, Clone, PartialEq)]
pub struct Accepted {
    pub key: String,
    pub record: Value,
}

/// Outcome of a whole `d` array.
#[derive(Debug, Default)]
pub struct Judged {
    pub accepted: Vec<Accepted>,
    pub unprocessed: Vec<Unprocessed>,
}

impl Judged {
    /// `success` when nothing failed (an empty `d` included), `fail` when nothing passed, else `partial`.
    pub fn status(&self) -> &'static str {
        match (self.accepted.len(), self.unprocessed.len()) {
            (_, 0) => "success",
            (0, _) => "fail",
            _ => "partial",
        }
    }
}

/// Header check: unknown account → `Account ID is not valid`, wrong passcode → `Invalid Credentials`.
pub fn check_credentials(
    accounts: &HashMap<String, Vec<String>>,
    account: &str,
    passcode: &str,
) -> Result<(), &'static str> {
    match accounts.get(account) {
        None => Err("Account ID is not valid"),
        Some(codes) if codes.iter().any(|c| c == passcode) => Ok(()),
        Some(_) => Err("Invalid Credentials"),
    }
}

/// Judges every record of `d` in order. `record_codes` maps a record key to a forced code (fault).
pub fn judge(
    records: Vec<Value>,
    rules: &Rules<'_>,
    record_codes: &HashMap<String, u16>,
) -> Judged {
    let mut out = Judged {
        accepted: Vec::with_capacity(records.len()),
        unprocessed: Vec::new(),
    };
    for (i, record) in records.into_iter().enumerate() {
        let k = i + 1;
        let verdict =
            check_record(&record, rules).and_then(|key| match record_codes.get(key.as_ref()) {
                Some(&code) => Err(Failure::Forced(code)),
                None => Ok(key.into_owned()),
            });
        match verdict {
            Ok(key) => out.accepted.push(Accepted { key, record }),
            Err(failure) => out.unprocessed.push(Unprocessed {
                status: "fail",
                code: failure.code(),
                error: failure.message(k),
                record,
            }),
        }
    }
    out
}

/// Why a record was refused; renders the CleverTap text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    Type,
    Identity,
    Timestamp,
    ObjectId,
    EventName,
    Restricted,
    Nested(String),
    TooManyProperties,
    Gender,
    Email,
    Phone,
    Employed,
    Education,
    Married,
    Age,
    Forced(u16),
}

impl Failure {
    pub fn code(&self) -> u16 {
        match self {
            Failure::Type => 524,
            Failure::Identity => 523,
            Failure::Timestamp => 525,
            Failure::ObjectId => 526,
            Failure::EventName => 509,
            Failure::Restricted => 513,
            Failure::Nested(_) => 512,
            Failure::TooManyProperties => 522,
            Failure::Gender => 514,
            Failure::Email => 515,
            Failure::Phone => 516,
            Failure::Employed => 517,
            Failure::Education => 518,
            Failure::Married => 519,
            Failure::Age => 520,
            Failure::Forced(code) => *code,
        }
    }

    /// The `error` text, ending `Skipped record number : k` (k 1-based).
    pub fn message(&self, k: usize) -> String {
        let head: Cow<'static, str> = match self {
            Failure::Nested(field) => Cow::Owned(format!(
                "Event data is incorrect. 512 - Only Items can have a nested structure, incorrect nested structure for field : {field}."
            )),
            Failure::Forced(code) => Cow::Borrowed(text_for_code(*code)),
            other => Cow::Borrowed(text_for_code(other.code())),
        };
        format!("{head}Skipped record number : {k}")
    }
}

/// The text before `Skipped record number` for a code (also used for injected per-record codes).
pub fn text_for_code(code: u16) -> &'static str {
    match code {
        509 => "Event Name is incorrect. ErrorCode: 509 - Event name is mandatory. ",
        512 => "Event data is incorrect. 512 - Only Items can have a nested structure. ",
        513 => {
            "Event Name is incorrect. ErrorCode: 513 - Trying to raise a restricted system event. "
        }
        514 => "Profile data is incorrect. Gender needs to be M/F.",
        515 => "Profile data is incorrect. Email is not valid.",
        516 => "Profile data is incorrect. Phone number is not valid.",
        517 => "Profile data is incorrect. Employed needs to be Y/N.",
        518 => "Profile data is incorrect. Education needs to be School/College/Graduate..",
        519 => "Profile data is incorrect. Married needs to be Y/N.",
        520 => "Profile data is incorrect. Age is invalid.",
        522 => "Event data is incorrect. ErrorCode: 522 - Event properties limit exceeded. ",
        523 => {
            "'identity' or 'fbId' or 'gpId' or 'objectId' is necessary under 120 chars to identify the user. "
        }
        524 => "Data is incorrect. ErrorCode: 524 - Data neither event nor profile. ",
        525 => "Timestamp should be present in the Unix Epoch format. ",
        526 => "Identity is incorrect. ErrorCode: 526 - objectId is invalid. ",
        528 => "Event Name is incorrect. ErrorCode: 528 - Event was discarded. ",
        555 => "Miscellaneous server error. ErrorCode: 555 - Please retry. ",
        _ => "Record could not be processed. ",
    }
}

/// Checks one record; returns the key it is stored under. First failure wins, in the order the
/// crate README lists.
pub fn check_record<'r>(record: &'r Value, rules: &Rules<'_>) -> Result<Cow<'r, str>, Failure> {
    let Some(obj) = record.as_object() else {
        return Err(Failure::Type);
    };
    let kind = match obj.get("type").and_then(Value::as_str) {
        Some(kind @ ("profile" | "event" | "token")) => kind,
        _ => return Err(Failure::Type),
    };
    let key = record_key(obj).ok_or(Failure::Identity)?;
    if let Some(ts) = obj.get("ts") {
        match ts.as_u64() {
            Some(secs) if secs > 0 && secs < TS_LIMIT => {}
            _ => return Err(Failure::Timestamp),
        }
    }
    if rules.enforce_custom_id_charset
        && let Some(object_id) = obj.get("objectId")
        && !valid_custom_id(object_id)
    {
        return Err(Failure::ObjectId);
    }
    match kind {
        "event" => check_event(obj, rules)?,
        "profile" => check_profile(obj)?,
        _ => {}
    }
    Ok(key)
}

/// The first usable id among `identity`, `objectId`, `FBID`, `GPID`: non-empty, under 120 chars.
/// Numbers are accepted and rendered as text (CleverTap 2017 behaviour, fixture F1).
pub fn record_key(obj: &Map<String, Value>) -> Option<Cow<'_, str>> {
    ["identity", "objectId", "FBID", "GPID"]
        .iter()
        .filter_map(|field| obj.get(*field))
        .find_map(|value| {
            let text: Cow<'_, str> = match value {
                Value::String(s) => Cow::Borrowed(s.as_str()),
                Value::Number(n) => Cow::Owned(n.to_string()),
                _ => return None,
            };
            let trimmed_empty = text.trim().is_empty();
            let short = text.len() < 120 || text.chars().count() < 120;
            (!trimmed_empty && short).then_some(text)
        })
}

/// CleverTap custom ids: 1–64 chars of `A-Z a-z 0-9 ( ) ! : @ $ _ -`.
fn valid_custom_id(value: &Value) -> bool {
    let Some(s) = value.as_str() else {
        return false;
    };
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"()!:@$_-".contains(&b))
}

fn check_event(obj: &Map<String, Value>, rules: &Rules<'_>) -> Result<(), Failure> {
    let name = match obj.get("evtName").and_then(Value::as_str) {
        Some(name) if !name.trim().is_empty() => name,
        _ => return Err(Failure::EventName),
    };
    if rules.restricted_events.iter().any(|r| r == name) {
        return Err(Failure::Restricted);
    }
    let Some(data) = obj.get("evtData") else {
        return Ok(());
    };
    let Some(data) = data.as_object() else {
        return Err(Failure::Nested("evtData".to_owned()));
    };
    let charged = name == "Charged";
    for (field, value) in data {
        if matches!(value, Value::Object(_) | Value::Array(_)) && !(charged && field == "Items") {
            return Err(Failure::Nested(field.clone()));
        }
    }
    if data.len() > rules.max_event_properties {
        return Err(Failure::TooManyProperties);
    }
    Ok(())
}

fn check_profile(obj: &Map<String, Value>) -> Result<(), Failure> {
    let Some(data) = obj.get("profileData").and_then(Value::as_object) else {
        return Ok(());
    };
    // A value that is an object is an operation ($delete, $incr …), null is "no value": not judged.
    let field = |name: &str| match data.get(name) {
        None | Some(Value::Null) | Some(Value::Object(_)) => None,
        Some(v) => Some(v),
    };
    let one_of = |name: &str, allowed: &[&str]| {
        field(name).is_none_or(|v| v.as_str().is_some_and(|s| allowed.contains(&s)))
    };
    if !one_of("Gender", &["M", "F"]) {
        return Err(Failure::Gender);
    }
    if field("Email").is_some_and(|v| !v.as_str().is_some_and(valid_email)) {
        return Err(Failure::Email);
    }
    if field("Phone").is_some_and(|v| !v.as_str().is_some_and(valid_phone)) {
        return Err(Failure::Phone);
    }
    if !one_of("Employed", &["Y", "N"]) {
        return Err(Failure::Employed);
    }
    if !one_of("Education", &["School", "College", "Graduate"]) {
        return Err(Failure::Education);
    }
    if !one_of("Married", &["Y", "N"]) {
        return Err(Failure::Married);
    }
    if field("Age").is_some_and(|v| !valid_age(v)) {
        return Err(Failure::Age);
    }
    Ok(())
}

/// A pragmatic address check: `local@domain.tld`, no spaces, one `@`.
pub fn valid_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    let labels_ok = domain
        .split('.')
        .all(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'));
    !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && labels_ok
        && !s.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// E.164 as CleverTap checks it: `^\+[1-9]\d{6,14}$`.
pub fn valid_phone(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 8
        && b.len() <= 16
        && b[0] == b'+'
        && (b'1'..=b'9').contains(&b[1])
        && b[2..].iter().all(u8::is_ascii_digit)
}

/// A number, or text that parses as one (`"18"` yes, `"aa"` no).
fn valid_age(v: &Value) -> bool {
    match v {
        Value::Number(n) => n.as_f64().is_some_and(|f| f >= 0.0),
        Value::String(s) => s
            .trim()
            .parse::<f64>()
            .is_ok_and(|f| f.is_finite() && f >= 0.0),
        _ => false,
    }
}
