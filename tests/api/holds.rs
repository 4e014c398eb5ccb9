//! Account holds as an operator and a load balancer see them: a pause outlives a restart and
//! holds every replica, an outage costs no attempts, a stop drains before it refuses.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::pg_support::Schema;
use crate::test_app::{TestApp, eventually, spawn_on, spawn_with, upload};

fn holds_of_kind(stats: &Value, kind: &str) -> Vec<Value> {
    stats["paused_accounts"]
        .as_array()
        .map(|holds| {
            holds
                .iter()
                .filter(|h| h["kind"] == kind)
                .cloned()
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn an_operator_pause_outlives_a_restart_until_resumed() {
    let app = spawn_with(|_| {}).await;
    let paused = app.admin(Method::POST, "/admin/accounts/main/pause").await;
    assert_eq!(paused.status(), StatusCode::OK);
    let accepted = app.post_webhook("contacts", &upload("after-restart")).await;
    assert_eq!(accepted.status(), StatusCode::ACCEPTED);
    let (clevertap, dir) = app.stop().await;

    let app = spawn_on(dir, clevertap, "", |_| {}).await;
    let stats = app.stats().await;
    assert_eq!(holds_of_kind(&stats, "manual").len(), 1, "{stats}");
    assert_eq!(stats["rows"]["pending"], 1);
    let nothing = app
        .clevertap
        .wait_for_requests(1, Duration::from_millis(1500))
        .await;
    assert!(
        nothing.is_err(),
        "a paused account sends nothing after a restart"
    );
    let resumed = app.admin(Method::POST, "/admin/accounts/main/resume").await;
    assert_eq!(resumed.status(), StatusCode::OK);
    app.clevertap
        .wait_for_accepted(1, Duration::from_secs(5))
        .await
        .expect("delivered after the resume");
    app.stop().await;
}

#[tokio::test]
async fn a_clevertap_outage_costs_no_attempts_and_recovery_sends_full_batches() {
    const ROWS: usize = 300;
    let app = spawn_with(|s| s.delivery.batch_max_records = 100).await;
    app.clevertap.faults().outage(true);
    let mut request_ids = Vec::new();
    for i in 0..ROWS {
        let response = app
            .post_webhook("contacts", &upload(&format!("o-{i}")))
            .await;
        assert_eq!(response.status(), StatusCode::ACCEPTED);
        let body: Value = response.json().await.expect("json");
        request_ids.push(body["request_id"].as_str().expect("request id").to_owned());
    }
    let hold = eventually(
        "the account held as unreachable after two probes",
        Duration::from_secs(15),
        || async {
            holds_of_kind(&app.stats().await, "unreachable")
                .pop()
                .filter(|h| h["probes"].as_u64() >= Some(2))
        },
    )
    .await;
    assert!(
        hold["reason"]
            .as_str()
            .is_some_and(|r| r.contains("connect")),
        "{hold}"
    );
    let ready = app
        .client
        .get(format!("{}/readyz", app.address))
        .send()
        .await
        .expect("readyz");
    assert_eq!(
        ready.status(),
        StatusCode::OK,
        "an outage of CleverTap is not this replica's"
    );

    app.clevertap.faults().outage(false);
    app.clevertap
        .wait_for_accepted(ROWS, Duration::from_secs(20))
        .await
        .expect("every webhook delivered after the outage");
    let requests = app.clevertap.stats().requests;
    assert!(
        requests <= (1 + ROWS / 100 + 1) as u64,
        "one probe, then full batches of 100, not one request per row: {requests} requests"
    );
    let stats = eventually("the hold lifted", Duration::from_secs(5), || async {
        let stats = app.stats().await;
        holds_of_kind(&stats, "unreachable")
            .is_empty()
            .then_some(stats)
    })
    .await;
    assert_eq!(stats["rows"]["dead"], 0);
    for request_id in [
        &request_ids[0],
        &request_ids[ROWS / 2],
        &request_ids[ROWS - 1],
    ] {
        let row = app
            .admin_json(&format!("/admin/webhooks?request_id={request_id}"))
            .await;
        assert_eq!(
            (row["state"].as_str(), row["attempts"].as_u64()),
            (Some("delivered"), Some(1)),
            "the outage cost the row no attempt: {row}"
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn a_stop_drains_readiness_first_while_webhooks_are_still_taken() {
    let app = spawn_with(|s| s.server.drain_secs = 30).await;
    app.shutdown.cancel();
    let ready = eventually(
        "readyz 503 while draining",
        Duration::from_secs(5),
        || async {
            let r = app
                .client
                .get(format!("{}/readyz", app.address))
                .send()
                .await
                .ok()?;
            (r.status() == StatusCode::SERVICE_UNAVAILABLE).then_some(r)
        },
    )
    .await;
    let body: Value = ready.json().await.expect("json");
    assert_eq!(body["reason"], "shutting down");
    let taken = app.post_webhook("contacts", &upload("during-drain")).await;
    assert_eq!(
        taken.status(),
        StatusCode::ACCEPTED,
        "the listener still serves while draining"
    );
    app.clevertap
        .wait_for_accepted(1, Duration::from_secs(5))
        .await
        .expect("and the worker still delivers");
    app.task.abort();
}

/// Two app instances on one PostgreSQL schema: replicas as deployed, in one process.
async fn two_replicas() -> (TestApp, TestApp, Schema) {
    let schema = Schema::create().await;
    let url = schema.url();
    let a = spawn_with({
        let url = url.clone();
        move |s| s.queue.url = url.into()
    })
    .await;
    let b = spawn_on(
        std::sync::Arc::new(tempfile::tempdir().expect("tempdir")),
        a.clevertap.clone(),
        "",
        move |s| s.queue.url = url.into(),
    )
    .await;
    (a, b, schema)
}

#[cfg_attr(
    not(freshtap_postgres),
    ignore = "needs FRESHTAP_TEST_DATABASE_URL (PostgreSQL)"
)]
#[tokio::test]
async fn a_pause_through_one_replica_holds_every_replica_and_either_resumes() {
    let (a, b, schema) = two_replicas().await;
    let paused = a.admin(Method::POST, "/admin/accounts/main/pause").await;
    assert_eq!(paused.status(), StatusCode::OK);
    assert_eq!(
        holds_of_kind(&b.stats().await, "manual").len(),
        1,
        "B sees A's pause"
    );
    let accepted = b.post_webhook("contacts", &upload("through-b")).await;
    assert_eq!(accepted.status(), StatusCode::ACCEPTED);
    let nothing = b
        .clevertap
        .wait_for_requests(1, Duration::from_millis(2500))
        .await;
    assert!(
        nothing.is_err(),
        "no replica sends while the account is paused"
    );
    let resumed = b.admin(Method::POST, "/admin/accounts/main/resume").await;
    assert_eq!(resumed.status(), StatusCode::OK);
    a.clevertap
        .wait_for_accepted(1, Duration::from_secs(5))
        .await
        .expect("delivered once resumed through the other replica");
    assert!(holds_of_kind(&a.stats().await, "manual").is_empty());
    b.stop().await;
    a.stop().await;
    drop(schema);
}
