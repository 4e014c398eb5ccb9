//! The admin API: stats, dead letters (list, fix, replay, delete), webhook lookup, pauses.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::auth;
use super::error::ApiError;
use crate::clock::{iso, now_ms};
use crate::queue::{DeadCode, DeadLetter, DeadLetterFilter, SetBody};
use crate::replay::replay;
use crate::state::AppState;
use crate::webhook::BodyKind;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/stats", get(stats))
        .route("/admin/dead-letters", get(list_dead_letters))
        .route("/admin/dead-letters/replay", post(replay_matching))
        .route(
            "/admin/dead-letters/{id}",
            axum::routing::delete(delete_dead_letter),
        )
        .route("/admin/dead-letters/{id}/replay", post(replay_one))
        .route("/admin/dead-letters/{id}/body", put(set_body))
        .route("/admin/webhooks", get(webhook_lookup))
        .route("/admin/accounts/{name}/pause", post(pause_account))
        .route("/admin/accounts/{name}/resume", post(resume_account))
}

/// With no admin token configured the admin API does not exist (404), never open.
fn authorize(app: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(admin) = &app.admin else {
        return Err(ApiError::NotFound(
            "the admin API is disabled (set auth.admin_token)".into(),
        ));
    };
    if auth::admin_ok(headers, admin) {
        Ok(())
    } else {
        tracing::warn!(headers = %auth::header_names(headers), "admin request refused");
        Err(ApiError::Unauthorized)
    }
}

fn dead_letter_json(letter: &DeadLetter) -> Value {
    json!({
        "id": letter.id,
        "row_id": letter.row_id,
        "record_index": letter.record_index,
        "route": letter.route,
        "account": letter.account,
        "code": letter.code,
        "reason": letter.reason,
        "attempts": letter.attempts,
        "request_id": letter.request_id,
        "received_at": iso(letter.received_at_ms),
        "dead_at": iso(letter.dead_at_ms),
        "content_type": letter.kind.as_str(),
        "body": String::from_utf8_lossy(&letter.body),
    })
}

async fn stats(State(app): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    authorize(&app, &headers)?;
    let stats = app.queue.stats().await?;
    let oldest = stats
        .oldest_pending_ms
        .map(|t| (now_ms() - t).max(0) / 1000);
    let paused: Vec<Value> = app
        .accounts
        .holds()
        .await?
        .into_iter()
        .map(|h| {
            json!({"account": h.account, "since": iso(h.since_ms), "reason": h.reason,
                "kind": h.kind, "probes": h.probes})
        })
        .collect();
    Ok(
        Json(json!({"rows": stats, "oldest_pending_seconds": oldest, "paused_accounts": paused}))
            .into_response(),
    )
}

#[derive(Debug, Deserialize)]
struct ListQuery {
    route: Option<String>,
    code: Option<String>,
    limit: Option<usize>,
    after: Option<i64>,
}

async fn list_dead_letters(
    State(app): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<ListQuery>,
) -> Result<Response, ApiError> {
    authorize(&app, &headers)?;
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let items = app
        .queue
        .dead_letters(DeadLetterFilter {
            route: q.route,
            code: code_filter(q.code.as_deref())?,
            limit,
            after: q.after,
        })
        .await?;
    let next_after = (items.len() == limit)
        .then(|| items.last().map(|l| l.id))
        .flatten();
    let items: Vec<Value> = items.iter().map(dead_letter_json).collect();
    Ok(Json(json!({"items": items, "next_after": next_after})).into_response())
}

/// A `code=` filter: CleverTap's number or one of freshtap's names.
fn code_filter(code: Option<&str>) -> Result<Option<DeadCode>, ApiError> {
    code.map(|text| {
        DeadCode::parse(text).ok_or_else(|| {
            ApiError::BadRequest(format!(
                "code {text:?} is neither a CleverTap code (e.g. 516) nor one of invalid_body, \
                 render_error, invalid_record, max_attempts, max_age"
            ))
        })
    })
    .transpose()
}

async fn webhook_lookup(
    State(app): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<std::collections::HashMap<String, String>>,
) -> Result<Response, ApiError> {
    authorize(&app, &headers)?;
    let request_id = q
        .get("request_id")
        .ok_or_else(|| ApiError::BadRequest("request_id is required".into()))?;
    let view = app
        .queue
        .webhook_by_request_id(request_id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no webhook with request id {request_id}")))?;
    let letters: Vec<Value> = view.dead_letters.iter().map(dead_letter_json).collect();
    Ok(Json(json!({
        "id": view.id, "route": view.route, "account": view.account, "state": view.state,
        "attempts": view.attempts, "request_id": view.request_id, "received_at": iso(view.received_at_ms),
        "delivered_records": view.delivered, "last_error": view.last_error, "dead_letters": letters,
    }))
    .into_response())
}

async fn set_body(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<i64>,
    body: Bytes,
) -> Result<Response, ApiError> {
    authorize(&app, &headers)?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let kind = BodyKind::from_content_type(content_type, &body)
        .ok_or_else(|| ApiError::UnsupportedType(content_type.unwrap_or_default().to_owned()))?;
    match app.queue.set_body(id, body.to_vec(), kind).await? {
        SetBody::Replaced => {
            tracing::info!(dead_letter = id, "invalid body replaced by an operator");
            Ok(Json(json!({"status": "replaced", "id": id})).into_response())
        }
        SetBody::NotFound => Err(ApiError::NotFound(format!("no dead letter {id}"))),
        SetBody::NotInvalidBody => Err(ApiError::Conflict(format!(
            "dead letter {id} is not an invalid_body; fix the template and replay instead"
        ))),
    }
}

async fn replay_one(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> Result<Response, ApiError> {
    authorize(&app, &headers)?;
    let letter = app
        .queue
        .dead_letter(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no dead letter {id}")))?;
    let report = replay(&app, vec![letter]).await?;
    Ok(Json(report).into_response())
}

#[derive(Debug, Deserialize)]
struct ReplayQuery {
    route: Option<String>,
    code: Option<String>,
    #[serde(default)]
    all: bool,
}

async fn replay_matching(
    State(app): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<ReplayQuery>,
) -> Result<Response, ApiError> {
    authorize(&app, &headers)?;
    if q.route.is_none() && q.code.is_none() && !q.all {
        return Err(ApiError::BadRequest(
            "give route=, code= or all=true".into(),
        ));
    }
    let mut letters = Vec::new();
    let mut after = None;
    loop {
        let page = app
            .queue
            .dead_letters(DeadLetterFilter {
                route: q.route.clone(),
                code: code_filter(q.code.as_deref())?,
                limit: 1000,
                after,
            })
            .await?;
        after = page.last().map(|l| l.id);
        let done = page.len() < 1000;
        letters.extend(page);
        if done {
            break;
        }
    }
    let report = replay(&app, letters).await?;
    Ok(Json(report).into_response())
}

async fn delete_dead_letter(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> Result<Response, ApiError> {
    authorize(&app, &headers)?;
    if app.queue.delete_dead_letter(id).await? {
        tracing::info!(dead_letter = id, "dead letter deleted by an operator");
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Err(ApiError::NotFound(format!("no dead letter {id}")))
    }
}

/// `POST /admin/accounts/{name}/pause` and `/resume`.
async fn set_paused(
    app: &AppState,
    headers: &HeaderMap,
    name: String,
    paused: bool,
) -> Result<Response, ApiError> {
    authorize(app, headers)?;
    if app.accounts.get(&name).is_none() {
        return Err(ApiError::NotFound(format!("no account {name}")));
    }
    if paused {
        app.accounts.pause(&name).await?;
    } else {
        app.accounts.resume(&name).await?;
    }
    Ok(Json(json!({"account": name, "paused": paused})).into_response())
}

async fn pause_account(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    set_paused(&app, &headers, name, true).await
}

async fn resume_account(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    set_paused(&app, &headers, name, false).await
}
