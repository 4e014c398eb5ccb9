//! CleverTap simulator: an in-process server for `/1/upload` and `/1/delete/profiles.json` with
//! CleverTap's validation, a store, stats and fault injection, global or per account.
//!
//! Used as "CleverTap" by freshtap's integration tests, its `demo` command, its benchmark and the
//! `simulate-clevertap` command. What it checks and answers is described in this crate's README.

mod answer;
mod config;
mod delete;
mod deletions;
mod fault_request;
mod fault_set;
mod faults;
mod gate;
mod json;
mod locks;
mod net;
mod routes;
mod sim_api;
mod state;
mod stats;
mod store;
mod upload;
pub mod validate;

#[cfg(test)]
mod validate_tests;

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use answer::AnswerShape;
pub use config::{SimAccount, SimulatorConfig};
pub use deletions::{DeleteKey, DeleteStats, Deletion};
pub use fault_request::FaultsRequest;
pub use fault_set::{AccountFaultsSnapshot, FailNext};
pub use faults::{AccountFaults, Faults, FaultsSnapshot};
pub use json::{mask_identity, mask_secret};
pub use stats::{AccountStats, ReceivedRequest, RequestOutcome, SimStats};

use locks::lock;
use net::Net;
use state::Inner;

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
        let inner = Arc::new(Inner::new(config, net));
        let shutdown = CancellationToken::new();
        let router = routes::router(Arc::clone(&inner));
        let task = tokio::spawn(net::accept_loop(
            Arc::clone(&inner.net),
            router,
            shutdown.clone(),
        ));
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

    /// Every value of an accepted `POST /1/delete/profiles.json`, in order (bounded by
    /// `history_limit`).
    pub fn deletions(&self) -> Vec<Deletion> {
        lock(&self.inner.deletions).deletions()
    }

    /// Clears store, counters, request and deletion logs, and faults.
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

    /// Resolves once at least `n` requests are in flight at once (uploads and deletes, of any
    /// account, those being refused included), else an error after `timeout`: a test's way to
    /// know its requests have all arrived before it acts.
    pub async fn wait_for_in_flight(
        &self,
        n: usize,
        timeout: Duration,
    ) -> Result<SimStats, String> {
        let count = || {
            let uploads = lock(&self.inner.book).stats.in_flight_attempted;
            uploads + lock(&self.inner.deletions).attempted()
        };
        self.wait_until(timeout, || count() >= n)
            .await
            .map_err(|()| {
                format!(
                    "simulator: {} of {n} expected requests in flight within {timeout:?}",
                    count()
                )
            })?;
        Ok(self.stats())
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
