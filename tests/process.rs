//! The real binary as a process: kill -9 mid-burst, SIGTERM mid-delivery, the CLI tools.

mod support;

use std::collections::BTreeSet;
use std::process::Command;
use std::time::Duration;

use clevertap_sim::Simulator;
use serde_json::Value;
use support::relay::{BIN, Relay};

const TOKEN: &str = "process-token";

/// A relay on a SQLite queue in its own directory, delivering to `simulator_url`.
fn relay(simulator_url: &str, extra: &str) -> Relay {
    Relay::new(&format!(
        r#"
[server]
bind = "127.0.0.1:0"
shutdown_grace_secs = 10
drain_secs = 0
[queue]
url = "sqlite://{{dir}}/data/freshtap.db"
lease_secs = 7
[delivery]
base_delay_ms = 20
max_delay_secs = 1
request_timeout_secs = 2
[clevertap.accounts.main]
account_id = "PROC-ACC"
passcode = "proc-passcode"
base_url = "{simulator_url}"
[auth]
token = "{TOKEN}"
admin_token = "proc-admin"
[log]
level = "warn,freshtap::startup=info"
{extra}
"#
    ))
}

async fn simulator() -> Simulator {
    support::sim::one_account("PROC-ACC", "proc-passcode").await
}

fn body(identity: &str) -> String {
    format!(
        r#"{{"d":[{{"identity":"{identity}","type":"profile","profileData":{{"Name":"{identity}"}}}}]}}"#
    )
}

fn identities(sim: &Simulator) -> BTreeSet<String> {
    sim.accepted_records()
        .iter()
        .filter_map(|r| r["identity"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_a_burst_loses_no_accepted_webhook() {
    let sim = simulator().await;
    sim.faults().set_latency(Duration::from_millis(40));
    let relay = relay(&sim.url(), "");
    let mut child = relay.start();
    child.wait_healthy().await;

    let client = reqwest::Client::new();
    let accepted = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut senders = Vec::new();
    for worker in 0..8 {
        let (client, accepted, url) = (
            client.clone(),
            accepted.clone(),
            child.url("/webhooks/contacts"),
        );
        senders.push(tokio::spawn(async move {
            for i in 0..60 {
                let identity = format!("burst-{worker}-{i}");
                let sent = client
                    .post(&url)
                    .header("X-Freshtap-Token", TOKEN)
                    .body(body(&identity))
                    .send()
                    .await;
                match sent {
                    Ok(r) if r.status() == reqwest::StatusCode::ACCEPTED => {
                        accepted.lock().expect("lock").push(identity)
                    }
                    Ok(_) => {}
                    Err(_) => return, // the relay is gone
                }
            }
        }));
    }
    // Kill once a good part of the burst is in, while deliveries are in flight.
    for _ in 0..500 {
        if accepted.lock().expect("lock").len() >= 150 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    child.kill();
    for sender in senders {
        sender.await.expect("sender task");
    }
    let accepted: BTreeSet<String> = accepted.lock().expect("lock").iter().cloned().collect();
    assert!(
        accepted.len() >= 150,
        "the burst was under way when killed ({} accepted)",
        accepted.len()
    );

    let mut child = relay.start();
    child.wait_healthy().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let got = identities(&sim);
        let missing: Vec<&String> = accepted.difference(&got).collect();
        if missing.is_empty() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} accepted webhooks never reached CleverTap, e.g. {:?}",
            missing.len(),
            missing.first()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    child.stop(Duration::from_secs(15));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_mid_delivery_finishes_the_request_and_exits_cleanly() {
    let sim = simulator().await;
    sim.faults().set_latency(Duration::from_millis(800));
    let relay = relay(&sim.url(), "");
    let mut child = relay.start();
    child.wait_healthy().await;
    let client = reqwest::Client::new();
    let response = client
        .post(child.url("/webhooks/contacts"))
        .header("X-Freshtap-Token", TOKEN)
        .body(body("in-flight"))
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), reqwest::StatusCode::ACCEPTED);
    // Wait until the delivery is in flight at "CleverTap", then ask the relay to stop.
    for _ in 0..250 {
        if sim.stats().in_flight > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(sim.stats().in_flight > 0, "the delivery was in flight");
    child.stop(Duration::from_secs(15));
    assert!(
        identities(&sim).contains("in-flight"),
        "the in-flight delivery finished before exit"
    );
    let output = relay.run(&["dead-letters", "list"]);
    assert!(output.status.success());
    assert!(
        output.stdout.is_empty(),
        "nothing dead: {}",
        String::from_utf8_lossy(&output.stdout)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_are_listed_and_replayed_from_the_command_line() {
    let sim = simulator().await;
    sim.faults().set_record_code("cli-refused", 516);
    let relay = relay(&sim.url(), "");
    let mut child = relay.start();
    child.wait_healthy().await;
    let client = reqwest::Client::new();
    let response = client
        .post(child.url("/webhooks/contacts"))
        .header("X-Freshtap-Token", TOKEN)
        .body(body("cli-refused"))
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), reqwest::StatusCode::ACCEPTED);
    sim.wait_for_requests(1, Duration::from_secs(10))
        .await
        .expect("attempted");
    let mut listed = String::new();
    for _ in 0..100 {
        listed = String::from_utf8_lossy(&relay.run(&["dead-letters", "list"]).stdout).into_owned();
        if !listed.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let letter: Value =
        serde_json::from_str(listed.lines().next().expect("one dead letter")).expect("JSON line");
    assert_eq!(letter["code"], "516");
    child.stop(Duration::from_secs(15));

    sim.faults().set_record_code("cli-refused", 0);
    let replay = relay.run(&["dead-letters", "replay", "--all"]);
    assert!(
        replay.status.success(),
        "{}",
        String::from_utf8_lossy(&replay.stderr)
    );
    let report: Value = serde_json::from_slice(&replay.stdout).expect("JSON report");
    assert_eq!(report["replayed"], 1);
    let mut child = relay.start();
    child.wait_healthy().await;
    sim.wait_for_accepted(1, Duration::from_secs(10))
        .await
        .expect("replayed record delivered");
    child.stop(Duration::from_secs(15));
}

#[test]
fn serve_without_credentials_names_the_key_to_set() {
    let dir = tempfile::tempdir().expect("tempdir");
    let output = Command::new(BIN)
        .arg("serve")
        .current_dir(dir.path())
        .env_remove("FRESHTAP_CONFIG")
        .env(
            "FRESHTAP__QUEUE__URL",
            format!("sqlite://{}", dir.path().join("q.db").display()),
        )
        .env("FRESHTAP__AUTH__TOKEN", "t")
        .output()
        .expect("runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("clevertap.accounts.main.account_id is not set"),
        "{stderr}"
    );
    assert!(
        stderr.contains("FRESHTAP__CLEVERTAP__ACCOUNTS__MAIN__PASSCODE"),
        "{stderr}"
    );
}

#[test]
fn check_config_reports_template_errors_with_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let template = dir.path().join("bad.json");
    std::fs::write(
        &template,
        "{\"type\":\"profile\",\"identity\":\"{{ email | nosuchfilter }}\"}",
    )
    .expect("write");
    let bad = relay(
        "http://127.0.0.1:9",
        &format!(
            "[routes.bad]\naccount = \"main\"\ntemplate = \"{}\"\n",
            template.display()
        ),
    );
    let output = bad.run(&["check-config"]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("bad.json") && stderr.contains("nosuchfilter"),
        "{stderr}"
    );
    let good = relay("http://127.0.0.1:9", "");
    let output = good.run(&["check-config"]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_healthcheck_command_reflects_the_relay() {
    let sim = simulator().await;
    let relay = relay(&sim.url(), "");
    // Nothing listens on the discard port.
    let down = relay.run(&["healthcheck", "--url", "http://127.0.0.1:9/healthz"]);
    assert!(!down.status.success(), "no relay there");
    let mut child = relay.start();
    child.wait_healthy().await;
    let url = child.url("/healthz");
    assert!(relay.run(&["healthcheck", "--url", &url]).status.success());
    child.stop(Duration::from_secs(15));
}
