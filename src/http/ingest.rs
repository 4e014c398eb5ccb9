//! What webhook intake and the drop-in share: a bounded body read that holds no slot while the
//! client drips, load shedding, the new row, its order keys, and a commit that is counted even
//! when the client leaves.

use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use http_body_util::{BodyExt, LengthLimitError, Limited};

use super::auth;
use super::error::{ApiError, current_request_id, note_shed};
use crate::admission::{Shed, Slot};
use crate::clock::{hours_ms, now_ms};
use crate::metrics::Intake;
use crate::queue::{Enqueued, NewWebhook, QueueError};
use crate::routes::Route;
use crate::state::AppState;
use crate::webhook::{self, BodyKind};

pub(super) fn unauthorized(app: &AppState, route: &str, headers: &HeaderMap) -> Response {
    app.metrics.webhook(route, Intake::Unauthorized);
    // Header names only: a mistyped header name is the usual cause, values are secrets.
    tracing::warn!(route = %route, headers = %auth::header_names(headers), "webhook refused: missing or wrong token");
    ApiError::Unauthorized.into_response()
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

/// What intake reads from the request head, owned: the head itself is let go before the body
/// is read and a slot waited for, since hyper's header values share the bytes of the
/// connection's read buffer, which a held head would keep from being reused.
pub(super) struct Head {
    pub content_length: Option<usize>,
    pub content_type: Option<String>,
}

impl Head {
    pub(super) fn of(headers: &HeaderMap) -> Self {
        let text = |name| headers.get(name).and_then(|v| v.to_str().ok());
        Self {
            content_length: text(header::CONTENT_LENGTH).and_then(|v| v.parse::<usize>().ok()),
            content_type: text(header::CONTENT_TYPE).map(str::to_owned),
        }
    }
}

/// Reads the whole body, at most `limit` bytes, before anything else is held: a client that
/// drips its body holds no intake slot meanwhile (the request timeout bounds the wait). Each
/// chunk is copied into one buffer (sized by `Content-Length`) as it arrives and let go, so a
/// large body is held once, not once in chunks and again joined.
pub(super) async fn read_body(
    app: &AppState,
    head: &Head,
    body: Body,
    limit: usize,
) -> Result<Vec<u8>, ApiError> {
    if app.shutting_down() {
        return Err(ApiError::ShuttingDown);
    }
    let declared = head.content_length;
    if declared.is_some_and(|n| n > limit) {
        return Err(ApiError::TooLarge(limit));
    }
    let mut body = Limited::new(body, limit);
    let mut read = Vec::with_capacity(declared.unwrap_or(0));
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|error| {
            if error.is::<LengthLimitError>() {
                ApiError::TooLarge(limit)
            } else {
                ApiError::BadRequest("the request body could not be read".into())
            }
        })?;
        if let Some(chunk) = frame.data_ref() {
            read.extend_from_slice(chunk);
        }
    }
    Ok(read)
}

/// One of the `server.max_concurrent_requests` slots for a body of `body_bytes`, held until
/// the commit: at once, or after a bounded wait in line (`admission`); past the bounds, shed
/// now (503 `overloaded`) rather than queue without bound in memory.
pub(super) async fn intake_slot(app: &AppState, body_bytes: usize) -> Result<Slot, ApiError> {
    let admitted = app.admission.admit(body_bytes).await;
    if matches!(&admitted, Ok(Slot { waited: true, .. }) | Err(Shed::Waited)) {
        app.metrics.intake_waited();
    }
    if admitted.is_err() {
        // One line per interval for them all: a line per shed webhook would add to the load.
        note_shed();
    }
    admitted.map_err(|_| ApiError::Overloaded)
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
    keys_or_hash(route.mapping.order_keys(body), hash)
}

/// `keys`, or the body hash when there are none.
pub(super) fn keys_or_hash(keys: Vec<String>, hash: &[u8; 32]) -> Vec<String> {
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
