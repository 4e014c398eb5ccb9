//! SQLite backend: WAL with `synchronous=FULL`, one writer thread that group-commits (`writer.rs`).
//!
//! Every operation is a closure sent to the writer thread. The thread takes the first job,
//! drains whatever else has queued meanwhile, runs them all in one transaction (each in its
//! own savepoint, so one failing job does not fail the others), commits once — one fsync —
//! and only then answers each caller. Concurrent intakes therefore share a commit. A commit
//! that fails (disk full, I/O error) fails every job of its group and marks the queue faulty
//! until a later commit succeeds. A queue file deleted or replaced under the process marks it
//! faulty for good (see `file`).

mod activity;
mod admin;
mod file;
mod holds;
mod open;
mod ops;
mod privacy;
mod rows;
mod writer;

use std::sync::mpsc;
use std::time::Duration;

use rusqlite::Connection;
use tokio::sync::oneshot;

use super::health::Health;
use super::{
    AuditEntry, ClaimLimit, Claimed, DeadLetter, DeadLetterFilter, Enqueued, Erasure,
    ErasureRecord, Hold, HoldKind, Lifted, NewAudit, NewWebhook, PurgeCounts, QueueError, Replay,
    RowOutcome, SetBody, Stats, WebhookView,
};
use crate::body::BodyKind;
use crate::clock::{duration_ms, now_ms};
use writer::{Job, in_savepoint, writer};

#[derive(Clone)]
pub struct SqliteQueue {
    jobs: mpsc::Sender<Job>,
    health: Health,
}

impl SqliteQueue {
    /// Opens (creating, checking and migrating) the file at `path`; a damaged file is refused
    /// with a message naming it and saying how to recover.
    pub async fn open(path: &str, health: Health) -> Result<Self, QueueError> {
        let owned = path.to_owned();
        let conn = tokio::task::spawn_blocking(move || open::connection(&owned))
            .await
            .map_err(|_| QueueError::Closed)??;
        let (jobs, rx) = mpsc::channel::<Job>();
        let writer_health = health.clone();
        let file = file::Watch::new(path)?;
        std::thread::Builder::new()
            .name("freshtap-sqlite".into())
            .spawn(move || writer(&conn, &rx, &writer_health, file))?;
        Ok(Self { jobs, health })
    }

    /// Nothing new goes into a file that was deleted or replaced: the next start would not see it.
    fn refuse_if_orphaned(&self) -> Result<(), QueueError> {
        self.health
            .for_good()
            .map_or(Ok(()), |r| Err(QueueError::Commit(r)))
    }

    /// Runs `f` on the writer thread inside the current group transaction.
    async fn call<R, F>(&self, f: F) -> Result<R, QueueError>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> rusqlite::Result<R> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move |conn| {
            // After SQLite rolled the group back on its own (SQLITE_FULL), the connection is in
            // autocommit: a job run now would commit alone while its caller is told the group
            // failed. It does not run; the group's failed commit answers it.
            let result = conn
                .filter(|conn| !conn.is_autocommit())
                .map(|conn| in_savepoint(conn, f));
            Box::new(move |commit: Result<(), String>| {
                let answer = match (commit, result) {
                    (Ok(()), Some(result)) => result.map_err(QueueError::from),
                    (Ok(()), None) => Err(QueueError::Closed),
                    (Err(error), _) => Err(QueueError::Commit(error)),
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
        self.refuse_if_orphaned()?;
        let since = row.received_at_ms - duration_ms(dedup_window);
        self.call(move |c| ops::enqueue(c, &row, since)).await
    }

    pub async fn enqueue_invalid(
        &self,
        row: NewWebhook,
        reason: String,
    ) -> Result<(i64, i64), QueueError> {
        self.refuse_if_orphaned()?;
        self.call(move |c| ops::enqueue_invalid(c, &row, &reason))
            .await
    }

    pub async fn claim(
        &self,
        account: String,
        limit: ClaimLimit,
        lease: Duration,
    ) -> Result<Vec<Claimed>, QueueError> {
        let lease_ms = duration_ms(lease);
        self.call(move |c| ops::claim(c, &account, limit, now_ms(), lease_ms))
            .await
    }

    pub async fn complete(&self, outcomes: Vec<RowOutcome>) -> Result<(), QueueError> {
        self.call(move |c| ops::complete(c, &outcomes, now_ms()))
            .await
    }

    pub async fn next_due(&self, account: String) -> Result<Option<i64>, QueueError> {
        self.call(move |c| ops::next_due(c, &account)).await
    }

    pub async fn stats(&self) -> Result<Stats, QueueError> {
        self.call(admin::stats).await
    }

    pub(crate) async fn activity(
        &self,
        since: i64,
        width: i64,
        buckets: usize,
    ) -> Result<super::ActivityCounts, QueueError> {
        self.call(move |c| activity::activity(c, since, width, buckets))
            .await
    }

    pub async fn dead_letters(
        &self,
        filter: DeadLetterFilter,
    ) -> Result<Vec<DeadLetter>, QueueError> {
        self.call(move |c| admin::dead_letters(c, &filter)).await
    }

    pub async fn dead_letter(&self, id: i64) -> Result<Option<DeadLetter>, QueueError> {
        self.call(move |c| admin::dead_letter(c, id)).await
    }

    pub async fn replay(
        &self,
        items: Vec<Replay>,
        max_age: Duration,
    ) -> Result<Vec<i64>, QueueError> {
        let max_age_ms = duration_ms(max_age);
        self.call(move |c| admin::replay(c, &items, now_ms(), max_age_ms))
            .await
    }

    pub async fn set_body(
        &self,
        id: i64,
        body: Vec<u8>,
        kind: BodyKind,
    ) -> Result<SetBody, QueueError> {
        self.call(move |c| admin::set_body(c, id, &body, kind))
            .await
    }

    pub async fn delete_dead_letter(&self, id: i64) -> Result<bool, QueueError> {
        self.call(move |c| admin::delete_dead_letter(c, id)).await
    }

    pub async fn webhook_by_request_id(
        &self,
        request_id: String,
    ) -> Result<Option<WebhookView>, QueueError> {
        self.call(move |c| admin::webhook_by_request_id(c, &request_id))
            .await
    }

    pub async fn purge(
        &self,
        delivered_before: i64,
        dead_before: i64,
    ) -> Result<PurgeCounts, QueueError> {
        self.call(move |c| admin::purge(c, delivered_before, dead_before))
            .await
    }

    pub async fn holds(&self) -> Result<Vec<Hold>, QueueError> {
        self.call(holds::all).await
    }

    pub async fn hold(
        &self,
        account: String,
        kind: HoldKind,
        reason: String,
        probe_at: Option<i64>,
    ) -> Result<bool, QueueError> {
        self.call(move |c| holds::hold(c, &account, kind, &reason, now_ms(), probe_at))
            .await
    }

    pub async fn lift(&self, account: String, kinds: Vec<HoldKind>) -> Result<Lifted, QueueError> {
        self.call(move |c| holds::lift(c, &account, &kinds, now_ms()))
            .await
    }

    pub async fn take_probe(
        &self,
        account: String,
        kind: HoldKind,
        until: i64,
    ) -> Result<bool, QueueError> {
        self.call(move |c| holds::take_probe(c, &account, kind, now_ms(), until))
            .await
    }

    pub async fn probe_failed(
        &self,
        account: String,
        kind: HoldKind,
        reason: String,
        next_probe_at: i64,
    ) -> Result<(), QueueError> {
        self.call(move |c| holds::probe_failed(c, &account, kind, &reason, next_probe_at))
            .await
    }

    pub async fn reschedule_probe(
        &self,
        account: String,
        kind: HoldKind,
        at: i64,
    ) -> Result<(), QueueError> {
        self.call(move |c| holds::reschedule_probe(c, &account, kind, at))
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

    /// A real write (the heartbeat row), so a queue that cannot commit is noticed, and a fault
    /// is cleared as soon as commits work again.
    pub async fn ping(&self) -> Result<(), QueueError> {
        self.call(|c| {
            c.prepare_cached("INSERT OR REPLACE INTO heartbeat (id, at) VALUES (1, ?1)")?
                .execute([now_ms()])
                .map(|_| ())
        })
        .await
    }

    pub async fn erase(&self, erasure: Erasure) -> Result<ErasureRecord, QueueError> {
        self.call(move |c| privacy::erase(c, &erasure, now_ms()))
            .await
    }

    pub async fn held_for(
        &self,
        key: String,
        limit: usize,
        scan_limit: usize,
    ) -> Result<Vec<WebhookView>, QueueError> {
        self.call(move |c| privacy::held_for(c, &key, limit, scan_limit))
            .await
    }

    pub async fn erasures(
        &self,
        limit: usize,
        before: Option<i64>,
    ) -> Result<Vec<ErasureRecord>, QueueError> {
        self.call(move |c| privacy::erasures(c, limit, before))
            .await
    }

    pub async fn audit(&self, entry: NewAudit) -> Result<i64, QueueError> {
        self.call(move |c| privacy::audit(c, &entry, now_ms()))
            .await
    }

    pub async fn audit_log(
        &self,
        limit: usize,
        before: Option<i64>,
    ) -> Result<Vec<AuditEntry>, QueueError> {
        self.call(move |c| privacy::audit_log(c, limit, before))
            .await
    }

    pub async fn drop_delivered_bodies(&self, before: i64) -> Result<u64, QueueError> {
        self.call(move |c| privacy::drop_delivered_bodies(c, before, now_ms()))
            .await
    }

    pub fn health(&self) -> &Health {
        &self.health
    }
}
