//! Deletion routes (`mode = "delete"`): each record names one CleverTap profile to delete
//! through `/1/delete/profiles.json`, by `identity` or by CleverTap ID (`guid`, also written
//! `objectId` as in uploads). A template record holds exactly one of them; a body without a
//! template is read as CleverTap's own delete body (`{"identity": "…"}` or `{"guid": [...]}`).
//!
//! A deletion record renders as `{"identity": v}` or `{"guid": v}`, `v` exactly as the
//! template rendered it: nothing is lowercased or trimmed that CleverTap would match as given.

use serde_json::{Map, Value, json};

use super::RecordOutcome;

/// The CleverTap keys a deletion can name a profile by, as its body spells them.
pub const IDENTITY: &str = "identity";
pub const GUID: &str = "guid";

const SHAPE: &str = "a deletion record holds exactly one of identity or guid (objectId), a non-empty string or a number";

/// A rendered template record → the profile it deletes, or why it cannot be sent.
pub(super) fn from_record(mut map: Map<String, Value>) -> RecordOutcome {
    let guid = map.remove(GUID).or_else(|| map.remove("objectId"));
    let identity = map.remove(IDENTITY);
    if !map.is_empty() {
        let mut keys: Vec<&str> = map.keys().map(String::as_str).collect();
        keys.sort_unstable();
        return dead(format!("{SHAPE}; it also holds {}", keys.join(", ")));
    }
    match (identity, guid) {
        (Some(value), None) => target(IDENTITY, value),
        (None, Some(value)) => target(GUID, value),
        (None, None) => dead(format!("{SHAPE}; it holds neither (empty?)")),
        (Some(_), Some(_)) => dead(format!("{SHAPE}; it holds both")),
    }
}

/// CleverTap's delete body (`{"identity": v | [v…]}` or `{"guid": …}`) → one record per
/// value, in order.
pub(super) fn from_body(body: &Value) -> Vec<RecordOutcome> {
    let Some(object) = body.as_object() else {
        return vec![dead(format!("{SHAPE}: the body is not a JSON object"))];
    };
    let (key, value) = match (object.get(IDENTITY), object.get(GUID)) {
        (Some(value), None) => (IDENTITY, value),
        (None, Some(value)) => (GUID, value),
        _ => return vec![dead(format!("{SHAPE}: the body holds neither or both"))],
    };
    match value {
        Value::Array(values) if !values.is_empty() => {
            values.iter().map(|v| target(key, v.clone())).collect()
        }
        single => vec![target(key, single.clone())],
    }
}

/// The order keys of a delete body: its values, lowercased and trimmed, as uploads key theirs.
pub(super) fn body_keys(body: &Value) -> Vec<Value> {
    from_body(body)
        .into_iter()
        .filter_map(|outcome| match outcome {
            RecordOutcome::Send(record) => record.as_object()?.values().next().cloned(),
            _ => None,
        })
        .collect()
}

/// The value a deletion record sends, and its key (`identity` or `guid`).
pub fn parts(record: &Value) -> Option<(&'static str, &Value)> {
    let object = record.as_object()?;
    if let Some(value) = object.get(IDENTITY) {
        return Some((IDENTITY, value));
    }
    object.get(GUID).map(|value| (GUID, value))
}

fn target(key: &'static str, value: Value) -> RecordOutcome {
    let usable = match &value {
        Value::String(s) => !s.trim().is_empty(),
        Value::Number(_) => true,
        _ => false,
    };
    if usable {
        RecordOutcome::Send(json!({ key: value }))
    } else {
        dead(format!("{SHAPE}; its {key} is not"))
    }
}

fn dead(reason: String) -> RecordOutcome {
    RecordOutcome::Dead {
        code: "invalid_record",
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn a_record_names_one_profile_by_identity_or_guid_as_rendered() {
        assert_eq!(
            from_record(map(json!({"identity": " Ann@X.com"}))),
            RecordOutcome::Send(json!({"identity": " Ann@X.com"}))
        );
        assert_eq!(
            from_record(map(json!({"objectId": "__abc"}))),
            RecordOutcome::Send(json!({"guid": "__abc"}))
        );
        assert_eq!(
            from_record(map(json!({"identity": 42}))),
            RecordOutcome::Send(json!({"identity": 42}))
        );
    }

    #[test]
    fn a_record_with_no_both_or_other_keys_is_dead_naming_keys_only() {
        for record in [
            json!({}),
            json!({"identity": "a", "guid": "b"}),
            json!({"identity": "   "}),
            json!({"identity": ["a"]}),
        ] {
            assert!(
                matches!(
                    from_record(map(record.clone())),
                    RecordOutcome::Dead {
                        code: "invalid_record",
                        ..
                    }
                ),
                "{record}"
            );
        }
        let RecordOutcome::Dead { reason, .. } =
            from_record(map(json!({"identity": "ann@x.com", "type": "profile"})))
        else {
            panic!("extra keys are refused");
        };
        assert!(
            reason.contains("type") && !reason.contains("ann@x.com"),
            "{reason}"
        );
    }

    #[test]
    fn a_delete_body_gives_one_record_per_value_in_order() {
        assert_eq!(
            from_body(&json!({"identity": ["a", "B"]})),
            vec![
                RecordOutcome::Send(json!({"identity": "a"})),
                RecordOutcome::Send(json!({"identity": "B"}))
            ]
        );
        assert_eq!(
            from_body(&json!({"guid": "g1"})),
            vec![RecordOutcome::Send(json!({"guid": "g1"}))]
        );
        assert_eq!(
            body_keys(&json!({"identity": ["a", "B"]})),
            vec![json!("a"), json!("B")]
        );
        for body in [
            json!({"identity": "a", "guid": "b"}),
            json!([1]),
            json!({"x": 1}),
        ] {
            assert!(
                matches!(from_body(&body)[..], [RecordOutcome::Dead { .. }]),
                "{body}"
            );
        }
    }

    #[test]
    fn parts_reads_back_what_a_record_sends() {
        assert_eq!(parts(&json!({"guid": "g"})), Some((GUID, &json!("g"))));
        assert_eq!(parts(&json!({"d": []})), None);
    }
}
