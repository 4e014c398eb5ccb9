//! Intake's statement: a whole group commit's webhooks in one set-based statement (their
//! dedup keys, rows and order keys), instead of one statement per webhook.
//!
//! Per row the statement does what one webhook's insert would: claim the `(route, body hash)`
//! dedup key — the primary key makes a concurrent insert of the same key on another replica
//! wait for this one — and, if it was free or older than the window, insert the row and its
//! order keys under the id it took. A multi-row `ON CONFLICT DO UPDATE` cannot touch one key
//! twice, so a body repeated within the group goes to the statement once; its later copies are
//! answered as duplicates of what the first got.

use std::collections::HashMap;

use deadpool_postgres::Transaction;
use tokio_postgres::types::ToSql;

use super::ops::insert_dead_letters;
use crate::queue::{Enqueued, NewWebhook, QueueError};

/// `$1…$10` one entry per row, `$11`/`$12` the order keys flattened (row ordinal, key),
/// `$13` the dedup window in ms. Answers per row (by ordinal): its id, whether it was
/// inserted, and the dedup key's holder as this statement's snapshot saw it.
const ENQUEUE: &str = "WITH i AS ( \
       SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bytea[], $5::bytea[], $6::text[], \
                            $7::bigint[], $8::bigint[], $9::text[], $10::boolean[]) WITH ORDINALITY \
         AS i(route, account, kind, body, hash, request_id, received_at, deadline, state, dedup, n)), \
     keys AS (SELECT * FROM unnest($11::bigint[], $12::text[]) WITH ORDINALITY AS k(n, key, pos)), \
     ids AS MATERIALIZED (SELECT n, nextval('webhooks_id_seq') AS id FROM i ORDER BY n), \
     d AS ( \
       INSERT INTO dedup (route, body_hash, row_id, received_at) \
       SELECT i.route, i.hash, ids.id, i.received_at FROM i JOIN ids USING (n) WHERE i.dedup ORDER BY i.n \
       ON CONFLICT (route, body_hash) DO UPDATE SET row_id = EXCLUDED.row_id, received_at = EXCLUDED.received_at \
       WHERE dedup.received_at < EXCLUDED.received_at - $13 RETURNING row_id), \
     taken AS (SELECT ids.n, ids.id FROM ids JOIN i USING (n) \
               WHERE NOT i.dedup OR ids.id IN (SELECT row_id FROM d)), \
     w AS ( \
       INSERT INTO webhooks (id, route, account, content_type, body, body_hash, request_id, received_at, state, \
                             due_at, deadline_at, order_keys, finished_at) \
       SELECT t.id, i.route, i.account, i.kind, i.body, i.hash, i.request_id, i.received_at, i.state, \
              i.received_at, i.deadline, \
              ARRAY(SELECT k.key FROM keys k WHERE k.n = i.n ORDER BY k.pos), \
              CASE WHEN i.state = 'dead' THEN i.received_at END \
       FROM taken t JOIN i USING (n) ORDER BY i.n RETURNING id), \
     ak AS ( \
       INSERT INTO active_keys (row_id, key) \
       SELECT DISTINCT t.id, k.key FROM taken t JOIN i USING (n) JOIN keys k ON k.n = i.n \
       WHERE k.key <> '' AND i.state = 'pending' ON CONFLICT DO NOTHING) \
     SELECT i.n, t.id, (SELECT x.row_id FROM dedup x WHERE x.route = i.route AND x.body_hash = i.hash) \
     FROM i LEFT JOIN taken t USING (n) ORDER BY i.n";

/// The group's rows as the statement's columns.
#[derive(Default)]
struct Columns<'a> {
    route: Vec<&'a str>,
    account: Vec<&'a str>,
    kind: Vec<&'static str>,
    body: Vec<&'a [u8]>,
    hash: Vec<&'a [u8]>,
    request_id: Vec<&'a str>,
    received_at: Vec<i64>,
    deadline: Vec<i64>,
    state: Vec<&'static str>,
    dedup: Vec<bool>,
    key_rows: Vec<i64>,
    keys: Vec<&'a str>,
}

impl<'a> Columns<'a> {
    fn push(&mut self, row: &'a NewWebhook) {
        self.route.push(&row.route);
        self.account.push(&row.account);
        self.kind.push(row.kind.as_str());
        self.body.push(&row.body);
        self.hash.push(&row.body_hash);
        self.request_id.push(&row.request_id);
        self.received_at.push(row.received_at_ms);
        self.deadline.push(row.deadline_ms);
        self.state
            .push(if row.finished { "dead" } else { "pending" });
        self.dedup.push(row.dedup);
        let ordinal = i64::try_from(self.route.len()).unwrap_or(i64::MAX);
        for key in &row.order_keys {
            self.key_rows.push(ordinal);
            self.keys.push(key);
        }
    }
}

/// Inserts a group of webhooks in this transaction: one statement per dedup window in the
/// group (one, in practice), then the dead letters of rows refused in part at intake.
pub async fn enqueue(
    t: &Transaction<'_>,
    rows: &[(NewWebhook, i64)],
) -> Result<Vec<Enqueued>, QueueError> {
    let mut results: Vec<Option<Enqueued>> = vec![None; rows.len()];
    // Rows of one statement: same window; a deduplicated body once (its copies wait).
    let mut windows: Vec<(i64, Vec<usize>)> = Vec::new();
    let mut first_of: HashMap<(&str, &[u8]), usize> = HashMap::new();
    let mut copies: Vec<(usize, usize)> = Vec::new();
    for (index, (row, since)) in rows.iter().enumerate() {
        if row.dedup {
            let key = (row.route.as_str(), row.body_hash.as_slice());
            if let Some(&first) = first_of.get(&key) {
                copies.push((index, first));
                continue;
            }
            first_of.insert(key, index);
        }
        let window = row.received_at_ms.saturating_sub(*since);
        match windows.iter_mut().find(|(w, _)| *w == window) {
            Some((_, members)) => members.push(index),
            None => windows.push((window, vec![index])),
        }
    }
    let statement = t.prepare_cached(ENQUEUE).await?;
    for (window, members) in &windows {
        let mut c = Columns::default();
        for &index in members {
            c.push(&rows[index].0);
        }
        let params: [&(dyn ToSql + Sync); 13] = [
            &c.route,
            &c.account,
            &c.kind,
            &c.body,
            &c.hash,
            &c.request_id,
            &c.received_at,
            &c.deadline,
            &c.state,
            &c.dedup,
            &c.key_rows,
            &c.keys,
            window,
        ];
        let answers = t.query(&statement, &params).await?;
        for answer in answers {
            let ordinal: i64 = answer.try_get(0)?;
            let Some(&index) = usize::try_from(ordinal - 1)
                .ok()
                .and_then(|i| members.get(i))
            else {
                continue;
            };
            let result = match (answer.try_get::<_, Option<i64>>(1)?, answer.try_get(2)?) {
                (Some(id), _) => Enqueued::Accepted(id),
                (None, Some(holder)) => Enqueued::Duplicate(holder),
                // The holder committed after this statement's snapshot: read it now.
                (None, None) => Enqueued::Duplicate(dedup_holder(t, &rows[index].0).await?),
            };
            results[index] = Some(result);
        }
    }
    for (index, first) in copies {
        results[index] = match results[first] {
            Some(Enqueued::Accepted(id) | Enqueued::Duplicate(id)) => Some(Enqueued::Duplicate(id)),
            None => None,
        };
    }
    let mut out = Vec::with_capacity(rows.len());
    for ((row, _), result) in rows.iter().zip(results) {
        let result = result.ok_or(QueueError::Closed)?;
        if let Enqueued::Accepted(id) = result {
            insert_dead_letters(t, id, &row.refused, 0, row.received_at_ms).await?;
        }
        out.push(result);
    }
    Ok(out)
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
