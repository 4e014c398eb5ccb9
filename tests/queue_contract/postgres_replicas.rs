//! PostgreSQL only: a fresh schema per test, and two queues ("replicas") sharing one database.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use freshtap::queue::{Enqueued, Queue, RowOutcome};

use super::{LEASE, WINDOW, accepted, finished, webhook};

pub use crate::pg_support::Schema;

impl Schema {
    pub async fn connect(&self) -> Queue {
        let settings = freshtap::config::Settings::from_toml(&format!(
            "[queue]\nurl = \"{}\"\npool_size = 4\n",
            self.url()
        ))
        .expect("settings");
        Queue::connect(&settings.queue)
            .await
            .expect("connect postgres queue")
    }
}

impl Schema {
    /// Runs SQL in this schema behind the queue's back (to stage a race deterministically).
    async fn execute(&self, sql: &str) {
        let (client, connection) = tokio_postgres::connect(&self.url(), tokio_postgres::NoTls)
            .await
            .expect("connect");
        tokio::spawn(connection);
        client.batch_execute(sql).await.expect("sql");
    }
}

async fn two_replicas() -> (Queue, Queue, Schema) {
    let schema = Schema::create().await;
    let (a, b) = (schema.connect().await, schema.connect().await);
    (a, b, schema)
}

#[cfg_attr(
    not(freshtap_postgres),
    ignore = "needs FRESHTAP_TEST_DATABASE_URL (PostgreSQL)"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn claims_never_overlap_across_replicas_and_keep_identity_order() {
    let (a, b, _schema) = two_replicas().await;
    // 40 identities with 3 webhooks each, enqueued in rounds so each identity's rows are in order.
    let mut first_round = HashSet::new();
    for round in 0..3 {
        for key in 0..40 {
            let id = accepted(
                a.enqueue(
                    webhook(&format!("r{round}-k{key}"), &[&format!("k{key}@x")]),
                    WINDOW,
                )
                .await
                .expect("enqueue"),
            );
            if round == 0 {
                first_round.insert(id);
            }
        }
    }
    for round in 0..3 {
        let claimers: Vec<_> = (0..8)
            .map(|i| {
                let q = if i % 2 == 0 { a.clone() } else { b.clone() };
                tokio::spawn(async move {
                    let mut mine = Vec::new();
                    loop {
                        let batch = q.claim("main", 3, LEASE).await.expect("claim");
                        if batch.is_empty() {
                            return mine;
                        }
                        mine.extend(batch);
                    }
                })
            })
            .collect();
        let mut claimed = Vec::new();
        for claimer in claimers {
            claimed.extend(claimer.await.expect("claimer"));
        }
        let ids: HashSet<i64> = claimed.iter().map(|c| c.id).collect();
        assert_eq!(
            ids.len(),
            claimed.len(),
            "round {round}: a row was claimed twice"
        );
        let identities: HashSet<String> = claimed
            .iter()
            .map(|c| {
                String::from_utf8_lossy(&c.body)
                    .split('-')
                    .nth(1)
                    .unwrap_or("")
                    .to_owned()
            })
            .collect();
        assert_eq!(
            identities.len(),
            40,
            "round {round}: one row per identity in flight, every identity served"
        );
        if round == 0 {
            assert_eq!(ids, first_round, "each identity's earliest row goes first");
        }
        let outcomes: Vec<RowOutcome> = claimed
            .iter()
            .map(|c| finished(c.id, vec![0], vec![]))
            .collect();
        b.complete(outcomes).await.expect("complete");
    }
    assert_eq!(a.stats().await.expect("stats").delivered, 120);
}

#[cfg_attr(
    not(freshtap_postgres),
    ignore = "needs FRESHTAP_TEST_DATABASE_URL (PostgreSQL)"
)]
#[tokio::test]
async fn a_row_committed_late_with_a_lower_id_waits_for_the_leased_row_of_its_identity() {
    let (a, b, schema) = two_replicas().await;
    // Replica B took an id, replica A committed a later row of the same identity and it was
    // claimed; only then does B's row (lower id) commit.
    accepted(
        b.enqueue(webhook("placeholder", &[]), WINDOW)
            .await
            .expect("enqueue"),
    );
    let later = accepted(
        a.enqueue(webhook("later", &["late@x"]), WINDOW)
            .await
            .expect("enqueue"),
    );
    assert_eq!(
        a.claim("main", 10, LEASE)
            .await
            .expect("claim")
            .iter()
            .map(|c| c.id)
            .max(),
        Some(later)
    );
    let lower = later - 1;
    schema
        .execute(&format!(
            "DELETE FROM webhooks WHERE id = {lower}; DELETE FROM active_keys WHERE row_id = {lower}; \
             INSERT INTO webhooks (id, route, account, content_type, body, body_hash, request_id, \
             received_at, state, due_at, deadline_at, order_keys) SELECT {lower}, route, account, \
             content_type, 'early'::bytea, '\\x00'::bytea, 'req-early', received_at, 'pending', 0, \
             deadline_at, order_keys FROM webhooks WHERE id = {later}; \
             INSERT INTO active_keys (row_id, key) VALUES ({lower}, 'late@x');"
        ))
        .await;
    assert!(
        b.claim("main", 10, LEASE).await.expect("claim").is_empty(),
        "a second request for one identity must not be in flight"
    );
    b.complete(vec![finished(later, vec![0], vec![])])
        .await
        .expect("complete");
    let next = b.claim("main", 10, LEASE).await.expect("claim");
    assert_eq!(next.iter().map(|c| c.id).collect::<Vec<_>>(), vec![lower]);
}

#[cfg_attr(
    not(freshtap_postgres),
    ignore = "needs FRESHTAP_TEST_DATABASE_URL (PostgreSQL)"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dedup_holds_across_replicas() {
    let (a, b, _schema) = two_replicas().await;
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let q = if i % 2 == 0 { a.clone() } else { b.clone() };
            tokio::spawn(async move {
                q.enqueue(webhook("same body", &["same@x"]), WINDOW)
                    .await
                    .expect("enqueue")
            })
        })
        .collect();
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.expect("task"));
    }
    let winners: Vec<i64> = results
        .iter()
        .filter_map(|r| {
            if let Enqueued::Accepted(id) = r {
                Some(*id)
            } else {
                None
            }
        })
        .collect();
    assert_eq!(
        winners.len(),
        1,
        "exactly one copy is accepted: {results:?}"
    );
    assert!(results.iter().all(
        |r| matches!(r, Enqueued::Accepted(id) | Enqueued::Duplicate(id) if *id == winners[0])
    ));
    assert_eq!(a.stats().await.expect("stats").pending, 1);
}

#[cfg_attr(
    not(freshtap_postgres),
    ignore = "needs FRESHTAP_TEST_DATABASE_URL (PostgreSQL)"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn slots_are_an_account_total_across_replicas() {
    let (a, b, _schema) = two_replicas().await;
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let q = if i % 2 == 0 { a.clone() } else { b.clone() };
            tokio::spawn(async move { q.acquire_slot("main", 3, LEASE).await.expect("acquire") })
        })
        .collect();
    let mut granted = Vec::new();
    for task in tasks {
        granted.extend(task.await.expect("task"));
    }
    assert_eq!(
        granted.len(),
        3,
        "never more than the limit across replicas"
    );
    assert_eq!(
        a.acquire_slot("other", 3, LEASE)
            .await
            .expect("acquire")
            .map(|_| ()),
        Some(()),
        "slots are per account"
    );
    b.release_slot(granted[0]).await.expect("release");
    assert!(
        a.acquire_slot("main", 3, LEASE)
            .await
            .expect("acquire")
            .is_some(),
        "a released slot is free again"
    );
    assert!(
        b.acquire_slot("main", 3, LEASE)
            .await
            .expect("acquire")
            .is_none()
    );
}

#[cfg_attr(
    not(freshtap_postgres),
    ignore = "needs FRESHTAP_TEST_DATABASE_URL (PostgreSQL)"
)]
#[tokio::test]
async fn an_expired_slot_is_reclaimed() {
    let (a, b, _schema) = two_replicas().await;
    let ttl = Duration::from_millis(300);
    assert!(
        a.acquire_slot("main", 1, ttl)
            .await
            .expect("acquire")
            .is_some()
    );
    assert!(
        b.acquire_slot("main", 1, LEASE)
            .await
            .expect("acquire")
            .is_none(),
        "held until it expires"
    );
    let started = Instant::now();
    loop {
        if b.acquire_slot("main", 1, LEASE)
            .await
            .expect("acquire")
            .is_some()
        {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "a killed replica's slot must lapse after its ttl"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[cfg_attr(
    not(freshtap_postgres),
    ignore = "needs FRESHTAP_TEST_DATABASE_URL (PostgreSQL)"
)]
#[tokio::test]
async fn an_enqueue_on_one_replica_wakes_the_other() {
    let (a, b, _schema) = two_replicas().await;
    let mut woken = b.subscribe();
    woken.borrow_and_update();
    a.enqueue(webhook("wake", &["wake@x"]), WINDOW)
        .await
        .expect("enqueue");
    tokio::time::timeout(Duration::from_secs(5), woken.changed())
        .await
        .expect("NOTIFY reached the other replica within 5 s")
        .expect("queue alive");
    assert_eq!(b.claim("main", 10, LEASE).await.expect("claim").len(), 1);
}
