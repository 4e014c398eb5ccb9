//! The `/_sim/*` inspection and control endpoints (stats, profiles, events, requests, deletions,
//! faults, reset).

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::fault_request::FaultsRequest;
use crate::locks::lock;
use crate::state::Inner;

/// `GET /_sim/stats`.
pub async fn stats(State(inner): State<Arc<Inner>>) -> Response {
    Json(inner.stats()).into_response()
}

/// `GET /_sim/profiles/{identity}`: the merged profile, or 404 JSON.
pub async fn profile(State(inner): State<Arc<Inner>>, Path(identity): Path<String>) -> Response {
    match lock(&inner.store).profile(&identity) {
        Some(profile) => Json(json!({"identity": identity, "profile": profile})).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            Json(json!({"error": "profile not found", "identity": identity})),
        )
            .into_response(),
    }
}

/// `GET /_sim/events`.
pub async fn events(State(inner): State<Arc<Inner>>) -> Response {
    let events = lock(&inner.store).events();
    Json(json!({"count": events.len(), "events": events})).into_response()
}

/// `GET /_sim/requests`.
pub async fn requests(State(inner): State<Arc<Inner>>) -> Response {
    let requests = lock(&inner.book).requests(inner.epoch);
    Json(json!({"count": requests.len(), "requests": requests})).into_response()
}

/// `GET /_sim/deletions`: every deleted identity or guid, in order.
pub async fn deletions(State(inner): State<Arc<Inner>>) -> Response {
    let deletions = lock(&inner.deletions).deletions();
    Json(json!({"count": deletions.len(), "deletions": deletions})).into_response()
}

/// `GET /_sim/faults`: the current settings.
pub async fn get_faults(State(inner): State<Arc<Inner>>) -> Response {
    Json(inner.faults.snapshot()).into_response()
}

/// `POST /_sim/faults`, e.g. `{"fail_next":{"n":2,"status":503},"latency_ms":50,
/// "error_rates":{"500":0.1},"outage_secs":3,"hang_next":1}`, with `"account":"<id>"` to scope
/// the request faults to one account; answers the new settings, or 400 with the reason.
pub async fn set_faults(State(inner): State<Arc<Inner>>, body: Bytes) -> Response {
    let request: FaultsRequest = if body.iter().all(u8::is_ascii_whitespace) {
        FaultsRequest::default()
    } else {
        match serde_json::from_slice(&body) {
            Ok(request) => request,
            Err(err) => {
                let error = format!("invalid faults body: {err}");
                return (StatusCode::BAD_REQUEST, Json(json!({"error": error}))).into_response();
            }
        }
    };
    match inner.faults.apply(request) {
        Ok(()) => Json(inner.faults.snapshot()).into_response(),
        Err(error) => (StatusCode::BAD_REQUEST, Json(json!({"error": error}))).into_response(),
    }
}

/// `POST /_sim/reset`: store, counters, request log and faults cleared.
pub async fn reset(State(inner): State<Arc<Inner>>) -> Response {
    inner.reset();
    Json(json!({"status": "reset"})).into_response()
}

/// Anything else: 404 JSON.
pub async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(json!({"status": "fail", "error": "Not Found", "code": 404})),
    )
        .into_response()
}
