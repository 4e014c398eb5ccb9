//! Contract behaviours of account holds and of intake-refused records, for every backend.

use std::time::Duration;

use freshtap::clock::now_ms;
use freshtap::queue::{
    DeadCode, DeadLetterFilter, Enqueued, HoldKind, NewDeadLetter, Queue, RowState,
};

use super::{LEASE, WINDOW, accepted, webhook};

pub async fn lifting_the_last_hold_gives_the_held_time_back_once(q: Queue) {
    let id = accepted(
        q.enqueue(webhook("held", &["h@x"]), WINDOW)
            .await
            .expect("enqueue"),
    );
    assert!(
        q.hold("main", HoldKind::Manual, "operator", None)
            .await
            .expect("hold")
    );
    assert!(
        !q.hold("main", HoldKind::Manual, "again", None)
            .await
            .expect("hold"),
        "a second pause of the same kind is not new"
    );
    assert!(
        q.hold("main", HoldKind::Unreachable, "down", Some(now_ms()))
            .await
            .expect("hold")
    );
    let holds = q.holds().await.expect("holds");
    assert_eq!(holds.len(), 2, "{holds:?}");
    assert_eq!(holds[0].reason, "operator", "the first reason stays");
    // Let the held time be measurable.
    tokio::time::sleep(Duration::from_millis(30)).await;
    let partial = q
        .lift("main", &[HoldKind::Unreachable])
        .await
        .expect("lift");
    assert_eq!(partial.kinds, vec![HoldKind::Unreachable]);
    assert_eq!(partial.resumed_after, None, "still paused by the operator");
    let before = deadline(&q, id).await;
    let full = q.lift("main", &HoldKind::ALL).await.expect("lift");
    assert_eq!(full.kinds, vec![HoldKind::Manual]);
    let held = full.resumed_after.expect("the account is free");
    assert!(held >= Duration::from_millis(30), "held {held:?}");
    let after = deadline(&q, id).await;
    assert_eq!(
        after - before,
        i64::try_from(held.as_millis()).expect("ms"),
        "the deadline moves back by the whole held time"
    );
    let again = q.lift("main", &HoldKind::ALL).await.expect("lift");
    assert_eq!((again.kinds.len(), again.resumed_after), (0, None));
    assert_eq!(
        deadline(&q, id).await,
        after,
        "a second resume extends nothing"
    );
}

/// The row's age deadline, read through a claim (then given back).
async fn deadline(q: &Queue, id: i64) -> i64 {
    let claimed = q.claim("main", 10, LEASE).await.expect("claim");
    let row = claimed
        .iter()
        .find(|r| r.id == id)
        .expect("the row is claimable");
    let outcome = freshtap::queue::RowOutcome {
        id,
        delivered: Vec::new(),
        dead: Vec::new(),
        next: freshtap::queue::Next::Release,
    };
    q.complete(vec![outcome]).await.expect("release");
    row.deadline_ms
}

pub async fn a_due_probe_is_taken_by_one_caller(q: Queue) {
    let now = now_ms();
    q.hold("main", HoldKind::Refused, "401", Some(now - 1))
        .await
        .expect("hold");
    let until = now + 60_000;
    assert!(
        q.take_probe("main", HoldKind::Refused, until)
            .await
            .expect("take")
    );
    assert!(
        !q.take_probe("main", HoldKind::Refused, until)
            .await
            .expect("take"),
        "a probe in flight is not taken twice"
    );
    q.probe_failed("main", HoldKind::Refused, "401 again", now - 1)
        .await
        .expect("failed");
    let hold = q.holds().await.expect("holds").remove(0);
    assert_eq!((hold.probes, hold.reason.as_str()), (1, "401 again"));
    assert!(
        q.take_probe("main", HoldKind::Refused, until)
            .await
            .expect("take")
    );
    q.reschedule_probe("main", HoldKind::Refused, now - 1)
        .await
        .expect("reschedule");
    assert_eq!(
        q.holds().await.expect("holds")[0].probes,
        1,
        "a reschedule is no probe"
    );
    assert!(
        q.take_probe("main", HoldKind::Refused, until)
            .await
            .expect("take")
    );
    assert!(
        !q.take_probe("main", HoldKind::Manual, until)
            .await
            .expect("take"),
        "a manual pause has no probe"
    );
}

pub async fn records_refused_at_intake_are_dead_letters_from_the_start(q: Queue) {
    let refused = |index| NewDeadLetter {
        record_index: Some(index),
        code: DeadCode::Refused(516),
        reason: "Profile data is incorrect. Phone number is not valid.Skipped record number : 1"
            .into(),
    };
    let mut partly = webhook("partly", &["p@x"]);
    partly.refused = vec![refused(1)];
    let partly = accepted(q.enqueue(partly, WINDOW).await.expect("enqueue"));
    let mut wholly = webhook("wholly", &["w@x"]);
    wholly.refused = vec![refused(0)];
    wholly.finished = true;
    let wholly = accepted(q.enqueue(wholly, WINDOW).await.expect("enqueue"));
    let claimed = q.claim("main", 10, LEASE).await.expect("claim");
    assert_eq!(
        claimed.iter().map(|r| r.id).collect::<Vec<_>>(),
        vec![partly]
    );
    assert_eq!(claimed[0].done, vec![1], "the refused record is never sent");
    let letters = q
        .dead_letters(DeadLetterFilter {
            limit: 10,
            ..Default::default()
        })
        .await
        .expect("list");
    let rows: Vec<(i64, Option<u32>, DeadCode)> = letters
        .iter()
        .map(|l| (l.row_id, l.record_index, l.code))
        .collect();
    assert_eq!(
        rows,
        vec![
            (partly, Some(1), DeadCode::Refused(516)),
            (wholly, Some(0), DeadCode::Refused(516))
        ]
    );
    let view = q
        .webhook_by_request_id("req-wholly")
        .await
        .expect("lookup")
        .expect("row");
    assert_eq!(
        view.state,
        RowState::Dead,
        "nothing left to send: stored dead"
    );
}

pub async fn a_body_that_is_not_deduplicated_is_stored_twice(q: Queue) {
    let mut first = webhook("event without ts", &["e@x"]);
    first.dedup = false;
    let again = first.clone();
    let a = accepted(q.enqueue(first, WINDOW).await.expect("enqueue"));
    let b = q.enqueue(again, WINDOW).await.expect("enqueue");
    assert!(matches!(b, Enqueued::Accepted(id) if id != a), "{b:?}");
}
