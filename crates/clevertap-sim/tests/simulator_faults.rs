//! Integration tests of the simulator's fault injection over real HTTP: concurrency cap, fail_next, outage, hang, drop.

mod sim_support;

use std::time::Duration;

use clevertap_sim::{RequestOutcome, Simulator, SimulatorConfig};
use serde_json::{Value, json};
use sim_support::*;

#[tokio::test]
async fn concurrency_cap_answers_429_and_peak_stays_at_15() {
    let sim = sim_with(SimulatorConfig {
        retry_after_secs: Some(2),
        ..SimulatorConfig::default()
    })
    .await;
    sim.faults().set_latency(Duration::from_millis(1500));
    let c = client();
    let mut set = tokio::task::JoinSet::new();
    for i in 0..20 {
        let (c, url) = (c.clone(), sim.url());
        set.spawn(async move {
            let body = json!({"d":[profile(&format!("u{i}"), json!({"Name":"N"}))]});
            let resp = c
                .post(format!("{url}/1/upload"))
                .header("X-CleverTap-Account-Id", ACC)
                .header("X-CleverTap-Passcode", PASS)
                .json(&body)
                .send()
                .await
                .expect("answered");
            let retry_after = resp.headers().get("retry-after").cloned();
            let status = resp.status().as_u16();
            let v: Value = resp.json().await.unwrap_or(Value::Null);
            (status, retry_after, v)
        });
    }
    let mut statuses = Vec::new();
    while let Some(r) = set.join_next().await {
        let (status, retry_after, v) = r.expect("task");
        if status == 429 {
            assert_eq!(
                v,
                json!({"status":"fail","error":"Too many concurrent requests","code":429})
            );
            assert_eq!(
                retry_after
                    .and_then(|h| h.to_str().ok().map(str::to_owned))
                    .as_deref(),
                Some("2")
            );
        }
        statuses.push(status);
    }
    let rejected = statuses.iter().filter(|s| **s == 429).count();
    assert!(rejected >= 1, "{statuses:?}");
    assert_eq!(
        rejected + statuses.iter().filter(|s| **s == 200).count(),
        20
    );
    let stats = sim.stats();
    assert!(stats.peak_in_flight <= 15, "{stats:?}");
    assert!(stats.peak_in_flight_attempted > 15, "{stats:?}");
    assert_eq!(stats.accounts[ACC].peak_in_flight, stats.peak_in_flight);
    assert_eq!(stats.accounts[ACC].throttled, rejected as u64);
    assert!(stats.accounts[ACC].max_in_flight_seen > 15, "{stats:?}");
    assert_eq!(stats.in_flight, 0);
    sim.shutdown().await;
}

#[tokio::test]
async fn fail_next_answers_the_status_and_stores_nothing() {
    let sim = sim().await;
    let c = client();
    sim.faults().fail_next(2, 503);
    sim.faults().fail_next(1, 502);
    let body = json!({"d":[profile("a", json!({"Name":"A"}))]});
    for _ in 0..2 {
        let (s, v) = upload(&c, &sim, body.clone()).await;
        assert_eq!((s, v["code"].clone()), (503, json!(503)));
    }
    let (s, v) = upload(&c, &sim, body.clone()).await;
    assert_eq!(s, 502);
    assert!(v.as_str().unwrap_or("").contains("<html>"));
    assert!(sim.accepted_records().is_empty());
    assert_eq!(upload(&c, &sim, body).await.0, 200);
    assert_eq!(sim.wait_for_accepted(1, WAIT).await.map(|r| r.len()), Ok(1));
    sim.shutdown().await;
}

/// Polls until a request gets an HTTP answer (bounded).
async fn wait_until_serving(c: &reqwest::Client, sim: &Simulator) -> bool {
    let deadline = tokio::time::Instant::now() + WAIT;
    while tokio::time::Instant::now() < deadline {
        if c.get(format!("{}/_sim/stats", sim.url()))
            .send()
            .await
            .is_ok()
        {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

#[tokio::test]
async fn outage_refuses_connections_then_recovers_on_the_same_port() {
    let sim = sim().await;
    let addr = sim.addr();
    let pooled = client();
    let body = json!({"d":[profile("a", json!({"Name":"A"}))]});
    assert_eq!(upload(&pooled, &sim, body.clone()).await.0, 200);
    sim.faults().outage(true);
    // A fresh connection is refused at once.
    let connect = tokio::net::TcpStream::connect(addr).await;
    assert_eq!(
        connect.map(|_| ()).map_err(|e| e.kind()),
        Err(std::io::ErrorKind::ConnectionRefused)
    );
    // The client holding a pooled keep-alive connection fails too.
    let err = pooled
        .post(format!("{}/1/upload", sim.url()))
        .header("X-CleverTap-Account-Id", ACC)
        .header("X-CleverTap-Passcode", PASS)
        .json(&body)
        .send()
        .await;
    assert!(err.is_err(), "{err:?}");
    assert!(sim.faults().snapshot().outage);
    sim.faults().outage(false);
    assert!(wait_until_serving(&pooled, &sim).await);
    assert_eq!(sim.addr(), addr);
    assert_eq!(upload(&pooled, &sim, body).await.0, 200);
    assert_eq!(sim.stats().records_accepted, 2);
    sim.shutdown().await;
}

#[tokio::test]
async fn outage_over_http_ends_by_itself() {
    let sim = sim().await;
    let c = client();
    let resp = c
        .post(format!("{}/_sim/faults", sim.url()))
        .json(&json!({"outage_secs": 0.5}))
        .send()
        .await
        .expect("answered");
    assert_eq!(resp.status().as_u16(), 200);
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut refused = false;
    while !refused && tokio::time::Instant::now() < deadline {
        refused = tokio::net::TcpStream::connect(sim.addr()).await.is_err();
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(refused, "outage never began");
    assert!(wait_until_serving(&c, &sim).await, "outage never ended");
    sim.shutdown().await;
}

#[tokio::test]
async fn hang_next_never_answers_and_store_then_drop_stores() {
    let sim = sim().await;
    let c = reqwest::Client::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .expect("client");
    sim.faults().hang_next(1);
    let body = json!({"d":[profile("h", json!({"Name":"H"}))]});
    let send = |b: Value| {
        c.post(format!("{}/1/upload", sim.url()))
            .header("X-CleverTap-Account-Id", ACC)
            .header("X-CleverTap-Passcode", PASS)
            .json(&b)
            .send()
    };
    let err = send(body.clone()).await.expect_err("hangs");
    assert!(err.is_timeout(), "{err:?}");
    assert!(sim.accepted_records().is_empty());
    sim.faults().store_then_drop_next(1);
    let err = send(body.clone()).await.expect_err("dropped");
    assert!(!err.is_timeout(), "{err:?}");
    assert_eq!(sim.wait_for_accepted(1, WAIT).await.map(|r| r.len()), Ok(1));
    assert_eq!(
        send(body).await.map(|r| r.status().as_u16()).ok(),
        Some(200)
    );
    let reqs = sim.requests();
    assert_eq!(reqs[0].outcome, RequestOutcome::Hung);
    assert_eq!(reqs[1].outcome, RequestOutcome::StoredThenDropped);
    assert_eq!(
        (reqs[2].outcome, reqs[2].status),
        (RequestOutcome::Answered, Some(200))
    );
    let stats = sim.stats();
    assert_eq!((stats.hung, stats.dropped), (1, 1));
    sim.shutdown().await;
}
