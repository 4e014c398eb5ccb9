//! The console's router: sign-in, sessions, CSRF, the console absent without an admin token,
//! fixing an `invalid_body`, and `/openapi.json` — through `http::router(state).oneshot`; the
//! console's actions in the audit log on the real app (`console/audit.rs`).

mod audit;
mod harness;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use freshtap::http::console::session::{Keys, Purpose, SESSION_COOKIE};
use secrecy::SecretString;

use crate::test_app::{ADMIN, TOKEN};
use harness::{console_with, cookie_pair, csrf_field};

#[tokio::test]
async fn a_page_without_a_session_redirects_to_the_sign_in_form() {
    let console = console_with(Some(ADMIN)).await;
    for path in [
        "/console",
        "/console/dead-letters",
        "/console/webhooks?request_id=x",
        "/console/audit",
        "/console/erasures",
    ] {
        let answer = console.get(path, None).await;
        assert_eq!(answer.status, StatusCode::SEE_OTHER, "{path}");
        assert_eq!(
            answer.location.as_deref(),
            Some("/console/sign-in"),
            "{path}"
        );
    }
}

#[tokio::test]
async fn a_forged_or_foreign_session_cookie_redirects_to_the_sign_in_form() {
    let console = console_with(Some(ADMIN)).await;
    let now = freshtap::clock::now_ms();
    let other_key = Keys::derive(&SecretString::from("another-admin-token"));
    let foreign =
        other_key.new_session(Purpose::Session, now, std::time::Duration::from_secs(3600));
    let (session, _) = console.sign_in().await;
    let tampered = format!("{session}x");
    for cookie in [
        format!("{SESSION_COOKIE}={foreign}"),
        tampered,
        format!("{SESSION_COOKIE}=1999999999999.AAAA.AAAA"),
    ] {
        let answer = console.get("/console", Some(&cookie)).await;
        assert_eq!(answer.status, StatusCode::SEE_OTHER, "{cookie}");
        assert_eq!(answer.location.as_deref(), Some("/console/sign-in"));
    }
    assert_eq!(
        console.get("/console", Some(&session)).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_session_works_on_every_replica_until_the_admin_token_changes() {
    let replica_a = console_with(Some(ADMIN)).await;
    let replica_b = console_with(Some(ADMIN)).await;
    let rotated = console_with(Some("a-new-admin-token")).await;
    let (session, csrf) = replica_a.sign_in().await;
    assert_eq!(
        replica_b.get("/console", Some(&session)).await.status,
        StatusCode::OK
    );
    let action = replica_b
        .post_form(
            "/console/accounts/main/pause",
            Some(&session),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(
        action.status,
        StatusCode::SEE_OTHER,
        "another replica takes its forms too"
    );
    let after_rotation = rotated.get("/console", Some(&session)).await;
    assert_eq!(after_rotation.status, StatusCode::SEE_OTHER);
    assert_eq!(after_rotation.location.as_deref(), Some("/console/sign-in"));
}

#[tokio::test]
async fn signing_in_sets_a_strict_http_only_session_cookie_and_a_wrong_token_does_not() {
    let console = console_with(Some(ADMIN)).await;
    let form = console.get("/console/sign-in", None).await;
    assert!(
        form.body
            .contains(r#"<label for="token">Admin token</label>"#)
    );
    assert!(form.body.contains(">Sign in</button>"));
    let sign_in_cookie = cookie_pair(&form.cookies, "freshtap_console_sign_in");
    let csrf = csrf_field(&form.body);
    let wrong = console
        .post_form(
            "/console/sign-in",
            Some(&sign_in_cookie),
            &[("token", "nope"), ("csrf", &csrf)],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(wrong.body.contains("That is not the admin token."));
    assert!(
        !wrong
            .cookies
            .iter()
            .any(|c| c.starts_with("freshtap_console="))
    );
    let right = console
        .post_form(
            "/console/sign-in",
            Some(&sign_in_cookie),
            &[("token", ADMIN), ("csrf", &csrf)],
        )
        .await;
    assert_eq!(right.status, StatusCode::SEE_OTHER);
    assert_eq!(right.location.as_deref(), Some("/console"));
    let session = right
        .cookies
        .iter()
        .find(|c| c.starts_with("freshtap_console="))
        .expect("a session cookie");
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/console"] {
        assert!(session.contains(attribute), "{attribute} in {session}");
    }
    assert!(!session.contains("Secure"), "plain HTTP: {session}");
}

#[tokio::test]
async fn behind_an_https_proxy_the_cookies_are_secure() {
    let console = console_with(Some(ADMIN)).await;
    let request = Request::get("/console/sign-in")
        .header("x-forwarded-proto", "https")
        .body(Body::empty())
        .expect("request");
    let form = console.send(request).await;
    assert!(
        form.cookies.iter().all(|c| c.ends_with("; Secure")),
        "{:?}",
        form.cookies
    );
}

#[tokio::test]
async fn a_sign_in_without_its_form_token_is_refused() {
    let console = console_with(Some(ADMIN)).await;
    let answer = console
        .post_form("/console/sign-in", None, &[("token", ADMIN)])
        .await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    assert!(
        !answer
            .cookies
            .iter()
            .any(|c| c.starts_with("freshtap_console="))
    );
}

#[tokio::test]
async fn a_post_without_the_csrf_token_is_403_and_changes_nothing() {
    let console = console_with(Some(ADMIN)).await;
    let (session, csrf) = console.sign_in().await;
    let (other_session, _) = console.sign_in().await;
    let other_csrf = {
        let page = console.get("/console", Some(&other_session)).await;
        csrf_field(&page.body)
    };
    for fields in [
        vec![],
        vec![("csrf", "")],
        vec![("csrf", other_csrf.as_str())],
    ] {
        let answer = console
            .post_form("/console/accounts/main/pause", Some(&session), &fields)
            .await;
        assert_eq!(answer.status, StatusCode::FORBIDDEN, "{fields:?}");
        assert!(
            answer.body.contains("Reload the page"),
            "a page, not a trace"
        );
    }
    let overview = console.get("/console", Some(&session)).await;
    assert!(
        !overview.body.contains("paused by an operator"),
        "nothing was paused"
    );
    let paused = console
        .post_form(
            "/console/accounts/main/pause",
            Some(&session),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(paused.status, StatusCode::SEE_OTHER);
    assert_eq!(paused.location.as_deref(), Some("/console"));
    // The browser brings the result message back with the session.
    let flash = cookie_pair(&paused.cookies, "freshtap_console_flash");
    let overview = console
        .get("/console", Some(&format!("{session}; {flash}")))
        .await;
    assert!(overview.body.contains("paused by an operator"));
    assert!(
        overview.body.contains("Account main paused"),
        "the result is shown"
    );
}

#[tokio::test]
async fn without_an_admin_token_the_console_does_not_exist() {
    let console = console_with(None).await;
    for path in [
        "/console",
        "/console/sign-in",
        "/console/dead-letters",
        "/console/console.css",
    ] {
        assert_eq!(
            console.get(path, None).await.status,
            StatusCode::NOT_FOUND,
            "{path}"
        );
    }
    let answer = console
        .post_form("/console/sign-in", None, &[("token", "")])
        .await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn an_invalid_body_is_fixed_in_the_console_only_with_a_body_that_reads() {
    let console = console_with(Some(ADMIN)).await;
    let broken = r#"{"contact_email":"nora.quinn@example.net","#;
    let request = Request::post("/webhooks/contacts")
        .header("x-freshtap-token", TOKEN)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(broken))
        .expect("request");
    let refused = console.send(request).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    let id: serde_json::Value = serde_json::from_str(&refused.body).expect("json");
    let id = id["dead_letter_id"].as_i64().expect("a dead letter id");
    let (session, csrf) = console.sign_in().await;

    let page = console
        .get(&format!("/console/dead-letters/{id}"), Some(&session))
        .await;
    assert!(page.body.contains("no***@example.net"), "{}", page.body);
    assert!(!page.body.contains("nora.quinn@"), "masked until revealed");
    let revealed = console
        .post_form(
            &format!("/console/dead-letters/{id}/reveal"),
            Some(&session),
            &[("csrf", &csrf)],
        )
        .await;
    assert!(revealed.body.contains("nora.quinn@example.net"));
    assert!(
        revealed.body.contains("<textarea"),
        "an invalid_body can be edited"
    );

    let still_broken = console
        .post_form(
            &format!("/console/dead-letters/{id}/body"),
            Some(&session),
            &[("csrf", &csrf), ("body", r#"{"contact_email": "#)],
        )
        .await;
    assert_eq!(still_broken.status, StatusCode::BAD_REQUEST);
    assert!(still_broken.body.contains("The body still does not read"));
    let fixed = r#"{"contact_email":"nora.quinn@example.net"}"#;
    let saved = console
        .post_form(
            &format!("/console/dead-letters/{id}/body"),
            Some(&session),
            &[("csrf", &csrf), ("body", fixed), ("then", "stay")],
        )
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    let admin = Request::get("/admin/dead-letters?code=invalid_body")
        .header(header::AUTHORIZATION, format!("Bearer {ADMIN}"))
        .body(Body::empty())
        .expect("request");
    let listed: serde_json::Value =
        serde_json::from_str(&console.send(admin).await.body).expect("json");
    assert_eq!(
        listed["items"][0]["body"], fixed,
        "the fixed body is stored as sent"
    );
}

#[tokio::test]
async fn the_openapi_document_is_served_as_it_is_in_docs() {
    let console = console_with(None).await;
    let answer = console.get("/openapi.json", None).await;
    assert_eq!(answer.status, StatusCode::OK);
    let served: serde_json::Value = serde_json::from_str(&answer.body).expect("json");
    let file: serde_json::Value =
        serde_json::from_str(include_str!("../../docs/openapi.json")).expect("json");
    assert_eq!(served, file);
    assert_eq!(
        served["components"]["securitySchemes"]["consoleSession"]["name"],
        SESSION_COOKIE
    );
}
