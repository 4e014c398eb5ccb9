//! PostgreSQL backend: a pooled, multi-replica queue with group commit and LISTEN/NOTIFY wake-ups.
//!
//! Enqueues go to one writer task that takes everything queued, inserts it in one transaction
//! (statements pipelined) and answers each caller after COMMIT. Every other operation is a short
//! transaction on the pool. A commit that makes work available sends `NOTIFY freshtap_work`;
//! a dedicated connection of every replica LISTENs and bumps the counter `subscribe()` returns.
//! With `sslmode=require` in the URL connections use TLS, verified against the system's trust
//! store plus `queue.tls_ca_file`; otherwise plain TCP (see `postgres_tls`).

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio::sync::{mpsc, oneshot, watch};
use tokio_postgres::Config;
use tokio_util::sync::{CancellationToken, DropGuard};

use super::postgres_admin as admin;
use super::postgres_ops as ops;
use super::postgres_setup::{bump, listen, migrate};
use super::{
    Claimed, DeadLetter, DeadLetterFilter, Enqueued, NewWebhook, PurgeCounts, QueueError, Replay,
    RowOutcome, SetBody, Stats, WebhookView, duration_ms, now_ms, redact_url,
};

/// Webhooks per group commit at most.
const MAX_GROUP: usize = 512;
/// Enqueues waiting for the writer at most; beyond that intake waits (and times out: 503).
const WRITE_BACKLOG: usize = 4096;
/// Longest an intake waits for its commit before answering 503: below the default
/// `server.request_timeout_secs` (10), so an unreachable database is a 503, never a 408 or a
/// hang. A row whose commit lands after that was answered 503 and is delivered anyway (at
/// least once); the sender's retry is then a duplicate.
const ENQUEUE_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest one group commit may take (connection included); a connection stuck past it (a
/// partition) is dropped instead of going back to the pool.
const GROUP_TIMEOUT: Duration = Duration::from_secs(4);
/// Readiness round trip; `/readyz` itself gives up after 2 s.
const PING_TIMEOUT: Duration = Duration::from_millis(1500);
/// Server-side guards on every session: a lock wait (another replica's stuck transaction) ends
/// in an error instead of hanging, and a session left idle inside a transaction (a replica
/// stopped or cut off mid-transaction) is ended by the server, releasing its row and advisory
/// locks for the other replicas.
const SESSION_OPTIONS: &str = "-c lock_timeout=5000 -c idle_in_transaction_session_timeout=15000";

type Reply = oneshot::Sender<Result<Enqueued, QueueError>>;

#[derive(Clone)]
pub struct PostgresQueue {
    pool: Pool,
    writes: mpsc::Sender<(NewWebhook, i64, Reply)>,
    wake: watch::Sender<u64>,
    /// Stops the listener when the last clone is dropped.
    _stop: Arc<DropGuard>,
}

impl PostgresQueue {
    /// Connects a pool of `pool_size`, applies the migrations, starts the writer and the
    /// listener, and returns once the listener is LISTENing.
    pub async fn connect(
        url: &str,
        pool_size: u32,
        tls_ca_file: Option<&std::path::Path>,
    ) -> Result<Self, QueueError> {
        let mut config = Config::from_str(url).map_err(|error| QueueError::PostgresUrl {
            url: redact_url(url),
            reason: error.to_string(),
        })?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(5));
        }
        if config.get_application_name().is_none() {
            config.application_name("freshtap");
        }
        // A dead peer is noticed by the kernel (keepalives for idle connections, the user
        // timeout for unacknowledged data) instead of after hours.
        config
            .keepalives(true)
            .keepalives_idle(Duration::from_secs(30));
        if config.get_tcp_user_timeout().is_none() {
            config.tcp_user_timeout(Duration::from_secs(30));
        }
        let options = match config.get_options() {
            Some(given) => format!("{given} {SESSION_OPTIONS}"),
            None => SESSION_OPTIONS.to_owned(),
        };
        config.options(&options);
        let tls = super::postgres_tls::connector(&mut config, tls_ca_file)?;
        let manager = Manager::from_config(
            config.clone(),
            tls.clone(),
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(usize::try_from(pool_size.max(1)).unwrap_or(1))
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(Duration::from_secs(10)))
            .create_timeout(Some(Duration::from_secs(10)))
            .build()
            .map_err(|error| QueueError::PoolBuild(error.to_string()))?;
        migrate(&pool).await?;

        let (wake, _) = watch::channel(0);
        let stop = CancellationToken::new();
        let (ready_tx, ready_rx) = oneshot::channel();
        tokio::spawn(listen(config, tls, wake.clone(), stop.clone(), ready_tx));
        ready_rx.await.map_err(|_| QueueError::Closed)??;

        let (writes, rx) = mpsc::channel(WRITE_BACKLOG);
        tokio::spawn(writer(pool.clone(), rx, wake.clone()));
        Ok(Self {
            pool,
            writes,
            wake,
            _stop: Arc::new(stop.drop_guard()),
        })
    }

    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.wake.subscribe()
    }

    fn wake(&self) {
        bump(&self.wake);
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
        let mut client = self.pool.get().await?;
        let t = client.transaction().await?;
        let ids = ops::enqueue_invalid(&t, &row, &reason).await?;
        t.commit().await?;
        Ok(ids)
    }

    pub async fn claim(
        &self,
        account: String,
        limit: usize,
        lease: Duration,
    ) -> Result<Vec<Claimed>, QueueError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut client = self.pool.get().await?;
        let t = client.transaction().await?;
        let claimed = ops::claim(&t, &account, limit, duration_ms(lease)).await?;
        t.commit().await?;
        Ok(claimed)
    }

    pub async fn complete(&self, outcomes: Vec<RowOutcome>) -> Result<(), QueueError> {
        let mut client = self.pool.get().await?;
        let t = client.transaction().await?;
        ops::complete(&t, &outcomes, now_ms()).await?;
        // Released rows are due at once and finished rows unblock later rows of their
        // identities: a worker on any replica may have work now.
        ops::notify(&t).await?;
        t.commit().await?;
        self.wake();
        Ok(())
    }

    pub async fn next_due(&self, account: String) -> Result<Option<i64>, QueueError> {
        let mut client = self.pool.get().await?;
        let t = client.transaction().await?;
        let due = admin::next_due(&t, &account).await?;
        t.commit().await?;
        Ok(due)
    }

    pub async fn stats(&self) -> Result<Stats, QueueError> {
        let mut client = self.pool.get().await?;
        let t = client.transaction().await?;
        let stats = admin::stats(&t).await?;
        t.commit().await?;
        Ok(stats)
    }

    pub async fn dead_letters(
        &self,
        filter: DeadLetterFilter,
    ) -> Result<Vec<DeadLetter>, QueueError> {
        let mut client = self.pool.get().await?;
        let t = client.transaction().await?;
        let letters = admin::dead_letters(&t, &filter).await?;
        t.commit().await?;
        Ok(letters)
    }

    pub async fn dead_letter(&self, id: i64) -> Result<Option<DeadLetter>, QueueError> {
        let mut client = self.pool.get().await?;
        let t = client.transaction().await?;
        let letter = admin::dead_letter(&t, id).await?;
        t.commit().await?;
        Ok(letter)
    }

    pub async fn replay(
        &self,
        items: Vec<Replay>,
        max_age: Duration,
    ) -> Result<Vec<i64>, QueueError> {
        let mut client = self.pool.get().await?;
        let t = client.transaction().await?;
        let replayed = admin::replay(&t, &items, now_ms(), duration_ms(max_age)).await?;
        if !replayed.is_empty() {
            ops::notify(&t).await?;
        }
        t.commit().await?;
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
        let mut client = self.pool.get().await?;
        let t = client.transaction().await?;
        let outcome = admin::set_body(&t, id, &body, &content_type).await?;
        t.commit().await?;
        Ok(outcome)
    }

    pub async fn delete_dead_letter(&self, id: i64) -> Result<bool, QueueError> {
        let mut client = self.pool.get().await?;
        let t = client.transaction().await?;
        let deleted = admin::delete_dead_letter(&t, id).await?;
        t.commit().await?;
        Ok(deleted)
    }

    pub async fn webhook_by_request_id(
        &self,
        request_id: String,
    ) -> Result<Option<WebhookView>, QueueError> {
        let mut client = self.pool.get().await?;
        let t = client.transaction().await?;
        let view = admin::webhook_by_request_id(&t, &request_id).await?;
        t.commit().await?;
        Ok(view)
    }

    pub async fn purge(
        &self,
        delivered_before: i64,
        dead_before: i64,
    ) -> Result<PurgeCounts, QueueError> {
        let mut client = self.pool.get().await?;
        let t = client.transaction().await?;
        let counts = admin::purge(&t, delivered_before, dead_before).await?;
        t.commit().await?;
        Ok(counts)
    }

    pub async fn extend_deadlines(&self, account: String, by: Duration) -> Result<u64, QueueError> {
        let mut client = self.pool.get().await?;
        let t = client.transaction().await?;
        let n = admin::extend_deadlines(&t, &account, duration_ms(by)).await?;
        t.commit().await?;
        Ok(n)
    }

    pub async fn acquire_slot(
        &self,
        account: String,
        limit: usize,
        ttl: Duration,
    ) -> Result<Option<i64>, QueueError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut client = self.pool.get().await?;
        let t = client.transaction().await?;
        let slot = ops::acquire_slot(&t, &account, limit, duration_ms(ttl)).await?;
        t.commit().await?;
        Ok(slot)
    }

    pub async fn release_slot(&self, slot: i64) -> Result<(), QueueError> {
        let mut client = self.pool.get().await?;
        let t = client.transaction().await?;
        ops::release_slot(&t, slot).await?;
        t.commit().await?;
        Ok(())
    }

    pub async fn ping(&self) -> Result<(), QueueError> {
        let client = tokio::time::timeout(PING_TIMEOUT, self.pool.get())
            .await
            .map_err(|_| QueueError::Timeout(PING_TIMEOUT))??;
        match tokio::time::timeout(PING_TIMEOUT, client.simple_query("SELECT 1")).await {
            Ok(answer) => {
                answer?;
                Ok(())
            }
            Err(_) => {
                // Stuck (a partition): keep it out of the pool.
                drop(deadpool_postgres::Object::take(client));
                Err(QueueError::Timeout(PING_TIMEOUT))
            }
        }
    }
}

/// The group-commit writer: one transaction per batch of queued enqueues.
async fn writer(
    pool: Pool,
    mut rx: mpsc::Receiver<(NewWebhook, i64, Reply)>,
    wake: watch::Sender<u64>,
) {
    let mut group = Vec::with_capacity(MAX_GROUP);
    while rx.recv_many(&mut group, MAX_GROUP).await > 0 {
        let (rows, replies): (Vec<(NewWebhook, i64)>, Vec<Reply>) = group
            .drain(..)
            .map(|(row, since, reply)| ((row, since), reply))
            .unzip();
        match insert_group(&pool, &rows).await {
            Ok(results) => {
                if results.iter().any(|r| matches!(r, Enqueued::Accepted(_))) {
                    bump(&wake);
                }
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
                    if matches!(answer, Ok(Enqueued::Accepted(_))) {
                        bump(&wake);
                    }
                    let _ = reply.send(answer);
                }
            }
            Err(error) => {
                for reply in replies {
                    let _ = reply.send(Err(QueueError::Commit(error.to_string())));
                }
            }
        }
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
        let results = ops::enqueue(&t, rows).await?;
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
