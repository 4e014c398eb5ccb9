//! Integration tests of the CleverTap simulator over real HTTP on 127.0.0.1: auth, validation, store, /_sim endpoints.

mod sim_support;

use std::time::Duration;

use clevertap_sim::{SimAccount, SimulatorConfig};
use serde_json::{Value, json};
use sim_support::*;

#[tokio::test]
async fn auth_failures_are_401() {
    let sim = sim().await;
    let c = client();
    let body = json!({"d":[profile("a", json!({"Name":"A"}))]}).to_string();
    let (s, v) = upload_as(&c, &sim, "W9R-486-4W5Z", PASS, body.clone()).await;
    assert_eq!(
        (s, v),
        (
            401,
            json!({"status":"fail","error":"Account ID is not valid","code":401})
        )
    );
    let (s, v) = upload_as(&c, &sim, ACC, "wrong", body.clone()).await;
    assert_eq!(
        (s, v),
        (
            401,
            json!({"status":"fail","error":"Invalid Credentials","code":401})
        )
    );
    // A passcode rotated at run time, then restored.
    sim.faults()
        .set_credentials(ACC, vec!["new-passcode".into()]);
    assert_eq!(upload_as(&c, &sim, ACC, PASS, body.clone()).await.0, 401);
    assert_eq!(
        upload_as(&c, &sim, ACC, "new-passcode", body.clone())
            .await
            .0,
        200
    );
    sim.faults().reset();
    assert_eq!(upload_as(&c, &sim, ACC, PASS, body).await.0, 200);
    let reqs = sim.requests();
    assert_eq!(reqs.len(), 5);
    assert_eq!(reqs[1].passcode, "***");
    assert_eq!(reqs[4].passcode, "si***");
    assert!(
        !serde_json::to_string(&reqs)
            .unwrap_or_default()
            .contains(PASS)
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn malformed_requests_are_400() {
    let sim = sim_with(SimulatorConfig {
        max_records: 3,
        ..SimulatorConfig::default()
    })
    .await;
    let c = client();
    let malformed = json!({"status":"fail","error":"Malformed request","code":400});
    for body in [
        "not json",
        "{\"x\":1}",
        "{\"d\":{}}",
        "[1]",
        "{\"d\":[1,2,3,4]}",
    ] {
        let (s, v) = upload_as(&c, &sim, ACC, PASS, body.to_owned()).await;
        assert_eq!((s, &v), (400, &malformed), "{body}");
    }
    assert_eq!(sim.requests()[0].body, json!("not json"));
    let resp = c
        .get(format!("{}/1/upload", sim.url()))
        .send()
        .await
        .expect("answered");
    assert_eq!(resp.status().as_u16(), 405);
    assert_eq!(sim.stats().by_status.get(&400), Some(&5));
    sim.shutdown().await;
}

#[tokio::test]
async fn partial_answer_and_per_record_fault() {
    let sim = sim().await;
    let c = client();
    sim.faults().set_record_code("flaky", 555);
    let body = json!({"d":[
        profile("ok", json!({"Email":"ada.pell@example.com"})),
        profile("bad", json!({"Email":"$$$$$"})),
        profile("flaky", json!({"Name":"F"})),
    ]});
    let (s, v) = upload(&c, &sim, body.clone()).await;
    assert_eq!(s, 200);
    assert_eq!(v["status"], "partial");
    assert_eq!(v["processed"], 1);
    assert_eq!(v["unprocessed"][0]["code"], 515);
    assert_eq!(
        v["unprocessed"][0]["error"],
        "Profile data is incorrect. Email is not valid.Skipped record number : 2"
    );
    assert_eq!(v["unprocessed"][0]["record"], body["d"][1]);
    assert_eq!(v["unprocessed"][1]["code"], 555);
    let stats = sim.stats();
    assert_eq!(
        (
            stats.records_received,
            stats.records_accepted,
            stats.records_rejected
        ),
        (3, 1, 2)
    );
    assert!(sim.profile("bad").is_none());
    assert_eq!(sim.accepted_records(), vec![body["d"][0].clone()]);
    sim.shutdown().await;
}

#[tokio::test]
async fn profiles_merge_and_events_are_logged() {
    let sim = sim_with(SimulatorConfig {
        space_padded: true,
        log_records: true,
        ..SimulatorConfig::default()
    })
    .await;
    let c = client();
    let first = json!({"d":[
        profile("lena", json!({"Name":"Lena","Logins":{"$incr":1},"Tags":["a"]})),
        {"type":"event","identity":"lena","ts":1761652860,"evtName":"Deal Won","evtData":{"Amount":12000}},
    ]});
    let second = json!({"d":[profile("lena", json!({"Name":"Lena Ortiz","Logins":{"$incr":2},"Tags":{"$add":["b"]}}))]});
    let resp = c
        .post(format!("{}/1/upload", sim.url()))
        .header("X-CleverTap-Account-Id", ACC)
        .header("X-CleverTap-Passcode", PASS)
        .json(&first)
        .send()
        .await
        .expect("answered");
    let text = resp.text().await.expect("text");
    assert!(text.starts_with("{ \"status\" : \"success\" , "), "{text}");
    assert_eq!(upload(&c, &sim, second).await.0, 200);
    let merged = json!({"Name":"Lena Ortiz","Logins":3,"Tags":["a","b"]});
    assert_eq!(sim.profile("lena"), Some(merged.clone()));
    assert_eq!(sim.events(), vec![first["d"][1].clone()]);
    assert_eq!(sim.accepted_records().len(), 3);
    let ordered = sim.wait_for_requests(2, WAIT).await.expect("two requests");
    assert!(ordered[1].started_tick > ordered[0].finished_tick.unwrap_or(u64::MAX));
    let err = sim
        .wait_for_accepted(10, Duration::from_millis(50))
        .await
        .expect_err("only 3");
    assert!(err.contains("3 of 10"), "{err}");
    sim.shutdown().await;
}

#[tokio::test]
async fn sim_endpoints_inspect_and_control() {
    let sim = sim_with(SimulatorConfig {
        accounts: vec![
            SimAccount::new(ACC, PASS),
            SimAccount::new("ACC-2", "second-pass"),
        ],
        ..SimulatorConfig::default()
    })
    .await;
    let c = client();
    let get = |path: &str| {
        let c = c.clone();
        let url = format!("{}{path}", sim.url());
        async move {
            let resp = c.get(url).send().await.expect("answered");
            (
                resp.status().as_u16(),
                resp.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    };
    let body = json!({"d":[profile("x", json!({"Name":"X"})),{"type":"event","identity":"x","evtName":"E"}]});
    assert_eq!(upload(&c, &sim, body.clone()).await.0, 200);
    let (s, v) = get("/_sim/profiles/x").await;
    assert_eq!((s, v["profile"].clone()), (200, json!({"Name":"X"})));
    assert_eq!(get("/_sim/profiles/nobody").await.0, 404);
    assert_eq!(get("/_sim/events").await.1["count"], 1);
    let (_, reqs) = get("/_sim/requests").await;
    assert_eq!(reqs["requests"][0]["body"], body);
    assert_eq!(reqs["requests"][0]["status"], 200);
    let (_, stats) = get("/_sim/stats").await;
    assert_eq!(stats["records_accepted"], 2);
    assert_eq!(stats["by_status"]["200"], 1);

    let faults = json!({"fail_next":{"n":1,"status":500},"latency_ms":5,"error_rates":{"503":0.0}});
    let resp = c
        .post(format!("{}/_sim/faults", sim.url()))
        .json(&faults)
        .send()
        .await
        .expect("answered");
    let snapshot: Value = resp.json().await.unwrap_or(Value::Null);
    assert_eq!(snapshot["fail_next"], json!([{"n":1,"status":500}]));
    assert_eq!(snapshot["latency_ms"], 5);
    assert_eq!(upload(&c, &sim, body.clone()).await.0, 500);
    assert_eq!(
        upload_as(&c, &sim, "ACC-2", "second-pass", body.to_string())
            .await
            .0,
        200
    );
    let bad = c
        .post(format!("{}/_sim/faults", sim.url()))
        .body("{\"nope\":1}")
        .send()
        .await
        .expect("answered");
    assert_eq!(bad.status().as_u16(), 400);

    let resp = c
        .post(format!("{}/_sim/reset", sim.url()))
        .send()
        .await
        .expect("answered");
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(get("/_sim/profiles/x").await.0, 404);
    assert_eq!(get("/_sim/stats").await.1["requests"], 0);
    assert_eq!(get("/_sim/faults").await.1["latency_ms"], 0);
    assert_eq!(get("/nowhere").await.0, 404);
    sim.shutdown().await;
}

#[tokio::test]
async fn shutdown_closes_the_port() {
    let sim = sim().await;
    let addr = sim.addr();
    assert!(sim.url().starts_with("http://127.0.0.1:"));
    sim.clone().shutdown().await;
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_record_batches_in_parallel_with_lean_history() {
    let sim = sim_with(SimulatorConfig::default().lean()).await;
    let c = client();
    let filler = "x".repeat(600);
    let batch = |offset: usize, n: usize| {
        let d: Vec<Value> = (0..n)
            .map(|i| {
                profile(
                    &format!("u{}", offset + i),
                    json!({"Name": filler, "Email": "a@b.co"}),
                )
            })
            .collect();
        json!({ "d": d })
    };
    let mut set = tokio::task::JoinSet::new();
    for r in 0..4 {
        let (c, sim, body) = (c.clone(), sim.clone(), batch(r * 1000, 1000));
        set.spawn(async move { upload(&c, &sim, body).await });
    }
    while let Some(answer) = set.join_next().await {
        let (s, v) = answer.expect("task");
        assert_eq!((s, v["processed"].clone()), (200, json!(1000)));
    }
    assert_eq!(upload(&c, &sim, batch(0, 1001)).await.0, 400);
    let stats = sim.stats();
    assert_eq!(stats.records_accepted, 4000);
    assert_eq!(sim.accepted_records().len(), 1000);
    assert_eq!(sim.requests().len(), 5);
    assert!(sim.profile("u1").is_none());
    sim.shutdown().await;
}
