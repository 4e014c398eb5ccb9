//! Whether the queue's last commit worked: readiness reads it, the backends write it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// Shared by a queue and its clones. A failed commit sets a fault (logged once as an ERROR);
/// the next successful commit clears it (logged once). A fault for good (the queue file was
/// replaced) is never cleared: only a restart does.
#[derive(Clone, Default)]
pub struct Health(Arc<Inner>);

#[derive(Default)]
struct Inner {
    faulty: AtomicBool,
    reason: Mutex<Option<String>>,
    for_good: Mutex<Option<String>>,
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
        // One ERROR per fault, however its reason varies while it lasts.
        if current.is_none() {
            tracing::error!(reason = %reason, "queue fault: webhooks are refused (503) until commits work again");
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
