//! Whether the queue's last commit worked: readiness reads it, the backends write it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// Shared by a queue and its clones. A failed commit sets a fault (logged once as an ERROR);
/// the next successful commit clears it (logged once).
#[derive(Clone, Default)]
pub struct Health(Arc<Inner>);

#[derive(Default)]
struct Inner {
    faulty: AtomicBool,
    reason: Mutex<Option<String>>,
}

impl Health {
    /// The reason commits fail, while they do.
    pub fn fault(&self) -> Option<String> {
        if !self.0.faulty.load(Ordering::Acquire) {
            return None;
        }
        self.lock().clone()
    }

    pub(crate) fn fail(&self, reason: &str) {
        let mut current = self.lock();
        if current.as_deref() != Some(reason) {
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
            tracing::info!(was = %reason, "queue commits work again; accepting webhooks");
        }
        self.0.faulty.store(false, Ordering::Release);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<String>> {
        self.0
            .reason
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
