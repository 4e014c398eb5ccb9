//! SQLite statements of the privacy operations: erasure, what is held for one person, the
//! audit log, and delivered-body retention; on the writer thread.

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::admin::{parsed, webhook_view};
use super::ops::enqueue;
use crate::body::BodyKind;
use crate::queue::privacy::{Matched, body_mentions, count, stored};
use crate::queue::{
    Actor, AuditEntry, Enqueued, Erasure, ErasureRecord, NewAudit, Propagation, Removed, RowState,
    WebhookView,
};

/// Rows of one person (lowercased `key`), newest first: by order key, then by reading at most
/// `scan_limit` bodies whose identity was not extracted. Also how many bodies were read, and
/// whether more were left unread. The erasures' own deletions (`_delete:` routes) are not his.
fn matching(c: &Connection, key: &str, scan_limit: usize) -> rusqlite::Result<Matched> {
    let mut rows: Vec<(i64, RowState)> = c
        .prepare_cached(
            "SELECT id, state FROM webhooks \
             WHERE instr(char(10) || order_keys || char(10), char(10) || ?1 || char(10)) > 0 \
             AND substr(route, 1, 8) <> '_delete:'",
        )?
        .query_map([key], |r| Ok((r.get(0)?, parsed(r, 1, RowState::parse)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let limit = i64::try_from(scan_limit).unwrap_or(i64::MAX - 1);
    let mut scan = c.prepare_cached(
        "SELECT w.id, w.state, w.content_type, b.body FROM webhooks w JOIN bodies b ON b.row_id = w.id \
         WHERE (w.order_keys = '' OR w.order_keys = lower(hex(w.body_hash))) \
         AND substr(w.route, 1, 8) <> '_delete:' ORDER BY w.id DESC LIMIT ?1",
    )?;
    let mut found = scan.query([limit + 1])?;
    let (mut scanned, mut truncated) = (0_u64, false);
    while let Some(r) = found.next()? {
        if scanned as usize >= scan_limit {
            truncated = true;
            break;
        }
        scanned += 1;
        let kind = BodyKind::from_stored(&r.get::<_, String>(2)?);
        if body_mentions(&r.get::<_, Vec<u8>>(3)?, kind, key) {
            rows.push((r.get(0)?, parsed(r, 1, RowState::parse)?));
        }
    }
    Ok(Matched {
        rows,
        scanned,
        truncated,
    }
    .sorted())
}

pub(super) fn erase(c: &Connection, e: &Erasure, now: i64) -> rusqlite::Result<ErasureRecord> {
    let key = crate::queue::identity_key(&e.identity);
    let Matched {
        rows,
        scanned,
        truncated: scan_truncated,
    } = matching(c, &key, e.scan_limit)?;
    let mut removed = Removed {
        scanned,
        scan_truncated,
        ..Removed::default()
    };
    for (id, state) in rows {
        if e.keep_pending && matches!(state, RowState::Pending | RowState::Leased) {
            continue;
        }
        let letters = c
            .prepare_cached("DELETE FROM dead_letters WHERE row_id = ?1")?
            .execute([id])?;
        removed.dead_letters += letters as u64;
        c.prepare_cached("DELETE FROM active_keys WHERE row_id = ?1")?
            .execute([id])?;
        c.prepare_cached("DELETE FROM webhooks WHERE id = ?1")?
            .execute([id])?;
        removed.count(state);
    }
    let mut deletions = Vec::with_capacity(e.deletions.len());
    for row in &e.deletions {
        let (Enqueued::Accepted(row_id) | Enqueued::Duplicate(row_id)) = enqueue(c, row, now)?;
        {
            deletions.push(Propagation {
                account: row.account.clone(),
                row_id,
                state: Some(RowState::Pending),
            });
        }
    }
    c.prepare_cached(
        "INSERT INTO erasures (at, credential, client, request_id, identity_hash, keep_pending, propagate, \
         pending, leased, delivered, dead, dead_letters, scanned, deletions) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
    )?
    .execute(params![
        now,
        e.actor.credential,
        e.actor.client,
        e.actor.request_id,
        e.identity_hash,
        e.keep_pending,
        e.propagate,
        stored(removed.pending),
        stored(removed.leased),
        stored(removed.delivered),
        stored(removed.dead),
        stored(removed.dead_letters),
        stored(removed.scanned),
        Propagation::list_text(&deletions),
    ])?;
    Ok(ErasureRecord {
        id: c.last_insert_rowid(),
        at_ms: now,
        actor: e.actor.clone(),
        identity_hash: e.identity_hash.clone(),
        keep_pending: e.keep_pending,
        propagate: e.propagate,
        removed,
        deletions,
    })
}

pub(super) fn held_for(
    c: &Connection,
    key: &str,
    limit: usize,
    scan_limit: usize,
) -> rusqlite::Result<Vec<WebhookView>> {
    let Matched { rows, .. } = matching(c, key, scan_limit)?;
    let mut views = Vec::new();
    for (id, _) in rows.into_iter().take(limit) {
        views.extend(webhook_view(c, id)?);
    }
    Ok(views)
}

fn actor_from(r: &Row<'_>, first: usize) -> rusqlite::Result<Actor> {
    Ok(Actor {
        credential: r.get(first)?,
        client: r.get(first + 1)?,
        request_id: r.get(first + 2)?,
    })
}

pub(super) fn erasures(
    c: &Connection,
    limit: usize,
    before: Option<i64>,
) -> rusqlite::Result<Vec<ErasureRecord>> {
    let mut stmt = c.prepare_cached(
        "SELECT id, at, credential, client, request_id, identity_hash, keep_pending, propagate, \
         pending, leased, delivered, dead, dead_letters, scanned, deletions FROM erasures \
         WHERE id < ?1 ORDER BY id DESC LIMIT ?2",
    )?;
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut records = stmt
        .query_map(params![before.unwrap_or(i64::MAX), limit], |r| {
            Ok(ErasureRecord {
                id: r.get(0)?,
                at_ms: r.get(1)?,
                actor: actor_from(r, 2)?,
                identity_hash: r.get(5)?,
                keep_pending: r.get(6)?,
                propagate: r.get(7)?,
                removed: Removed {
                    pending: count(r.get(8)?),
                    leased: count(r.get(9)?),
                    delivered: count(r.get(10)?),
                    dead: count(r.get(11)?),
                    dead_letters: count(r.get(12)?),
                    scanned: count(r.get(13)?),
                    scan_truncated: false,
                },
                deletions: Propagation::parse_list(&r.get::<_, String>(14)?),
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut state = c.prepare_cached("SELECT state FROM webhooks WHERE id = ?1")?;
    for deletion in records.iter_mut().flat_map(|r| r.deletions.iter_mut()) {
        deletion.state = state
            .query_row([deletion.row_id], |r| parsed(r, 0, RowState::parse))
            .optional()?;
    }
    Ok(records)
}

pub(super) fn audit(c: &Connection, entry: &NewAudit, now: i64) -> rusqlite::Result<i64> {
    c.prepare_cached(
        "INSERT INTO audit_log (at, credential, client, request_id, action, target, detail) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        now,
        entry.actor.credential,
        entry.actor.client,
        entry.actor.request_id,
        entry.action,
        entry.target,
        entry.detail,
    ])?;
    Ok(c.last_insert_rowid())
}

pub(super) fn audit_log(
    c: &Connection,
    limit: usize,
    before: Option<i64>,
) -> rusqlite::Result<Vec<AuditEntry>> {
    let mut stmt = c.prepare_cached(
        "SELECT id, at, credential, client, request_id, action, target, detail FROM audit_log \
         WHERE id < ?1 ORDER BY id DESC LIMIT ?2",
    )?;
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    stmt.query_map(params![before.unwrap_or(i64::MAX), limit], |r| {
        Ok(AuditEntry {
            id: r.get(0)?,
            at_ms: r.get(1)?,
            actor: actor_from(r, 2)?,
            action: r.get(5)?,
            target: r.get(6)?,
            detail: r.get(7)?,
        })
    })?
    .collect()
}

pub(super) fn drop_delivered_bodies(
    c: &Connection,
    before: i64,
    now: i64,
) -> rusqlite::Result<u64> {
    // The rows are chosen once, by the statement that marks them; their bodies follow by id.
    let ids: Vec<i64> = c
        .prepare_cached(
            "UPDATE webhooks SET body_dropped_at = ?2, \
             order_keys = CASE WHEN substr(route, 1, 8) = '_delete:' THEN '' ELSE order_keys END \
             WHERE state = 'delivered' AND body_dropped_at IS NULL \
             AND (finished_at < ?1 OR substr(route, 1, 8) = '_delete:') \
             AND NOT EXISTS (SELECT 1 FROM dead_letters d WHERE d.row_id = webhooks.id) \
             RETURNING id",
        )?
        .query_map(params![before, now], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let mut empty = c.prepare_cached("UPDATE bodies SET body = X'' WHERE row_id = ?1")?;
    for id in &ids {
        empty.execute([id])?;
    }
    Ok(ids.len() as u64)
}

#[cfg(test)]
mod tests {
    use rusqlite::{Connection, params};

    use super::drop_delivered_bodies;
    use crate::queue::sqlite::open;

    fn body_of(c: &Connection, id: i64) -> Vec<u8> {
        c.query_row("SELECT body FROM bodies WHERE row_id = ?1", [id], |r| {
            r.get(0)
        })
        .unwrap()
    }

    /// Retention empties the stored body itself, not only the row's mark; a row still pending
    /// keeps its body.
    #[test]
    fn retention_empties_the_stored_body() {
        let dir = tempfile::tempdir().unwrap();
        let c = open::connection(dir.path().join("q.db").to_str().unwrap()).unwrap();
        for (id, state) in [(1, "delivered"), (2, "pending")] {
            c.execute(
                "INSERT INTO webhooks (id, route, account, content_type, body_hash, request_id, \
                 received_at, state, due_at, deadline_at, finished_at) \
                 VALUES (?1, 'contacts', 'main', 'json', X'01', 'r', 1, ?2, 1, 9000000000000, 1)",
                params![id, state],
            )
            .unwrap();
            c.execute(
                "INSERT INTO bodies (row_id, body) VALUES (?1, ?2)",
                params![id, br#"{"contact_email":"ada@example.com"}"#.to_vec()],
            )
            .unwrap();
        }
        assert_eq!(drop_delivered_bodies(&c, 10, 20).unwrap(), 1);
        assert!(body_of(&c, 1).is_empty());
        assert!(!body_of(&c, 2).is_empty());
        assert_eq!(drop_delivered_bodies(&c, 10, 20).unwrap(), 0);
    }
}
