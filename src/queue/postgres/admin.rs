//! PostgreSQL statements behind the admin API and housekeeping (stats, dead letters, replay,
//! retention), each inside a transaction.

use deadpool_postgres::Transaction;
use tokio_postgres::Row;

use super::ops::{execute, indexes, query, query_opt, to_u32};
use crate::body::BodyKind;
use crate::queue::{
    DeadCode, DeadLetter, DeadLetterFilter, PurgeCounts, QueueError, Replay, RowState, SetBody,
    Stats, WebhookView,
};

/// A stored text column read as one of the queue's enums.
pub(super) fn parsed<T>(
    r: &Row,
    index: usize,
    parse: fn(&str) -> Option<T>,
) -> Result<T, QueueError> {
    let text: &str = r.try_get(index)?;
    parse(text).ok_or_else(|| QueueError::Stored(format!("unexpected stored value {text:?}")))
}

pub async fn next_due(t: &Transaction<'_>, account: &str) -> Result<Option<i64>, QueueError> {
    let row = query_opt(
        t,
        "SELECT least((SELECT min(due_at) FROM webhooks WHERE account = $1 AND state = 'pending'), \
                      (SELECT min(leased_until) FROM webhooks WHERE account = $1 AND state = 'leased'))",
        &[&account],
    )
    .await?;
    Ok(row.map(|r| r.try_get(0)).transpose()?.flatten())
}

pub async fn stats(t: &Transaction<'_>) -> Result<Stats, QueueError> {
    let mut stats = Stats::default();
    for row in query(
        t,
        "SELECT state, count(*) FROM webhooks GROUP BY state",
        &[],
    )
    .await?
    {
        let count = u64::try_from(row.try_get::<_, i64>(1)?).unwrap_or(0);
        stats.set(parsed(&row, 0, RowState::parse)?, count);
    }
    let oldest = query_opt(
        t,
        "SELECT least((SELECT received_at FROM webhooks WHERE state = 'pending' ORDER BY id LIMIT 1), \
                      (SELECT received_at FROM webhooks WHERE state = 'leased' ORDER BY id LIMIT 1))",
        &[],
    )
    .await?;
    stats.oldest_pending_ms = oldest.map(|r| r.try_get(0)).transpose()?.flatten();
    Ok(stats)
}

const DEAD_LETTER_COLUMNS: &str = "d.id, d.row_id, d.record_index, w.route, w.account, d.code, d.reason, \
     d.attempts, w.request_id, w.received_at, d.dead_at, w.content_type, w.body";

fn dead_letter_from(r: &Row) -> Result<DeadLetter, QueueError> {
    Ok(DeadLetter {
        id: r.try_get(0)?,
        row_id: r.try_get(1)?,
        record_index: r.try_get::<_, Option<i32>>(2)?.map(to_u32),
        route: r.try_get(3)?,
        account: r.try_get(4)?,
        code: parsed(r, 5, DeadCode::parse)?,
        reason: r.try_get(6)?,
        attempts: to_u32(r.try_get(7)?),
        request_id: r.try_get(8)?,
        received_at_ms: r.try_get(9)?,
        dead_at_ms: r.try_get(10)?,
        kind: BodyKind::from_stored(r.try_get(11)?),
        body: r.try_get(12)?,
    })
}

pub async fn dead_letters(
    t: &Transaction<'_>,
    filter: &DeadLetterFilter,
) -> Result<Vec<DeadLetter>, QueueError> {
    let sql = format!(
        "SELECT {DEAD_LETTER_COLUMNS} FROM dead_letters d JOIN webhooks w ON w.id = d.row_id \
         WHERE ($1::text IS NULL OR w.route = $1) AND ($2::text IS NULL OR d.code = $2) AND d.id > $3 \
         ORDER BY d.id LIMIT $4"
    );
    let limit = i64::try_from(filter.limit).unwrap_or(i64::MAX);
    let after = filter.after.unwrap_or(0);
    let code = filter.code.map(|c| c.as_text().into_owned());
    let rows = query(t, &sql, &[&filter.route, &code, &after, &limit]).await?;
    rows.iter().map(dead_letter_from).collect()
}

pub async fn dead_letter(t: &Transaction<'_>, id: i64) -> Result<Option<DeadLetter>, QueueError> {
    let sql = format!(
        "SELECT {DEAD_LETTER_COLUMNS} FROM dead_letters d JOIN webhooks w ON w.id = d.row_id WHERE d.id = $1"
    );
    query_opt(t, &sql, &[&id])
        .await?
        .as_ref()
        .map(dead_letter_from)
        .transpose()
}

async fn activate_keys(
    t: &Transaction<'_>,
    row_id: i64,
    keys: &[String],
) -> Result<(), QueueError> {
    execute(
        t,
        "INSERT INTO active_keys (row_id, key) SELECT DISTINCT $1::bigint, key FROM unnest($2::text[]) AS key \
         WHERE key <> '' ON CONFLICT DO NOTHING",
        &[&row_id, &keys],
    )
    .await?;
    Ok(())
}

pub async fn replay(
    t: &Transaction<'_>,
    items: &[Replay],
    now: i64,
    max_age_ms: i64,
) -> Result<Vec<i64>, QueueError> {
    let mut replayed = Vec::new();
    for item in items {
        let id = item.dead_letter_id;
        let Some(row) = query_opt(
            t,
            "DELETE FROM dead_letters WHERE id = $1 RETURNING row_id",
            &[&id],
        )
        .await?
        else {
            continue;
        };
        let row_id: i64 = row.try_get(0)?;
        if let Some(keys) = &item.order_keys {
            execute(
                t,
                "UPDATE webhooks SET order_keys = $2 WHERE id = $1",
                &[&row_id, keys],
            )
            .await?;
        }
        let deadline = now.saturating_add(max_age_ms);
        let keys = query_opt(
            t,
            "UPDATE webhooks SET state = 'pending', due_at = $2, attempts = 0, deadline_at = $3, \
             finished_at = NULL, leased_until = NULL, last_error = NULL \
             WHERE id = $1 AND state IN ('dead', 'delivered') RETURNING order_keys",
            &[&row_id, &now, &deadline],
        )
        .await?;
        if let Some(keys) = keys {
            activate_keys(t, row_id, &keys.try_get::<_, Vec<String>>(0)?).await?;
        }
        replayed.push(id);
    }
    Ok(replayed)
}

pub async fn set_body(
    t: &Transaction<'_>,
    id: i64,
    body: &[u8],
    kind: BodyKind,
) -> Result<SetBody, QueueError> {
    let found = query_opt(
        t,
        "SELECT row_id, code FROM dead_letters WHERE id = $1",
        &[&id],
    )
    .await?;
    let Some(found) = found else {
        return Ok(SetBody::NotFound);
    };
    if DeadCode::parse(found.try_get(1)?) != Some(DeadCode::InvalidBody) {
        return Ok(SetBody::NotInvalidBody);
    }
    let row_id: i64 = found.try_get(0)?;
    execute(
        t,
        "UPDATE webhooks SET body = $2, content_type = $3 WHERE id = $1",
        &[&row_id, &body, &kind.as_str()],
    )
    .await?;
    Ok(SetBody::Replaced)
}

pub async fn delete_dead_letter(t: &Transaction<'_>, id: i64) -> Result<bool, QueueError> {
    let Some(row) = query_opt(
        t,
        "DELETE FROM dead_letters WHERE id = $1 RETURNING row_id",
        &[&id],
    )
    .await?
    else {
        return Ok(false);
    };
    let row_id: i64 = row.try_get(0)?;
    execute(
        t,
        "DELETE FROM webhooks WHERE id = $1 AND state = 'dead' \
         AND NOT EXISTS (SELECT 1 FROM dead_letters d WHERE d.row_id = $1)",
        &[&row_id],
    )
    .await?;
    Ok(true)
}

pub async fn webhook_by_request_id(
    t: &Transaction<'_>,
    request_id: &str,
) -> Result<Option<WebhookView>, QueueError> {
    let row = query_opt(
        t,
        "SELECT id FROM webhooks WHERE request_id = $1 ORDER BY id DESC LIMIT 1",
        &[&request_id],
    )
    .await?;
    match row {
        Some(r) => webhook_view(t, r.try_get(0)?).await,
        None => Ok(None),
    }
}

/// One row as the admin API shows it, with its dead letters.
pub async fn webhook_view(t: &Transaction<'_>, id: i64) -> Result<Option<WebhookView>, QueueError> {
    let row = query_opt(
        t,
        "SELECT id, route, account, state, attempts, request_id, received_at, delivered, last_error, \
         finished_at, body_dropped_at FROM webhooks WHERE id = $1",
        &[&id],
    )
    .await?;
    let Some(r) = row else { return Ok(None) };
    let mut view = WebhookView {
        id: r.try_get(0)?,
        route: r.try_get(1)?,
        account: r.try_get(2)?,
        state: parsed(&r, 3, RowState::parse)?,
        attempts: to_u32(r.try_get(4)?),
        request_id: r.try_get(5)?,
        received_at_ms: r.try_get(6)?,
        delivered: indexes(r.try_get(7)?),
        last_error: r.try_get(8)?,
        finished_at_ms: r.try_get(9)?,
        body_dropped_at_ms: r.try_get(10)?,
        dead_letters: Vec::new(),
    };
    let sql = format!(
        "SELECT {DEAD_LETTER_COLUMNS} FROM dead_letters d JOIN webhooks w ON w.id = d.row_id \
         WHERE d.row_id = $1 ORDER BY d.id"
    );
    view.dead_letters = query(t, &sql, &[&view.id])
        .await?
        .iter()
        .map(dead_letter_from)
        .collect::<Result<_, _>>()?;
    Ok(Some(view))
}

pub async fn purge(
    t: &Transaction<'_>,
    delivered_before: i64,
    dead_before: i64,
) -> Result<PurgeCounts, QueueError> {
    let delivered = execute(
        t,
        "DELETE FROM webhooks WHERE state = 'delivered' AND finished_at < $1",
        &[&delivered_before],
    )
    .await?;
    let dead = execute(
        t,
        "DELETE FROM dead_letters WHERE dead_at < $1",
        &[&dead_before],
    )
    .await?;
    execute(
        t,
        "DELETE FROM webhooks w WHERE state = 'dead' AND NOT EXISTS (SELECT 1 FROM dead_letters d WHERE d.row_id = w.id)",
        &[],
    )
    .await?;
    // Dedup keys outlive the window by far at the delivered retention.
    execute(
        t,
        "DELETE FROM dedup WHERE received_at < $1",
        &[&delivered_before],
    )
    .await?;
    Ok(PurgeCounts { delivered, dead })
}
