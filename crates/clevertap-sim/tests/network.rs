//! Integration tests of the CleverTap-like network the benchmark relies on: the configured
//! latency, the per-account concurrency cap, and the stats that prove a sender stayed under it.

mod sim_support;

use std::time::{Duration, Instant};

use clevertap_sim::{Simulator, SimulatorConfig};
use serde_json::json;
use sim_support::*;
use tokio::task::JoinSet;

fn body(id: &str) -> String {
    json!({"d":[profile(id, json!({"Name":"N"}))]}).to_string()
}

/// `n` uploads left waiting on a hang; aborting the set drops their connections.
fn hung_uploads(sim: &Simulator, n: usize) -> JoinSet<()> {
    sim.faults().hang_next(n);
    let mut set = JoinSet::new();
    for i in 0..n {
        let (c, sim) = (client(), sim.clone());
        set.spawn(async move {
            let _ = c
                .post(format!("{}/1/upload", sim.url()))
                .header("X-CleverTap-Account-Id", ACC)
                .header("X-CleverTap-Passcode", PASS)
                .body(body(&format!("h{i}")))
                .send()
                .await;
        });
    }
    set
}

#[tokio::test]
async fn a_request_over_the_cap_is_throttled_and_counted_apart_from_injected_429s() {
    let sim = sim_with(SimulatorConfig {
        max_in_flight: 2,
        ..SimulatorConfig::default()
    })
    .await;
    let c = client();
    sim.faults().fail_next(1, 429);
    assert_eq!(upload_as(&c, &sim, ACC, PASS, body("a")).await.0, 429);
    let mut hung = hung_uploads(&sim, 2);
    sim.wait_for_in_flight(2, WAIT).await.expect("both arrive");
    let (status, answer) = upload_as(&c, &sim, ACC, PASS, body("b")).await;
    assert_eq!(
        (status, answer),
        (
            429,
            json!({"status":"fail","error":"Too many concurrent requests","code":429})
        )
    );
    let acc = sim.stats().accounts[ACC].clone();
    assert_eq!(acc.throttled, 1);
    assert_eq!(acc.by_status.get(&429), Some(&2));
    assert_eq!(acc.max_in_flight_seen, 3);
    assert_eq!(acc.peak_in_flight, 2);
    hung.abort_all();
    sim.shutdown().await;
}

#[tokio::test]
async fn a_sender_at_the_cap_is_never_throttled() {
    let sim = sim().await;
    let c = client();
    let mut hung = hung_uploads(&sim, 15);
    let stats = sim.wait_for_in_flight(15, WAIT).await.expect("all arrive");
    let acc = &stats.accounts[ACC];
    assert_eq!((acc.max_in_flight_seen, acc.throttled), (15, 0));
    // The sixteenth is one too many.
    assert_eq!(upload_as(&c, &sim, ACC, PASS, body("x")).await.0, 429);
    assert_eq!(sim.stats().accounts[ACC].max_in_flight_seen, 16);
    hung.abort_all();
    sim.shutdown().await;
}

#[tokio::test]
async fn the_configured_latency_holds_every_request_and_reset_returns_to_it() {
    let sim = sim_with(SimulatorConfig {
        latency_ms: 250,
        ..SimulatorConfig::default()
    })
    .await;
    let c = client();
    let started = Instant::now();
    assert_eq!(upload_as(&c, &sim, ACC, PASS, body("a")).await.0, 200);
    assert!(started.elapsed() >= Duration::from_millis(250));
    assert_eq!(sim.faults().snapshot().latency_ms, 250);
    sim.faults().set_latency(Duration::ZERO);
    assert_eq!(sim.faults().snapshot().latency_ms, 0);
    sim.faults().reset();
    assert_eq!(sim.faults().snapshot().latency_ms, 250);
    let started = Instant::now();
    assert_eq!(upload_as(&c, &sim, ACC, PASS, body("b")).await.0, 200);
    assert!(started.elapsed() >= Duration::from_millis(250));
    sim.shutdown().await;
}
