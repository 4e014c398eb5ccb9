//! `GET /openapi.json`: the OpenAPI document of this interface (`docs/openapi.json`, compiled
//! in), open to anyone like the health endpoints; and `ROUTES`, the list it documents.

use axum::Router;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::state::AppState;

pub const DOCUMENT: &str = include_str!("../../docs/openapi.json");

/// Every route the relay serves, as (method, path), whichever listener it is on. The OpenAPI
/// document (`docs/openapi.json`, served at `/openapi.json`) describes exactly these: a test
/// checks the document against this list, this list against the real router, and every
/// `.route(…)` under `src/http/` against this list, so a route cannot be added undocumented.
pub const ROUTES: &[(&str, &str)] = &[
    ("POST", "/webhooks/{route}"),
    ("POST", "/1/upload"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
    ("GET", "/openapi.json"),
    ("GET", "/admin/stats"),
    ("GET", "/admin/webhooks"),
    ("GET", "/admin/erasures"),
    ("POST", "/admin/erasures"),
    ("GET", "/admin/audit"),
    ("POST", "/admin/accounts/{name}/pause"),
    ("POST", "/admin/accounts/{name}/resume"),
    ("GET", "/admin/dead-letters"),
    ("POST", "/admin/dead-letters/replay"),
    ("DELETE", "/admin/dead-letters/{id}"),
    ("POST", "/admin/dead-letters/{id}/replay"),
    ("PUT", "/admin/dead-letters/{id}/body"),
    ("GET", "/console"),
    ("GET", "/console/console.css"),
    ("GET", "/console/sign-in"),
    ("POST", "/console/sign-in"),
    ("POST", "/console/sign-out"),
    ("POST", "/console/accounts/{name}/pause"),
    ("POST", "/console/accounts/{name}/resume"),
    ("GET", "/console/dead-letters"),
    ("POST", "/console/dead-letters/replay"),
    ("GET", "/console/dead-letters/{id}"),
    ("POST", "/console/dead-letters/{id}/reveal"),
    ("POST", "/console/dead-letters/{id}/replay"),
    ("POST", "/console/dead-letters/{id}/delete"),
    ("POST", "/console/dead-letters/{id}/body"),
    ("GET", "/console/webhooks"),
    ("GET", "/console/audit"),
    ("GET", "/console/erasures"),
];

pub fn router() -> Router<AppState> {
    Router::new().route("/openapi.json", get(document))
}

async fn document() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], DOCUMENT).into_response()
}

#[cfg(test)]
mod tests;
