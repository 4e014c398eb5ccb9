//! spawn_app(): the real application on port 0, its own SQLite file, a simulator as CleverTap.

use std::future::Future;
use std::time::Duration;

use clevertap_sim::{SimAccount, Simulator, SimulatorConfig};
use freshtap::config::Settings;
use freshtap::startup::Application;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

pub const TOKEN: &str = "test-token";
pub const ADMIN: &str = "test-admin";
pub const ACCOUNT_ID: &str = "TEST-ACC-1";
pub const PASSCODE: &str = "test-passcode";

/// A Simple-mode contact (Freshsales reference 3.1) with a chosen email.
pub fn contact(email: &str) -> String {
    format!(
        r#"{{"contact_id":16001234567,"contact_first_name":"Amelia","contact_last_name":"Hart","contact_email":"{email}","contact_mobile_number":"+44 7700 900123","contact_lead_source_name":"Web Form","contact_updated_at":"26-11-2026 09:14:33"}}"#
    )
}

/// A CleverTap-shaped body (Advanced mode, passthrough) for one identity.
pub fn upload(identity: &str) -> String {
    format!(
        r#"{{"d":[{{"identity":"{identity}","type":"profile","profileData":{{"Name":"Test {identity}"}}}}]}}"#
    )
}

pub struct TestApp {
    pub address: String,
    pub clevertap: Simulator,
    pub client: reqwest::Client,
    pub shutdown: CancellationToken,
    pub task: tokio::task::JoinHandle<()>,
    pub dir: std::sync::Arc<tempfile::TempDir>,
}

/// Settings every test starts from: fast backoff and probes, a 2 s CleverTap timeout.
pub fn base_settings(db_dir: &std::path::Path, simulator_url: &str, extra: &str) -> Settings {
    let overlay = format!(
        r#"
[server]
bind = "127.0.0.1:0"
shutdown_grace_secs = 5
drain_secs = 0
[queue]
url = "sqlite://{db}"
lease_secs = 7
[delivery]
base_delay_ms = 20
max_delay_secs = 1
request_timeout_secs = 2
pause_probe_secs = 1
[clevertap.accounts.main]
account_id = "{ACCOUNT_ID}"
passcode = "{PASSCODE}"
base_url = "{simulator_url}"
[auth]
token = "{TOKEN}"
admin_token = "{ADMIN}"
[log]
level = "warn"
{extra}
"#,
        db = db_dir.join("freshtap.db").display()
    );
    Settings::from_toml(&overlay).expect("test settings load")
}

pub fn simulator_config() -> SimulatorConfig {
    SimulatorConfig {
        accounts: vec![SimAccount::new(ACCOUNT_ID, PASSCODE)],
        ..SimulatorConfig::default()
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_with(|_| {}).await
}

pub async fn spawn_with(tweak: impl FnOnce(&mut Settings)) -> TestApp {
    spawn_with_toml("", tweak).await
}

/// With `extra` TOML (routes, say) layered over the test settings.
pub async fn spawn_with_toml(extra: &str, tweak: impl FnOnce(&mut Settings)) -> TestApp {
    let clevertap = Simulator::start("127.0.0.1:0".parse().expect("addr"), simulator_config())
        .await
        .expect("simulator starts");
    let dir = std::sync::Arc::new(tempfile::tempdir().expect("tempdir"));
    spawn_on(dir, clevertap, extra, tweak).await
}

/// Starts an app on an existing data directory and simulator (a restart).
pub async fn spawn_on(
    dir: std::sync::Arc<tempfile::TempDir>,
    clevertap: Simulator,
    extra: &str,
    tweak: impl FnOnce(&mut Settings),
) -> TestApp {
    let mut settings = base_settings(dir.path(), &clevertap.url(), extra);
    tweak(&mut settings);
    let shutdown = CancellationToken::new();
    let app = Application::build(settings, shutdown.clone())
        .await
        .expect("app builds");
    let address = format!("http://127.0.0.1:{}", app.port());
    let task = tokio::spawn(async move {
        app.run_until_stopped().await.expect("app runs");
    });
    TestApp {
        address,
        clevertap,
        client: reqwest::Client::new(),
        shutdown,
        task,
        dir,
    }
}

impl TestApp {
    pub async fn post_webhook(&self, route: &str, body: &str) -> reqwest::Response {
        self.client
            .post(format!("{}/webhooks/{route}", self.address))
            .header("X-Freshtap-Token", TOKEN)
            .header("Content-Type", "application/json")
            .body(body.to_owned())
            .send()
            .await
            .expect("request sent")
    }

    pub async fn admin(&self, method: reqwest::Method, path: &str) -> reqwest::Response {
        self.client
            .request(method, format!("{}{path}", self.address))
            .bearer_auth(ADMIN)
            .send()
            .await
            .expect("admin request sent")
    }

    pub async fn admin_json(&self, path: &str) -> Value {
        self.admin(reqwest::Method::GET, path)
            .await
            .json()
            .await
            .expect("admin answers JSON")
    }

    /// `POST /admin/erasures` with `body`.
    pub async fn erase(&self, body: Value) -> reqwest::Response {
        self.client
            .post(format!("{}/admin/erasures", self.address))
            .bearer_auth(ADMIN)
            .json(&body)
            .send()
            .await
            .expect("sent")
    }

    /// `GET /metrics`, the Prometheus text (empty when it cannot be read).
    pub async fn metrics_text(&self) -> String {
        let answer = self
            .client
            .get(format!("{}/metrics", self.address))
            .send()
            .await;
        match answer {
            Ok(answer) => answer.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        }
    }

    pub async fn stats(&self) -> Value {
        self.admin_json("/admin/stats").await
    }

    /// Stops the app the way SIGTERM does and waits for it to exit.
    pub async fn stop(self) -> (Simulator, std::sync::Arc<tempfile::TempDir>) {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(15), self.task)
            .await
            .expect("app stops in time")
            .expect("app task");
        (self.clevertap, self.dir)
    }
}

/// Polls `check` every 20 ms until it yields Some, failing with `what` after `timeout`.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Identities of every record the simulator accepted, in order.
pub fn accepted_identities(clevertap: &Simulator) -> Vec<String> {
    clevertap
        .accepted_records()
        .iter()
        .filter_map(|r| r.get("identity").and_then(Value::as_str).map(str::to_owned))
        .collect()
}
