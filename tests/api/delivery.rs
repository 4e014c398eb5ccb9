//! Delivery: partial answers, outages, 429 storms, bisection, per-identity order.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::test_app::{accepted_identities, eventually, spawn_app, spawn_with, upload};

const WAIT: Duration = Duration::from_secs(10);

/// Pauses delivery, posts every body, resumes: the bodies then leave in one batch.
async fn post_as_one_batch(app: &crate::test_app::TestApp, bodies: &[String]) {
    assert_eq!(
        app.admin(Method::POST, "/admin/accounts/main/pause")
            .await
            .status(),
        StatusCode::OK
    );
    for body in bodies {
        assert_eq!(
            app.post_webhook("contacts", body).await.status(),
            StatusCode::ACCEPTED
        );
    }
    assert_eq!(
        app.admin(Method::POST, "/admin/accounts/main/resume")
            .await
            .status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_refused_record_goes_dead_with_its_code_and_the_others_are_delivered_once() {
    let app = spawn_app().await;
    app.clevertap.faults().set_record_code("bad-phone", 516);
    let bodies: Vec<String> = ["ok-1", "bad-phone", "ok-2"]
        .iter()
        .map(|id| upload(id))
        .collect();
    post_as_one_batch(&app, &bodies).await;
    let dead = eventually("a dead letter", WAIT, || async {
        let list = app.admin_json("/admin/dead-letters").await;
        list["items"]
            .as_array()
            .filter(|items| !items.is_empty())
            .cloned()
    })
    .await;
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0]["code"], "516");
    assert!(
        dead[0]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("Skipped record number"))
    );
    assert_eq!(dead[0]["record_index"], 0);
    let stats = eventually("rows settled", WAIT, || async {
        let s = app.stats().await;
        (s["rows"]["delivered"] == 2).then_some(s)
    })
    .await;
    assert_eq!(stats["rows"]["dead"], 1);
    assert_eq!(app.clevertap.stats().requests, 1, "nothing was retried");
    assert_eq!(accepted_identities(&app.clevertap), vec!["ok-1", "ok-2"]);
}

#[tokio::test]
async fn clevertap_down_then_back_loses_nothing_and_doubles_nothing() {
    let app = spawn_app().await;
    app.clevertap.faults().outage(true);
    let identities: Vec<String> = (0..20).map(|i| format!("down-{i}")).collect();
    for id in &identities {
        assert_eq!(
            app.post_webhook("contacts", &upload(id)).await.status(),
            StatusCode::ACCEPTED
        );
    }
    eventually("a failed attempt", WAIT, || async {
        let metrics = app.metrics_text().await;
        metrics.contains("outcome=\"retry\"").then_some(())
    })
    .await;
    app.clevertap.faults().fail_next(2, 503);
    app.clevertap.faults().outage(false);
    app.clevertap
        .wait_for_accepted(20, Duration::from_secs(20))
        .await
        .expect("all delivered after recovery");
    let mut got = accepted_identities(&app.clevertap);
    got.sort();
    let mut want = identities.clone();
    want.sort();
    assert_eq!(got, want, "every accepted webhook exactly once");
    let stats = eventually("rows delivered", WAIT, || async {
        let s = app.stats().await;
        (s["rows"]["delivered"] == 20).then_some(s)
    })
    .await;
    assert_eq!(stats["rows"]["dead"], 0);
}

#[tokio::test]
async fn a_429_storm_never_exceeds_max_in_flight() {
    let app = spawn_with(|s| {
        s.delivery.max_in_flight = 3;
        s.delivery.batch_max_records = 1;
    })
    .await;
    app.clevertap
        .faults()
        .set_latency(Duration::from_millis(30));
    app.clevertap.faults().set_error_rate(429, 0.5);
    for i in 0..30 {
        assert_eq!(
            app.post_webhook("contacts", &upload(&format!("storm-{i}")))
                .await
                .status(),
            StatusCode::ACCEPTED
        );
    }
    app.clevertap
        .wait_for_accepted(30, Duration::from_secs(30))
        .await
        .expect("all delivered through the storm");
    let stats = app.clevertap.stats();
    assert!(
        stats.by_status.get(&429).copied().unwrap_or(0) > 0,
        "the storm happened"
    );
    assert!(
        stats.peak_in_flight_attempted <= 3,
        "peak {} > max_in_flight 3",
        stats.peak_in_flight_attempted
    );
    assert_eq!(
        app.stats().await["rows"]["dead"],
        0,
        "429 costs no attempt and kills nothing"
    );
}

#[tokio::test]
async fn a_whole_request_400_is_bisected_to_the_offending_record() {
    let app = spawn_app().await;
    app.clevertap.faults().set_record_code("poison", 400);
    let bodies: Vec<String> = ["b-1", "b-2", "poison", "b-3"]
        .iter()
        .map(|id| upload(id))
        .collect();
    post_as_one_batch(&app, &bodies).await;
    let stats = eventually("rows settled", WAIT, || async {
        let s = app.stats().await;
        (s["rows"]["delivered"] == 3 && s["rows"]["dead"] == 1).then_some(s)
    })
    .await;
    assert!(
        stats["paused_accounts"]
            .as_array()
            .is_some_and(Vec::is_empty)
    );
    let dead = app.admin_json("/admin/dead-letters").await;
    assert_eq!(dead["items"][0]["code"], "400");
    assert!(
        dead["items"][0]["body"]
            .as_str()
            .is_some_and(|b| b.contains("poison"))
    );
    assert_eq!(
        accepted_identities(&app.clevertap),
        vec!["b-1", "b-2", "b-3"],
        "halves are sent in order"
    );
}

#[tokio::test]
async fn updates_of_one_identity_arrive_in_the_order_they_were_accepted() {
    let app = spawn_with(|s| s.delivery.batch_max_records = 1).await;
    app.clevertap.faults().set_latency(Duration::from_millis(5));
    for i in 0..12 {
        let body = format!(
            r#"{{"d":[{{"identity":"same-person","type":"profile","profileData":{{"Step":{i}}}}}]}}"#
        );
        assert_eq!(
            app.post_webhook("contacts", &body).await.status(),
            StatusCode::ACCEPTED
        );
    }
    let records = app
        .clevertap
        .wait_for_accepted(12, Duration::from_secs(15))
        .await
        .expect("all delivered");
    let steps: Vec<i64> = records
        .iter()
        .filter_map(|r| r["profileData"]["Step"].as_i64())
        .collect();
    assert_eq!(steps, (0..12).collect::<Vec<_>>());
    let profile: Value = app.clevertap.profile("same-person").expect("profile");
    assert_eq!(profile["Step"], 11, "the last update wins");
}

#[tokio::test]
async fn a_record_clevertap_calls_misc_error_555_is_retried_alone() {
    let app = spawn_app().await;
    app.clevertap.faults().set_record_code("flaky", 555);
    let bodies: Vec<String> = ["steady", "flaky"].iter().map(|id| upload(id)).collect();
    post_as_one_batch(&app, &bodies).await;
    app.clevertap
        .wait_for_requests(2, WAIT)
        .await
        .expect("a retry was sent");
    app.clevertap.faults().set_record_code("flaky", 0);
    app.clevertap
        .wait_for_accepted(2, WAIT)
        .await
        .expect("the flaky record made it");
    assert_eq!(
        accepted_identities(&app.clevertap),
        vec!["steady", "flaky"],
        "the delivered record was not sent again"
    );
}
