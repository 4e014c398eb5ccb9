//! The state every handler shares: configuration, faults, request book, store, clock, network.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use crate::config::SimulatorConfig;
use crate::deletions::DeleteBook;
use crate::faults::Faults;
use crate::locks::lock;
use crate::net::Net;
use crate::stats::{Book, SimStats};
use crate::store::Store;

/// Shared state of one simulator.
pub(crate) struct Inner {
    pub(crate) config: SimulatorConfig,
    pub(crate) faults: Arc<Faults>,
    pub(crate) book: Mutex<Book>,
    pub(crate) store: Mutex<Store>,
    pub(crate) deletions: Mutex<DeleteBook>,
    pub(crate) notify: Notify,
    pub(crate) clock: AtomicU64,
    pub(crate) accepted_count: AtomicU64,
    pub(crate) epoch: Instant,
    pub(crate) net: Arc<Net>,
}

impl Inner {
    pub(crate) fn new(config: SimulatorConfig, net: Arc<Net>) -> Inner {
        Inner {
            faults: Arc::new(Faults::new(
                &config.accounts,
                Arc::clone(&net),
                Duration::from_millis(config.latency_ms),
            )),
            book: Mutex::new(Book::new(config.history_limit)),
            store: Mutex::new(Store::new(config.history_limit, config.store_profiles)),
            deletions: Mutex::new(DeleteBook::new(config.history_limit)),
            notify: Notify::new(),
            clock: AtomicU64::new(0),
            accepted_count: AtomicU64::new(0),
            epoch: Instant::now(),
            net,
            config,
        }
    }

    pub(crate) fn tick(&self) -> u64 {
        self.clock.fetch_add(1, Ordering::SeqCst)
    }

    pub(crate) fn reset(&self) {
        self.faults.reset();
        lock(&self.store).clear();
        lock(&self.book).clear();
        lock(&self.deletions).clear();
        self.accepted_count.store(0, Ordering::SeqCst);
    }

    pub(crate) fn stats(&self) -> SimStats {
        let mut stats = lock(&self.book).snapshot();
        let store = lock(&self.store);
        stats.profiles = store.profile_count();
        stats.events = store.events_total();
        drop(store);
        stats.deletes = lock(&self.deletions).stats();
        stats
    }
}
