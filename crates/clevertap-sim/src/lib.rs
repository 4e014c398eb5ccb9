//! CleverTap simulator: an in-process `/1/upload` server with validation, a store, stats and fault injection.
//!
//! Used as "CleverTap" by freshtap's integration tests, its `demo` command, its benchmark and the
//! `simulate-clevertap` command. Behaviour follows `clevertap-upload-api.md` §9.

mod faults;
mod json;
mod server;
mod sim_api;
mod stats;
mod store;
mod upload;
pub mod validate;

#[cfg(test)]
mod validate_tests;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use faults::{FailNext, Faults, FaultsRequest, FaultsSnapshot};
pub use json::{mask_identity, mask_secret};
pub use stats::{AccountStats, ReceivedRequest, RequestOutcome, SimStats};

use server::Net;
use stats::Book;
use store::Store;

/// One simulated CleverTap account: id and accepted passcodes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimAccount {
    pub id: String,
    pub passcodes: Vec<String>,
}

impl SimAccount {
    pub fn new(id: impl Into<String>, passcode: impl Into<String>) -> Self {
        SimAccount {
            id: id.into(),
            passcodes: vec![passcode.into()],
        }
    }
}

/// Simulator settings; `Default` gives one account `SIM-ACC-001` / `sim-passcode`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct SimulatorConfig {
    pub accounts: Vec<SimAccount>,
    /// Per account; beyond → 429 `Too many concurrent requests`.
    pub max_in_flight: usize,
    /// When set, 429 answers carry `Retry-After`.
    pub retry_after_secs: Option<u64>,
    /// Records per request; beyond → 400 `Malformed request`.
    pub max_records: usize,
    /// Check `objectId` against CleverTap's custom-id charset (→ 526).
    pub enforce_custom_id_charset: bool,
    /// Event names answered 513.
    pub restricted_events: Vec<String>,
    /// Answer JSON with CleverTap's space padding.
    pub space_padded: bool,
    /// `tracing::info!` each stored record, identity masked.
    pub log_records: bool,
    /// Event properties allowed; beyond → 522.
    pub max_event_properties: usize,
    /// Body size cap; beyond → 413.
    pub max_body_bytes: usize,
    /// How many requests, records and events are kept for inspection (oldest dropped); counters
    /// are never bounded. Lower it for long benchmarks.
    pub history_limit: usize,
    /// Keep merged profiles (off for long benchmarks with many identities).
    pub store_profiles: bool,
}

impl Default for SimulatorConfig {
    fn default() -> Self {
        SimulatorConfig {
            accounts: vec![SimAccount::new("SIM-ACC-001", "sim-passcode")],
            max_in_flight: 15,
            retry_after_secs: None,
            max_records: 1000,
            enforce_custom_id_charset: false,
            restricted_events: validate::DEFAULT_RESTRICTED_EVENTS
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
            space_padded: false,
            log_records: false,
            max_event_properties: 256,
            max_body_bytes: 16 * 1024 * 1024,
            history_limit: usize::MAX,
            store_profiles: true,
        }
    }
}

impl SimulatorConfig {
    /// For long runs (benchmark, demo): keeps only the last 1000 requests/records/events and no
    /// profiles, so memory stays flat; counters stay exact.
    pub fn lean(self) -> Self {
        SimulatorConfig {
            history_limit: 1000,
            store_profiles: false,
            ..self
        }
    }
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Shared state of one simulator.
pub(crate) struct Inner {
    config: SimulatorConfig,
    faults: Arc<Faults>,
    book: Mutex<Book>,
    store: Mutex<Store>,
    notify: Notify,
    clock: AtomicU64,
    accepted_count: AtomicU64,
    epoch: Instant,
    net: Arc<Net>,
}

impl Inner {
    fn tick(&self) -> u64 {
        self.clock.fetch_add(1, Ordering::SeqCst)
    }

    fn reset(&self) {
        self.faults.reset();
        lock(&self.store).clear();
        lock(&self.book).clear();
        self.accepted_count.store(0, Ordering::SeqCst);
    }

    fn stats(&self) -> SimStats {
        let mut stats = lock(&self.book).snapshot();
        let store = lock(&self.store);
        stats.profiles = store.profile_count();
        stats.events = store.events_total();
        stats
    }
}

/// A running simulator; cheap to clone (all clones control the same server).
#[derive(Clone)]
pub struct Simulator {
    inner: Arc<Inner>,
    shutdown: CancellationToken,
    task: Arc<Mutex<Option<JoinHandle<()>>>>,
}

impl Simulator {
    /// Binds `bind` (port 0 picks one) and serves in a spawned task.
    pub async fn start(bind: SocketAddr, config: SimulatorConfig) -> std::io::Result<Simulator> {
        let net = Net::bind(bind).await?;
        let inner = Arc::new(Inner {
            faults: Arc::new(Faults::new(&config.accounts, Arc::clone(&net))),
            book: Mutex::new(Book::new(config.history_limit)),
            store: Mutex::new(Store::new(config.history_limit, config.store_profiles)),
            notify: Notify::new(),
            clock: AtomicU64::new(0),
            accepted_count: AtomicU64::new(0),
            epoch: Instant::now(),
            net: Arc::clone(&net),
            config,
        });
        let shutdown = CancellationToken::new();
        let router = server::router(Arc::clone(&inner));
        let task = tokio::spawn(server::accept_loop(net, router, shutdown.clone()));
        Ok(Simulator {
            inner,
            shutdown,
            task: Arc::new(Mutex::new(Some(task))),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.inner.net.addr()
    }

    /// `http://127.0.0.1:PORT` (the loopback address when bound to an unspecified one).
    pub fn url(&self) -> String {
        let addr = self.addr();
        let ip = match addr.ip() {
            ip if ip.is_unspecified() && ip.is_ipv4() => "127.0.0.1".to_owned(),
            ip if ip.is_unspecified() => "[::1]".to_owned(),
            std::net::IpAddr::V6(ip) => format!("[{ip}]"),
            ip => ip.to_string(),
        };
        format!("http://{ip}:{}", addr.port())
    }

    pub fn config(&self) -> &SimulatorConfig {
        &self.inner.config
    }

    pub fn faults(&self) -> &Faults {
        &self.inner.faults
    }

    pub fn stats(&self) -> SimStats {
        self.inner.stats()
    }

    /// Every logged `/1/upload` request in arrival order (bounded by `history_limit`).
    pub fn requests(&self) -> Vec<ReceivedRequest> {
        lock(&self.inner.book).requests(self.inner.epoch)
    }

    /// Every stored record, in order of application.
    pub fn accepted_records(&self) -> Vec<Value> {
        lock(&self.inner.store).accepted()
    }

    /// The merged `profileData` of a profile (keys as sent, operations applied).
    pub fn profile(&self, identity: &str) -> Option<Value> {
        lock(&self.inner.store).profile(identity)
    }

    /// Stored events in order; each carries `identity` (added from objectId etc. when absent).
    pub fn events(&self) -> Vec<Value> {
        lock(&self.inner.store).events()
    }

    /// Clears store, counters, request log and faults.
    pub fn reset(&self) {
        self.inner.reset();
    }

    /// Resolves once at least `n` records were accepted (returns all kept), else an error after
    /// `timeout` saying how many arrived.
    pub async fn wait_for_accepted(
        &self,
        n: usize,
        timeout: Duration,
    ) -> Result<Vec<Value>, String> {
        let count = || {
            usize::try_from(self.inner.accepted_count.load(Ordering::SeqCst)).unwrap_or(usize::MAX)
        };
        self.wait_until(timeout, || count() >= n)
            .await
            .map_err(|()| {
                format!(
                    "simulator: {} of {n} expected records accepted within {timeout:?}",
                    count()
                )
            })?;
        Ok(self.accepted_records())
    }

    /// Resolves once at least `n` requests were answered (any status), else an error after `timeout`.
    pub async fn wait_for_requests(
        &self,
        n: usize,
        timeout: Duration,
    ) -> Result<Vec<ReceivedRequest>, String> {
        let count = || usize::try_from(lock(&self.inner.book).stats.answered).unwrap_or(usize::MAX);
        self.wait_until(timeout, || count() >= n)
            .await
            .map_err(|()| {
                format!(
                    "simulator: {} of {n} expected requests answered within {timeout:?}",
                    count()
                )
            })?;
        Ok(self.requests())
    }

    async fn wait_until(&self, timeout: Duration, done: impl Fn() -> bool) -> Result<(), ()> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.inner.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if done() {
                return Ok(());
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return if done() { Ok(()) } else { Err(()) };
            }
        }
    }

    /// Stops serving: listener closed, live connections dropped.
    pub async fn shutdown(self) {
        self.shutdown.cancel();
        let task = lock(&self.task).take();
        if let Some(task) = task {
            let _ = task.await;
        }
    }
}

/// For `freshtap simulate-clevertap`: serves on `bind` until `shutdown` is cancelled.
pub async fn run(
    bind: SocketAddr,
    config: SimulatorConfig,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let accounts: Vec<&str> = config.accounts.iter().map(|a| a.id.as_str()).collect();
    let accounts = accounts.join(", ");
    let sim = Simulator::start(bind, config).await?;
    tracing::info!(url = %sim.url(), accounts = %accounts, "CleverTap simulator listening: POST {}/1/upload, inspect {}/_sim/stats", sim.url(), sim.url());
    shutdown.cancelled().await;
    sim.shutdown().await;
    tracing::info!("CleverTap simulator stopped");
    Ok(())
}
