//! One replica losing its PostgreSQL database (through a TCP proxy the test cuts) and coming
//! back: readiness and intake follow the database, and a blip mid-burst costs no duplicate.
//!
//! Needs `FRESHTAP_TEST_DATABASE_URL`; `cargo test` reports the tests ignored without.

#[path = "pg_support/mod.rs"]
mod pg_support;
mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use clevertap_sim::Simulator;
use pg_support::Schema;
use support::db_proxy::{DbProxy, Link, through_proxy};
use support::relay::Running;
use support::replica::{
    LEASE_SECS, PASS_A, body, delivered, post, replica, simulator, wait_delivered,
};
use tokio::time::Instant;

#[cfg_attr(
    not(freshtap_postgres),
    ignore = "needs FRESHTAP_TEST_DATABASE_URL (PostgreSQL)"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn losing_the_database_fails_readiness_and_intake_until_it_is_back() {
    let schema = Schema::create().await;
    let (_, upstream) = through_proxy(schema.base(), 0);
    let proxy = DbProxy::start(upstream).await;
    let (proxied, _) = through_proxy(schema.base(), proxy.port);
    let sim = simulator().await;
    let config = replica(&schema.url_on(&proxied), &sim.url(), PASS_A);
    let mut relay = config.start();
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
        relay.assert_running();

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

/// Webhooks of the burst, and senders sending them at once.
const BLIP_WEBHOOKS: usize = 160;
const BLIP_SENDERS: usize = 4;

#[cfg_attr(
    not(freshtap_postgres),
    ignore = "needs FRESHTAP_TEST_DATABASE_URL (PostgreSQL)"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_blip_mid_burst_costs_no_duplicate_and_no_webhook() {
    let schema = Schema::create().await;
    let (_, upstream) = through_proxy(schema.base(), 0);
    let proxy = DbProxy::start(upstream).await;
    let (proxied, _) = through_proxy(schema.base(), proxy.port);
    let sim = simulator().await;
    // Deliveries overlap the cut: some are at "CleverTap" when the database goes away.
    sim.faults().set_latency(Duration::from_millis(60));
    let config = replica(&schema.url_on(&proxied), &sim.url(), PASS_A);
    let mut relay = config.start();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("client");
    relay
        .wait_ready(&client, 200, Duration::from_secs(20))
        .await;

    let mut accepted = BTreeSet::new();
    for cut in [Link::Blackhole, Link::Reset] {
        accepted.extend(burst_with_a_cut(&relay, &sim, &proxy, &client, cut).await);
        relay.assert_running();
    }
    // Past the lease: a row whose outcome was lost would have been sent again by now.
    tokio::time::sleep(Duration::from_secs(LEASE_SECS + 2)).await;
    let mut counts = std::collections::BTreeMap::<String, usize>::new();
    for (identity, _) in delivered(&sim) {
        *counts.entry(identity).or_default() += 1;
    }
    let twice: Vec<(&String, &usize)> = counts.iter().filter(|(_, n)| **n > 1).collect();
    eprintln!(
        "blips: {} accepted, {} delivered, {} twice",
        accepted.len(),
        counts.len(),
        twice.len()
    );
    assert!(
        twice.is_empty(),
        "delivered twice after the blip: {twice:?}"
    );
}

/// One burst with the database cut (`cut`) for 2 s mid-way, while a delivery is in flight;
/// every webhook is answered 202 or 503 and every 202 is delivered. Returns the 202s.
async fn burst_with_a_cut(
    relay: &Running,
    sim: &Simulator,
    proxy: &DbProxy,
    client: &reqwest::Client,
    cut: Link,
) -> BTreeSet<String> {
    let answered = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut senders = Vec::new();
    for task in 0..BLIP_SENDERS {
        let (client, answered, url) = (
            client.clone(),
            answered.clone(),
            relay.url("/webhooks/contacts"),
        );
        senders.push(tokio::spawn(async move {
            for i in (task..BLIP_WEBHOOKS).step_by(BLIP_SENDERS) {
                let identity = format!("blip-{cut:?}-{i}@db.test");
                let status = post(&client, &url, body(&identity, 1)).await.ok();
                answered.lock().expect("lock").push((identity, status));
                // Paced, so the burst outlasts the cut.
                tokio::time::sleep(Duration::from_millis(80)).await;
            }
        }));
    }
    // Cut mid-burst, while a delivery is in flight, for well under the lease.
    let deadline = Instant::now() + Duration::from_secs(20);
    while answered.lock().expect("lock").len() < BLIP_WEBHOOKS / 3 || sim.stats().in_flight == 0 {
        assert!(Instant::now() < deadline, "the burst was delivering");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    proxy.set(cut);
    tokio::time::sleep(Duration::from_secs(2)).await;
    proxy.set(Link::Up);
    for sender in senders {
        sender.await.expect("sender task");
    }

    let answered = answered.lock().expect("lock").clone();
    let accepted: BTreeSet<String> = answered
        .iter()
        .filter(|(_, status)| matches!(status, Some(202)))
        .map(|(identity, _)| identity.clone())
        .collect();
    let others: Vec<&Option<u16>> = answered
        .iter()
        .filter(|(_, s)| !matches!(s, Some(202)))
        .map(|(_, s)| s)
        .collect();
    assert!(
        others.iter().all(|s| matches!(s, Some(503))),
        "what was not accepted was refused with 503: {others:?}"
    );
    assert!(
        matches!(answered.last(), Some((_, Some(202)))),
        "{cut:?}: intake accepts again after the cut"
    );
    let want: BTreeSet<(String, u64)> = accepted.iter().map(|i| (i.clone(), 1)).collect();
    wait_delivered(sim, &want, Duration::from_secs(30)).await;
    eprintln!(
        "{cut:?}: {} accepted, {} refused",
        accepted.len(),
        others.len()
    );
    accepted
}
