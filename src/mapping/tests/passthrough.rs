//! Tables of the passthrough rules: each repair, each shape kept untouched, and which bodies may
//! be deduplicated (the refusals are in `refusals.rs`).

use serde_json::{Value, json};

use super::*;

/// One passthrough record through the route, as the drop-in and `auto` routes see it.
pub(super) fn judged(record: &Value) -> RecordOutcome {
    let rendered = passthrough().render(&json!({ "d": [record] }), R);
    assert!(
        rendered.dropped.is_empty(),
        "passthrough never drops fields"
    );
    match &rendered.records[..] {
        [one] => one.clone(),
        other => panic!("one record in, {} out", other.len()),
    }
}

pub(super) fn profile(data: Value) -> Value {
    json!({"type": "profile", "identity": "ada@example.com", "ts": 1_700_000_000, "profileData": data})
}

pub(super) fn event(name: &str, data: Value) -> Value {
    json!({"type": "event", "identity": "ada@example.com", "ts": 1_700_000_000, "evtName": name, "evtData": data})
}

#[test]
fn only_meaning_preserving_repairs_are_applied() {
    let cases: Vec<(&str, Value, Value)> = vec![
        (
            "phone to E.164",
            profile(json!({"Phone": "+44 7700 900123"})),
            profile(json!({"Phone": "+447700900123"})),
        ),
        (
            "phone without + uses the region",
            profile(json!({"Phone": "(415) 555-0100"})),
            profile(json!({"Phone": "+14155550100"})),
        ),
        (
            "numeric phone",
            profile(json!({"Phone": 14_155_550_100_i64})),
            profile(json!({"Phone": "+14155550100"})),
        ),
        (
            "dob account format",
            profile(json!({"DOB": "14-03-1990"})),
            profile(json!({"DOB": "$D_637372800"})),
        ),
        (
            "dob iso date",
            profile(json!({"DOB": "1990-03-14"})),
            profile(json!({"DOB": "$D_637372800"})),
        ),
        (
            "dob iso instant",
            profile(json!({"DOB": "1990-03-14T00:00:00Z"})),
            profile(json!({"DOB": "$D_637372800"})),
        ),
        (
            "dob epoch number",
            profile(json!({"DOB": 637_372_800})),
            profile(json!({"DOB": "$D_637372800"})),
        ),
        (
            "dob epoch text",
            profile(json!({"DOB": "637372800"})),
            profile(json!({"DOB": "$D_637372800"})),
        ),
        (
            "dob epoch milliseconds",
            profile(json!({"DOB": 637_372_800_000_i64})),
            profile(json!({"DOB": "$D_637372800"})),
        ),
        (
            "ts milliseconds to seconds",
            json!({"type": "profile", "identity": "a", "ts": 1_700_000_000_123_i64}),
            json!({"type": "profile", "identity": "a", "ts": 1_700_000_000}),
        ),
        (
            "missing ts is the receive time",
            json!({"type": "event", "identity": "a", "evtName": "X"}),
            json!({"type": "event", "identity": "a", "evtName": "X", "ts": R}),
        ),
        (
            "null ts is the receive time",
            json!({"type": "profile", "identity": "a", "ts": null}),
            json!({"type": "profile", "identity": "a", "ts": R}),
        ),
        (
            "empty ts is the receive time",
            json!({"type": "profile", "identity": "a", "ts": ""}),
            json!({"type": "profile", "identity": "a", "ts": R}),
        ),
        (
            "blank reserved values omitted, custom kept",
            profile(
                json!({"Name": "", "Email": null, "Phone": "", "Gender": "", "DOB": null, "Age": "",
                "Employed": "", "Education": null, "Married": "", "Photo": "", "MSG-email": null, "MSG-sms": "",
                "Plan": "", "Score": null}),
            ),
            profile(json!({"Plan": "", "Score": null})),
        ),
        (
            "every value blank leaves an empty profileData",
            profile(json!({"Name": ""})),
            profile(json!({})),
        ),
        (
            "blank id beside a usable one",
            json!({"type": "profile", "identity": "", "objectId": "b", "FBID": null, "ts": 5}),
            json!({"type": "profile", "objectId": "b", "ts": 5}),
        ),
    ];
    for (name, record, want) in cases {
        assert_eq!(judged(&record), RecordOutcome::Send(want), "case {name}");
    }
}

#[test]
fn what_clevertap_would_accept_is_kept_untouched() {
    let mut cases: Vec<(String, Value)> = Vec::new();
    for key in ["Phone", "Email", "Gender", "DOB", "Age", "Lead Score"] {
        for op in [
            json!({"$add": ["a"]}),
            json!({"$remove": ["a"]}),
            json!({"$incr": 1}),
            json!({"$decr": 2.5}),
            json!({"$delete": 1}),
        ] {
            cases.push((format!("{key} {op}"), profile(json!({ key: op }))));
        }
    }
    let long = "v".repeat(600);
    let custom: serde_json::Map<String, Value> =
        (0..300).map(|i| (format!("k{i}"), json!(i))).collect();
    let kept: Vec<(&str, Value)> = vec![
        ("evtData {}", event("Deal Won", json!({}))),
        (
            "event values empty and null",
            event("Deal Won", json!({"Amount": null, "Note": ""})),
        ),
        ("evtData not an object", event("Deal Won", json!("text"))),
        (
            "Charged Items nest",
            event(
                "Charged",
                json!({"Items": [{"Name": "Seat", "Quantity": 3}]}),
            ),
        ),
        (
            "events carry no profile rules",
            json!({"type": "event", "identity": "a", "ts": 1, "evtName": "X", "profileData": {"Gender": "X"}}),
        ),
        ("empty array", profile(json!({"Tags": []}))),
        (
            "nested object",
            profile(json!({"Address": {"City": "Leeds", "Lines": ["1 Road"]}})),
        ),
        (
            "empty subscription groups",
            profile(json!({"category-unsubscribe": {"email": []}})),
        ),
        ("Age text", profile(json!({"Age": "18"}))),
        ("Age number", profile(json!({"Age": 18}))),
        ("Age fraction text", profile(json!({"Age": "18.5"}))),
        (
            "enumerations as CleverTap spells them",
            profile(
                json!({"Gender": "F", "Employed": "Y", "Education": "Graduate", "Married": "N"}),
            ),
        ),
        ("custom empty string", profile(json!({"Nickname": ""}))),
        ("custom null", profile(json!({"Nickname": null}))),
        ("MSG-* as text", profile(json!({"MSG-sms": "false"}))),
        ("DOB already $D_", profile(json!({"DOB": "$D_637372800"}))),
        ("DOB not a date", profile(json!({"DOB": "soon"}))),
        (
            "DOB yyyymmdd is not guessed",
            profile(json!({"DOB": "19900314"})),
        ),
        ("DOB boolean", profile(json!({"DOB": true}))),
        (
            "Phone already E.164",
            profile(json!({"Phone": "+14155550100"})),
        ),
        (
            "recorded accepted phone",
            profile(json!({"Phone": "+35922333232"})),
        ),
        ("over-long value", profile(json!({"Notes": long}))),
        ("over-long key", profile(json!({ "k".repeat(200): 1 }))),
        ("300 custom keys", profile(Value::Object(custom))),
        ("profileData not an object", profile(json!("text"))),
        (
            "objectId email (the seed guide)",
            json!({"type": "profile", "objectId": "amelia.hart@example.com", "ts": 1}),
        ),
        (
            "numeric identity (F1)",
            json!({"type": "profile", "identity": 4, "ts": 1}),
        ),
        (
            "identity with spaces around",
            json!({"type": "profile", "identity": " Ada@Example.com ", "ts": 1}),
        ),
        (
            "two ids",
            json!({"type": "profile", "identity": "a", "objectId": "b", "ts": 1}),
        ),
        (
            "unknown keys",
            json!({"type": "profile", "identity": "a", "ts": 1, "source": {"x": [1]}}),
        ),
        (
            "integral float ts",
            json!({"type": "profile", "identity": "a", "ts": 1_700_000_000.0}),
        ),
        (
            "token",
            json!({"type": "token", "objectId": "__g1", "tokenData": {"id": "t", "type": "fcm"}}),
        ),
        (
            "token without id or ts",
            json!({"type": "token", "tokenData": {}}),
        ),
    ];
    cases.extend(kept.into_iter().map(|(n, r)| (n.to_string(), r)));
    for (name, record) in cases {
        assert_eq!(
            judged(&record),
            RecordOutcome::Send(record.clone()),
            "case {name}"
        );
    }
}

#[test]
fn a_body_is_deduplicated_only_when_resending_changes_nothing() {
    let set = json!({"type": "profile", "identity": "a", "profileData": {"Name": "A"}});
    let op = |o: Value| json!({"type": "profile", "identity": "a", "ts": 1, "profileData": {"Visits": o}});
    let cases = [
        ("profile sets", json!({"d": [set.clone()]}), true),
        ("event with ts", json!({"d": [event("X", json!({}))]}), true),
        (
            "event without ts",
            json!({"d": [{"type": "event", "identity": "a", "evtName": "X"}]}),
            false,
        ),
        (
            "event with null ts",
            json!({"d": [{"type": "event", "identity": "a", "evtName": "X", "ts": null}]}),
            false,
        ),
        ("$incr", json!({"d": [op(json!({"$incr": 1}))]}), false),
        ("$decr", json!({"d": [op(json!({"$decr": 1}))]}), false),
        ("$add", json!({"d": [op(json!({"$add": ["x"]}))]}), false),
        (
            "$add nested deep",
            json!({"d": [op(json!({"a": {"b": [{"$add": ["x"]}]}}))]}),
            false,
        ),
        (
            "$remove",
            json!({"d": [op(json!({"$remove": ["x"]}))]}),
            true,
        ),
        ("$delete", json!({"d": [op(json!({"$delete": 1}))]}), true),
        (
            "one unsafe record among safe ones",
            json!({"d": [set.clone(), op(json!({"$incr": 1}))]}),
            false,
        ),
        (
            "operation outside profileData is not CleverTap's",
            json!({"d": [{"type": "profile", "identity": "a", "x": {"$incr": 1}}]}),
            true,
        ),
        ("empty upload", json!({"d": []}), true),
        (
            "not an upload",
            json!({"contact_email": "a@example.com"}),
            true,
        ),
    ];
    for (name, body, want) in cases {
        assert_eq!(dedup_safe(&body), want, "case {name}");
    }
}
