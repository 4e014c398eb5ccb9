//! Several replicas on one PostgreSQL queue, as deployed: two real `freshtap serve` processes
//! behind nginx with one killed by SIGKILL mid-burst; and one replica losing its database (through
//! a TCP proxy the test cuts) and coming back.
//!
//! Needs `FRESHTAP_TEST_DATABASE_URL` and, for the load-balancer test, nginx from Debian
//! (`apt-get install nginx`); `cargo test` reports them ignored without. Every child process is killed when
//! a test ends, also on panic (`Children`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clevertap_sim::{RequestOutcome, SimAccount, Simulator, SimulatorConfig};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::time::Instant;

#[path = "pg_support/mod.rs"]
mod pg_support;
use pg_support::Schema;

const BIN: &str = env!("CARGO_BIN_EXE_freshtap");
const TOKEN: &str = "replica-token";
const ADMIN: &str = "replica-admin";
const ACCOUNT: &str = "REPL-ACC";
/// Both replicas write to one CleverTap account; each uses its own valid passcode, so the
/// simulator's request log (which keeps a passcode's first two characters) tells who sent what.
const PASS_A: &str = "a-passcode";
const PASS_B: &str = "b-passcode";
const MASK_A: &str = "a-***";
const MASK_B: &str = "b-***";
/// The account's total across both replicas.
const MAX_IN_FLIGHT: usize = 3;
const BATCH: usize = 5;
const LEASE_SECS: u64 = 7;

// ---------------------------------------------------------------------------------------------
// Shared pieces: a schema, child processes, a replica, the simulator.

/// Row counts by state, read behind the replicas' backs.
async fn states(schema: &Schema) -> BTreeMap<String, i64> {
    let client = connect(&schema.url()).await;
    client
        .query("SELECT state, count(*) FROM webhooks GROUP BY state", &[])
        .await
        .expect("count rows")
        .iter()
        .map(|row| (row.get::<_, String>(0), row.get::<_, i64>(1)))
        .collect()
}

async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("connect to the test database");
    tokio::spawn(connection);
    client
}

/// Every child process of a test; all are SIGKILLed and reaped on drop, panics included.
#[derive(Default)]
struct Children(Vec<(String, Child)>);

impl Children {
    fn add(&mut self, name: &str, child: Child) {
        self.0.push((name.to_owned(), child));
    }

    /// SIGKILL one child now and reap it.
    fn kill(&mut self, name: &str) {
        let (_, child) = self
            .0
            .iter_mut()
            .find(|(n, _)| n == name)
            .expect("a child of that name");
        child.kill().expect("SIGKILL");
        child.wait().expect("reaped");
    }

    /// Fails the test if a child died on its own.
    fn assert_running(&mut self, name: &str) {
        let (_, child) = self
            .0
            .iter_mut()
            .find(|(n, _)| n == name)
            .expect("a child of that name");
        let status = child.try_wait().expect("try_wait");
        assert!(status.is_none(), "{name} exited early: {status:?}");
    }
}

impl Drop for Children {
    fn drop(&mut self) {
        for (_, child) in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

/// One `freshtap serve` process with its own config file.
struct Replica {
    dir: tempfile::TempDir,
    config: PathBuf,
    port: u16,
}

impl Replica {
    fn new(queue_url: &str, simulator_url: &str, passcode: &str) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let config = dir.path().join("freshtap.toml");
        std::fs::write(
            &config,
            format!(
                r#"
[server]
bind = "127.0.0.1:{port}"
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
level = "warn"
"#
            ),
        )
        .expect("write config");
        Self { dir, config, port }
    }

    fn spawn(&self) -> Child {
        Command::new(BIN)
            .args(["serve", "--config"])
            .arg(&self.config)
            .current_dir(self.dir.path())
            .env_remove("FRESHTAP_CONFIG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the binary starts")
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Waits until `/readyz` answers `want` (bounded), returning its body.
    async fn wait_ready(&self, client: &reqwest::Client, want: u16, within: Duration) -> Value {
        let deadline = Instant::now() + within;
        let mut last = String::from("no answer");
        loop {
            if let Ok(response) = client.get(self.url("/readyz")).send().await {
                let status = response.status().as_u16();
                let body: Value = response.json().await.unwrap_or(Value::Null);
                if status == want {
                    return body;
                }
                last = format!("{status} {body}");
            }
            assert!(
                Instant::now() < deadline,
                "/readyz did not answer {want} within {within:?} (last: {last})"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn admin_stats(&self, client: &reqwest::Client) -> Value {
        client
            .get(self.url("/admin/stats"))
            .bearer_auth(ADMIN)
            .send()
            .await
            .expect("admin stats")
            .json()
            .await
            .expect("stats JSON")
    }
}

async fn simulator() -> Simulator {
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

/// A CleverTap-shaped passthrough body: one profile update of `identity` carrying `seq`.
fn body(identity: &str, seq: u32) -> String {
    format!(
        r#"{{"d":[{{"identity":"{identity}","type":"profile","profileData":{{"Seq":{seq}}}}}]}}"#
    )
}

fn identity_seq(record: &Value) -> Option<(String, u64)> {
    Some((
        record["identity"].as_str()?.to_owned(),
        record["profileData"]["Seq"].as_u64()?,
    ))
}

/// The (identity, Seq) pairs the simulator accepted, in the order it accepted them.
fn delivered(sim: &Simulator) -> Vec<(String, u64)> {
    sim.accepted_records()
        .iter()
        .filter_map(identity_seq)
        .collect()
}

async fn post(client: &reqwest::Client, url: &str, body: String) -> Result<u16, reqwest::Error> {
    client
        .post(url)
        .header("X-Freshtap-Token", TOKEN)
        .header("Content-Type", "application/json")
        .body(body)
        .send()
        .await
        .map(|r| r.status().as_u16())
}

// ---------------------------------------------------------------------------------------------
// nginx, from the Debian package, as the load balancer.

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

// ---------------------------------------------------------------------------------------------
// Two replicas behind nginx; one killed with SIGKILL mid-burst.

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
    let mut children = Children::default();
    let sim = simulator().await;
    // Requests overlap, so the account-wide limit is actually contended.
    sim.faults().set_latency(Duration::from_millis(40));

    let a = Replica::new(&schema.url(), &sim.url(), PASS_A);
    let b = Replica::new(&schema.url(), &sim.url(), PASS_B);
    children.add("a", a.spawn());
    children.add("b", b.spawn());
    let client = reqwest::Client::new();
    a.wait_ready(&client, 200, Duration::from_secs(20)).await;
    b.wait_ready(&client, 200, Duration::from_secs(20)).await;

    let lb_dir = tempfile::tempdir().expect("tempdir");
    let lb_port = free_port();
    let conf = nginx_config(lb_dir.path(), lb_port, &[a.port, b.port]);
    let lb = Command::new(&nginx)
        .arg("-c")
        .arg(&conf)
        .arg("-p")
        .arg(lb_dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("nginx starts");
    children.add("nginx", lb);
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
                children.kill("a");
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
    children.assert_running("b");
    children.assert_running("nginx");
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
    let deadline = Instant::now() + Duration::from_secs(LEASE_SECS + 25);
    loop {
        let got: BTreeSet<(String, u64)> = delivered(&sim).into_iter().collect();
        let missing: Vec<&(String, u64)> = accepted.difference(&got).collect();
        if missing.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{} accepted webhooks never reached CleverTap, e.g. {:?}",
            missing.len(),
            missing.first()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let drained_after = killed_at.elapsed();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let stats = b.admin_stats(&client).await;
        let rows = &stats["rows"];
        if rows["pending"] == 0 && rows["leased"] == 0 {
            assert_eq!(rows["dead"], 0, "nothing went dead: {stats}");
            break;
        }
        assert!(Instant::now() < deadline, "B did not drain: {stats}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let states = states(&schema).await;
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

// ---------------------------------------------------------------------------------------------
// The database goes away and comes back, for one replica.

/// How the proxy treats traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Link {
    Up,
    /// Connections are closed and new ones dropped at once (database restart, refused).
    Reset,
    /// Nothing is forwarded any more and nothing is closed (a network partition).
    Blackhole,
}

/// A TCP proxy to the test database that the test can cut.
struct DbProxy {
    port: u16,
    link: watch::Sender<Link>,
}

impl DbProxy {
    async fn start(upstream: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let port = listener.local_addr().expect("addr").port();
        let (link, _) = watch::channel(Link::Up);
        let links = link.clone();
        tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                let mut state = links.subscribe();
                let upstream = upstream.clone();
                tokio::spawn(async move {
                    let now = *state.borrow_and_update();
                    match now {
                        Link::Reset => return,
                        Link::Blackhole => {
                            // Hold the connection, say nothing, until the link changes.
                            let _ = state.changed().await;
                            return;
                        }
                        Link::Up => {}
                    }
                    let Ok(outbound) = TcpStream::connect(&upstream).await else {
                        return;
                    };
                    let (client_read, client_write) = inbound.into_split();
                    let (server_read, server_write) = outbound.into_split();
                    tokio::join!(
                        pump(client_read, server_write, state.clone()),
                        pump(server_read, client_write, state),
                    );
                });
            }
        });
        Self { port, link }
    }

    fn set(&self, link: Link) {
        self.link.send_replace(link);
    }
}

/// Copies one direction: stops (closing it) on `Reset`; while `Blackhole`, holds what it read
/// and forwards it once the link is `Up` again, so a healed partition loses no byte.
async fn pump(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, mut link: watch::Receiver<Link>) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = tokio::select! {
            read = from.read(&mut buf) => match read {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            },
            _ = link.wait_for(|l| *l == Link::Reset) => return,
        };
        let now = link.wait_for(|l| *l != Link::Blackhole).await.map(|l| *l);
        if !matches!(now, Ok(Link::Up)) {
            return;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

/// `base` with its host and port replaced by `127.0.0.1:port`, and the host:port it named.
fn through_proxy(base: &str, port: u16) -> (String, String) {
    let (scheme, rest) = base.split_once("://").expect("a URL with a scheme");
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let (userinfo, hostport) = match authority.rfind('@') {
        Some(at) => (&authority[..=at], &authority[at + 1..]),
        None => ("", authority),
    };
    let upstream = if hostport.contains(':') {
        hostport.to_owned()
    } else {
        format!("{hostport}:5432")
    };
    (
        format!("{scheme}://{userinfo}127.0.0.1:{port}{tail}"),
        upstream,
    )
}

#[cfg_attr(
    not(freshtap_postgres),
    ignore = "needs FRESHTAP_TEST_DATABASE_URL (PostgreSQL)"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn losing_the_database_fails_readiness_and_intake_until_it_is_back() {
    let schema = Schema::create().await;
    let mut children = Children::default();
    let (_, upstream) = through_proxy(schema.base(), 0);
    let proxy = DbProxy::start(upstream).await;
    let (proxied, _) = through_proxy(schema.base(), proxy.port);
    let sim = simulator().await;
    let relay = Replica::new(&schema.url_on(&proxied), &sim.url(), PASS_A);
    children.add("relay", relay.spawn());
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("client");
    relay
        .wait_ready(&client, 200, Duration::from_secs(20))
        .await;
    let intake = relay.url("/webhooks/contacts");
    assert_eq!(
        post(&client, &intake, body("before@db.test", 1)).await.ok(),
        Some(202)
    );
    sim.wait_for_accepted(1, Duration::from_secs(10))
        .await
        .expect("delivered while the database is up");

    let mut expected = 1;
    for (n, cut) in [Link::Reset, Link::Blackhole].into_iter().enumerate() {
        proxy.set(cut);
        let reason = relay.wait_ready(&client, 503, Duration::from_secs(8)).await;
        assert!(
            reason["reason"].as_str().is_some_and(|r| !r.is_empty()),
            "{cut:?}: /readyz says why: {reason}"
        );
        // Intake refuses with 503 (never a 2xx without a commit, never a hang).
        for i in 0..3 {
            let started = Instant::now();
            let status = post(
                &client,
                &intake,
                body(&format!("during-{n}-{i}@db.test"), 1),
            )
            .await
            .expect("an answer");
            assert_eq!(status, 503, "{cut:?}: intake while the database is gone");
            assert!(
                started.elapsed() < Duration::from_secs(8),
                "{cut:?}: intake answered within its bound ({:?})",
                started.elapsed()
            );
        }
        children.assert_running("relay");

        proxy.set(Link::Up);
        relay
            .wait_ready(&client, 200, Duration::from_secs(20))
            .await;
        let after = format!("after-{n}@db.test");
        let deadline = Instant::now() + Duration::from_secs(15);
        // The first enqueue after the outage may still meet a connection that died with it.
        loop {
            match post(&client, &intake, body(&after, 1)).await.ok() {
                Some(202) => break,
                other => assert!(
                    Instant::now() < deadline,
                    "{cut:?}: intake recovers after the database is back (last {other:?})"
                ),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        expected += 1;
        let deadline = Instant::now() + Duration::from_secs(20);
        while !delivered(&sim)
            .iter()
            .any(|(identity, _)| identity == &after)
        {
            assert!(
                Instant::now() < deadline,
                "{cut:?}: the webhook accepted after the outage was delivered"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let got: BTreeSet<String> = delivered(&sim).into_iter().map(|(i, _)| i).collect();
    assert!(got.len() >= expected, "{got:?}");
}
