//! The queue contract: one suite, run against every backend.
//!
//! PostgreSQL runs when FRESHTAP_TEST_DATABASE_URL is set (each test in a fresh schema), and
//! is reported ignored otherwise; the PostgreSQL-only tests (two replicas on one database) are in
//! `queue_contract/postgres_replicas.rs`.

#[path = "queue_contract/activity.rs"]
mod activity;
#[path = "queue_contract/holds.rs"]
mod holds;
#[path = "pg_support/mod.rs"]
mod pg_support;
#[path = "queue_contract/postgres_replicas.rs"]
mod postgres_replicas;
#[path = "queue_contract/privacy.rs"]
mod privacy;

use activity::*;
use holds::*;
use privacy::*;

use std::time::Duration;

use freshtap::body::BodyKind;
use freshtap::clock::now_ms;
use freshtap::queue::{
    DeadCode, DeadLetterFilter, Enqueued, NewDeadLetter, NewWebhook, Next, Queue, Replay,
    RowOutcome, SetBody,
};

pub(crate) const LEASE: Duration = Duration::from_secs(30);
pub(crate) const WINDOW: Duration = Duration::from_secs(600);
const DAY: Duration = Duration::from_secs(86_400);

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

fn finished(id: i64, delivered: Vec<u32>, dead: Vec<NewDeadLetter>) -> RowOutcome {
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

async fn dead_records_replay_without_resending_delivered_ones(q: Queue) {
    let id = accepted(
        q.enqueue(webhook("f", &["f@x"]), WINDOW)
            .await
            .expect("enqueue"),
    );
    q.claim("main", 10, LEASE).await.expect("claim");
    let dead = NewDeadLetter {
        record_index: Some(1),
        code: DeadCode::Refused(516),
        reason: "Phone number is not valid.".into(),
    };
    q.complete(vec![finished(id, vec![0, 2], vec![dead])])
        .await
        .expect("complete");
    let stats = q.stats().await.expect("stats");
    assert_eq!(
        (stats.dead, stats.delivered),
        (1, 0),
        "a row with a dead record is dead"
    );
    let letters = q
        .dead_letters(DeadLetterFilter {
            limit: 10,
            ..Default::default()
        })
        .await
        .expect("list");
    assert_eq!(letters.len(), 1);
    assert_eq!(
        (letters[0].row_id, letters[0].record_index, letters[0].code),
        (id, Some(1), DeadCode::Refused(516))
    );
    let replayed = q
        .replay(
            vec![Replay {
                dead_letter_id: letters[0].id,
                order_keys: None,
            }],
            DAY,
        )
        .await
        .expect("replay");
    assert_eq!(replayed, vec![letters[0].id]);
    let claimed = q.claim("main", 10, LEASE).await.expect("claim");
    assert_eq!(claimed.len(), 1);
    let mut done = claimed[0].done.clone();
    done.sort_unstable();
    assert_eq!(
        done,
        vec![0, 2],
        "delivered records are never sent again; the replayed one is"
    );
    assert_eq!(claimed[0].attempts, 0, "a replay starts afresh");
}

async fn an_invalid_body_can_be_fixed_and_replayed(q: Queue) {
    let (row, letter) = q
        .enqueue_invalid(webhook("{broken", &[]), "not JSON".into())
        .await
        .expect("store");
    let letters = q
        .dead_letters(DeadLetterFilter {
            code: Some(DeadCode::InvalidBody),
            limit: 10,
            ..Default::default()
        })
        .await
        .expect("list");
    assert_eq!(
        letters
            .iter()
            .map(|l| (l.id, l.row_id, l.record_index))
            .collect::<Vec<_>>(),
        vec![(letter, row, None)]
    );
    assert_eq!(
        q.set_body(letter, b"{\"d\":[]}".to_vec(), BodyKind::Json)
            .await
            .expect("set"),
        SetBody::Replaced
    );
    assert_eq!(
        q.set_body(letter + 1000, b"{}".to_vec(), BodyKind::Json)
            .await
            .expect("set"),
        SetBody::NotFound
    );
    q.replay(
        vec![Replay {
            dead_letter_id: letter,
            order_keys: Some(vec!["fixed@x".into()]),
        }],
        DAY,
    )
    .await
    .expect("replay");
    let claimed = q.claim("main", 10, LEASE).await.expect("claim");
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].body, b"{\"d\":[]}");
}

async fn deleting_a_dead_letter_removes_it(q: Queue) {
    let (_, letter) = q
        .enqueue_invalid(webhook("{x", &[]), "not JSON".into())
        .await
        .expect("store");
    assert!(q.delete_dead_letter(letter).await.expect("delete"));
    assert!(!q.delete_dead_letter(letter).await.expect("delete"));
    assert_eq!(q.stats().await.expect("stats").dead, 0);
}

async fn retention_purges_only_what_is_old(q: Queue) {
    let id = accepted(
        q.enqueue(webhook("g", &["g@x"]), WINDOW)
            .await
            .expect("enqueue"),
    );
    accepted(
        q.enqueue(webhook("h", &["h@x"]), WINDOW)
            .await
            .expect("enqueue"),
    );
    q.claim("main", 1, LEASE).await.expect("claim");
    q.complete(vec![finished(id, vec![0], vec![])])
        .await
        .expect("complete");
    let kept = q
        .purge(now_ms() - 60_000, now_ms() - 60_000)
        .await
        .expect("purge");
    assert_eq!(kept.delivered, 0, "a fresh delivered row is kept");
    let purged = q.purge(now_ms() + 1, now_ms() + 1).await.expect("purge");
    assert_eq!(purged.delivered, 1);
    let stats = q.stats().await.expect("stats");
    assert_eq!(
        (stats.delivered, stats.pending),
        (0, 1),
        "pending rows are never purged"
    );
}

async fn concurrent_enqueues_all_commit(q: Queue) {
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let q = q.clone();
            tokio::spawn(async move { q.enqueue(webhook(&format!("body-{i}"), &[]), WINDOW).await })
        })
        .collect();
    let mut ids = Vec::new();
    for task in tasks {
        ids.push(accepted(task.await.expect("task").expect("enqueue")));
    }
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 200);
    assert_eq!(q.stats().await.expect("stats").pending, 200);
}

async fn lookup_by_request_id_shows_the_row(q: Queue) {
    let id = accepted(
        q.enqueue(webhook("i", &["i@x"]), WINDOW)
            .await
            .expect("enqueue"),
    );
    let view = q
        .webhook_by_request_id("req-i")
        .await
        .expect("lookup")
        .expect("found");
    assert_eq!((view.id, view.state.as_str()), (id, "pending"));
    assert!(
        q.webhook_by_request_id("nope")
            .await
            .expect("lookup")
            .is_none()
    );
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
            the_same_body_within_the_window_is_a_duplicate,
            an_identity_waits_for_its_earlier_row,
            a_retry_waits_until_due,
            dead_records_replay_without_resending_delivered_ones,
            an_invalid_body_can_be_fixed_and_replayed,
            deleting_a_dead_letter_removes_it,
            retention_purges_only_what_is_old,
            concurrent_enqueues_all_commit,
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
