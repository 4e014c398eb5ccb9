//! Claimed rows → the records to send: each row rendered through its route (at delivery, so a
//! fixed template re-maps replayed rows), packed up to one request's caps; the rest go back.
//! Records of deletion routes become profile deletions, sent after the uploads in requests of
//! their own.

use serde_json::Value;

use crate::mapping::{RecordOutcome, Rendered, deletion_parts};
use crate::queue::{Claimed, DeadCode, NewDeadLetter};
use crate::state::AppState;
use crate::webhook;

/// One claimed row and what planning decided for its records.
pub(super) struct RowPlan {
    pub row: Claimed,
    pub delivered: Vec<u32>,
    pub dead: Vec<NewDeadLetter>,
    /// False when the row did not fit this delivery: it goes back untouched.
    pub taken: bool,
}

/// Which request a record goes in: an upload, or a profile deletion keyed by `identity` or
/// `guid` (a request names profiles by one key only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Op {
    Upload,
    Delete(&'static str),
}

/// A record ready to send.
pub(super) struct Item {
    /// Index into `Plan::rows`.
    pub row: usize,
    pub index: u32,
    pub op: Op,
    /// What CleverTap's answer is matched on: the record's ids, `type` and `evtName` (an
    /// upload's whole record lives on only in `bytes`), or `{"identity": v}` for a deletion.
    pub value: Value,
    /// What the request carries: the record's JSON, or a deletion's value alone.
    pub bytes: Vec<u8>,
}

pub(super) struct Plan {
    pub rows: Vec<RowPlan>,
    /// Grouped by `op` (uploads first), in queue order within a group.
    pub items: Vec<Item>,
}

impl Plan {
    /// Records to send per row taken (the next claim's size is chosen from it).
    pub fn records_per_row(&self) -> f64 {
        let taken = self.rows.iter().filter(|r| r.taken).count().max(1);
        self.items.len() as f64 / taken as f64
    }
}

/// Renders rows in order while they fit one request (`batch_max_records`, `batch_max_bytes`;
/// the first row always, however large: `send` splits it). Rendering is milliseconds of CPU
/// for a full batch: it yields between rows, so webhooks being accepted are not held behind it.
pub(super) async fn plan(app: &AppState, rows: Vec<Claimed>) -> Plan {
    let caps = &app.settings.delivery;
    let mut plan = Plan {
        rows: Vec::with_capacity(rows.len()),
        items: Vec::new(),
    };
    let mut bytes = 0usize;
    let mut full = false;
    for row in rows {
        if full {
            plan.rows.push(RowPlan::untouched(row));
            continue;
        }
        if !plan.rows.is_empty() {
            tokio::task::yield_now().await;
        }
        let index = plan.rows.len();
        let (row_plan, items) = render(app, row, index);
        let extra: usize = items.iter().map(|i| i.bytes.len() + 1).sum();
        let over = plan.items.len() + items.len() > caps.batch_max_records
            || bytes + extra > caps.batch_max_bytes;
        if over && !plan.items.is_empty() {
            plan.rows.push(RowPlan::untouched(row_plan.row));
            full = true;
            continue;
        }
        bytes += extra;
        plan.items.extend(items);
        plan.rows.push(row_plan);
        full = plan.items.len() >= caps.batch_max_records || bytes >= caps.batch_max_bytes;
    }
    // Stable: queue order holds within each kind of request. Rows claimed together never
    // share an identity, so uploads and deletions need no order between them.
    plan.items.sort_by_key(|item| item.op);
    plan
}

impl RowPlan {
    fn untouched(row: Claimed) -> Self {
        Self {
            row,
            delivered: Vec::new(),
            dead: Vec::new(),
            taken: false,
        }
    }
}

/// One row's records: to send, skipped (a false `$when`: done), or dead at once.
fn render(app: &AppState, row: Claimed, index: usize) -> (RowPlan, Vec<Item>) {
    let mut plan = RowPlan {
        row,
        delivered: Vec::new(),
        dead: Vec::new(),
        taken: true,
    };
    let (rendered, deletion) = match read(app, &plan.row) {
        Ok(read) => read,
        Err(dead) => {
            plan.dead.push(dead);
            return (plan, Vec::new());
        }
    };
    let mut items = Vec::new();
    for (i, outcome) in rendered.records.into_iter().enumerate() {
        let record = u32::try_from(i).unwrap_or(u32::MAX);
        if plan.row.done.contains(&record) {
            continue;
        }
        match outcome {
            RecordOutcome::Send(value) => {
                let (op, bytes) = match deletion.then(|| deletion_parts(&value)).flatten() {
                    Some((key, target)) => (Op::Delete(key), serde_json::to_vec(target)),
                    None => (Op::Upload, serde_json::to_vec(&value)),
                };
                items.push(Item {
                    row: index,
                    index: record,
                    op,
                    value: if op == Op::Upload {
                        echo_keys(value)
                    } else {
                        value
                    },
                    bytes: bytes.unwrap_or_default(),
                });
            }
            RecordOutcome::Skip => plan.delivered.push(record),
            // What CleverTap would answer for this record, so nothing is sent to be refused.
            RecordOutcome::Refused { code, error } => {
                let reason = format!("{error}Skipped record number : {}", record + 1);
                plan.dead.push(dead_record(
                    &plan.row,
                    record,
                    DeadCode::Refused(code),
                    reason,
                ));
            }
            RecordOutcome::Dead { code, reason } => {
                let code = if code == "render_error" {
                    DeadCode::RenderError
                } else {
                    DeadCode::InvalidRecord
                };
                plan.dead.push(dead_record(&plan.row, record, code, reason));
            }
        }
    }
    (plan, items)
}

/// The fields CleverTap's answer names a record by (`classify` matches its echoes on them):
/// kept while the request is out instead of the whole record.
fn echo_keys(record: Value) -> Value {
    const KEPT: [&str; 6] = ["identity", "objectId", "FBID", "GPID", "type", "evtName"];
    match record {
        Value::Object(mut map) => {
            map.retain(|key, _| KEPT.contains(&key.as_str()));
            Value::Object(map)
        }
        other => other,
    }
}

/// The row's body rendered through its route, and whether its records are deletions; a
/// whole-row dead letter when it cannot be rendered.
fn read(app: &AppState, row: &Claimed) -> Result<(Rendered, bool), NewDeadLetter> {
    let Some(route) = app.routes.resolve(&row.route) else {
        return Err(whole_row(
            DeadCode::RenderError,
            format!(
                "route {} is no longer configured; configure it and replay",
                row.route
            ),
        ));
    };
    let parsed = webhook::parse(row.kind, &row.body)
        .map_err(|error| whole_row(DeadCode::InvalidBody, error.message))?;
    let rendered = route
        .mapping
        .render(&parsed.value, row.received_at_ms / 1000);
    for dropped in &rendered.dropped {
        app.metrics.field_dropped(&dropped.field);
        tracing::warn!(request_id = %row.request_id, field = %dropped.field, value = %app.pii.any(&dropped.value),
            reason = %dropped.reason, "invalid field dropped; the record goes on");
    }
    Ok((rendered, route.mapping.is_deletion()))
}

/// A record that is not sent: refused by CleverTap's rules, or not renderable.
fn dead_record(row: &Claimed, record: u32, code: DeadCode, reason: String) -> NewDeadLetter {
    tracing::warn!(request_id = %row.request_id, record, code = %code, reason = %reason,
        "record not sendable; dead-lettered");
    NewDeadLetter {
        record_index: Some(record),
        code,
        reason,
    }
}

fn whole_row(code: DeadCode, reason: String) -> NewDeadLetter {
    NewDeadLetter {
        record_index: None,
        code,
        reason,
    }
}
