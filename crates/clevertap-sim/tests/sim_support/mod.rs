//! Shared helpers of the simulator integration tests: start a simulator, post uploads.
#![allow(
    dead_code,
    reason = "each test binary uses a different subset of the helpers"
)]

use std::net::SocketAddr;
use std::time::Duration;

use clevertap_sim::{Simulator, SimulatorConfig};
use serde_json::{Value, json};

pub const ACC: &str = "SIM-ACC-001";
pub const PASS: &str = "sim-passcode";
pub const WAIT: Duration = Duration::from_secs(5);

pub fn local() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

pub async fn sim_with(config: SimulatorConfig) -> Simulator {
    Simulator::start(local(), config)
        .await
        .expect("simulator starts")
}

pub async fn sim() -> Simulator {
    sim_with(SimulatorConfig::default()).await
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client")
}

pub async fn upload_as(
    c: &reqwest::Client,
    sim: &Simulator,
    acc: &str,
    pass: &str,
    body: String,
) -> (u16, Value) {
    let resp = c
        .post(format!("{}/1/upload", sim.url()))
        .header("X-CleverTap-Account-Id", acc)
        .header("X-CleverTap-Passcode", pass)
        .header("Content-Type", "application/json; charset=utf-8")
        .body(body)
        .send()
        .await
        .expect("request answered");
    let status = resp.status().as_u16();
    let text = resp.text().await.expect("body");
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

pub async fn upload(c: &reqwest::Client, sim: &Simulator, body: Value) -> (u16, Value) {
    upload_as(c, sim, ACC, PASS, body.to_string()).await
}

pub fn profile(id: &str, data: Value) -> Value {
    json!({"type":"profile","identity":id,"ts":1761652800,"profileData":data})
}
