//! The simulator's routes: `/1/upload`, `/1/delete/profiles.json`, the `/_sim/*` inspection and
//! control endpoints, 404 JSON.

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};

use crate::state::Inner;
use crate::{delete, sim_api, upload};

/// The simulator's routes.
pub fn router(inner: Arc<Inner>) -> Router {
    Router::new()
        .route("/1/upload", post(upload::upload))
        .route("/1/delete/profiles.json", post(delete::delete_profiles))
        .route("/_sim/stats", get(sim_api::stats))
        .route("/_sim/profiles/{identity}", get(sim_api::profile))
        .route("/_sim/events", get(sim_api::events))
        .route("/_sim/requests", get(sim_api::requests))
        .route("/_sim/deletions", get(sim_api::deletions))
        .route(
            "/_sim/faults",
            post(sim_api::set_faults).get(sim_api::get_faults),
        )
        .route("/_sim/reset", post(sim_api::reset))
        .fallback(sim_api::not_found)
        .layer(DefaultBodyLimit::disable())
        .with_state(inner)
}
