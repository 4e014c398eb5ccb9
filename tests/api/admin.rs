//! The admin API: auth, dead-letter listing, fixing, replay and deletion.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::test_app::{ADMIN, contact, eventually, spawn_app, spawn_with, upload};

#[tokio::test]
async fn the_admin_api_wants_its_token_and_is_absent_without_one() {
    let app = spawn_app().await;
    let anonymous = app
        .client
        .get(format!("{}/admin/stats", app.address))
        .send()
        .await
        .expect("sent");
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let wrong = app
        .client
        .get(format!("{}/admin/stats", app.address))
        .bearer_auth("nope")
        .send()
        .await
        .expect("sent");
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let disabled = spawn_with(|s| s.auth.admin_token = None).await;
    let response = disabled
        .client
        .get(format!("{}/admin/stats", disabled.address))
        .bearer_auth(ADMIN)
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_dead_record_is_replayed_through_the_admin_api_once_clevertap_accepts_it() {
    let app = spawn_app().await;
    app.clevertap.faults().set_record_code("refused", 516);
    assert_eq!(
        app.post_webhook("contacts", &upload("refused"))
            .await
            .status(),
        StatusCode::ACCEPTED
    );
    let letter = eventually("the dead letter", Duration::from_secs(10), || async {
        let list = app.admin_json("/admin/dead-letters?code=516").await;
        list["items"]
            .as_array()
            .and_then(|items| items.first().cloned())
    })
    .await;
    app.clevertap.faults().set_record_code("refused", 0);
    let id = letter["id"].as_i64().expect("id");
    let replay = app
        .admin(Method::POST, &format!("/admin/dead-letters/{id}/replay"))
        .await;
    assert_eq!(replay.status(), StatusCode::OK);
    let report: Value = replay.json().await.expect("json");
    assert_eq!(report["replayed"], 1);
    assert_eq!(report["ids"], serde_json::json!([id]));
    let records = app
        .clevertap
        .wait_for_accepted(1, Duration::from_secs(10))
        .await
        .expect("replayed and delivered");
    assert_eq!(records[0]["identity"], "refused");
    let stats = eventually("row delivered", Duration::from_secs(5), || async {
        let s = app.stats().await;
        (s["rows"]["delivered"] == 1).then_some(s)
    })
    .await;
    assert_eq!(stats["rows"]["dead"], 0);
    assert_eq!(
        app.admin_json("/admin/dead-letters").await["items"],
        serde_json::json!([])
    );
}

#[tokio::test]
async fn an_invalid_body_is_fixed_replayed_and_delivered() {
    let app = spawn_app().await;
    let broken =
        "{\"contact_email\":\"fix.me@example.com\",\"contact_first_name\":\"Fix\" \"oops\"}";
    let response = app.post_webhook("contacts", broken).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.expect("json");
    let id = body["dead_letter_id"]
        .as_i64()
        .expect("dead letter id in the 400");
    let still_broken = app
        .admin(Method::POST, &format!("/admin/dead-letters/{id}/replay"))
        .await;
    let report: Value = still_broken.json().await.expect("json");
    assert_eq!(report["replayed"], 0, "an unreadable body is not replayed");
    assert_eq!(report["skipped"][0]["id"], id);

    let fixed = app
        .client
        .put(format!("{}/admin/dead-letters/{id}/body", app.address))
        .bearer_auth(ADMIN)
        .header("Content-Type", "application/json")
        .body(contact("fix.me@example.com"))
        .send()
        .await
        .expect("sent");
    assert_eq!(fixed.status(), StatusCode::OK);
    let replay = app
        .admin(Method::POST, "/admin/dead-letters/replay?code=invalid_body")
        .await;
    let report: Value = replay.json().await.expect("json");
    assert_eq!(report["replayed"], 1);
    let records = app
        .clevertap
        .wait_for_accepted(1, Duration::from_secs(10))
        .await
        .expect("delivered");
    assert_eq!(records[0]["identity"], "fix.me@example.com");
}

#[tokio::test]
async fn dead_letters_can_be_deleted_and_filters_are_required_for_bulk_replay() {
    let app = spawn_app().await;
    let response = app.post_webhook("contacts", "{not json").await;
    let id = response.json::<Value>().await.expect("json")["dead_letter_id"]
        .as_i64()
        .expect("id");
    let unfiltered = app.admin(Method::POST, "/admin/dead-letters/replay").await;
    assert_eq!(unfiltered.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        app.admin(Method::DELETE, &format!("/admin/dead-letters/{id}"))
            .await
            .status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.admin(Method::DELETE, &format!("/admin/dead-letters/{id}"))
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(app.stats().await["rows"]["dead"], 0);
}
