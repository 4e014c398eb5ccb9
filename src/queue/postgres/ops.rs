//! PostgreSQL statements of the delivery path (enqueue, claim, complete, slots), each inside a
//! transaction; the admin and housekeeping statements are in `postgres_admin.rs`.

use deadpool_postgres::Transaction;
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use crate::body::BodyKind;
use crate::queue::{Claimed, Enqueued, NewDeadLetter, NewWebhook, Next, QueueError, RowOutcome};

pub(super) type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

/// The database clock in milliseconds: leases and slots are judged by one clock for every replica.
const NOW_MS: &str = "(extract(epoch FROM clock_timestamp()) * 1000)::bigint";
/// Advisory lock classes (two-key form, so they never meet the migration's one-key lock).
const CLAIM_LOCK: i32 = 0x0F7A_0001;
const SLOT_LOCK: i32 = 0x0F7A_0002;
/// Advisory locks are database-wide: the key names the schema too, so deployments (and tests)
/// in other schemas of one database never wait on each other's claims and slots.
const ACCOUNT_LOCK: &str =
    "SELECT pg_advisory_xact_lock($1, hashtext(coalesce(current_schema(), '') || '/' || $2))";
/// The NOTIFY channel; the payload is the schema, so queues in other schemas ignore it.
pub const CHANNEL: &str = "freshtap_work";

pub(super) async fn query(
    t: &Transaction<'_>,
    sql: &str,
    params: Params<'_>,
) -> Result<Vec<Row>, QueueError> {
    let statement = t.prepare_cached(sql).await?;
    Ok(t.query(&statement, params).await?)
}

pub(super) async fn query_opt(
    t: &Transaction<'_>,
    sql: &str,
    params: Params<'_>,
) -> Result<Option<Row>, QueueError> {
    let statement = t.prepare_cached(sql).await?;
    Ok(t.query_opt(&statement, params).await?)
}

pub(super) async fn query_one(
    t: &Transaction<'_>,
    sql: &str,
    params: Params<'_>,
) -> Result<Row, QueueError> {
    let statement = t.prepare_cached(sql).await?;
    Ok(t.query_one(&statement, params).await?)
}

pub(super) async fn execute(
    t: &Transaction<'_>,
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

/// The claim, in one statement: due rows of the account, oldest first, skipping a row while
/// another unfinished row shares one of its order keys and is earlier, or is leased (a row of
/// another replica may commit a lower id after a later row was claimed). Claims of one account
/// are serialised by an advisory lock taken just before, so each sees the previous one's leases.
const CLAIM: &str = "WITH now AS (SELECT {NOW} AS ms), \
     picked AS ( \
       SELECT w.id FROM webhooks w, now \
       WHERE w.account = $1 \
         AND ((w.state = 'pending' AND w.due_at <= now.ms) OR (w.state = 'leased' AND w.leased_until < now.ms)) \
         AND NOT EXISTS ( \
           SELECT 1 FROM active_keys a \
           JOIN active_keys b ON b.key = a.key AND b.row_id <> a.row_id \
           JOIN webhooks o ON o.id = b.row_id \
           WHERE a.row_id = w.id \
             AND (b.row_id < a.row_id OR (o.state = 'leased' AND o.leased_until >= now.ms))) \
       ORDER BY w.id LIMIT $2 \
       FOR UPDATE OF w SKIP LOCKED) \
     UPDATE webhooks w SET state = 'leased', leased_until = (SELECT ms FROM now) + $3 \
     FROM picked WHERE w.id = picked.id \
     RETURNING w.id, w.route, w.account, w.content_type, w.body, w.request_id, w.received_at, w.attempts, \
       w.deadline_at, w.delivered || ARRAY(SELECT d.record_index FROM dead_letters d \
                                           WHERE d.row_id = w.id AND d.record_index IS NOT NULL)";

pub async fn claim(
    t: &Transaction<'_>,
    account: &str,
    limit: i64,
    lease_ms: i64,
) -> Result<Vec<Claimed>, QueueError> {
    query(t, ACCOUNT_LOCK, &[&CLAIM_LOCK, &account]).await?;
    let sql = CLAIM.replace("{NOW}", NOW_MS);
    let rows = query(t, &sql, &[&account, &limit, &lease_ms]).await?;
    let mut claimed = rows
        .iter()
        .map(|r| {
            Ok(Claimed {
                id: r.try_get(0)?,
                route: r.try_get(1)?,
                account: r.try_get(2)?,
                kind: BodyKind::from_stored(r.try_get(3)?),
                body: r.try_get(4)?,
                request_id: r.try_get(5)?,
                received_at_ms: r.try_get(6)?,
                attempts: to_u32(r.try_get(7)?),
                deadline_ms: r.try_get(8)?,
                done: indexes(r.try_get(9)?),
            })
        })
        .collect::<Result<Vec<_>, QueueError>>()?;
    claimed.sort_by_key(|c| c.id);
    Ok(claimed)
}

pub async fn complete(
    t: &Transaction<'_>,
    outcomes: &[RowOutcome],
    now: i64,
) -> Result<(), QueueError> {
    let mut ordered: Vec<&RowOutcome> = outcomes.iter().collect();
    ordered.sort_by_key(|o| o.id); // one lock order for every writer: no deadlock between completes
    for outcome in ordered {
        let id = outcome.id;
        let Some(row) = query_opt(
            t,
            "SELECT attempts FROM webhooks WHERE id = $1 FOR UPDATE",
            &[&id],
        )
        .await?
        else {
            continue;
        };
        let attempts: i32 = row.try_get(0)?;
        if !outcome.delivered.is_empty() {
            let delivered: Vec<i32> = outcome.delivered.iter().copied().map(to_i32).collect();
            execute(
                t,
                "UPDATE webhooks SET delivered = ARRAY(SELECT DISTINCT i FROM unnest(delivered || $2::int[]) AS i ORDER BY i) \
                 WHERE id = $1",
                &[&id, &delivered],
            )
            .await?;
        }
        insert_dead_letters(t, id, &outcome.dead, attempts.saturating_add(1), now).await?;
        settle_row(t, id, &outcome.next, now).await?;
    }
    Ok(())
}

/// The row's state after a delivery: finished, pending again with backoff, or released.
async fn settle_row(t: &Transaction<'_>, id: i64, next: &Next, now: i64) -> Result<(), QueueError> {
    match next {
        Next::Finished => {
            execute(
                t,
                "UPDATE webhooks SET state = CASE WHEN EXISTS (SELECT 1 FROM dead_letters d WHERE d.row_id = $1) \
                 THEN 'dead' ELSE 'delivered' END, finished_at = $2, leased_until = NULL, \
                 attempts = attempts + 1 WHERE id = $1",
                &[&id, &now],
            )
            .await?;
            execute(t, "DELETE FROM active_keys WHERE row_id = $1", &[&id]).await?;
        }
        Next::Retry {
            due_at_ms,
            count_attempt,
            error,
        } => {
            execute(
                t,
                "UPDATE webhooks SET state = 'pending', due_at = $2, leased_until = NULL, \
                 attempts = attempts + $3, last_error = $4 WHERE id = $1",
                &[&id, due_at_ms, &i32::from(*count_attempt), error],
            )
            .await?;
        }
        Next::Release => {
            execute(
                t,
                "UPDATE webhooks SET state = 'pending', due_at = $2, leased_until = NULL WHERE id = $1",
                &[&id, &now],
            )
            .await?;
        }
    }
    Ok(())
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

/// Takes a CleverTap request slot for the account if fewer than `limit` unexpired ones are held
/// (by any replica). Slots of one account are counted under its advisory lock; expired slots
/// (a replica killed mid-request) are reclaimed first.
pub async fn acquire_slot(
    t: &Transaction<'_>,
    account: &str,
    limit: i64,
    ttl_ms: i64,
) -> Result<Option<i64>, QueueError> {
    query(t, ACCOUNT_LOCK, &[&SLOT_LOCK, &account]).await?;
    let reclaim =
        format!("DELETE FROM delivery_slots WHERE account = $1 AND expires_at <= {NOW_MS}");
    execute(t, &reclaim, &[&account]).await?;
    let take = format!(
        "INSERT INTO delivery_slots (account, expires_at) SELECT $1, {NOW_MS} + $3 \
         WHERE (SELECT count(*) FROM delivery_slots WHERE account = $1) < $2 RETURNING id"
    );
    let row = query_opt(t, &take, &[&account, &limit, &ttl_ms]).await?;
    Ok(row.map(|r| r.try_get(0)).transpose()?)
}

pub async fn release_slot(t: &Transaction<'_>, slot: i64) -> Result<(), QueueError> {
    execute(t, "DELETE FROM delivery_slots WHERE id = $1", &[&slot]).await?;
    Ok(())
}
