//! Admin: the queue at a glance (`/admin/stats`), one webhook by request id, account pauses.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::dead_letter_json;
use super::privacy::{Who, audit};
use crate::clock::{iso, now_ms};
use crate::http::error::ApiError;
use crate::http::extract::{Path, Query};
use crate::queue::{Actor, WebhookView};
use crate::state::AppState;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/stats", get(stats))
        .route("/admin/webhooks", get(webhook_lookup))
        .route("/admin/accounts/{name}/pause", post(pause_account))
        .route("/admin/accounts/{name}/resume", post(resume_account))
}

async fn stats(State(app): State<AppState>) -> Result<Response, ApiError> {
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
struct Lookup {
    request_id: Option<String>,
    identity: Option<String>,
}

async fn webhook_lookup(
    State(app): State<AppState>,
    Query(q): Query<Lookup>,
) -> Result<Response, ApiError> {
    let request_id = match (q.request_id, q.identity) {
        (Some(request_id), None) => request_id,
        (None, Some(identity)) => return held_for(&app, &identity).await,
        _ => {
            return Err(ApiError::BadRequest(
                "give exactly one of request_id= and identity=".into(),
            ));
        }
    };
    let view = app
        .queue
        .webhook_by_request_id(&request_id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no webhook with request id {request_id}")))?;
    Ok(Json(view_json(&view)).into_response())
}

fn view_json(view: &WebhookView) -> Value {
    let letters: Vec<Value> = view.dead_letters.iter().map(dead_letter_json).collect();
    json!({
        "id": view.id, "route": view.route, "account": view.account, "state": view.state,
        "attempts": view.attempts, "request_id": view.request_id, "received_at": iso(view.received_at_ms),
        "finished_at": view.finished_at_ms.map(iso),
        "body_dropped_at": view.body_dropped_at_ms.map(iso),
        "delivered_records": view.delivered, "last_error": view.last_error, "dead_letters": letters,
    })
}

/// Rows answered for one identity at most (an access request's export).
const HELD_LIMIT: usize = 1000;

/// `GET /admin/webhooks?identity=…`: every row and dead letter held for that person.
async fn held_for(app: &AppState, identity: &str) -> Result<Response, ApiError> {
    let scan = app.settings.queue.erasure_scan_rows;
    let views = app.queue.held_for(identity, HELD_LIMIT, scan).await?;
    let items: Vec<Value> = views.iter().map(view_json).collect();
    Ok(Json(json!({"items": items, "truncated": items.len() == HELD_LIMIT})).into_response())
}

/// `POST /admin/accounts/{name}/pause` and `/resume`: for every replica, until undone.
async fn set_paused(
    app: &AppState,
    actor: Actor,
    name: String,
    paused: bool,
) -> Result<Response, ApiError> {
    if app.accounts.get(&name).is_none() {
        return Err(ApiError::NotFound(format!("no account {name}")));
    }
    if paused {
        app.accounts.pause(&name).await?;
    } else {
        app.accounts.resume(&name).await?;
    }
    let action = if paused { "pause" } else { "resume" };
    audit(app, actor, action, format!("account {name}"), "done".into()).await;
    Ok(Json(json!({"account": name, "paused": paused})).into_response())
}

async fn pause_account(
    State(app): State<AppState>,
    Who(actor): Who,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    set_paused(&app, actor, name, true).await
}

async fn resume_account(
    State(app): State<AppState>,
    Who(actor): Who,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    set_paused(&app, actor, name, false).await
}
