//! Whether an upload can be deduplicated: sending it twice must leave CleverTap as sending it
//! once.

use serde_json::Value;

/// Operations that change CleverTap's data again each time they are sent.
const REPEATING_OPERATIONS: [&str; 3] = ["$incr", "$decr", "$add"];

/// Whether sending this passthrough body twice leaves CleverTap as sending it once: not when a
/// record is an event without `ts` (it would be dated and counted again) or a profile value
/// anywhere in `profileData` is an `$incr`, `$decr` or `$add`. A body that is not an upload
/// is template input, whose deduplication this does not judge: true.
pub fn dedup_safe(body: &Value) -> bool {
    let Some(records) = body.get("d").and_then(Value::as_array) else {
        return true;
    };
    records.iter().all(record_dedup_safe)
}

/// [`dedup_safe`] for one record of an upload.
pub fn record_dedup_safe(record: &Value) -> bool {
    let untimed_event = record.get("type").and_then(Value::as_str) == Some("event")
        && record
            .get("ts")
            .is_none_or(|ts| ts.is_null() || ts.as_str() == Some(""));
    !untimed_event && !record.get("profileData").is_some_and(repeats)
}

fn repeats(value: &Value) -> bool {
    match value {
        Value::Object(map) => map
            .iter()
            .any(|(k, v)| REPEATING_OPERATIONS.contains(&k.as_str()) || repeats(v)),
        Value::Array(items) => items.iter().any(repeats),
        _ => false,
    }
}
