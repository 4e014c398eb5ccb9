//! One replica losing its PostgreSQL database (through a TCP proxy the test cuts) and coming
//! back: readiness and intake follow the database, and a blip mid-burst costs no duplicate.
//!
//! Needs `FRESHTAP_TEST_DATABASE_URL`; `cargo test` reports the tests ignored without.

#[path = "pg_support/mod.rs"]
mod pg_support;
mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use pg_support::Schema;
use support::db_proxy::{DbProxy, Link, through_proxy};
use support::replica::{PASS_A, body, delivered, post, replica, simulator};
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
