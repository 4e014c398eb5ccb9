//! Per-record checks against what CleverTap's `/1/upload` would reject (reference §3.3), and `ts`.

use serde_json::{Map, Value};

use super::template::ID_KEYS;

/// CleverTap answers 513 for these; sending them only burns a request.
const RESTRICTED_EVENTS: [&str; 8] = [
    "Web Page Viewed",
    "App Launched",
    "App Installed",
    "App Uninstalled",
    "Notification Sent",
    "Notification Viewed",
    "Notification Clicked",
    "UTM Visited",
];
/// Reserved profile keys; every other `profileData` key counts towards the 256 custom keys.
const RESERVED_PROFILE_KEYS: [&str; 12] = [
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
];
const MAX_ID_CHARS: usize = 120;
const MAX_KEY_BYTES: usize = 120;
const MAX_CUSTOM_KEYS: usize = 256;
const MILLIS_THRESHOLD: i64 = 100_000_000_000;

/// Checks a record and settles its `ts` and id in place; Err is the rule it breaks.
pub(crate) fn check(
    record: &mut Map<String, Value>,
    received_at: i64,
    allow_token: bool,
) -> Result<(), String> {
    let kind = match record.get("type").and_then(Value::as_str) {
        Some(kind @ ("profile" | "event")) => kind.to_string(),
        Some("token") if allow_token => "token".to_string(),
        Some("token") => return Err("type \"token\" is accepted only in passthrough bodies".into()),
        _ => return Err("type must be \"profile\" or \"event\" (CleverTap 524)".into()),
    };
    check_id(record)?;
    settle_ts(record, received_at)?;
    match kind.as_str() {
        "event" => check_event(record),
        "profile" => check_profile(record),
        _ => Ok(()),
    }
}

fn check_id(record: &mut Map<String, Value>) -> Result<(), String> {
    const RULE: &str = "exactly one of identity, objectId, FBID, GPID must be a non-empty string under 120 characters (CleverTap 523)";
    let mut usable = Vec::new();
    for key in ID_KEYS {
        match record.get(key) {
            Some(Value::String(s)) if s.trim().is_empty() => {
                record.remove(key);
            }
            Some(Value::Null) => {
                record.remove(key);
            }
            Some(Value::String(s)) if s.chars().count() < MAX_ID_CHARS => usable.push(key),
            Some(Value::Number(n)) => {
                // CleverTap stores ids as text; converting here keeps order keys and dedup consistent.
                let text = n.to_string();
                record.insert(key.to_string(), Value::String(text));
                usable.push(key);
            }
            Some(_) => return Err(format!("{key} is not usable: {RULE}")),
            None => {}
        }
    }
    match usable.len() {
        0 => Err(format!("no identity: {RULE}")),
        1 => Ok(()),
        _ => Err(format!("more than one id ({}): {RULE}", usable.join(", "))),
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
    let ts = if ts > MILLIS_THRESHOLD { ts / 1000 } else { ts };
    if ts <= 0 {
        return Err(RULE.into());
    }
    record.insert("ts".into(), ts.into());
    Ok(())
}

fn check_event(record: &Map<String, Value>) -> Result<(), String> {
    let name = match record.get("evtName") {
        Some(Value::String(s)) if !s.trim().is_empty() => s.as_str(),
        _ => return Err("evtName must be a non-empty string (CleverTap 509)".into()),
    };
    if RESTRICTED_EVENTS.contains(&name) {
        return Err(format!(
            "evtName \"{name}\" is a restricted system event (CleverTap 513)"
        ));
    }
    let data = match record.get("evtData") {
        None => return Ok(()),
        Some(Value::Object(data)) => data,
        Some(_) => return Err("evtData must be an object".into()),
    };
    for (key, value) in data {
        check_key("evtData", key)?;
        let nested = value.is_object() || value.is_array();
        if nested && !(name == "Charged" && key == "Items") {
            return Err(format!(
                "evtData.{key} is nested: event properties must be flat, only Items on Charged may nest (CleverTap 512)"
            ));
        }
    }
    if data.len() > MAX_CUSTOM_KEYS {
        return Err(format!(
            "evtData has {} properties, more than {MAX_CUSTOM_KEYS} (CleverTap 522)",
            data.len()
        ));
    }
    Ok(())
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
    let custom = data
        .keys()
        .filter(|k| !RESERVED_PROFILE_KEYS.contains(&k.as_str()))
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
        let cases: Vec<(&str, Value, bool, Option<&str>)> = vec![
            (
                "valid profile",
                json!({"type":"profile","identity":"a@example.com","profileData":{"Name":"A"}}),
                false,
                None,
            ),
            (
                "valid event",
                json!({"type":"event","identity":"a","evtName":"Deal Won","evtData":{"Amount":1}}),
                false,
                None,
            ),
            (
                "missing type",
                json!({"identity":"a"}),
                false,
                Some("type must be"),
            ),
            (
                "bad type",
                json!({"type":"user","identity":"a"}),
                false,
                Some("type must be"),
            ),
            (
                "token outside passthrough",
                json!({"type":"token","objectId":"a"}),
                false,
                Some("only in passthrough"),
            ),
            (
                "token in passthrough",
                json!({"type":"token","objectId":"a"}),
                true,
                None,
            ),
            (
                "no identity",
                json!({"type":"profile","identity":""}),
                false,
                Some("no identity"),
            ),
            (
                "two ids",
                json!({"type":"profile","identity":"a","objectId":"b"}),
                false,
                Some("more than one id"),
            ),
            (
                "id too long",
                json!({"type":"profile","identity":long_id}),
                false,
                Some("identity is not usable"),
            ),
            (
                "id is an object",
                json!({"type":"profile","identity":{"a":1}}),
                false,
                Some("identity is not usable"),
            ),
            (
                "ts zero",
                json!({"type":"profile","identity":"a","ts":0}),
                false,
                Some("ts must be"),
            ),
            (
                "ts negative",
                json!({"type":"profile","identity":"a","ts":-5}),
                false,
                Some("ts must be"),
            ),
            (
                "ts fractional",
                json!({"type":"profile","identity":"a","ts":1.5}),
                false,
                Some("ts must be"),
            ),
            (
                "ts text",
                json!({"type":"profile","identity":"a","ts":"yesterday"}),
                false,
                Some("ts must be"),
            ),
            (
                "no evtName",
                json!({"type":"event","identity":"a"}),
                false,
                Some("evtName must be"),
            ),
            (
                "restricted event",
                json!({"type":"event","identity":"a","evtName":"App Launched"}),
                false,
                Some("restricted system event"),
            ),
            (
                "nested evtData",
                json!({"type":"event","identity":"a","evtName":"X","evtData":{"p":{"s":1}}}),
                false,
                Some("evtData.p is nested"),
            ),
            (
                "array evtData",
                json!({"type":"event","identity":"a","evtName":"X","evtData":{"p":[1]}}),
                false,
                Some("evtData.p is nested"),
            ),
            (
                "charged items may nest",
                json!({"type":"event","identity":"a","evtName":"Charged","evtData":{"Items":[{"n":1}]}}),
                false,
                None,
            ),
            (
                "event key too long",
                json!({"type":"event","identity":"a","evtName":"X","evtData":{long_key.clone():1}}),
                false,
                Some("more than 120"),
            ),
            (
                "too many custom keys",
                json!({"type":"profile","identity":"a","profileData":many}),
                false,
                Some("custom keys"),
            ),
        ];
        for (name, record, allow_token, want) in cases {
            let Value::Object(mut record) = record else {
                panic!("case {name}: not an object")
            };
            let got = check(&mut record, 1_764_150_000, allow_token);
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
            check(&mut record, 1_764_150_000, false).unwrap();
            assert_eq!(Value::Object(record), want, "case {name}");
        }
    }
}
