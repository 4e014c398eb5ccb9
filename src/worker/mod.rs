//! The delivery worker: one loop per CleverTap account around claim → deliver, woken by commits.
//!
//! A loop takes a request slot (at most `max_in_flight` per account), claims every due row up
//! to the batch size and hands them to a delivery task; an idle relay therefore sends at once
//! and a busy one fills its batches while all slots are in use. Idle waits are cancellable;
//! deliveries are not: on shutdown they get `shutdown_grace_secs` to finish.

mod deliver;
pub mod housekeeping;
pub mod pause;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio_util::task::TaskTracker;

use crate::queue::{Claimed, now_ms};
use crate::startup::AppState;
use pause::PauseKind;

/// The running worker tasks.
pub struct Workers {
    loops: TaskTracker,
    deliveries: TaskTracker,
    grace: Duration,
}

/// Starts one loop per account (unless `delivery.enabled = false`) and the housekeeping task.
pub fn spawn(app: AppState) -> Workers {
    let loops = TaskTracker::new();
    let deliveries = TaskTracker::new();
    if app.settings.delivery.enabled {
        for name in app.accounts.keys() {
            loops.spawn(account_loop(app.clone(), name.clone(), deliveries.clone()));
        }
    } else {
        tracing::warn!("delivery.enabled = false: webhooks are stored but nothing is sent");
    }
    loops.spawn(housekeeping::run(app.clone()));
    Workers {
        loops,
        deliveries,
        grace: Duration::from_secs(app.settings.server.shutdown_grace_secs),
    }
}

impl Workers {
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

async fn account_loop(app: AppState, account: String, deliveries: TaskTracker) {
    let max_in_flight = app.settings.delivery.max_in_flight;
    let slots = Arc::new(Semaphore::new(max_in_flight));
    let finished = Arc::new(tokio::sync::Notify::new());
    let mut wake = app.queue.subscribe();
    let batch = app.settings.delivery.batch_max_records;
    let token = app.shutdown.clone();
    while !token.is_cancelled() {
        if let Some(pause) = app.pauses.get(&account) {
            let probe_due = pause.kind == PauseKind::Refused
                && tokio::time::Instant::now() >= pause.next_probe.into();
            if !probe_due {
                let until = tokio::time::Instant::from_std(pause.next_probe);
                tokio::select! {
                    () = token.cancelled() => break,
                    () = app.pauses.wait_resumed() => {}
                    () = tokio::time::sleep_until(until), if pause.kind == PauseKind::Refused => {}
                }
                continue;
            }
            // Probe: one batch, sent inline; its answer resumes the account or keeps it paused.
            let postpone = || {
                app.pauses.pause(
                    &account,
                    PauseKind::Refused,
                    String::new(),
                    now_ms(),
                    probe_every(&app),
                )
            };
            let Some(slot) = acquire_slot(&app, &account).await else {
                postpone();
                continue;
            };
            let rows = claim(&app, &account, batch).await;
            if rows.is_empty() {
                postpone();
            } else {
                tracing::info!(account = %account, rows = rows.len(), "probing paused account");
                deliver::deliver(&app, &account, rows).await;
            }
            release_slot(&app, slot).await;
            continue;
        }
        let permit = tokio::select! {
            () = token.cancelled() => break,
            permit = slots.clone().acquire_owned() => match permit { Ok(p) => p, Err(_) => break },
        };
        // Intake first: while webhooks are being stored, one delivery at a time, so draining a
        // backlog cannot take the CPU that answers Freshsales (the performance budgets in docs/architecture.md).
        let others_in_flight = max_in_flight - slots.available_permits() - 1;
        if others_in_flight > 0 && intake_busy(&app) {
            drop(permit);
            tokio::select! {
                () = token.cancelled() => break,
                () = finished.notified() => {}
            }
            continue;
        }
        wake.borrow_and_update();
        // The account-wide slot: with PostgreSQL, max_in_flight holds across every replica.
        let Some(slot) = acquire_slot(&app, &account).await else {
            drop(permit);
            wait_for_work(&app, &account, &mut wake).await;
            continue;
        };
        let mut rows = claim(&app, &account, batch).await;
        if rows.is_empty() {
            release_slot(&app, slot).await;
            drop(permit);
            wait_for_work(&app, &account, &mut wake).await;
            continue;
        }
        let linger = Duration::from_millis(app.settings.delivery.batch_linger_ms);
        if !linger.is_zero() && rows.len() < batch {
            tokio::select! { () = token.cancelled() => {}, () = tokio::time::sleep(linger) => {} }
            rows.extend(claim(&app, &account, batch - rows.len()).await);
        }
        let app = app.clone();
        let account = account.clone();
        let finished = finished.clone();
        deliveries.spawn(async move {
            deliver::deliver(&app, &account, rows).await;
            release_slot(&app, slot).await;
            drop(permit);
            finished.notify_one();
        });
    }
}

/// True while a webhook is being stored right now.
fn intake_busy(app: &AppState) -> bool {
    app.intake_slots.available_permits() < app.settings.server.max_concurrent_requests.max(1)
}

async fn acquire_slot(app: &AppState, account: &str) -> Option<i64> {
    let limit = app.settings.delivery.max_in_flight;
    match app
        .queue
        .acquire_slot(account, limit, app.settings.lease())
        .await
    {
        Ok(slot) => slot,
        Err(error) => {
            tracing::error!(account = %account, error = %error, "could not take a delivery slot");
            None
        }
    }
}

/// A slot that is not given back lapses after the lease; releasing it early frees it now.
async fn release_slot(app: &AppState, slot: i64) {
    if let Err(error) = app.queue.release_slot(slot).await {
        tracing::warn!(error = %error, "delivery slot not released; it lapses with the lease");
    }
}

async fn claim(app: &AppState, account: &str, limit: usize) -> Vec<Claimed> {
    match app.queue.claim(account, limit, app.settings.lease()).await {
        Ok(rows) => rows,
        Err(error) => {
            tracing::error!(account = %account, error = %error, "claim failed; retrying shortly");
            tokio::select! {
                () = app.shutdown.cancelled() => {}
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
            Vec::new()
        }
    }
}

/// Sleeps until a commit wakes us, the next retry is due, or the 1 s safety poll (expired
/// leases, another replica's rows).
async fn wait_for_work(
    app: &AppState,
    account: &str,
    wake: &mut tokio::sync::watch::Receiver<u64>,
) {
    let poll = Duration::from_secs(1);
    let sleep = match app.queue.next_due(account).await {
        Ok(Some(due)) => {
            Duration::from_millis(u64::try_from((due - now_ms()).max(0)).unwrap_or(0)).min(poll)
        }
        _ => poll,
    };
    tokio::select! {
        () = app.shutdown.cancelled() => {}
        _ = wake.changed() => {}
        () = tokio::time::sleep(sleep) => {}
        () = app.pauses.wait_resumed() => {}
    }
}

fn probe_every(app: &AppState) -> Duration {
    Duration::from_secs(app.settings.delivery.pause_probe_secs)
}

/// Stops sending to `account` (its rows stay pending); logs once and sets the gauge.
pub fn pause_account(app: &AppState, account: &str, kind: PauseKind, reason: String) {
    let manual = kind == PauseKind::Manual;
    if app
        .pauses
        .pause(account, kind, reason.clone(), now_ms(), probe_every(app))
    {
        app.metrics.account_paused(account, true);
        if manual {
            tracing::warn!(account = %account, "account paused by an operator; webhooks are still accepted");
        } else {
            tracing::error!(account = %account, reason = %reason, probe_secs = app.settings.delivery.pause_probe_secs,
                "CleverTap refused the account; delivery paused, webhooks are still accepted");
        }
    }
}

/// Resumes `account`; the age clock of its rows is pushed back by the time it was paused.
pub async fn resume_account(app: &AppState, account: &str) {
    let Some(paused_for) = app.pauses.resume(account) else {
        return;
    };
    app.metrics.account_paused(account, false);
    if let Err(error) = app.queue.extend_deadlines(account, paused_for).await {
        tracing::error!(account = %account, error = %error, "could not stop the age clock for the pause");
    }
    tracing::info!(account = %account, paused_secs = paused_for.as_secs(), "account resumed; delivery continues");
}
