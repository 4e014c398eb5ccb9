//! The SQLite queue's storage failing under the running relay: a disk that fills up (a real
//! tmpfs, filled), the queue file replaced under the process, and a damaged file at start.

mod support;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use clevertap_sim::Simulator;
use support::relay::{Relay, Running};

const TOKEN: &str = "storage-token";

fn relay(db: &str, simulator_url: &str) -> Relay {
    Relay::new(&format!(
        r#"
[server]
bind = "127.0.0.1:0"
drain_secs = 0
[queue]
url = "sqlite://{db}"
lease_secs = 60
[delivery]
base_delay_ms = 20
max_delay_secs = 1
[clevertap.accounts.main]
account_id = "STORE-ACC"
passcode = "store-passcode"
base_url = "{simulator_url}"
[auth]
token = "{TOKEN}"
admin_token = "store-admin"
[log]
level = "warn,freshtap::startup=info"
"#
    ))
}

async fn simulator() -> Simulator {
    support::sim::one_account("STORE-ACC", "store-passcode").await
}

/// A webhook for `identity`, padded so a few of them fill what is left of a disk.
async fn send(client: &reqwest::Client, relay: &Running, identity: &str) -> u16 {
    let pad = "x".repeat(4000);
    let body = format!(
        r#"{{"d":[{{"identity":"{identity}","type":"profile","profileData":{{"Pad":"{pad}"}}}}]}}"#
    );
    client
        .post(relay.url("/webhooks/contacts"))
        .header("X-Freshtap-Token", TOKEN)
        .header("Content-Type", "application/json")
        .body(body)
        .send()
        .await
        .expect("an answer")
        .status()
        .as_u16()
}

/// How many times the simulator accepted each identity.
fn deliveries(sim: &Simulator) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for record in sim.accepted_records() {
        if let Some(identity) = record["identity"].as_str() {
            *counts.entry(identity.to_owned()).or_default() += 1;
        }
    }
    counts
}

/// Every accepted identity delivered exactly once (bounded wait).
async fn assert_delivered_once(sim: &Simulator, accepted: &[String]) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let got = deliveries(sim);
        if accepted.iter().all(|i| got.contains_key(i)) {
            break;
        }
        let missing: Vec<&String> = accepted.iter().filter(|i| !got.contains_key(*i)).collect();
        assert!(
            tokio::time::Instant::now() < deadline,
            "accepted webhooks not delivered: {missing:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let twice: Vec<(String, usize)> = deliveries(sim)
        .into_iter()
        .filter(|(_, n)| *n > 1)
        .collect();
    assert!(twice.is_empty(), "delivered more than once: {twice:?}");
}

fn queue_errors(relay: &Running) -> usize {
    relay
        .lines()
        .iter()
        .filter(|l| l.contains("\"ERROR\"") && l.contains("queue fault"))
        .count()
}

/// A tmpfs of `size` mounted at `dir`, unmounted on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Self {
        std::fs::create_dir_all(dir).expect("mount point");
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .status()
            .expect("mount runs");
        assert!(status.success(), "mount -t tmpfs (build.rs found it works)");
        Self(dir.to_owned())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Writes `path` until the file system says it is full.
fn fill(path: &Path) {
    let mut file = std::fs::File::create(path).expect("filler");
    let chunk = vec![0u8; 16 * 1024];
    while file
        .write_all(&chunk)
        .and_then(|()| file.sync_all())
        .is_ok()
    {}
}

#[cfg_attr(
    not(freshtap_tmpfs),
    ignore = "needs to mount a tmpfs (root or CAP_SYS_ADMIN)"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_webhooks_then_recovers_without_a_restart() {
    let sim = simulator().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mnt = dir.path().join("disk");
    // Room for SQLite's WAL to grow to its checkpoint size (1000 pages) once freed.
    let _disk = Tmpfs::mount(&mnt, "16m");
    let config = relay(&mnt.join("q.db").display().to_string(), &sim.url());
    let mut running = config.start();
    running.wait_healthy().await;
    let client = reqwest::Client::new();
    let mut accepted = Vec::new();
    for i in 0..10 {
        let identity = format!("before-{i}");
        assert_eq!(send(&client, &running, &identity).await, 202);
        accepted.push(identity);
    }
    assert_delivered_once(&sim, &accepted).await;

    fill(&mnt.join("filler"));
    let mut refused = 0;
    for i in 0..300 {
        let identity = format!("full-{i}");
        match send(&client, &running, &identity).await {
            202 => accepted.push(identity),
            503 => refused += 1,
            other => panic!("intake on a full disk answered {other}"),
        }
        if refused >= 3 {
            break;
        }
    }
    assert!(refused >= 3, "intake answers 503 once the disk is full");
    let ready = running
        .wait_ready(&client, 503, Duration::from_secs(5))
        .await;
    let reason = ready["reason"].as_str().unwrap_or_default().to_owned();
    assert!(
        reason.contains("full"),
        "/readyz says the disk is full: {ready}"
    );
    assert_eq!(queue_errors(&running), 1, "one ERROR line for the fault");

    std::fs::remove_file(mnt.join("filler")).expect("free the disk");
    running
        .wait_ready(&client, 200, Duration::from_secs(10))
        .await;
    for i in 0..10 {
        let identity = format!("after-{i}");
        assert_eq!(send(&client, &running, &identity).await, 202);
        accepted.push(identity);
    }
    assert_delivered_once(&sim, &accepted).await;
    running.assert_running();
    assert_eq!(queue_errors(&running), 1, "still one ERROR line");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_file_replaced_under_the_process_is_noticed() {
    let sim = simulator().await;
    let config = relay("{dir}/data/q.db", &sim.url());
    let mut running = config.start();
    running.wait_healthy().await;
    let client = reqwest::Client::new();
    assert_eq!(send(&client, &running, "kept").await, 202);
    assert_delivered_once(&sim, &["kept".to_owned()]).await;

    let db = config.dir().join("data/q.db");
    std::fs::rename(&db, config.dir().join("data/q.db.old")).expect("move aside");
    std::fs::copy(config.dir().join("data/q.db.old"), &db).expect("a copy in its place");
    let ready = running
        .wait_ready(&client, 503, Duration::from_secs(10))
        .await;
    let reason = ready["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("replaced") && reason.contains("q.db"),
        "/readyz names the file: {ready}"
    );
    assert_eq!(send(&client, &running, "refused").await, 503);
    // It stays refused: no commit clears it, only a restart.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    running
        .wait_ready(&client, 503, Duration::from_secs(1))
        .await;
    assert_eq!(queue_errors(&running), 1, "one ERROR line");
    running.stop(Duration::from_secs(15));

    // After the restart it runs on the file now at the path.
    let mut again = config.start();
    again
        .wait_ready(&client, 200, Duration::from_secs(10))
        .await;
    again.stop(Duration::from_secs(15));
}

#[test]
fn a_damaged_queue_file_is_refused_at_start_naming_it() {
    let config = relay("{dir}/data/q.db", "http://127.0.0.1:9");
    let db = config.dir().join("data/q.db");
    std::fs::create_dir_all(db.parent().expect("dir")).expect("dir");
    std::fs::write(&db, "not a database, only garbage\n".repeat(300)).expect("garbage");
    let output = config.run(&["serve"]);
    assert_eq!(output.status.code(), Some(1), "the relay refuses to start");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&db.display().to_string()) && stderr.contains(".recover"),
        "the message names the file and how to recover: {stderr}"
    );
}
