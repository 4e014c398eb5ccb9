//! Health and metrics, through the router itself (no listener needed).

use axum::body::Body;
use axum::http::{Request, StatusCode};
use freshtap::queue::Queue;
use freshtap::state::AppState;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use crate::test_app::base_settings;

async fn state(token: CancellationToken) -> (AppState, tempfile::TempDir) {
    state_with(token, |_| {}).await
}

async fn state_with(
    token: CancellationToken,
    change: impl FnOnce(&mut freshtap::config::Settings),
) -> (AppState, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut settings = base_settings(dir.path(), "http://127.0.0.1:9", "");
    change(&mut settings);
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

fn contact_post(tag: &str) -> Request<Body> {
    Request::post("/webhooks/contacts")
        .header("X-Freshtap-Token", crate::test_app::TOKEN)
        .header("Content-Type", "application/json")
        .body(Body::from(crate::test_app::upload(tag)))
        .expect("request")
}

#[tokio::test]
async fn intake_sheds_load_with_503_and_retry_after_once_the_wait_runs_out() {
    let (state, _dir) = state_with(CancellationToken::new(), |s| s.server.max_wait_ms = 200).await;
    let held = state.admission.take_all().expect("all slots");
    let router = freshtap::http::router(state.clone(), true);
    let started = std::time::Instant::now();
    let shed = router
        .clone()
        .oneshot(contact_post("shed"))
        .await
        .expect("response");
    assert_eq!(shed.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        started.elapsed() >= std::time::Duration::from_millis(200),
        "it waited server.max_wait_ms for a slot first"
    );
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
    let (_, metrics) = get(&state, "/metrics").await;
    assert!(
        metrics.contains("freshtap_intake_waited_total 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("freshtap_webhooks_total{route=\"contacts\",outcome=\"overloaded\"} 1"),
        "{metrics}"
    );
    drop(held);
    assert_eq!(
        router
            .oneshot(contact_post("shed"))
            .await
            .expect("response")
            .status(),
        StatusCode::ACCEPTED
    );
}

#[tokio::test]
async fn a_webhook_that_finds_every_slot_taken_waits_for_one_and_is_stored() {
    let (state, _dir) = state(CancellationToken::new()).await;
    let held = state.admission.take_all().expect("all slots");
    let router = freshtap::http::router(state.clone(), true);
    let waiting = tokio::spawn(router.oneshot(contact_post("waits")));
    tokio::time::timeout(std::time::Duration::from_secs(5), async {
        while state.admission.waiting_kib() == 0 {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the webhook is in line for a slot");
    assert!(!waiting.is_finished(), "no answer while every slot is held");
    assert_eq!(state.queue.stats().await.expect("stats").pending, 0);
    drop(held);
    let answer = waiting.await.expect("task").expect("response");
    assert_eq!(answer.status(), StatusCode::ACCEPTED);
    assert_eq!(state.queue.stats().await.expect("stats").pending, 1);
}

#[tokio::test]
async fn with_no_room_to_wait_a_webhook_is_shed_at_once() {
    let (state, _dir) =
        state_with(CancellationToken::new(), |s| s.server.max_waiting_bytes = 0).await;
    let _held = state.admission.take_all().expect("all slots");
    let router = freshtap::http::router(state.clone(), true);
    let started = std::time::Instant::now();
    let shed = router
        .oneshot(contact_post("full"))
        .await
        .expect("response");
    assert_eq!(shed.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(1),
        "not after a wait"
    );
    let (_, metrics) = get(&state, "/metrics").await;
    assert!(
        !metrics.contains("freshtap_intake_waited_total"),
        "{metrics}"
    );
}
