//! The same app on the PostgreSQL queue: delivery, outage recovery, dead letters and replay.
//!
//! Needs FRESHTAP_TEST_DATABASE_URL (a fresh schema per test); ignored without it.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::pg_support::Schema;
use crate::test_app::{TestApp, accepted_identities, eventually, spawn_with, upload};

/// The app, and its schema. Stop the app (`stop_pg`) before the schema goes: dropping the
/// schema blocks the test's thread until every transaction on it ends.
async fn spawn_pg() -> (TestApp, Schema) {
    let schema = Schema::create().await;
    let url = schema.url();
    let app = spawn_with(move |s| s.queue.url = url.into()).await;
    (app, schema)
}

async fn stop_pg(app: TestApp, schema: Schema) {
    app.stop().await;
    drop(schema);
}

#[cfg_attr(
    not(freshtap_postgres),
    ignore = "needs FRESHTAP_TEST_DATABASE_URL (PostgreSQL)"
)]
#[tokio::test]
async fn webhooks_are_delivered_and_duplicates_refused_on_postgres() {
    let (app, schema) = spawn_pg().await;
    let first = app.post_webhook("contacts", &upload("pg-1")).await;
    assert_eq!(first.status(), StatusCode::ACCEPTED);
    let again = app.post_webhook("contacts", &upload("pg-1")).await;
    assert_eq!(again.status(), StatusCode::OK);
    let records = app
        .clevertap
        .wait_for_accepted(1, Duration::from_secs(10))
        .await
        .expect("delivered");
    assert_eq!(records[0]["identity"], "pg-1");
    let ready = app
        .client
        .get(format!("{}/readyz", app.address))
        .send()
        .await
        .expect("readyz");
    assert_eq!(ready.status(), StatusCode::OK);
    stop_pg(app, schema).await;
}

#[cfg_attr(
    not(freshtap_postgres),
    ignore = "needs FRESHTAP_TEST_DATABASE_URL (PostgreSQL)"
)]
#[tokio::test]
async fn clevertap_down_then_back_loses_nothing_on_postgres() {
    let (app, schema) = spawn_pg().await;
    app.clevertap.faults().outage(true);
    for i in 0..15 {
        assert_eq!(
            app.post_webhook("contacts", &upload(&format!("pg-down-{i}")))
                .await
                .status(),
            StatusCode::ACCEPTED
        );
    }
    eventually("a failed attempt", Duration::from_secs(10), || async {
        let m = app.metrics_text().await;
        m.contains("outcome=\"retry\"").then_some(())
    })
    .await;
    app.clevertap.faults().outage(false);
    app.clevertap
        .wait_for_accepted(15, Duration::from_secs(20))
        .await
        .expect("all delivered");
    let mut got = accepted_identities(&app.clevertap);
    got.sort();
    got.dedup();
    assert_eq!(got.len(), 15);
    assert_eq!(
        app.clevertap.stats().records_accepted,
        15,
        "nothing doubled"
    );
    stop_pg(app, schema).await;
}

#[cfg_attr(
    not(freshtap_postgres),
    ignore = "needs FRESHTAP_TEST_DATABASE_URL (PostgreSQL)"
)]
#[tokio::test]
async fn a_dead_record_is_replayed_on_postgres() {
    let (app, schema) = spawn_pg().await;
    app.clevertap.faults().set_record_code("pg-refused", 516);
    assert_eq!(
        app.post_webhook("contacts", &upload("pg-refused"))
            .await
            .status(),
        StatusCode::ACCEPTED
    );
    let letter = eventually("a dead letter", Duration::from_secs(10), || async {
        let list = app.admin_json("/admin/dead-letters").await;
        list["items"]
            .as_array()
            .and_then(|items| items.first().cloned())
    })
    .await;
    assert_eq!(letter["code"], "516");
    app.clevertap.faults().set_record_code("pg-refused", 0);
    let id = letter["id"].as_i64().expect("id");
    let report: Value = app
        .admin(Method::POST, &format!("/admin/dead-letters/{id}/replay"))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(report["replayed"], 1);
    app.clevertap
        .wait_for_accepted(1, Duration::from_secs(10))
        .await
        .expect("replayed");
    stop_pg(app, schema).await;
}
