//! Privacy through the admin API, on both queue backends: what is held for one person, an
//! erasure that removes it and is recorded without the identity in clear, and the audit log.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::pg_support::Schema;
use crate::test_app::{ADMIN, TestApp, contact, eventually, spawn_app, spawn_with};

const PERSON: &str = "amelia.hart@example.com";
const OTHER: &str = "bob.stone@example.com";

async fn held(app: &TestApp, identity: &str) -> Vec<Value> {
    let path = format!("/admin/webhooks?identity={identity}");
    app.admin_json(&path).await["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// Two webhooks of one person and one of another, delivered; the person is listed, erased,
/// and gone; the other stays; the erasure and a pause are in the audit log.
async fn erasure_scenario(app: &TestApp) {
    for body in [contact(PERSON), contact(OTHER)] {
        assert_eq!(
            app.post_webhook("contacts", &body).await.status(),
            StatusCode::ACCEPTED
        );
    }
    let again = contact(PERSON).replace("Amelia", "Amy");
    assert_eq!(
        app.post_webhook("contacts", &again).await.status(),
        StatusCode::ACCEPTED
    );
    app.clevertap
        .wait_for_accepted(3, Duration::from_secs(10))
        .await
        .expect("delivered");
    eventually("rows delivered", Duration::from_secs(10), || async {
        (app.stats().await["rows"]["delivered"] == 3).then_some(())
    })
    .await;

    // Access: matched on the lowercased identity, whatever case the request uses.
    let listed = held(app, "Amelia.Hart@Example.com").await;
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert!(listed.iter().all(|row| row["state"] == "delivered"));

    let refused = app.erase(json!({"identity": "  "})).await;
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);

    let answer = app.erase(json!({"identity": PERSON})).await;
    assert_eq!(answer.status(), StatusCode::OK);
    let record: Value = answer.json().await.expect("json");
    assert_eq!(record["removed"]["delivered"], 2, "{record}");
    assert_eq!(record["credential"], "admin_token");
    let hash = record["identity_hash"].as_str().expect("hash");
    assert!(hash.len() >= 32 && !hash.contains("amelia"), "{hash}");

    assert!(held(app, PERSON).await.is_empty(), "nothing left");
    assert_eq!(held(app, OTHER).await.len(), 1, "the other person stays");
    assert_eq!(app.stats().await["rows"]["delivered"], 1);

    let erasures = app.admin(Method::GET, "/admin/erasures").await;
    assert_eq!(erasures.status(), StatusCode::OK);
    let text = erasures.text().await.expect("text");
    assert!(text.contains(hash), "{text}");
    assert!(
        !text.to_lowercase().contains(PERSON),
        "never the identity in clear: {text}"
    );

    let paused = app.admin(Method::POST, "/admin/accounts/main/pause").await;
    assert!(paused.status().is_success(), "{}", paused.status());
    let audit = app.admin(Method::GET, "/admin/audit").await;
    assert_eq!(audit.status(), StatusCode::OK);
    let text = audit.text().await.expect("text");
    let audit: Value = serde_json::from_str(&text).expect("json");
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert!(actions.contains(&"pause"), "{actions:?}");
    assert!(
        actions.iter().any(|a| a.contains("eras")),
        "the erasure is audited: {actions:?}"
    );
    assert!(!text.to_lowercase().contains(PERSON), "{text}");
    assert!(!text.contains(ADMIN), "never the token's value: {text}");
}

#[tokio::test]
async fn one_persons_data_is_listed_erased_and_the_erasure_recorded() {
    let app = spawn_app().await;
    erasure_scenario(&app).await;
}

#[cfg_attr(
    not(freshtap_postgres),
    ignore = "needs FRESHTAP_TEST_DATABASE_URL (PostgreSQL)"
)]
#[tokio::test]
async fn one_persons_data_is_listed_erased_and_the_erasure_recorded_on_postgres() {
    let schema = Schema::create().await;
    let url = schema.url();
    let app = spawn_with(move |s| s.queue.url = url.into()).await;
    erasure_scenario(&app).await;
    app.stop().await;
    drop(schema);
}

/// `freshtap_purged_total{state="body"}` in a metrics text (0 before the first purge).
fn purged_bodies(metrics: &str) -> u64 {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix("freshtap_purged_total{state=\"body\"} "))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or(0)
}

/// Minimisation through the running app: with `delivered_body_retention_hours = 0`, the
/// housekeeping pass (of the first run, or at the next start) empties a delivered row's body, keeps its metadata,
/// counts it in `freshtap_purged_total{state="body"}`; a dead letter keeps its body.
#[tokio::test]
async fn housekeeping_drops_delivered_bodies_and_keeps_their_metadata() {
    let retention = |s: &mut freshtap::config::Settings| s.queue.delivered_body_retention_hours = 0;
    let app = spawn_with(retention).await;
    app.clevertap.faults().set_record_code(OTHER, 516);
    let mut ids = Vec::new();
    for email in [PERSON, OTHER] {
        let answer = app.post_webhook("contacts", &contact(email)).await;
        assert_eq!(answer.status(), StatusCode::ACCEPTED);
        let body: Value = answer.json().await.expect("json");
        ids.push(body["request_id"].as_str().expect("request id").to_owned());
    }
    eventually("both settled", Duration::from_secs(10), || async {
        let rows = app.stats().await["rows"].clone();
        (rows["delivered"] == 1 && rows["dead"] == 1).then_some(())
    })
    .await;
    // A pass of this first run may already have dropped it (and counted it here).
    let counted_before = purged_bodies(&app.metrics_text().await);
    let (clevertap, dir) = app.stop().await;
    let app = crate::test_app::spawn_on(dir, clevertap, "", retention).await;
    let delivered = format!("/admin/webhooks?request_id={}", ids[0]);
    let row = eventually("the body dropped", Duration::from_secs(10), || async {
        let row = app.admin_json(&delivered).await;
        row["body_dropped_at"].is_string().then_some(row)
    })
    .await;
    assert_eq!(row["state"], "delivered", "metadata kept: {row}");
    assert_eq!(row["route"], "contacts");
    // Counted once, by the pass that dropped it, once it returns (just after its commit).
    eventually("the drop counted", Duration::from_secs(10), || async {
        let counted = counted_before + purged_bodies(&app.metrics_text().await);
        (counted == 1).then_some(())
    })
    .await;
    let letters = app.admin_json("/admin/dead-letters").await;
    let body = letters["items"][0]["body"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        body.contains(OTHER),
        "a dead letter keeps its body: {letters}"
    );
    app.stop().await;
}
