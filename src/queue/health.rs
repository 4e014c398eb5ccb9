//! Whether the queue's last commit worked: readiness reads it, the backends write it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A fault that comes back this soon after the last ERROR (a disk flapping at full) is logged
/// at WARN: one ERROR per incident.
const QUIET: Duration = Duration::from_secs(60);

/// Shared by a queue and its clones. A failed commit sets a fault (logged once as an ERROR);
/// the next successful commit clears it (logged once). A fault back within a minute of the last
/// ERROR is a WARN. A fault for good (the queue file was
/// replaced) is never cleared: only a restart does.
#[derive(Clone, Default)]
pub struct Health(Arc<Inner>);

#[derive(Default)]
struct Inner {
    faulty: AtomicBool,
    reason: Mutex<Option<String>>,
    for_good: Mutex<Option<String>>,
    last_error: Mutex<Option<Instant>>,
}

impl Health {
    /// The reason commits fail, while they do.
    pub fn fault(&self) -> Option<String> {
        if !self.0.faulty.load(Ordering::Acquire) {
            return None;
        }
        lock(&self.0.for_good)
            .clone()
            .or_else(|| self.lock().clone())
    }

    /// The fault no commit clears, once there is one: new webhooks are refused with it.
    pub(crate) fn for_good(&self) -> Option<String> {
        lock(&self.0.for_good).clone()
    }

    /// A fault no later commit clears (logged once as an ERROR).
    pub(crate) fn fail_for_good(&self, reason: &str) {
        let mut current = lock(&self.0.for_good);
        if current.is_none() {
            tracing::error!(reason = %reason, "queue fault: webhooks are refused (503) until a restart");
            *current = Some(reason.to_owned());
        }
        self.0.faulty.store(true, Ordering::Release);
    }

    pub(crate) fn fail(&self, reason: &str) {
        let mut current = self.lock();
        // One ERROR per incident, however its reason varies or it flaps while it lasts.
        if current.is_none() {
            let mut last = self
                .0
                .last_error
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if last.is_none_or(|at| at.elapsed() >= QUIET) {
                tracing::error!(reason = %reason, "queue fault: webhooks are refused (503) until commits work again");
                *last = Some(Instant::now());
            } else {
                tracing::warn!(reason = %reason, "queue fault again: webhooks are refused (503)");
            }
        }
        *current = Some(reason.to_owned());
        self.0.faulty.store(true, Ordering::Release);
    }

    pub(crate) fn ok(&self) {
        if !self.0.faulty.load(Ordering::Acquire) {
            return;
        }
        let mut current = self.lock();
        if let Some(reason) = current.take() {
            tracing::info!(was = %reason, "queue commits work again");
        }
        let for_good = lock(&self.0.for_good).is_some();
        self.0.faulty.store(for_good, Ordering::Release);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<String>> {
        lock(&self.0.reason)
    }
}

fn lock(reason: &Mutex<Option<String>>) -> std::sync::MutexGuard<'_, Option<String>> {
    reason
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::Health;

    #[test]
    fn a_good_commit_clears_a_fault_but_not_one_for_good() {
        let health = Health::default();
        health.fail("queue commits fail: database or disk is full");
        assert!(health.fault().is_some_and(|r| r.contains("full")));
        health.ok();
        assert_eq!(health.fault(), None);
        health.fail_for_good("the queue file q.db was replaced");
        health.fail("queue commits fail: disk I/O error");
        health.ok();
        assert_eq!(
            health.fault().as_deref(),
            Some("the queue file q.db was replaced")
        );
        assert!(health.for_good().is_some());
    }
}
