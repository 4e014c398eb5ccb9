//! PostgreSQL backend: a pooled, multi-replica queue with group commit and LISTEN/NOTIFY wake-ups.
//!
//! Enqueues go to one writer task that takes everything queued, inserts it in one transaction
//! (statements pipelined) and answers each caller after COMMIT. Every other operation is a short
//! transaction on the pool (`tx`), or one statement that is its own transaction (`single`). A
//! wake (`Queue::wake`) bumps this replica's workers at once and sends one coalesced
//! `NOTIFY freshtap_work`; a dedicated connection of every replica LISTENs and bumps the
//! counter `subscribe()` returns. With `sslmode=require` in the URL connections use TLS,
//! verified against the system's trust store plus `queue.tls_ca_file`.

mod activity;
mod admin;
mod connect;
mod delivery;
mod enqueue;
mod holds;
mod ops;
mod privacy;
mod setup;
mod tls;
mod writer;

use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{Pool, Transaction};
use tokio::sync::{Notify, mpsc, oneshot, watch};
use tokio_util::sync::DropGuard;

use super::health::Health;
use super::{
    AuditEntry, ClaimLimit, Claimed, DeadLetter, DeadLetterFilter, Enqueued, Erasure,
    ErasureRecord, Hold, HoldKind, Lifted, NewAudit, NewWebhook, PurgeCounts, QueueError, Replay,
    RowOutcome, SetBody, Stats, WebhookView,
};
use crate::body::BodyKind;
use crate::clock::{duration_ms, now_ms};

/// Longest an intake waits for its commit before answering 503: below the default
/// `server.request_timeout_secs` (10), so an unreachable database is a 503, never a 408 or a
/// hang. A row whose commit lands after that was answered 503 and is delivered anyway (at
/// least once); the sender's retry is then a duplicate.
const ENQUEUE_TIMEOUT: Duration = Duration::from_secs(5);
/// Readiness round trip; `/readyz` itself gives up after 2 s.
const PING_TIMEOUT: Duration = Duration::from_millis(1500);

#[derive(Clone)]
pub struct PostgresQueue {
    pool: Pool,
    writes: mpsc::Sender<writer::Write>,
    wake: watch::Sender<u64>,
    notify: Arc<Notify>,
    health: Health,
    /// Stops the listener and the notifier when the last clone is dropped.
    _stop: Arc<DropGuard>,
}

impl PostgresQueue {
    /// Connects a pool of `pool_size`, applies the migrations, starts the writer, the notifier
    /// and the listener, and returns once the listener is LISTENing.
    pub async fn connect(
        url: &str,
        pool_size: u32,
        tls_ca_file: Option<&std::path::Path>,
        health: Health,
        wake: watch::Sender<u64>,
    ) -> Result<Self, QueueError> {
        let parts = connect::open(url, pool_size, tls_ca_file, wake.clone()).await?;
        let writes = writer::spawn(parts.pool.clone(), health.clone());
        Ok(Self {
            pool: parts.pool,
            writes,
            wake,
            notify: parts.notify,
            health,
            _stop: Arc::new(parts.stop.drop_guard()),
        })
    }

    /// Wakes this replica's workers now and every other replica's shortly (one NOTIFY for a
    /// burst of wakes).
    pub fn wake(&self) {
        setup::bump(&self.wake);
        self.notify.notify_one();
    }

    /// One short transaction on the pool: `f` runs inside it, then it commits.
    async fn tx<R>(
        &self,
        f: impl AsyncFnOnce(&Transaction<'_>) -> Result<R, QueueError>,
    ) -> Result<R, QueueError> {
        let mut client = self.pool.get().await?;
        let t = client.transaction().await?;
        let value = f(&t).await?;
        t.commit().await?;
        Ok(value)
    }

    /// One statement on a pooled connection, outside any explicit transaction: the statement
    /// is its own transaction, so BEGIN and COMMIT cost no round trips.
    async fn single<R>(
        &self,
        f: impl AsyncFnOnce(&deadpool_postgres::Client) -> Result<R, QueueError>,
    ) -> Result<R, QueueError> {
        let client = self.pool.get().await?;
        f(&client).await
    }

    pub async fn enqueue(
        &self,
        row: NewWebhook,
        dedup_window: Duration,
    ) -> Result<Enqueued, QueueError> {
        let since = row.received_at_ms.saturating_sub(duration_ms(dedup_window));
        let (reply, answer) = oneshot::channel();
        let committed = async {
            self.writes
                .send((row, since, reply))
                .await
                .map_err(|_| QueueError::Closed)?;
            answer.await.map_err(|_| QueueError::Closed)?
        };
        tokio::time::timeout(ENQUEUE_TIMEOUT, committed)
            .await
            .map_err(|_| QueueError::Timeout(ENQUEUE_TIMEOUT))?
    }

    pub async fn enqueue_invalid(
        &self,
        row: NewWebhook,
        reason: String,
    ) -> Result<(i64, i64), QueueError> {
        self.tx(async |t| ops::enqueue_invalid(t, &row, &reason).await)
            .await
    }

    pub async fn claim(
        &self,
        account: String,
        limit: ClaimLimit,
        lease: Duration,
    ) -> Result<Vec<Claimed>, QueueError> {
        self.tx(async |t| delivery::claim(t, &account, limit, duration_ms(lease)).await)
            .await
    }

    pub async fn complete(&self, outcomes: Vec<RowOutcome>) -> Result<(), QueueError> {
        self.single(async |c| delivery::complete(c, &outcomes, now_ms()).await)
            .await
    }

    pub async fn next_due(&self, account: String) -> Result<Option<i64>, QueueError> {
        self.tx(async |t| admin::next_due(t, &account).await).await
    }

    pub async fn stats(&self) -> Result<Stats, QueueError> {
        self.tx(async |t| admin::stats(t).await).await
    }

    pub(crate) async fn activity(
        &self,
        since: i64,
        width: i64,
        buckets: usize,
    ) -> Result<super::ActivityCounts, QueueError> {
        self.tx(async |t| activity::activity(t, since, width, buckets).await)
            .await
    }

    pub async fn dead_letters(
        &self,
        filter: DeadLetterFilter,
    ) -> Result<Vec<DeadLetter>, QueueError> {
        self.tx(async |t| admin::dead_letters(t, &filter).await)
            .await
    }

    pub async fn dead_letter(&self, id: i64) -> Result<Option<DeadLetter>, QueueError> {
        self.tx(async |t| admin::dead_letter(t, id).await).await
    }

    pub async fn replay(
        &self,
        items: Vec<Replay>,
        max_age: Duration,
    ) -> Result<Vec<i64>, QueueError> {
        self.tx(async |t| admin::replay(t, &items, now_ms(), duration_ms(max_age)).await)
            .await
    }

    pub async fn set_body(
        &self,
        id: i64,
        body: Vec<u8>,
        kind: BodyKind,
    ) -> Result<SetBody, QueueError> {
        self.tx(async |t| admin::set_body(t, id, &body, kind).await)
            .await
    }

    pub async fn delete_dead_letter(&self, id: i64) -> Result<bool, QueueError> {
        self.tx(async |t| admin::delete_dead_letter(t, id).await)
            .await
    }

    pub async fn webhook_by_request_id(
        &self,
        request_id: String,
    ) -> Result<Option<WebhookView>, QueueError> {
        self.tx(async |t| admin::webhook_by_request_id(t, &request_id).await)
            .await
    }

    pub async fn purge(
        &self,
        delivered_before: i64,
        dead_before: i64,
    ) -> Result<PurgeCounts, QueueError> {
        self.tx(async |t| admin::purge(t, delivered_before, dead_before).await)
            .await
    }

    pub async fn holds(&self) -> Result<Vec<Hold>, QueueError> {
        self.tx(async |t| holds::all(t).await).await
    }

    pub async fn hold(
        &self,
        account: String,
        kind: HoldKind,
        reason: String,
        probe_at: Option<i64>,
    ) -> Result<bool, QueueError> {
        self.tx(async |t| holds::hold(t, &account, kind, &reason, now_ms(), probe_at).await)
            .await
    }

    pub async fn lift(&self, account: String, kinds: Vec<HoldKind>) -> Result<Lifted, QueueError> {
        self.tx(async |t| holds::lift(t, &account, &kinds, now_ms()).await)
            .await
    }

    pub async fn take_probe(
        &self,
        account: String,
        kind: HoldKind,
        until: i64,
    ) -> Result<bool, QueueError> {
        self.tx(async |t| holds::take_probe(t, &account, kind, now_ms(), until).await)
            .await
    }

    pub async fn probe_failed(
        &self,
        account: String,
        kind: HoldKind,
        reason: String,
        next_probe_at: i64,
    ) -> Result<(), QueueError> {
        self.tx(async |t| holds::probe_failed(t, &account, kind, &reason, next_probe_at).await)
            .await
    }

    pub async fn reschedule_probe(
        &self,
        account: String,
        kind: HoldKind,
        at: i64,
    ) -> Result<(), QueueError> {
        self.tx(async |t| holds::reschedule_probe(t, &account, kind, at).await)
            .await
    }

    pub async fn acquire_slot(
        &self,
        account: String,
        limit: usize,
        ttl: Duration,
    ) -> Result<Option<i64>, QueueError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.tx(async |t| delivery::acquire_slot(t, &account, limit, duration_ms(ttl)).await)
            .await
    }

    pub async fn release_slot(&self, slot: i64) -> Result<(), QueueError> {
        self.single(async |c| delivery::release_slot(c, slot).await)
            .await
    }

    pub async fn ping(&self) -> Result<(), QueueError> {
        let client = tokio::time::timeout(PING_TIMEOUT, self.pool.get())
            .await
            .map_err(|_| QueueError::Timeout(PING_TIMEOUT))??;
        match tokio::time::timeout(PING_TIMEOUT, client.simple_query("SELECT 1")).await {
            Ok(answer) => {
                answer?;
                // The database answers: a fault of an earlier commit (a blip) is over.
                self.health.ok();
                Ok(())
            }
            Err(_) => {
                // Stuck (a partition): keep it out of the pool.
                drop(deadpool_postgres::Object::take(client));
                Err(QueueError::Timeout(PING_TIMEOUT))
            }
        }
    }

    pub async fn erase(&self, erasure: Erasure) -> Result<ErasureRecord, QueueError> {
        self.tx(async |t| privacy::erase(t, &erasure, now_ms()).await)
            .await
    }

    pub async fn held_for(
        &self,
        key: String,
        limit: usize,
        scan_limit: usize,
    ) -> Result<Vec<WebhookView>, QueueError> {
        self.tx(async |t| privacy::held_for(t, &key, limit, scan_limit).await)
            .await
    }

    pub async fn erasures(
        &self,
        limit: usize,
        before: Option<i64>,
    ) -> Result<Vec<ErasureRecord>, QueueError> {
        self.tx(async |t| privacy::erasures(t, limit, before).await)
            .await
    }

    pub async fn audit(&self, entry: NewAudit) -> Result<i64, QueueError> {
        self.tx(async |t| privacy::audit(t, &entry, now_ms()).await)
            .await
    }

    pub async fn audit_log(
        &self,
        limit: usize,
        before: Option<i64>,
    ) -> Result<Vec<AuditEntry>, QueueError> {
        self.tx(async |t| privacy::audit_log(t, limit, before).await)
            .await
    }

    pub async fn drop_delivered_bodies(&self, before: i64) -> Result<u64, QueueError> {
        self.tx(async |t| privacy::drop_delivered_bodies(t, before, now_ms()).await)
            .await
    }

    pub fn health(&self) -> &Health {
        &self.health
    }
}
