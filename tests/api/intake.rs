//! Intake: authentication, limits, content types, bad bodies, duplicates, test webhooks.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;

use crate::test_app::{ACCOUNT_ID, TOKEN, contact, eventually, spawn_app, spawn_with, upload};

#[tokio::test]
async fn a_webhook_reaches_clevertap_with_the_account_headers_and_matching_ids() {
    let app = spawn_app().await;
    let response = app
        .client
        .post(format!("{}/webhooks/contacts", app.address))
        .header("X-Freshtap-Token", TOKEN)
        .header("X-Request-ID", "req-from-freshsales-1")
        .header("Content-Type", "application/json")
        .body(contact("amelia.hart@example.com"))
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    assert_eq!(response.headers()["x-request-id"], "req-from-freshsales-1");
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["status"], "accepted");
    assert_eq!(body["request_id"], "req-from-freshsales-1");
    let id = body["id"].as_i64().expect("row id");

    let records = app
        .clevertap
        .wait_for_accepted(1, Duration::from_secs(5))
        .await
        .expect("delivered");
    assert_eq!(records[0]["identity"], "amelia.hart@example.com");
    assert_eq!(records[0]["profileData"]["Phone"], "+447700900123");
    let requests = app.clevertap.requests();
    assert_eq!(requests[0].account_id, ACCOUNT_ID);

    let row = eventually("row delivered", Duration::from_secs(5), || async {
        let row = app
            .admin_json("/admin/webhooks?request_id=req-from-freshsales-1")
            .await;
        (row["state"] == "delivered").then_some(row)
    })
    .await;
    assert_eq!(row["id"].as_i64(), Some(id));
}

#[tokio::test]
async fn a_missing_or_wrong_token_is_refused_and_nothing_is_stored() {
    let app = spawn_app().await;
    let url = format!("{}/webhooks/contacts", app.address);
    let missing = app
        .client
        .post(&url)
        .body(contact("a@example.com"))
        .send()
        .await
        .expect("sent");
    let wrong = app
        .client
        .post(&url)
        .header("Authorization", "Bearer not-the-token")
        .body(contact("b@example.com"))
        .send()
        .await
        .expect("sent");
    for response in [missing, wrong] {
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert!(response.headers().contains_key("x-request-id"));
        let body: Value = response.json().await.expect("json envelope");
        assert_eq!(body["error"]["code"], "unauthorized");
        assert!(body["request_id"].as_str().is_some_and(|s| !s.is_empty()));
    }
    let stats = app.stats().await;
    assert_eq!(
        stats["rows"],
        serde_json::json!({"pending":0,"leased":0,"delivered":0,"dead":0})
    );
}

#[tokio::test]
async fn bearer_basic_and_token_forms_are_accepted() {
    let app = spawn_app().await;
    let url = format!("{}/webhooks/contacts", app.address);
    let bearer = app
        .client
        .post(&url)
        .bearer_auth(TOKEN)
        .body(upload("u1"))
        .send()
        .await
        .expect("sent");
    let basic = app
        .client
        .post(&url)
        .basic_auth("freshsales", Some(TOKEN))
        .body(upload("u2"))
        .send()
        .await
        .expect("sent");
    let token = app
        .client
        .post(&url)
        .header("Authorization", format!("Token token={TOKEN}"))
        .body(upload("u3"))
        .send()
        .await
        .expect("sent");
    for response in [bearer, basic, token] {
        assert_eq!(response.status(), StatusCode::ACCEPTED);
    }
}

/// Posts `body` in chunks of 1000 bytes (`Transfer-Encoding: chunked`, no length declared) and
/// returns the answer's status line and body.
async fn post_chunked(address: &str, body: &str) -> (String, Value) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let host = address.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(host).await.expect("connect");
    let mut request = format!(
        "POST /webhooks/contacts HTTP/1.1\r\nHost: {host}\r\nX-Freshtap-Token: {TOKEN}\r\n\
         Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    for chunk in body.as_bytes().chunks(1000) {
        request.push_str(&format!("{:x}\r\n", chunk.len()));
        request.push_str(std::str::from_utf8(chunk).expect("ASCII body"));
        request.push_str("\r\n");
    }
    request.push_str("0\r\n\r\n");
    // A refusal may come before the whole body is read; the answer is read either way.
    let _ = stream.write_all(request.as_bytes()).await;
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer).await;
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let status = answer.lines().next().unwrap_or_default().to_owned();
    let json = answer
        .split_once("\r\n\r\n")
        .and_then(|(_, body)| serde_json::from_str(body).ok())
        .unwrap_or_default();
    (status, json)
}

#[tokio::test]
async fn a_chunked_body_is_stored_whole_and_refused_past_the_limit() {
    let app = spawn_with(|s| s.server.max_body_bytes = 8192).await;
    let notes = |n: usize| {
        format!(
            r#"{{"d":[{{"identity":"chunks","type":"profile","profileData":{{"Notes":"{}"}}}}]}}"#,
            "x".repeat(n)
        )
    };
    let (status, answer) = post_chunked(&app.address, &notes(7000)).await;
    assert!(status.starts_with("HTTP/1.1 202"), "{status} {answer}");
    let records = app
        .clevertap
        .wait_for_accepted(1, Duration::from_secs(10))
        .await
        .expect("delivered");
    assert_eq!(
        records[0]["profileData"]["Notes"].as_str().map(str::len),
        Some(7000),
        "the record arrives whole"
    );
    let (status, answer) = post_chunked(&app.address, &notes(9000)).await;
    assert!(status.starts_with("HTTP/1.1 413"), "{status} {answer}");
    assert_eq!(answer["error"]["code"], "too_large");
    let rows = app.stats().await["rows"].clone();
    assert_eq!(
        (
            rows["pending"].as_u64(),
            rows["leased"].as_u64(),
            rows["delivered"].as_u64()
        ),
        (Some(0), Some(0), Some(1)),
        "only the first is stored: {rows}"
    );
}

#[tokio::test]
async fn an_oversized_body_is_refused_with_413() {
    let app = spawn_with(|s| s.server.max_body_bytes = 1024).await;
    let big = format!(
        r#"{{"contact_email":"a@example.com","contact_cf_notes":"{}"}}"#,
        "x".repeat(4096)
    );
    let response = app.post_webhook("contacts", &big).await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["error"]["code"], "too_large");
    assert_eq!(app.stats().await["rows"]["pending"], 0);
}

#[tokio::test]
async fn broken_json_answers_400_with_line_and_column_and_is_kept_as_a_dead_letter() {
    let app = spawn_app().await;
    let broken = r#"{"d":[{"objectId":"dwayne.carter@example.com","type":"profile","profileData":{"Name":"Dwayne "The Rock"","Email":"dwayne.carter@example.com"}}]}"#;
    let response = app.post_webhook("contacts", broken).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["error"]["code"], "invalid_body");
    let message = body["error"]["message"].as_str().expect("message");
    assert!(message.contains("line 1 column"), "{message}");
    let letters = app
        .admin_json("/admin/dead-letters?code=invalid_body")
        .await;
    assert_eq!(letters["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(letters["items"][0]["body"], broken);
    assert_eq!(letters["items"][0]["record_index"], Value::Null);
}

#[tokio::test]
async fn unknown_routes_and_unsupported_types_answer_with_the_error_envelope() {
    let app = spawn_app().await;
    let unknown = app.post_webhook("nope", "{}").await;
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    let body: Value = unknown.json().await.expect("json");
    assert_eq!(body["error"]["code"], "unknown_route");
    let xml = app
        .client
        .post(format!("{}/webhooks/contacts", app.address))
        .header("X-Freshtap-Token", TOKEN)
        .header("Content-Type", "application/xml")
        .body("<contact/>")
        .send()
        .await
        .expect("sent");
    assert_eq!(xml.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let body: Value = xml.json().await.expect("json");
    assert_eq!(body["error"]["code"], "unsupported_type");
}

#[tokio::test]
async fn a_repeated_body_within_the_window_is_a_duplicate() {
    let app = spawn_app().await;
    let first = app
        .post_webhook("contacts", &contact("dup@example.com"))
        .await;
    assert_eq!(first.status(), StatusCode::ACCEPTED);
    let first: Value = first.json().await.expect("json");
    let second = app
        .post_webhook("contacts", &contact("dup@example.com"))
        .await;
    assert_eq!(second.status(), StatusCode::OK);
    let second: Value = second.json().await.expect("json");
    assert_eq!(second["status"], "duplicate");
    assert_eq!(second["id"], first["id"]);
    app.clevertap
        .wait_for_accepted(1, Duration::from_secs(5))
        .await
        .expect("delivered once");
    assert_eq!(app.clevertap.stats().records_received, 1);
}

#[tokio::test]
async fn freshsales_test_webhooks_are_answered_but_not_forwarded() {
    let app = spawn_app().await;
    let dummy = r#"{"contact_id":123456,"contact_first_name":"freshsales","contact_last_name":"freshsales","contact_email":"support-team@freshsales.io"}"#;
    let response = app.post_webhook("contacts", dummy).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["status"], "test");
    assert_eq!(app.stats().await["rows"]["pending"], 0);
    assert_eq!(app.clevertap.stats().requests, 0);
}

#[tokio::test]
async fn form_encoded_contacts_are_delivered() {
    let app = spawn_app().await;
    let form = "contact_first_name=Amelia&contact_email=form%40example.com&contact_mobile_number=%2B44+7700+900123";
    let response = app
        .client
        .post(format!("{}/webhooks/contacts", app.address))
        .header("X-Freshtap-Token", TOKEN)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(form)
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let records = app
        .clevertap
        .wait_for_accepted(1, Duration::from_secs(5))
        .await
        .expect("delivered");
    assert_eq!(records[0]["identity"], "form@example.com");
    assert_eq!(records[0]["profileData"]["Phone"], "+447700900123");
}
