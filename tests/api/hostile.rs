//! Hostile and careless clients: dripped headers and bodies, connection floods, idle keep-alive
//! connections, malformed admin requests — the relay stays bounded and answers in JSON.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::test_app::{ADMIN, TOKEN, TestApp, contact, eventually, spawn_with};

fn addr(app: &TestApp) -> String {
    app.address.trim_start_matches("http://").to_owned()
}

/// Reads until the server closes the connection (or `limit` passes); what it sent.
async fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> Option<Vec<u8>> {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    let read = async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
        }
    };
    tokio::time::timeout(limit, read).await.ok().map(|()| seen)
}

#[tokio::test]
async fn a_client_dripping_its_headers_is_disconnected() {
    let app = spawn_with(|s| s.server.header_timeout_secs = 1).await;
    let mut stream = TcpStream::connect(addr(&app)).await.expect("connect");
    stream
        .write_all(b"POST /webhooks/contacts HTTP/1.1\r\nHost: x\r\n")
        .await
        .expect("write");
    let closed = read_until_closed(&mut stream, Duration::from_secs(5)).await;
    assert!(
        closed.is_some(),
        "the connection is closed after the header timeout"
    );
    let stats = app.stats().await;
    assert_eq!(stats["rows"]["pending"], 0);
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed() {
    let app = spawn_with(|s| s.server.idle_timeout_secs = 1).await;
    let mut stream = TcpStream::connect(addr(&app)).await.expect("connect");
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    let seen = read_until_closed(&mut stream, Duration::from_secs(6))
        .await
        .expect("closed once idle");
    assert!(
        String::from_utf8_lossy(&seen).starts_with("HTTP/1.1 200"),
        "the request was answered before the idle close"
    );
}

#[tokio::test]
async fn connections_beyond_the_ceiling_are_closed_at_once_and_service_goes_on() {
    let app = spawn_with(|s| {
        s.server.max_connections = 4;
        s.server.header_timeout_secs = 30;
    })
    .await;
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(TcpStream::connect(addr(&app)).await.expect("connect"));
    }
    // Every slot is taken by a silent client: one more is closed without a word.
    let mut extra = TcpStream::connect(addr(&app))
        .await
        .expect("the kernel still accepts");
    let seen = read_until_closed(&mut extra, Duration::from_secs(3))
        .await
        .expect("closed at once");
    assert!(seen.is_empty(), "nothing is answered beyond the ceiling");
    drop(held.pop());
    eventually(
        "a freed slot serves again",
        Duration::from_secs(5),
        || async {
            let response = app
                .post_webhook("contacts", &contact("after@example.com"))
                .await;
            (response.status() == StatusCode::ACCEPTED).then_some(())
        },
    )
    .await;
}

#[tokio::test]
async fn clients_dripping_bodies_hold_no_intake_slot() {
    let app = spawn_with(|s| {
        s.server.max_concurrent_requests = 2;
        s.server.request_timeout_secs = 3;
    })
    .await;
    let mut drippers = Vec::new();
    for _ in 0..200 {
        let mut stream = TcpStream::connect(addr(&app)).await.expect("connect");
        let head = format!(
            "POST /webhooks/contacts HTTP/1.1\r\nHost: x\r\nX-Freshtap-Token: {TOKEN}\r\n\
             Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{\"contact_"
        );
        stream.write_all(head.as_bytes()).await.expect("write");
        drippers.push(stream);
    }
    for i in 0..5 {
        let response = app
            .post_webhook("contacts", &contact(&format!("ordinary-{i}@example.com")))
            .await;
        assert_eq!(
            response.status(),
            StatusCode::ACCEPTED,
            "while 200 clients drip their bodies"
        );
    }
    // A dripping client is answered 408 once the request timeout passes.
    let seen = read_until_closed(&mut drippers[0], Duration::from_secs(10))
        .await
        .expect("answered within the request timeout");
    assert!(
        String::from_utf8_lossy(&seen).starts_with("HTTP/1.1 408"),
        "{}",
        String::from_utf8_lossy(&seen)
    );
}

#[tokio::test]
async fn every_admin_error_is_json_and_the_token_is_checked_first() {
    let app = spawn_with(|_| {}).await;
    let send = |method: Method, path: &str, token: Option<&str>, body: Vec<u8>| {
        let mut request = app
            .client
            .request(method, format!("{}{path}", app.address))
            .body(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send()
    };
    type Case<'a> = (
        &'a str,
        Method,
        &'a str,
        Option<&'a str>,
        Vec<u8>,
        StatusCode,
        &'a str,
    );
    let cases: Vec<Case> = vec![
        (
            "bad path, no token",
            Method::POST,
            "/admin/dead-letters/abc/replay",
            None,
            vec![],
            StatusCode::UNAUTHORIZED,
            "unauthorized",
        ),
        (
            "bad query, wrong token",
            Method::GET,
            "/admin/dead-letters?limit=abc",
            Some("nope"),
            vec![],
            StatusCode::UNAUTHORIZED,
            "unauthorized",
        ),
        (
            "bad path",
            Method::POST,
            "/admin/dead-letters/abc/replay",
            Some(ADMIN),
            vec![],
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            "bad query",
            Method::GET,
            "/admin/dead-letters?limit=abc",
            Some(ADMIN),
            vec![],
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            "bad code filter",
            Method::GET,
            "/admin/dead-letters?code=nonsense",
            Some(ADMIN),
            vec![],
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            "oversize body",
            Method::PUT,
            "/admin/dead-letters/1/body",
            Some(ADMIN),
            vec![b'{'; 300_000],
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
        ),
        (
            "unreadable fix",
            Method::PUT,
            "/admin/dead-letters/1/body",
            Some(ADMIN),
            b"{\"d\": [".to_vec(),
            StatusCode::BAD_REQUEST,
            "invalid_body",
        ),
        (
            "unknown letter",
            Method::PUT,
            "/admin/dead-letters/999/body",
            Some(ADMIN),
            b"{}".to_vec(),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
    ];
    for (name, method, path, token, body, status, code) in cases {
        let response = send(method, path, token, body).await.expect("sent");
        assert_eq!(response.status(), status, "{name}");
        assert!(response.headers().contains_key("x-request-id"), "{name}");
        let answer: Value = response
            .json()
            .await
            .unwrap_or_else(|e| panic!("{name}: not JSON: {e}"));
        assert_eq!(answer["error"]["code"], code, "{name}: {answer}");
        assert!(answer["request_id"].is_string(), "{name}: {answer}");
    }
}

#[tokio::test]
async fn a_webhook_committed_after_its_client_left_is_counted_accepted() {
    let app = spawn_with(|s| s.delivery.enabled = false).await;
    let body = contact("gone@example.com");
    for i in 0..30 {
        let body = body.replace("gone@", &format!("gone-{i}@"));
        let mut stream = TcpStream::connect(addr(&app)).await.expect("connect");
        let request = format!(
            "POST /webhooks/contacts HTTP/1.1\r\nHost: x\r\nX-Freshtap-Token: {TOKEN}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(request.as_bytes()).await.expect("write");
        drop(stream); // gone before the answer
    }
    let stored = eventually("the webhooks stored", Duration::from_secs(5), || async {
        let stats = app.stats().await;
        let pending = stats["rows"]["pending"].as_u64()?;
        (pending > 0).then_some(pending)
    })
    .await;
    let counted = eventually(
        "the count to match what is stored",
        Duration::from_secs(5),
        || async {
            let stats = app.stats().await;
            let stored = stats["rows"]["pending"].as_u64()?;
            let metrics = app.metrics_text().await;
            let line = metrics.lines().find(|l| {
                l.starts_with("freshtap_webhooks_total") && l.contains("outcome=\"accepted\"")
            })?;
            let counted: u64 = line.rsplit(' ').next()?.parse().ok()?;
            (counted == stored).then_some(counted)
        },
    )
    .await;
    assert!(
        counted >= stored,
        "every committed webhook is counted: {counted} of {stored}"
    );
}
