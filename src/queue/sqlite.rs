//! SQLite backend: WAL with `synchronous=FULL`, one writer thread that group-commits.
//!
//! Every operation is a closure sent to the writer thread. The thread takes the first job,
//! drains whatever else has queued meanwhile, runs them all in one transaction (each in its
//! own savepoint, so one failing job does not fail the others), commits once — one fsync —
//! and only then answers each caller. Concurrent intakes therefore share a commit.

use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use rusqlite::Connection;
use tokio::sync::{oneshot, watch};

use super::sqlite_ops as ops;
use super::{
    Claimed, DeadLetter, DeadLetterFilter, Enqueued, NewWebhook, PurgeCounts, QueueError, Replay,
    RowOutcome, SetBody, Stats, WebhookView, duration_ms, now_ms,
};

const SCHEMA: &str = include_str!("../../migrations/sqlite/0001_init.sql");
/// Jobs per group commit at most, so one commit never grows without bound.
const MAX_GROUP: usize = 1024;

type Finish = Box<dyn FnOnce(Result<(), String>) + Send>;
type Job = Box<dyn FnOnce(&Connection) -> Finish + Send>;

#[derive(Clone)]
pub struct SqliteQueue {
    jobs: mpsc::Sender<Job>,
    wake: watch::Sender<u64>,
}

impl SqliteQueue {
    pub async fn open(path: &str) -> Result<Self, QueueError> {
        let path = path.to_owned();
        let conn = tokio::task::spawn_blocking(move || open_connection(&path))
            .await
            .map_err(|_| QueueError::Closed)??;
        let (jobs, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("freshtap-sqlite".into())
            .spawn(move || writer(&conn, &rx))?;
        let (wake, _) = watch::channel(0);
        Ok(Self { jobs, wake })
    }

    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.wake.subscribe()
    }

    fn wake(&self) {
        self.wake
            .send_modify(|generation| *generation = generation.wrapping_add(1));
    }

    /// Runs `f` on the writer thread inside the current group transaction.
    async fn call<R, F>(&self, f: F) -> Result<R, QueueError>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> rusqlite::Result<R> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move |conn| {
            let result = in_savepoint(conn, f);
            Box::new(move |commit: Result<(), String>| {
                let answer = match commit {
                    Ok(()) => result.map_err(QueueError::from),
                    Err(error) => Err(QueueError::Commit(error)),
                };
                // The caller may have gone (client disconnected); the data is committed anyway.
                let _ = tx.send(answer);
            })
        });
        self.jobs.send(job).map_err(|_| QueueError::Closed)?;
        rx.await.map_err(|_| QueueError::Closed)?
    }

    pub async fn enqueue(
        &self,
        row: NewWebhook,
        dedup_window: Duration,
    ) -> Result<Enqueued, QueueError> {
        let since = row.received_at_ms - duration_ms(dedup_window);
        let result = self.call(move |c| ops::enqueue(c, &row, since)).await?;
        if matches!(result, Enqueued::Accepted(_)) {
            self.wake();
        }
        Ok(result)
    }

    pub async fn enqueue_invalid(
        &self,
        row: NewWebhook,
        reason: String,
    ) -> Result<(i64, i64), QueueError> {
        self.call(move |c| ops::enqueue_invalid(c, &row, &reason))
            .await
    }

    pub async fn claim(
        &self,
        account: String,
        limit: usize,
        lease: Duration,
    ) -> Result<Vec<Claimed>, QueueError> {
        let lease_ms = duration_ms(lease);
        self.call(move |c| ops::claim(c, &account, limit, now_ms(), lease_ms))
            .await
    }

    pub async fn complete(&self, outcomes: Vec<RowOutcome>) -> Result<(), QueueError> {
        self.call(move |c| ops::complete(c, &outcomes, now_ms()))
            .await?;
        // Released rows are due at once, and finished rows unblock later rows of the same
        // identity: either way a worker may have work now.
        self.wake();
        Ok(())
    }

    pub async fn next_due(&self, account: String) -> Result<Option<i64>, QueueError> {
        self.call(move |c| ops::next_due(c, &account)).await
    }

    pub async fn stats(&self) -> Result<Stats, QueueError> {
        self.call(ops::stats).await
    }

    pub async fn dead_letters(
        &self,
        filter: DeadLetterFilter,
    ) -> Result<Vec<DeadLetter>, QueueError> {
        self.call(move |c| ops::dead_letters(c, &filter)).await
    }

    pub async fn dead_letter(&self, id: i64) -> Result<Option<DeadLetter>, QueueError> {
        self.call(move |c| ops::dead_letter(c, id)).await
    }

    pub async fn replay(
        &self,
        items: Vec<Replay>,
        max_age: Duration,
    ) -> Result<Vec<i64>, QueueError> {
        let max_age_ms = duration_ms(max_age);
        let replayed = self
            .call(move |c| ops::replay(c, &items, now_ms(), max_age_ms))
            .await?;
        if !replayed.is_empty() {
            self.wake();
        }
        Ok(replayed)
    }

    pub async fn set_body(
        &self,
        id: i64,
        body: Vec<u8>,
        content_type: String,
    ) -> Result<SetBody, QueueError> {
        self.call(move |c| ops::set_body(c, id, &body, &content_type))
            .await
    }

    pub async fn delete_dead_letter(&self, id: i64) -> Result<bool, QueueError> {
        self.call(move |c| ops::delete_dead_letter(c, id)).await
    }

    pub async fn webhook_by_request_id(
        &self,
        request_id: String,
    ) -> Result<Option<WebhookView>, QueueError> {
        self.call(move |c| ops::webhook_by_request_id(c, &request_id))
            .await
    }

    pub async fn purge(
        &self,
        delivered_before: i64,
        dead_before: i64,
    ) -> Result<PurgeCounts, QueueError> {
        self.call(move |c| ops::purge(c, delivered_before, dead_before))
            .await
    }

    pub async fn extend_deadlines(&self, account: String, by: Duration) -> Result<u64, QueueError> {
        let by_ms = duration_ms(by);
        self.call(move |c| ops::extend_deadlines(c, &account, by_ms))
            .await
    }

    /// One process holds the whole account: the worker's in-process semaphore is the bound.
    #[expect(
        clippy::unused_async,
        reason = "same signature as the PostgreSQL backend"
    )]
    pub async fn acquire_slot(
        &self,
        _account: String,
        _limit: usize,
        _ttl: Duration,
    ) -> Result<Option<i64>, QueueError> {
        Ok(Some(0))
    }

    #[expect(
        clippy::unused_async,
        reason = "same signature as the PostgreSQL backend"
    )]
    pub async fn release_slot(&self, _slot: i64) -> Result<(), QueueError> {
        Ok(())
    }

    pub async fn ping(&self) -> Result<(), QueueError> {
        self.call(|c| c.query_row("SELECT 1", [], |_| Ok(()))).await
    }
}

fn open_connection(path: &str) -> Result<Connection, QueueError> {
    if let Some(dir) = Path::new(path).parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir)?;
    }
    let conn = Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(10))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.execute_batch(SCHEMA)?;
    Ok(conn)
}

fn in_savepoint<R>(
    conn: &Connection,
    f: impl FnOnce(&Connection) -> rusqlite::Result<R>,
) -> rusqlite::Result<R> {
    conn.execute_batch("SAVEPOINT job")?;
    match f(conn) {
        Ok(value) => {
            conn.execute_batch("RELEASE job")?;
            Ok(value)
        }
        Err(error) => {
            conn.execute_batch("ROLLBACK TO job; RELEASE job")?;
            Err(error)
        }
    }
}

/// The writer thread: group commit until every sender is gone.
fn writer(conn: &Connection, jobs: &mpsc::Receiver<Job>) {
    while let Ok(first) = jobs.recv() {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match jobs.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        if let Err(error) = conn.execute_batch("BEGIN IMMEDIATE") {
            let message = error.to_string();
            tracing::error!(error = %message, "queue transaction could not start");
            // Dropping the jobs unrun answers every caller with `QueueError::Closed` (503).
            drop(group);
            continue;
        }
        let finishes: Vec<Finish> = group.into_iter().map(|job| job(conn)).collect();
        let commit = conn.execute_batch("COMMIT").map_err(|error| {
            tracing::error!(error = %error, "queue commit failed; rolling back the group");
            let _ = conn.execute_batch("ROLLBACK");
            error.to_string()
        });
        for finish in finishes {
            finish(commit.clone());
        }
    }
}
