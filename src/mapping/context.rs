//! Builds the template context from a webhook body (fields, prefix-free short names, aliases)
//! and converts values between serde_json and minijinja.

use std::collections::{BTreeMap, btree_map::Entry};

use minijinja::value::{Value, ValueKind};

/// Module prefixes Freshsales puts on Simple-mode keys; `sales_account_` before `account_` so a
/// sales-account field loses its whole prefix.
const PREFIXES: [&str; 5] = ["sales_account_", "contact_", "lead_", "deal_", "account_"];

/// The context map of one body. Top-level nulls and non-object bodies give no names, so a
/// missing field renders as undefined and is omitted.
pub(crate) fn fields(
    body: &serde_json::Value,
    aliases: &BTreeMap<String, Vec<String>>,
) -> BTreeMap<String, Value> {
    let mut map = BTreeMap::new();
    let Some(object) = body.as_object() else {
        return map;
    };
    let present = || object.iter().filter(|(_, v)| !v.is_null());
    for (key, value) in present() {
        map.insert(key.clone(), json_to_value(value));
    }
    // A short name shared by two fields would be a guess, so neither gets it.
    let mut shorts: BTreeMap<&str, Option<&serde_json::Value>> = BTreeMap::new();
    for (key, value) in present() {
        if let Some(short) = short_name(key) {
            match shorts.entry(short) {
                Entry::Vacant(slot) => {
                    slot.insert(Some(value));
                }
                Entry::Occupied(mut slot) => {
                    slot.insert(None);
                }
            }
        }
    }
    for (short, value) in shorts {
        if let Some(value) = value {
            map.entry(short.to_string())
                .or_insert_with(|| json_to_value(value));
        }
    }
    for (name, targets) in aliases {
        let found = targets
            .iter()
            .filter_map(|target| map.get(target.as_str()))
            .find(|value| !crate::mapping::sink::is_blank(value))
            .cloned();
        if let Some(value) = found {
            map.insert(name.clone(), value);
        }
    }
    map
}

/// One name of the context [`fields`] builds, read straight from the body: what the template
/// engine would see under `name`, without building the whole context.
pub(crate) enum Lookup<'a> {
    Found(&'a serde_json::Value),
    /// No value under the name (rendered as undefined).
    Missing,
    /// An alias whose target is itself an alias: only the full context tells.
    Unknown,
}

/// The value [`fields`] gives `name`: an alias's first non-blank target, else the field
/// itself (non-null), else the one field whose prefix-free short name it is.
pub(crate) fn lookup<'a>(
    body: &'a serde_json::Value,
    name: &str,
    aliases: &BTreeMap<String, Vec<String>>,
) -> Lookup<'a> {
    let Some(object) = body.as_object() else {
        return Lookup::Missing;
    };
    if let Some(targets) = aliases.get(name) {
        if targets.iter().any(|t| aliases.contains_key(t)) {
            return Lookup::Unknown;
        }
        let found = targets
            .iter()
            .filter_map(|target| own_or_short(object, target))
            .find(|value| !value.as_str().is_some_and(|s| s.trim().is_empty()));
        if let Some(value) = found {
            return Lookup::Found(value);
        }
    }
    own_or_short(object, name).map_or(Lookup::Missing, Lookup::Found)
}

fn own_or_short<'a>(
    object: &'a serde_json::Map<String, serde_json::Value>,
    name: &str,
) -> Option<&'a serde_json::Value> {
    if let Some(value) = object.get(name).filter(|v| !v.is_null()) {
        return Some(value);
    }
    let mut shorts = object
        .iter()
        .filter(|(key, value)| !value.is_null() && short_name(key) == Some(name));
    match (shorts.next(), shorts.next()) {
        (Some((_, value)), None) => Some(value),
        _ => None,
    }
}

fn short_name(key: &str) -> Option<&str> {
    PREFIXES
        .iter()
        .find_map(|prefix| key.strip_prefix(prefix))
        .filter(|rest| !rest.is_empty())
}

pub(crate) fn json_to_value(value: &serde_json::Value) -> Value {
    match value {
        serde_json::Value::Null => Value::from(()),
        serde_json::Value::Bool(b) => Value::from(*b),
        serde_json::Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::from(i)
            } else if let Some(u) = n.as_u64() {
                Value::from(u)
            } else {
                Value::from(n.as_f64().unwrap_or(f64::NAN))
            }
        }
        serde_json::Value::String(s) => Value::from(s.as_str()),
        serde_json::Value::Array(items) => {
            Value::from(items.iter().map(json_to_value).collect::<Vec<_>>())
        }
        serde_json::Value::Object(map) => {
            Value::from_pairs(map.iter().map(|(k, v)| (k.as_str(), json_to_value(v))))
        }
    }
}

/// A rendered value as JSON, or None when it is empty and so must be omitted: undefined, none,
/// "", NaN, and arrays or objects left empty once their empty members are dropped.
pub(crate) fn value_to_json(value: &Value) -> Result<Option<serde_json::Value>, String> {
    Ok(match value.kind() {
        ValueKind::Undefined | ValueKind::None => None,
        ValueKind::Bool => Some(serde_json::Value::Bool(value.is_true())),
        ValueKind::Number => number_to_json(value),
        ValueKind::String | ValueKind::Plain => {
            let text = value
                .as_str()
                .map_or_else(|| value.to_string(), str::to_string);
            (!text.is_empty()).then_some(serde_json::Value::String(text))
        }
        ValueKind::Bytes => value
            .as_bytes()
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .filter(|s| !s.is_empty())
            .map(serde_json::Value::String),
        ValueKind::Seq | ValueKind::Iterable => {
            let mut items = Vec::new();
            for item in value.try_iter().map_err(|e| e.to_string())? {
                items.extend(value_to_json(&item)?);
            }
            (!items.is_empty()).then_some(serde_json::Value::Array(items))
        }
        ValueKind::Map => {
            let mut object = serde_json::Map::new();
            for key in value.try_iter().map_err(|e| e.to_string())? {
                let item = value.get_item(&key).map_err(|e| e.to_string())?;
                if let Some(item) = value_to_json(&item)? {
                    let key = key.as_str().map_or_else(|| key.to_string(), str::to_string);
                    object.insert(key, item);
                }
            }
            (!object.is_empty()).then_some(serde_json::Value::Object(object))
        }
        _ => {
            return Err(format!(
                "the expression produced an unusable {} value",
                value.kind()
            ));
        }
    })
}

fn number_to_json(value: &Value) -> Option<serde_json::Value> {
    if !value.is_integer() {
        return f64::try_from(value.clone())
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(serde_json::Value::Number);
    }
    if let Some(i) = value.as_i64() {
        return Some(i.into());
    }
    if let Ok(u) = u64::try_from(value.clone()) {
        return Some(u.into());
    }
    f64::try_from(value.clone())
        .ok()
        .and_then(serde_json::Number::from_f64)
        .map(serde_json::Value::Number)
}

/// Drops what means "absent" from plain JSON (template literals, passthrough bodies): null, "",
/// and arrays or objects that end up empty. Returns None when the value itself is absent.
pub(crate) fn prune(value: serde_json::Value) -> Option<serde_json::Value> {
    match value {
        serde_json::Value::Null => None,
        serde_json::Value::String(s) if s.is_empty() => None,
        serde_json::Value::Array(items) => {
            let items: Vec<_> = items.into_iter().filter_map(prune).collect();
            (!items.is_empty()).then_some(serde_json::Value::Array(items))
        }
        serde_json::Value::Object(map) => {
            let map: serde_json::Map<_, _> = map
                .into_iter()
                .filter_map(|(k, v)| prune(v).map(|v| (k, v)))
                .collect();
            (!map.is_empty()).then_some(serde_json::Value::Object(map))
        }
        other => Some(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn names(body: serde_json::Value, aliases: &[(&str, &[&str])]) -> BTreeMap<String, String> {
        let aliases = aliases
            .iter()
            .map(|(k, v)| (k.to_string(), v.iter().map(|s| s.to_string()).collect()))
            .collect();
        fields(&body, &aliases)
            .into_iter()
            .map(|(k, v)| (k, v.to_string()))
            .collect()
    }

    #[test]
    fn short_names_and_aliases_resolve_as_documented() {
        type Case<'a> = (
            &'a str,
            serde_json::Value,
            &'a [(&'a str, &'a [&'a str])],
            &'a str,
            Option<&'a str>,
        );
        let cases: [Case; 9] = [
            (
                "full name",
                json!({"contact_first_name": "Amelia"}),
                &[],
                "contact_first_name",
                Some("Amelia"),
            ),
            (
                "short name",
                json!({"contact_first_name": "Amelia"}),
                &[],
                "first_name",
                Some("Amelia"),
            ),
            (
                "doubled prefix",
                json!({"deal_deal_stage_name": "Won"}),
                &[],
                "deal_stage_name",
                Some("Won"),
            ),
            (
                "sales account prefix",
                json!({"sales_account_id": 7}),
                &[],
                "id",
                Some("7"),
            ),
            (
                "ambiguous short name left out",
                json!({"contact_id": 1, "deal_id": 2}),
                &[],
                "id",
                None,
            ),
            (
                "null is absent",
                json!({"contact_email": null}),
                &[],
                "email",
                None,
            ),
            (
                "alias first non-empty target",
                json!({"contact_mobile_number": "", "contact_work_number": "+1 415 555 0100"}),
                &[("phone_number", &["mobile_number", "work_number"])],
                "phone_number",
                Some("+1 415 555 0100"),
            ),
            (
                "alias wins over same-named field",
                json!({"email": "raw@example.com", "contact_cf_email": "cf@example.com"}),
                &[("email", &["contact_cf_email"])],
                "email",
                Some("cf@example.com"),
            ),
            (
                "alias with no target leaves field",
                json!({"email": "raw@example.com"}),
                &[("email", &["nothing"])],
                "email",
                Some("raw@example.com"),
            ),
        ];
        for (name, body, aliases, key, want) in cases {
            assert_eq!(
                names(body, aliases).get(key).map(String::as_str),
                want,
                "case {name}"
            );
        }
    }

    #[test]
    fn prune_removes_what_means_absent() {
        let pruned =
            prune(json!({"a": "", "b": null, "c": [], "d": {"e": ""}, "f": 0, "g": [false, ""]}));
        assert_eq!(
            pruned,
            Some(json!({"f": 0, "g": [false]})),
            "case nested empties"
        );
        assert_eq!(prune(json!({})), None, "case empty object");
    }

    #[test]
    fn values_round_trip_with_their_types() {
        for (name, input) in [
            ("int", json!(16001234567_i64)),
            ("float", json!(48000.0)),
            ("bool", json!(true)),
            ("nested", json!({"email": ["Newsletters", "Promotions"]})),
            ("big unsigned", json!(u64::MAX)),
        ] {
            assert_eq!(
                value_to_json(&json_to_value(&input)).unwrap(),
                Some(input.clone()),
                "case {name}"
            );
        }
    }
}
