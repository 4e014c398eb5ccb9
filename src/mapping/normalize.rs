//! Normalizes reserved profile fields (Phone, DOB, Email, Gender, …) and value sizes of
//! template output; passthrough records follow `upload_rules` instead.

use std::sync::Arc;

use serde_json::{Map, Value};

use super::OnInvalidField;
use super::context::prune;
use super::dates::DateParser;
use super::phones;
use super::upload_rules::is_email;

const MAX_VALUE_BYTES: usize = 512;

/// A field taken out of a record: (key path in the record, raw value, reason).
pub(crate) type Dropped = (String, String, String);

#[derive(Debug)]
pub(crate) struct Normalizer {
    pub dates: Arc<DateParser>,
    pub region: phones::Region,
    pub policy: OnInvalidField,
}

impl Normalizer {
    /// Rewrites the record in place. Err (policy `dead`) is the rule a field broke.
    pub(crate) fn normalize(
        &self,
        record: &mut Map<String, Value>,
    ) -> Result<Vec<Dropped>, String> {
        let section = match record.get("type").and_then(Value::as_str) {
            Some("profile") => "profileData",
            Some("event") => "evtData",
            _ => return Ok(Vec::new()),
        };
        let Some(Value::Object(data)) = record.remove(section) else {
            return Ok(Vec::new());
        };
        let Some(Value::Object(mut data)) = prune(Value::Object(data)) else {
            return Ok(Vec::new());
        };
        let mut drops = Vec::new();
        let keys: Vec<String> = data.keys().cloned().collect();
        for key in keys {
            let Some(value) = data.get(&key) else {
                continue;
            };
            let outcome = if section == "profileData" {
                self.reserved(&key, value)
            } else {
                Fixed::Keep
            };
            let outcome = match outcome {
                Fixed::Keep if value.as_str().is_some_and(|s| s.len() > MAX_VALUE_BYTES) => {
                    Fixed::Invalid(format!("value longer than {MAX_VALUE_BYTES} bytes"))
                }
                other => other,
            };
            match outcome {
                Fixed::Keep => {}
                Fixed::Replace(new) => {
                    data.insert(key, new);
                }
                Fixed::Invalid(rule) => {
                    let reason = format!("{section}.{key}: {rule}");
                    if self.policy == OnInvalidField::Dead {
                        return Err(reason);
                    }
                    let raw = value
                        .as_str()
                        .map_or_else(|| value.to_string(), str::to_string);
                    drops.push((format!("{section}.{key}"), raw, reason));
                    data.remove(&key);
                }
            }
        }
        if !data.is_empty() {
            record.insert(section.to_string(), Value::Object(data));
        }
        Ok(drops)
    }

    fn reserved(&self, key: &str, value: &Value) -> Fixed {
        let text = value.as_str().map(str::trim);
        match key {
            "Phone" => {
                let raw = text
                    .map(str::to_string)
                    .or_else(|| value.as_number().map(ToString::to_string));
                match raw.and_then(|r| phones::to_e164(&r, self.region)) {
                    Some(e164) => Fixed::Replace(Value::String(e164)),
                    None => Fixed::Invalid(
                        "Phone must be a phone number in E.164 (CleverTap 516)".into(),
                    ),
                }
            }
            "DOB" => match self.dates.epoch_of_json(value) {
                Some(epoch) => Fixed::Replace(Value::String(format!("$D_{epoch}"))),
                None => Fixed::Invalid(
                    "DOB must be a date: account format, ISO 8601, epoch seconds or $D_".into(),
                ),
            },
            "Email" => match text.filter(|t| is_email(t)) {
                Some(t) => Fixed::Replace(Value::String(t.to_string())),
                None => Fixed::Invalid("Email must be a valid address (CleverTap 515)".into()),
            },
            "Gender" => enumerated(
                value,
                &[("M", &["m", "male"]), ("F", &["f", "female"])],
                "Gender must be M or F (CleverTap 514)",
            ),
            "Employed" => yes_no(value, "Employed must be Y or N (CleverTap 517)"),
            "Married" => yes_no(value, "Married must be Y or N (CleverTap 519)"),
            "Education" => enumerated(
                value,
                &[
                    ("School", &["school"]),
                    ("College", &["college"]),
                    ("Graduate", &["graduate"]),
                ],
                "Education must be School, College or Graduate (CleverTap 518)",
            ),
            "Age" => match (value.as_number(), text.and_then(|t| t.parse::<u32>().ok())) {
                (Some(n), _) if n.as_f64().is_some_and(|f| (0.0..200.0).contains(&f)) => {
                    Fixed::Keep
                }
                (_, Some(age)) if age < 200 => Fixed::Replace(Value::from(age)),
                _ => Fixed::Invalid("Age must be a number (CleverTap 520)".into()),
            },
            _ => Fixed::Keep,
        }
    }
}

enum Fixed {
    Keep,
    Replace(Value),
    Invalid(String),
}

fn enumerated(value: &Value, options: &[(&str, &[&str])], rule: &str) -> Fixed {
    let text = value.as_str().map(|s| s.trim().to_lowercase());
    let found = options
        .iter()
        .find(|(_, words)| text.as_deref().is_some_and(|t| words.contains(&t)));
    match found {
        Some((canonical, _)) => Fixed::Replace(Value::String((*canonical).to_string())),
        None => Fixed::Invalid(rule.to_string()),
    }
}

fn yes_no(value: &Value, rule: &str) -> Fixed {
    if let Some(b) = value.as_bool() {
        return Fixed::Replace(Value::String(if b { "Y" } else { "N" }.into()));
    }
    enumerated(
        value,
        &[("Y", &["y", "yes", "true"]), ("N", &["n", "no", "false"])],
        rule,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn normalizer(policy: OnInvalidField) -> Normalizer {
        Normalizer {
            dates: Arc::new(DateParser::new("%d-%m-%Y %H:%M:%S", chrono_tz::UTC)),
            region: phones::parse_region("US").unwrap(),
            policy,
        }
    }

    fn profile(data: Value) -> Map<String, Value> {
        let Value::Object(map) = json!({"type": "profile", "identity": "a", "profileData": data})
        else {
            unreachable!()
        };
        map
    }

    #[test]
    fn reserved_fields_are_normalized_or_dropped() {
        let long = "x".repeat(513);
        let cases: Vec<(&str, Value, Option<Value>, usize)> = vec![
            (
                "phone to e164",
                json!({"Phone": "(415) 555-0100"}),
                Some(json!({"Phone": "+14155550100"})),
                0,
            ),
            (
                "numeric phone",
                json!({"Phone": 14155550100_i64}),
                Some(json!({"Phone": "+14155550100"})),
                0,
            ),
            (
                "bad phone dropped",
                json!({"Phone": "555-0199", "Name": "R"}),
                Some(json!({"Name": "R"})),
                1,
            ),
            (
                "dob account format",
                json!({"DOB": "14-03-1990"}),
                Some(json!({"DOB": "$D_637372800"})),
                0,
            ),
            (
                "dob iso",
                json!({"DOB": "1990-03-14"}),
                Some(json!({"DOB": "$D_637372800"})),
                0,
            ),
            (
                "dob epoch number",
                json!({"DOB": 637_372_800}),
                Some(json!({"DOB": "$D_637372800"})),
                0,
            ),
            (
                "dob already $D_",
                json!({"DOB": "$D_637372800"}),
                Some(json!({"DOB": "$D_637372800"})),
                0,
            ),
            ("bad dob dropped", json!({"DOB": "soon"}), None, 1),
            (
                "email trimmed",
                json!({"Email": " a@example.com "}),
                Some(json!({"Email": "a@example.com"})),
                0,
            ),
            ("bad email dropped", json!({"Email": "$$$$$"}), None, 1),
            (
                "gender words",
                json!({"Gender": "Female"}),
                Some(json!({"Gender": "F"})),
                0,
            ),
            ("bad gender dropped", json!({"Gender": "X"}), None, 1),
            (
                "employed bool",
                json!({"Employed": true}),
                Some(json!({"Employed": "Y"})),
                0,
            ),
            (
                "married no",
                json!({"Married": "no"}),
                Some(json!({"Married": "N"})),
                0,
            ),
            ("bad married dropped", json!({"Married": "maybe"}), None, 1),
            (
                "education case",
                json!({"Education": "graduate"}),
                Some(json!({"Education": "Graduate"})),
                0,
            ),
            (
                "bad education dropped",
                json!({"Education": "PhD"}),
                None,
                1,
            ),
            (
                "age text",
                json!({"Age": "18"}),
                Some(json!({"Age": 18})),
                0,
            ),
            ("bad age dropped", json!({"Age": "aa"}), None, 1),
            ("long value dropped", json!({"Notes": long}), None, 1),
            (
                "empties pruned",
                json!({"Phone": "", "Amount": null}),
                None,
                0,
            ),
        ];
        for (name, data, want, dropped) in cases {
            let mut record = profile(data);
            let drops = normalizer(OnInvalidField::Drop)
                .normalize(&mut record)
                .unwrap();
            assert_eq!(record.get("profileData"), want.as_ref(), "case {name}");
            assert_eq!(drops.len(), dropped, "case {name}: drops {drops:?}");
        }
    }

    #[test]
    fn dead_policy_names_the_rule() {
        let mut record = profile(json!({"Phone": "555-0199"}));
        let err = normalizer(OnInvalidField::Dead)
            .normalize(&mut record)
            .unwrap_err();
        assert!(
            err.contains("profileData.Phone") && err.contains("516"),
            "case dead phone: {err}"
        );
        assert!(
            !err.contains("555"),
            "case dead phone carries no value: {err}"
        );
    }
}
