//! Admin: dead letters — list (filtered, paged), replay one or by filter, delete, and replace
//! the body of an `invalid_body` (bounded, and only by a body that reads).

use axum::body::{Body, to_bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::dead_letter_json;
use super::privacy::{Who, audit};
use crate::http::error::ApiError;
use crate::http::extract::{Path, Query};
use crate::queue::{DeadCode, DeadLetterFilter, SetBody};
use crate::replay::replay;
use crate::state::AppState;
use crate::webhook::{self, BodyKind};

/// Dead letters replayed by filter are read in pages of this many.
const PAGE: usize = 1000;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/dead-letters", get(list))
        .route("/admin/dead-letters/replay", post(replay_matching))
        .route("/admin/dead-letters/{id}", axum::routing::delete(delete))
        .route("/admin/dead-letters/{id}/replay", post(replay_one))
        .route("/admin/dead-letters/{id}/body", put(set_body))
}

#[derive(Debug, Deserialize)]
struct ListQuery {
    route: Option<String>,
    code: Option<String>,
    limit: Option<usize>,
    after: Option<i64>,
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

async fn list(
    State(app): State<AppState>,
    Query(q): Query<ListQuery>,
) -> Result<Response, ApiError> {
    let limit = q.limit.unwrap_or(100).clamp(1, PAGE);
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

async fn set_body(
    State(app): State<AppState>,
    Who(actor): Who,
    Path(id): Path<i64>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let limit = app.settings.server.max_body_bytes;
    let body = to_bytes(body, limit)
        .await
        .map_err(|_| ApiError::TooLarge(limit))?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let kind = BodyKind::from_content_type(content_type, &body)
        .ok_or_else(|| ApiError::UnsupportedType(content_type.unwrap_or_default().to_owned()))?;
    // A fix that does not read is refused here rather than stored and found out at replay.
    webhook::parse(kind, &body).map_err(|error| ApiError::InvalidBody {
        message: error.message,
        dead_letter_id: None,
    })?;
    match app.queue.set_body(id, body.to_vec(), kind).await? {
        SetBody::Replaced => {
            tracing::info!(dead_letter = id, "invalid body replaced by an operator");
            audit(
                &app,
                actor,
                "set_body",
                format!("dead letter {id}"),
                "replaced".into(),
            )
            .await;
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
    Who(actor): Who,
    Path(id): Path<i64>,
) -> Result<Response, ApiError> {
    let letter = app
        .queue
        .dead_letter(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no dead letter {id}")))?;
    let report = replay(&app, vec![letter]).await?;
    let detail = format!("replayed {}", report.replayed);
    audit(&app, actor, "replay", format!("dead letter {id}"), detail).await;
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
    Who(actor): Who,
    Query(q): Query<ReplayQuery>,
) -> Result<Response, ApiError> {
    if q.route.is_none() && q.code.is_none() && !q.all {
        return Err(ApiError::BadRequest(
            "give route=, code= or all=true".into(),
        ));
    }
    let code = code_filter(q.code.as_deref())?;
    let mut letters = Vec::new();
    let mut after = None;
    loop {
        let filter = DeadLetterFilter {
            route: q.route.clone(),
            code,
            limit: PAGE,
            after,
        };
        let page = app.queue.dead_letters(filter).await?;
        after = page.last().map(|l| l.id);
        let done = page.len() < PAGE;
        letters.extend(page);
        if done {
            break;
        }
    }
    let report = replay(&app, letters).await?;
    let target = format!(
        "dead letters route={} code={}",
        q.route.as_deref().unwrap_or("*"),
        q.code.as_deref().unwrap_or("*")
    );
    let detail = format!("replayed {}", report.replayed);
    audit(&app, actor, "replay", target, detail).await;
    Ok(Json(report).into_response())
}

async fn delete(
    State(app): State<AppState>,
    Who(actor): Who,
    Path(id): Path<i64>,
) -> Result<Response, ApiError> {
    if app.queue.delete_dead_letter(id).await? {
        tracing::info!(dead_letter = id, "dead letter deleted by an operator");
        audit(
            &app,
            actor,
            "delete",
            format!("dead letter {id}"),
            "deleted".into(),
        )
        .await;
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Err(ApiError::NotFound(format!("no dead letter {id}")))
    }
}
