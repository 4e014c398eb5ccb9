//! A property test of passthrough over arbitrary records: no panic, repairs idempotent, and a
//! sent record differs from the input only by the listed repairs.

use proptest::prelude::*;
use serde_json::{Map, Value, json};

use super::*;

fn leaf() -> impl Strategy<Value = Value> {
    let texts = prop::sample::select(vec![
        "",
        " ",
        "M",
        "F",
        "Female",
        "Y",
        "N",
        "yes",
        "School",
        "18",
        "aa",
        "+44 7700 900123",
        "(415) 555-0100",
        "223",
        "14-03-1990",
        "1990-03-14",
        "19900314",
        "637372800",
        "$D_1",
        "a@example.com",
        " a@example.com",
        "\u{0}",
        "x\u{FFFD}",
        "Web Page Viewed",
        "Charged",
        "profile",
        "event",
        "token",
    ]);
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        (0_i64..3_000_000_000_000).prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        texts.prop_map(Value::from),
        ".{0,8}".prop_map(Value::from),
    ]
}

fn key() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
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
        "MSG-sms",
        "identity",
        "Items",
        "Plan",
        "$add",
        "$incr",
        "$remove",
        "$delete",
    ])
    .prop_map(str::to_string)
}

fn value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
            prop::collection::btree_map(key(), inner, 0..3)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Mostly well-formed records, so that the repairs and what is kept are exercised, not only
/// the early refusals; sometimes anything at all.
fn record() -> impl Strategy<Value = Value> {
    let id = prop_oneof![
        6 => prop::sample::select(vec!["ada@example.com", "42", " Ada@Example.com "]).prop_map(Value::from),
        1 => any::<u32>().prop_map(Value::from),
        2 => leaf(),
    ];
    let ts = prop_oneof![
        3 => Just(None),
        3 => (1_i64..4_000_000_000_000).prop_map(|t| Some(Value::from(t))),
        1 => leaf().prop_map(Some),
    ];
    let fields = prop::collection::btree_map(key(), prop_oneof![3 => leaf(), 1 => value()], 0..6)
        .prop_map(|m| Value::Object(m.into_iter().collect()));
    let kind = prop::sample::select(vec!["profile", "profile", "event", "token", "user"]);
    let id_key = prop::sample::select(vec!["identity", "objectId", "FBID", "GPID"]);
    let name = prop::sample::select(vec!["Deal Won", "Charged", "Web Page Viewed", "", "X"]);
    let shaped = (
        kind,
        id_key,
        id,
        prop::option::of((id_key_2(), leaf())),
        ts,
        name,
        fields,
    )
        .prop_map(|(kind, id_key, id, second, ts, name, fields)| {
            let mut map = Map::new();
            map.insert("type".into(), Value::from(kind));
            map.insert(id_key.into(), id);
            if let Some((key, value)) = second {
                map.insert(key.into(), value);
            }
            if let Some(ts) = ts {
                map.insert("ts".into(), ts);
            }
            if kind == "event" {
                map.insert("evtName".into(), Value::from(name));
                map.insert("evtData".into(), fields);
            } else {
                map.insert("profileData".into(), fields);
            }
            Value::Object(map)
        });
    prop_oneof![1 => value(), 8 => shaped]
}

fn id_key_2() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec!["identity", "objectId", "FBID", "GPID"])
}

fn blank(value: &Value) -> bool {
    value.is_null() || value.as_str().is_some_and(|s| s.trim().is_empty())
}

/// Whether `sent` differs from `input` only by the documented repairs, judged field by field
/// without the rules' own code.
fn only_listed_repairs(
    input: &Map<String, Value>,
    sent: &Map<String, Value>,
) -> Result<(), String> {
    if sent.keys().any(|k| !input.contains_key(k) && k != "ts") {
        return Err("a key was added".into());
    }
    for (key, before) in input {
        let after = sent.get(key);
        let fine = match (key.as_str(), after) {
            (_, Some(after)) if after == before => true,
            ("identity" | "objectId" | "FBID" | "GPID", None) => blank(before),
            ("ts", Some(after)) => {
                let whole = before.as_i64().or_else(|| {
                    before
                        .as_f64()
                        .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
                        .map(|f| f as i64)
                });
                (blank(before) && *after == json!(R))
                    || whole.is_some_and(|ms| ms > 100_000_000_000 && *after == json!(ms / 1000))
            }
            ("profileData", Some(Value::Object(after))) => before
                .as_object()
                .is_some_and(|before| profile_repairs_only(before, after)),
            _ => false,
        };
        if !fine {
            return Err(format!("{key} changed: {before} → {after:?}"));
        }
    }
    if !input.contains_key("ts")
        && sent.get("ts") != Some(&json!(R))
        && input.get("type") != Some(&json!("token"))
    {
        return Err("ts not filled".into());
    }
    Ok(())
}

fn profile_repairs_only(before: &Map<String, Value>, after: &Map<String, Value>) -> bool {
    let reserved = [
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
    after.keys().all(|k| before.contains_key(k))
        && before.iter().all(|(k, v)| match after.get(k) {
            Some(a) if a == v => true,
            None => {
                (reserved.contains(&k.as_str()) || k.starts_with("MSG-"))
                    && (v.is_null() || v == "")
            }
            Some(Value::String(a)) if k == "Phone" => {
                (v.is_string() || v.is_number())
                    && a.strip_prefix('+')
                        .is_some_and(|d| d.bytes().all(|b| b.is_ascii_digit()))
            }
            Some(Value::String(a)) if k == "DOB" => a.strip_prefix("$D_").is_some_and(|d| {
                d.trim_start_matches('-')
                    .bytes()
                    .all(|b| b.is_ascii_digit())
            }),
            _ => false,
        })
}

proptest! {
    #[test]
    fn passthrough_alters_nothing_but_the_listed_repairs(record in record()) {
        let pass = passthrough();
        let outcome = pass.render(&json!({"d": [record.clone()]}), R).records;
        prop_assert_eq!(outcome.len(), 1);
        match &outcome[0] {
            RecordOutcome::Send(sent) => {
                let (Some(input), Some(out)) = (record.as_object(), sent.as_object()) else {
                    return Err(TestCaseError::fail("a sent record is an object"));
                };
                if let Err(why) = only_listed_repairs(input, out) {
                    return Err(TestCaseError::fail(format!("{why}\n in: {record}\nout: {sent}")));
                }
                let again = pass.render(&json!({"d": [sent.clone()]}), R).records;
                prop_assert_eq!(&again, &outcome, "repairing a repaired record changes nothing");
            }
            RecordOutcome::Refused { code, error } => {
                prop_assert!([509, 512, 513, 514, 515, 516, 517, 518, 519, 520, 522, 523, 524, 525].contains(code));
                prop_assert!(!error.contains("Skipped record number"));
            }
            other => return Err(TestCaseError::fail(format!("passthrough gave {other:?}"))),
        }
    }
}
