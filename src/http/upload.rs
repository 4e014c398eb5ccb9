//! The drop-in `POST /1/upload`: CleverTap's Upload API answered as CleverTap answers it, after
//! the commit, so any CleverTap client (or a Freshsales workflow set up as CleverTap's guide says)
//! changes only the host. Records CleverTap's rules refuse are answered in `unprocessed` and kept
//! as dead letters; the rest are stored and delivered like any webhook.

use std::time::Instant;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::Value;

use super::auth;
use super::error::ApiError;
use super::ingest::{commit, intake_slot, new_row, order_keys, outcome_of, read_body};
use crate::clevertap::answer::{error_envelope, upload_answer};
use crate::metrics::Intake;
use crate::queue::{DeadCode, Enqueued, NewDeadLetter};
use crate::routes::Route;
use crate::state::AppState;
use crate::webhook::{self, BodyKind};

/// CleverTap takes at most this many records per request.
const MAX_RECORDS: usize = 1000;
/// A body declared over `max_upload_bytes` but within this many times it is read and thrown
/// away before the 413, so that a client still writing it reads the answer instead of a reset
/// connection (CleverTap's Node library reports a reset as a bare "error"). Bounded in time by
/// `request_timeout_secs`; larger bodies are answered at once.
const DRAIN_FACTOR: usize = 4;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/1/upload", post(upload))
        .layer(axum::extract::DefaultBodyLimit::disable())
}

async fn upload(State(app): State<AppState>, headers: HeaderMap, body: Body) -> Response {
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
        return envelope(StatusCode::UNAUTHORIZED, "Account ID is not valid");
    };
    if !auth::passcode_ok(&headers, &account.passcode) {
        super::ingest::unauthorized(&app, &route.name, &headers);
        return envelope(StatusCode::UNAUTHORIZED, "Invalid Credentials");
    }
    let response = match store(&app, route, &headers, body).await {
        Ok(response) => response,
        Err(error) => refuse(&app, route, &error),
    };
    app.metrics.intake_time(started.elapsed());
    response
}

/// CleverTap's envelope for what it refuses as a whole (`{"status":"fail","error","code"}`).
fn envelope(status: StatusCode, error: &str) -> Response {
    let mut response = (status, Json(error_envelope(status.as_u16(), error))).into_response();
    if status == StatusCode::SERVICE_UNAVAILABLE {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    response
}

fn refuse(app: &AppState, route: &Route, error: &ApiError) -> Response {
    app.metrics.webhook(&route.name, outcome_of(error));
    tracing::warn!(route = %route.name, error = %error, "upload not accepted");
    match error {
        ApiError::TooLarge(_) => envelope(StatusCode::PAYLOAD_TOO_LARGE, "Request too large"),
        ApiError::InvalidBody { .. } | ApiError::BadRequest(_) => {
            envelope(StatusCode::BAD_REQUEST, "Malformed request")
        }
        _ => envelope(
            StatusCode::SERVICE_UNAVAILABLE,
            "Service temporarily unavailable, retry shortly",
        ),
    }
}

async fn store(
    app: &AppState,
    route: &Route,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let limit = app.settings.server.max_upload_bytes;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if let Some(length) = declared.filter(|n| *n > limit) {
        if length <= limit.saturating_mul(DRAIN_FACTOR) {
            drain(body).await;
        }
        return Err(ApiError::TooLarge(limit));
    }
    let bytes = read_body(app, headers, body, limit).await?;
    let _slot = intake_slot(app)?;
    // CleverTap reads the body as JSON whatever it is declared as; a body that is not JSON (even
    // after the repair of raw Freshsales placeholders) is refused whole and nothing is stored.
    let parsed = webhook::parse(BodyKind::Json, &bytes).map_err(|error| ApiError::InvalidBody {
        message: error.message,
        dead_letter_id: None,
    })?;
    let records = records_of(&parsed.value)?;
    if parsed.repaired {
        app.metrics.body_repaired(&route.name);
    }
    if app.settings.mapping.detect_test_webhooks && webhook::is_test_payload(&parsed.value) {
        app.metrics.webhook(&route.name, Intake::Test);
        tracing::info!(route = %route.name, "Freshsales test upload answered; not stored");
        let mut answer = upload_answer(records, &[]);
        answer["test"] = Value::Bool(true);
        return Ok(Json(answer).into_response());
    }
    if records.is_empty() {
        return Ok(Json(upload_answer(records, &[])).into_response());
    }
    // The body moves into the row (no copy: the read buffer is not shared).
    let mut row = new_row(app, route, BodyKind::Json, Vec::from(bytes));
    let refusals = judge(route, &parsed.value, row.received_at_ms / 1000);
    row.refused = dead_letters(&refusals);
    row.finished = row.refused.len() == records.len();
    row.dedup = crate::mapping::dedup_safe(&parsed.value);
    row.order_keys = order_keys(route, &parsed.value, &row.body_hash);
    let mut answer = upload_answer(records, &refusals);
    // The parsed records (several times the body's size) are not held through the commit.
    drop(parsed);
    let request_id = row.request_id.clone();
    let counted_as = if row.finished {
        Intake::Refused
    } else {
        Intake::Accepted
    };
    let enqueued = commit(app, row, counted_as).await?;
    let (id, duplicate) = match enqueued {
        Enqueued::Accepted(id) => (id, false),
        Enqueued::Duplicate(id) => (id, true),
    };
    answer["id"] = id.into();
    answer["request_id"] = request_id.into();
    if duplicate {
        answer["duplicate"] = Value::Bool(true);
    }
    Ok(Json(answer).into_response())
}

/// Reads a body to its end, keeping nothing (its length was checked against the drain cap).
async fn drain(mut body: Body) {
    use http_body_util::BodyExt;
    while let Some(Ok(_)) = body.frame().await {}
}

/// The records of `{"d":[…]}`; CleverTap refuses a body without them, or with too many.
fn records_of(body: &Value) -> Result<&[Value], ApiError> {
    match body.get("d").and_then(Value::as_array) {
        Some(records) if records.len() <= MAX_RECORDS => Ok(records),
        Some(records) => Err(ApiError::BadRequest(format!(
            "{} records: CleverTap takes at most {MAX_RECORDS} per request",
            records.len()
        ))),
        None => Err(ApiError::BadRequest("no array `d`".into())),
    }
}

/// The refused records as dead letters: CleverTap's code and the text its answer carries.
fn dead_letters(refusals: &[Option<(u16, String)>]) -> Vec<NewDeadLetter> {
    refusals
        .iter()
        .enumerate()
        .filter_map(|(index, refusal)| {
            let (code, error) = refusal.as_ref()?;
            Some(NewDeadLetter {
                record_index: u32::try_from(index).ok(),
                code: DeadCode::Refused(*code),
                reason: format!("{error}Skipped record number : {}", index + 1),
            })
        })
        .collect()
}

/// CleverTap's verdict on each record, by CleverTap's rules: `None` when it would be taken.
/// Judged one record at a time: the repaired records are not kept.
fn judge(route: &Route, body: &Value, received_at: i64) -> Vec<Option<(u16, String)>> {
    route.mapping.judged(body, received_at, |judged| {
        judged.err().map(|refused| (refused.code, refused.error))
    })
}

#[cfg(test)]
mod props;
