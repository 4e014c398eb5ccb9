//! SQLite statements of the console's activity view: rows received and finished per bucket,
//! read through the `received_at` and `finished_at` indexes (the last hour, not the table).
//! One range count per bucket rather than one `GROUP BY` over the hour: a `GROUP BY` on a
//! computed bucket sorts every row of the hour in a temporary b-tree, and temporary storage is
//! in memory (`open.rs`), so its size would follow the traffic.

use rusqlite::{Connection, params};

use crate::queue::{ActivityCounts, Counted};

pub(super) fn activity(
    c: &Connection,
    since: i64,
    width: i64,
    buckets: usize,
) -> rusqlite::Result<ActivityCounts> {
    let mut received = c.prepare_cached(
        "SELECT count(*) FROM webhooks WHERE received_at >= ?1 AND received_at < ?2",
    )?;
    let mut finished = c.prepare_cached(
        "SELECT count(*) FILTER (WHERE state = 'delivered'), count(*) FILTER (WHERE state = 'dead') \
         FROM webhooks WHERE finished_at >= ?1 AND finished_at < ?2",
    )?;
    let mut counts = Vec::new();
    for index in 0..i64::try_from(buckets).unwrap_or(0) {
        let from = since.saturating_add(width.saturating_mul(index));
        let until = from.saturating_add(width);
        let rows: i64 = received.query_row(params![from, until], |r| r.get(0))?;
        let (delivered, dead): (i64, i64) =
            finished.query_row(params![from, until], |r| Ok((r.get(0)?, r.get(1)?)))?;
        for (counted, rows) in [
            (Counted::Received, rows),
            (Counted::Delivered, delivered),
            (Counted::Dead, dead),
        ] {
            if rows > 0 {
                counts.push((index, counted, u64::try_from(rows).unwrap_or(0)));
            }
        }
    }
    Ok(ActivityCounts(counts))
}
