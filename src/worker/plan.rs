//! Claimed rows → the records to send: each row rendered through its route (at delivery, so a
//! fixed template re-maps replayed rows), packed up to one request's caps; the rest go back.
//! Records of deletion routes become profile deletions, sent after the uploads in requests of
//! their own.

use serde_json::Value;

use crate::mapping::{RecordOutcome, RouteMapping, deletion_parts};
use crate::queue::{Claimed, DeadCode, NewDeadLetter};
use crate::state::AppState;
use crate::webhook::{self, BodyKind};

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
    fn untouched(mut row: Claimed) -> Self {
        // It goes back untouched: its body is not held while the delivery waits on CleverTap.
        row.body = Vec::new();
        Self {
            row,
            delivered: Vec::new(),
            dead: Vec::new(),
            taken: false,
        }
    }
}

/// One row's records: to send, skipped (a false `$when`: done), or dead at once. The row's
/// body is read here and not kept: the rows of a delivery in flight hold only their records'
/// bytes.
fn render(app: &AppState, mut row: Claimed, index: usize) -> (RowPlan, Vec<Item>) {
    let body = std::mem::take(&mut row.body);
    let mut out = Records {
        plan: RowPlan {
            row,
            delivered: Vec::new(),
            dead: Vec::new(),
            taken: true,
        },
        items: Vec::new(),
        index,
        deletion: false,
    };
    if let Err(dead) = read(app, &body, &mut out) {
        out.plan.dead.push(dead);
    }
    (out.plan, out.items)
}

/// A row's records as they are rendered, one at a time.
struct Records {
    plan: RowPlan,
    items: Vec<Item>,
    /// Index of the row in the plan.
    index: usize,
    /// The route's records are profile deletions.
    deletion: bool,
}

impl Records {
    fn take(&mut self, record: usize, outcome: RecordOutcome) {
        let record = u32::try_from(record).unwrap_or(u32::MAX);
        if self.plan.row.done.contains(&record) {
            return;
        }
        match outcome {
            RecordOutcome::Send(value) => {
                let target = self.deletion.then(|| deletion_parts(&value)).flatten();
                let (op, bytes) = match target {
                    Some((key, target)) => (Op::Delete(key), serde_json::to_vec(target)),
                    None => (Op::Upload, serde_json::to_vec(&value)),
                };
                self.items.push(Item {
                    row: self.index,
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
            RecordOutcome::Skip => self.plan.delivered.push(record),
            // What CleverTap would answer for this record, so nothing is sent to be refused.
            RecordOutcome::Refused { code, error } => {
                let reason = format!("{error}Skipped record number : {}", record + 1);
                let dead = dead_record(&self.plan.row, record, DeadCode::Refused(code), reason);
                self.plan.dead.push(dead);
            }
            RecordOutcome::Dead { code, reason } => {
                let code = if code == "render_error" {
                    DeadCode::RenderError
                } else {
                    DeadCode::InvalidRecord
                };
                let dead = dead_record(&self.plan.row, record, code, reason);
                self.plan.dead.push(dead);
            }
        }
    }

    /// Forgets what was taken (before the row is read again another way).
    fn clear(&mut self) {
        self.items.clear();
        self.plan.delivered.clear();
        self.plan.dead.clear();
    }
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

/// The row's body rendered through its route into `out`; a whole-row dead letter when it
/// cannot be rendered.
fn read(app: &AppState, body: &[u8], out: &mut Records) -> Result<(), NewDeadLetter> {
    let row = &out.plan.row;
    let Some(route) = app.routes.resolve(&row.route) else {
        return Err(whole_row(
            DeadCode::RenderError,
            format!(
                "route {} is no longer configured; configure it and replay",
                row.route
            ),
        ));
    };
    let mapping = &route.mapping;
    let received_at = row.received_at_ms / 1000;
    if row.kind == BodyKind::Json && mapping.passes_uploads_through() {
        if judge_upload(mapping, body, received_at, out) {
            return Ok(());
        }
        out.clear();
    }
    let row = &out.plan.row;
    let parsed = webhook::parse(row.kind, body)
        .map_err(|error| whole_row(DeadCode::InvalidBody, error.message))?;
    let rendered = mapping.render(&parsed.value, received_at);
    drop(parsed);
    for dropped in &rendered.dropped {
        app.metrics.field_dropped(&dropped.field);
        tracing::warn!(request_id = %row.request_id, field = %dropped.field, value = %app.pii.any(&dropped.value),
            reason = %dropped.reason, "invalid field dropped; the record goes on");
    }
    out.deletion = mapping.is_deletion();
    for (i, outcome) in rendered.records.into_iter().enumerate() {
        out.take(i, outcome);
    }
    Ok(())
}

/// Judges a stored upload record by record (each parsed, judged, serialized and dropped in
/// turn). False when the body does not read this way: the caller forgets what was taken and
/// reads the body whole, so both ways give the same records.
fn judge_upload(mapping: &RouteMapping, body: &[u8], received_at: i64, out: &mut Records) -> bool {
    let Some(upload) = webhook::upload_records(body) else {
        return false;
    };
    let mut read = 0;
    for record in upload.values() {
        out.take(read, mapping.judge_record(record, received_at).into());
        read += 1;
    }
    read == upload.len()
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

#[cfg(test)]
mod tests;
