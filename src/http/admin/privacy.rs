//! Admin: erasure on request (`POST`/`GET /admin/erasures`), the audit log (`GET /admin/audit`),
//! and who did an admin action (credential name, client address, request id).

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts, State};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::clock::iso;
use crate::http::error::{ApiError, current_request_id};
use crate::http::extract::Query;
use crate::queue::{Actor, ErasureRecord, NewAudit};
use crate::state::AppState;

/// The admin API's one credential, by name (its value is never stored).
pub const ADMIN_CREDENTIAL: &str = "admin_token";
/// Longest page of the erasure and audit lists.
const PAGE: usize = 1000;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/erasures", get(list_erasures).post(create_erasure))
        .route("/admin/audit", get(list_audit))
}

/// Who is calling: the admin credential, the client address, the request id.
pub struct Who(pub Actor);

impl<S: Send + Sync> FromRequestParts<S> for Who {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let client = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or_else(|| "unknown".to_owned(), |c| c.0.ip().to_string());
        Ok(Self(Actor {
            credential: ADMIN_CREDENTIAL.into(),
            client,
            request_id: current_request_id(),
        }))
    }
}

/// Records an admin action; a failure to record is logged, never hides the action's answer.
pub async fn audit(app: &AppState, actor: Actor, action: &str, target: String, detail: String) {
    let entry = NewAudit {
        actor,
        action: action.into(),
        target,
        detail,
    };
    if let Err(error) = app.queue.audit(entry).await {
        tracing::error!(error = %error, action, "admin action not recorded in the audit log");
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ErasureRequest {
    identity: String,
    #[serde(default)]
    keep_pending: bool,
    #[serde(default)]
    propagate: bool,
    /// With `propagate`: the CleverTap accounts to delete the profile from (default: all).
    accounts: Option<Vec<String>>,
}

fn erasure_json(e: &ErasureRecord) -> Value {
    let deletions: Vec<Value> = e
        .deletions
        .iter()
        .map(|d| {
            json!({"account": d.account, "row_id": d.row_id,
                "state": d.state.map_or("purged", |s| s.as_str())})
        })
        .collect();
    json!({
        "id": e.id, "at": iso(e.at_ms), "credential": e.actor.credential, "client": e.actor.client,
        "request_id": e.actor.request_id, "identity_hash": e.identity_hash,
        "keep_pending": e.keep_pending, "propagate": e.propagate, "removed": e.removed,
        "deletions": deletions,
    })
}

async fn create_erasure(
    State(app): State<AppState>,
    Who(actor): Who,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let request: ErasureRequest = serde_json::from_slice(&body).map_err(|error| {
        ApiError::BadRequest(format!(
            "expected {{\"identity\": \"…\", \"keep_pending\": false, \"propagate\": false, \"accounts\": [\"…\"]}}: {error}"
        ))
    })?;
    if request.identity.trim().is_empty() {
        return Err(ApiError::BadRequest("identity is empty".into()));
    }
    let propagate_to = match (request.propagate, request.accounts) {
        (true, named) => crate::erasure::accounts(&app, named).map_err(ApiError::BadRequest)?,
        (false, None) => Vec::new(),
        (false, Some(_)) => {
            return Err(ApiError::BadRequest(
                "accounts is only read with propagate=true".into(),
            ));
        }
    };
    let erasure = crate::erasure::Request {
        identity: request.identity,
        keep_pending: request.keep_pending,
        propagate_to,
    };
    let record = crate::erasure::erase(&app, erasure, actor).await?;
    Ok(Json(erasure_json(&record)).into_response())
}

#[derive(Debug, Deserialize)]
struct PageQuery {
    limit: Option<usize>,
    before: Option<i64>,
}

async fn list_erasures(
    State(app): State<AppState>,
    Query(q): Query<PageQuery>,
) -> Result<Response, ApiError> {
    let limit = q.limit.unwrap_or(100).clamp(1, PAGE);
    let items = app.queue.erasures(limit, q.before).await?;
    let next_before = (items.len() == limit)
        .then(|| items.last().map(|e| e.id))
        .flatten();
    let items: Vec<Value> = items.iter().map(erasure_json).collect();
    Ok(Json(json!({"items": items, "next_before": next_before})).into_response())
}

async fn list_audit(
    State(app): State<AppState>,
    Query(q): Query<PageQuery>,
) -> Result<Response, ApiError> {
    let limit = q.limit.unwrap_or(100).clamp(1, PAGE);
    let items = app.queue.audit_log(limit, q.before).await?;
    let next_before = (items.len() == limit)
        .then(|| items.last().map(|e| e.id))
        .flatten();
    let items: Vec<Value> = items
        .iter()
        .map(|e| {
            json!({"id": e.id, "at": iso(e.at_ms), "credential": e.actor.credential,
                "client": e.actor.client, "request_id": e.actor.request_id, "action": e.action,
                "target": e.target, "detail": e.detail})
        })
        .collect();
    Ok(Json(json!({"items": items, "next_before": next_before})).into_response())
}
