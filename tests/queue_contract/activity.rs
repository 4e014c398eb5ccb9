//! Contract behaviour of the console's activity view (rows received and finished per bucket),
//! for every backend.

use freshtap::clock::now_ms;
use freshtap::queue::{ActivityBucket, DeadCode, NewDeadLetter, Next, Queue, RowOutcome};

use super::{LEASE, WINDOW, accepted, webhook};

const MINUTE: i64 = 60_000;

fn received_at(body: &str, key: &str, at: i64) -> freshtap::queue::NewWebhook {
    let mut row = webhook(body, &[key]);
    row.received_at_ms = at;
    row
}

pub async fn activity_counts_received_and_finished_rows_in_their_buckets(q: Queue) {
    let now = now_ms();
    // Three ten-minute buckets, the last one around now: [-25, -15), [-15, -5), [-5, +5).
    let since = now - 25 * MINUTE;
    let early = accepted(
        q.enqueue(received_at("early", "a@x", now - 20 * MINUTE), WINDOW)
            .await
            .expect("enqueue"),
    );
    let middle = accepted(
        q.enqueue(received_at("middle", "b@x", now - 10 * MINUTE), WINDOW)
            .await
            .expect("enqueue"),
    );
    accepted(
        q.enqueue(received_at("recent", "c@x", now), WINDOW)
            .await
            .expect("enqueue"),
    );
    accepted(
        q.enqueue(received_at("before", "d@x", now - 40 * MINUTE), WINDOW)
            .await
            .expect("enqueue"),
    );
    accepted(
        q.enqueue(received_at("ahead", "e@x", now + 60 * MINUTE), WINDOW)
            .await
            .expect("enqueue"),
    );
    q.enqueue_invalid(received_at("{broken", "f@x", now), "not JSON".into())
        .await
        .expect("store");
    let claimed = q.claim("main", 10, LEASE).await.expect("claim");
    let outcomes = claimed
        .iter()
        .map(|row| {
            let (delivered, dead, next) = if row.id == early {
                (vec![0], vec![], Next::Finished)
            } else if row.id == middle {
                let refused = NewDeadLetter {
                    record_index: Some(0),
                    code: DeadCode::Refused(516),
                    reason: "Phone number is not valid.".into(),
                };
                (vec![], vec![refused], Next::Finished)
            } else {
                (vec![], vec![], Next::Release)
            };
            RowOutcome {
                id: row.id,
                delivered,
                dead,
                next,
            }
        })
        .collect();
    q.complete(outcomes).await.expect("complete");

    let buckets = q
        .activity(since, std::time::Duration::from_secs(600), 3)
        .await
        .expect("activity");
    let bucket = |start, received, delivered, dead| ActivityBucket {
        start_ms: start,
        received,
        delivered,
        dead,
    };
    assert_eq!(
        buckets,
        vec![
            bucket(since, 1, 0, 0),
            bucket(since + 10 * MINUTE, 1, 0, 0),
            // "recent" and the unreadable body arrived now; the two finished rows finished now,
            // and the unreadable body was dead on arrival.
            bucket(since + 20 * MINUTE, 2, 1, 2),
        ],
        "rows before and after the span are not counted"
    );
}

pub async fn activity_of_a_quiet_span_is_every_bucket_empty(q: Queue) {
    accepted(
        q.enqueue(received_at("old", "g@x", now_ms() - 120 * MINUTE), WINDOW)
            .await
            .expect("enqueue"),
    );
    let since = now_ms() - 60 * MINUTE;
    let buckets = q
        .activity(since, std::time::Duration::from_secs(300), 12)
        .await
        .expect("activity");
    assert_eq!(buckets.len(), 12, "every bucket of the hour is there");
    assert!(
        buckets
            .iter()
            .all(|b| (b.received, b.delivered, b.dead) == (0, 0, 0)),
        "{buckets:?}"
    );
    assert_eq!(buckets[11].start_ms, since + 55 * MINUTE);
}
