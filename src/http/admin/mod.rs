//! The admin API behind `Authorization: Bearer <admin_token>`: the token is checked first, for
//! every route, before any path, query or body is read. Without an admin token configured the
//! API does not exist (404), never open.

mod accounts;
mod dead_letters;
pub(crate) mod privacy;

use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::auth;
use super::error::ApiError;
use crate::clock::iso;
use crate::queue::DeadLetter;
use crate::state::AppState;

pub fn router(state: AppState) -> Router<AppState> {
    Router::new()
        .merge(dead_letters::router())
        .merge(accounts::router())
        .merge(privacy::router())
        .route_layer(middleware::from_fn_with_state(state, require_admin))
}

async fn require_admin(State(app): State<AppState>, request: Request, next: Next) -> Response {
    let Some(admin) = &app.admin else {
        return ApiError::NotFound("the admin API is disabled (set auth.admin_token)".into())
            .into_response();
    };
    if auth::admin_ok(request.headers(), admin) {
        next.run(request).await
    } else {
        tracing::warn!(headers = %auth::header_names(request.headers()), "admin request refused");
        ApiError::Unauthorized.into_response()
    }
}

/// A dead letter as the admin API shows it.
pub(crate) fn dead_letter_json(letter: &DeadLetter) -> Value {
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
