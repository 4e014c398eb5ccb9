//! Housekeeping: retention purge and delivered bodies dropped (logged and counted), queue and account gauges, and a summary
//! line while an account is unreachable.

use std::time::Duration;

use crate::clock::{hours_ms, now_ms};
use crate::queue::HoldKind;
use crate::state::AppState;

/// How often gauges are refreshed (and buffered histogram samples folded in).
const GAUGES_EVERY: Duration = Duration::from_secs(5);
/// How often retention runs and an unreachable account is summarised.
const PURGE_EVERY: Duration = Duration::from_secs(60);

pub async fn run(app: AppState) {
    let mut purge = tokio::time::interval(PURGE_EVERY);
    // Histogram samples are held until the recorder's upkeep folds them in; without a scrape
    // of /metrics they would pile up, one per request.
    let mut gauges = tokio::time::interval(GAUGES_EVERY);
    loop {
        tokio::select! {
            () = app.shutdown.cancelled() => break,
            _ = gauges.tick() => refresh_gauges(&app).await,
            _ = purge.tick() => {
                purge_once(&app).await;
                summarise_outages(&app).await;
            }
        }
    }
}

async fn refresh_gauges(app: &AppState) {
    app.metrics.upkeep();
    app.refresh_gauges().await;
    let _ = app.readiness().await;
}

/// Deletes what retention allows; nothing disappears without a log line and a count.
pub async fn purge_once(app: &AppState) {
    let q = &app.settings.queue;
    let now = now_ms();
    let delivered_before = now - hours_ms(q.delivered_retention_hours);
    let dead_before = now - hours_ms(q.dead_retention_days.saturating_mul(24));
    match app.queue.purge(delivered_before, dead_before).await {
        Ok(counts) => {
            app.metrics.purged("delivered", counts.delivered);
            app.metrics.purged("dead", counts.dead);
            if counts.delivered + counts.dead > 0 {
                tracing::info!(
                    delivered = counts.delivered,
                    dead_letters = counts.dead,
                    "retention purge"
                );
            }
        }
        Err(error) => tracing::error!(error = %error, "retention purge failed"),
    }
    drop_bodies(app).await;
}

/// Minimisation: a delivered row's body goes long before its metadata does, and a delivered
/// erasure deletion's (the identity in clear) at once. Also run right after a delivery that
/// sent deletions.
pub async fn drop_bodies(app: &AppState) {
    let bodies_before = now_ms() - hours_ms(app.settings.queue.delivered_body_retention_hours);
    match app.queue.drop_delivered_bodies(bodies_before).await {
        Ok(dropped) => {
            app.metrics.purged("body", dropped);
            if dropped > 0 {
                tracing::info!(bodies = dropped, "delivered bodies dropped (metadata kept)");
            }
        }
        Err(error) => tracing::error!(error = %error, "dropping delivered bodies failed"),
    }
}

/// One line a minute per unreachable account, instead of one per failed row.
async fn summarise_outages(app: &AppState) {
    let Ok(holds) = app.accounts.holds().await else {
        return;
    };
    let now = now_ms();
    for hold in holds.iter().filter(|h| h.kind == HoldKind::Unreachable) {
        tracing::warn!(account = %hold.account, since_secs = (now - hold.since_ms).max(0) / 1000,
            probes_failed = hold.probes, reason = %hold.reason,
            "CleverTap still unreachable; webhooks are stored and wait");
    }
}
