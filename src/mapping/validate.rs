//! Per-record checks of template output against what CleverTap's `/1/upload` would reject
//! (reference §3.3), and `ts`. Passthrough records follow `upload_rules` instead.

use serde_json::{Map, Value};

use super::dates::from_epoch_number;
use super::template::ID_KEYS;
use super::upload_rules::{self, IdValue, MAX_ID_CHARS};

const MAX_KEY_BYTES: usize = 120;
const MAX_CUSTOM_KEYS: usize = 256;

/// Checks a rendered record and settles its `ts` and id in place; Err is the rule it breaks.
pub(crate) fn check(record: &mut Map<String, Value>, received_at: i64) -> Result<(), String> {
    let kind = match record.get("type").and_then(Value::as_str) {
        Some(kind @ ("profile" | "event")) => kind.to_string(),
        Some("token") => return Err("type \"token\" is accepted only in passthrough bodies".into()),
        _ => return Err("type must be \"profile\" or \"event\" (CleverTap 524)".into()),
    };
    check_id(record)?;
    settle_ts(record, received_at)?;
    match kind.as_str() {
        "event" => check_event(record),
        _ => check_profile(record),
    }
}

fn check_id(record: &mut Map<String, Value>) -> Result<(), String> {
    let rule = format!(
        "exactly one of identity, objectId, FBID, GPID must be a non-empty string under {MAX_ID_CHARS} characters (CleverTap 523)"
    );
    let mut usable = Vec::new();
    for key in ID_KEYS {
        let Some(value) = record.get(key) else {
            continue;
        };
        match upload_rules::id_value(value) {
            IdValue::Blank => {
                record.remove(key);
            }
            IdValue::Usable => {
                if let Value::Number(n) = value {
                    // CleverTap stores ids as text; converting here keeps order keys and dedup consistent.
                    let text = n.to_string();
                    record.insert(key.to_string(), Value::String(text));
                }
                usable.push(key);
            }
            IdValue::Tainted => {
                return Err(format!(
                    "{key} holds a control character or U+FFFD, so it is not the sender's id: {rule}"
                ));
            }
            IdValue::Unusable => return Err(format!("{key} is not usable: {rule}")),
        }
    }
    match usable.len() {
        0 => Err(format!("no identity: {rule}")),
        1 => Ok(()),
        _ => Err(format!("more than one id ({}): {rule}", usable.join(", "))),
    }
}

fn settle_ts(record: &mut Map<String, Value>, received_at: i64) -> Result<(), String> {
    const RULE: &str = "ts must be a positive integer of epoch seconds (CleverTap 525)";
    let ts = match record.get("ts") {
        None | Some(Value::Null) => received_at,
        Some(Value::Number(n)) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => i,
            (None, Some(f)) if f.fract() == 0.0 && f.abs() < 9.0e15 => f as i64,
            _ => return Err(RULE.into()),
        },
        Some(Value::String(s)) => s.trim().parse::<i64>().map_err(|_| RULE.to_string())?,
        Some(_) => return Err(RULE.into()),
    };
    let secs = from_epoch_number(ts);
    // Still "milliseconds" once divided (microseconds, say): no epoch CleverTap reads, as
    // upload_rules judges a passthrough `ts`.
    if ts <= 0 || from_epoch_number(secs) != secs {
        return Err(RULE.into());
    }
    record.insert("ts".into(), secs.into());
    Ok(())
}

fn check_event(record: &Map<String, Value>) -> Result<(), String> {
    if let Some(refused) = upload_rules::event_refusal(record) {
        return Err(format!(
            "{} (CleverTap {})",
            refused.error.trim_end(),
            refused.code
        ));
    }
    let data = match record.get("evtData") {
        None => return Ok(()),
        Some(Value::Object(data)) => data,
        Some(_) => return Err("evtData must be an object".into()),
    };
    data.keys().try_for_each(|key| check_key("evtData", key))
}

fn check_profile(record: &Map<String, Value>) -> Result<(), String> {
    let data = match record.get("profileData") {
        None => return Ok(()),
        Some(Value::Object(data)) => data,
        Some(_) => return Err("profileData must be an object".into()),
    };
    for key in data.keys() {
        check_key("profileData", key)?;
    }
    // Every key that is not reserved counts towards CleverTap's 256 custom keys.
    let custom = data
        .keys()
        .filter(|k| !upload_rules::is_reserved(k))
        .count();
    if custom > MAX_CUSTOM_KEYS {
        return Err(format!(
            "profileData has {custom} custom keys, more than {MAX_CUSTOM_KEYS}"
        ));
    }
    Ok(())
}

fn check_key(section: &str, key: &str) -> Result<(), String> {
    if key.len() > MAX_KEY_BYTES {
        // The key itself is template or body structure, but it may be long: name its size only.
        return Err(format!(
            "{section} has a key of {} bytes, more than {MAX_KEY_BYTES}",
            key.len()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn each_rule_dead_letters_with_its_name() {
        let long_id = "x".repeat(120);
        let long_key = "k".repeat(121);
        let many: Map<String, Value> = (0..257).map(|i| (format!("k{i}"), json!(1))).collect();
        let cases: Vec<(&str, Value, Option<&str>)> = vec![
            (
                "valid profile",
                json!({"type":"profile","identity":"a@example.com","profileData":{"Name":"A"}}),
                None,
            ),
            (
                "valid event",
                json!({"type":"event","identity":"a","evtName":"Deal Won","evtData":{"Amount":1}}),
                None,
            ),
            (
                "missing type",
                json!({"identity":"a"}),
                Some("type must be"),
            ),
            (
                "bad type",
                json!({"type":"user","identity":"a"}),
                Some("type must be"),
            ),
            (
                "token from a template",
                json!({"type":"token","objectId":"a"}),
                Some("only in passthrough"),
            ),
            (
                "no identity",
                json!({"type":"profile","identity":""}),
                Some("no identity"),
            ),
            (
                "two ids",
                json!({"type":"profile","identity":"a","objectId":"b"}),
                Some("more than one id"),
            ),
            (
                "id too long",
                json!({"type":"profile","identity":long_id}),
                Some("identity is not usable"),
            ),
            (
                "id holds a NUL",
                json!({"type":"profile","identity":"a\u{0}b@example.com"}),
                Some("identity holds a control character or U+FFFD"),
            ),
            (
                "id holds a line break",
                json!({"type":"profile","objectId":"a@example.com\n"}),
                Some("objectId holds a control character"),
            ),
            (
                "id holds U+FFFD beside a good one",
                json!({"type":"profile","identity":"a@example.com","FBID":"Zo\u{FFFD}"}),
                Some("FBID holds a control character or U+FFFD"),
            ),
            (
                "id is an object",
                json!({"type":"profile","identity":{"a":1}}),
                Some("identity is not usable"),
            ),
            (
                "ts zero",
                json!({"type":"profile","identity":"a","ts":0}),
                Some("ts must be"),
            ),
            (
                "ts negative",
                json!({"type":"profile","identity":"a","ts":-5}),
                Some("ts must be"),
            ),
            (
                "ts fractional",
                json!({"type":"profile","identity":"a","ts":1.5}),
                Some("ts must be"),
            ),
            (
                "ts in microseconds (found by render_props)",
                json!({"type":"profile","identity":"a","ts":100_000_000_001_000_000_i64}),
                Some("ts must be"),
            ),
            (
                "ts text",
                json!({"type":"profile","identity":"a","ts":"yesterday"}),
                Some("ts must be"),
            ),
            (
                "no evtName",
                json!({"type":"event","identity":"a"}),
                Some("Event name is mandatory. (CleverTap 509)"),
            ),
            (
                "restricted event",
                json!({"type":"event","identity":"a","evtName":"App Launched"}),
                Some("restricted system event. (CleverTap 513)"),
            ),
            (
                "nested evtData",
                json!({"type":"event","identity":"a","evtName":"X","evtData":{"p":{"s":1}}}),
                Some("nested structure for field : p. (CleverTap 512)"),
            ),
            (
                "array evtData",
                json!({"type":"event","identity":"a","evtName":"X","evtData":{"p":[1]}}),
                Some("nested structure for field : p. (CleverTap 512)"),
            ),
            (
                "charged items may nest",
                json!({"type":"event","identity":"a","evtName":"Charged","evtData":{"Items":[{"n":1}]}}),
                None,
            ),
            (
                "event key too long",
                json!({"type":"event","identity":"a","evtName":"X","evtData":{long_key.clone():1}}),
                Some("more than 120"),
            ),
            (
                "too many event properties",
                json!({"type":"event","identity":"a","evtName":"X","evtData":many.clone()}),
                Some("Event properties limit exceeded. (CleverTap 522)"),
            ),
            (
                "too many custom keys",
                json!({"type":"profile","identity":"a","profileData":many}),
                Some("custom keys"),
            ),
        ];
        for (name, record, want) in cases {
            let Value::Object(mut record) = record else {
                panic!("case {name}: not an object")
            };
            let got = check(&mut record, 1_764_150_000);
            match want {
                None => assert!(got.is_ok(), "case {name}: {got:?}"),
                Some(rule) => assert!(
                    got.as_ref().is_err_and(|e| e.contains(rule)),
                    "case {name}: {got:?}"
                ),
            }
        }
    }

    #[test]
    fn ts_and_ids_are_settled() {
        let cases = [
            (
                "missing ts gets received_at",
                json!({"type":"profile","identity":"a"}),
                json!({"type":"profile","identity":"a","ts":1_764_150_000}),
            ),
            (
                "milliseconds become seconds",
                json!({"type":"profile","identity":"a","ts":1_764_150_000_123_i64}),
                json!({"type":"profile","identity":"a","ts":1_764_150_000}),
            ),
            (
                "numeric identity becomes text",
                json!({"type":"profile","identity":42,"ts":5}),
                json!({"type":"profile","identity":"42","ts":5}),
            ),
            (
                "empty id dropped beside a usable one",
                json!({"type":"profile","identity":"","objectId":"b","ts":5}),
                json!({"type":"profile","objectId":"b","ts":5}),
            ),
        ];
        for (name, record, want) in cases {
            let Value::Object(mut record) = record else {
                panic!("case {name}")
            };
            check(&mut record, 1_764_150_000).unwrap();
            assert_eq!(Value::Object(record), want, "case {name}");
        }
    }
}
