//! The HTTP surface: merges each module's router and adds the request-context layer.

pub mod admin;
pub mod auth;
pub mod console;
pub mod error;
pub mod extract;
pub mod health;
mod ingest;
pub mod intake;
pub mod metrics;
pub mod openapi;
pub mod serve;
pub mod upload;

use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::HeaderValue;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use tracing::Instrument;

use crate::state::AppState;
use error::{ApiError, REQUEST_ID};
pub use openapi::ROUTES;

/// The public router: intake, health and `/openapi.json`, plus admin, console and metrics
/// unless they have their own listener (`server.admin_bind`).
pub fn router(state: AppState, with_admin: bool) -> Router {
    let mut router = intake::router()
        .merge(upload::router())
        .merge(health::router())
        .merge(openapi::router());
    if with_admin {
        router = router
            .merge(admin::router(state.clone()))
            .merge(console::router(state.clone()))
            .merge(metrics::router());
    }
    layered(router, state)
}

/// The separate admin listener's router: admin, console, metrics, health and `/openapi.json`.
pub fn admin_router(state: AppState) -> Router {
    layered(
        admin::router(state.clone())
            .merge(console::router(state.clone()))
            .merge(metrics::router())
            .merge(health::router())
            .merge(openapi::router()),
        state,
    )
}

fn layered(router: Router<AppState>, state: AppState) -> Router {
    router
        .fallback(|| async { ApiError::NotFound("no such endpoint".into()) })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(middleware::from_fn_with_state(
            state.clone(),
            request_context,
        ))
        .with_state(state)
}

/// Keeps or assigns the request id, runs the request in a span carrying it, bounds its time,
/// echoes `X-Request-ID` and logs one line per request.
async fn request_context(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let request_id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map_or_else(|| uuid::Uuid::now_v7().to_string(), str::to_owned);
    let span = tracing::info_span!("request", request_id = %request_id, method = %request.method(), path = %request.uri().path());
    let started = Instant::now();
    let path = request.uri().path();
    let hot = path.starts_with("/webhooks/")
        || ["/1/upload", "/healthz", "/readyz", "/metrics"].contains(&path);
    let limit = Duration::from_secs(state.settings.server.request_timeout_secs);
    let run = REQUEST_ID.scope(request_id.clone(), async move {
        match tokio::time::timeout(limit, next.run(request)).await {
            Ok(response) => response,
            Err(_) => ApiError::Timeout.into_response(),
        }
    });
    let mut response = run.instrument(span.clone()).await;
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert("x-request-id", value);
    }
    let status = response.status().as_u16();
    let elapsed_ms = started.elapsed().as_millis() as u64;
    span.in_scope(|| {
        if status == 503 && hot {
            // Hot-path 503s have their own lines: shed and queue down once per interval,
            // stopping once.
            tracing::debug!(status, elapsed_ms, "request served");
        } else if status >= 500 {
            tracing::warn!(status, elapsed_ms, "request served");
        } else if status < 300 && hot {
            // Accepted webhooks and probes are the hot path: their line is for debugging.
            tracing::debug!(status, elapsed_ms, "request served");
        } else {
            tracing::info!(status, elapsed_ms, "request served");
        }
    });
    response
}
