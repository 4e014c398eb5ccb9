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
use super::ingest::{Head, commit, intake_slot, keys_or_hash, new_row, outcome_of, read_body};
use crate::clevertap::answer::{error_envelope, unprocessed_entry, upload_answer_of};
use crate::mapping::OrderKeys;
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
    let head = Head::of(&headers);
    drop(headers);
    let response = match store(&app, route, &head, body).await {
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
    if !matches!(error, ApiError::Overloaded) {
        // Shed uploads are logged where they are shed, at most one line per interval.
        tracing::warn!(route = %route.name, error = %error, "upload not accepted");
    }
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
    head: &Head,
    body: Body,
) -> Result<Response, ApiError> {
    let limit = app.settings.server.max_upload_bytes;
    if let Some(length) = head.content_length.filter(|n| *n > limit) {
        if length <= limit.saturating_mul(DRAIN_FACTOR) {
            drain(body).await;
        }
        return Err(ApiError::TooLarge(limit));
    }
    let bytes = read_body(app, head, body, limit).await?;
    let _slot = intake_slot(app, bytes.len()).await?;
    // The body moves into the row.
    let mut row = new_row(app, route, BodyKind::Json, bytes);
    let received_at = row.received_at_ms / 1000;
    let assessed = match read_records(route, &row.body, received_at)? {
        Some(assessed) => assessed,
        None => {
            // CleverTap reads the body as JSON whatever it is declared as; a body that is not
            // JSON (even after the repair of raw Freshsales placeholders) is refused whole and
            // nothing is stored.
            let mut parsed = webhook::parse(BodyKind::Json, &row.body).map_err(|error| {
                ApiError::InvalidBody {
                    message: error.message,
                    dead_letter_id: None,
                }
            })?;
            records_of(&parsed.value)?;
            if parsed.repaired {
                app.metrics.body_repaired(&route.name);
            }
            let keys = route.mapping.order_keys(&parsed.value);
            let records = match parsed.value.get_mut("d").map(Value::take) {
                Some(Value::Array(records)) => records,
                _ => Vec::new(),
            };
            assess(route, records.into_iter(), received_at, Some(keys))
        }
    };
    if app.settings.mapping.detect_test_webhooks && assessed.test {
        app.metrics.webhook(&route.name, Intake::Test);
        tracing::info!(route = %route.name, "Freshsales test upload answered; not stored");
        let mut answer = upload_answer_of(assessed.records(), Vec::new());
        answer["test"] = Value::Bool(true);
        return Ok(Json(answer).into_response());
    }
    if assessed.records() == 0 {
        return Ok(Json(upload_answer_of(0, Vec::new())).into_response());
    }
    row.refused = dead_letters(&assessed.refusals);
    row.finished = row.refused.len() == assessed.records();
    row.dedup = assessed.dedup;
    let mut answer = upload_answer_of(assessed.records(), assessed.unprocessed);
    row.order_keys = keys_or_hash(assessed.keys, &row.body_hash);
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
        Some(records) => too_many(records.len()).map(|()| records.as_slice()),
        None => Err(ApiError::BadRequest("no array `d`".into())),
    }
}

fn too_many(records: usize) -> Result<(), ApiError> {
    if records <= MAX_RECORDS {
        return Ok(());
    }
    Err(ApiError::BadRequest(format!(
        "{records} records: CleverTap takes at most {MAX_RECORDS} per request"
    )))
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

/// What the answer and the row need of an upload's records, gathered one record at a time
/// (only the refused records are kept, for the answer).
struct Assessed {
    /// CleverTap's verdict on each record, in order: `None` when it would be taken.
    refusals: Vec<Option<(u16, String)>>,
    /// The answer's `unprocessed` entries.
    unprocessed: Vec<Value>,
    dedup: bool,
    /// The records' identities, for per-identity order.
    keys: Vec<String>,
    /// The one record is Freshsales' test record.
    test: bool,
}

impl Assessed {
    fn records(&self) -> usize {
        self.refusals.len()
    }
}

/// An upload read record by record from its stored bytes: `None` when the body does not read
/// that way (then it is parsed whole: repaired, or refused with the reason).
fn read_records(
    route: &Route,
    body: &[u8],
    received_at: i64,
) -> Result<Option<Assessed>, ApiError> {
    if !route.mapping.passes_uploads_through() {
        return Ok(None);
    }
    let Some(upload) = webhook::upload_records(body) else {
        return Ok(None);
    };
    too_many(upload.len())?;
    let assessed = assess(route, upload.values(), received_at, None);
    Ok((assessed.records() == upload.len()).then_some(assessed))
}

/// CleverTap's rules applied to each record in turn. `keys`: the records' order keys, or
/// `None` to take each record's first usable id.
fn assess(
    route: &Route,
    records: impl Iterator<Item = Value>,
    received_at: i64,
    keys: Option<Vec<String>>,
) -> Assessed {
    let mut by_record = keys.is_none().then(OrderKeys::default);
    let mut assessed = Assessed {
        refusals: Vec::new(),
        unprocessed: Vec::new(),
        dedup: true,
        keys: keys.unwrap_or_default(),
        test: false,
    };
    for (index, record) in records.enumerate() {
        assessed.dedup &= crate::mapping::record_dedup_safe(&record);
        if index == 0 {
            assessed.test = webhook::is_test_record(&record);
        }
        if let Some(keys) = &mut by_record
            && let Some(key) = crate::mapping::upload_order_key(&record)
        {
            keys.push(key);
        }
        // The answer echoes a refused record as it was sent, not as repaired.
        let refusal = route
            .mapping
            .judge_record(record.clone(), received_at)
            .err();
        if let Some(refused) = &refusal {
            let entry = unprocessed_entry(index, &record, refused.code, &refused.error);
            assessed.unprocessed.push(entry);
        }
        assessed
            .refusals
            .push(refusal.map(|refused| (refused.code, refused.error)));
    }
    if let Some(keys) = by_record {
        assessed.keys = keys.into_vec();
    }
    assessed.test &= assessed.records() == 1;
    assessed
}

#[cfg(test)]
mod props;
