//! Housekeeping: retention purge (logged and counted) and the queue gauges, every minute.

use std::time::Duration;

use crate::queue::{duration_ms, now_ms};
use crate::startup::AppState;

pub async fn run(app: AppState) {
    let mut tick = tokio::time::interval(Duration::from_secs(60));
    // Histogram samples are held until the recorder's upkeep folds them in; without a scrape
    // of /metrics they would pile up, one per request.
    let mut upkeep = tokio::time::interval(Duration::from_secs(5));
    loop {
        tokio::select! {
            () = app.shutdown.cancelled() => break,
            _ = upkeep.tick() => {
                app.metrics.upkeep();
                continue;
            }
            _ = tick.tick() => {}
        }
        purge_once(&app).await;
        match app.queue.stats().await {
            Ok(stats) => app.metrics.queue(&stats, now_ms()),
            Err(error) => tracing::warn!(error = %error, "queue gauges not refreshed"),
        }
    }
}

/// Deletes what retention allows; nothing disappears without a log line and a count.
pub async fn purge_once(app: &AppState) {
    let q = &app.settings.queue;
    let now = now_ms();
    let delivered_before =
        now - duration_ms(Duration::from_secs(q.delivered_retention_hours * 3600));
    let dead_before = now - duration_ms(Duration::from_secs(q.dead_retention_days * 86_400));
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
}
