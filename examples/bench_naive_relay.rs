//! Benchmark baseline: the relay a user would hand-write — parse the Freshsales contact, map it
//! to one CleverTap profile record, forward it (one upstream request per webhook, no queue, no
//! batching, nothing durable) and answer once CleverTap has answered.
//!
//! `cargo run --release --example bench_naive_relay -- 127.0.0.1:18081 http://127.0.0.1:19090`

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use serde_json::{Value, json};

struct Upstream {
    client: reqwest::Client,
    url: String,
}

fn field<'a>(contact: &'a Value, name: &str) -> &'a str {
    contact.get(name).and_then(Value::as_str).unwrap_or("")
}

/// The hand-written mapping: lowercased email as identity, Freshsales date to epoch seconds,
/// phone with its spaces removed.
fn to_record(contact: &Value) -> Value {
    let email = field(contact, "contact_email").trim().to_lowercase();
    let ts = chrono::NaiveDateTime::parse_from_str(
        field(contact, "contact_updated_at"),
        "%d-%m-%Y %H:%M:%S",
    )
    .map_or(0, |t| t.and_utc().timestamp());
    let name = format!(
        "{} {}",
        field(contact, "contact_first_name"),
        field(contact, "contact_last_name")
    );
    let phone: String = field(contact, "contact_mobile_number")
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    json!({"type": "profile", "identity": email, "ts": ts, "profileData": {
        "Name": name.trim(), "Email": email, "Phone": phone,
        "Lead Source": field(contact, "contact_lead_source_name"),
        "Lifecycle Stage": field(contact, "contact_lifecycle_stage_name"),
        "Freshsales Contact ID": contact.get("contact_id").cloned().unwrap_or(Value::Null),
    }})
}

async fn webhook(State(up): State<Arc<Upstream>>, body: Bytes) -> (StatusCode, &'static str) {
    let Ok(contact) = serde_json::from_slice::<Value>(&body) else {
        return (StatusCode::BAD_REQUEST, r#"{"error":"invalid_body"}"#);
    };
    let answer = up
        .client
        .post(&up.url)
        .header("X-CleverTap-Account-Id", "SIM-ACC-001")
        .header("X-CleverTap-Passcode", "sim-passcode")
        .json(&json!({"d": [to_record(&contact)]}))
        .send()
        .await;
    match answer {
        Ok(r) if r.status().is_success() => (StatusCode::ACCEPTED, r#"{"status":"accepted"}"#),
        _ => (StatusCode::BAD_GATEWAY, r#"{"error":"upstream"}"#),
    }
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let bind = args.next().unwrap_or_else(|| "127.0.0.1:18081".into());
    let upstream = args
        .next()
        .unwrap_or_else(|| "http://127.0.0.1:19090".into());
    let up = Arc::new(Upstream {
        client: reqwest::Client::new(),
        url: format!("{upstream}/1/upload"),
    });
    let app = Router::new()
        .route("/webhooks/{route}", post(webhook))
        .with_state(up);
    let listener = tokio::net::TcpListener::bind(&bind).await?;
    axum::serve(listener, app).await
}
