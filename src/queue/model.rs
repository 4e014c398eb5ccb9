//! The queue's vocabulary: what is stored, claimed, recorded and listed, as typed values.

use std::time::Duration;

use crate::body::BodyKind;

/// Where a row is in its life: `pending → leased → delivered | dead`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RowState {
    Pending,
    Leased,
    Delivered,
    Dead,
}

impl RowState {
    pub const ALL: [Self; 4] = [Self::Pending, Self::Leased, Self::Delivered, Self::Dead];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Leased => "leased",
            Self::Delivered => "delivered",
            Self::Dead => "dead",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

/// Why a record (or a whole row) is dead. Stored and shown as text: CleverTap's number
/// (`"516"`), an HTTP status for a lone record refused with 400, or one of the names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeadCode {
    /// The body could not be read (the whole row; fix and replay it).
    InvalidBody,
    /// The template could not render the record, or its route is gone.
    RenderError,
    /// The rendered record breaks a rule CleverTap enforces (no identity, bad `ts`, …).
    InvalidRecord,
    MaxAttempts,
    MaxAge,
    /// CleverTap refused the record: its code (or the HTTP status of a lone refused record).
    Refused(u16),
}

impl DeadCode {
    /// The stored text.
    pub fn as_text(self) -> std::borrow::Cow<'static, str> {
        match self {
            Self::InvalidBody => "invalid_body".into(),
            Self::RenderError => "render_error".into(),
            Self::InvalidRecord => "invalid_record".into(),
            Self::MaxAttempts => "max_attempts".into(),
            Self::MaxAge => "max_age".into(),
            Self::Refused(code) => code.to_string().into(),
        }
    }

    /// The code of a stored text, or of an operator's filter; `None` for anything else.
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "invalid_body" => Self::InvalidBody,
            "render_error" => Self::RenderError,
            "invalid_record" => Self::InvalidRecord,
            "max_attempts" => Self::MaxAttempts,
            "max_age" => Self::MaxAge,
            number => Self::Refused(number.parse().ok()?),
        })
    }
}

impl std::fmt::Display for DeadCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.as_text())
    }
}

impl serde::Serialize for DeadCode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.as_text())
    }
}

/// A webhook to store, as intake saw it.
#[derive(Debug, Clone)]
pub struct NewWebhook {
    pub route: String,
    pub account: String,
    pub kind: BodyKind,
    pub body: Vec<u8>,
    pub body_hash: [u8; 32],
    /// Whether an identical body within the window is a duplicate (false for bodies whose
    /// second sending would change CleverTap, such as events without `ts` or `$incr`).
    pub dedup: bool,
    pub request_id: String,
    pub received_at_ms: i64,
    /// When the row goes dead for age (`max_age_hours` after receipt, pushed back by holds).
    pub deadline_ms: i64,
    /// Lowercased identities of its records (per-identity order), or the body hash.
    pub order_keys: Vec<String>,
    /// Records refused at intake (the drop-in's synchronous validation): dead from the start,
    /// never sent.
    pub refused: Vec<NewDeadLetter>,
    /// Nothing is left to send (every record refused): the row is stored finished, dead.
    pub finished: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enqueued {
    Accepted(i64),
    Duplicate(i64),
}

/// How much one claim may take: rows, and the bytes of their stored bodies (the rows are
/// taken in id order while both hold; the first row always, however large).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClaimLimit {
    pub rows: usize,
    pub bytes: usize,
}

impl From<usize> for ClaimLimit {
    /// Up to `rows` rows, whatever their size.
    fn from(rows: usize) -> Self {
        Self {
            rows,
            bytes: usize::MAX,
        }
    }
}

/// A row handed to a worker under lease.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub id: i64,
    pub route: String,
    pub account: String,
    pub kind: BodyKind,
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
    pub code: DeadCode,
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
    /// Back to pending at once, no attempt counted (held account, batch full, shutdown).
    Release,
}

/// The outcome of one claimed row, recorded by `Queue::complete`.
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

impl Stats {
    pub fn count(&self, state: RowState) -> u64 {
        match state {
            RowState::Pending => self.pending,
            RowState::Leased => self.leased,
            RowState::Delivered => self.delivered,
            RowState::Dead => self.dead,
        }
    }

    pub(crate) fn set(&mut self, state: RowState, count: u64) {
        match state {
            RowState::Pending => self.pending = count,
            RowState::Leased => self.leased = count,
            RowState::Delivered => self.delivered = count,
            RowState::Dead => self.dead = count,
        }
    }
}

/// Rows received, and rows finished (delivered or dead), in one time bucket: the console's
/// intake and delivery over the last hour. A row counts where its latest finish falls (a
/// replayed row that finishes again moves).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ActivityBucket {
    /// Start of the bucket, ms since the epoch.
    pub start_ms: i64,
    pub received: u64,
    pub delivered: u64,
    pub dead: u64,
}

#[derive(Debug, Clone)]
pub struct DeadLetter {
    pub id: i64,
    pub row_id: i64,
    pub record_index: Option<u32>,
    pub route: String,
    pub account: String,
    pub code: DeadCode,
    pub reason: String,
    pub attempts: u32,
    pub request_id: String,
    pub received_at_ms: i64,
    pub dead_at_ms: i64,
    pub kind: BodyKind,
    pub body: Vec<u8>,
}

#[derive(Debug, Clone, Default)]
pub struct DeadLetterFilter {
    pub route: Option<String>,
    pub code: Option<DeadCode>,
    pub limit: usize,
    pub after: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct WebhookView {
    pub id: i64,
    pub route: String,
    pub account: String,
    pub state: RowState,
    pub attempts: u32,
    pub request_id: String,
    pub received_at_ms: i64,
    pub delivered: Vec<u32>,
    pub last_error: Option<String>,
    pub finished_at_ms: Option<i64>,
    /// When body retention emptied its body (delivered rows only).
    pub body_dropped_at_ms: Option<i64>,
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

/// Why delivery to an account is held. Several may hold one account at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HoldKind {
    /// An operator paused it; only a resume ends it.
    Manual,
    /// CleverTap refused the credentials or the configuration (401/403/404/405/415, or every
    /// record alone refused); probed every `pause_probe_secs`.
    Refused,
    /// Every request failed the same way (connection refused, timeouts, 5xx): probed one at a
    /// time with backoff.
    Unreachable,
}

impl HoldKind {
    pub const ALL: [Self; 3] = [Self::Manual, Self::Refused, Self::Unreachable];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Manual => "manual",
            Self::Refused => "refused",
            Self::Unreachable => "unreachable",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == text)
    }
}

/// One hold on an account, as stored (shared by every replica).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hold {
    pub account: String,
    pub kind: HoldKind,
    pub reason: String,
    pub since_ms: i64,
    /// When the next probe may go (never for a manual hold).
    pub probe_at_ms: Option<i64>,
    /// Probes sent and failed since the hold began.
    pub probes: u32,
}

/// What lifting holds did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Lifted {
    /// The kinds that were held and are gone now.
    pub kinds: Vec<HoldKind>,
    /// When no hold is left: how long the account was held without a break. The age deadlines
    /// of its unfinished rows were pushed back by as much, in the same transaction.
    pub resumed_after: Option<Duration>,
}
