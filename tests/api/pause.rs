//! Paused accounts: bad credentials burn nothing, readiness holds, delivery resumes.

use std::time::Duration;

use reqwest::{Method, StatusCode};

use crate::test_app::{ACCOUNT_ID, PASSCODE, eventually, spawn_app, upload};

#[tokio::test]
async fn a_401_pauses_the_account_without_burning_rows_and_delivery_resumes_when_fixed() {
    let app = spawn_app().await;
    app.clevertap
        .faults()
        .set_credentials(ACCOUNT_ID, vec!["rotated-passcode".into()]);
    assert_eq!(
        app.post_webhook("contacts", &upload("held-1"))
            .await
            .status(),
        StatusCode::ACCEPTED
    );
    let stats = eventually("the account paused", Duration::from_secs(10), || async {
        let s = app.stats().await;
        s["paused_accounts"]
            .as_array()
            .filter(|p| !p.is_empty())
            .map(|_| s.clone())
    })
    .await;
    assert_eq!(stats["paused_accounts"][0]["account"], "main");
    assert!(
        stats["paused_accounts"][0]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("401"))
    );
    assert_eq!(stats["rows"]["dead"], 0);
    let ready = app
        .client
        .get(format!("{}/readyz", app.address))
        .send()
        .await
        .expect("readyz");
    assert_eq!(
        ready.status(),
        StatusCode::OK,
        "a paused account must not take the replica out of the load balancer"
    );
    let metrics = app.metrics_text().await;
    assert!(
        metrics.contains("freshtap_account_paused{account=\"main\"} 1"),
        "{metrics}"
    );
    // Intake keeps accepting while paused.
    assert_eq!(
        app.post_webhook("contacts", &upload("held-2"))
            .await
            .status(),
        StatusCode::ACCEPTED
    );

    app.clevertap
        .faults()
        .set_credentials(ACCOUNT_ID, vec![PASSCODE.into()]);
    app.clevertap
        .wait_for_accepted(2, Duration::from_secs(10))
        .await
        .expect("delivered after the fix");
    let stats = eventually("the account resumed", Duration::from_secs(10), || async {
        let s = app.stats().await;
        s["paused_accounts"]
            .as_array()
            .filter(|p| p.is_empty())
            .map(|_| s.clone())
    })
    .await;
    assert_eq!(stats["rows"]["dead"], 0);
}

#[tokio::test]
async fn an_operator_pause_holds_delivery_until_resume() {
    let app = spawn_app().await;
    assert_eq!(
        app.admin(Method::POST, "/admin/accounts/main/pause")
            .await
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        app.post_webhook("contacts", &upload("waiting"))
            .await
            .status(),
        StatusCode::ACCEPTED
    );
    let stats = app.stats().await;
    assert_eq!(stats["paused_accounts"][0]["kind"], "manual");
    assert_eq!(stats["rows"]["pending"], 1);
    assert_eq!(
        app.clevertap.stats().requests,
        0,
        "nothing is sent while paused"
    );
    assert_eq!(
        app.admin(Method::POST, "/admin/accounts/main/resume")
            .await
            .status(),
        StatusCode::OK
    );
    app.clevertap
        .wait_for_accepted(1, Duration::from_secs(5))
        .await
        .expect("delivered after resume");
    assert_eq!(
        app.admin(Method::POST, "/admin/accounts/nope/pause")
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
}
