//! Paused CleverTap accounts: why and since when, and the wake-up when one resumes.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::sync::Notify;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PauseKind {
    /// CleverTap refused the credentials or the URL; probed every `pause_probe_secs`.
    Refused,
    /// An operator paused it (`POST /admin/accounts/{name}/pause`); only `/resume` ends it.
    Manual,
}

#[derive(Debug, Clone)]
pub struct Pause {
    pub kind: PauseKind,
    pub reason: String,
    pub since_ms: i64,
    pub since: Instant,
    pub next_probe: Instant,
}

/// Every paused account of this process.
#[derive(Default)]
pub struct Pauses {
    paused: Mutex<BTreeMap<String, Pause>>,
    resumed: Notify,
}

impl Pauses {
    /// Pauses `account`; returns false when it already was (the first reason and time stay).
    pub fn pause(
        &self,
        account: &str,
        kind: PauseKind,
        reason: String,
        now_ms: i64,
        probe_every: Duration,
    ) -> bool {
        let mut paused = self.lock();
        if let Some(existing) = paused.get_mut(account) {
            if kind == PauseKind::Manual {
                existing.kind = PauseKind::Manual;
            }
            existing.next_probe = Instant::now() + probe_every;
            return false;
        }
        let now = Instant::now();
        paused.insert(
            account.to_owned(),
            Pause {
                kind,
                reason,
                since_ms: now_ms,
                since: now,
                next_probe: now + probe_every,
            },
        );
        true
    }

    /// Resumes `account`; returns how long it was paused, or None if it was not.
    pub fn resume(&self, account: &str) -> Option<Duration> {
        let removed = self.lock().remove(account);
        self.resumed.notify_waiters();
        removed.map(|p| p.since.elapsed())
    }

    pub fn get(&self, account: &str) -> Option<Pause> {
        self.lock().get(account).cloned()
    }

    pub fn all(&self) -> Vec<(String, Pause)> {
        self.lock()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// Resolves when any account is resumed.
    pub async fn wait_resumed(&self) {
        self.resumed.notified().await;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Pause>> {
        // A panic while holding this lock cannot leave the map inconsistent; keep serving.
        self.paused
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
