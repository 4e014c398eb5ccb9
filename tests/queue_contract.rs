//! The queue contract: one suite, run against every backend.
//!
//! PostgreSQL runs when FRESHTAP_TEST_DATABASE_URL is set (each test in a fresh schema), and
//! is reported ignored otherwise; the PostgreSQL-only tests (two replicas on one database) are in
//! `queue_contract/postgres_replicas.rs`.

#[path = "queue_contract/activity.rs"]
mod activity;
#[path = "queue_contract/admin.rs"]
mod admin;
#[path = "queue_contract/holds.rs"]
mod holds;
#[path = "pg_support/mod.rs"]
mod pg_support;
#[path = "queue_contract/postgres_connect.rs"]
mod postgres_connect;
#[path = "queue_contract/postgres_replicas.rs"]
mod postgres_replicas;
#[path = "queue_contract/privacy.rs"]
mod privacy;

use activity::*;
use admin::*;
use holds::*;
use privacy::*;

use std::time::Duration;

use freshtap::body::BodyKind;
use freshtap::clock::now_ms;
use freshtap::queue::{ClaimLimit, Enqueued, NewDeadLetter, NewWebhook, Next, Queue, RowOutcome};

pub(crate) const LEASE: Duration = Duration::from_secs(30);
pub(crate) const WINDOW: Duration = Duration::from_secs(600);
pub(crate) const DAY: Duration = Duration::from_secs(86_400);

pub(crate) fn webhook(body: &str, keys: &[&str]) -> NewWebhook {
    let now = now_ms();
    NewWebhook {
        route: "contacts".into(),
        account: "main".into(),
        kind: BodyKind::Json,
        body: body.as_bytes().to_vec(),
        body_hash: freshtap::webhook::body_hash(body.as_bytes()),
        request_id: format!("req-{body}"),
        received_at_ms: now,
        deadline_ms: now + 3_600_000,
        order_keys: keys.iter().map(|k| (*k).to_owned()).collect(),
        dedup: true,
        refused: Vec::new(),
        finished: false,
    }
}

pub(crate) fn accepted(e: Enqueued) -> i64 {
    match e {
        Enqueued::Accepted(id) => id,
        Enqueued::Duplicate(id) => panic!("expected a new row, got duplicate of {id}"),
    }
}

pub(crate) fn finished(id: i64, delivered: Vec<u32>, dead: Vec<NewDeadLetter>) -> RowOutcome {
    RowOutcome {
        id,
        delivered,
        dead,
        next: Next::Finished,
    }
}

async fn a_claimed_row_is_not_claimed_twice(q: Queue) {
    let id = accepted(
        q.enqueue(webhook("a", &["a@x"]), WINDOW)
            .await
            .expect("enqueue"),
    );
    let first = q.claim("main", 10, LEASE).await.expect("claim");
    assert_eq!(first.iter().map(|r| r.id).collect::<Vec<_>>(), vec![id]);
    assert_eq!(first[0].body, b"a");
    assert!(
        q.claim("main", 10, LEASE).await.expect("claim").is_empty(),
        "a leased row must not be claimed again"
    );
    assert!(
        q.claim("other", 10, LEASE).await.expect("claim").is_empty(),
        "claims are per account"
    );
}

async fn an_expired_lease_gives_the_row_back(q: Queue) {
    let id = accepted(
        q.enqueue(webhook("b", &["b@x"]), WINDOW)
            .await
            .expect("enqueue"),
    );
    let claimed = q
        .claim("main", 10, Duration::from_millis(1))
        .await
        .expect("claim");
    assert_eq!(claimed.len(), 1);
    tokio::time::sleep(Duration::from_millis(20)).await;
    let again = q.claim("main", 10, LEASE).await.expect("claim");
    assert_eq!(
        again.iter().map(|r| r.id).collect::<Vec<_>>(),
        vec![id],
        "a crashed worker's row comes back"
    );
}

async fn a_claim_stops_at_its_byte_limit_but_takes_one_row_always(q: Queue) {
    let mut ids = Vec::new();
    for (i, size) in [600, 300, 300, 10].into_iter().enumerate() {
        let body = format!("{i}{}", "x".repeat(size - 1));
        let row = webhook(&body, &[&format!("k{i}")]);
        ids.push(accepted(q.enqueue(row, WINDOW).await.expect("enqueue")));
    }
    let limit = |rows, bytes| ClaimLimit { rows, bytes };
    let first = q.claim("main", limit(10, 100), LEASE).await.expect("claim");
    assert_eq!(
        first.iter().map(|r| r.id).collect::<Vec<_>>(),
        vec![ids[0]],
        "the oldest row is taken even when it alone is over the limit"
    );
    assert_eq!(first[0].body.len(), 600);
    let next = q.claim("main", limit(10, 605), LEASE).await.expect("claim");
    assert_eq!(
        next.iter().map(|r| r.id).collect::<Vec<_>>(),
        vec![ids[1], ids[2]],
        "rows are taken in order while their bodies fit (the small later one waits its turn)"
    );
    let last = q.claim("main", limit(10, 0), LEASE).await.expect("claim");
    assert_eq!(last.iter().map(|r| r.id).collect::<Vec<_>>(), vec![ids[3]]);
}

async fn the_same_body_within_the_window_is_a_duplicate(q: Queue) {
    let id = accepted(
        q.enqueue(webhook("c", &["c@x"]), WINDOW)
            .await
            .expect("enqueue"),
    );
    assert_eq!(
        q.enqueue(webhook("c", &["c@x"]), WINDOW)
            .await
            .expect("enqueue"),
        Enqueued::Duplicate(id)
    );
    let mut other_route = webhook("c", &["c@x"]);
    other_route.route = "deals".into();
    assert!(matches!(
        q.enqueue(other_route, WINDOW).await.expect("enqueue"),
        Enqueued::Accepted(_)
    ));
}

async fn an_identity_waits_for_its_earlier_row(q: Queue) {
    let first = accepted(
        q.enqueue(webhook("d1", &["same@x"]), WINDOW)
            .await
            .expect("enqueue"),
    );
    let second = accepted(
        q.enqueue(webhook("d2", &["same@x"]), WINDOW)
            .await
            .expect("enqueue"),
    );
    let other = accepted(
        q.enqueue(webhook("d3", &["other@x"]), WINDOW)
            .await
            .expect("enqueue"),
    );
    let claimed: Vec<i64> = q
        .claim("main", 10, LEASE)
        .await
        .expect("claim")
        .iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(
        claimed,
        vec![first, other],
        "the second row of an identity waits"
    );
    q.complete(vec![finished(first, vec![0], vec![])])
        .await
        .expect("complete");
    let claimed: Vec<i64> = q
        .claim("main", 10, LEASE)
        .await
        .expect("claim")
        .iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(
        claimed,
        vec![second],
        "once the first is done the second goes"
    );
}

async fn a_retry_waits_until_due(q: Queue) {
    let id = accepted(
        q.enqueue(webhook("e", &["e@x"]), WINDOW)
            .await
            .expect("enqueue"),
    );
    q.claim("main", 10, LEASE).await.expect("claim");
    let due = now_ms() + 60_000;
    let retry = Next::Retry {
        due_at_ms: due,
        count_attempt: true,
        error: "503".into(),
    };
    q.complete(vec![RowOutcome {
        id,
        delivered: vec![],
        dead: vec![],
        next: retry,
    }])
    .await
    .expect("complete");
    assert!(
        q.claim("main", 10, LEASE).await.expect("claim").is_empty(),
        "not before it is due"
    );
    assert_eq!(q.next_due("main").await.expect("next_due"), Some(due));
    let stats = q.stats().await.expect("stats");
    assert_eq!((stats.pending, stats.leased), (1, 0));
}

/// Stamps every contract behaviour as a test for one backend; `$open` yields the queue (and a
/// guard that keeps its storage alive), or `None` when the backend is not configured here.
/// Stamps every contract behaviour as a test for one backend; `$open` yields the queue (and a
/// guard that keeps its storage alive). `needs_postgres` marks the tests ignored in builds
/// without a test database (build.rs), so `cargo test` reports them as ignored, not passed.
macro_rules! contract {
    ($backend:ident, $open:expr, $needs:ident) => {
        contract!(@tests $backend, $open, $needs, [
            a_claimed_row_is_not_claimed_twice,
            an_expired_lease_gives_the_row_back,
            a_claim_stops_at_its_byte_limit_but_takes_one_row_always,
            the_same_body_within_the_window_is_a_duplicate,
            an_identity_waits_for_its_earlier_row,
            a_retry_waits_until_due,
            dead_records_replay_without_resending_delivered_ones,
            an_invalid_body_can_be_fixed_and_replayed,
            deleting_a_dead_letter_removes_it,
            retention_purges_only_what_is_old,
            concurrent_enqueues_all_commit,
            concurrent_copies_of_a_body_are_one_row,
            lookup_by_request_id_shows_the_row,
            lifting_the_last_hold_gives_the_held_time_back_once,
            a_due_probe_is_taken_by_one_caller,
            records_refused_at_intake_are_dead_letters_from_the_start,
            a_body_that_is_not_deduplicated_is_stored_twice,
            activity_counts_received_and_finished_rows_in_their_buckets,
            activity_of_a_quiet_span_is_every_bucket_empty,
            an_erasure_removes_one_persons_rows_and_records_it,
            keep_pending_leaves_unfinished_rows,
            the_body_scan_is_bounded,
            what_is_held_for_a_person_lists_states_and_dead_letters,
            the_audit_log_lists_actions_newest_first,
            delivered_bodies_are_dropped_but_dead_letters_keep_theirs,
            a_propagating_erasure_queues_deletions_in_its_transaction,
        ]);
    };
    (@tests $backend:ident, $open:expr, $needs:ident, [$($behaviour:ident),* $(,)?]) => {
        mod $backend {
            use super::*;
            $( contract!(@test $needs, $open, $behaviour); )*
        }
    };
    (@test nothing, $open:expr, $behaviour:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $behaviour() {
            let (q, _guard) = $open.await;
            super::$behaviour(q).await
        }
    };
    (@test needs_postgres, $open:expr, $behaviour:ident) => {
        #[cfg_attr(not(freshtap_postgres), ignore = "needs FRESHTAP_TEST_DATABASE_URL (PostgreSQL)")]
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $behaviour() {
            let (q, _guard) = $open.await;
            super::$behaviour(q).await
        }
    };
}

async fn sqlite_queue() -> (Queue, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let settings = freshtap::config::Settings::from_toml(&format!(
        "[queue]\nurl = \"sqlite://{}\"\n",
        dir.path().join("q.db").display()
    ))
    .expect("settings");
    (
        Queue::connect(&settings.queue).await.expect("open sqlite"),
        dir,
    )
}

contract!(sqlite, sqlite_queue(), nothing);

async fn postgres_queue() -> (Queue, postgres_replicas::Schema) {
    let schema = postgres_replicas::Schema::create().await;
    let queue = schema.connect().await;
    (queue, schema)
}

contract!(postgres, postgres_queue(), needs_postgres);

#[tokio::test]
async fn sqlite_rows_survive_a_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let settings = freshtap::config::Settings::from_toml(&format!(
        "[queue]\nurl = \"sqlite://{}\"\n",
        dir.path().join("q.db").display()
    ))
    .expect("settings");
    let id = {
        let q = Queue::connect(&settings.queue).await.expect("open");
        accepted(
            q.enqueue(webhook("durable", &[]), WINDOW)
                .await
                .expect("enqueue"),
        )
    };
    let q = Queue::connect(&settings.queue).await.expect("reopen");
    let claimed = q.claim("main", 10, LEASE).await.expect("claim");
    assert_eq!(claimed.iter().map(|r| r.id).collect::<Vec<_>>(), vec![id]);
}
