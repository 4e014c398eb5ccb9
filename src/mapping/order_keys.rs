//! Order keys for per-identity ordering: the identities of a body's records, normalized as
//! the queue compares them. An identity written `{{ name }}` (with `trim` and `lower` at most)
//! is read straight from the body; any other expression goes through the template engine.

use std::collections::{BTreeMap, HashSet};

use minijinja::Environment;

use super::context::{Lookup, lookup};
use super::template::{Node, RecordTemplate};
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
            self.template_keys(body, &mut keys, true);
        }
        keys.into_vec()
    }

    /// The template's identities; `direct`: read `{{ name }}` identities without the engine.
    fn template_keys(&self, body: &serde_json::Value, keys: &mut OrderKeys, direct: bool) {
        // The whole context is built only when an identity needs the template engine.
        let mut renderer = None;
        for (record, read) in self.records.iter().zip(&self.direct_ids) {
            let Some(node) = id_node(record, self.mode) else {
                continue;
            };
            let read = read.as_ref().filter(|_| direct);
            let key = match read.and_then(|d| d.key(body, &self.aliases)) {
                Some(key) => key,
                None => order_key(
                    renderer
                        .get_or_insert_with(|| self.renderer(body))
                        .node(node, &record.path, "identity")
                        .ok()
                        .flatten()
                        .as_ref(),
                ),
            };
            if let Some(key) = key {
                keys.push(key);
            }
        }
    }

    /// A template's order keys, every identity rendered by the template engine: the oracle
    /// the direct reading is tested against.
    #[cfg(test)]
    pub(crate) fn rendered_order_keys(&self, body: &serde_json::Value) -> Vec<String> {
        let mut keys = OrderKeys::default();
        self.template_keys(body, &mut keys, false);
        keys.into_vec()
    }
}

/// The node a record's order key is rendered from: its id, or a deletion's GUID.
fn id_node(record: &RecordTemplate, mode: Mode) -> Option<&Node> {
    let guid = (mode == Mode::Delete)
        .then(|| record.field_node(deletion::GUID))
        .flatten();
    record.id_node().or(guid)
}

/// Per record, its identity when it can be read without the template engine.
pub(super) fn direct_ids(
    records: &[RecordTemplate],
    mode: Mode,
    env: &Environment<'static>,
) -> Vec<Option<DirectId>> {
    records
        .iter()
        .map(|record| match id_node(record, mode) {
            Some(Node::Expr(_, source)) => DirectId::parse(source, env),
            _ => None,
        })
        .collect()
}

/// Names the template language reads as literals or as its own, never as a body field.
const RESERVED: [&str; 12] = [
    "true", "false", "none", "True", "False", "None", "self", "loop", "super", "caller", "varargs",
    "kwargs",
];

/// An identity expression `{{ name }}`, `{{ name | trim | lower }}` (any of those filters, in
/// any order): the body's field under `name`, as the template engine would give it.
#[derive(Debug)]
pub(super) struct DirectId {
    name: String,
    filters: Vec<TextFilter>,
}

/// The filters a direct identity may carry, applied as `filters.rs` applies them.
#[derive(Clone, Copy, Debug)]
enum TextFilter {
    Trim,
    Lower,
}

impl DirectId {
    fn parse(source: &str, env: &Environment<'static>) -> Option<Self> {
        let inner = template::single_expression(source)?;
        let mut parts = inner.split('|').map(str::trim);
        let name = parts.next()?;
        let mut chars = name.chars();
        let identifier = chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
        // A global of the environment would be found when the body has no such field.
        if !identifier || RESERVED.contains(&name) || env.globals().any(|(g, _)| g == name) {
            return None;
        }
        let filters = parts
            .map(|filter| match filter {
                "lower" => Some(TextFilter::Lower),
                "trim" => Some(TextFilter::Trim),
                _ => None,
            })
            .collect::<Option<Vec<_>>>()?;
        Some(Self {
            name: name.to_string(),
            filters,
        })
    }

    /// The order key (None: the record has none), or None when only the template engine can
    /// tell: a value that is not text, an alias of an alias.
    fn key(
        &self,
        body: &serde_json::Value,
        aliases: &BTreeMap<String, Vec<String>>,
    ) -> Option<Option<String>> {
        match lookup(body, &self.name, aliases) {
            Lookup::Missing => Some(None),
            Lookup::Unknown => None,
            Lookup::Found(serde_json::Value::String(text)) => {
                // The filters as `filters.rs` applies them, then the key's own trim and lower.
                let mut text = text.clone();
                for filter in &self.filters {
                    text = match filter {
                        TextFilter::Lower => text.to_lowercase(),
                        TextFilter::Trim => text.trim().to_string(),
                    };
                }
                Some(text_key(&text))
            }
            Lookup::Found(_) => None,
        }
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
    match value {
        Some(serde_json::Value::String(s)) => text_key(s),
        Some(serde_json::Value::Number(n)) => Some(n.to_string()),
        _ => None,
    }
}

/// A text identity as an order key: trimmed and lowercased; nothing when blank.
fn text_key(text: &str) -> Option<String> {
    let key = text.trim().to_lowercase();
    (!key.is_empty()).then_some(key)
}

fn is_usable_id(value: &serde_json::Value) -> bool {
    value.as_str().is_some_and(|s| !s.trim().is_empty()) || value.is_number()
}
