//! `POST /webhooks/{route}`: authenticate, read, check, commit, then answer.

use std::time::Instant;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::json;

use super::auth;
use super::error::ApiError;
use super::extract::Path;
use super::ingest::{
    Head, commit, intake_slot, new_row, order_keys, outcome_of, read_body, unauthorized,
};
use crate::metrics::Intake;
use crate::queue::Enqueued;
use crate::routes::Route;
use crate::state::AppState;
use crate::webhook::{self, BodyKind};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/webhooks/{route}", post(route_webhook))
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
    let head = Head::of(&headers);
    drop(headers);
    let response = match store(&app, route, &head, body).await {
        Ok(response) => response,
        Err(error) => refused(&app, &route.name, error),
    };
    app.metrics.intake_time(started.elapsed());
    response
}

/// Counts and logs an intake error, and answers it.
fn refused(app: &AppState, route: &str, error: ApiError) -> Response {
    app.metrics.webhook(route, outcome_of(&error));
    if !matches!(error, ApiError::Overloaded) {
        // Shed webhooks are logged where they are shed, at most one line per interval.
        tracing::warn!(route = %route, error = %error, "webhook not accepted");
    }
    error.into_response()
}

async fn store(
    app: &AppState,
    route: &Route,
    head: &Head,
    body: Body,
) -> Result<Response, ApiError> {
    let bytes = read_body(app, head, body, app.settings.server.max_body_bytes).await?;
    let _slot = intake_slot(app, bytes.len()).await?;
    let content_type = head.content_type.as_deref();
    let kind = BodyKind::from_content_type(content_type, &bytes)
        .ok_or_else(|| ApiError::UnsupportedType(content_type.unwrap_or_default().to_owned()))?;
    let parsed = webhook::parse(kind, &bytes);
    // The body moves into the row.
    let mut row = new_row(app, route, kind, bytes);
    let parsed = match parsed {
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
