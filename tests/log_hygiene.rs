//! Log hygiene: the real binary at `log.level = "debug"` (plus a directive asking for the
//! PostgreSQL driver's debug), on SQLite and on PostgreSQL, takes webhooks, a drop-in upload,
//! admin calls, a bad token and a delivery CleverTap refuses; not one of the emails, phones,
//! tokens or the passcode may appear anywhere in what it wrote to stderr.

#[path = "pg_support/mod.rs"]
mod pg_support;
mod support;

use std::time::Duration;

use clevertap_sim::Simulator;
use serde_json::Value;
use support::relay::{Relay, Running};

const TOKEN: &str = "route-token-7f3a9c";
const ADMIN: &str = "admin-token-51be07";
const PASSCODE: &str = "passcode-c0ffee42";
const WRONG: &str = "wrong-token-d15ea5e";
const ACCOUNT: &str = "HYG-ACC";
/// Every string that must never reach a log line.
const SECRETS: &[&str] = &[
    TOKEN,
    ADMIN,
    PASSCODE,
    WRONG,
    "amelia.hart@example.com",
    "7700 900123",
    "7700900123",
    "refused.person@example.org",
    "+15550100777",
    "5550100777",
    "upload.person@example.net",
    "+4915112345678",
    "15112345678",
];

fn relay(queue_url: &str, simulator_url: &str) -> Relay {
    Relay::new(&format!(
        r#"
[server]
bind = "127.0.0.1:0"
drain_secs = 0
[queue]
url = "{queue_url}"
[delivery]
base_delay_ms = 20
max_delay_secs = 1
[clevertap.accounts.main]
account_id = "{ACCOUNT}"
passcode = "{PASSCODE}"
base_url = "{simulator_url}"
[auth]
token = "{TOKEN}"
admin_token = "{ADMIN}"
[log]
level = "debug,tokio_postgres=trace,rusqlite=trace,hyper=trace,reqwest=trace"
"#
    ))
}

async fn simulator() -> Simulator {
    let sim = support::sim::one_account(ACCOUNT, PASSCODE).await;
    sim.faults()
        .set_record_code("refused.person@example.org", 516);
    sim
}

fn profile(identity: &str, phone: &str) -> String {
    format!(
        r#"{{"d":[{{"identity":"{identity}","type":"profile","profileData":{{"Email":"{identity}","Phone":"{phone}"}}}}]}}"#
    )
}

/// Everything a user does to the relay, with personal data and secrets in it.
async fn exercise(relay: &Running, sim: &Simulator) {
    let client = reqwest::Client::new();
    let post = |path: &str, token: &str, body: String| {
        client
            .post(relay.url(path))
            .header("X-Freshtap-Token", token)
            .header("Content-Type", "application/json")
            .body(body)
            .send()
    };
    // The first request fails, so the relay retries.
    sim.faults().fail_next(1, 500);
    let fixture = std::fs::read_to_string("tests/fixtures/3.1.json").expect("fixture");
    let freshsales = post("/webhooks/contacts", TOKEN, fixture)
        .await
        .expect("sent");
    assert_eq!(freshsales.status(), 202);
    let refused = post(
        "/webhooks/contacts",
        TOKEN,
        profile("refused.person@example.org", "+15550100777"),
    )
    .await
    .expect("sent");
    assert_eq!(refused.status(), 202);
    let request_id = refused.headers()["x-request-id"]
        .to_str()
        .expect("id")
        .to_owned();
    let wrong = post("/webhooks/contacts", WRONG, profile("x@y.z", "1"))
        .await
        .expect("sent");
    assert_eq!(wrong.status(), 401);
    let upload = client
        .post(relay.url("/1/upload"))
        .header("X-CleverTap-Account-Id", ACCOUNT)
        .header("X-CleverTap-Passcode", PASSCODE)
        .header("Content-Type", "application/json")
        .body(profile("upload.person@example.net", "+4915112345678"))
        .send()
        .await
        .expect("sent");
    assert!(upload.status().is_success(), "{}", upload.status());
    sim.wait_for_accepted(2, Duration::from_secs(15))
        .await
        .expect("the fixture and the upload were delivered");

    let admin = |path: &str| client.get(relay.url(path)).bearer_auth(ADMIN).send();
    let mut letters = Value::Null;
    for _ in 0..200 {
        letters = admin("/admin/dead-letters")
            .await
            .expect("list")
            .json()
            .await
            .expect("JSON");
        if letters.to_string().contains("516") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        letters.to_string().contains("516"),
        "a dead letter: {letters}"
    );
    let lookup = admin(&format!("/admin/webhooks?request_id={request_id}"))
        .await
        .expect("lookup");
    assert!(lookup.status().is_success(), "{}", lookup.status());
    let stranger = client
        .get(relay.url("/admin/stats"))
        .bearer_auth(WRONG)
        .send()
        .await
        .expect("stats");
    assert_eq!(stranger.status(), 401);
}

fn assert_clean(relay: &Running) {
    let lines = relay.lines();
    // The directives ask hyper, reqwest and the drivers for trace: none of it gets through.
    let foreign: Vec<&String> = lines
        .iter()
        .filter(|l| {
            let event: Value = serde_json::from_str(l).unwrap_or(Value::Null);
            let own = event["target"]
                .as_str()
                .is_some_and(|t| t == "freshtap" || t.starts_with("freshtap::"));
            !own && !matches!(event["level"].as_str(), Some("WARN" | "ERROR"))
        })
        .collect();
    assert!(
        foreign.is_empty(),
        "{} line(s) below WARN from other crates (or not JSON), e.g. {}",
        foreign.len(),
        foreign[0]
    );
    for secret in SECRETS {
        let leaks: Vec<&String> = lines.iter().filter(|l| l.contains(secret)).collect();
        assert!(
            leaks.is_empty(),
            "{secret:?} is in {} log line(s), e.g. {}",
            leaks.len(),
            leaks[0]
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn debug_logs_on_sqlite_hold_no_personal_data_or_secret() {
    let sim = simulator().await;
    let config = relay("sqlite://{dir}/q.db", &sim.url());
    let mut running = config.start();
    running.wait_healthy().await;
    exercise(&running, &sim).await;
    running.stop(Duration::from_secs(15));
    assert_clean(&running);
}

#[cfg_attr(
    not(freshtap_postgres),
    ignore = "needs FRESHTAP_TEST_DATABASE_URL (PostgreSQL)"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn debug_logs_on_postgres_hold_no_personal_data_or_secret() {
    let schema = pg_support::Schema::create().await;
    let sim = simulator().await;
    let config = relay(&schema.url(), &sim.url());
    let mut running = config.start();
    running.wait_healthy().await;
    exercise(&running, &sim).await;
    running.stop(Duration::from_secs(15));
    assert_clean(&running);
}
