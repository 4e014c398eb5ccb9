//! SQLite statements, one function per queue operation; run on the writer thread.

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::{
    Claimed, DeadLetter, DeadLetterFilter, Enqueued, NewDeadLetter, NewWebhook, Next, PurgeCounts,
    Replay, RowOutcome, SetBody, Stats, WebhookView,
};

const INSERT_ROW: &str = "INSERT INTO webhooks (route, account, content_type, body, body_hash, request_id, \
     received_at, state, due_at, deadline_at, order_keys, finished_at) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?7, ?9, ?10, ?11)";

fn insert_row(c: &Connection, row: &NewWebhook, state: &str, hash: &[u8]) -> rusqlite::Result<i64> {
    let finished = (state == "dead").then_some(row.received_at_ms);
    c.prepare_cached(INSERT_ROW)?.execute(params![
        row.route,
        row.account,
        row.content_type,
        row.body,
        hash,
        row.request_id,
        row.received_at_ms,
        state,
        row.deadline_ms,
        row.order_keys.join("\n"),
        finished,
    ])?;
    Ok(c.last_insert_rowid())
}

fn activate_keys(c: &Connection, row_id: i64, keys: &str) -> rusqlite::Result<()> {
    let mut insert =
        c.prepare_cached("INSERT OR IGNORE INTO active_keys (row_id, key) VALUES (?1, ?2)")?;
    for key in keys.split('\n').filter(|k| !k.is_empty()) {
        insert.execute(params![row_id, key])?;
    }
    Ok(())
}

pub fn enqueue(c: &Connection, row: &NewWebhook, since: i64) -> rusqlite::Result<Enqueued> {
    let existing: Option<i64> = c
        .prepare_cached(
            "SELECT id FROM webhooks WHERE route = ?1 AND body_hash = ?2 AND received_at >= ?3 LIMIT 1",
        )?
        .query_row(params![row.route, &row.body_hash[..], since], |r| r.get(0))
        .optional()?;
    if let Some(id) = existing {
        return Ok(Enqueued::Duplicate(id));
    }
    let id = insert_row(c, row, "pending", &row.body_hash)?;
    activate_keys(c, id, &row.order_keys.join("\n"))?;
    Ok(Enqueued::Accepted(id))
}

pub fn enqueue_invalid(
    c: &Connection,
    row: &NewWebhook,
    reason: &str,
) -> rusqlite::Result<(i64, i64)> {
    // An empty hash: an unreadable body never makes a later (fixed) resend a duplicate.
    let id = insert_row(c, row, "dead", &[])?;
    c.prepare_cached(
        "INSERT INTO dead_letters (row_id, record_index, code, reason, attempts, dead_at) \
         VALUES (?1, NULL, 'invalid_body', ?2, 0, ?3)",
    )?
    .execute(params![id, reason, row.received_at_ms])?;
    Ok((id, c.last_insert_rowid()))
}

const BLOCKED_BY_EARLIER: &str = "NOT EXISTS (SELECT 1 FROM active_keys a \
     JOIN active_keys b ON b.key = a.key AND b.row_id < a.row_id WHERE a.row_id = w.id)";

pub fn claim(
    c: &Connection,
    account: &str,
    limit: usize,
    now: i64,
    lease_ms: i64,
) -> rusqlite::Result<Vec<Claimed>> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut ids: Vec<i64> = Vec::new();
    for condition in [
        "w.state = 'pending' AND w.due_at <= ?2",
        "w.state = 'leased' AND w.leased_until < ?2",
    ] {
        let sql = format!(
            "SELECT w.id FROM webhooks w WHERE w.account = ?1 AND {condition} AND {BLOCKED_BY_EARLIER} \
             ORDER BY w.id LIMIT ?3"
        );
        let mut stmt = c.prepare_cached(&sql)?;
        let found = stmt.query_map(params![account, now, limit], |r| r.get::<_, i64>(0))?;
        for id in found {
            ids.push(id?);
        }
    }
    ids.sort_unstable();
    ids.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    let mut lease = c.prepare_cached(
        "UPDATE webhooks SET state = 'leased', leased_until = ?2 WHERE id = ?1 \
         RETURNING id, route, account, content_type, body, request_id, received_at, attempts, deadline_at, delivered",
    )?;
    let mut dead_indexes = c.prepare_cached(
        "SELECT record_index FROM dead_letters WHERE row_id = ?1 AND record_index IS NOT NULL",
    )?;
    let mut claimed = Vec::with_capacity(ids.len());
    for id in ids {
        let mut row = lease.query_row(params![id, now + lease_ms], |r| {
            Ok(Claimed {
                id: r.get(0)?,
                route: r.get(1)?,
                account: r.get(2)?,
                content_type: r.get(3)?,
                body: r.get(4)?,
                request_id: r.get(5)?,
                received_at_ms: r.get(6)?,
                attempts: r.get(7)?,
                deadline_ms: r.get(8)?,
                done: parse_indexes(&r.get::<_, String>(9)?),
            })
        })?;
        for index in dead_indexes.query_map([id], |r| r.get::<_, u32>(0))? {
            row.done.push(index?);
        }
        claimed.push(row);
    }
    Ok(claimed)
}

fn parse_indexes(text: &str) -> Vec<u32> {
    text.split(',').filter_map(|s| s.parse().ok()).collect()
}

fn join_indexes(indexes: &[u32]) -> String {
    indexes
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

pub fn complete(c: &Connection, outcomes: &[RowOutcome], now: i64) -> rusqlite::Result<()> {
    for outcome in outcomes {
        let current: Option<(String, u32)> = c
            .prepare_cached("SELECT delivered, attempts FROM webhooks WHERE id = ?1")?
            .query_row([outcome.id], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        let Some((delivered, attempts)) = current else {
            continue;
        };
        if !outcome.delivered.is_empty() {
            let mut all = parse_indexes(&delivered);
            all.extend(&outcome.delivered);
            all.sort_unstable();
            all.dedup();
            c.prepare_cached("UPDATE webhooks SET delivered = ?2 WHERE id = ?1")?
                .execute(params![outcome.id, join_indexes(&all)])?;
        }
        insert_dead_letters(c, outcome.id, &outcome.dead, attempts + 1, now)?;
        match &outcome.next {
            Next::Finished => {
                c.prepare_cached(
                    "UPDATE webhooks SET state = CASE WHEN EXISTS (SELECT 1 FROM dead_letters d WHERE d.row_id = ?1) \
                     THEN 'dead' ELSE 'delivered' END, finished_at = ?2, leased_until = NULL, \
                     attempts = attempts + 1 WHERE id = ?1",
                )?
                .execute(params![outcome.id, now])?;
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
                     attempts = attempts + ?3, last_error = ?4 WHERE id = ?1",
                )?
                .execute(params![
                    outcome.id,
                    due_at_ms,
                    i64::from(*count_attempt),
                    error
                ])?;
            }
            Next::Release => {
                c.prepare_cached(
                    "UPDATE webhooks SET state = 'pending', due_at = ?2, leased_until = NULL WHERE id = ?1",
                )?
                .execute(params![outcome.id, now])?;
            }
        }
    }
    Ok(())
}

fn insert_dead_letters(
    c: &Connection,
    row_id: i64,
    dead: &[NewDeadLetter],
    attempts: u32,
    now: i64,
) -> rusqlite::Result<()> {
    let mut insert = c.prepare_cached(
        "INSERT INTO dead_letters (row_id, record_index, code, reason, attempts, dead_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    for letter in dead {
        insert.execute(params![
            row_id,
            letter.record_index,
            letter.code,
            letter.reason,
            attempts,
            now
        ])?;
    }
    Ok(())
}

pub fn next_due(c: &Connection, account: &str) -> rusqlite::Result<Option<i64>> {
    c.prepare_cached(
        "SELECT min(t) FROM (SELECT min(due_at) AS t FROM webhooks WHERE account = ?1 AND state = 'pending' \
         UNION ALL SELECT min(leased_until) FROM webhooks WHERE account = ?1 AND state = 'leased')",
    )?
    .query_row([account], |r| r.get(0))
}

pub fn stats(c: &Connection) -> rusqlite::Result<Stats> {
    let mut stats = Stats::default();
    let mut stmt = c.prepare_cached("SELECT state, count(*) FROM webhooks GROUP BY state")?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
    for row in rows {
        let (state, count) = row?;
        let count = u64::try_from(count).unwrap_or(0);
        match state.as_str() {
            "pending" => stats.pending = count,
            "leased" => stats.leased = count,
            "delivered" => stats.delivered = count,
            "dead" => stats.dead = count,
            _ => {}
        }
    }
    stats.oldest_pending_ms = c
        .prepare_cached(
            "SELECT min(t) FROM (SELECT (SELECT received_at FROM webhooks WHERE state = 'pending' ORDER BY id LIMIT 1) AS t \
             UNION ALL SELECT (SELECT received_at FROM webhooks WHERE state = 'leased' ORDER BY id LIMIT 1))",
        )?
        .query_row([], |r| r.get(0))?;
    Ok(stats)
}

const DEAD_LETTER_COLUMNS: &str = "d.id, d.row_id, d.record_index, w.route, w.account, d.code, d.reason, d.attempts, \
     w.request_id, w.received_at, d.dead_at, w.content_type, w.body";

fn dead_letter_from(r: &Row<'_>) -> rusqlite::Result<DeadLetter> {
    Ok(DeadLetter {
        id: r.get(0)?,
        row_id: r.get(1)?,
        record_index: r.get(2)?,
        route: r.get(3)?,
        account: r.get(4)?,
        code: r.get(5)?,
        reason: r.get(6)?,
        attempts: r.get(7)?,
        request_id: r.get(8)?,
        received_at_ms: r.get(9)?,
        dead_at_ms: r.get(10)?,
        content_type: r.get(11)?,
        body: r.get(12)?,
    })
}

pub fn dead_letters(
    c: &Connection,
    filter: &DeadLetterFilter,
) -> rusqlite::Result<Vec<DeadLetter>> {
    let sql = format!(
        "SELECT {DEAD_LETTER_COLUMNS} FROM dead_letters d JOIN webhooks w ON w.id = d.row_id \
         WHERE (?1 IS NULL OR w.route = ?1) AND (?2 IS NULL OR d.code = ?2) AND d.id > ?3 ORDER BY d.id LIMIT ?4"
    );
    let limit = i64::try_from(filter.limit).unwrap_or(i64::MAX);
    let mut stmt = c.prepare_cached(&sql)?;
    let rows = stmt.query_map(
        params![filter.route, filter.code, filter.after.unwrap_or(0), limit],
        dead_letter_from,
    )?;
    rows.collect()
}

pub fn dead_letter(c: &Connection, id: i64) -> rusqlite::Result<Option<DeadLetter>> {
    let sql = format!(
        "SELECT {DEAD_LETTER_COLUMNS} FROM dead_letters d JOIN webhooks w ON w.id = d.row_id WHERE d.id = ?1"
    );
    c.prepare_cached(&sql)?
        .query_row([id], dead_letter_from)
        .optional()
}

pub fn replay(
    c: &Connection,
    items: &[Replay],
    now: i64,
    max_age_ms: i64,
) -> rusqlite::Result<Vec<i64>> {
    let mut replayed = Vec::new();
    for item in items {
        let row_id: Option<i64> = c
            .prepare_cached("DELETE FROM dead_letters WHERE id = ?1 RETURNING row_id")?
            .query_row([item.dead_letter_id], |r| r.get(0))
            .optional()?;
        let Some(row_id) = row_id else { continue };
        if let Some(keys) = &item.order_keys {
            c.prepare_cached("UPDATE webhooks SET order_keys = ?2 WHERE id = ?1")?
                .execute(params![row_id, keys.join("\n")])?;
        }
        let keys: Option<String> = c
            .prepare_cached(
                "UPDATE webhooks SET state = 'pending', due_at = ?2, attempts = 0, deadline_at = ?3, \
                 finished_at = NULL, leased_until = NULL, last_error = NULL \
                 WHERE id = ?1 AND state IN ('dead', 'delivered') RETURNING order_keys",
            )?
            .query_row(params![row_id, now, now + max_age_ms], |r| r.get(0))
            .optional()?;
        if let Some(keys) = keys {
            activate_keys(c, row_id, &keys)?;
        }
        replayed.push(item.dead_letter_id);
    }
    Ok(replayed)
}

pub fn set_body(
    c: &Connection,
    id: i64,
    body: &[u8],
    content_type: &str,
) -> rusqlite::Result<SetBody> {
    let found: Option<(i64, String)> = c
        .prepare_cached("SELECT row_id, code FROM dead_letters WHERE id = ?1")?
        .query_row([id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    match found {
        None => Ok(SetBody::NotFound),
        Some((_, code)) if code != "invalid_body" => Ok(SetBody::NotInvalidBody),
        Some((row_id, _)) => {
            c.prepare_cached("UPDATE webhooks SET body = ?2, content_type = ?3 WHERE id = ?1")?
                .execute(params![row_id, body, content_type])?;
            Ok(SetBody::Replaced)
        }
    }
}

pub fn delete_dead_letter(c: &Connection, id: i64) -> rusqlite::Result<bool> {
    let row_id: Option<i64> = c
        .prepare_cached("DELETE FROM dead_letters WHERE id = ?1 RETURNING row_id")?
        .query_row([id], |r| r.get(0))
        .optional()?;
    let Some(row_id) = row_id else {
        return Ok(false);
    };
    c.prepare_cached(
        "DELETE FROM webhooks WHERE id = ?1 AND state = 'dead' \
         AND NOT EXISTS (SELECT 1 FROM dead_letters d WHERE d.row_id = ?1)",
    )?
    .execute([row_id])?;
    Ok(true)
}

pub fn webhook_by_request_id(
    c: &Connection,
    request_id: &str,
) -> rusqlite::Result<Option<WebhookView>> {
    let view = c
        .prepare_cached(
            "SELECT id, route, account, state, attempts, request_id, received_at, delivered, last_error \
             FROM webhooks WHERE request_id = ?1 ORDER BY id DESC LIMIT 1",
        )?
        .query_row([request_id], |r| {
            Ok(WebhookView {
                id: r.get(0)?,
                route: r.get(1)?,
                account: r.get(2)?,
                state: r.get(3)?,
                attempts: r.get(4)?,
                request_id: r.get(5)?,
                received_at_ms: r.get(6)?,
                delivered: parse_indexes(&r.get::<_, String>(7)?),
                last_error: r.get(8)?,
                dead_letters: Vec::new(),
            })
        })
        .optional()?;
    let Some(mut view) = view else {
        return Ok(None);
    };
    let sql = format!(
        "SELECT {DEAD_LETTER_COLUMNS} FROM dead_letters d JOIN webhooks w ON w.id = d.row_id WHERE d.row_id = ?1 ORDER BY d.id"
    );
    let mut stmt = c.prepare_cached(&sql)?;
    view.dead_letters = stmt
        .query_map([view.id], dead_letter_from)?
        .collect::<rusqlite::Result<_>>()?;
    Ok(Some(view))
}

pub fn purge(
    c: &Connection,
    delivered_before: i64,
    dead_before: i64,
) -> rusqlite::Result<PurgeCounts> {
    let delivered = c
        .prepare_cached("DELETE FROM webhooks WHERE state = 'delivered' AND finished_at < ?1")?
        .execute([delivered_before])?;
    let dead = c
        .prepare_cached("DELETE FROM dead_letters WHERE dead_at < ?1")?
        .execute([dead_before])?;
    c.prepare_cached(
        "DELETE FROM webhooks WHERE state = 'dead' AND NOT EXISTS (SELECT 1 FROM dead_letters d WHERE d.row_id = webhooks.id)",
    )?
    .execute([])?;
    Ok(PurgeCounts {
        delivered: delivered as u64,
        dead: dead as u64,
    })
}

pub fn extend_deadlines(c: &Connection, account: &str, by_ms: i64) -> rusqlite::Result<u64> {
    let n = c
        .prepare_cached(
            "UPDATE webhooks SET deadline_at = deadline_at + ?2 WHERE account = ?1 AND state IN ('pending', 'leased')",
        )?
        .execute(params![account, by_ms])?;
    Ok(n as u64)
}
