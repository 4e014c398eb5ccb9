//! Benchmark baseline: the least a webhook endpoint can do — accept, parse the JSON, answer 202.
//!
//! `cargo run --release --example bench_parse_only -- 127.0.0.1:18080` (see bench/README.md).

use axum::Router;
use axum::body::Bytes;
use axum::http::StatusCode;
use axum::routing::post;

async fn webhook(body: Bytes) -> (StatusCode, &'static str) {
    match serde_json::from_slice::<serde_json::Value>(&body) {
        Ok(_) => (StatusCode::ACCEPTED, r#"{"status":"accepted"}"#),
        Err(_) => (StatusCode::BAD_REQUEST, r#"{"error":"invalid_body"}"#),
    }
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let bind = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:18080".into());
    let app = Router::new().route("/webhooks/{route}", post(webhook));
    let listener = tokio::net::TcpListener::bind(&bind).await?;
    axum::serve(listener, app).await
}
