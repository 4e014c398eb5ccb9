//! Integration tests of per-account faults over real HTTP: a fault scoped to one account leaves
//! the others alone, through the Rust API and through `POST /_sim/faults`.

mod sim_support;

use std::time::{Duration, Instant};

use clevertap_sim::{SimAccount, Simulator, SimulatorConfig};
use serde_json::{Value, json};
use sim_support::*;

const ACC2: &str = "ACC-2";
const PASS2: &str = "second-pass";

async fn two_accounts() -> Simulator {
    sim_with(SimulatorConfig {
        accounts: vec![SimAccount::new(ACC, PASS), SimAccount::new(ACC2, PASS2)],
        ..SimulatorConfig::default()
    })
    .await
}

fn body(id: &str) -> String {
    json!({"d":[profile(id, json!({"Name":"N"}))]}).to_string()
}

async fn status_as(c: &reqwest::Client, sim: &Simulator, acc: &str, id: &str) -> u16 {
    let pass = if acc == ACC2 { PASS2 } else { PASS };
    upload_as(c, sim, acc, pass, body(id)).await.0
}

async fn post_faults(c: &reqwest::Client, sim: &Simulator, faults: Value) -> (u16, Value) {
    let resp = c
        .post(format!("{}/_sim/faults", sim.url()))
        .json(&faults)
        .send()
        .await
        .expect("answered");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn an_account_fault_fails_only_that_accounts_requests() {
    let sim = two_accounts().await;
    let c = client();
    sim.faults().for_account(ACC2).fail_next(2, 503);
    assert_eq!(status_as(&c, &sim, ACC, "a").await, 200);
    assert_eq!(status_as(&c, &sim, ACC2, "b").await, 503);
    assert_eq!(status_as(&c, &sim, ACC, "c").await, 200);
    assert_eq!(status_as(&c, &sim, ACC2, "d").await, 503);
    assert_eq!(status_as(&c, &sim, ACC2, "e").await, 200);
    // A global fault still reaches every account, after the account's own are used up.
    sim.faults().fail_next(1, 500);
    sim.faults().for_account(ACC2).fail_next(1, 429);
    assert_eq!(status_as(&c, &sim, ACC2, "f").await, 429);
    assert_eq!(status_as(&c, &sim, ACC2, "g").await, 500);
    assert_eq!(status_as(&c, &sim, ACC, "h").await, 200);
    let stored: Vec<Value> = sim
        .accepted_records()
        .iter()
        .map(|r| r["identity"].clone())
        .collect();
    assert_eq!(stored, vec![json!("a"), json!("c"), json!("e"), json!("h")]);
    sim.shutdown().await;
}

#[tokio::test]
async fn an_account_record_code_and_hang_spare_the_other_account() {
    let sim = two_accounts().await;
    sim.faults()
        .for_account(ACC2)
        .set_record_code("shared", 555);
    let c = client();
    let (s, v) = upload_as(&c, &sim, ACC, PASS, body("shared")).await;
    assert_eq!((s, v["processed"].clone()), (200, json!(1)));
    let (s, v) = upload_as(&c, &sim, ACC2, PASS2, body("shared")).await;
    assert_eq!((s, v["unprocessed"][0]["code"].clone()), (200, json!(555)));

    sim.faults().for_account(ACC2).hang_next(1);
    let quick = reqwest::Client::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .expect("client");
    let hung = quick
        .post(format!("{}/1/upload", sim.url()))
        .header("X-CleverTap-Account-Id", ACC2)
        .header("X-CleverTap-Passcode", PASS2)
        .body(body("x"))
        .send()
        .await;
    assert!(hung.is_err_and(|e| e.is_timeout()));
    assert_eq!(status_as(&c, &sim, ACC, "y").await, 200);
    sim.shutdown().await;
}

#[tokio::test]
async fn an_account_latency_holds_that_accounts_requests() {
    let sim = two_accounts().await;
    let c = client();
    sim.faults()
        .for_account(ACC2)
        .set_latency(Duration::from_millis(300));
    let started = Instant::now();
    assert_eq!(status_as(&c, &sim, ACC2, "slow").await, 200);
    assert!(started.elapsed() >= Duration::from_millis(300));
    let snapshot = sim.faults().snapshot();
    assert_eq!(snapshot.latency_ms, 0);
    assert_eq!(snapshot.by_account[ACC2].latency_ms, Some(300));
    sim.shutdown().await;
}

#[tokio::test]
async fn faults_endpoint_scopes_by_account_and_refuses_a_scoped_outage() {
    let sim = two_accounts().await;
    let c = client();
    let (s, snap) = post_faults(
        &c,
        &sim,
        json!({"account": ACC2, "fail_next": {"n": 1, "status": 502}, "record_codes": {"r": 516}}),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(snap["fail_next"], json!([]));
    assert_eq!(
        snap["by_account"][ACC2]["fail_next"],
        json!([{"n":1,"status":502}])
    );
    assert_eq!(snap["by_account"][ACC2]["record_codes"], json!({"r":516}));

    let (s, v) = post_faults(&c, &sim, json!({"account": ACC2, "outage_secs": 1})).await;
    assert_eq!(s, 400, "{v}");
    assert!(!sim.faults().snapshot().outage);
    let (s, _) = post_faults(&c, &sim, json!({"account": "", "hang_next": 1})).await;
    assert_eq!(s, 400);

    assert_eq!(status_as(&c, &sim, ACC, "a").await, 200);
    assert_eq!(status_as(&c, &sim, ACC2, "b").await, 502);

    // An account-scoped reset clears that account only; the global reset clears all.
    sim.faults().for_account(ACC).fail_next(1, 503);
    sim.faults().for_account(ACC2).fail_next(1, 503);
    let (_, snap) = post_faults(&c, &sim, json!({"account": ACC2, "reset": true})).await;
    assert!(snap["by_account"].get(ACC2).is_none(), "{snap}");
    assert_eq!(status_as(&c, &sim, ACC2, "c").await, 200);
    let (_, snap) = post_faults(&c, &sim, json!({"reset": true})).await;
    assert_eq!(snap["by_account"], json!({}));
    assert_eq!(status_as(&c, &sim, ACC, "d").await, 200);
    sim.shutdown().await;
}
