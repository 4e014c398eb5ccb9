//! The delivery worker: for each CleverTap account, a loop around one public step,
//! [`AccountWorker::try_deliver_next`], woken by commits.
//!
//! A step takes a request slot (at most `max_in_flight` per account), asks the account's gate
//! (held? a probe due?), claims every due row up to the batch size and hands them to a
//! delivery task (`deliver.rs`: plan → send → settle). An idle relay therefore sends at once
//! and a busy one fills its batches while all slots are in use; while webhooks are being
//! stored, only one delivery does CPU work at a time (intake first). Idle waits are cancellable;
//! deliveries are not: on shutdown they get `shutdown_grace_secs` to finish.

mod deliver;
pub mod housekeeping;
mod plan;
mod send;
mod settle;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, watch};
use tokio_util::task::TaskTracker;

use crate::accounts::Gate;
use crate::clevertap::client::Client;
use crate::clock::{ms_duration, now_ms};
use crate::queue::QueueError;
use crate::state::AppState;

/// Stored body bytes a claim may load per byte of one request (`batch_max_bytes`): a
/// webhook's body is larger than the record it renders to.
const CLAIM_BYTES_PER_REQUEST_BYTE: usize = 4;

/// What one step did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// A delivery started (or a probe was sent): look for more at once.
    Delivered,
    /// Nothing due; the next retry is due at `until` (ms), if any.
    Idle { until: Option<i64> },
    /// The account is held (paused, refused, unreachable); its next probe is at `until`.
    Held { until: Option<i64> },
    /// Webhooks are being stored and another delivery is rendering: wait for it (intake first).
    Yielded,
}

/// The worker tasks: built with every account's client, started by `start`.
pub struct Workers {
    app: AppState,
    accounts: Vec<AccountWorker>,
    loops: TaskTracker,
    deliveries: TaskTracker,
    grace: Duration,
}

/// Builds every account's client (a bad one is a startup error); nothing runs yet.
pub fn build(app: &AppState) -> Result<Workers, String> {
    let deliveries = TaskTracker::new();
    let mut workers = Vec::new();
    if app.settings.delivery.enabled {
        let timeout = Duration::from_secs(app.settings.delivery.request_timeout_secs);
        for name in app.accounts.names() {
            let settings = app.settings.clevertap.accounts.get(name);
            let client = settings
                .ok_or_else(|| format!("clevertap.accounts.{name} is not configured"))
                .and_then(|s| Client::new(name, s, timeout).map_err(|e| e.to_string()))?;
            workers.push(AccountWorker::new(
                app.clone(),
                name,
                client,
                deliveries.clone(),
            ));
        }
    }
    Ok(Workers {
        app: app.clone(),
        accounts: workers,
        loops: TaskTracker::new(),
        deliveries,
        grace: Duration::from_secs(app.settings.server.shutdown_grace_secs),
    })
}

impl Workers {
    /// Starts one loop per account (unless `delivery.enabled = false`) and housekeeping.
    pub fn start(&mut self) {
        if !self.app.settings.delivery.enabled {
            tracing::warn!("delivery.enabled = false: webhooks are stored but nothing is sent");
        }
        for worker in self.accounts.drain(..) {
            self.loops.spawn(worker.run());
        }
        self.loops.spawn(housekeeping::run(self.app.clone()));
    }

    /// Waits for the loops (already told to stop by the shutdown token), then gives in-flight
    /// deliveries the grace period. A delivery still running after it keeps its lease, which
    /// expires: its rows are delivered later, by this replica or another.
    pub async fn stop(self) {
        self.loops.close();
        self.loops.wait().await;
        self.deliveries.close();
        if tokio::time::timeout(self.grace, self.deliveries.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                "deliveries still running after the grace period; their leases will expire"
            );
        }
    }
}

/// The worker of one account; its clones share the account's slots and counters.
#[derive(Clone)]
pub struct AccountWorker {
    app: AppState,
    name: String,
    client: Client,
    slots: Arc<Semaphore>,
    deliveries: TaskTracker,
    finished: Arc<Notify>,
    /// Whole-request server errors in a row (the outage heuristic).
    server_errors: Arc<AtomicU32>,
    /// Records per row of the last delivery (f64 bits): rows claimed per step.
    records_per_row: Arc<AtomicU64>,
    /// Deliveries doing CPU work right now (intake first while webhooks are being stored).
    busy: Busy,
}

impl AccountWorker {
    fn new(app: AppState, name: &str, client: Client, deliveries: TaskTracker) -> Self {
        let slots = Arc::new(Semaphore::new(app.settings.delivery.max_in_flight));
        Self {
            app,
            name: name.to_owned(),
            client,
            slots,
            deliveries,
            finished: Arc::new(Notify::new()),
            server_errors: Arc::new(AtomicU32::new(0)),
            records_per_row: Arc::new(AtomicU64::new(1.0_f64.to_bits())),
            busy: Busy::default(),
        }
    }

    async fn run(self) {
        let mut wake = self.app.queue.subscribe();
        let token = self.app.shutdown.clone();
        while !token.is_cancelled() {
            wake.borrow_and_update();
            match self.try_deliver_next().await {
                Ok(Step::Delivered) => {}
                Ok(Step::Yielded) => {
                    token.run_until_cancelled(self.busy.done.notified()).await;
                }
                Ok(Step::Idle { until } | Step::Held { until }) => {
                    self.wait_for_work(until, &mut wake).await;
                }
                Err(error) => {
                    tracing::error!(account = %self.name, error = %error, "delivery step failed; retrying shortly");
                    token
                        .run_until_cancelled(tokio::time::sleep(Duration::from_secs(1)))
                        .await;
                }
            }
        }
    }

    /// One step: a free slot, the account's gate, a claim, and a delivery started. Waiting
    /// for a slot ends with the shutdown; a delivery, once claimed, is never abandoned.
    pub async fn try_deliver_next(&self) -> Result<Step, QueueError> {
        let acquired = self
            .app
            .shutdown
            .run_until_cancelled(self.slots.clone().acquire_owned())
            .await;
        let Some(Ok(permit)) = acquired else {
            return Ok(Step::Idle { until: None });
        };
        // Intake first: while webhooks are being stored, one delivery works at a time, so
        // draining a backlog cannot take the CPU that answers Freshsales. Deliveries waiting on
        // CleverTap's answer cost no CPU: up to `max_in_flight` of them stay in flight.
        if self.busy.count() > 0 && self.intake_busy() {
            return Ok(Step::Yielded);
        }
        let probe_timeout = self.app.settings.lease();
        match self.app.accounts.gate(&self.name, probe_timeout).await? {
            Gate::Open => self.deliver_batch(permit).await,
            Gate::Probe { kind, probes } => {
                let rows = self.claim(1, usize::MAX).await?;
                if rows.is_empty() {
                    self.app.accounts.probe_unused(&self.name, kind).await?;
                    return Ok(Step::Idle { until: None });
                }
                tracing::info!(account = %self.name, kind = kind.as_str(), probes, "probing a held account");
                deliver::deliver(self, rows, Some((kind, probes))).await;
                drop(permit);
                Ok(Step::Delivered)
            }
            Gate::Closed { until } => Ok(Step::Held { until }),
        }
    }

    async fn deliver_batch(&self, permit: OwnedSemaphorePermit) -> Result<Step, QueueError> {
        // The account-wide slot: with PostgreSQL, max_in_flight holds across every replica.
        let limit = self.app.settings.delivery.max_in_flight;
        let ttl = self.app.settings.lease();
        let Some(slot) = self.app.queue.acquire_slot(&self.name, limit, ttl).await? else {
            return Ok(Step::Idle { until: None });
        };
        let budget = self.claim_bytes();
        let mut rows = self.claim(self.claim_size(), budget).await;
        let linger = Duration::from_millis(self.app.settings.delivery.batch_linger_ms);
        if let Ok(found) = &mut rows
            && !found.is_empty()
            && !linger.is_zero()
            && found.len() < self.claim_size()
        {
            let held: usize = found.iter().map(|row| row.body.len()).sum();
            tokio::time::sleep(linger).await;
            if held < budget
                && let Ok(more) = self
                    .claim(self.claim_size() - found.len(), budget - held)
                    .await
            {
                found.extend(more);
            }
        }
        let rows = match rows {
            Ok(rows) if !rows.is_empty() => rows,
            other => {
                self.release_slot(slot).await;
                other?;
                let until = self.app.queue.next_due(&self.name).await?;
                return Ok(Step::Idle { until });
            }
        };
        let worker = self.clone();
        self.deliveries.spawn(async move {
            let per_row = deliver::deliver(&worker, rows, None).await;
            worker
                .records_per_row
                .store(per_row.max(1.0).to_bits(), Ordering::Relaxed);
            worker.release_slot(slot).await;
            drop(permit);
            worker.finished.notify_one();
        });
        Ok(Step::Delivered)
    }

    /// Rows per claim: about one request's worth of records, judged by the last delivery.
    fn claim_size(&self) -> usize {
        let batch = self.app.settings.delivery.batch_max_records;
        let per_row = f64::from_bits(self.records_per_row.load(Ordering::Relaxed)).max(1.0);
        ((batch as f64 / per_row).ceil() as usize).clamp(1, batch)
    }

    /// Body bytes per claim: enough for a full request of records rendered from webhooks
    /// larger than their records, few enough that a backlog of 1000-record uploads is not
    /// loaded at once (each delivery in flight claims its own).
    fn claim_bytes(&self) -> usize {
        self.app
            .settings
            .delivery
            .batch_max_bytes
            .saturating_mul(CLAIM_BYTES_PER_REQUEST_BYTE)
    }

    async fn claim(
        &self,
        rows: usize,
        bytes: usize,
    ) -> Result<Vec<crate::queue::Claimed>, QueueError> {
        let limit = crate::queue::ClaimLimit { rows, bytes };
        self.app
            .queue
            .claim(&self.name, limit, self.app.settings.lease())
            .await
    }

    /// A slot that is not given back lapses after the lease; releasing it early frees it now.
    async fn release_slot(&self, slot: i64) {
        if let Err(error) = self.app.queue.release_slot(slot).await {
            tracing::warn!(error = %error, "delivery slot not released; it lapses with the lease");
        }
    }

    /// True while a webhook is being stored right now.
    fn intake_busy(&self) -> bool {
        self.app.admission.busy()
    }

    /// Sleeps until a commit wakes us, `until` (the next retry or probe), or the 1 s safety
    /// poll (expired leases, another replica's changes).
    async fn wait_for_work(&self, until: Option<i64>, wake: &mut watch::Receiver<u64>) {
        let poll = Duration::from_secs(1);
        let sleep = until.map_or(poll, |at| ms_duration(at - now_ms()).min(poll));
        tokio::select! {
            () = self.app.shutdown.cancelled() => {}
            _ = wake.changed() => {}
            () = tokio::time::sleep(sleep) => {}
        }
    }
}

/// The deliveries of one account doing CPU work right now (rendering, packing, settling); one
/// waiting for CleverTap's answer is not counted. `done` wakes a step that yielded to intake.
#[derive(Clone, Default)]
pub(super) struct Busy {
    count: Arc<AtomicUsize>,
    done: Arc<Notify>,
}

impl Busy {
    fn count(&self) -> usize {
        self.count.load(Ordering::Acquire)
    }

    /// Counts the caller as working until the guard is dropped.
    pub(super) fn working(&self) -> Working<'_> {
        self.count.fetch_add(1, Ordering::AcqRel);
        Working(self)
    }

    fn stopped(&self) {
        self.count.fetch_sub(1, Ordering::AcqRel);
        self.done.notify_one();
    }
}

/// A delivery at work; [`Working::waiting`] stops counting it while it awaits an answer.
pub(super) struct Working<'a>(&'a Busy);

impl Working<'_> {
    /// Runs `future` (a request to CleverTap) without counting as working meanwhile.
    pub(super) async fn waiting<F: Future>(&mut self, future: F) -> F::Output {
        self.0.stopped();
        let output = future.await;
        self.0.count.fetch_add(1, Ordering::AcqRel);
        output
    }
}

impl Drop for Working<'_> {
    fn drop(&mut self) {
        self.0.stopped();
    }
}
