//! Contract behaviour of the privacy operations (erasure, what is held for one person, the
//! audit log, delivered-body retention), for every backend.

use freshtap::clock::now_ms;
use freshtap::queue::{
    Actor, DeadLetterFilter, Erasure, NewAudit, NewWebhook, Next, Queue, RowOutcome, RowState,
};

use super::{LEASE, WINDOW, accepted, webhook};

fn all_letters() -> DeadLetterFilter {
    DeadLetterFilter {
        limit: 100,
        ..DeadLetterFilter::default()
    }
}

fn actor() -> Actor {
    Actor {
        credential: "admin_token".into(),
        client: "127.0.0.1".into(),
        request_id: "req-erase".into(),
    }
}

fn erasure(identity: &str, keep_pending: bool, scan_limit: usize) -> Erasure {
    Erasure {
        identity: identity.into(),
        identity_hash: "0badc0de".into(),
        keep_pending,
        propagate: false,
        deletions: Vec::new(),
        scan_limit,
        actor: actor(),
    }
}

/// The profile deletion a propagating erasure of Ann queues for `account`.
fn deletion_of_ann(account: &str) -> NewWebhook {
    let mut row = webhook(r#"{"identity":["Ann@X.com","ann@x.com"]}"#, &["ann@x.com"]);
    row.request_id = format!("req-delete-{account}");
    row.route = format!("_delete:{account}");
    row.account = account.into();
    row.dedup = false;
    row
}

/// One row of `key` delivered, one dead with a dead letter, one pending; a row of someone else.
async fn rows_of_ann(q: &Queue) -> (i64, i64) {
    let delivered = accepted(
        q.enqueue(webhook("ann-1", &["ann@x.com"]), WINDOW)
            .await
            .expect("enqueue"),
    );
    q.claim("main", 10, LEASE).await.expect("claim");
    q.complete(vec![RowOutcome {
        id: delivered,
        delivered: vec![0],
        dead: vec![],
        next: Next::Finished,
    }])
    .await
    .expect("complete");
    // An unreadable body mentioning Ann: no identity was extracted, the scan finds it.
    let mut invalid = webhook("{\"email\":\"ANN@x.com\"", &[]);
    invalid.request_id = "req-invalid".into();
    q.enqueue_invalid(invalid, "not JSON".into())
        .await
        .expect("invalid");
    accepted(
        q.enqueue(webhook("ann-2", &["ann@x.com"]), WINDOW)
            .await
            .expect("enqueue"),
    );
    let bob = accepted(
        q.enqueue(webhook("bob", &["bob@x.com"]), WINDOW)
            .await
            .expect("enqueue"),
    );
    assert_eq!(q.dead_letters(all_letters()).await.expect("dead").len(), 1);
    (delivered, bob)
}

pub async fn an_erasure_removes_one_persons_rows_and_records_it(q: Queue) {
    let (_, bob) = rows_of_ann(&q).await;
    let record = q
        .erase(erasure("  Ann@X.com ", false, 100))
        .await
        .expect("erase");
    let r = record.removed;
    assert_eq!(
        (r.pending, r.leased, r.delivered, r.dead, r.dead_letters),
        (1, 0, 1, 1, 1),
        "{r:?}"
    );
    assert!(!r.scan_truncated);
    assert!(
        q.held_for("ann@x.com", 100, 100)
            .await
            .expect("held")
            .is_empty()
    );
    let held = q.held_for("bob@x.com", 100, 100).await.expect("held");
    assert_eq!(
        held.iter().map(|v| v.id).collect::<Vec<_>>(),
        vec![bob],
        "others stay"
    );
    assert!(
        q.dead_letters(all_letters())
            .await
            .expect("dead")
            .is_empty()
    );
    let listed = q.erasures(10, None).await.expect("erasures");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].identity_hash, "0badc0de");
    assert_eq!(listed[0].actor, actor());
    assert_eq!(listed[0].removed.rows(), 3);
    // Erasing again finds nothing and is recorded too.
    let again = q
        .erase(erasure("ann@x.com", false, 100))
        .await
        .expect("erase");
    assert_eq!(again.removed.rows(), 0);
    let listed = q.erasures(10, None).await.expect("erasures");
    assert_eq!(
        listed.iter().map(|e| e.id).collect::<Vec<_>>(),
        vec![again.id, record.id]
    );
}

pub async fn keep_pending_leaves_unfinished_rows(q: Queue) {
    rows_of_ann(&q).await;
    let r = q
        .erase(erasure("ann@x.com", true, 100))
        .await
        .expect("erase")
        .removed;
    assert_eq!((r.pending, r.delivered, r.dead), (0, 1, 1), "{r:?}");
    let held = q.held_for("ann@x.com", 100, 100).await.expect("held");
    assert_eq!(held.len(), 1);
    assert_eq!(held[0].state, freshtap::queue::RowState::Pending);
    // The kept row is still delivered in order.
    let claimed = q.claim("main", 10, LEASE).await.expect("claim");
    assert!(claimed.iter().any(|c| c.id == held[0].id));
}

pub async fn the_body_scan_is_bounded(q: Queue) {
    rows_of_ann(&q).await;
    // Two newer unkeyed rows: a scan of two bodies reads them and not Ann's invalid body.
    for body in ["x1", "x2"] {
        let mut row = webhook(body, &[]);
        row.request_id = format!("req-{body}");
        q.enqueue_invalid(row, "not JSON".into())
            .await
            .expect("invalid");
    }
    let r = q
        .erase(erasure("ann@x.com", false, 2))
        .await
        .expect("erase")
        .removed;
    assert_eq!((r.scanned, r.scan_truncated, r.dead), (2, true, 0), "{r:?}");
    let r = q
        .erase(erasure("ann@x.com", false, 10))
        .await
        .expect("erase")
        .removed;
    assert_eq!(
        (r.dead, r.scan_truncated),
        (1, false),
        "a wider scan finds it: {r:?}"
    );
}

pub async fn what_is_held_for_a_person_lists_states_and_dead_letters(q: Queue) {
    let (delivered, _) = rows_of_ann(&q).await;
    let held = q.held_for("ANN@x.com", 100, 100).await.expect("held");
    assert_eq!(held.len(), 3, "{held:?}");
    assert!(held.windows(2).all(|w| w[0].id > w[1].id), "newest first");
    let invalid = held
        .iter()
        .find(|v| v.request_id == "req-invalid")
        .expect("invalid row");
    assert_eq!(invalid.dead_letters.len(), 1);
    let done = held
        .iter()
        .find(|v| v.id == delivered)
        .expect("delivered row");
    assert!(done.finished_at_ms.is_some());
    assert_eq!(
        q.held_for("ann@x.com", 1, 100).await.expect("held").len(),
        1,
        "limit"
    );
}

pub async fn the_audit_log_lists_actions_newest_first(q: Queue) {
    for (action, target) in [("pause", "main"), ("replay", "7"), ("erase", "1")] {
        q.audit(NewAudit {
            actor: actor(),
            action: action.into(),
            target: target.into(),
            detail: "done".into(),
        })
        .await
        .expect("audit");
    }
    let log = q.audit_log(10, None).await.expect("log");
    let actions: Vec<&str> = log.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["erase", "replay", "pause"]);
    assert_eq!(log[0].actor, actor());
    assert!(log[0].at_ms <= now_ms());
    let older = q.audit_log(10, Some(log[0].id)).await.expect("page");
    assert_eq!(older.len(), 2);
}

pub async fn delivered_bodies_are_dropped_but_dead_letters_keep_theirs(q: Queue) {
    let (delivered, _) = rows_of_ann(&q).await;
    assert_eq!(
        q.drop_delivered_bodies(now_ms() - 60_000)
            .await
            .expect("drop"),
        0,
        "fresh"
    );
    assert_eq!(
        q.drop_delivered_bodies(now_ms() + 1).await.expect("drop"),
        1
    );
    assert_eq!(
        q.drop_delivered_bodies(now_ms() + 1).await.expect("drop"),
        0,
        "once"
    );
    let held = q.held_for("ann@x.com", 100, 100).await.expect("held");
    let row = held
        .iter()
        .find(|v| v.id == delivered)
        .expect("metadata kept");
    assert!(row.body_dropped_at_ms.is_some());
    let letters = q.dead_letters(all_letters()).await.expect("dead");
    assert_eq!(letters.len(), 1);
    assert!(!letters[0].body.is_empty(), "a dead letter keeps its body");
    assert_eq!(q.stats().await.expect("stats").delivered, 1);
}

pub async fn a_propagating_erasure_queues_deletions_in_its_transaction(q: Queue) {
    rows_of_ann(&q).await;
    let mut e = erasure("ann@x.com", false, 100);
    e.propagate = true;
    e.deletions = vec![deletion_of_ann("main"), deletion_of_ann("other")];
    let record = q.erase(e).await.expect("erase");
    assert_eq!(record.removed.rows(), 3, "Ann's rows go first");
    let accounts: Vec<&str> = record
        .deletions
        .iter()
        .map(|d| d.account.as_str())
        .collect();
    assert_eq!(accounts, ["main", "other"]);
    assert!(
        record
            .deletions
            .iter()
            .all(|d| d.state == Some(RowState::Pending))
    );
    // The deletion is delivered like any row of its account, in order behind Ann's rows.
    let claimed = q.claim("main", 10, LEASE).await.expect("claim");
    let main = record.deletions[0].row_id;
    let row = claimed
        .iter()
        .find(|c| c.id == main)
        .expect("deletion claimable");
    assert_eq!(row.route, "_delete:main");
    // A second erasure of Ann never removes the deletions the first queued.
    let again = q
        .erase(erasure("ann@x.com", false, 100))
        .await
        .expect("erase");
    assert_eq!(again.removed.rows(), 0, "{:?}", again.removed);
    q.complete(vec![RowOutcome {
        id: main,
        delivered: vec![0, 1],
        dead: vec![],
        next: Next::Finished,
    }])
    .await
    .expect("complete");
    let listed = q.erasures(10, None).await.expect("erasures");
    let first = listed.iter().find(|r| r.id == record.id).expect("listed");
    let states: Vec<_> = first.deletions.iter().map(|d| d.state).collect();
    assert_eq!(states, [Some(RowState::Delivered), Some(RowState::Pending)]);
    // A delivered deletion's body (the identity in clear) is dropped at the next pass, however
    // recent; the one still pending keeps its own.
    let dropped = q
        .drop_delivered_bodies(now_ms() - 3_600_000)
        .await
        .expect("drop");
    assert_eq!(dropped, 1);
    let view = q
        .webhook_by_request_id("req-delete-main")
        .await
        .expect("view")
        .expect("metadata kept");
    assert_eq!(view.id, main);
    assert!(view.body_dropped_at_ms.is_some());
}
