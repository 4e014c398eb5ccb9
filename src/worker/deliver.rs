//! One delivery, in one direction: plan → send → the account's fate → settle → record.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tracing::Instrument;

use super::AccountWorker;
use super::plan::{Op, Plan, plan};
use super::send::{Limits, Sent, Trouble, send};
use super::settle::settle;
use crate::clevertap::classify::{Failure, RecordVerdict};
use crate::clock::now_ms;
use crate::metrics::RecordOutcome as RecordMetric;
use crate::queue::{Claimed, HoldKind, RowOutcome};

/// Time kept in hand between the last request a delivery starts and its lease's end.
const LEASE_MARGIN: Duration = Duration::from_secs(2);
/// Whole-request server errors (500…) in a row, without a success between, after which the
/// account counts as unreachable rather than the batches at fault.
const SERVER_ERRORS_FOR_OUTAGE: u32 = 3;
/// Request ids named in a delivery's span; the rest are counted.
const SPAN_REQUEST_IDS: usize = 10;

/// Delivers `rows` (claimed just now); `probe` names the hold this delivery probes. Returns
/// the records sent per row (the next claim's size).
pub(super) async fn deliver(
    w: &AccountWorker,
    rows: Vec<Claimed>,
    probe: Option<(HoldKind, u32)>,
) -> f64 {
    let claimed_at = Instant::now();
    let span = tracing::info_span!("delivery", account = %w.name, rows = rows.len(),
        records = tracing::field::Empty, request_ids = %request_ids(&rows), probe = probe.map(|(k, _)| k.as_str()));
    let run = async {
        let mut working = w.busy.working();
        let mut plan = plan(&w.app, rows).await;
        tracing::Span::current().record("records", plan.items.len());
        let per_row = plan.records_per_row();
        let settings = &w.app.settings;
        let lease = settings.lease();
        let timeout = Duration::from_secs(settings.delivery.request_timeout_secs);
        let limits = Limits {
            max_records: settings.delivery.batch_max_records,
            max_bytes: settings.delivery.batch_max_bytes,
            last_start: (claimed_at + lease)
                .checked_sub(timeout + LEASE_MARGIN)
                .unwrap_or(claimed_at),
        };
        let started = Instant::now();
        let mut sent = send(&w.client, &mut plan.items, &limits, &mut working).await;
        for (label, elapsed) in &sent.requests {
            w.app.metrics.delivery(&w.name, *label, *elapsed);
        }
        account_fate(w, &mut sent, probe).await;
        let sent_records = plan.items.len();
        let deletions = plan.items.iter().any(|i| matches!(i.op, Op::Delete(_)));
        let outcomes = settle_and_count(w, plan, std::mem::take(&mut sent.verdicts));
        log_delivery(w, sent_records, &sent, started.elapsed());
        record(w, outcomes, claimed_at + lease - LEASE_MARGIN).await;
        if deletions {
            // An erasure's deletion holds the identity in clear until CleverTap confirms it.
            super::housekeeping::drop_bodies(&w.app).await;
        }
        per_row
    };
    run.instrument(span).await
}

fn settle_and_count(
    w: &AccountWorker,
    plan: Plan,
    verdicts: Vec<RecordVerdict>,
) -> Vec<RowOutcome> {
    let settled = settle(&w.app.settings.delivery, plan, verdicts, now_ms());
    let metrics = &w.app.metrics;
    metrics.records(&w.name, RecordMetric::Delivered, settled.delivered);
    metrics.records(&w.name, RecordMetric::Dead, settled.dead);
    metrics.records(&w.name, RecordMetric::Retried, settled.retried);
    settled.outcomes
}

/// Applies what the delivery showed about the account: a refusal holds it, an outage holds it
/// (and gives the rows back without an attempt), a probe that went through lifts the hold.
async fn account_fate(w: &AccountWorker, sent: &mut Sent, probe: Option<(HoldKind, u32)>) {
    let accounts = &w.app.accounts;
    let name = w.name.as_str();
    let result = match &sent.trouble {
        Trouble::None => {
            w.server_errors.store(0, Ordering::Relaxed);
            match probe {
                Some(_) => accounts.reachable(name).await,
                None => Ok(()),
            }
        }
        Trouble::Refused(reason) => {
            let refused = accounts.refused(name, reason).await;
            match probe {
                Some((HoldKind::Refused, probes)) => {
                    accounts
                        .probe_failed(name, HoldKind::Refused, reason, probes)
                        .await
                }
                // CleverTap answers again, only not to these credentials.
                Some((_, _)) => refused.and(accounts.answers_again(name).await),
                None => refused,
            }
        }
        Trouble::Failed {
            failure: Failure::Throttled,
            ..
        } => match probe {
            Some(_) => accounts.reachable(name).await,
            None => Ok(()),
        },
        Trouble::Failed { failure, reason } => {
            let in_a_row = w.server_errors.fetch_add(1, Ordering::Relaxed) + 1;
            let outage = probe.is_some()
                || *failure == Failure::Outage
                || in_a_row >= SERVER_ERRORS_FOR_OUTAGE;
            if !outage {
                return;
            }
            // A probe's own server error may be the batch's fault: that one attempt counts.
            if !(probe.is_some() && *failure == Failure::Server) {
                release_retries(&mut sent.verdicts);
            }
            match probe {
                Some((kind, probes)) => accounts.probe_failed(name, kind, reason, probes).await,
                None => accounts.unreachable(name, reason).await,
            }
        }
    };
    if let Err(error) = result {
        tracing::error!(account = %name, error = %error, "account state not recorded");
    }
}

/// An outage is not the records' fault: they go back without an attempt.
fn release_retries(verdicts: &mut [RecordVerdict]) {
    for verdict in verdicts {
        if matches!(verdict, RecordVerdict::Retry { .. }) {
            *verdict = RecordVerdict::Release;
        }
    }
}

/// The one info line of a delivery: account, records, requests, outcome, whole milliseconds.
fn log_delivery(w: &AccountWorker, records: usize, sent: &Sent, elapsed: Duration) {
    let ms = elapsed.as_millis() as u64;
    let account = w.name.as_str();
    let requests = sent.requests.len();
    match &sent.trouble {
        Trouble::None => tracing::info!(
            account,
            records,
            requests,
            outcome = "delivered",
            duration_ms = ms,
            "delivered to CleverTap"
        ),
        Trouble::Refused(reason) => {
            tracing::warn!(account, records, requests, outcome = "refused", duration_ms = ms, reason = %reason, "CleverTap refused the account");
        }
        Trouble::Failed { reason, .. } => {
            // Once per delivery, and the account's outage is logged once by `accounts`.
            let held = w.server_errors.load(Ordering::Relaxed) >= SERVER_ERRORS_FOR_OUTAGE;
            if held {
                tracing::debug!(account, records, requests, outcome = "retry", duration_ms = ms, reason = %reason, "CleverTap request failed");
            } else {
                tracing::warn!(account, records, requests, outcome = "retry", duration_ms = ms, reason = %reason, "CleverTap request failed; will retry");
            }
        }
    }
}

/// Records the outcome; when the queue cannot take it (a database blip), keeps it and tries
/// again until the lease would lapse, so the rows are not sent twice.
async fn record(w: &AccountWorker, outcomes: Vec<RowOutcome>, until: Instant) {
    let mut pause = Duration::from_millis(50);
    loop {
        let error = match w.app.queue.complete(outcomes.clone()).await {
            Ok(()) => return,
            Err(error) => error,
        };
        if Instant::now() + pause >= until {
            // The lease expires and the rows are delivered again: at-least-once, never lost.
            tracing::error!(error = %error, "delivery outcome not recorded; the rows come back when the lease expires");
            return;
        }
        tracing::warn!(error = %error, retry_in_ms = pause.as_millis(), "delivery outcome not recorded yet; retrying");
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(2));
    }
}

fn request_ids(rows: &[Claimed]) -> String {
    let mut ids: Vec<&str> = rows
        .iter()
        .take(SPAN_REQUEST_IDS)
        .map(|r| r.request_id.as_str())
        .collect();
    let more = rows.len().saturating_sub(SPAN_REQUEST_IDS);
    let more = format!("(+{more})");
    if rows.len() > SPAN_REQUEST_IDS {
        ids.push(&more);
    }
    ids.join(",")
}
