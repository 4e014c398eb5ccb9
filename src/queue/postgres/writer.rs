//! The group-commit writer of enqueues: one transaction per batch of queued webhooks.

use std::time::Duration;

use deadpool_postgres::Pool;
use tokio::sync::{mpsc, oneshot};

use super::enqueue;
use crate::queue::health::Health;
use crate::queue::{Enqueued, NewWebhook, QueueError};

/// Webhooks per group commit at most.
const MAX_GROUP: usize = 512;
/// Enqueues waiting for the writer at most; beyond that intake waits (and times out: 503).
const WRITE_BACKLOG: usize = 4096;
/// Longest one group commit may take (connection included); a connection stuck past it (a
/// partition) is dropped instead of going back to the pool.
const GROUP_TIMEOUT: Duration = Duration::from_secs(4);

/// One enqueue: the row, the start of its dedup window, and where to answer.
pub(super) type Write = (
    NewWebhook,
    i64,
    oneshot::Sender<Result<Enqueued, QueueError>>,
);

pub(super) fn spawn(pool: Pool, health: Health) -> mpsc::Sender<Write> {
    let (writes, rx) = mpsc::channel(WRITE_BACKLOG);
    tokio::spawn(run(pool, rx, health));
    writes
}

async fn run(pool: Pool, mut rx: mpsc::Receiver<Write>, health: Health) {
    let mut group = Vec::with_capacity(MAX_GROUP);
    while rx.recv_many(&mut group, MAX_GROUP).await > 0 {
        let (rows, replies): (Vec<(NewWebhook, i64)>, Vec<_>) = group
            .drain(..)
            .map(|(row, since, reply)| ((row, since), reply))
            .unzip();
        match insert_group(&pool, &rows).await {
            Ok(results) => {
                health.ok();
                for (reply, result) in replies.into_iter().zip(results) {
                    // The caller may have gone (client disconnected); the row is committed anyway.
                    let _ = reply.send(Ok(result));
                }
            }
            Err(error) if rows.len() > 1 => {
                // One bad row (or a deadlock with another replica's group) must not fail the
                // others: retry each in its own transaction.
                tracing::warn!(error = %error, rows = rows.len(), "group commit failed; retrying row by row");
                for (row, reply) in rows.into_iter().zip(replies) {
                    let result = insert_group(&pool, std::slice::from_ref(&row)).await;
                    let answer =
                        result.and_then(|r| r.into_iter().next().ok_or(QueueError::Closed));
                    record(&health, &answer);
                    let _ = reply.send(answer);
                }
            }
            Err(error) => {
                health.fail(&format!("queue commits fail: {error}"));
                for reply in replies {
                    let _ = reply.send(Err(QueueError::Commit(error.to_string())));
                }
            }
        }
    }
}

fn record(health: &Health, answer: &Result<Enqueued, QueueError>) {
    match answer {
        Ok(_) => health.ok(),
        Err(error) => health.fail(&format!("queue commits fail: {error}")),
    }
}

/// One group's transaction, bounded by `GROUP_TIMEOUT`: the writer never waits forever on a
/// database it cannot reach, so intake keeps answering (503) and recovers when it is back.
async fn insert_group(
    pool: &Pool,
    rows: &[(NewWebhook, i64)],
) -> Result<Vec<Enqueued>, QueueError> {
    let mut client = tokio::time::timeout(GROUP_TIMEOUT, pool.get())
        .await
        .map_err(|_| QueueError::Timeout(GROUP_TIMEOUT))??;
    let insert = async {
        let t = client.transaction().await?;
        let results = enqueue::enqueue(&t, rows).await?;
        t.commit().await?;
        Ok(results)
    };
    match tokio::time::timeout(GROUP_TIMEOUT, insert).await {
        Ok(results) => results,
        Err(_) => {
            // The connection may be mid-transaction on a dead link: never reuse it. If the
            // COMMIT did reach the server, the rows are delivered although their callers were
            // answered 503 (at least once).
            drop(deadpool_postgres::Object::take(client));
            Err(QueueError::Timeout(GROUP_TIMEOUT))
        }
    }
}
