//! Each CleverTap refusal of a passthrough record: its code, CleverTap's exact text, and
//! CleverTap's order when a record breaks several rules.

use serde_json::{Value, json};

use super::RecordOutcome;
use super::passthrough::{event, judged, profile};

/// CleverTap's texts as recorded (reference §5); 522 and 524, never recorded, as freshtap
/// writes them. Each ends where "Skipped record number" follows.
fn text(code: u16, field: &str) -> String {
    let text = match code {
        509 => "Event Name is incorrect. ErrorCode: 509 - Event name is mandatory. ",
        512 => {
            return format!(
                "Event data is incorrect. 512 - Only Items can have a nested structure, incorrect nested structure for field : {field}."
            );
        }
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
        other => panic!("no text for {other}"),
    };
    text.to_string()
}

#[test]
fn each_refusal_has_clevertaps_code_and_text() {
    let long = "x".repeat(120);
    let just_short = "x".repeat(119);
    let many: serde_json::Map<String, Value> =
        (0..257).map(|i| (format!("p{i}"), json!(i))).collect();
    let mut many_nested = many.clone();
    many_nested.insert("p0".into(), json!({"a": 1}));
    // (case, record, CleverTap's code, the field a 512 names)
    #[rustfmt::skip]
    let cases: Vec<(&str, Value, u16, &str)> = vec![
        ("524 not an object", json!("text"), 524, ""),
        ("524 no type", json!({"identity": "a"}), 524, ""),
        ("524 unknown type", json!({"type": "user", "identity": "a"}), 524, ""),
        ("524 before 523", json!({"type": "x"}), 524, ""),
        ("523 no id", json!({"type": "profile"}), 523, ""),
        ("523 empty id", json!({"type": "profile", "identity": ""}), 523, ""),
        ("523 only blanks", json!({"type": "event", "identity": null, "objectId": " ", "evtName": "X"}), 523, ""),
        ("523 120 chars", json!({"type": "profile", "identity": long}), 523, ""),
        ("523 object id", json!({"type": "profile", "identity": {"a": 1}}), 523, ""),
        ("523 boolean id", json!({"type": "profile", "FBID": true}), 523, ""),
        ("523 NUL", json!({"type": "profile", "identity": "ada\u{0}@example.com"}), 523, ""),
        ("523 line break", json!({"type": "profile", "objectId": "ada@example.com\n"}), 523, ""),
        ("523 U+FFFD", json!({"type": "profile", "GPID": "Zo\u{FFFD}"}), 523, ""),
        ("523 tainted beside a good id", json!({"type": "profile", "identity": "a", "objectId": "b\u{7}"}), 523, ""),
        ("523 too long beside a good id", json!({"type": "profile", "identity": "a", "objectId": long}), 523, ""),
        ("523 tainted token", json!({"type": "token", "objectId": "\u{1b}x"}), 523, ""),
        ("523 before 525", json!({"type": "profile", "ts": 0}), 523, ""),
        ("525 zero (F8)", json!({"type": "profile", "identity": "22", "ts": 0}), 525, ""),
        ("525 negative", json!({"type": "profile", "identity": "a", "ts": -5}), 525, ""),
        ("525 microseconds", json!({"type": "profile", "identity": "a", "ts": 1_700_000_000_000_000_i64}), 525, ""),
        ("525 fraction", json!({"type": "profile", "identity": "a", "ts": 1.5}), 525, ""),
        ("525 text", json!({"type": "profile", "identity": "a", "ts": "1700000000"}), 525, ""),
        ("525 iso", json!({"type": "profile", "identity": "a", "ts": "2026-11-26T10:00:00Z"}), 525, ""),
        ("525 boolean", json!({"type": "profile", "identity": "a", "ts": true}), 525, ""),
        ("525 before 509", json!({"type": "event", "identity": "a", "ts": 0}), 525, ""),
        ("509 no name", json!({"type": "event", "identity": "a", "ts": 1}), 509, ""),
        ("509 empty name", event("", json!({})), 509, ""),
        ("509 blank name", event(" ", json!({})), 509, ""),
        ("509 number name", json!({"type": "event", "identity": "a", "evtName": 5}), 509, ""),
        ("513 F5", event("Web Page Viewed", json!({"title": "Pricing"})), 513, ""),
        ("513 App Launched", event("App Launched", json!({})), 513, ""),
        ("513 before 512", event("UTM Visited", json!({"p": {"a": 1}})), 513, ""),
        ("512 F6", event("Deal Updated", json!({"prop1": {"stage": "Won"}})), 512, "prop1"),
        ("512 array", event("X", json!({"Tags": ["a"]})), 512, "Tags"),
        ("512 empty array", event("X", json!({"Tags": []})), 512, "Tags"),
        ("512 Items off Charged", event("Deal Won", json!({"Items": [{"n": 1}]})), 512, "Items"),
        ("512 before 522", event("X", Value::Object(many_nested)), 512, "p0"),
        ("522 257 properties", event("X", Value::Object(many)), 522, ""),
        ("514 word", profile(json!({"Gender": "Female"})), 514, ""),
        ("514 lower case", profile(json!({"Gender": "m"})), 514, ""),
        ("514 recorded GG", profile(json!({"Gender": "GG"})), 514, ""),
        ("514 number", profile(json!({"Gender": 1})), 514, ""),
        ("514 before 515", profile(json!({"Gender": "X", "Email": "$$$$$"})), 514, ""),
        ("515 F3", profile(json!({"Email": "$$$$$"})), 515, ""),
        ("515 recorded 1234", profile(json!({"Email": "1234"})), 515, ""),
        ("515 surrounding space", profile(json!({"Email": " ada@example.com"})), 515, ""),
        ("515 number", profile(json!({"Email": 5})), 515, ""),
        ("515 before 516", profile(json!({"Email": "x", "Phone": "223"})), 515, ""),
        ("516 F4", profile(json!({"Phone": "+44+441234"})), 516, ""),
        ("516 recorded 223", profile(json!({"Phone": "223"})), 516, ""),
        ("516 no area code", profile(json!({"Phone": "555-0199"})), 516, ""),
        ("516 boolean", profile(json!({"Phone": true})), 516, ""),
        ("516 object not an operation", profile(json!({"Phone": {"number": "+14155550100"}})), 516, ""),
        ("516 before 517", profile(json!({"Phone": "1", "Employed": "x"})), 516, ""),
        ("517 recorded 223", profile(json!({"Employed": "223"})), 517, ""),
        ("517 yes", profile(json!({"Employed": "yes"})), 517, ""),
        ("517 boolean", profile(json!({"Employed": true})), 517, ""),
        ("517 before 518", profile(json!({"Employed": "x", "Education": "x"})), 517, ""),
        ("518 recorded 223", profile(json!({"Education": "223"})), 518, ""),
        ("518 lower case", profile(json!({"Education": "graduate"})), 518, ""),
        ("518 before 519", profile(json!({"Education": "PhD", "Married": "x"})), 518, ""),
        ("519 recorded 223", profile(json!({"Married": "223"})), 519, ""),
        ("519 boolean", profile(json!({"Married": false})), 519, ""),
        ("519 before 520", profile(json!({"Married": "x", "Age": "aa"})), 519, ""),
        ("520 recorded aa", profile(json!({"Age": "aa"})), 520, ""),
        ("520 boolean", profile(json!({"Age": true})), 520, ""),
        ("520 array", profile(json!({"Age": [18]})), 520, ""),
        ("119 chars is an id", json!({"type": "profile", "identity": just_short, "ts": 1, "profileData": {"Age": "x"}}), 520, ""),
    ];
    for (name, record, code, field) in cases {
        let error = text(code, field);
        assert_eq!(
            judged(&record),
            RecordOutcome::Refused { code, error },
            "case {name}"
        );
    }
}
