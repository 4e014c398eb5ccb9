//! Health and metrics, through the router itself (no listener needed).

use axum::body::Body;
use axum::http::{Request, StatusCode};
use freshtap::queue::Queue;
use freshtap::state::AppState;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use crate::test_app::base_settings;

async fn state(token: CancellationToken) -> (AppState, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let settings = base_settings(dir.path(), "http://127.0.0.1:9", "");
    let queue = Queue::connect(&settings.queue).await.expect("queue");
    (AppState::new(settings, queue, token).expect("state"), dir)
}

async fn get(state: &AppState, path: &str) -> (StatusCode, String) {
    let router = freshtap::http::router(state.clone(), true);
    let response = router
        .oneshot(Request::get(path).body(Body::empty()).expect("request"))
        .await
        .expect("response");
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .expect("body");
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

#[tokio::test]
async fn readyz_turns_503_with_a_reason_once_shutdown_begins() {
    let token = CancellationToken::new();
    let (state, _dir) = state(token.clone()).await;
    assert_eq!(get(&state, "/readyz").await.0, StatusCode::OK);
    assert_eq!(get(&state, "/healthz").await.0, StatusCode::OK);
    token.cancel();
    let (status, body) = get(&state, "/readyz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(body.contains("shutting down"), "{body}");
    assert_eq!(
        get(&state, "/healthz").await.0,
        StatusCode::OK,
        "liveness is not readiness"
    );
}

#[tokio::test]
async fn metrics_expose_the_documented_series() {
    let (state, _dir) = state(CancellationToken::new()).await;
    let unknown = get(&state, "/webhooks/nope").await;
    assert_eq!(unknown.0, StatusCode::METHOD_NOT_ALLOWED);
    assert!(
        unknown.1.contains("\"method_not_allowed\""),
        "JSON envelope: {}",
        unknown.1
    );
    let router = freshtap::http::router(state.clone(), true);
    let request = Request::post("/webhooks/nope")
        .body(Body::from("{}"))
        .expect("request");
    assert_eq!(
        router.oneshot(request).await.expect("response").status(),
        StatusCode::NOT_FOUND
    );
    let (status, text) = get(&state, "/metrics").await;
    assert_eq!(status, StatusCode::OK);
    for series in [
        "freshtap_webhooks_total{route=\"_unknown\",outcome=\"unknown_route\"} 1",
        "freshtap_queue_rows{state=\"pending\"} 0",
        "freshtap_queue_oldest_pending_seconds 0",
    ] {
        assert!(text.contains(series), "missing {series} in\n{text}");
    }
}

#[tokio::test]
async fn intake_sheds_load_with_503_and_retry_after_when_saturated() {
    let (state, _dir) = state(CancellationToken::new()).await;
    let limit = state.settings.server.max_concurrent_requests;
    let held = state
        .intake_slots
        .clone()
        .try_acquire_many_owned(u32::try_from(limit).expect("fits"))
        .expect("all slots");
    let post = || {
        Request::post("/webhooks/contacts")
            .header("X-Freshtap-Token", crate::test_app::TOKEN)
            .header("Content-Type", "application/json")
            .body(Body::from(crate::test_app::upload("shed")))
            .expect("request")
    };
    let router = freshtap::http::router(state.clone(), true);
    let shed = router.clone().oneshot(post()).await.expect("response");
    assert_eq!(shed.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(shed.headers()["retry-after"], "1");
    let body = axum::body::to_bytes(shed.into_body(), 1 << 16)
        .await
        .expect("body");
    assert!(String::from_utf8_lossy(&body).contains("\"overloaded\""));
    assert_eq!(
        state.queue.stats().await.expect("stats").pending,
        0,
        "nothing half-stored"
    );
    drop(held);
    assert_eq!(
        router.oneshot(post()).await.expect("response").status(),
        StatusCode::ACCEPTED
    );
}
