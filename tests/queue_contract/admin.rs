//! Contract behaviours of what operators see and do, for every backend: dead letters replayed
//! and fixed, deletion, retention, concurrent commits and lookup by request id.

use freshtap::body::BodyKind;
use freshtap::clock::now_ms;
use freshtap::queue::{
    DeadCode, DeadLetterFilter, Enqueued, NewDeadLetter, Queue, Replay, SetBody,
};

use super::{DAY, LEASE, WINDOW, accepted, finished, webhook};

pub async fn dead_records_replay_without_resending_delivered_ones(q: Queue) {
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

pub async fn an_invalid_body_can_be_fixed_and_replayed(q: Queue) {
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

pub async fn deleting_a_dead_letter_removes_it(q: Queue) {
    let (_, letter) = q
        .enqueue_invalid(webhook("{x", &[]), "not JSON".into())
        .await
        .expect("store");
    assert!(q.delete_dead_letter(letter).await.expect("delete"));
    assert!(!q.delete_dead_letter(letter).await.expect("delete"));
    assert_eq!(q.stats().await.expect("stats").dead, 0);
}

pub async fn retention_purges_only_what_is_old(q: Queue) {
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

pub async fn concurrent_enqueues_all_commit(q: Queue) {
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

/// Many enqueues at once (so groups commit several together): copies of one body within a
/// group are one row and duplicates of it, each distinct body a row with its order keys, and
/// a body that is not deduplicated a row each time.
pub async fn concurrent_copies_of_a_body_are_one_row(q: Queue) {
    let task = |body: String, keys: Vec<String>, dedup: bool| {
        let q = q.clone();
        tokio::spawn(async move {
            let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
            let mut row = webhook(&body, &keys);
            row.dedup = dedup;
            q.enqueue(row, WINDOW).await.expect("enqueue")
        })
    };
    let mut copies = Vec::new();
    let mut distinct = Vec::new();
    let mut always = Vec::new();
    for i in 0..60 {
        copies.push(task("same".into(), vec!["same@x".into()], true));
        distinct.push(task(
            format!("d-{i}"),
            vec![format!("d{i}@x"), format!("alt{i}")],
            true,
        ));
        always.push(task("again".into(), vec![], false));
    }
    let mut copy_answers = Vec::new();
    for t in copies {
        copy_answers.push(t.await.expect("task"));
    }
    let first = copy_answers
        .iter()
        .find_map(|e| match e {
            Enqueued::Accepted(id) => Some(*id),
            Enqueued::Duplicate(_) => None,
        })
        .expect("one copy is stored");
    assert!(
        copy_answers
            .iter()
            .all(|e| *e == Enqueued::Accepted(first) || *e == Enqueued::Duplicate(first)),
        "every copy is that row: {copy_answers:?}"
    );
    assert_eq!(
        copy_answers
            .iter()
            .filter(|e| matches!(e, Enqueued::Accepted(_)))
            .count(),
        1
    );
    let mut ids = Vec::new();
    for t in distinct.into_iter().chain(always) {
        ids.push(accepted(t.await.expect("task")));
    }
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(
        ids.len(),
        120,
        "distinct bodies and undeduplicated ones are rows each"
    );
    assert_eq!(q.stats().await.expect("stats").pending, 121);
    // Order keys went in with their rows: no two claimed rows share one, every row is due.
    let claimed = q.claim("main", 1000, LEASE).await.expect("claim");
    assert_eq!(claimed.len(), 121, "no row shares a key with another");
    let view = q
        .webhook_by_request_id("req-d-7")
        .await
        .expect("lookup")
        .expect("found");
    assert_eq!(view.state.as_str(), "leased");
}

pub async fn lookup_by_request_id_shows_the_row(q: Queue) {
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
