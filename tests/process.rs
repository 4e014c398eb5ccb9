//! The real binary as a process: kill -9 mid-burst, SIGTERM mid-delivery, the CLI tools.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use clevertap_sim::{SimAccount, Simulator, SimulatorConfig};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_freshtap");
const TOKEN: &str = "process-token";

struct Relay {
    dir: tempfile::TempDir,
    config: PathBuf,
    port: u16,
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

impl Relay {
    fn new(simulator_url: &str, extra: &str) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let config = dir.path().join("freshtap.toml");
        std::fs::write(
            &config,
            format!(
                r#"
[server]
bind = "127.0.0.1:{port}"
shutdown_grace_secs = 10
drain_secs = 0
[queue]
url = "sqlite://{db}"
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
level = "warn"
{extra}
"#,
                db = dir.path().join("data/freshtap.db").display()
            ),
        )
        .expect("write config");
        Self { dir, config, port }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(BIN);
        command
            .args(args)
            .arg("--config")
            .arg(&self.config)
            .current_dir(self.dir.path())
            .env_remove("FRESHTAP_CONFIG")
            .stdin(Stdio::null());
        command
    }

    fn start(&self) -> Child {
        self.command(&["serve"])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("binary starts")
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("binary runs")
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    async fn wait_healthy(&self) {
        let client = reqwest::Client::new();
        for _ in 0..250 {
            if client
                .get(self.url("/healthz"))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("the relay did not become healthy within 5 s");
    }
}

async fn simulator() -> Simulator {
    let config = SimulatorConfig {
        accounts: vec![SimAccount::new("PROC-ACC", "proc-passcode")],
        ..SimulatorConfig::default()
    };
    Simulator::start("127.0.0.1:0".parse().expect("addr"), config)
        .await
        .expect("simulator")
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

fn wait_exit(child: &mut Child, within: Duration) -> std::process::ExitStatus {
    let deadline = std::time::Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the relay did not exit in time"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(child.id().to_string())
        .status()
        .expect("kill runs");
    assert!(status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_a_burst_loses_no_accepted_webhook() {
    let sim = simulator().await;
    sim.faults().set_latency(Duration::from_millis(40));
    let relay = Relay::new(&sim.url(), "");
    let mut child = relay.start();
    relay.wait_healthy().await;

    let client = reqwest::Client::new();
    let accepted = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut senders = Vec::new();
    for worker in 0..8 {
        let (client, accepted, url) = (
            client.clone(),
            accepted.clone(),
            relay.url("/webhooks/contacts"),
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
    child.kill().expect("SIGKILL");
    child.wait().expect("reaped");
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
    relay.wait_healthy().await;
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
    signal(&child, "TERM");
    assert!(wait_exit(&mut child, Duration::from_secs(15)).success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_mid_delivery_finishes_the_request_and_exits_cleanly() {
    let sim = simulator().await;
    sim.faults().set_latency(Duration::from_millis(800));
    let relay = Relay::new(&sim.url(), "");
    let mut child = relay.start();
    relay.wait_healthy().await;
    let client = reqwest::Client::new();
    let response = client
        .post(relay.url("/webhooks/contacts"))
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
    signal(&child, "TERM");
    let status = wait_exit(&mut child, Duration::from_secs(15));
    assert!(status.success(), "exit status {status:?}");
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
    let relay = Relay::new(&sim.url(), "");
    let mut child = relay.start();
    relay.wait_healthy().await;
    let client = reqwest::Client::new();
    let response = client
        .post(relay.url("/webhooks/contacts"))
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
    signal(&child, "TERM");
    assert!(wait_exit(&mut child, Duration::from_secs(15)).success());

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
    relay.wait_healthy().await;
    sim.wait_for_accepted(1, Duration::from_secs(10))
        .await
        .expect("replayed record delivered");
    signal(&child, "TERM");
    assert!(wait_exit(&mut child, Duration::from_secs(15)).success());
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
    let relay = Relay::new(
        "http://127.0.0.1:9",
        &format!(
            "[routes.bad]\naccount = \"main\"\ntemplate = \"{}\"\n",
            template.display()
        ),
    );
    let output = relay.run(&["check-config"]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("bad.json") && stderr.contains("nosuchfilter"),
        "{stderr}"
    );
    let good = Relay::new("http://127.0.0.1:9", "");
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
    let relay = Relay::new(&sim.url(), "");
    let url = relay.url("/healthz");
    let down = relay.run(&["healthcheck", "--url", &url]);
    assert!(!down.status.success(), "no relay yet");
    let mut child = relay.start();
    relay.wait_healthy().await;
    assert!(relay.run(&["healthcheck", "--url", &url]).status.success());
    signal(&child, "TERM");
    assert!(wait_exit(&mut child, Duration::from_secs(15)).success());
}
