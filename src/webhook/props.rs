//! Property tests of webhook reading over arbitrary bytes and content types: never a panic, the
//! same reading every time (intake and delivery share it), a repair only where the body needed
//! one, form values always text, no body text in an error message, and no multi-record upload
//! taken for Freshsales' test sample.

use proptest::prelude::*;
use serde_json::Value;

use super::*;

/// Marks body text: an error message must never carry it (messages are logged).
const MARK: &str = "zq9mark";

fn content_type() -> impl Strategy<Value = Option<String>> {
    let known = prop::sample::select(vec![
        "application/json",
        "application/json; charset=utf-8",
        "APPLICATION/JSON",
        "text/json",
        "application/vnd.api+json",
        "application/x-www-form-urlencoded",
        "application/x-www-form-urlencoded; charset=ISO-8859-1",
        "text/plain",
        "multipart/form-data; boundary=x",
        "",
        ";",
    ])
    .prop_map(str::to_owned);
    prop::option::of(prop_oneof![4 => known, 1 => ".{0,24}"])
}

/// Bytes of every kind: anything, JSON-like text, form-like text, and real JSON broken the way
/// raw Freshsales placeholders break it.
fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..200),
        r#"[{}\[\]:," a-z0-9\n\\]{0,80}"#.prop_map(String::into_bytes),
        "[a-z%+=&0-9A-F\u{e9}]{0,60}".prop_map(String::into_bytes),
        (
            json_value(),
            0_usize..40,
            prop::sample::select(vec!["", "{{x}}", ",", MARK, "\""])
        )
            .prop_map(|(value, at, insert)| {
                let text = value.to_string();
                let at = (0..=at.min(text.len()))
                    .rev()
                    .find(|i| text.is_char_boundary(*i))
                    .unwrap_or(0);
                format!("{}{insert}{}", &text[..at], &text[at..]).into_bytes()
            }),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        prop::sample::select(vec!["support-team@freshsales.io", MARK, "", "freshsales"])
            .prop_map(Value::from),
        ".{0,8}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(
                prop::sample::select(vec![
                    "d",
                    "identity",
                    "objectId",
                    "contact_email",
                    "contact_id",
                    "x"
                ])
                .prop_map(str::to_owned),
                inner,
                0..4
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn reading(result: &Result<Parsed, BodyError>) -> Result<(Value, bool), String> {
    match result {
        Ok(parsed) => Ok((parsed.value.clone(), parsed.repaired)),
        Err(error) => Err(error.message.clone()),
    }
}

proptest! {
    #[test]
    fn any_body_reads_one_way_and_never_panics(header in content_type(), body in body()) {
        let Some(kind) = BodyKind::from_content_type(header.as_deref(), &body) else {
            return Ok(());
        };
        prop_assert_eq!(BodyKind::from_stored(kind.as_str()), kind, "stored kind round-trips");
        let first = parse(kind, &body);
        prop_assert_eq!(reading(&first), reading(&parse(kind, &body)), "read the same twice");
        match (kind, first) {
            (BodyKind::Form, Ok(parsed)) => {
                let Value::Object(map) = &parsed.value else {
                    return Err(TestCaseError::fail("a form reads as an object"));
                };
                prop_assert!(map.values().all(Value::is_string), "form values are text");
                prop_assert!(!parsed.repaired);
            }
            (BodyKind::Json, Ok(parsed)) => {
                match serde_json::from_slice::<Value>(&body) {
                    Ok(value) => {
                        prop_assert!(!parsed.repaired, "valid JSON is never repaired");
                        prop_assert_eq!(parsed.value, value);
                    }
                    Err(_) => prop_assert!(parsed.repaired, "invalid JSON read only by repair"),
                }
            }
            (BodyKind::Json, Err(error)) => {
                prop_assert!(serde_json::from_slice::<Value>(&body).is_err());
                prop_assert!(!error.message.contains(MARK), "no body text in: {}", error.message);
            }
            (BodyKind::Form, Err(error)) => {
                prop_assert!(std::str::from_utf8(&body).is_err() || body.contains(&b'%'));
                prop_assert!(error.message.contains("not valid UTF-8"));
            }
        }
    }

    #[test]
    fn only_a_lone_record_or_a_crm_sample_can_be_a_test(value in json_value()) {
        let test = is_test_payload(&value);
        if let Some(records) = value.get("d").and_then(Value::as_array) {
            prop_assert!(!test || records.len() == 1, "a multi-record upload is never a test");
        }
        if test {
            let text = value.to_string();
            prop_assert!(
                text.contains("support-team@freshsales.io") || text.contains("123456"),
                "a test names Freshsales' sample identity"
            );
        }
    }
}
