//! Compiles a JSON template into literals and minijinja expressions, and renders it to JSON
//! records, keeping a lone expression's type and omitting what renders empty.

use std::collections::BTreeMap;
use std::sync::Arc;

use minijinja::value::Value;
use minijinja::{Environment, ErrorKind};

use super::MappingError;
use super::context::{prune, value_to_json};
use super::filters::OWN_FILTERS;
use super::sink::{FilterDrop, RenderSink};

/// The variable a lone expression is assigned to, so its value keeps its type.
const VALUE_VAR: &str = "__freshtap_value";
/// Key of a record's condition; never sent.
pub(crate) const WHEN_KEY: &str = "$when";
pub(crate) const ID_KEYS: [&str; 4] = ["identity", "objectId", "FBID", "GPID"];

#[derive(Debug)]
pub(crate) enum Node {
    Literal(serde_json::Value),
    /// A string that is exactly one `{{ … }}`: name of its compiled template, and its source.
    Expr(String, String),
    /// Mixed text: name of its compiled template, and its source.
    Text(String, String),
    Array(Vec<Node>),
    Object(Vec<(String, Node)>),
}

#[derive(Debug)]
pub(crate) struct RecordTemplate {
    /// Where the record sits in the file, e.g. `d[0]`; empty for a single-record template.
    pub path: String,
    pub when: Option<Node>,
    pub fields: Vec<(String, Node)>,
}

impl RecordTemplate {
    pub(crate) fn id_node(&self) -> Option<&Node> {
        ID_KEYS.iter().find_map(|id| self.field_node(id))
    }

    /// The node of one top-level field.
    pub(crate) fn field_node(&self, key: &str) -> Option<&Node> {
        self.fields.iter().find(|(k, _)| k == key).map(|(_, n)| n)
    }
}

pub(crate) fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

pub(crate) struct Compiler<'a> {
    pub env: &'a mut Environment<'static>,
    pub file: &'a str,
    pub source: &'a str,
    pub errors: Vec<MappingError>,
    probed: BTreeMap<String, bool>,
}

impl<'a> Compiler<'a> {
    pub(crate) fn new(env: &'a mut Environment<'static>, file: &'a str, source: &'a str) -> Self {
        Self {
            env,
            file,
            source,
            errors: Vec::new(),
            probed: BTreeMap::new(),
        }
    }

    /// The records of a template: `{"d":[…]}`, a bare array of records, or one record object.
    pub(crate) fn records(&mut self) -> Vec<RecordTemplate> {
        let document: serde_json::Value = match serde_json::from_str(self.source) {
            Ok(doc) => doc,
            Err(e) => {
                self.errors.push(MappingError::Json {
                    file: self.file.to_string(),
                    line: e.line(),
                    column: e.column(),
                    // serde_json appends "at line L column C"; the variant already says where.
                    message: e
                        .to_string()
                        .split(" at line ")
                        .next()
                        .unwrap_or_default()
                        .to_string(),
                });
                return Vec::new();
            }
        };
        let (prefix, items) = match document {
            serde_json::Value::Object(mut map)
                if map.len() == 1 && map.get("d").is_some_and(|d| d.is_array()) =>
            {
                match map.remove("d") {
                    Some(serde_json::Value::Array(items)) => ("d", items),
                    _ => ("d", Vec::new()),
                }
            }
            serde_json::Value::Array(items) => ("", items),
            object @ serde_json::Value::Object(_) => {
                return self.record(String::new(), object).into_iter().collect();
            }
            _ => {
                self.shape("", "a template must be {\"d\":[records]}, an array of records or one record object");
                return Vec::new();
            }
        };
        if items.is_empty() {
            self.shape(prefix, "the template has no records");
        }
        let records = items
            .into_iter()
            .enumerate()
            .filter_map(|(i, item)| self.record(format!("{prefix}[{i}]"), item));
        records.collect()
    }

    fn record(&mut self, path: String, value: serde_json::Value) -> Option<RecordTemplate> {
        let serde_json::Value::Object(map) = value else {
            self.shape(&path, "a record must be a JSON object");
            return None;
        };
        let mut when = None;
        let mut fields = Vec::new();
        for (key, value) in map {
            let key_path = join(&path, &key);
            if key == WHEN_KEY {
                if !(value.is_string() || value.is_boolean()) {
                    self.shape(
                        &key_path,
                        "`$when` must be a string expression or a boolean",
                    );
                }
                when = Some(self.node(&key_path, value));
            } else {
                fields.push((key, self.node(&key_path, value)));
            }
        }
        Some(RecordTemplate { path, when, fields })
    }

    fn node(&mut self, path: &str, value: serde_json::Value) -> Node {
        match value {
            serde_json::Value::String(s) => self.string(path, s),
            serde_json::Value::Array(items) => Node::Array(
                items
                    .into_iter()
                    .enumerate()
                    .map(|(i, v)| self.node(&format!("{path}[{i}]"), v))
                    .collect(),
            ),
            serde_json::Value::Object(map) => Node::Object(
                map.into_iter()
                    .map(|(k, v)| {
                        let p = join(path, &k);
                        (k, self.node(&p, v))
                    })
                    .collect(),
            ),
            other => Node::Literal(other),
        }
    }

    fn string(&mut self, path: &str, text: String) -> Node {
        if !["{{", "{%", "{#"].iter().any(|m| text.contains(m)) {
            return Node::Literal(serde_json::Value::String(text));
        }
        let name = format!("{}#{path}", self.file);
        let (compiled, node) = match single_expression(&text) {
            Some(expr) => (
                format!("{{% set {VALUE_VAR} = ({expr}) %}}"),
                Node::Expr(name.clone(), text.clone()),
            ),
            None => (text.clone(), Node::Text(name.clone(), text.clone())),
        };
        if let Err(wrapped) = self.env.add_template_owned(name, compiled) {
            // The single-expression form compiles wrapped in `{% set … %}`: the error is told
            // against the text the user wrote, quoted, when that alone fails too.
            let own = minijinja::Environment::new();
            let e = own.template_from_str(&text).err().unwrap_or(wrapped);
            self.errors.push(MappingError::Expression {
                file: self.file.to_string(),
                path: path.to_string(),
                line: self
                    .line_of(&text)
                    .map(|l| l + e.line().unwrap_or(1).saturating_sub(1)),
                message: format!("{} in {text:?}", describe(&e)),
            });
        }
        for filter in filter_names(&text) {
            if !self.filter_exists(&filter) {
                self.errors.push(MappingError::UnknownFilter {
                    file: self.file.to_string(),
                    path: path.to_string(),
                    line: self.line_of(&text),
                    filter,
                });
            }
        }
        node
    }

    /// Built-in filters cannot be listed, so an unknown name is found by trying it once.
    fn filter_exists(&mut self, name: &str) -> bool {
        if OWN_FILTERS.contains(&name) {
            return true;
        }
        if let Some(known) = self.probed.get(name) {
            return *known;
        }
        let probe = self.env.render_str(&format!("{{{{ none | {name} }}}}"), ());
        let known = !matches!(&probe, Err(e) if e.kind() == ErrorKind::UnknownFilter);
        self.probed.insert(name.to_string(), known);
        known
    }

    /// Line of a string in the source, when it occurs there exactly once.
    fn line_of(&self, text: &str) -> Option<usize> {
        let needle = serde_json::to_string(text).ok()?;
        let mut hits = self.source.match_indices(&needle);
        let (first, _) = hits.next()?;
        hits.next()
            .is_none()
            .then(|| self.source[..first].matches('\n').count() + 1)
    }

    fn shape(&mut self, path: &str, message: &str) {
        self.errors.push(MappingError::Shape {
            file: self.file.to_string(),
            path: if path.is_empty() {
                "(root)".to_string()
            } else {
                path.to_string()
            },
            message: message.to_string(),
        });
    }
}

/// The inside of a string that is exactly one `{{ … }}` (whitespace control allowed).
pub(crate) fn single_expression(text: &str) -> Option<&str> {
    let inner = text.strip_prefix("{{")?.strip_suffix("}}")?;
    let inner = inner.strip_prefix('-').unwrap_or(inner);
    let inner = inner.strip_suffix('-').unwrap_or(inner);
    let nested = ["{{", "}}", "{%", "%}", "{#", "#}"]
        .iter()
        .any(|m| inner.contains(m));
    (!nested && !inner.trim().is_empty()).then_some(inner)
}

fn describe(e: &minijinja::Error) -> String {
    match e.detail() {
        Some(detail) => format!("{}: {detail}", e.kind()),
        None => e.kind().to_string(),
    }
}

/// Renders nodes against one body's context, collecting the values filters dropped.
pub(crate) struct Renderer<'a> {
    pub env: &'a Environment<'static>,
    pub file: &'a str,
    pub ctx: Value,
    pub sink: Arc<RenderSink>,
    /// (key path inside the record, drop) pairs.
    pub drops: Vec<(String, FilterDrop)>,
}

impl Renderer<'_> {
    /// `record_path` names the record in messages (`d[0]`); `key` is the path inside it.
    pub(crate) fn node(
        &mut self,
        node: &Node,
        record_path: &str,
        key: &str,
    ) -> Result<Option<serde_json::Value>, String> {
        match node {
            Node::Literal(v) => Ok(prune(v.clone())),
            Node::Expr(name, source) => {
                let result = self.env.get_template(name).and_then(|t| {
                    t.render_captured(self.ctx.clone())
                        .map(|c| c.state().lookup(VALUE_VAR))
                });
                let (drops, _, _) = self.sink.take();
                self.note(key, drops);
                let value =
                    result.map_err(|e| self.error(record_path, key, source, &describe(&e)))?;
                value_to_json(&value.unwrap_or(Value::UNDEFINED))
                    .map_err(|m| self.error(record_path, key, source, &m))
            }
            Node::Text(name, source) => {
                let result = self
                    .env
                    .get_template(name)
                    .and_then(|t| t.render(self.ctx.clone()));
                let (drops, printed, blank) = self.sink.take();
                self.note(key, drops);
                let out =
                    result.map_err(|e| self.error(record_path, key, source, &describe(&e)))?;
                let all_blank = printed > 0 && printed == blank;
                Ok(
                    (!out.trim().is_empty() && !all_blank)
                        .then_some(serde_json::Value::String(out)),
                )
            }
            Node::Array(items) => {
                let mut out = Vec::new();
                for (i, item) in items.iter().enumerate() {
                    out.extend(self.node(item, record_path, &format!("{key}[{i}]"))?);
                }
                Ok((!out.is_empty()).then_some(serde_json::Value::Array(out)))
            }
            Node::Object(fields) => {
                let object = self.fields(fields, record_path, key)?;
                Ok((!object.is_empty()).then_some(serde_json::Value::Object(object)))
            }
        }
    }

    pub(crate) fn fields(
        &mut self,
        fields: &[(String, Node)],
        record_path: &str,
        key: &str,
    ) -> Result<serde_json::Map<String, serde_json::Value>, String> {
        let mut object = serde_json::Map::new();
        for (name, node) in fields {
            if let Some(value) = self.node(node, record_path, &join(key, name))? {
                object.insert(name.clone(), value);
            }
        }
        Ok(object)
    }

    fn note(&mut self, key: &str, drops: Vec<FilterDrop>) {
        self.drops
            .extend(drops.into_iter().map(|d| (key.to_string(), d)));
    }

    /// Names file, key path, expression and its filters; never the values.
    fn error(&self, record_path: &str, key: &str, source: &str, message: &str) -> String {
        let filters = filter_names(source);
        let filters = if filters.is_empty() {
            String::new()
        } else {
            format!(" (filters: {})", filters.join(", "))
        };
        format!(
            "{}: {}: {message} in `{source}`{filters}",
            self.file,
            join(record_path, key)
        )
    }
}

/// Filter names used in an expression, found by a small lexer that skips string literals, so
/// compile can report an unknown filter before any webhook hits it.
pub(crate) fn filter_names(source: &str) -> Vec<String> {
    let chars: Vec<char> = source.chars().collect();
    let mut names = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            quote @ ('"' | '\'') => {
                i += 1;
                while i < chars.len() && chars[i] != quote {
                    i += if chars[i] == '\\' { 2 } else { 1 };
                }
                i += 1;
            }
            '|' => {
                i += 1;
                while i < chars.len() && chars[i].is_whitespace() {
                    i += 1;
                }
                let start = i;
                while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                    i += 1;
                }
                if i > start {
                    names.push(chars[start..i].iter().collect());
                }
            }
            _ => i += 1,
        }
    }
    names
}
