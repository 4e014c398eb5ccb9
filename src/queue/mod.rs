//! The durable queue: the contract every backend keeps (SQLite embedded; PostgreSQL shared).
//!
//! Rows move `pending → leased → delivered | dead`. A webhook renders to several records and
//! CleverTap judges each one, so a row remembers which record indexes were delivered, and dead
//! letters are per record (`record_index`), or per row for a body that could not be read.

mod postgres;
mod postgres_admin;
mod postgres_ops;
mod postgres_setup;
mod postgres_tls;
mod sqlite;
mod sqlite_ops;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use secrecy::ExposeSecret;
use tokio::sync::watch;

use crate::config::QueueSettings;

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
    #[error("postgres error: {0}")]
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

/// A webhook to store, as intake saw it.
#[derive(Debug, Clone)]
pub struct NewWebhook {
    pub route: String,
    pub account: String,
    pub content_type: String,
    pub body: Vec<u8>,
    pub body_hash: [u8; 32],
    pub request_id: String,
    pub received_at_ms: i64,
    /// When the row goes dead for age (`max_age_hours` after receipt, pushed back by pauses).
    pub deadline_ms: i64,
    /// Lowercased identities of its records (per-identity order), or the body hash.
    pub order_keys: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enqueued {
    Accepted(i64),
    Duplicate(i64),
}

/// A row handed to a worker under lease.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub id: i64,
    pub route: String,
    pub account: String,
    pub content_type: String,
    pub body: Vec<u8>,
    pub request_id: String,
    pub received_at_ms: i64,
    pub attempts: u32,
    pub deadline_ms: i64,
    /// Record indexes already delivered or dead: never sent again by this row.
    pub done: Vec<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDeadLetter {
    pub record_index: Option<u32>,
    pub code: String,
    pub reason: String,
}

/// What happens to a claimed row after a delivery attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// Every record is delivered or dead.
    Finished,
    /// Some records are still to be sent, not before `due_at_ms`.
    Retry {
        due_at_ms: i64,
        count_attempt: bool,
        error: String,
    },
    /// Back to pending at once, no attempt counted (paused account, batch full, shutdown).
    Release,
}

#[derive(Debug, Clone)]
pub struct RowOutcome {
    pub id: i64,
    pub delivered: Vec<u32>,
    pub dead: Vec<NewDeadLetter>,
    pub next: Next,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Stats {
    pub pending: u64,
    pub leased: u64,
    pub delivered: u64,
    pub dead: u64,
    #[serde(skip)]
    pub oldest_pending_ms: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct DeadLetter {
    pub id: i64,
    pub row_id: i64,
    pub record_index: Option<u32>,
    pub route: String,
    pub account: String,
    pub code: String,
    pub reason: String,
    pub attempts: u32,
    pub request_id: String,
    pub received_at_ms: i64,
    pub dead_at_ms: i64,
    pub content_type: String,
    pub body: Vec<u8>,
}

#[derive(Debug, Clone, Default)]
pub struct DeadLetterFilter {
    pub route: Option<String>,
    pub code: Option<String>,
    pub limit: usize,
    pub after: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct WebhookView {
    pub id: i64,
    pub route: String,
    pub account: String,
    pub state: String,
    pub attempts: u32,
    pub request_id: String,
    pub received_at_ms: i64,
    pub delivered: Vec<u32>,
    pub last_error: Option<String>,
    pub dead_letters: Vec<DeadLetter>,
}

/// A dead letter to put back to pending; `order_keys` replaces the row's keys (a fixed
/// `invalid_body` row gets the identities of its corrected body).
#[derive(Debug, Clone)]
pub struct Replay {
    pub dead_letter_id: i64,
    pub order_keys: Option<Vec<String>>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PurgeCounts {
    pub delivered: u64,
    pub dead: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetBody {
    Replaced,
    NotFound,
    NotInvalidBody,
}

/// The queue the app uses: one variant per backend, the same contract for each.
#[derive(Clone)]
pub enum Queue {
    Sqlite(SqliteQueue),
    Postgres(PostgresQueue),
}

macro_rules! dispatch {
    ($self:ident, $q:ident => $call:expr) => {
        match $self {
            Queue::Sqlite($q) => $call,
            Queue::Postgres($q) => $call,
        }
    };
}

impl Queue {
    /// Opens (creating and migrating) the queue named by `queue.url`.
    pub async fn connect(settings: &QueueSettings) -> Result<Self, QueueError> {
        let url = settings.url.expose_secret();
        if let Some(path) = url.strip_prefix("sqlite://") {
            return Ok(Self::Sqlite(SqliteQueue::open(path).await?));
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Self::Postgres(
                PostgresQueue::connect(url, settings.pool_size, settings.tls_ca_file.as_deref())
                    .await?,
            ));
        }
        Err(QueueError::UnsupportedUrl(redact_url(url)))
    }

    /// A receiver whose value changes whenever work may have become available (a commit, a
    /// release, a replay): workers wait on it instead of polling.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        dispatch!(self, q => q.subscribe())
    }

    /// Stores a webhook durably; returns only after the commit. A `(route, body_hash)` seen
    /// within `dedup_window` answers `Duplicate` with the first row's id.
    pub async fn enqueue(
        &self,
        row: NewWebhook,
        dedup_window: Duration,
    ) -> Result<Enqueued, QueueError> {
        dispatch!(self, q => q.enqueue(row, dedup_window).await)
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

    /// Leases up to `limit` due rows of `account` (pending and due, or leased with an expired
    /// lease), oldest first, skipping any row that shares an order key with an earlier pending
    /// or leased row; no two returned rows share a key.
    pub async fn claim(
        &self,
        account: &str,
        limit: usize,
        lease: Duration,
    ) -> Result<Vec<Claimed>, QueueError> {
        dispatch!(self, q => q.claim(account.to_owned(), limit, lease).await)
    }

    /// Records the outcome of a delivery for each row, in one transaction.
    pub async fn complete(&self, outcomes: Vec<RowOutcome>) -> Result<(), QueueError> {
        dispatch!(self, q => q.complete(outcomes).await)
    }

    /// Earliest `due_at` of a pending row of `account`, to sleep until then.
    pub async fn next_due(&self, account: &str) -> Result<Option<i64>, QueueError> {
        dispatch!(self, q => q.next_due(account.to_owned()).await)
    }

    pub async fn stats(&self) -> Result<Stats, QueueError> {
        dispatch!(self, q => q.stats().await)
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
        dispatch!(self, q => q.replay(items, max_age).await)
    }

    /// Replaces the stored body of an `invalid_body` dead letter's row.
    pub async fn set_body(
        &self,
        dead_letter_id: i64,
        body: Vec<u8>,
        content_type: String,
    ) -> Result<SetBody, QueueError> {
        dispatch!(self, q => q.set_body(dead_letter_id, body, content_type).await)
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

    /// Pushes back the age deadline of an account's unfinished rows (the age clock stops
    /// while the account is paused).
    pub async fn extend_deadlines(&self, account: &str, by: Duration) -> Result<u64, QueueError> {
        dispatch!(self, q => q.extend_deadlines(account.to_owned(), by).await)
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

    /// Cheap round trip (readiness).
    pub async fn ping(&self) -> Result<(), QueueError> {
        dispatch!(self, q => q.ping().await)
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

pub fn duration_ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
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
mod tests {
    use super::*;

    #[test]
    fn urls_lose_their_password() {
        assert_eq!(
            redact_url("postgres://app:s3cret@db:5432/x"),
            "postgres://app:***@db:5432/x"
        );
        assert_eq!(
            redact_url("sqlite://data/freshtap.db"),
            "sqlite://data/freshtap.db"
        );
    }
}
