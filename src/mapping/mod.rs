//! Maps a webhook body to CleverTap upload records through a route's compiled template.
//!
//! A template is JSON shaped like the records: `{"d":[…]}` (CleverTap's own payloads work
//! verbatim), a bare array of records, or one record object. String values may hold minijinja
//! expressions; a string that is exactly one `{{ … }}` keeps the value's JSON type, mixed text
//! renders a string, and whatever renders empty (or undefined) is omitted so a blank Freshsales
//! field never wipes a CleverTap property. Mixed text in which every interpolation was blank is
//! omitted too (`"account-{{ id }}"` without an id sends nothing rather than `"account-"`).
//!
//! **Conditional records**: a record may carry `"$when": "{{ expr }}"`; when it renders falsy
//! (false, empty, undefined, `0`, `"false"`, `"no"`) the record is [`RecordOutcome::Skip`].
//! `$when` is never sent.
//!
//! The context holds the body's fields by name, the same without the module prefix when that is
//! unambiguous, nested objects as given, and the route's aliases. Filters: `date`, `epoch` (epoch
//! seconds as an integer, e.g. for `ts`), `phone`, `lower`, `trim`, `int`, `float`, `bool`,
//! `default`, `split`, plus minijinja's built-ins. After rendering, reserved fields are normalized
//! and every record is validated.
//!
//! **Passthrough bodies** (`{"d":[…]}`) are not normalized: each record is judged by CleverTap's
//! own rules (`upload_rules`), altered only by repairs that keep the sender's meaning, or
//! [`RecordOutcome::Refused`] with CleverTap's code and text.

mod context;
mod dates;
mod dedup;
mod deletion;
mod error;
mod filters;
mod global;
pub use global::check_settings;
mod normalize;
mod order_keys;
mod phones;
pub use phones::warm_up;
mod repair;
mod sink;
mod template;
mod upload_rules;
mod validate;

pub use dedup::{dedup_safe, record_dedup_safe};
pub use deletion::{GUID, IDENTITY, parts as deletion_parts};
pub use error::MappingError;
pub use order_keys::{OrderKeys, upload_order_key};
pub use repair::repair_json;
pub use upload_rules::Judged;

use std::collections::BTreeMap;
use std::sync::Arc;

use minijinja::{AutoEscape, Environment, UndefinedBehavior, Value};

use normalize::Normalizer;
use template::{Compiler, RecordTemplate, Renderer};

const NOT_UPLOAD: &str = "body is not a CleverTap upload ({\"d\":[…]})";

pub use crate::config::{MappingSettings, Mode, OnInvalidField};

/// A route's compiled mapping; shared read-only across tasks.
pub struct RouteMapping {
    route: String,
    mode: Mode,
    file: Option<String>,
    env: Environment<'static>,
    records: Vec<RecordTemplate>,
    /// Per record, its identity read without the template engine, where it can be.
    direct_ids: Vec<Option<order_keys::DirectId>>,
    aliases: BTreeMap<String, Vec<String>>,
    normalizer: Normalizer,
}

impl std::fmt::Debug for RouteMapping {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RouteMapping")
            .field("route", &self.route)
            .field("mode", &self.mode)
            .field("file", &self.file)
            .field("records", &self.records.len())
            .finish_non_exhaustive()
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Rendered {
    pub records: Vec<RecordOutcome>,
    pub dropped: Vec<DroppedField>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum RecordOutcome {
    /// A CleverTap record ready for the `d` array.
    Send(serde_json::Value),
    /// A conditional record that does not apply to this body: nothing to send, counts as done.
    Skip,
    /// Template routes: `code` is `render_error` or `invalid_record`; `reason` names the rule,
    /// never a value.
    Dead { code: &'static str, reason: String },
    /// A passthrough record CleverTap would refuse: CleverTap's code and its `error` text
    /// without the "Skipped record number : k" suffix, which the caller adds with the record's
    /// 1-based position. Names keys, never values.
    Refused { code: u16, error: String },
}

/// A passthrough record as it is sent, or as CleverTap refuses it.
impl From<upload_rules::Judged> for RecordOutcome {
    fn from(judged: upload_rules::Judged) -> Self {
        match judged {
            Ok(map) => Self::Send(serde_json::Value::Object(map)),
            Err(refused) => Self::Refused {
                code: refused.code,
                error: refused.error,
            },
        }
    }
}

/// A field left out of a sent record. `value` is raw: the caller masks it before logging and
/// counts `freshtap_fields_dropped_total{field}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DroppedField {
    pub record_index: usize,
    /// Key path inside the record, e.g. `profileData.Phone`.
    pub field: String,
    pub value: String,
    pub reason: String,
}

impl RouteMapping {
    /// `template` = (file name for messages, source text); None when the route has no template
    /// (then only passthrough bodies can be rendered). `aliases`: template name → webhook field
    /// names tried in order. `date_format`: per-route override. Returns every problem found.
    pub fn compile(
        route: &str,
        mode: Mode,
        template: Option<(&str, &str)>,
        aliases: &BTreeMap<String, Vec<String>>,
        date_format: Option<&str>,
        settings: &MappingSettings,
    ) -> Result<RouteMapping, Vec<MappingError>> {
        let mut errors = Vec::new();
        let tz = settings
            .timezone
            .parse::<chrono_tz::Tz>()
            .unwrap_or_else(|_| {
                errors.push(MappingError::Timezone {
                    route: route.into(),
                    value: settings.timezone.clone(),
                });
                chrono_tz::UTC
            });
        let region = phones::parse_region(&settings.default_region).unwrap_or_else(|| {
            errors.push(MappingError::Region {
                route: route.into(),
                value: settings.default_region.clone(),
            });
            phones::Region::US
        });
        let format = date_format.unwrap_or(&settings.date_format);
        if !dates::format_is_valid(format) {
            errors.push(MappingError::DateFormat {
                route: route.into(),
                value: format.into(),
            });
        }
        for (name, targets) in aliases {
            if targets.iter().all(|t| t.trim().is_empty()) {
                errors.push(MappingError::Alias {
                    route: route.into(),
                    name: name.clone(),
                });
            }
        }
        let dates = Arc::new(dates::DateParser::new(format, tz));
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Chainable);
        env.set_auto_escape_callback(|_| AutoEscape::None);
        filters::register(&mut env, Arc::clone(&dates), region);
        let mut records = Vec::new();
        if let Some((file, source)) = template {
            let mut compiler = Compiler::new(&mut env, file, source);
            records = compiler.records();
            errors.append(&mut compiler.errors);
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(RouteMapping {
            route: route.into(),
            mode,
            file: template.map(|(file, _)| file.to_string()),
            direct_ids: order_keys::direct_ids(&records, mode, &env),
            env,
            records,
            aliases: aliases.clone(),
            normalizer: Normalizer {
                dates,
                region,
                policy: settings.on_invalid_field,
            },
        })
    }

    fn passes_through(&self, body: &serde_json::Value) -> bool {
        upload(body).is_some() && self.passes_uploads_through()
    }

    /// True for a deletion route (`mode = "delete"`): its records are profiles to delete.
    pub fn is_deletion(&self) -> bool {
        self.mode == Mode::Delete
    }

    /// Renders a parsed body into records whose indexes are stable for a body and template.
    pub fn render(&self, body: &serde_json::Value, received_at: i64) -> Rendered {
        let mut rendered = Rendered {
            records: Vec::new(),
            dropped: Vec::new(),
        };
        if self.mode == Mode::Delete && self.file.is_none() {
            rendered.records = deletion::from_body(body);
        } else if self.passes_through(body) {
            rendered.records = self.judged(body, received_at, RecordOutcome::from);
        } else if self.mode == Mode::Passthrough {
            rendered
                .records
                .push(dead("invalid_record", NOT_UPLOAD.into()));
        } else if self.file.is_none() {
            let reason = format!(
                "route {} has no template, so only {{\"d\":[…]}} bodies can be rendered",
                self.route
            );
            rendered.records.push(dead("render_error", reason));
        } else {
            let mut renderer = self.renderer(body);
            for (index, record) in self.records.iter().enumerate() {
                renderer.drops.clear();
                let outcome = match render_record(&mut renderer, record) {
                    Ok(Some(map)) if self.mode == Mode::Delete => deletion::from_record(map),
                    Ok(Some(map)) => {
                        let drops = std::mem::take(&mut renderer.drops)
                            .into_iter()
                            .map(|(field, d)| (field, d.value, d.reason))
                            .collect();
                        self.finish(map, index, received_at, drops, &mut rendered.dropped)
                    }
                    Ok(None) => RecordOutcome::Skip,
                    Err(reason) => dead("render_error", reason),
                };
                rendered.records.push(outcome);
            }
        }
        rendered
    }

    /// Each record of a `{"d":[…]}` body judged by CleverTap's rules and handed to `keep` at
    /// once, so only one repaired record is alive at a time.
    pub fn judged<T>(
        &self,
        body: &serde_json::Value,
        received_at: i64,
        keep: impl FnMut(upload_rules::Judged) -> T,
    ) -> Vec<T> {
        upload(body)
            .into_iter()
            .flatten()
            .map(|record| self.judge_record(record.clone(), received_at))
            .map(keep)
            .collect()
    }

    /// Whether this route sends the records of a `{"d":[…]}` body as they are (judged by
    /// CleverTap's rules) rather than through a template.
    pub fn passes_uploads_through(&self) -> bool {
        self.mode != Mode::Delete && (self.mode != Mode::Template || self.file.is_none())
    }

    /// One record of an upload judged by CleverTap's rules: as it would be sent (repaired), or
    /// CleverTap's refusal.
    pub fn judge_record(
        &self,
        record: serde_json::Value,
        received_at: i64,
    ) -> upload_rules::Judged {
        let repairs = upload_rules::Repairs {
            dates: &self.normalizer.dates,
            region: self.normalizer.region,
        };
        upload_rules::judge(record, received_at, &repairs)
    }

    fn renderer(&self, body: &serde_json::Value) -> Renderer<'_> {
        let sink = Arc::new(sink::RenderSink::default());
        let mut fields = context::fields(body, &self.aliases);
        fields.insert(
            sink::SINK_KEY.to_string(),
            Value::from_dyn_object(Arc::clone(&sink)),
        );
        Renderer {
            env: &self.env,
            file: self.file.as_deref().unwrap_or(""),
            ctx: Value::from_pairs(fields),
            sink,
            drops: Vec::new(),
        }
    }

    /// Validation, then normalization of a template's record; drops count only for records
    /// that are sent.
    fn finish(
        &self,
        mut map: serde_json::Map<String, serde_json::Value>,
        index: usize,
        received_at: i64,
        mut drops: Vec<normalize::Dropped>,
        dropped: &mut Vec<DroppedField>,
    ) -> RecordOutcome {
        if let Err(rule) = validate::check(&mut map, received_at) {
            return dead("invalid_record", rule);
        }
        match self.normalizer.normalize(&mut map) {
            Ok(more) => drops.extend(more),
            Err(rule) => return dead("invalid_record", rule),
        }
        dropped.extend(
            drops
                .into_iter()
                .map(|(field, value, reason)| DroppedField {
                    record_index: index,
                    field,
                    value,
                    reason,
                }),
        );
        RecordOutcome::Send(serde_json::Value::Object(map))
    }
}

/// Ok(None) when the record's `$when` is falsy.
fn render_record(
    renderer: &mut Renderer<'_>,
    record: &RecordTemplate,
) -> Result<Option<serde_json::Map<String, serde_json::Value>>, String> {
    if let Some(when) = &record.when
        && !truthy(
            renderer
                .node(when, &record.path, template::WHEN_KEY)?
                .as_ref(),
        )
    {
        return Ok(None);
    }
    renderer.fields(&record.fields, &record.path, "").map(Some)
}

fn truthy(value: Option<&serde_json::Value>) -> bool {
    match value {
        None | Some(serde_json::Value::Null) => false,
        Some(serde_json::Value::Bool(b)) => *b,
        Some(serde_json::Value::Number(n)) => n.as_f64().is_some_and(|f| f != 0.0),
        Some(serde_json::Value::String(s)) => !matches!(
            s.trim().to_ascii_lowercase().as_str(),
            "" | "false" | "0" | "no" | "off" | "none"
        ),
        Some(_) => true,
    }
}

fn upload(body: &serde_json::Value) -> Option<&Vec<serde_json::Value>> {
    body.as_object()?.get("d")?.as_array()
}

fn dead(code: &'static str, reason: String) -> RecordOutcome {
    RecordOutcome::Dead { code, reason }
}

#[cfg(test)]
pub(crate) mod tests;
