//! SQLite statements of the console's activity view: rows received and finished per bucket,
//! read through the `received_at` and `finished_at` indexes (the last hour, not the table).
//! `+state` keeps SQLite off the state index, which would walk every delivered row.

use rusqlite::{Connection, params};

use crate::queue::{ActivityCounts, Counted};

pub(super) fn activity(
    c: &Connection,
    since: i64,
    width: i64,
    buckets: usize,
) -> rusqlite::Result<ActivityCounts> {
    let until = since.saturating_add(width.saturating_mul(i64::try_from(buckets).unwrap_or(0)));
    let mut counts = Vec::new();
    let mut received = c.prepare_cached(
        "SELECT (received_at - ?1) / ?2, count(*) FROM webhooks \
         WHERE received_at >= ?1 AND received_at < ?3 GROUP BY 1",
    )?;
    for row in received.query_map(params![since, width, until], |r| {
        Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?))
    })? {
        let (index, rows) = row?;
        counts.push((index, Counted::Received, u64::try_from(rows).unwrap_or(0)));
    }
    let mut finished = c.prepare_cached(
        "SELECT (finished_at - ?1) / ?2, state, count(*) FROM webhooks \
         WHERE finished_at >= ?1 AND finished_at < ?3 AND +state IN ('delivered', 'dead') GROUP BY 1, 2",
    )?;
    for row in finished.query_map(params![since, width, until], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, i64>(2)?,
        ))
    })? {
        let (index, state, rows) = row?;
        let counted = if state == "dead" {
            Counted::Dead
        } else {
            Counted::Delivered
        };
        counts.push((index, counted, u64::try_from(rows).unwrap_or(0)));
    }
    Ok(ActivityCounts(counts))
}
