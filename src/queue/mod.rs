//! The durable queue: the contract every backend keeps (SQLite embedded; PostgreSQL shared).
//!
//! Rows move `pending → leased → delivered | dead`. A webhook renders to several records and
//! CleverTap judges each one, so a row remembers which record indexes were delivered, and dead
//! letters are per record (`record_index`), or per row for a body that could not be read.
//! Account holds (pauses, refusals, outages) live here too, so every replica sees them.
//!
//! The wake-up policy is stated once, here: an operation that can make work available (an
//! accepted enqueue, a completed delivery — released rows and unblocked identities —, a replay,
//! a lifted hold) wakes the workers of every replica; nothing else does.

mod activity;
mod health;
mod model;
mod postgres;
mod sqlite;

use std::time::Duration;

use secrecy::ExposeSecret;
use tokio::sync::watch;

use crate::body::BodyKind;
use crate::clock::duration_ms;
use crate::config::QueueSettings;

pub(crate) use activity::{ActivityCounts, Counted};
pub use health::Health;
pub use model::*;
pub use postgres::PostgresQueue;
pub use sqlite::SqliteQueue;

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("database error: {0}")]
    Database(#[from] rusqlite::Error),
    #[error("commit failed: {0}")]
    Commit(String),
    #[error("the queue is closed")]
    Closed,
    /// The database did not answer in time (unreachable, partitioned); the caller answers 503.
    #[error("the database did not answer within {0:?}")]
    Timeout(Duration),
    #[error("unsupported queue url (expected sqlite://PATH or postgres://…): {0}")]
    UnsupportedUrl(String),
    #[error(
        "the queue file {path} is damaged ({detail}). Stop freshtap, keep a copy of the file, and \
         recover what it holds with `sqlite3 {path} .recover | sqlite3 {path}.recovered`, then \
         point queue.url at the recovered file (or move the damaged one aside to start empty)"
    )]
    Corrupt { path: String, detail: String },
    #[error("a stored value cannot be read: {0}")]
    Stored(String),
    #[error("postgres error: {}", postgres_detail(.0))]
    Postgres(#[from] tokio_postgres::Error),
    #[error("postgres connection pool: {0}")]
    Pool(#[from] deadpool_postgres::PoolError),
    #[error("cannot build the postgres connection pool: {0}")]
    PoolBuild(String),
    /// `url` is redacted: the password never reaches a log line.
    #[error("invalid postgres url {url}: {reason}")]
    PostgresUrl { url: String, reason: String },
    #[error("postgres TLS: {0}")]
    Tls(String),
    #[error("cannot prepare the database directory: {0}")]
    Io(#[from] std::io::Error),
}

#[derive(Clone)]
enum Backend {
    Sqlite(SqliteQueue),
    Postgres(PostgresQueue),
}

/// The queue the app uses: one backend, the same contract for each.
#[derive(Clone)]
pub struct Queue {
    backend: Backend,
    /// Bumped by every wake; workers wait on it instead of polling.
    wake: watch::Sender<u64>,
}

macro_rules! dispatch {
    ($self:ident, $q:ident => $call:expr) => {
        match &$self.backend {
            Backend::Sqlite($q) => $call,
            Backend::Postgres($q) => $call,
        }
    };
}

// After `dispatch!`, which it uses.
mod privacy;
pub use privacy::{
    Actor, AuditEntry, DELETE_PREFIX, Erasure, ErasureRecord, NewAudit, Propagation, Removed,
    identity_key,
};

impl Queue {
    /// Opens (creating and migrating) the queue named by `queue.url`.
    pub async fn connect(settings: &QueueSettings) -> Result<Self, QueueError> {
        let url = settings.url.expose_secret();
        let (wake, _) = watch::channel(0);
        let health = Health::default();
        let backend = if let Some(path) = url.strip_prefix("sqlite://") {
            Backend::Sqlite(SqliteQueue::open(path, health).await?)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let pool = settings.pool_size;
            let ca = settings.tls_ca_file.as_deref();
            Backend::Postgres(PostgresQueue::connect(url, pool, ca, health, wake.clone()).await?)
        } else {
            return Err(QueueError::UnsupportedUrl(redact_url(url)));
        };
        Ok(Self { backend, wake })
    }

    /// `"sqlite"` or `"postgres"`, for the startup line.
    pub fn backend(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite(_) => "sqlite",
            Backend::Postgres(_) => "postgres",
        }
    }

    /// A receiver whose value changes whenever work may have become available: workers wait
    /// on it instead of polling.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.wake.subscribe()
    }

    /// Tells the workers of every replica that work may be available.
    fn wake(&self) {
        match &self.backend {
            Backend::Sqlite(_) => {
                self.wake
                    .send_modify(|generation| *generation = generation.wrapping_add(1));
            }
            Backend::Postgres(q) => q.wake(),
        }
    }

    /// Why commits fail right now (disk full, I/O error, database gone), while they do.
    pub fn fault(&self) -> Option<String> {
        dispatch!(self, q => q.health().fault())
    }

    /// Stores a webhook durably; returns only after the commit. With `row.dedup`, a
    /// `(route, body_hash)` seen within `dedup_window` answers `Duplicate` with the first
    /// row's id. Records in `row.refused` are dead letters from the start.
    pub async fn enqueue(
        &self,
        row: NewWebhook,
        dedup_window: Duration,
    ) -> Result<Enqueued, QueueError> {
        let finished = row.finished;
        let enqueued = dispatch!(self, q => q.enqueue(row, dedup_window).await)?;
        if matches!(enqueued, Enqueued::Accepted(_)) && !finished {
            self.wake();
        }
        Ok(enqueued)
    }

    /// Stores a body that could not be read as a dead row with an `invalid_body` dead letter;
    /// returns (row id, dead letter id).
    pub async fn enqueue_invalid(
        &self,
        row: NewWebhook,
        reason: String,
    ) -> Result<(i64, i64), QueueError> {
        dispatch!(self, q => q.enqueue_invalid(row, reason).await)
    }

    /// Leases due rows of `account` (pending and due, or leased with an expired lease), oldest
    /// first, up to `limit` (rows, and body bytes: a backlog of large uploads is not loaded
    /// all at once), skipping any row that shares an order key with an earlier pending or
    /// leased row; no two returned rows share a key.
    pub async fn claim(
        &self,
        account: &str,
        limit: impl Into<ClaimLimit>,
        lease: Duration,
    ) -> Result<Vec<Claimed>, QueueError> {
        let limit = limit.into();
        dispatch!(self, q => q.claim(account.to_owned(), limit, lease).await)
    }

    /// Records the outcome of a delivery for each row, in one transaction.
    pub async fn complete(&self, outcomes: Vec<RowOutcome>) -> Result<(), QueueError> {
        dispatch!(self, q => q.complete(outcomes).await)?;
        self.wake();
        Ok(())
    }

    /// Earliest `due_at` of a pending row (or lease end of a leased one) of `account`.
    pub async fn next_due(&self, account: &str) -> Result<Option<i64>, QueueError> {
        dispatch!(self, q => q.next_due(account.to_owned()).await)
    }

    pub async fn stats(&self) -> Result<Stats, QueueError> {
        dispatch!(self, q => q.stats().await)
    }

    /// `buckets` consecutive buckets of `width` from `since_ms`: the rows received in each, and
    /// the rows that finished in each, by how (delivered or dead). Every bucket is present,
    /// empty ones with zeros; rows outside the span are not counted.
    pub async fn activity(
        &self,
        since_ms: i64,
        width: Duration,
        buckets: usize,
    ) -> Result<Vec<ActivityBucket>, QueueError> {
        let width_ms = duration_ms(width).max(1);
        let counts = dispatch!(self, q => q.activity(since_ms, width_ms, buckets).await)?;
        Ok(counts.into_buckets(since_ms, width_ms, buckets))
    }

    pub async fn dead_letters(
        &self,
        filter: DeadLetterFilter,
    ) -> Result<Vec<DeadLetter>, QueueError> {
        dispatch!(self, q => q.dead_letters(filter).await)
    }

    pub async fn dead_letter(&self, id: i64) -> Result<Option<DeadLetter>, QueueError> {
        dispatch!(self, q => q.dead_letter(id).await)
    }

    /// Puts dead records back to pending (attempts and age restart); returns the dead letter
    /// ids replayed (ids that no longer exist are left out).
    pub async fn replay(
        &self,
        items: Vec<Replay>,
        max_age: Duration,
    ) -> Result<Vec<i64>, QueueError> {
        let replayed = dispatch!(self, q => q.replay(items, max_age).await)?;
        if !replayed.is_empty() {
            self.wake();
        }
        Ok(replayed)
    }

    /// Replaces the stored body of an `invalid_body` dead letter's row.
    pub async fn set_body(
        &self,
        dead_letter_id: i64,
        body: Vec<u8>,
        kind: BodyKind,
    ) -> Result<SetBody, QueueError> {
        dispatch!(self, q => q.set_body(dead_letter_id, body, kind).await)
    }

    /// Deletes a dead letter (and its row once nothing else refers to it).
    pub async fn delete_dead_letter(&self, id: i64) -> Result<bool, QueueError> {
        dispatch!(self, q => q.delete_dead_letter(id).await)
    }

    pub async fn webhook_by_request_id(
        &self,
        request_id: &str,
    ) -> Result<Option<WebhookView>, QueueError> {
        dispatch!(self, q => q.webhook_by_request_id(request_id.to_owned()).await)
    }

    /// Deletes delivered rows finished before `delivered_before_ms` and dead letters older than
    /// `dead_before_ms`.
    pub async fn purge(
        &self,
        delivered_before_ms: i64,
        dead_before_ms: i64,
    ) -> Result<PurgeCounts, QueueError> {
        dispatch!(self, q => q.purge(delivered_before_ms, dead_before_ms).await)
    }

    /// Every hold on every account.
    pub async fn holds(&self) -> Result<Vec<Hold>, QueueError> {
        dispatch!(self, q => q.holds().await)
    }

    /// Holds `account` for `kind` (first probe at `probe_at`, none for a manual hold); false
    /// when it already was held so (the first reason and time stay).
    pub async fn hold(
        &self,
        account: &str,
        kind: HoldKind,
        reason: &str,
        probe_at: Option<i64>,
    ) -> Result<bool, QueueError> {
        dispatch!(self, q => q.hold(account.to_owned(), kind, reason.to_owned(), probe_at).await)
    }

    /// Lifts the `kinds` holds of `account`. When the last hold goes, the age deadlines of its
    /// unfinished rows are pushed back by the unbroken held time, once, in the same transaction.
    pub async fn lift(&self, account: &str, kinds: &[HoldKind]) -> Result<Lifted, QueueError> {
        let lifted = dispatch!(self, q => q.lift(account.to_owned(), kinds.to_vec()).await)?;
        if lifted.resumed_after.is_some() {
            self.wake();
        }
        Ok(lifted)
    }

    /// Takes the due probe of a `kind` hold (moving its `probe_at` to `until`, so no other
    /// replica probes meanwhile): true for exactly one caller per due probe.
    pub async fn take_probe(
        &self,
        account: &str,
        kind: HoldKind,
        until: i64,
    ) -> Result<bool, QueueError> {
        dispatch!(self, q => q.take_probe(account.to_owned(), kind, until).await)
    }

    /// Records a failed probe: one more counted, the next not before `next_probe_at`.
    pub async fn probe_failed(
        &self,
        account: &str,
        kind: HoldKind,
        reason: &str,
        next_probe_at: i64,
    ) -> Result<(), QueueError> {
        dispatch!(self, q => q.probe_failed(account.to_owned(), kind, reason.to_owned(), next_probe_at).await)
    }

    /// Moves the next probe of a `kind` hold to `at` without counting one (a probe taken when
    /// there was nothing to send).
    pub async fn reschedule_probe(
        &self,
        account: &str,
        kind: HoldKind,
        at: i64,
    ) -> Result<(), QueueError> {
        dispatch!(self, q => q.reschedule_probe(account.to_owned(), kind, at).await)
    }

    /// Takes one of the account's `limit` CleverTap request slots, shared by every replica of
    /// the queue: a slot id when fewer than `limit` unexpired slots are held, else `None`. A slot
    /// lapses after `ttl` (a killed replica's slots free themselves), so `ttl` must outlast one
    /// request. SQLite (one process) always answers `Some(0)`.
    pub async fn acquire_slot(
        &self,
        account: &str,
        limit: usize,
        ttl: Duration,
    ) -> Result<Option<i64>, QueueError> {
        dispatch!(self, q => q.acquire_slot(account.to_owned(), limit, ttl).await)
    }

    /// Gives back a slot from `acquire_slot` (after the request, whatever its outcome).
    pub async fn release_slot(&self, slot: i64) -> Result<(), QueueError> {
        dispatch!(self, q => q.release_slot(slot).await)
    }

    /// A round trip (readiness); on SQLite a real commit.
    pub async fn ping(&self) -> Result<(), QueueError> {
        dispatch!(self, q => q.ping().await)
    }
}

/// The server's SQLSTATE and message when there is one (the driver's own text says only
/// "db error"); never the DETAIL, which can quote stored values.
fn postgres_detail(error: &tokio_postgres::Error) -> String {
    match error.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => error.to_string(),
    }
}

/// A database URL fit for a log line or an error: the password is replaced.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{}{user}:***{}", &url[..scheme + 3], &url[at..])
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests;
