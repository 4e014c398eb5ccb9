//! PostgreSQL statements of intake (enqueue, the group's dedup keys), and the statement
//! helpers every module of the backend uses; claim, complete and slots are in `delivery.rs`,
//! the admin and housekeeping statements in `admin.rs`.

use deadpool_postgres::{GenericClient, Transaction};
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use crate::queue::{Enqueued, NewDeadLetter, NewWebhook, QueueError};

pub(super) type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

/// The NOTIFY channel; the payload is the schema, so queues in other schemas ignore it.
pub const CHANNEL: &str = "freshtap_work";

// The helpers run a cached prepared statement on a transaction or, for a statement that is
// its own transaction, directly on a pooled connection.

pub(super) async fn query<C: GenericClient>(
    t: &C,
    sql: &str,
    params: Params<'_>,
) -> Result<Vec<Row>, QueueError> {
    let statement = t.prepare_cached(sql).await?;
    Ok(t.query(&statement, params).await?)
}

pub(super) async fn query_opt<C: GenericClient>(
    t: &C,
    sql: &str,
    params: Params<'_>,
) -> Result<Option<Row>, QueueError> {
    let statement = t.prepare_cached(sql).await?;
    Ok(t.query_opt(&statement, params).await?)
}

pub(super) async fn query_one<C: GenericClient>(
    t: &C,
    sql: &str,
    params: Params<'_>,
) -> Result<Row, QueueError> {
    let statement = t.prepare_cached(sql).await?;
    Ok(t.query_one(&statement, params).await?)
}

pub(super) async fn execute<C: GenericClient>(
    t: &C,
    sql: &str,
    params: Params<'_>,
) -> Result<u64, QueueError> {
    let statement = t.prepare_cached(sql).await?;
    Ok(t.execute(&statement, params).await?)
}

pub(super) fn to_u32(value: i32) -> u32 {
    u32::try_from(value).unwrap_or(0)
}

pub(super) fn to_i32(value: u32) -> i32 {
    i32::try_from(value).unwrap_or(i32::MAX)
}

pub(super) fn indexes(values: Vec<i32>) -> Vec<u32> {
    values.into_iter().map(to_u32).collect()
}

/// Wakes the workers of every replica (the payload names this schema).
pub async fn notify(client: &tokio_postgres::Client) -> Result<(), QueueError> {
    let sql = format!("SELECT pg_notify('{CHANNEL}', coalesce(current_schema(), ''))");
    client.query(&sql, &[]).await?;
    Ok(())
}

/// One statement per webhook: claim the (route, body hash) dedup key — the primary key makes
/// a concurrent insert of the same key on another replica wait for this one — and, if it was
/// free or older than the window, insert the row and its order keys under the id it took.
/// When the key is held within the window it answers the holder's row id, or nothing if the
/// holder committed after this statement's snapshot (then `dedup_holder` reads it).
const ENQUEUE: &str = "WITH d AS ( \
       INSERT INTO dedup (route, body_hash, row_id, received_at) \
       VALUES ($1, $5, nextval('webhooks_id_seq'), $7) \
       ON CONFLICT (route, body_hash) DO UPDATE SET row_id = EXCLUDED.row_id, received_at = EXCLUDED.received_at \
       WHERE dedup.received_at < $10 RETURNING row_id), \
     w AS ( \
       INSERT INTO webhooks (id, route, account, content_type, body, body_hash, request_id, received_at, state, \
                             due_at, deadline_at, order_keys, finished_at) \
       SELECT row_id, $1, $2, $3, $4, $5, $6, $7, $11, $7, $8, $9, CASE WHEN $11::text = 'dead' THEN $7::bigint END FROM d RETURNING id), \
     k AS ( \
       INSERT INTO active_keys (row_id, key) SELECT DISTINCT w.id, key FROM w, unnest($9::text[]) AS key \
       WHERE key <> '' AND $11 = 'pending' ON CONFLICT DO NOTHING) \
     SELECT id, true FROM w \
     UNION ALL SELECT row_id, false FROM dedup WHERE route = $1 AND body_hash = $5 AND NOT EXISTS (SELECT 1 FROM d)";

/// The same for a body that is never a duplicate (sending it again would change CleverTap).
const ENQUEUE_ALWAYS: &str = "WITH w AS ( \
       INSERT INTO webhooks (route, account, content_type, body, body_hash, request_id, received_at, state, \
                             due_at, deadline_at, order_keys, finished_at) \
       VALUES ($1, $2, $3, $4, $5, $6, $7, $10, $7, $8, $9, CASE WHEN $10::text = 'dead' THEN $7::bigint END) RETURNING id), \
     k AS ( \
       INSERT INTO active_keys (row_id, key) SELECT DISTINCT w.id, key FROM w, unnest($9::text[]) AS key \
       WHERE key <> '' AND $10 = 'pending' ON CONFLICT DO NOTHING) \
     SELECT id, true FROM w";

/// Inserts a group of webhooks in this transaction; the statements are pipelined.
pub async fn enqueue(
    t: &Transaction<'_>,
    rows: &[(NewWebhook, i64)],
) -> Result<Vec<Enqueued>, QueueError> {
    let deduplicated = t.prepare_cached(ENQUEUE).await?;
    let always = t.prepare_cached(ENQUEUE_ALWAYS).await?;
    let sent = rows.iter().map(|(row, since)| {
        let (deduplicated, always) = (&deduplicated, &always);
        async move {
            let hash: &[u8] = &row.body_hash;
            let state = if row.finished { "dead" } else { "pending" };
            let kind = row.kind.as_str();
            let common: [&(dyn ToSql + Sync); 9] = [
                &row.route,
                &row.account,
                &kind,
                &row.body,
                &hash,
                &row.request_id,
                &row.received_at_ms,
                &row.deadline_ms,
                &row.order_keys,
            ];
            if row.dedup {
                let mut params = common.to_vec();
                params.extend([since as &(dyn ToSql + Sync), &state]);
                t.query_opt(deduplicated, &params).await
            } else {
                let mut params = common.to_vec();
                params.push(&state);
                t.query_opt(always, &params).await
            }
        }
    });
    let answers = futures_util::future::join_all(sent).await;
    let mut results = Vec::with_capacity(rows.len());
    for ((row, _), answer) in rows.iter().zip(answers) {
        let result = match answer? {
            Some(r) if r.try_get::<_, bool>(1)? => Enqueued::Accepted(r.try_get(0)?),
            Some(r) => Enqueued::Duplicate(r.try_get(0)?),
            None => Enqueued::Duplicate(dedup_holder(t, row).await?),
        };
        if let Enqueued::Accepted(id) = result {
            insert_dead_letters(t, id, &row.refused, 0, row.received_at_ms).await?;
        }
        results.push(result);
    }
    Ok(results)
}

async fn dedup_holder(t: &Transaction<'_>, row: &NewWebhook) -> Result<i64, QueueError> {
    let hash: &[u8] = &row.body_hash;
    let statement = t
        .prepare_cached("SELECT row_id FROM dedup WHERE route = $1 AND body_hash = $2")
        .await?;
    Ok(t.query_one(&statement, &[&row.route, &hash])
        .await?
        .try_get(0)?)
}

pub async fn enqueue_invalid(
    t: &Transaction<'_>,
    row: &NewWebhook,
    reason: &str,
) -> Result<(i64, i64), QueueError> {
    // An empty hash and no dedup key: an unreadable body never makes a fixed resend a duplicate.
    let id: i64 = query_one(
        t,
        "INSERT INTO webhooks (route, account, content_type, body, body_hash, request_id, received_at, state, \
         due_at, deadline_at, order_keys, finished_at) \
         VALUES ($1, $2, $3, $4, ''::bytea, $5, $6, 'dead', $6, $7, $8, $6) RETURNING id",
        &[&row.route, &row.account, &row.kind.as_str(), &row.body, &row.request_id, &row.received_at_ms, &row.deadline_ms, &row.order_keys],
    )
    .await?
    .try_get(0)?;
    let letter: i64 = query_one(
        t,
        "INSERT INTO dead_letters (row_id, record_index, code, reason, attempts, dead_at) \
         VALUES ($1, NULL, 'invalid_body', $2, 0, $3) RETURNING id",
        &[&id, &reason, &row.received_at_ms],
    )
    .await?
    .try_get(0)?;
    Ok((id, letter))
}

pub(super) async fn insert_dead_letters(
    t: &Transaction<'_>,
    row_id: i64,
    dead: &[NewDeadLetter],
    attempts: i32,
    now: i64,
) -> Result<(), QueueError> {
    for letter in dead {
        let index = letter.record_index.map(to_i32);
        execute(
            t,
            "INSERT INTO dead_letters (row_id, record_index, code, reason, attempts, dead_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
            &[
                &row_id,
                &index,
                &letter.code.as_text().as_ref(),
                &letter.reason,
                &attempts,
                &now,
            ],
        )
        .await?;
    }
    Ok(())
}
