//! Order keys for per-identity ordering: the identities of a body's records, normalized as
//! the queue compares them.

use std::collections::HashSet;

use super::{Mode, RouteMapping, deletion, template, upload};

/// Order keys as they are found, each once, in first-seen order (a hash set beside the list:
/// an upload names up to 1000 identities).
#[derive(Debug, Default)]
pub struct OrderKeys {
    keys: Vec<String>,
    seen: HashSet<String>,
}

impl OrderKeys {
    pub fn push(&mut self, key: String) {
        if !self.seen.contains(&key) {
            self.seen.insert(key.clone());
            self.keys.push(key);
        }
    }

    pub fn into_vec(self) -> Vec<String> {
        self.keys
    }
}

impl RouteMapping {
    /// Order keys for per-identity ordering: each record's id (identity, else objectId, else
    /// FBID/GPID) lowercased and trimmed, deduplicated; empty when none can be found.
    pub fn order_keys(&self, body: &serde_json::Value) -> Vec<String> {
        let mut keys = OrderKeys::default();
        let mut push = |value: Option<&serde_json::Value>| {
            if let Some(key) = order_key(value) {
                keys.push(key);
            }
        };
        if self.mode == Mode::Delete && self.file.is_none() {
            for value in deletion::body_keys(body) {
                push(Some(&value));
            }
        } else if self.passes_through(body) {
            for record in upload(body).into_iter().flatten() {
                push(upload_id(record));
            }
        } else if self.file.is_some() {
            let mut renderer = self.renderer(body);
            for record in &self.records {
                let guid = (self.mode == Mode::Delete)
                    .then(|| record.field_node(deletion::GUID))
                    .flatten();
                if let Some(node) = record.id_node().or(guid) {
                    push(
                        renderer
                            .node(node, &record.path, "identity")
                            .ok()
                            .flatten()
                            .as_ref(),
                    );
                }
            }
        }
        keys.into_vec()
    }
}

/// The order key of one record of an upload passed through (its first usable id), as
/// [`RouteMapping::order_keys`] gives it.
pub fn upload_order_key(record: &serde_json::Value) -> Option<String> {
    order_key(upload_id(record))
}

fn upload_id(record: &serde_json::Value) -> Option<&serde_json::Value> {
    template::ID_KEYS
        .iter()
        .find_map(|k| record.get(k).filter(|v| is_usable_id(v)))
}

/// An identity as an order key: trimmed and lowercased text, or a number; nothing when blank.
fn order_key(value: Option<&serde_json::Value>) -> Option<String> {
    let key = match value {
        Some(serde_json::Value::String(s)) => s.trim().to_lowercase(),
        Some(serde_json::Value::Number(n)) => n.to_string(),
        _ => return None,
    };
    (!key.is_empty()).then_some(key)
}

fn is_usable_id(value: &serde_json::Value) -> bool {
    value.as_str().is_some_and(|s| !s.trim().is_empty()) || value.is_number()
}
