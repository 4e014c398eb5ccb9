//! PostgreSQL statements of the privacy operations: erasure, what is held for one person, the
//! audit log, and delivered-body retention; each inside a transaction.

use deadpool_postgres::Transaction;
use tokio_postgres::Row;

use super::admin::{parsed, webhook_view};
use super::enqueue::enqueue;
use super::ops::{execute, query, query_one, query_opt};
use crate::body::BodyKind;
use crate::queue::privacy::{Matched, body_mentions, count, stored};
use crate::queue::{
    Actor, AuditEntry, Enqueued, Erasure, ErasureRecord, NewAudit, Propagation, QueueError,
    Removed, RowState, WebhookView,
};

/// Rows of one person (lowercased `key`), newest first: by order key, then by reading at most
/// `scan_limit` bodies whose identity was not extracted. Also how many bodies were read, and
/// whether more were left unread. The erasures' own deletions (`_delete:` routes) are not his.
async fn matching(
    t: &Transaction<'_>,
    key: &str,
    scan_limit: usize,
) -> Result<Matched, QueueError> {
    let mut rows = Vec::new();
    for r in query(
        t,
        "SELECT id, state FROM webhooks WHERE $1 = ANY(order_keys) \
         AND NOT starts_with(route, '_delete:') FOR UPDATE",
        &[&key],
    )
    .await?
    {
        rows.push((r.try_get::<_, i64>(0)?, parsed(&r, 1, RowState::parse)?));
    }
    let limit = i64::try_from(scan_limit).unwrap_or(i64::MAX - 1);
    let found = query(
        t,
        "SELECT id, state, content_type, body FROM webhooks \
         WHERE (order_keys = '{}' OR order_keys = ARRAY[encode(body_hash, 'hex')]) \
         AND NOT starts_with(route, '_delete:') ORDER BY id DESC LIMIT $1",
        &[&(limit + 1)],
    )
    .await?;
    let truncated = found.len() > scan_limit;
    let mut scanned = 0_u64;
    for r in found.iter().take(scan_limit) {
        scanned += 1;
        let kind = BodyKind::from_stored(r.try_get(2)?);
        if body_mentions(r.try_get(3)?, kind, key) {
            rows.push((r.try_get(0)?, parsed(r, 1, RowState::parse)?));
        }
    }
    Ok(Matched {
        rows,
        scanned,
        truncated,
    }
    .sorted())
}

pub async fn erase(
    t: &Transaction<'_>,
    e: &Erasure,
    now: i64,
) -> Result<ErasureRecord, QueueError> {
    let key = crate::queue::identity_key(&e.identity);
    let Matched {
        rows,
        scanned,
        truncated: scan_truncated,
    } = matching(t, &key, e.scan_limit).await?;
    let mut removed = Removed {
        scanned,
        scan_truncated,
        ..Removed::default()
    };
    for (id, state) in rows {
        if e.keep_pending && matches!(state, RowState::Pending | RowState::Leased) {
            continue;
        }
        removed.dead_letters +=
            execute(t, "DELETE FROM dead_letters WHERE row_id = $1", &[&id]).await?;
        execute(t, "DELETE FROM active_keys WHERE row_id = $1", &[&id]).await?;
        execute(t, "DELETE FROM dedup WHERE row_id = $1", &[&id]).await?;
        execute(t, "DELETE FROM webhooks WHERE id = $1", &[&id]).await?;
        removed.count(state);
    }
    let queued: Vec<_> = e.deletions.iter().map(|row| (row.clone(), now)).collect();
    let mut deletions = Vec::with_capacity(queued.len());
    for ((row, _), result) in queued.iter().zip(enqueue(t, &queued).await?) {
        let (Enqueued::Accepted(row_id) | Enqueued::Duplicate(row_id)) = result;
        {
            deletions.push(Propagation {
                account: row.account.clone(),
                row_id,
                state: Some(RowState::Pending),
            });
        }
    }
    let list = Propagation::list_text(&deletions);
    let r = query_one(
        t,
        "INSERT INTO erasures (at, credential, client, request_id, identity_hash, keep_pending, propagate, \
         pending, leased, delivered, dead, dead_letters, scanned, deletions) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) RETURNING id",
        &[
            &now,
            &e.actor.credential,
            &e.actor.client,
            &e.actor.request_id,
            &e.identity_hash,
            &e.keep_pending,
            &e.propagate,
            &stored(removed.pending),
            &stored(removed.leased),
            &stored(removed.delivered),
            &stored(removed.dead),
            &stored(removed.dead_letters),
            &stored(removed.scanned),
            &list,
        ],
    )
    .await?;
    Ok(ErasureRecord {
        id: r.try_get(0)?,
        at_ms: now,
        actor: e.actor.clone(),
        identity_hash: e.identity_hash.clone(),
        keep_pending: e.keep_pending,
        propagate: e.propagate,
        removed,
        deletions,
    })
}

pub async fn held_for(
    t: &Transaction<'_>,
    key: &str,
    limit: usize,
    scan_limit: usize,
) -> Result<Vec<WebhookView>, QueueError> {
    let Matched { rows, .. } = matching(t, key, scan_limit).await?;
    let mut views = Vec::new();
    for (id, _) in rows.into_iter().take(limit) {
        views.extend(webhook_view(t, id).await?);
    }
    Ok(views)
}

fn actor_from(r: &Row, first: usize) -> Result<Actor, QueueError> {
    Ok(Actor {
        credential: r.try_get(first)?,
        client: r.try_get(first + 1)?,
        request_id: r.try_get(first + 2)?,
    })
}

fn erasure_from(r: &Row) -> Result<ErasureRecord, QueueError> {
    Ok(ErasureRecord {
        id: r.try_get(0)?,
        at_ms: r.try_get(1)?,
        actor: actor_from(r, 2)?,
        identity_hash: r.try_get(5)?,
        keep_pending: r.try_get(6)?,
        propagate: r.try_get(7)?,
        removed: Removed {
            pending: count(r.try_get(8)?),
            leased: count(r.try_get(9)?),
            delivered: count(r.try_get(10)?),
            dead: count(r.try_get(11)?),
            dead_letters: count(r.try_get(12)?),
            scanned: count(r.try_get(13)?),
            scan_truncated: false,
        },
        deletions: Propagation::parse_list(r.try_get(14)?),
    })
}

pub async fn erasures(
    t: &Transaction<'_>,
    limit: usize,
    before: Option<i64>,
) -> Result<Vec<ErasureRecord>, QueueError> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut records = query(
        t,
        "SELECT id, at, credential, client, request_id, identity_hash, keep_pending, propagate, \
         pending, leased, delivered, dead, dead_letters, scanned, deletions FROM erasures \
         WHERE id < $1 ORDER BY id DESC LIMIT $2",
        &[&before.unwrap_or(i64::MAX), &limit],
    )
    .await?
    .iter()
    .map(erasure_from)
    .collect::<Result<Vec<_>, _>>()?;
    for deletion in records.iter_mut().flat_map(|r| r.deletions.iter_mut()) {
        let row = query_opt(
            t,
            "SELECT state FROM webhooks WHERE id = $1",
            &[&deletion.row_id],
        )
        .await?;
        deletion.state = match row {
            Some(r) => Some(parsed(&r, 0, RowState::parse)?),
            None => None,
        };
    }
    Ok(records)
}

pub async fn audit(t: &Transaction<'_>, entry: &NewAudit, now: i64) -> Result<i64, QueueError> {
    let r = query_one(
        t,
        "INSERT INTO audit_log (at, credential, client, request_id, action, target, detail) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        &[
            &now,
            &entry.actor.credential,
            &entry.actor.client,
            &entry.actor.request_id,
            &entry.action,
            &entry.target,
            &entry.detail,
        ],
    )
    .await?;
    Ok(r.try_get(0)?)
}

pub async fn audit_log(
    t: &Transaction<'_>,
    limit: usize,
    before: Option<i64>,
) -> Result<Vec<AuditEntry>, QueueError> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = query(
        t,
        "SELECT id, at, credential, client, request_id, action, target, detail FROM audit_log \
         WHERE id < $1 ORDER BY id DESC LIMIT $2",
        &[&before.unwrap_or(i64::MAX), &limit],
    )
    .await?;
    rows.iter()
        .map(|r| {
            Ok(AuditEntry {
                id: r.try_get(0)?,
                at_ms: r.try_get(1)?,
                actor: actor_from(r, 2)?,
                action: r.try_get(5)?,
                target: r.try_get(6)?,
                detail: r.try_get(7)?,
            })
        })
        .collect()
}

pub async fn drop_delivered_bodies(
    t: &Transaction<'_>,
    before: i64,
    now: i64,
) -> Result<u64, QueueError> {
    execute(
        t,
        "UPDATE webhooks w SET body = '\\x', body_dropped_at = $2, \
         order_keys = CASE WHEN starts_with(route, '_delete:') THEN '{}' ELSE order_keys END \
         WHERE state = 'delivered' AND body_dropped_at IS NULL \
         AND (finished_at < $1 OR starts_with(route, '_delete:')) \
         AND NOT EXISTS (SELECT 1 FROM dead_letters d WHERE d.row_id = w.id)",
        &[&before, &now],
    )
    .await
}
