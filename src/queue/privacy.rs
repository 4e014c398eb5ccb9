//! The queue's privacy operations: erase one person's rows (recording the erasure), list what
//! is held for one person, the audit log of admin actions, and dropping old delivered bodies.
//!
//! A person is matched on the rows' order keys (their records' lowercased identities) and, for
//! rows whose identity was never extracted (unreadable bodies, bodies keyed by their hash), by
//! reading at most `scan_limit` of those bodies, newest first. The identity itself is never
//! stored: an erasure keeps only the caller's keyed hash of it.

use crate::body::BodyKind;

use super::{Backend, NewWebhook, Queue, QueueError, RowState, WebhookView};

/// Who did an admin action: the credential's name (never its value), the client address and
/// the request id.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Actor {
    pub credential: String,
    pub client: String,
    pub request_id: String,
}

/// An erasure to run.
#[derive(Debug, Clone)]
pub struct Erasure {
    /// The identity as given; matched lowercased and trimmed, like the order keys.
    pub identity: String,
    /// Keyed hash of the identity: what the record keeps.
    pub identity_hash: String,
    pub keep_pending: bool,
    pub propagate: bool,
    /// The CleverTap profile deletions to queue once the rows are gone (`propagate`): rows of
    /// the accounts' `_delete:<account>` routes, stored in the same transaction.
    pub deletions: Vec<NewWebhook>,
    /// Bodies without an extracted identity read at most.
    pub scan_limit: usize,
    pub actor: Actor,
}

/// A profile deletion an erasure queued, and where it is now: its row's state, or `None` once
/// retention has removed the finished row.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Propagation {
    pub account: String,
    pub row_id: i64,
    pub state: Option<RowState>,
}

impl Propagation {
    /// The stored list (`account:row_id,…`), states unknown until read.
    pub(crate) fn parse_list(text: &str) -> Vec<Self> {
        text.split(',')
            .filter_map(|item| {
                let (account, id) = item.rsplit_once(':')?;
                Some(Self {
                    account: account.to_owned(),
                    row_id: id.parse().ok()?,
                    state: None,
                })
            })
            .collect()
    }

    pub(crate) fn list_text(items: &[Self]) -> String {
        items
            .iter()
            .map(|p| format!("{}:{}", p.account, p.row_id))
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// Stored route name prefix of the profile deletions erasures queue (`_delete:<account>`):
/// an erasure never removes those rows, and retention drops their body once delivered.
pub const DELETE_PREFIX: &str = "_delete:";

/// What an erasure removed: rows by the state they were in, their dead letters, and the
/// bodies read by the scan (`scan_truncated` when more were left unread).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Removed {
    pub pending: u64,
    pub leased: u64,
    pub delivered: u64,
    pub dead: u64,
    pub dead_letters: u64,
    pub scanned: u64,
    pub scan_truncated: bool,
}

impl Removed {
    pub(crate) fn count(&mut self, state: RowState) {
        match state {
            RowState::Pending => self.pending += 1,
            RowState::Leased => self.leased += 1,
            RowState::Delivered => self.delivered += 1,
            RowState::Dead => self.dead += 1,
        }
    }

    pub fn rows(&self) -> u64 {
        self.pending + self.leased + self.delivered + self.dead
    }
}

/// A recorded erasure, as `GET /admin/erasures` lists it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ErasureRecord {
    pub id: i64,
    pub at_ms: i64,
    pub actor: Actor,
    pub identity_hash: String,
    pub keep_pending: bool,
    pub propagate: bool,
    pub removed: Removed,
    /// The profile deletions it queued in CleverTap (`propagate`), one per account.
    pub deletions: Vec<Propagation>,
}

/// An admin action to record.
#[derive(Debug, Clone)]
pub struct NewAudit {
    pub actor: Actor,
    /// `replay`, `delete`, `set_body`, `pause`, `resume`, `erase`.
    pub action: String,
    /// What it acted on: a dead letter id, an account, an erasure id.
    pub target: String,
    /// The outcome in a few words; never a body or an identity.
    pub detail: String,
}

/// A recorded admin action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    pub id: i64,
    pub at_ms: i64,
    pub actor: Actor,
    pub action: String,
    pub target: String,
    pub detail: String,
}

/// The rows of one person an operation found: by order key and by the bounded scan.
#[derive(Debug, Default)]
pub(crate) struct Matched {
    /// Row ids and states, newest first once `sorted`.
    pub rows: Vec<(i64, RowState)>,
    pub scanned: u64,
    pub truncated: bool,
}

impl Matched {
    /// Newest first, each row once (a row can match by key and by body).
    pub(crate) fn sorted(mut self) -> Self {
        self.rows
            .sort_unstable_by_key(|row| std::cmp::Reverse(row.0));
        self.rows.dedup_by_key(|row| row.0);
        self
    }
}

/// A stored count read back (counts are stored as signed integers).
pub(crate) fn count(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

/// A count as stored.
pub(crate) fn stored(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// The identity as order keys hold it.
pub fn identity_key(identity: &str) -> String {
    identity.trim().to_lowercase()
}

/// Whether a body whose identity was not extracted mentions `key` (lowercased): in its raw
/// text, or once a form body is decoded (`a%40x.com` is `a@x.com`).
pub(crate) fn body_mentions(body: &[u8], kind: BodyKind, key: &str) -> bool {
    if key.is_empty() {
        return false;
    }
    if String::from_utf8_lossy(body).to_lowercase().contains(key) {
        return true;
    }
    kind == BodyKind::Form
        && form_urlencoded::parse(body)
            .any(|(k, v)| k.to_lowercase().contains(key) || v.to_lowercase().contains(key))
}

impl Queue {
    /// Removes every row of one person (with its dead letters; pending and leased rows only
    /// without `keep_pending`) and records the erasure, in one transaction.
    pub async fn erase(&self, erasure: Erasure) -> Result<ErasureRecord, QueueError> {
        let queued = !erasure.deletions.is_empty();
        let record = dispatch!(self, q => q.erase(erasure).await)?;
        if queued {
            self.wake();
        }
        Ok(record)
    }

    /// What is held for one person: rows (newest first, at most `limit`) with their dead letters.
    pub async fn held_for(
        &self,
        identity: &str,
        limit: usize,
        scan_limit: usize,
    ) -> Result<Vec<WebhookView>, QueueError> {
        let key = identity_key(identity);
        dispatch!(self, q => q.held_for(key, limit, scan_limit).await)
    }

    /// Recorded erasures, newest first, older than id `before` when given.
    pub async fn erasures(
        &self,
        limit: usize,
        before: Option<i64>,
    ) -> Result<Vec<ErasureRecord>, QueueError> {
        dispatch!(self, q => q.erasures(limit, before).await)
    }

    /// Records an admin action.
    pub async fn audit(&self, entry: NewAudit) -> Result<i64, QueueError> {
        dispatch!(self, q => q.audit(entry).await)
    }

    /// Recorded admin actions, newest first, older than id `before` when given.
    pub async fn audit_log(
        &self,
        limit: usize,
        before: Option<i64>,
    ) -> Result<Vec<AuditEntry>, QueueError> {
        dispatch!(self, q => q.audit_log(limit, before).await)
    }

    /// Empties the body of delivered rows finished before `before_ms` (rows with a dead
    /// letter keep theirs), and of every delivered erasure deletion at once (its body and order
    /// keys are the identity in clear); their metadata stays. Returns how many bodies were
    /// dropped.
    pub async fn drop_delivered_bodies(&self, before_ms: i64) -> Result<u64, QueueError> {
        dispatch!(self, q => q.drop_delivered_bodies(before_ms).await)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_mention_an_identity_raw_or_form_decoded() {
        assert!(body_mentions(
            br#"{"Email":"Ann@X.com"}"#,
            BodyKind::Json,
            "ann@x.com"
        ));
        assert!(body_mentions(
            b"email=ann%40x.com",
            BodyKind::Form,
            "ann@x.com"
        ));
        assert!(!body_mentions(
            b"email=bob%40x.com",
            BodyKind::Form,
            "ann@x.com"
        ));
        assert!(!body_mentions(b"{}", BodyKind::Json, ""));
    }
}
