//! CleverTap's `/1/upload` rules for records that arrive already CleverTap-shaped: the few
//! repairs that keep the sender's meaning, and CleverTap's refusals with its codes and texts.
//!
//! Checked in CleverTap's order, the first failure wins: 524 → 523 → 525 → events 509, 513,
//! 512, 522 → profiles 514, 515, 516, 517, 518, 519, 520. What CleverTap documents no refusal
//! for (objectId charset, over-long values, `token` records, unknown keys, a `profileData` or
//! `evtData` that is not an object) is forwarded untouched: CleverTap judges it, and its
//! per-record answer is classified like any other.

use super::phones::Region;
use serde_json::{Map, Value};

use super::dates::{DateParser, from_epoch_number};
use super::phones;
use super::template::ID_KEYS;

/// CleverTap answers 513 for these; only `Web Page Viewed` is proven, the rest are the other
/// SDK system events.
pub(crate) const RESTRICTED_EVENTS: [&str; 8] = [
    "Web Page Viewed",
    "App Launched",
    "App Installed",
    "App Uninstalled",
    "Notification Sent",
    "Notification Viewed",
    "Notification Clicked",
    "UTM Visited",
];
/// CleverTap's reserved profile keys, `MSG-*` too; every other key is a custom one.
const RESERVED_PROFILE_KEYS: [&str; 14] = [
    "Name",
    "Email",
    "Phone",
    "Gender",
    "DOB",
    "Age",
    "Employed",
    "Education",
    "Married",
    "Photo",
    "identity",
    "tz",
    "category-unsubscribe",
    "category-resubscribe",
];
const OPERATIONS: [&str; 5] = ["$add", "$remove", "$incr", "$decr", "$delete"];
pub(crate) const MAX_ID_CHARS: usize = 120;
/// The older, larger of CleverTap's documented per-event limits (newer accounts default to
/// 100, configurable): freshtap never refuses what an account may have allowed.
pub(crate) const MAX_EVENT_PROPERTIES: usize = 256;

// CleverTap's texts, verbatim from recorded answers, each ending where "Skipped record number"
// follows. 522 and 524 have no recorded text: these follow the 509/513 pattern.
const TEXT_524: &str = "Data is incorrect. ErrorCode: 524 - Data neither event nor profile. ";
const TEXT_523: &str = "'identity' or 'fbId' or 'gpId' or 'objectId' is necessary under 120 chars to identify the user. ";
const TEXT_525: &str = "Timestamp should be present in the Unix Epoch format. ";
const TEXT_509: &str = "Event Name is incorrect. ErrorCode: 509 - Event name is mandatory. ";
const TEXT_513: &str =
    "Event Name is incorrect. ErrorCode: 513 - Trying to raise a restricted system event. ";
const TEXT_522: &str =
    "Event data is incorrect. ErrorCode: 522 - Event properties limit exceeded. ";
const PROFILE_PREFIX: &str = "Profile data is incorrect. ";

/// A record CleverTap would refuse: its code, and its `error` text without the
/// "Skipped record number : k" suffix, which the answer adds with the record's position.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub code: u16,
    pub error: String,
}

/// One record judged: as it would be sent (repaired), or CleverTap's refusal.
pub type Judged = Result<Map<String, Value>, Refusal>;

fn refusal(code: u16, error: &str) -> Refusal {
    Refusal {
        code,
        error: error.to_string(),
    }
}

/// What the repairs need from the route: its Freshsales date format and phone region.
pub(crate) struct Repairs<'a> {
    pub dates: &'a DateParser,
    pub region: Region,
}

/// The record CleverTap should receive (repaired in place), or CleverTap's refusal of it.
pub(crate) fn judge(
    record: Value,
    received_at: i64,
    repairs: &Repairs<'_>,
) -> Result<Map<String, Value>, Refusal> {
    let Value::Object(mut map) = record else {
        return Err(refusal(524, TEXT_524));
    };
    let kind = match map.get("type").and_then(Value::as_str) {
        Some("profile") => "profile",
        Some("event") => "event",
        Some("token") => "token",
        _ => return Err(refusal(524, TEXT_524)),
    };
    if kind == "token" {
        // Token records are CleverTap's to judge (codes 530–535); only a tainted id stops them.
        if ID_KEYS.iter().any(|k| tainted(map.get(*k))) {
            return Err(refusal(523, TEXT_523));
        }
        return Ok(map);
    }
    settle_ids(&mut map)?;
    settle_ts(&mut map, received_at)?;
    if kind == "event" {
        return event_refusal(&map).map_or(Ok(map), Err);
    }
    settle_profile(&mut map, repairs)?;
    Ok(map)
}

/// How CleverTap sees one id value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum IdValue {
    /// null, or text with nothing but spaces: no id at all.
    Blank,
    Usable,
    /// Holds a control character or U+FFFD (what invalid UTF-8 decodes to): an identity that
    /// is not the one the sender had, so it is never sent.
    Tainted,
    /// Too long, or not text or a number.
    Unusable,
}

pub(crate) fn id_value(value: &Value) -> IdValue {
    match value {
        Value::Null => IdValue::Blank,
        Value::String(s) if s.chars().any(|c| c.is_control() || c == '\u{FFFD}') => {
            IdValue::Tainted
        }
        Value::String(s) if s.trim().is_empty() => IdValue::Blank,
        Value::String(s) if s.chars().count() < MAX_ID_CHARS => IdValue::Usable,
        Value::Number(_) => IdValue::Usable,
        _ => IdValue::Unusable,
    }
}

fn tainted(value: Option<&Value>) -> bool {
    value.is_some_and(|v| id_value(v) == IdValue::Tainted)
}

/// 523 unless one id is usable and none is tainted or unusable; blank ids beside it go.
fn settle_ids(map: &mut Map<String, Value>) -> Result<(), Refusal> {
    let states: Vec<(&str, IdValue)> = ID_KEYS
        .iter()
        .filter_map(|key| map.get(*key).map(|v| (*key, id_value(v))))
        .collect();
    let refused = states
        .iter()
        .any(|(_, s)| matches!(s, IdValue::Tainted | IdValue::Unusable))
        || !states.iter().any(|(_, s)| *s == IdValue::Usable);
    if refused {
        return Err(refusal(523, TEXT_523));
    }
    for (key, state) in states {
        if state == IdValue::Blank {
            map.remove(key);
        }
    }
    Ok(())
}

/// `ts` must be a positive whole number of seconds or milliseconds (which become seconds); an absent or blank `ts`
/// becomes the receive time (what CleverTap's default, arrival time, meant before queueing).
fn settle_ts(map: &mut Map<String, Value>, received_at: i64) -> Result<(), Refusal> {
    let given = match map.get("ts") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.is_empty() => None,
        Some(Value::Number(n)) => match n.as_i64() {
            Some(i) => Some(i),
            None => match n.as_f64() {
                Some(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Some(f as i64),
                _ => return Err(refusal(525, TEXT_525)),
            },
        },
        Some(_) => return Err(refusal(525, TEXT_525)),
    };
    let Some(ts) = given else {
        map.insert("ts".into(), received_at.into());
        return Ok(());
    };
    let secs = from_epoch_number(ts);
    // Still "milliseconds" once divided: microseconds or worse, no epoch CleverTap reads.
    if ts <= 0 || from_epoch_number(secs) != secs {
        return Err(refusal(525, TEXT_525));
    }
    if secs != ts {
        map.insert("ts".into(), secs.into());
    }
    Ok(())
}

/// CleverTap's event refusals in its order: 509, 513, 512, 522. An `evtData` that is not an
/// object is not among them.
pub(crate) fn event_refusal(record: &Map<String, Value>) -> Option<Refusal> {
    let name = match record.get("evtName") {
        Some(Value::String(s)) if !s.trim().is_empty() => s.as_str(),
        _ => return Some(refusal(509, TEXT_509)),
    };
    if RESTRICTED_EVENTS.contains(&name) {
        return Some(refusal(513, TEXT_513));
    }
    let Some(Value::Object(data)) = record.get("evtData") else {
        return None;
    };
    let nested = data.iter().find(|(key, value)| {
        (value.is_object() || value.is_array()) && !(name == "Charged" && key.as_str() == "Items")
    });
    if let Some((key, _)) = nested {
        // The key is the sender's structure, not personal data; CleverTap names it too.
        return Some(Refusal {
            code: 512,
            error: format!(
                "Event data is incorrect. 512 - Only Items can have a nested structure, incorrect nested structure for field : {key}."
            ),
        });
    }
    (data.len() > MAX_EVENT_PROPERTIES).then(|| refusal(522, TEXT_522))
}

/// What a reserved profile check decides.
enum Verdict {
    Keep,
    Replace(Value),
    Refuse,
}

type Check = fn(&Value, &Repairs<'_>) -> Verdict;

/// In CleverTap's order; the text follows "Profile data is incorrect. ".
const PROFILE_CHECKS: [(&str, u16, &str, Check); 7] = [
    ("Gender", 514, "Gender needs to be M/F.", |v, _| {
        one_of(v, &["M", "F"])
    }),
    ("Email", 515, "Email is not valid.", |v, _| {
        keep_if(v.as_str().is_some_and(is_email))
    }),
    ("Phone", 516, "Phone number is not valid.", phone),
    ("Employed", 517, "Employed needs to be Y/N.", |v, _| {
        one_of(v, &["Y", "N"])
    }),
    (
        "Education",
        518,
        "Education needs to be School/College/Graduate..",
        |v, _| one_of(v, &["School", "College", "Graduate"]),
    ),
    ("Married", 519, "Married needs to be Y/N.", |v, _| {
        one_of(v, &["Y", "N"])
    }),
    ("Age", 520, "Age is invalid.", |v, _| keep_if(is_age(v))),
];

fn settle_profile(map: &mut Map<String, Value>, repairs: &Repairs<'_>) -> Result<(), Refusal> {
    let Some(Value::Object(data)) = map.get_mut("profileData") else {
        return Ok(());
    };
    // A Freshsales placeholder that rendered empty means "none", not "refuse this lead".
    data.retain(|key, value| {
        !(is_reserved(key) && (value.is_null() || value.as_str() == Some("")))
    });
    for (key, code, text, check) in PROFILE_CHECKS {
        let Some(value) = data.get(key).filter(|v| !is_operation(v)) else {
            continue;
        };
        match check(value, repairs) {
            Verdict::Keep => {}
            Verdict::Replace(new) => {
                data.insert(key.to_string(), new);
            }
            Verdict::Refuse => {
                return Err(Refusal {
                    code,
                    error: format!("{PROFILE_PREFIX}{text}"),
                });
            }
        }
    }
    if let Some(epoch) = data
        .get("DOB")
        .and_then(|dob| dob_epoch(dob, repairs.dates))
    {
        data.insert("DOB".into(), Value::String(format!("$D_{epoch}")));
    }
    Ok(())
}

pub(crate) fn is_reserved(key: &str) -> bool {
    RESERVED_PROFILE_KEYS.contains(&key) || key.starts_with("MSG-")
}

/// `{"$incr": 1}` and the like: an object of operation keys only.
fn is_operation(value: &Value) -> bool {
    value
        .as_object()
        .is_some_and(|o| !o.is_empty() && o.keys().all(|k| OPERATIONS.contains(&k.as_str())))
}

fn keep_if(ok: bool) -> Verdict {
    if ok { Verdict::Keep } else { Verdict::Refuse }
}

fn one_of(value: &Value, allowed: &[&str]) -> Verdict {
    keep_if(value.as_str().is_some_and(|s| allowed.contains(&s)))
}

fn phone(value: &Value, repairs: &Repairs<'_>) -> Verdict {
    let text = match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => return Verdict::Refuse,
    };
    match phones::to_e164(&text, repairs.region) {
        Some(e164) if value.as_str() == Some(e164.as_str()) => Verdict::Keep,
        Some(e164) => Verdict::Replace(Value::String(e164)),
        None => Verdict::Refuse,
    }
}

/// `"18"` is accepted, `"aa"` is not.
fn is_age(value: &Value) -> bool {
    match value {
        Value::Number(_) => true,
        Value::String(s) => s.trim().parse::<f64>().is_ok_and(f64::is_finite),
        _ => false,
    }
}

/// Epoch seconds of a DOB to rewrite as `$D_`; None leaves it untouched: a `$D_` date already,
/// not a date, or eight digits that read as both `yyyymmdd` and epoch seconds.
fn dob_epoch(value: &Value, dates: &DateParser) -> Option<i64> {
    match value {
        Value::Number(n) if !is_yyyymmdd(&n.to_string()) => n.as_i64().map(from_epoch_number),
        Value::String(s) if !s.starts_with("$D_") && !is_yyyymmdd(s.trim()) => {
            dates.epoch_of_text(s)
        }
        _ => None,
    }
}

fn is_yyyymmdd(text: &str) -> bool {
    text.len() == 8
        && text.bytes().all(|b| b.is_ascii_digit())
        && chrono::NaiveDate::parse_from_str(text, "%Y%m%d")
            .is_ok_and(|d| (1900..2100).contains(&chrono::Datelike::year(&d)))
}

/// Shape only (local@domain.tld, no spaces or controls): what could not be an address.
pub(crate) fn is_email(text: &str) -> bool {
    let Some((local, domain)) = text.split_once('@') else {
        return false;
    };
    let labels_ok = domain
        .split('.')
        .all(|l| !l.is_empty() && !l.starts_with('-') && !l.ends_with('-'));
    text.len() <= 254
        && !local.is_empty()
        && local.len() <= 64
        && domain.contains('.')
        && labels_ok
        && !text.chars().any(|c| {
            c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | ',' | ';' | '"')
        })
        && !domain.contains('@')
}
