//! The drop-in `POST /1/upload`, as a CleverTap client sees it: CleverTap's answers, after the
//! commit; refused records answered, dead-lettered and never sent; CleverTap's error envelopes.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::test_app::{ACCOUNT_ID, PASSCODE, TestApp, spawn_app, spawn_with};

async fn post_upload(app: &TestApp, body: impl Into<reqwest::Body>) -> (StatusCode, Value) {
    post_as(app, ACCOUNT_ID, PASSCODE, body).await
}

async fn post_as(
    app: &TestApp,
    account: &str,
    passcode: &str,
    body: impl Into<reqwest::Body>,
) -> (StatusCode, Value) {
    let response = app
        .client
        .post(format!("{}/1/upload", app.address))
        .header("X-CleverTap-Account-Id", account)
        .header("X-CleverTap-Passcode", passcode)
        .header("Content-Type", "application/json")
        .body(body)
        .send()
        .await
        .expect("sent");
    let status = response.status();
    assert!(
        response.headers().contains_key("x-request-id"),
        "every answer carries X-Request-ID"
    );
    let text = response.text().await.expect("body");
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

#[tokio::test]
async fn an_upload_is_answered_as_clevertap_answers_and_delivered() {
    let app = spawn_app().await;
    let seed = r#"{"d":[{"objectId":"amelia.hart@example.com","type":"profile","profileData":{"Name":"Amelia","Email":"amelia.hart@example.com","Phone":"+44 7700 900123","Lead Source":"Web Form"}}]}"#;
    let (status, answer) = post_upload(&app, seed).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (
            &answer["status"],
            &answer["processed"],
            &answer["unprocessed"]
        ),
        (&json!("success"), &json!(1), &json!([]))
    );
    assert!(
        answer["id"].is_i64(),
        "freshtap's row id beside CleverTap's keys: {answer}"
    );
    let records = app
        .clevertap
        .wait_for_accepted(1, Duration::from_secs(5))
        .await
        .expect("delivered");
    assert_eq!(records[0]["objectId"], "amelia.hart@example.com");
    assert_eq!(
        records[0]["profileData"]["Phone"], "+447700900123",
        "a phone CleverTap would refuse, made E.164"
    );
}

#[tokio::test]
async fn partly_refused_records_agree_in_the_answer_the_dead_letters_and_clevertap() {
    let app = spawn_app().await;
    let body = json!({"d": [
        {"identity": "ok@example.com", "type": "profile", "profileData": {"Name": "Ok"}},
        {"identity": "phone@example.com", "type": "profile", "profileData": {"Phone": "12"}},
        {"identity": "gender@example.com", "type": "profile", "profileData": {"Gender": "Female"}},
    ]});
    let (status, answer) = post_upload(&app, body.to_string()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (&answer["status"], &answer["processed"]),
        (&json!("partial"), &json!(1))
    );
    let unprocessed = answer["unprocessed"].as_array().expect("unprocessed");
    let codes: Vec<(&Value, &str)> = unprocessed
        .iter()
        .map(|u| (&u["code"], u["error"].as_str().unwrap_or("")))
        .collect();
    assert_eq!(
        codes,
        vec![
            (
                &json!(516),
                "Profile data is incorrect. Phone number is not valid.Skipped record number : 2"
            ),
            (
                &json!(514),
                "Profile data is incorrect. Gender needs to be M/F.Skipped record number : 3"
            ),
        ]
    );
    assert_eq!(
        unprocessed[1]["record"], body["d"][2],
        "the record as the client sent it"
    );
    let delivered = app
        .clevertap
        .wait_for_accepted(1, Duration::from_secs(5))
        .await
        .expect("delivered");
    let letters = app.admin_json("/admin/dead-letters").await;
    let kept: Vec<(Value, Value)> = letters["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|l| (l["record_index"].clone(), l["code"].clone()))
        .collect();
    assert_eq!(
        kept,
        vec![(json!(1), json!("516")), (json!(2), json!("514"))]
    );
    let sent: usize = app.clevertap.requests().iter().map(|r| r.records).sum();
    assert_eq!(sent, 1, "only the accepted record reaches CleverTap");
    assert_eq!(delivered[0]["identity"], "ok@example.com");
}

#[tokio::test]
async fn whole_requests_are_refused_in_clevertaps_envelope_and_nothing_is_stored() {
    let app = spawn_with(|s| s.server.max_upload_bytes = 64 * 1024).await;
    let one = json!({"d": [{"identity": "a", "type": "profile", "profileData": {}}]}).to_string();
    let many: Vec<Value> = (0..1001)
        .map(|i| json!({"identity": format!("r{i}"), "type": "event", "evtName": "E"}))
        .collect();
    let cases: Vec<(&str, &str, &str, String, StatusCode, &str)> = vec![
        (
            "unknown account",
            "NOPE-000",
            PASSCODE,
            one.clone(),
            StatusCode::UNAUTHORIZED,
            "Account ID is not valid",
        ),
        (
            "wrong passcode",
            ACCOUNT_ID,
            "wrong",
            one.clone(),
            StatusCode::UNAUTHORIZED,
            "Invalid Credentials",
        ),
        (
            "not JSON",
            ACCOUNT_ID,
            PASSCODE,
            "{\"d\": [".into(),
            StatusCode::BAD_REQUEST,
            "Malformed request",
        ),
        (
            "no d",
            ACCOUNT_ID,
            PASSCODE,
            "{\"records\": []}".into(),
            StatusCode::BAD_REQUEST,
            "Malformed request",
        ),
        (
            "d not an array",
            ACCOUNT_ID,
            PASSCODE,
            "{\"d\": {}}".into(),
            StatusCode::BAD_REQUEST,
            "Malformed request",
        ),
        (
            "1001 records",
            ACCOUNT_ID,
            PASSCODE,
            json!({"d": many}).to_string(),
            StatusCode::BAD_REQUEST,
            "Malformed request",
        ),
        (
            "over max_upload_bytes",
            ACCOUNT_ID,
            PASSCODE,
            "x".repeat(70 * 1024),
            StatusCode::PAYLOAD_TOO_LARGE,
            "",
        ),
    ];
    for (name, account, passcode, body, want_status, want_error) in cases {
        let (status, answer) = post_as(&app, account, passcode, body).await;
        assert_eq!(status, want_status, "{name}: {answer}");
        assert_eq!(answer["status"], "fail", "{name}: {answer}");
        assert_eq!(answer["code"], want_status.as_u16(), "{name}: {answer}");
        if !want_error.is_empty() {
            assert_eq!(answer["error"], want_error, "{name}");
        }
    }
    let stats = app.stats().await;
    assert_eq!(
        stats["rows"],
        json!({"pending": 0, "leased": 0, "delivered": 0, "dead": 0})
    );
}

#[tokio::test]
async fn a_thousand_crm_records_are_taken_in_one_request_and_split_for_clevertap() {
    let app = spawn_app().await;
    let records: Vec<Value> = (0..1000)
        .map(|i| {
            json!({"identity": format!("lead-{i}@example.com"), "type": "profile", "ts": 1_764_150_000,
                "profileData": {"Name": format!("Lead Number {i}"), "Email": format!("lead-{i}@example.com"),
                "Phone": "+14155550134", "Company": "Northwind Analytics and Consulting Group",
                "Lead Source": "Web Form", "Lifecycle": "Lead", "Notes": "x".repeat(1200)}})
        })
        .collect();
    let body = json!({"d": records}).to_string();
    assert!(body.len() > 1_400_000, "CRM-sized: {} bytes", body.len());
    let (status, answer) = post_upload(&app, body).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["processed"], 1000);
    app.clevertap
        .wait_for_accepted(1000, Duration::from_secs(20))
        .await
        .expect("every record delivered");
    let requests = app.clevertap.requests();
    assert!(
        requests.len() >= 2,
        "more than batch_max_records go in several requests"
    );
    assert!(
        requests.iter().all(|r| r.records <= 500),
        "no request over batch_max_records"
    );
}

#[tokio::test]
async fn operations_and_empty_values_reach_clevertap_untouched() {
    let app = spawn_app().await;
    let body = json!({"d": [
        {"identity": "ops@example.com", "type": "profile", "ts": 1_764_150_000, "profileData": {
            "Login Count": {"$incr": 1}, "Interests": {"$add": ["pricing"]}, "Phone": {"$delete": 1},
            "Tags": [], "Note": ""}},
        {"identity": "ops@example.com", "type": "event", "ts": 1_764_150_001, "evtName": "Viewed", "evtData": {}},
    ]});
    let (status, answer) = post_upload(&app, body.to_string()).await;
    assert_eq!(
        (status, &answer["processed"]),
        (StatusCode::OK, &json!(2)),
        "{answer}"
    );
    let received = app
        .clevertap
        .wait_for_accepted(2, Duration::from_secs(5))
        .await
        .expect("delivered");
    assert_eq!(received[0], body["d"][0], "sent exactly as given");
    assert_eq!(received[1]["evtData"], json!({}));
}

#[tokio::test]
async fn only_uploads_that_change_nothing_when_repeated_are_deduplicated() {
    let app = spawn_app().await;
    let event =
        json!({"d": [{"identity": "e@example.com", "type": "event", "evtName": "Clicked"}]})
            .to_string();
    let profile =
        json!({"d": [{"identity": "p@example.com", "type": "profile", "ts": 1_764_150_000,
        "profileData": {"Name": "P"}}]})
        .to_string();
    for body in [&event, &event, &profile, &profile] {
        assert_eq!(post_upload(&app, body.clone()).await.0, StatusCode::OK);
    }
    let stats = app.stats().await;
    let stored = ["pending", "leased", "delivered", "dead"]
        .iter()
        .map(|s| stats["rows"][s].as_u64().unwrap_or(0))
        .sum::<u64>();
    assert_eq!(
        stored, 3,
        "an event without ts is stored twice, a repeated profile set once"
    );
    app.clevertap
        .wait_for_accepted(3, Duration::from_secs(5))
        .await
        .expect("delivered");
    assert_eq!(
        app.clevertap.events().len(),
        2,
        "both events reach CleverTap"
    );
}

#[tokio::test]
async fn freshsales_test_upload_is_answered_but_a_real_upload_naming_the_address_is_kept() {
    let app = spawn_app().await;
    let sample = json!({"d": [{"objectId": "support-team@freshsales.io", "type": "profile",
        "profileData": {"Name": "freshsales"}}]});
    let (status, answer) = post_upload(&app, sample.to_string()).await;
    assert_eq!((status, &answer["test"]), (StatusCode::OK, &json!(true)));
    let real = json!({"d": [
        {"objectId": "support-team@freshsales.io", "type": "profile", "profileData": {"Name": "Support"}},
        {"identity": "lead@example.com", "type": "profile", "profileData": {"Referrer": "support-team@freshsales.io"}},
    ]});
    let (status, answer) = post_upload(&app, real.to_string()).await;
    assert_eq!((status, &answer["processed"]), (StatusCode::OK, &json!(2)));
    assert!(answer.get("test").is_none());
    app.clevertap
        .wait_for_accepted(2, Duration::from_secs(5))
        .await
        .expect("a multi-record upload is never a test");
}

#[tokio::test]
async fn an_identity_with_a_control_character_is_refused_523() {
    let app = spawn_app().await;
    let body = json!({"d": [{"identity": "jane\u{0}@example.com", "type": "profile", "profileData": {"Name": "J"}}]});
    let (status, answer) = post_upload(&app, body.to_string()).await;
    assert_eq!(
        (status, &answer["status"]),
        (StatusCode::OK, &json!("fail"))
    );
    assert_eq!(answer["unprocessed"][0]["code"], 523);
    assert_eq!(app.clevertap.stats().requests, 0, "never forwarded");
}

#[tokio::test]
async fn a_client_still_writing_an_oversize_upload_reads_the_413_envelope() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // 6 MB declared, over the default 5 MiB, written whole before reading, as CleverTap's Node
    // library does: answered before the body was read, the writer would meet a reset instead.
    let app = spawn_app().await;
    let body = format!(
        r#"{{"d":[{{"identity":"a","type":"profile","profileData":{{"Notes":"{}"}}}}]}}"#,
        "x".repeat(6_000_000)
    );
    let host = app.address.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(host).await.expect("connect");
    let head = format!(
        "POST /1/upload HTTP/1.1\r\nHost: {host}\r\nX-CleverTap-Account-Id: {ACCOUNT_ID}\r\n\
         X-CleverTap-Passcode: {PASSCODE}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream
        .write_all(head.as_bytes())
        .await
        .expect("headers written");
    stream
        .write_all(body.as_bytes())
        .await
        .expect("the whole body is taken, not reset");
    let mut answer = String::new();
    stream
        .read_to_string(&mut answer)
        .await
        .expect("answer read");
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    let envelope: Value = answer
        .split_once("\r\n\r\n")
        .and_then(|(_, body)| serde_json::from_str(body).ok())
        .unwrap_or_default();
    assert_eq!(
        envelope,
        json!({"status": "fail", "error": "Request too large", "code": 413}),
        "{answer}"
    );
    assert_eq!(app.clevertap.stats().requests, 0, "nothing sent");
}
