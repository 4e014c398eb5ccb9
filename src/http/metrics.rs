//! `GET /metrics`: Prometheus text, with the queue gauges refreshed at scrape time.

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

use crate::queue::now_ms;
use crate::startup::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/metrics", get(metrics))
}

async fn metrics(State(app): State<AppState>) -> impl IntoResponse {
    match app.queue.stats().await {
        Ok(stats) => app.metrics.queue(&stats, now_ms()),
        Err(error) => tracing::warn!(error = %error, "queue gauges not refreshed"),
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        app.metrics.render(),
    )
}
