//! SQLite statements behind the admin API and housekeeping: stats, dead letters, replay, retention.

use rusqlite::types::Type;
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::rows::{activate_keys, parse_indexes};
use crate::body::BodyKind;
use crate::queue::{
    DeadCode, DeadLetter, DeadLetterFilter, PurgeCounts, Replay, RowState, SetBody, Stats,
    WebhookView,
};

/// A stored text column read as one of the queue's enums.
pub(super) fn parsed<T>(
    r: &Row<'_>,
    index: usize,
    parse: fn(&str) -> Option<T>,
) -> rusqlite::Result<T> {
    let text: String = r.get(index)?;
    parse(&text).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            index,
            Type::Text,
            format!("unexpected stored value {text:?}").into(),
        )
    })
}

pub(super) fn stats(c: &Connection) -> rusqlite::Result<Stats> {
    let mut stats = Stats::default();
    let mut stmt = c.prepare_cached("SELECT state, count(*) FROM webhooks GROUP BY state")?;
    let rows = stmt.query_map([], |r| {
        Ok((parsed(r, 0, RowState::parse)?, r.get::<_, i64>(1)?))
    })?;
    for row in rows {
        let (state, count) = row?;
        stats.set(state, u64::try_from(count).unwrap_or(0));
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
     w.request_id, w.received_at, d.dead_at, w.content_type, b.body";
/// A dead letter with its webhook row and that row's body: what `DEAD_LETTER_COLUMNS` reads.
const DEAD_LETTER_ROWS: &str =
    "dead_letters d JOIN webhooks w ON w.id = d.row_id JOIN bodies b ON b.row_id = d.row_id";

fn dead_letter_from(r: &Row<'_>) -> rusqlite::Result<DeadLetter> {
    Ok(DeadLetter {
        id: r.get(0)?,
        row_id: r.get(1)?,
        record_index: r.get(2)?,
        route: r.get(3)?,
        account: r.get(4)?,
        code: parsed(r, 5, DeadCode::parse)?,
        reason: r.get(6)?,
        attempts: r.get(7)?,
        request_id: r.get(8)?,
        received_at_ms: r.get(9)?,
        dead_at_ms: r.get(10)?,
        kind: BodyKind::from_stored(&r.get::<_, String>(11)?),
        body: r.get(12)?,
    })
}

pub(super) fn dead_letters(
    c: &Connection,
    filter: &DeadLetterFilter,
) -> rusqlite::Result<Vec<DeadLetter>> {
    let sql = format!(
        "SELECT {DEAD_LETTER_COLUMNS} FROM {DEAD_LETTER_ROWS} \
         WHERE (?1 IS NULL OR w.route = ?1) AND (?2 IS NULL OR d.code = ?2) AND d.id > ?3 ORDER BY d.id LIMIT ?4"
    );
    let limit = i64::try_from(filter.limit).unwrap_or(i64::MAX);
    let code = filter.code.map(|c| c.as_text());
    let mut stmt = c.prepare_cached(&sql)?;
    let rows = stmt.query_map(
        params![filter.route, code, filter.after.unwrap_or(0), limit],
        dead_letter_from,
    )?;
    rows.collect()
}

pub(super) fn dead_letter(c: &Connection, id: i64) -> rusqlite::Result<Option<DeadLetter>> {
    let sql = format!("SELECT {DEAD_LETTER_COLUMNS} FROM {DEAD_LETTER_ROWS} WHERE d.id = ?1");
    c.prepare_cached(&sql)?
        .query_row([id], dead_letter_from)
        .optional()
}

pub(super) fn replay(
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

pub(super) fn set_body(
    c: &Connection,
    id: i64,
    body: &[u8],
    kind: BodyKind,
) -> rusqlite::Result<SetBody> {
    let found: Option<(i64, String)> = c
        .prepare_cached("SELECT row_id, code FROM dead_letters WHERE id = ?1")?
        .query_row([id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    match found {
        None => Ok(SetBody::NotFound),
        Some((_, code)) if DeadCode::parse(&code) != Some(DeadCode::InvalidBody) => {
            Ok(SetBody::NotInvalidBody)
        }
        Some((row_id, _)) => {
            c.prepare_cached("UPDATE webhooks SET content_type = ?2 WHERE id = ?1")?
                .execute(params![row_id, kind.as_str()])?;
            c.prepare_cached("UPDATE bodies SET body = ?2 WHERE row_id = ?1")?
                .execute(params![row_id, body])?;
            Ok(SetBody::Replaced)
        }
    }
}

pub(super) fn delete_dead_letter(c: &Connection, id: i64) -> rusqlite::Result<bool> {
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

pub(super) fn webhook_by_request_id(
    c: &Connection,
    request_id: &str,
) -> rusqlite::Result<Option<WebhookView>> {
    let id: Option<i64> = c
        .prepare_cached("SELECT id FROM webhooks WHERE request_id = ?1 ORDER BY id DESC LIMIT 1")?
        .query_row([request_id], |r| r.get(0))
        .optional()?;
    id.map(|id| webhook_view(c, id))
        .transpose()
        .map(Option::flatten)
}

/// One row as the admin API shows it, with its dead letters.
pub(super) fn webhook_view(c: &Connection, id: i64) -> rusqlite::Result<Option<WebhookView>> {
    let view = c
        .prepare_cached(
            "SELECT id, route, account, state, attempts, request_id, received_at, delivered, last_error, \
             finished_at, body_dropped_at FROM webhooks WHERE id = ?1",
        )?
        .query_row([id], |r| {
            Ok(WebhookView {
                id: r.get(0)?,
                route: r.get(1)?,
                account: r.get(2)?,
                state: parsed(r, 3, RowState::parse)?,
                attempts: r.get(4)?,
                request_id: r.get(5)?,
                received_at_ms: r.get(6)?,
                delivered: parse_indexes(&r.get::<_, String>(7)?),
                last_error: r.get(8)?,
                finished_at_ms: r.get(9)?,
                body_dropped_at_ms: r.get(10)?,
                dead_letters: Vec::new(),
            })
        })
        .optional()?;
    let Some(mut view) = view else {
        return Ok(None);
    };
    let sql = format!(
        "SELECT {DEAD_LETTER_COLUMNS} FROM {DEAD_LETTER_ROWS} WHERE d.row_id = ?1 ORDER BY d.id"
    );
    let mut stmt = c.prepare_cached(&sql)?;
    view.dead_letters = stmt
        .query_map([view.id], dead_letter_from)?
        .collect::<rusqlite::Result<_>>()?;
    Ok(Some(view))
}

pub(super) fn purge(
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
