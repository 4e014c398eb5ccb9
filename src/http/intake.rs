//! `POST /webhooks/{route}`: authenticate, read, check, commit, then answer. The pieces the
//! drop-in shares (bounded body read, load shedding, a commit that is counted even when the
//! client leaves) are here too.

use std::time::{Duration, Instant};

use axum::body::{Body, to_bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::json;
use tokio::sync::OwnedSemaphorePermit;

use super::auth;
use super::error::{ApiError, current_request_id};
use super::extract::Path;
use crate::clock::{hours_ms, now_ms};
use crate::metrics::Intake;
use crate::queue::{Enqueued, NewWebhook, QueueError};
use crate::routes::Route;
use crate::state::AppState;
use crate::webhook::{self, BodyKind};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/webhooks/{route}", post(route_webhook))
        .merge(super::upload::router())
        .layer(axum::extract::DefaultBodyLimit::disable())
}

async fn route_webhook(
    State(app): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let started = Instant::now();
    let Some(route) = app.routes.webhook(&name) else {
        app.metrics.webhook("_unknown", Intake::UnknownRoute);
        tracing::warn!(route = %name, "webhook for an unknown route");
        return ApiError::UnknownRoute(name).into_response();
    };
    if !auth::route_token_ok(&headers, &app.settings.auth.header, &route.tokens) {
        return unauthorized(&app, &route.name, &headers);
    }
    let response = match store(&app, route, &headers, body).await {
        Ok(response) => response,
        Err(error) => refused(&app, &route.name, error),
    };
    app.metrics.intake_time(started.elapsed());
    response
}

pub(super) fn unauthorized(app: &AppState, route: &str, headers: &HeaderMap) -> Response {
    app.metrics.webhook(route, Intake::Unauthorized);
    // Header names only: a mistyped header name is the usual cause, values are secrets.
    tracing::warn!(route = %route, headers = %auth::header_names(headers), "webhook refused: missing or wrong token");
    ApiError::Unauthorized.into_response()
}

/// Counts and logs an intake error, and answers it.
fn refused(app: &AppState, route: &str, error: ApiError) -> Response {
    app.metrics.webhook(route, outcome_of(&error));
    tracing::warn!(route = %route, error = %error, "webhook not accepted");
    error.into_response()
}

pub(super) fn outcome_of(error: &ApiError) -> Intake {
    match error {
        ApiError::TooLarge(_) => Intake::TooLarge,
        ApiError::UnsupportedType(_) => Intake::UnsupportedType,
        ApiError::InvalidBody { .. } => Intake::InvalidBody,
        ApiError::Overloaded => Intake::Overloaded,
        _ => Intake::Unavailable,
    }
}

async fn store(
    app: &AppState,
    route: &Route,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let bytes = read_body(app, headers, body, app.settings.server.max_body_bytes).await?;
    let _slot = intake_slot(app)?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let kind = BodyKind::from_content_type(content_type, &bytes)
        .ok_or_else(|| ApiError::UnsupportedType(content_type.unwrap_or_default().to_owned()))?;
    let mut row = new_row(app, route, kind, bytes.to_vec());
    let parsed = match webhook::parse(kind, &bytes) {
        Ok(parsed) => parsed,
        Err(error) => {
            // Kept as a dead letter so an operator can fix the body and replay it.
            let (_, dead_letter_id) = app
                .queue
                .enqueue_invalid(row, error.message.clone())
                .await?;
            return Err(ApiError::InvalidBody {
                message: error.message,
                dead_letter_id: Some(dead_letter_id),
            });
        }
    };
    if parsed.repaired {
        app.metrics.body_repaired(&route.name);
    }
    if app.settings.mapping.detect_test_webhooks && webhook::is_test_payload(&parsed.value) {
        app.metrics.webhook(&route.name, Intake::Test);
        tracing::info!(route = %route.name, "Freshsales test webhook answered; not stored");
        let body = json!({"status": "test", "request_id": row.request_id});
        return Ok((StatusCode::OK, Json(body)).into_response());
    }
    row.dedup = crate::mapping::dedup_safe(&parsed.value);
    row.order_keys = order_keys(route, &parsed.value, &row.body_hash);
    let request_id = row.request_id.clone();
    Ok(match commit(app, row, Intake::Accepted).await? {
        Enqueued::Accepted(id) => {
            let body = json!({"status": "accepted", "id": id, "request_id": request_id});
            (StatusCode::ACCEPTED, Json(body)).into_response()
        }
        Enqueued::Duplicate(id) => {
            let body = json!({"status": "duplicate", "id": id, "request_id": request_id});
            (StatusCode::OK, Json(body)).into_response()
        }
    })
}

/// Reads the whole body, at most `limit` bytes, before anything else is held: a client that
/// drips its body holds no intake slot meanwhile (the request timeout bounds the wait).
pub(super) async fn read_body(
    app: &AppState,
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<axum::body::Bytes, ApiError> {
    if app.shutting_down() {
        return Err(ApiError::ShuttingDown);
    }
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(ApiError::TooLarge(limit));
    }
    to_bytes(body, limit).await.map_err(|error| {
        let too_large = std::error::Error::source(&error)
            .is_some_and(|source| source.is::<http_body_util::LengthLimitError>());
        if too_large {
            ApiError::TooLarge(limit)
        } else {
            ApiError::BadRequest("the request body could not be read".into())
        }
    })
}

/// One of the `server.max_concurrent_requests` slots, held until the commit: past the bound,
/// shed load now (503 `overloaded`) rather than queue in memory.
pub(super) fn intake_slot(app: &AppState) -> Result<OwnedSemaphorePermit, ApiError> {
    app.intake_slots
        .clone()
        .try_acquire_owned()
        .map_err(|_| ApiError::Overloaded)
}

/// A row for `route` received now.
pub(super) fn new_row(app: &AppState, route: &Route, kind: BodyKind, body: Vec<u8>) -> NewWebhook {
    let received_at_ms = now_ms();
    NewWebhook {
        route: route.name.clone(),
        account: route.account.clone(),
        kind,
        body_hash: webhook::body_hash(&body),
        body,
        dedup: true,
        request_id: current_request_id(),
        received_at_ms,
        deadline_ms: received_at_ms + hours_ms(app.settings.delivery.max_age_hours),
        order_keys: Vec::new(),
        refused: Vec::new(),
        finished: false,
    }
}

/// The records' identities (per-identity order), or the body hash when none can be found.
pub(super) fn order_keys(route: &Route, body: &serde_json::Value, hash: &[u8; 32]) -> Vec<String> {
    let keys = route.mapping.order_keys(body);
    if keys.is_empty() {
        vec![hex::encode(hash)]
    } else {
        keys
    }
}

/// Commits `row` and counts the outcome (`accepted_as` when stored). The commit runs in a task
/// of its own, so a client that goes away before reading its answer does not stop the count:
/// every committed webhook is counted.
pub(super) async fn commit(
    app: &AppState,
    row: NewWebhook,
    accepted_as: Intake,
) -> Result<Enqueued, QueueError> {
    let window = Duration::from_secs(app.settings.queue.dedup_window_secs);
    let app = app.clone();
    let task = tokio::spawn(async move {
        let route = row.route.clone();
        let outcome = app.queue.enqueue(row, window).await;
        // An error is counted by the caller, with its answer.
        match &outcome {
            Ok(Enqueued::Accepted(_)) => app.metrics.webhook(&route, accepted_as),
            Ok(Enqueued::Duplicate(_)) => app.metrics.webhook(&route, Intake::Duplicate),
            Err(_) => {}
        }
        outcome
    });
    task.await.map_err(|_| QueueError::Closed)?
}
