//! `POST /webhooks/{route}` and the drop-in `POST /1/upload`: check, commit, then answer.

use std::time::{Duration, Instant};

use axum::body::{Body, to_bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::json;

use super::auth;
use super::error::{ApiError, current_request_id};
use crate::clock::{hours_ms, now_ms};
use crate::metrics::Intake;
use crate::queue::{Enqueued, NewWebhook};
use crate::routes::Route;
use crate::state::AppState;
use crate::webhook::{self, BodyKind};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/webhooks/{route}", post(route_webhook))
        .route("/1/upload", post(drop_in_upload))
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
        return unauthorized(&app, route, &headers);
    }
    let response = accept(&app, route, &headers, body).await;
    app.metrics.intake_time(started.elapsed());
    response
}

/// A Freshsales workflow set up as CleverTap's guide says (its headers, its payload) with
/// only the host changed: the passcode chooses the account.
async fn drop_in_upload(State(app): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let started = Instant::now();
    let account_id = headers
        .get("x-clevertap-account-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let found = app
        .accounts
        .by_account_id(account_id)
        .and_then(|a| Some((a, app.routes.upload(&a.name)?)));
    let Some((account, route)) = found else {
        app.metrics.webhook("_upload", Intake::Unauthorized);
        tracing::warn!(headers = %auth::header_names(&headers), "drop-in upload with an unknown account id");
        return ApiError::Unauthorized.into_response();
    };
    if !auth::passcode_ok(&headers, &account.passcode) {
        return unauthorized(&app, route, &headers);
    }
    let response = accept(&app, route, &headers, body).await;
    app.metrics.intake_time(started.elapsed());
    response
}

fn unauthorized(app: &AppState, route: &Route, headers: &HeaderMap) -> Response {
    app.metrics.webhook(&route.name, Intake::Unauthorized);
    // Header names only: a mistyped header name is the usual cause, values are secrets.
    tracing::warn!(route = %route.name, headers = %auth::header_names(headers), "webhook refused: missing or wrong token");
    ApiError::Unauthorized.into_response()
}

/// Reads, checks and stores one authenticated webhook; answers only after the commit.
async fn accept(app: &AppState, route: &Route, headers: &HeaderMap, body: Body) -> Response {
    match store(app, route, headers, body).await {
        Ok((outcome, response)) => {
            app.metrics.webhook(&route.name, outcome);
            response
        }
        Err(error) => {
            let outcome = match &error {
                ApiError::TooLarge(_) => Intake::TooLarge,
                ApiError::UnsupportedType(_) => Intake::UnsupportedType,
                ApiError::InvalidBody { .. } => Intake::InvalidBody,
                ApiError::Overloaded => Intake::Overloaded,
                _ => Intake::Unavailable,
            };
            app.metrics.webhook(&route.name, outcome);
            tracing::warn!(route = %route.name, error = %error, "webhook not accepted");
            error.into_response()
        }
    }
}

async fn store(
    app: &AppState,
    route: &Route,
    headers: &HeaderMap,
    body: Body,
) -> Result<(Intake, Response), ApiError> {
    if app.shutting_down() {
        return Err(ApiError::ShuttingDown);
    }
    // Held until the commit: past the bound, shed load now rather than queue in memory.
    let _slot = app
        .intake_slots
        .clone()
        .try_acquire_owned()
        .map_err(|_| ApiError::Overloaded)?;
    let limit = app.settings.server.max_body_bytes;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(ApiError::TooLarge(limit));
    }
    let bytes = to_bytes(body, limit)
        .await
        .map_err(|_| ApiError::TooLarge(limit))?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let kind = BodyKind::from_content_type(content_type, &bytes)
        .ok_or_else(|| ApiError::UnsupportedType(content_type.unwrap_or_default().to_owned()))?;
    let received_at_ms = now_ms();
    let mut row = NewWebhook {
        route: route.name.clone(),
        account: route.account.clone(),
        kind,
        body_hash: webhook::body_hash(&bytes),
        body: bytes.to_vec(),
        dedup: true,
        request_id: current_request_id(),
        received_at_ms,
        deadline_ms: received_at_ms + hours_ms(app.settings.delivery.max_age_hours),
        order_keys: Vec::new(),
        refused: Vec::new(),
        finished: false,
    };
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
        tracing::info!(route = %route.name, "Freshsales test webhook answered; not stored");
        return Ok((
            Intake::Test,
            (
                StatusCode::OK,
                Json(json!({"status": "test", "request_id": row.request_id})),
            )
                .into_response(),
        ));
    }
    row.order_keys = route.mapping.order_keys(&parsed.value);
    if row.order_keys.is_empty() {
        row.order_keys.push(hex::encode(row.body_hash));
    }
    let request_id = row.request_id.clone();
    let window = Duration::from_secs(app.settings.queue.dedup_window_secs);
    Ok(match app.queue.enqueue(row, window).await? {
        Enqueued::Accepted(id) => (
            Intake::Accepted,
            (
                StatusCode::ACCEPTED,
                Json(json!({"status": "accepted", "id": id, "request_id": request_id})),
            )
                .into_response(),
        ),
        Enqueued::Duplicate(id) => (
            Intake::Duplicate,
            (
                StatusCode::OK,
                Json(json!({"status": "duplicate", "id": id, "request_id": request_id})),
            )
                .into_response(),
        ),
    })
}
