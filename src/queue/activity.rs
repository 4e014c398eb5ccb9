//! Folding the backends' per-bucket counts into the console's activity buckets.

use super::ActivityBucket;

/// What a backend counted: (bucket index, what, rows) for each non-empty cell, where the index
/// is `(time - since) / width` as the database computed it.
#[derive(Debug, Default)]
pub(crate) struct ActivityCounts(pub Vec<(i64, Counted, u64)>);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Counted {
    Received,
    Delivered,
    Dead,
}

impl ActivityCounts {
    /// Every bucket of the span, in order, zeros where nothing was counted; an index outside
    /// the span (a clock ahead of ours) is dropped.
    pub(crate) fn into_buckets(
        self,
        since_ms: i64,
        width_ms: i64,
        buckets: usize,
    ) -> Vec<ActivityBucket> {
        let mut out: Vec<ActivityBucket> = (0..buckets)
            .map(|i| ActivityBucket {
                start_ms: since_ms + width_ms * i64::try_from(i).unwrap_or(i64::MAX),
                ..ActivityBucket::default()
            })
            .collect();
        for (index, counted, rows) in self.0 {
            let Some(bucket) = usize::try_from(index).ok().and_then(|i| out.get_mut(i)) else {
                continue;
            };
            match counted {
                Counted::Received => bucket.received += rows,
                Counted::Delivered => bucket.delivered += rows,
                Counted::Dead => bucket.dead += rows,
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_land_in_their_buckets_and_strays_are_dropped() {
        let counts = ActivityCounts(vec![
            (0, Counted::Received, 3),
            (2, Counted::Delivered, 2),
            (2, Counted::Dead, 1),
            (5, Counted::Received, 9),
            (-1, Counted::Received, 4),
        ]);
        let buckets = counts.into_buckets(1_000, 100, 3);
        assert_eq!(
            buckets
                .iter()
                .map(|b| (b.start_ms, b.received, b.delivered, b.dead))
                .collect::<Vec<_>>(),
            vec![(1_000, 3, 0, 0), (1_100, 0, 0, 0), (1_200, 0, 2, 1)]
        );
    }
}
