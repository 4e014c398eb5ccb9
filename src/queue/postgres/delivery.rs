//! PostgreSQL statements of the delivery path: claim, complete and the account's request slots.
//!
//! Each call is a fixed number of round trips, whatever the batch size: the claim and a slot
//! take their advisory lock and run their one statement pipelined in a short transaction;
//! `complete` is one set-based statement for every row of a delivery (its own transaction),
//! and so is `release_slot`.

use deadpool_postgres::{Client, Transaction};
use futures_util::future::try_join;

use super::ops::{execute, indexes, to_i32, to_u32};
use crate::body::BodyKind;
use crate::queue::{ClaimLimit, Claimed, Next, QueueError, RowOutcome};

/// The database clock in milliseconds: leases and slots are judged by one clock for every replica.
const NOW_MS: &str = "(extract(epoch FROM clock_timestamp()) * 1000)::bigint";
/// Advisory lock classes (two-key form, so they never meet the migration's one-key lock).
const CLAIM_LOCK: i32 = 0x0F7A_0001;
const SLOT_LOCK: i32 = 0x0F7A_0002;
/// Advisory locks are database-wide: the key names the schema too, so deployments (and tests)
/// in other schemas of one database never wait on each other's claims and slots.
const ACCOUNT_LOCK: &str =
    "SELECT pg_advisory_xact_lock($1, hashtext(coalesce(current_schema(), '') || '/' || $2))";

/// Runs the account's advisory lock and then `sql`, pipelined: one round trip for both. The
/// server runs them in order, so `sql` takes its snapshot after the lock is held and sees what
/// the previous holder committed.
async fn locked(
    t: &Transaction<'_>,
    class: i32,
    account: &str,
    sql: &str,
    params: super::ops::Params<'_>,
) -> Result<Vec<tokio_postgres::Row>, QueueError> {
    let (lock, statement) = try_join(t.prepare_cached(ACCOUNT_LOCK), t.prepare_cached(sql)).await?;
    // `try_join` polls the lock first, so its request is queued on the connection first.
    let (_, rows) = try_join(
        t.query(&lock, &[&class, &account]),
        t.query(&statement, params),
    )
    .await?;
    Ok(rows)
}

/// The claim, in one statement: due rows of the account, oldest first, skipping a row while
/// another unfinished row shares one of its order keys and is earlier, or is leased (a row of
/// another replica may commit a lower id after a later row was claimed). Claims of one account
/// are serialised by an advisory lock taken just before, so each sees the previous one's leases.
///
/// Pending rows and expired leases are read apart, each from its partial index in id order
/// (`webhooks_pending`, `webhooks_leased`), and the oldest `$2` of both are leased while
/// their bodies' bytes stay within `$4` (the first row whatever its size; `octet_length` reads
/// a stored body's size without reading the body): a claim never walks the finished rows, nor
/// the leases in flight, in front of the due ones.
const CLAIM: &str = "WITH now AS (SELECT {NOW} AS ms), \
     due AS ( \
       SELECT w.id FROM webhooks w, now \
       WHERE w.account = $1 AND w.state = 'pending' AND w.due_at <= now.ms AND {FREE} \
       ORDER BY w.id LIMIT $2 FOR UPDATE OF w SKIP LOCKED), \
     expired AS ( \
       SELECT w.id FROM webhooks w, now \
       WHERE w.account = $1 AND w.state = 'leased' AND w.leased_until < now.ms AND {FREE} \
       ORDER BY w.id LIMIT $2 FOR UPDATE OF w SKIP LOCKED), \
     oldest AS (SELECT id FROM due UNION ALL SELECT id FROM expired ORDER BY id LIMIT $2), \
     sized AS ( \
       SELECT o.id, sum(octet_length(w.body)) OVER (ORDER BY o.id) AS upto, \
         row_number() OVER (ORDER BY o.id) AS n \
       FROM oldest o JOIN webhooks w ON w.id = o.id), \
     picked AS (SELECT id FROM sized WHERE n = 1 OR upto <= $4::bigint) \
     UPDATE webhooks w SET state = 'leased', leased_until = (SELECT ms FROM now) + $3 \
     FROM picked WHERE w.id = picked.id \
     RETURNING w.id, w.route, w.account, w.content_type, w.body, w.request_id, w.received_at, w.attempts, \
       w.deadline_at, w.delivered || ARRAY(SELECT d.record_index FROM dead_letters d \
                                           WHERE d.row_id = w.id AND d.record_index IS NOT NULL)";
/// A candidate `w` is free when no other unfinished row sharing an order key is earlier or
/// leased (the per-identity order).
const FREE: &str = "NOT EXISTS ( \
       SELECT 1 FROM active_keys a \
       JOIN active_keys b ON b.key = a.key AND b.row_id <> a.row_id \
       JOIN webhooks o ON o.id = b.row_id \
       WHERE a.row_id = w.id \
         AND (b.row_id < a.row_id OR (o.state = 'leased' AND o.leased_until >= now.ms)))";

pub async fn claim(
    t: &Transaction<'_>,
    account: &str,
    limit: ClaimLimit,
    lease_ms: i64,
) -> Result<Vec<Claimed>, QueueError> {
    let sql = CLAIM.replace("{NOW}", NOW_MS).replace("{FREE}", FREE);
    let rows_limit = i64::try_from(limit.rows).unwrap_or(i64::MAX);
    let bytes_limit = i64::try_from(limit.bytes).unwrap_or(i64::MAX);
    let params: super::ops::Params<'_> = &[&account, &rows_limit, &lease_ms, &bytes_limit];
    let rows = locked(t, CLAIM_LOCK, account, &sql, params).await?;
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

/// Every row of a delivery in one statement (so one transaction and one round trip):
/// - `locked` takes the rows in id order — one lock order for every writer, so two completes
///   never deadlock — and skips rows that are gone (erased meanwhile);
/// - `dl` adds the dead letters, counted as the attempt this delivery was (`attempts + 1`);
/// - `up` writes each row once: delivered indexes merged, then finished (`dead` if it has any
///   dead letter, new or earlier), pending again with its backoff, or released;
/// - the finished rows' order keys are dropped, unblocking their identities' next rows.
const COMPLETE: &str = "WITH o AS ( \
       SELECT * FROM unnest($1::bigint[], $2::boolean[], $3::bigint[], $4::int[], $5::text[], $6::boolean[]) \
         AS o(id, finished, due_at, counted, error, has_dead)), \
     locked AS (SELECT w.id, w.attempts FROM webhooks w WHERE w.id = ANY($1) ORDER BY w.id FOR UPDATE), \
     dl AS ( \
       INSERT INTO dead_letters (row_id, record_index, code, reason, attempts, dead_at) \
       SELECT d.row_id, d.record_index, d.code, d.reason, l.attempts + 1, $11 \
       FROM unnest($7::bigint[], $8::int[], $9::text[], $10::text[]) WITH ORDINALITY \
         AS d(row_id, record_index, code, reason, n) \
       JOIN locked l ON l.id = d.row_id ORDER BY d.n), \
     dv AS ( \
       SELECT row_id, array_agg(i) AS indexes FROM unnest($12::bigint[], $13::int[]) AS v(row_id, i) \
       GROUP BY row_id), \
     up AS ( \
       UPDATE webhooks w SET \
         delivered = CASE WHEN dv.indexes IS NULL THEN w.delivered \
           ELSE ARRAY(SELECT DISTINCT i FROM unnest(w.delivered || dv.indexes) AS i ORDER BY i) END, \
         state = CASE WHEN NOT o.finished THEN 'pending' \
           WHEN o.has_dead OR EXISTS (SELECT 1 FROM dead_letters d WHERE d.row_id = w.id) THEN 'dead' \
           ELSE 'delivered' END, \
         finished_at = CASE WHEN o.finished THEN $11 ELSE w.finished_at END, \
         due_at = coalesce(o.due_at, w.due_at), \
         leased_until = NULL, \
         attempts = w.attempts + o.counted, \
         last_error = coalesce(o.error, w.last_error) \
       FROM locked l JOIN o ON o.id = l.id LEFT JOIN dv ON dv.row_id = l.id \
       WHERE w.id = l.id \
       RETURNING w.id, o.finished) \
     DELETE FROM active_keys a USING up WHERE a.row_id = up.id AND up.finished";

/// The outcomes as the columns `COMPLETE` unnests.
#[derive(Default)]
struct Columns<'a> {
    ids: Vec<i64>,
    finished: Vec<bool>,
    due_at: Vec<Option<i64>>,
    counted: Vec<i32>,
    errors: Vec<Option<&'a str>>,
    has_dead: Vec<bool>,
    dead_rows: Vec<i64>,
    dead_indexes: Vec<Option<i32>>,
    dead_codes: Vec<String>,
    dead_reasons: Vec<&'a str>,
    delivered_rows: Vec<i64>,
    delivered_indexes: Vec<i32>,
}

impl<'a> Columns<'a> {
    fn of(outcomes: &'a [RowOutcome], now: i64) -> Self {
        let mut c = Columns::default();
        let mut ordered: Vec<&RowOutcome> = outcomes.iter().collect();
        ordered.sort_by_key(|o| o.id);
        for outcome in ordered {
            let (finished, due_at, counted, error) = match &outcome.next {
                Next::Finished => (true, None, 1, None),
                Next::Retry {
                    due_at_ms,
                    count_attempt,
                    error,
                } => (
                    false,
                    Some(*due_at_ms),
                    i32::from(*count_attempt),
                    Some(error.as_str()),
                ),
                Next::Release => (false, Some(now), 0, None),
            };
            c.ids.push(outcome.id);
            c.finished.push(finished);
            c.due_at.push(due_at);
            c.counted.push(counted);
            c.errors.push(error);
            c.has_dead.push(!outcome.dead.is_empty());
            for letter in &outcome.dead {
                c.dead_rows.push(outcome.id);
                c.dead_indexes.push(letter.record_index.map(to_i32));
                c.dead_codes.push(letter.code.as_text().into_owned());
                c.dead_reasons.push(&letter.reason);
            }
            for &index in &outcome.delivered {
                c.delivered_rows.push(outcome.id);
                c.delivered_indexes.push(to_i32(index));
            }
        }
        c
    }
}

/// Records a delivery's outcomes: one statement, outside any explicit transaction.
pub async fn complete(
    client: &Client,
    outcomes: &[RowOutcome],
    now: i64,
) -> Result<(), QueueError> {
    if outcomes.is_empty() {
        return Ok(());
    }
    let c = Columns::of(outcomes, now);
    let statement = client.prepare_cached(COMPLETE).await?;
    client
        .execute(
            &statement,
            &[
                &c.ids,
                &c.finished,
                &c.due_at,
                &c.counted,
                &c.errors,
                &c.has_dead,
                &c.dead_rows,
                &c.dead_indexes,
                &c.dead_codes,
                &c.dead_reasons,
                &now,
                &c.delivered_rows,
                &c.delivered_indexes,
            ],
        )
        .await?;
    Ok(())
}

/// Takes a CleverTap request slot for the account if fewer than `limit` unexpired ones are held
/// (by any replica). Slots of one account are counted under its advisory lock; expired slots
/// (a replica killed mid-request) are reclaimed in the same statement.
const TAKE_SLOT: &str = "WITH now AS (SELECT {NOW} AS ms), \
     reclaimed AS (DELETE FROM delivery_slots s USING now WHERE s.account = $1 AND s.expires_at <= now.ms) \
     INSERT INTO delivery_slots (account, expires_at) SELECT $1, now.ms + $3 FROM now \
     WHERE (SELECT count(*) FROM delivery_slots s, now WHERE s.account = $1 AND s.expires_at > now.ms) < $2 \
     RETURNING id";

pub async fn acquire_slot(
    t: &Transaction<'_>,
    account: &str,
    limit: i64,
    ttl_ms: i64,
) -> Result<Option<i64>, QueueError> {
    let sql = TAKE_SLOT.replace("{NOW}", NOW_MS);
    let rows = locked(t, SLOT_LOCK, account, &sql, &[&account, &limit, &ttl_ms]).await?;
    Ok(rows.first().map(|r| r.try_get(0)).transpose()?)
}

/// Gives a slot back: one statement, outside any explicit transaction.
pub async fn release_slot(client: &Client, slot: i64) -> Result<(), QueueError> {
    execute(client, "DELETE FROM delivery_slots WHERE id = $1", &[&slot]).await?;
    Ok(())
}
