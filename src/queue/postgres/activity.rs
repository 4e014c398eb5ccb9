//! PostgreSQL statements of the console's activity view: rows received and finished per
//! bucket, read through the `received_at` and `finished_at` indexes (the last hour, not the
//! table).

use deadpool_postgres::Transaction;

use super::ops::query;
use crate::queue::{ActivityCounts, Counted, QueueError};

pub async fn activity(
    t: &Transaction<'_>,
    since: i64,
    width: i64,
    buckets: usize,
) -> Result<ActivityCounts, QueueError> {
    let until = since.saturating_add(width.saturating_mul(i64::try_from(buckets).unwrap_or(0)));
    let mut counts = Vec::new();
    let received = query(
        t,
        "SELECT (received_at - $1) / $2, count(*) FROM webhooks \
         WHERE received_at >= $1 AND received_at < $3 GROUP BY 1",
        &[&since, &width, &until],
    )
    .await?;
    for row in received {
        let rows = u64::try_from(row.try_get::<_, i64>(1)?).unwrap_or(0);
        counts.push((row.try_get(0)?, Counted::Received, rows));
    }
    let finished = query(
        t,
        "SELECT (finished_at - $1) / $2, state, count(*) FROM webhooks \
         WHERE finished_at >= $1 AND finished_at < $3 AND state IN ('delivered', 'dead') GROUP BY 1, 2",
        &[&since, &width, &until],
    )
    .await?;
    for row in finished {
        let rows = u64::try_from(row.try_get::<_, i64>(2)?).unwrap_or(0);
        let counted = if row.try_get::<_, &str>(1)? == "dead" {
            Counted::Dead
        } else {
            Counted::Delivered
        };
        counts.push((row.try_get(0)?, counted, rows));
    }
    Ok(ActivityCounts(counts))
}
