//! Integration tests of `POST /1/delete/profiles.json` over real HTTP: what it deletes and logs,
//! what it refuses, and the faults it shares with `/1/upload`.

mod sim_support;

use std::time::{Duration, Instant};

use clevertap_sim::{DeleteKey, Simulator, SimulatorConfig};
use serde_json::{Value, json};
use sim_support::*;

async fn delete_as(
    c: &reqwest::Client,
    sim: &Simulator,
    acc: &str,
    pass: &str,
    body: &str,
) -> reqwest::Result<(u16, Value)> {
    let resp = c
        .post(format!("{}/1/delete/profiles.json", sim.url()))
        .header("X-CleverTap-Account-Id", acc)
        .header("X-CleverTap-Passcode", pass)
        .header("Content-Type", "application/json; charset=utf-8")
        .body(body.to_owned())
        .send()
        .await?;
    let status = resp.status().as_u16();
    let text = resp.text().await?;
    Ok((
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    ))
}

async fn delete(c: &reqwest::Client, sim: &Simulator, body: Value) -> (u16, Value) {
    delete_as(c, sim, ACC, PASS, &body.to_string())
        .await
        .expect("answered")
}

async fn with_profiles(ids: &[&str]) -> (Simulator, reqwest::Client) {
    let sim = sim().await;
    let c = client();
    let d: Vec<Value> = ids
        .iter()
        .map(|id| profile(id, json!({"Name":"N"})))
        .collect();
    assert_eq!(upload(&c, &sim, json!({ "d": d })).await.0, 200);
    (sim, c)
}

#[tokio::test]
async fn deleting_an_identity_removes_its_profile_and_logs_when_and_by_whom() {
    let (sim, c) = with_profiles(&["ada", "ben"]).await;
    let (s, v) = delete(&c, &sim, json!({"identity": "ada"})).await;
    assert_eq!((s, v), (200, json!({"status": "success"})));
    assert_eq!(sim.profile("ada"), None);
    assert!(sim.profile("ben").is_some());

    let deletions = sim.deletions();
    assert_eq!(deletions.len(), 1);
    let d = &deletions[0];
    assert_eq!(
        (d.account_id.as_str(), d.key, d.value.as_str(), d.removed),
        (ACC, DeleteKey::Identity, "ada", true)
    );
    let upload_done = sim.requests()[0].finished_tick.expect("answered");
    assert!(d.tick > upload_done);
    assert!(d.unix_ms > 1_700_000_000_000);

    let listed: Value = c
        .get(format!("{}/_sim/deletions", sim.url()))
        .send()
        .await
        .expect("answered")
        .json()
        .await
        .expect("json");
    assert_eq!(listed["count"], 1);
    assert_eq!(listed["deletions"][0]["key"], "identity");
    assert_eq!(listed["deletions"][0]["value"], "ada");
    let stats = sim.stats();
    assert_eq!(stats.profiles, 1);
    assert_eq!(
        (
            stats.deletes.requests,
            stats.deletes.values,
            stats.deletes.profiles_removed
        ),
        (1, 1, 1)
    );
    assert_eq!(stats.deletes.by_status.get(&200), Some(&1));
    // Uploads are counted apart.
    assert_eq!((stats.requests, stats.answered), (1, 1));
    sim.shutdown().await;
}

#[tokio::test]
async fn a_guid_array_deletes_each_and_logs_ids_that_had_no_profile() {
    let sim = sim().await;
    let c = client();
    let body = json!({"d":[{"type":"profile","objectId":"ct-1","profileData":{"Name":"O"}}]});
    assert_eq!(upload(&c, &sim, body).await.0, 200);
    let (s, _) = delete(&c, &sim, json!({"guid": ["ct-1", "ct-unknown"]})).await;
    assert_eq!(s, 200);
    let logged: Vec<(DeleteKey, String, bool)> = sim
        .deletions()
        .into_iter()
        .map(|d| (d.key, d.value, d.removed))
        .collect();
    assert_eq!(
        logged,
        vec![
            (DeleteKey::Guid, "ct-1".to_owned(), true),
            (DeleteKey::Guid, "ct-unknown".to_owned(), false)
        ]
    );
    assert_eq!(sim.stats().deletes.profiles_removed, 1);
    sim.shutdown().await;
}

#[tokio::test]
async fn refused_bodies_answer_400_and_delete_nothing() {
    let (sim, c) = with_profiles(&["ada"]).await;
    let many: Vec<String> = (0..101).map(|i| format!("u{i}")).collect();
    for body in [
        "not json".to_owned(),
        json!({"identity": "ada", "guid": ["x"]}).to_string(),
        json!({ "identity": many }).to_string(),
        json!({}).to_string(),
    ] {
        let (s, v) = delete_as(&c, &sim, ACC, PASS, &body)
            .await
            .expect("answered");
        assert_eq!(
            (s, v["status"].clone(), v["code"].clone()),
            (400, json!("fail"), json!(400)),
            "{body}"
        );
        assert!(v["error"].as_str().is_some_and(|e| !e.is_empty()), "{v}");
    }
    assert!(sim.profile("ada").is_some());
    assert!(sim.deletions().is_empty());
    assert_eq!(sim.stats().deletes.by_status.get(&400), Some(&4));
    sim.shutdown().await;
}

#[tokio::test]
async fn deletes_take_the_upload_credentials() {
    let (sim, c) = with_profiles(&["ada"]).await;
    let body = json!({"identity": "ada"}).to_string();
    let (s, v) = delete_as(&c, &sim, "W9R-486-4W5Z", PASS, &body)
        .await
        .expect("answered");
    assert_eq!(
        (s, v),
        (
            401,
            json!({"status":"fail","error":"Account ID is not valid","code":401})
        )
    );
    let (s, v) = delete_as(&c, &sim, ACC, "wrong", &body)
        .await
        .expect("answered");
    assert_eq!(
        (s, v),
        (
            401,
            json!({"status":"fail","error":"Invalid Credentials","code":401})
        )
    );
    assert!(sim.profile("ada").is_some());
    sim.shutdown().await;
}

#[tokio::test]
async fn upload_faults_apply_to_deletes() {
    let (sim, c) = with_profiles(&["ada", "ben", "cy"]).await;
    sim.faults().fail_next(1, 503);
    let (s, v) = delete(&c, &sim, json!({"identity": "ada"})).await;
    assert_eq!((s, v["code"].clone()), (503, json!(503)));
    assert!(sim.profile("ada").is_some());

    sim.faults().set_latency(Duration::from_millis(200));
    let started = Instant::now();
    assert_eq!(delete(&c, &sim, json!({"identity": "ada"})).await.0, 200);
    assert!(started.elapsed() >= Duration::from_millis(200));
    sim.faults().set_latency(Duration::ZERO);

    // Deleted, then the connection dropped: the client cannot know it worked.
    sim.faults().store_then_drop_next(1);
    let dropped = delete_as(&c, &sim, ACC, PASS, &json!({"identity": "ben"}).to_string()).await;
    assert!(dropped.is_err(), "{dropped:?}");
    assert_eq!(sim.profile("ben"), None);

    sim.faults().for_account(ACC).fail_next(1, 500);
    assert_eq!(delete(&c, &sim, json!({"identity": "cy"})).await.0, 500);

    sim.faults().outage(true);
    let refused = delete_as(
        &client(),
        &sim,
        ACC,
        PASS,
        &json!({"identity": "cy"}).to_string(),
    )
    .await;
    assert!(refused.is_err(), "{refused:?}");
    sim.faults().outage(false);
    assert!(sim.profile("cy").is_some());
    let values: Vec<String> = sim.deletions().into_iter().map(|d| d.value).collect();
    assert_eq!(values, vec!["ada", "ben"]);
    sim.shutdown().await;
}

#[tokio::test]
async fn deletes_have_their_own_concurrency_cap_per_account() {
    let sim = sim_with(SimulatorConfig {
        max_in_flight: 1,
        ..SimulatorConfig::default()
    })
    .await;
    sim.faults().hang_next(1);
    let hung = {
        let (c, sim) = (client(), sim.clone());
        tokio::spawn(async move {
            let _ = delete_as(&c, &sim, ACC, PASS, r#"{"identity":"x"}"#).await;
        })
    };
    sim.wait_for_in_flight(1, WAIT).await.expect("arrives");
    let c = client();
    let (s, v) = delete(&c, &sim, json!({"identity": "y"})).await;
    assert_eq!(
        (s, v["error"].clone()),
        (429, json!("Too many concurrent requests"))
    );
    // The upload API's cap is separate.
    assert_eq!(
        upload(&c, &sim, json!({"d":[profile("z", json!({}))]}))
            .await
            .0,
        200
    );
    assert_eq!(sim.stats().deletes.throttled, 1);
    hung.abort();
    sim.shutdown().await;
}

#[tokio::test]
async fn reset_clears_the_deletion_log() {
    let (sim, c) = with_profiles(&["ada"]).await;
    assert_eq!(delete(&c, &sim, json!({"identity": ["ada"]})).await.0, 200);
    assert_eq!(sim.deletions().len(), 1);
    sim.reset();
    assert!(sim.deletions().is_empty());
    assert_eq!(sim.stats().deletes.requests, 0);
    sim.shutdown().await;
}
