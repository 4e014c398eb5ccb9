//! Rendering seam: a parsed webhook body → CleverTap records (passthrough until templates land).

use std::collections::BTreeMap;

use serde_json::Value;

pub struct MappingSettings {
    pub date_format: String,
    pub timezone: String,
    pub default_region: String,
    pub on_invalid_field: OnInvalidField,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnInvalidField {
    Drop,
    Dead,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    #[default]
    Auto,
    Template,
    Passthrough,
}

pub struct RouteMapping {
    mode: Mode,
}

pub struct Rendered {
    pub records: Vec<RecordOutcome>,
    pub dropped: Vec<DroppedField>,
}

pub enum RecordOutcome {
    Send(Value),
    Skip,
    Dead { code: &'static str, reason: String },
}

pub struct DroppedField {
    pub record_index: usize,
    pub field: String,
    pub value: String,
    pub reason: String,
}

#[derive(Debug, thiserror::Error)]
pub enum MappingError {
    #[error("{0}")]
    Template(String),
}

impl RouteMapping {
    pub fn compile(
        _route: &str,
        mode: Mode,
        _template: Option<(&str, &str)>,
        _aliases: &BTreeMap<String, Vec<String>>,
        _date_format: Option<&str>,
        _settings: &MappingSettings,
    ) -> Result<Self, Vec<MappingError>> {
        Ok(Self { mode })
    }

    pub fn order_keys(&self, body: &Value) -> Vec<String> {
        let mut keys: Vec<String> = upload_records(body)
            .into_iter()
            .flatten()
            .filter_map(identity_of)
            .collect();
        keys.sort();
        keys.dedup();
        keys
    }

    pub fn render(&self, body: &Value, received_at: i64) -> Rendered {
        let records = match (self.mode, upload_records(body)) {
            (Mode::Template, _) | (_, None) => vec![RecordOutcome::Dead {
                code: "render_error",
                reason: "body is not a CleverTap upload ({\"d\":[…]}) and templates are not available".into(),
            }],
            (_, Some(records)) => records.iter().map(|r| passthrough(r, received_at)).collect(),
        };
        Rendered { records, dropped: Vec::new() }
    }
}

fn upload_records(body: &Value) -> Option<&Vec<Value>> {
    body.get("d").and_then(Value::as_array)
}

fn identity_of(record: &Value) -> Option<String> {
    ["identity", "objectId", "FBID", "GPID"].iter().find_map(|key| {
        match record.get(*key)? {
            Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_lowercase()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    })
}

fn passthrough(record: &Value, received_at: i64) -> RecordOutcome {
    let Some(mut object) = record.as_object().cloned() else {
        return RecordOutcome::Dead { code: "invalid_record", reason: "record is not an object".into() };
    };
    match identity_of(record) {
        Some(id) if id.chars().count() < 120 => {}
        _ => {
            return RecordOutcome::Dead {
                code: "invalid_record",
                reason: "identity, objectId, FBID or GPID must be set, under 120 characters".into(),
            };
        }
    }
    object.entry("ts").or_insert_with(|| Value::from(received_at));
    RecordOutcome::Send(Value::Object(object))
}

/// Repairs unambiguous damage in Advanced-mode bodies; not available until templates land.
pub fn repair_json(_raw: &[u8]) -> Option<Vec<u8>> {
    None
}
