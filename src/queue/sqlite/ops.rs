//! SQLite statements of the delivery path: enqueue, claim, complete, next due; on the writer thread.

use rusqlite::{Connection, OptionalExtension, params};

use super::rows::{activate_keys, insert_dead_letters, join_indexes, parse_indexes};
use crate::body::BodyKind;
use crate::queue::{ClaimLimit, Claimed, Enqueued, NewWebhook, Next, RowOutcome, RowState};

const INSERT_ROW: &str = "INSERT INTO webhooks (route, account, content_type, body_hash, request_id, \
     received_at, state, due_at, deadline_at, order_keys, finished_at) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?6, ?8, ?9, ?10)";

fn insert_row(
    c: &Connection,
    row: &NewWebhook,
    state: RowState,
    hash: &[u8],
) -> rusqlite::Result<i64> {
    let finished = (state == RowState::Dead).then_some(row.received_at_ms);
    c.prepare_cached(INSERT_ROW)?.execute(params![
        row.route,
        row.account,
        row.kind.as_str(),
        hash,
        row.request_id,
        row.received_at_ms,
        state.as_str(),
        row.deadline_ms,
        row.order_keys.join("\n"),
        finished,
    ])?;
    let id = c.last_insert_rowid();
    c.prepare_cached("INSERT INTO bodies (row_id, body) VALUES (?1, ?2)")?
        .execute(params![id, row.body])?;
    Ok(id)
}

pub(super) fn enqueue(c: &Connection, row: &NewWebhook, since: i64) -> rusqlite::Result<Enqueued> {
    if row.dedup {
        let existing: Option<i64> = c
            .prepare_cached(
                "SELECT id FROM webhooks WHERE route = ?1 AND body_hash = ?2 AND received_at >= ?3 LIMIT 1",
            )?
            .query_row(params![row.route, &row.body_hash[..], since], |r| r.get(0))
            .optional()?;
        if let Some(id) = existing {
            return Ok(Enqueued::Duplicate(id));
        }
    }
    let state = if row.finished {
        RowState::Dead
    } else {
        RowState::Pending
    };
    let id = insert_row(c, row, state, &row.body_hash)?;
    insert_dead_letters(c, id, &row.refused, 0, row.received_at_ms)?;
    if !row.finished {
        activate_keys(c, id, &row.order_keys.join("\n"))?;
    }
    Ok(Enqueued::Accepted(id))
}

pub(super) fn enqueue_invalid(
    c: &Connection,
    row: &NewWebhook,
    reason: &str,
) -> rusqlite::Result<(i64, i64)> {
    // An empty hash: an unreadable body never makes a later (fixed) resend a duplicate.
    let id = insert_row(c, row, RowState::Dead, &[])?;
    c.prepare_cached(
        "INSERT INTO dead_letters (row_id, record_index, code, reason, attempts, dead_at) \
         VALUES (?1, NULL, 'invalid_body', ?2, 0, ?3)",
    )?
    .execute(params![id, reason, row.received_at_ms])?;
    Ok((id, c.last_insert_rowid()))
}

const BLOCKED_BY_EARLIER: &str = "NOT EXISTS (SELECT 1 FROM active_keys a \
     JOIN active_keys b ON b.key = a.key AND b.row_id < a.row_id WHERE a.row_id = w.id)";

pub(super) fn claim(
    c: &Connection,
    account: &str,
    limit: ClaimLimit,
    now: i64,
    lease_ms: i64,
) -> rusqlite::Result<Vec<Claimed>> {
    let rows = i64::try_from(limit.rows).unwrap_or(i64::MAX);
    // (id, body bytes): `length` of a blob is read from the record header, not its pages.
    let body_bytes = "(SELECT length(b.body) FROM bodies b WHERE b.row_id = w.id)";
    let mut found: Vec<(i64, usize)> = Vec::new();
    for condition in [
        "w.state = 'pending' AND w.due_at <= ?2",
        "w.state = 'leased' AND w.leased_until < ?2",
    ] {
        let sql = format!(
            "SELECT w.id, {body_bytes} FROM webhooks w WHERE w.account = ?1 AND {condition} \
             AND {BLOCKED_BY_EARLIER} ORDER BY w.id LIMIT ?3"
        );
        let mut stmt = c.prepare_cached(&sql)?;
        let rows = stmt.query_map(params![account, now, rows], |r| {
            let size = r.get::<_, i64>(1)?;
            Ok((r.get::<_, i64>(0)?, usize::try_from(size).unwrap_or(0)))
        })?;
        for row in rows {
            found.push(row?);
        }
    }
    found.sort_unstable();
    let ids = within(&found, limit);
    let mut lease = c.prepare_cached(
        "UPDATE webhooks SET state = 'leased', leased_until = ?2 WHERE id = ?1 \
         RETURNING id, route, account, content_type, request_id, received_at, attempts, deadline_at, delivered",
    )?;
    let mut read_body = c.prepare_cached("SELECT body FROM bodies WHERE row_id = ?1")?;
    let mut dead_indexes = c.prepare_cached(
        "SELECT record_index FROM dead_letters WHERE row_id = ?1 AND record_index IS NOT NULL",
    )?;
    let mut claimed = Vec::with_capacity(ids.len());
    for id in ids {
        let body: Vec<u8> = read_body.query_row([id], |r| r.get(0))?;
        let mut row = lease.query_row(params![id, now + lease_ms], |r| {
            Ok(Claimed {
                id: r.get(0)?,
                route: r.get(1)?,
                account: r.get(2)?,
                kind: BodyKind::from_stored(&r.get::<_, String>(3)?),
                body,
                request_id: r.get(4)?,
                received_at_ms: r.get(5)?,
                attempts: r.get(6)?,
                deadline_ms: r.get(7)?,
                done: parse_indexes(&r.get::<_, String>(8)?),
            })
        })?;
        for index in dead_indexes.query_map([id], |r| r.get::<_, u32>(0))? {
            row.done.push(index?);
        }
        claimed.push(row);
    }
    Ok(claimed)
}

/// The ids of `found` (in id order) a claim of `limit` takes: a prefix, while both the row
/// count and the body bytes hold, and the first row whatever its size.
fn within(found: &[(i64, usize)], limit: ClaimLimit) -> Vec<i64> {
    let mut bytes = 0usize;
    let mut ids = Vec::new();
    for &(id, size) in found.iter().take(limit.rows) {
        bytes = bytes.saturating_add(size);
        if !ids.is_empty() && bytes > limit.bytes {
            break;
        }
        ids.push(id);
    }
    ids
}

pub(super) fn complete(c: &Connection, outcomes: &[RowOutcome], now: i64) -> rusqlite::Result<()> {
    for outcome in outcomes {
        let current: Option<(String, u32)> = c
            .prepare_cached("SELECT delivered, attempts FROM webhooks WHERE id = ?1")?
            .query_row([outcome.id], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        let Some((delivered, attempts)) = current else {
            continue;
        };
        let delivered = if outcome.delivered.is_empty() {
            delivered
        } else {
            let mut all = parse_indexes(&delivered);
            all.extend(&outcome.delivered);
            all.sort_unstable();
            all.dedup();
            join_indexes(&all)
        };
        insert_dead_letters(c, outcome.id, &outcome.dead, attempts + 1, now)?;
        settle_row(c, outcome, &delivered, now)?;
    }
    Ok(())
}

/// The row's new state, with its delivered record indexes (`delivered`) in the same statement:
/// each statement rewrites the whole row.
fn settle_row(
    c: &Connection,
    outcome: &RowOutcome,
    delivered: &str,
    now: i64,
) -> rusqlite::Result<()> {
    match &outcome.next {
        Next::Finished => {
            c.prepare_cached(
                "UPDATE webhooks SET state = CASE WHEN EXISTS (SELECT 1 FROM dead_letters d WHERE d.row_id = ?1) \
                 THEN 'dead' ELSE 'delivered' END, finished_at = ?2, leased_until = NULL, \
                 attempts = attempts + 1, delivered = ?3 WHERE id = ?1",
            )?
            .execute(params![outcome.id, now, delivered])?;
            c.prepare_cached("DELETE FROM active_keys WHERE row_id = ?1")?
                .execute([outcome.id])?;
        }
        Next::Retry {
            due_at_ms,
            count_attempt,
            error,
        } => {
            c.prepare_cached(
                "UPDATE webhooks SET state = 'pending', due_at = ?2, leased_until = NULL, \
                 attempts = attempts + ?3, last_error = ?4, delivered = ?5 WHERE id = ?1",
            )?
            .execute(params![
                outcome.id,
                due_at_ms,
                i64::from(*count_attempt),
                error,
                delivered
            ])?;
        }
        Next::Release => {
            c.prepare_cached(
                "UPDATE webhooks SET state = 'pending', due_at = ?2, leased_until = NULL, delivered = ?3 WHERE id = ?1",
            )?
            .execute(params![outcome.id, now, delivered])?;
        }
    }
    Ok(())
}

pub(super) fn next_due(c: &Connection, account: &str) -> rusqlite::Result<Option<i64>> {
    c.prepare_cached(
        "SELECT min(t) FROM (SELECT min(due_at) AS t FROM webhooks WHERE account = ?1 AND state = 'pending' \
         UNION ALL SELECT min(leased_until) FROM webhooks WHERE account = ?1 AND state = 'leased')",
    )?
    .query_row([account], |r| r.get(0))
}
