//! Two real `freshtap serve` processes on one PostgreSQL queue behind nginx, as deployed, with
//! one killed by SIGKILL mid-burst.
//!
//! Needs `FRESHTAP_TEST_DATABASE_URL` and nginx from Debian (`apt-get install nginx`); `cargo
//! test` reports it ignored without. Every child process is killed when the test ends, also on
//! panic.

#[path = "pg_support/mod.rs"]
mod pg_support;
mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clevertap_sim::RequestOutcome;
use pg_support::Schema;
use support::relay::KillOnDrop;
use support::replica::{
    ACCOUNT, BATCH, LEASE_SECS, MASK_A, MASK_B, MAX_IN_FLIGHT, PASS_A, PASS_B, admin_stats, body,
    delivered, identity_seq, post, replica, simulator, states, wait_delivered,
};
use tokio::net::TcpStream;
use tokio::time::Instant;

/// nginx from the Debian package (or `FRESHTAP_TEST_NGINX`, a path to another binary).
fn nginx_binary() -> Option<PathBuf> {
    if let Some(given) = std::env::var_os("FRESHTAP_TEST_NGINX") {
        return Some(PathBuf::from(given)).filter(|p| p.exists());
    }
    ["/usr/sbin/nginx", "/usr/bin/nginx", "/usr/local/sbin/nginx"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

/// A config in the spirit of `deploy/nginx.conf`, with every path inside `dir`. One process
/// (`master_process off`) so that SIGKILL on drop leaves no worker behind.
fn nginx_config(dir: &Path, port: u16, upstreams: &[u16]) -> PathBuf {
    let servers: String = upstreams
        .iter()
        .map(|p| format!("        server 127.0.0.1:{p} max_fails=1 fail_timeout=2s;\n"))
        .collect();
    let d = dir.display();
    let text = format!(
        r#"
daemon off;
master_process off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 512; }}
http {{
    access_log off;
    client_body_temp_path {d}/client_body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    client_max_body_size 256k;
    client_body_buffer_size 256k;
    map $http_x_request_id $freshtap_request_id {{
        default $http_x_request_id;
        ""      $request_id;
    }}
    upstream freshtap {{
{servers}        keepalive 16;
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://freshtap;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Request-ID $freshtap_request_id;
            proxy_next_upstream error timeout http_502 http_503 non_idempotent;
            proxy_next_upstream_tries 2;
            proxy_connect_timeout 1s;
            proxy_read_timeout 15s;
        }}
    }}
}}
"#
    );
    let path = dir.join("nginx.conf");
    std::fs::write(&path, text).expect("write nginx.conf");
    path
}

/// A free port for nginx (it cannot report the port it bound).
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

async fn wait_listening(port: u16, within: Duration) {
    let deadline = Instant::now() + within;
    while TcpStream::connect(("127.0.0.1", port)).await.is_err() {
        assert!(
            Instant::now() < deadline,
            "nothing listens on {port} after {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

const IDENTITIES: usize = 40;
const UPDATES: u32 = 15;
const SENDERS: usize = 8;

/// What the burst's client saw for one webhook.
#[derive(Debug, Clone)]
struct Sent {
    identity: String,
    seq: u32,
    status: Option<u16>,
}

#[cfg_attr(
    not(all(freshtap_postgres, freshtap_nginx)),
    ignore = "needs FRESHTAP_TEST_DATABASE_URL (PostgreSQL) and nginx"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_behind_nginx_survive_a_kill_9_mid_burst() {
    let schema = Schema::create().await;
    let nginx = nginx_binary().expect("nginx is not installed (apt-get install -y nginx)");
    let sim = simulator().await;
    // Requests overlap, so the account-wide limit is actually contended.
    sim.faults().set_latency(Duration::from_millis(40));

    let (a_config, b_config) = (
        replica(&schema.url(), &sim.url(), PASS_A),
        replica(&schema.url(), &sim.url(), PASS_B),
    );
    let (mut a, mut b) = (a_config.start(), b_config.start());
    let client = reqwest::Client::new();
    a.wait_ready(&client, 200, Duration::from_secs(20)).await;
    b.wait_ready(&client, 200, Duration::from_secs(20)).await;

    let lb_dir = tempfile::tempdir().expect("tempdir");
    let lb_port = free_port();
    let conf = nginx_config(lb_dir.path(), lb_port, &[a.port(), b.port()]);
    let mut lb = KillOnDrop(
        Command::new(&nginx)
            .arg("-c")
            .arg(&conf)
            .arg("-p")
            .arg(lb_dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("nginx starts"),
    );
    wait_listening(lb_port, Duration::from_secs(5)).await;
    let lb_url = format!("http://127.0.0.1:{lb_port}/webhooks/contacts");

    // The burst: SENDERS tasks; each owns IDENTITIES / SENDERS identities and sends their
    // updates Seq 1..=UPDATES one request at a time, so each identity's acceptance order is
    // its Seq order.
    let sent: Arc<Mutex<Vec<Sent>>> = Arc::default();
    let mut senders = Vec::new();
    for task in 0..SENDERS {
        let (client, sent, url) = (client.clone(), sent.clone(), lb_url.clone());
        senders.push(tokio::spawn(async move {
            let mine: Vec<String> = (task..IDENTITIES)
                .step_by(SENDERS)
                .map(|i| format!("person-{i}@replicas.test"))
                .collect();
            for seq in 1..=UPDATES {
                for identity in &mine {
                    let status = post(&client, &url, body(identity, seq)).await.ok();
                    sent.lock().expect("lock").push(Sent {
                        identity: identity.clone(),
                        seq,
                        status,
                    });
                }
            }
        }));
    }
    let total = IDENTITIES * UPDATES as usize;

    // Kill A about half-way through the burst, at a moment when A has a request in flight at
    // "CleverTap": those rows are leased by A, and only the lease expiry can free them.
    let deadline = Instant::now() + Duration::from_secs(20);
    let a_in_flight = loop {
        let answered = sent.lock().expect("lock").len();
        if answered >= total / 2 {
            let in_flight: Vec<u64> = sim
                .requests()
                .iter()
                .filter(|r| r.passcode == MASK_A && r.outcome == RequestOutcome::InProgress)
                .map(|r| r.seq)
                .collect();
            if !in_flight.is_empty() {
                a.kill();
                break in_flight;
            }
        }
        if Instant::now() >= deadline {
            let seen: BTreeMap<(String, String), usize> =
                sim.requests().iter().fold(BTreeMap::new(), |mut m, r| {
                    *m.entry((r.passcode.clone(), format!("{:?}", r.outcome)))
                        .or_default() += 1;
                    m
                });
            let statuses: BTreeMap<Option<u16>, usize> =
                sent.lock()
                    .expect("lock")
                    .iter()
                    .fold(BTreeMap::new(), |mut m, s| {
                        *m.entry(s.status).or_default() += 1;
                        m
                    });
            panic!(
                "no moment with replica A delivering after half the burst ({answered} answered \
                 {statuses:?}; requests by passcode and outcome: {seen:?})"
            );
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    };
    let killed_at = Instant::now();
    let answered_at_kill = sent.lock().expect("lock").len();
    // The records A was sending when it died.
    let orphans: BTreeSet<(String, u64)> = sim
        .requests()
        .iter()
        .filter(|r| a_in_flight.contains(&r.seq))
        .flat_map(|r| {
            r.body["d"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .filter_map(identity_seq)
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(!orphans.is_empty(), "A's in-flight request carried records");

    for sender in senders {
        sender.await.expect("sender task");
    }
    b.assert_running();
    lb.assert_running("nginx");
    let sent = sent.lock().expect("lock").clone();
    assert_eq!(sent.len(), total);
    let accepted: BTreeSet<(String, u64)> = sent
        .iter()
        .filter(|s| matches!(s.status, Some(200 | 202)))
        .map(|s| (s.identity.clone(), u64::from(s.seq)))
        .collect();
    let refused: Vec<&Sent> = sent
        .iter()
        .filter(|s| !matches!(s.status, Some(200 | 202)))
        .collect();
    eprintln!(
        "burst: {} sent, {} accepted, {} not ({:?}), killed A after {answered_at_kill} answers; \
         A had {} request(s) in flight carrying {} records",
        sent.len(),
        accepted.len(),
        refused.len(),
        refused.iter().map(|s| s.status).collect::<Vec<_>>(),
        a_in_flight.len(),
        orphans.len()
    );
    // nginx hands a request that failed on A to B (the POST is safe to repeat: dedup answers
    // a copy A had committed with 200 duplicate), so the burst barely notices the kill.
    assert!(
        accepted.len() >= total - 5,
        "only {} of {total} webhooks were accepted",
        accepted.len()
    );

    // (a) + (d): B alone delivers everything accepted, A's leased rows included (after their
    // lease lapses), and leaves nothing pending, leased or dead.
    wait_delivered(&sim, &accepted, Duration::from_secs(LEASE_SECS + 25)).await;
    let drained_after = killed_at.elapsed();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let stats = admin_stats(&client, &b.url("/admin/stats")).await;
        let rows = &stats["rows"];
        if rows["pending"] == 0 && rows["leased"] == 0 {
            assert_eq!(rows["dead"], 0, "nothing went dead: {stats}");
            break;
        }
        assert!(Instant::now() < deadline, "B did not drain: {stats}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let states = states(&schema.url()).await;
    assert_eq!(
        states.keys().collect::<Vec<_>>(),
        vec!["delivered"],
        "{states:?}"
    );

    // (d) precisely: every record of A's request cut by the kill was delivered afterwards by B,
    // in a request B started only once A's lease had run out (A claimed the rows just before
    // its request started, so B's request starts at least ~LEASE_SECS after A's).
    let requests = sim.requests();
    let a_started = requests
        .iter()
        .filter(|r| a_in_flight.contains(&r.seq))
        .map(|r| r.started_us)
        .max()
        .unwrap_or(0);
    for orphan in &orphans {
        let by_b = requests.iter().find(|r| {
            r.passcode == MASK_B
                && r.started_us > a_started
                && r.status == Some(200)
                && r.body["d"].as_array().is_some_and(|d| {
                    d.iter()
                        .filter_map(identity_seq)
                        .any(|record| &record == orphan)
                })
        });
        let by_b = by_b.unwrap_or_else(|| {
            panic!("{orphan:?}, in flight from A at the kill, was delivered by B")
        });
        let waited = Duration::from_micros(by_b.started_us - a_started);
        assert!(
            waited >= Duration::from_secs(LEASE_SECS - 1),
            "{orphan:?} was taken over only after A's lease ran out (after {waited:?})"
        );
    }
    assert!(
        requests
            .iter()
            .any(|r| r.passcode == MASK_A && r.status == Some(200)),
        "A delivered too before it died"
    );

    // (b): the account's ceiling held for the sum of both replicas, the kill included: A's
    // slots outlive A until their ttl, so B never makes up for them early.
    let stats = sim.stats();
    let peak = stats.peak_in_flight_attempted;
    let account_peak = stats
        .accounts
        .get(ACCOUNT)
        .map_or(0, |a| a.peak_in_flight_attempted);
    eprintln!(
        "simulator: {} requests, peak in flight {peak} (account {account_peak}), drained {drained_after:?} after the kill",
        stats.requests
    );
    assert!(
        peak <= MAX_IN_FLIGHT && account_peak <= MAX_IN_FLIGHT,
        "CleverTap saw {peak} concurrent requests for the account; the limit is {MAX_IN_FLIGHT}"
    );
    assert!(
        peak >= 2,
        "the replicas delivered concurrently (peak {peak})"
    );

    // (c): per identity, the Seq values in the order CleverTap accepted them never go back: a
    // later record is never an older update than one already delivered. At-least-once may
    // deliver a record twice (A died after CleverTap stored its request but before recording
    // it); such a repeat is the same, newest value again, so the check is `next >= previous`,
    // and repeats are bounded by what A could have had in flight (MAX_IN_FLIGHT × BATCH).
    let mut by_identity: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for (identity, seq) in delivered(&sim) {
        by_identity.entry(identity).or_default().push(seq);
    }
    let mut repeats = 0;
    for (identity, seqs) in &by_identity {
        for pair in seqs.windows(2) {
            assert!(
                pair[1] >= pair[0],
                "{identity}: Seq {} arrived after Seq {} ({seqs:?})",
                pair[1],
                pair[0]
            );
            if pair[1] == pair[0] {
                repeats += 1;
            }
        }
    }
    assert!(
        repeats <= MAX_IN_FLIGHT * BATCH,
        "{repeats} records were delivered twice"
    );
    assert_eq!(by_identity.len(), IDENTITIES);
}
