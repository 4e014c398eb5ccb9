//! PostgreSQL statements of intake (an unreadable body, dead letters), and the statement
//! helpers every module of the backend uses; a group's enqueue is in `enqueue.rs`; claim,
//! complete and slots are in `delivery.rs`, the admin and housekeeping statements in `admin.rs`.

use deadpool_postgres::{GenericClient, Transaction};
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use crate::queue::{NewDeadLetter, NewWebhook, QueueError};

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
