//! A relay replica on a PostgreSQL queue, as deployed, and the simulator account both replicas
//! write to; with the helpers to send numbered updates and read back what was delivered.

use std::collections::BTreeMap;
use std::time::Duration;

use clevertap_sim::{SimAccount, Simulator, SimulatorConfig};
use serde_json::Value;

use super::relay::Relay;

pub const TOKEN: &str = "replica-token";
pub const ADMIN: &str = "replica-admin";
pub const ACCOUNT: &str = "REPL-ACC";
/// Both replicas write to one CleverTap account; each uses its own valid passcode, so the
/// simulator's request log (which keeps a passcode's first two characters) tells who sent what.
pub const PASS_A: &str = "a-passcode";
pub const PASS_B: &str = "b-passcode";
pub const MASK_A: &str = "a-***";
pub const MASK_B: &str = "b-***";
/// The account's total across both replicas.
pub const MAX_IN_FLIGHT: usize = 3;
pub const BATCH: usize = 5;
pub const LEASE_SECS: u64 = 7;

/// One `freshtap serve` configuration on `queue_url`, sending with `passcode`.
pub fn replica(queue_url: &str, simulator_url: &str, passcode: &str) -> Relay {
    Relay::new(&format!(
        r#"
[server]
bind = "127.0.0.1:0"
shutdown_grace_secs = 5
drain_secs = 0
[queue]
url = "{queue_url}"
lease_secs = {LEASE_SECS}
pool_size = 4
[delivery]
max_in_flight = {MAX_IN_FLIGHT}
batch_max_records = {BATCH}
base_delay_ms = 20
max_delay_secs = 1
request_timeout_secs = 2
[clevertap.accounts.main]
account_id = "{ACCOUNT}"
passcode = "{passcode}"
base_url = "{simulator_url}"
[auth]
token = "{TOKEN}"
admin_token = "{ADMIN}"
[log]
level = "warn,freshtap::startup=info"
"#
    ))
}

pub async fn simulator() -> Simulator {
    let mut account = SimAccount::new(ACCOUNT, PASS_A);
    account.passcodes.push(PASS_B.to_owned());
    let config = SimulatorConfig {
        accounts: vec![account],
        ..SimulatorConfig::default()
    };
    Simulator::start("127.0.0.1:0".parse().expect("addr"), config)
        .await
        .expect("simulator")
}

/// Row counts by state, read behind the replicas' backs.
pub async fn states(queue_url: &str) -> BTreeMap<String, i64> {
    let (client, connection) = tokio_postgres::connect(queue_url, tokio_postgres::NoTls)
        .await
        .expect("connect to the test database");
    tokio::spawn(connection);
    client
        .query("SELECT state, count(*) FROM webhooks GROUP BY state", &[])
        .await
        .expect("count rows")
        .iter()
        .map(|row| (row.get::<_, String>(0), row.get::<_, i64>(1)))
        .collect()
}

/// A CleverTap-shaped passthrough body: one profile update of `identity` carrying `seq`.
pub fn body(identity: &str, seq: u32) -> String {
    format!(
        r#"{{"d":[{{"identity":"{identity}","type":"profile","profileData":{{"Seq":{seq}}}}}]}}"#
    )
}

pub fn identity_seq(record: &Value) -> Option<(String, u64)> {
    Some((
        record["identity"].as_str()?.to_owned(),
        record["profileData"]["Seq"].as_u64()?,
    ))
}

/// The (identity, Seq) pairs the simulator accepted, in the order it accepted them.
pub fn delivered(sim: &Simulator) -> Vec<(String, u64)> {
    sim.accepted_records()
        .iter()
        .filter_map(identity_seq)
        .collect()
}

pub async fn post(
    client: &reqwest::Client,
    url: &str,
    body: String,
) -> Result<u16, reqwest::Error> {
    client
        .post(url)
        .header("X-Freshtap-Token", TOKEN)
        .header("Content-Type", "application/json")
        .body(body)
        .send()
        .await
        .map(|r| r.status().as_u16())
}

pub async fn admin_stats(client: &reqwest::Client, url: &str) -> Value {
    client
        .get(url)
        .bearer_auth(ADMIN)
        .send()
        .await
        .expect("admin stats")
        .json()
        .await
        .expect("stats JSON")
}

/// Waits until `sim` accepted every one of `want`, bounded.
pub async fn wait_delivered(
    sim: &Simulator,
    want: &std::collections::BTreeSet<(String, u64)>,
    within: Duration,
) {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let got: std::collections::BTreeSet<(String, u64)> = delivered(sim).into_iter().collect();
        let missing: Vec<&(String, u64)> = want.difference(&got).collect();
        if missing.is_empty() {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} accepted webhooks never reached CleverTap, e.g. {:?}",
            missing.len(),
            missing.first()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
