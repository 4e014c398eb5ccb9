//! CleverTap profile deletions end to end, on both queue backends: a deletion route
//! (`mode = "delete"`, the shipped example) and an erasure with `propagate=true`, delivered to
//! the simulator's `/1/delete/profiles.json` with retries, dead letters and replay like uploads.

use std::sync::Arc;
use std::time::Duration;

use clevertap_sim::{SimAccount, Simulator, SimulatorConfig};
use freshtap::config::Settings;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::pg_support::Schema;
use crate::test_app::{
    ACCOUNT_ID, PASSCODE, TestApp, contact, eventually, spawn_on, spawn_with_toml,
};

const WAIT: Duration = Duration::from_secs(15);
const PERSON: &str = "amelia.hart@example.com";
const SECOND_ID: &str = "TEST-ACC-2";

/// The shipped example deletion route, read from config/routes.example.toml.
fn example_deletion_route() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/config/routes.example.toml");
    let text = std::fs::read_to_string(path).expect("example routes");
    let start = text
        .find("[routes.contacts-deleted]")
        .expect("the example ships a deletion route");
    let rest = &text[start..];
    let end = rest[1..].find("\n[").map_or(rest.len(), |i| i + 1);
    rest[..end].to_owned()
}

/// Values the simulator deleted for `account_id`, in order.
fn deleted(clevertap: &Simulator, account_id: &str) -> Vec<String> {
    clevertap
        .deletions()
        .into_iter()
        .filter(|d| d.account_id == account_id)
        .map(|d| d.value)
        .collect()
}

async fn dead_letters(app: &TestApp) -> Vec<Value> {
    app.admin_json("/admin/dead-letters").await["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// A contact is created, then its deletion workflow fires: the profile is deleted after it
/// was created; a deletion body without the email is dead-lettered, never silently done.
async fn deletion_route_scenario(app: &TestApp) {
    let body = contact(PERSON);
    assert_eq!(
        app.post_webhook("contacts", &body).await.status(),
        StatusCode::ACCEPTED
    );
    assert_eq!(
        app.post_webhook("contacts-deleted", &body).await.status(),
        StatusCode::ACCEPTED
    );
    eventually("the profile deleted", WAIT, || async {
        (deleted(&app.clevertap, ACCOUNT_ID) == [PERSON]).then_some(())
    })
    .await;
    let deletion = &app.clevertap.deletions()[0];
    assert!(
        deletion.removed,
        "it removed the profile the contact route made"
    );
    assert!(app.clevertap.profile(PERSON).is_none());
    let upload = app
        .clevertap
        .requests()
        .into_iter()
        .next()
        .expect("the upload");
    assert!(
        upload
            .finished_tick
            .is_some_and(|answered| deletion.tick > answered),
        "per-identity order: the deletion went after the upload was answered"
    );

    let blank = contact("");
    assert_eq!(
        app.post_webhook("contacts-deleted", &blank).await.status(),
        StatusCode::ACCEPTED
    );
    let letters = eventually("a dead letter", WAIT, || async {
        let letters = dead_letters(app).await;
        (!letters.is_empty()).then_some(letters)
    })
    .await;
    assert_eq!(letters[0]["code"], "invalid_record", "{letters:?}");
    assert_eq!(letters[0]["route"], "contacts-deleted");
    assert_eq!(
        deleted(&app.clevertap, ACCOUNT_ID).len(),
        1,
        "nothing else deleted"
    );
}

#[tokio::test]
async fn a_deletion_route_deletes_the_profile_in_order() {
    let app = spawn_with_toml(&example_deletion_route(), |_| {}).await;
    deletion_route_scenario(&app).await;
}

#[cfg_attr(
    not(freshtap_postgres),
    ignore = "needs FRESHTAP_TEST_DATABASE_URL (PostgreSQL)"
)]
#[tokio::test]
async fn a_deletion_route_deletes_the_profile_in_order_on_postgres() {
    let schema = Schema::create().await;
    let url = schema.url();
    let app = spawn_with_toml(&example_deletion_route(), move |s| s.queue.url = url.into()).await;
    deletion_route_scenario(&app).await;
    app.stop().await;
    drop(schema);
}

/// The app with a second CleverTap account, `second`, in the same simulator.
async fn two_accounts(tweak: impl FnOnce(&mut Settings)) -> TestApp {
    let config = SimulatorConfig {
        accounts: vec![
            SimAccount::new(ACCOUNT_ID, PASSCODE),
            SimAccount::new(SECOND_ID, PASSCODE),
        ],
        ..SimulatorConfig::default()
    };
    let clevertap = Simulator::start("127.0.0.1:0".parse().expect("addr"), config)
        .await
        .expect("simulator starts");
    let extra = format!(
        "[clevertap.accounts.second]\naccount_id = \"{SECOND_ID}\"\npasscode = \"{PASSCODE}\"\nbase_url = \"{}\"\n",
        clevertap.url()
    );
    let dir = Arc::new(tempfile::tempdir().expect("tempdir"));
    spawn_on(dir, clevertap, &extra, tweak).await
}

/// An erasure with `propagate`: the rows go at once, a deletion per account is queued in the
/// same step, retried through a server error, delivered, shown delivered on the erasure, and
/// its body (the identity in clear) dropped once CleverTap confirmed it.
async fn propagation_scenario(app: &TestApp) {
    let body = contact(PERSON);
    assert_eq!(
        app.post_webhook("contacts", &body).await.status(),
        StatusCode::ACCEPTED
    );
    app.clevertap
        .wait_for_accepted(1, WAIT)
        .await
        .expect("delivered");
    // CleverTap has it; wait until freshtap recorded the delivery too.
    eventually("the row delivered", WAIT, || async {
        (app.stats().await["rows"]["delivered"] == 1).then_some(())
    })
    .await;

    let unknown = app
        .erase(json!({"identity": PERSON, "propagate": true, "accounts": ["nope"]}))
        .await;
    assert_eq!(unknown.status(), StatusCode::BAD_REQUEST);
    let stray = app
        .erase(json!({"identity": PERSON, "accounts": ["main"]}))
        .await;
    assert_eq!(
        stray.status(),
        StatusCode::BAD_REQUEST,
        "accounts without propagate"
    );

    // The first deletion request to the main account fails; it is retried.
    app.clevertap
        .faults()
        .for_account(ACCOUNT_ID)
        .fail_next(1, 500);
    let answer = app
        .erase(json!({"identity": " Amelia.Hart@Example.com ", "propagate": true}))
        .await;
    assert_eq!(answer.status(), StatusCode::OK);
    let record: Value = answer.json().await.expect("json");
    assert_eq!(record["removed"]["delivered"], 1, "{record}");
    assert_eq!(record["propagate"], true);
    let accounts: Vec<&str> = record["deletions"]
        .as_array()
        .expect("deletions")
        .iter()
        .filter_map(|d| d["account"].as_str())
        .collect();
    assert_eq!(accounts, ["main", "second"]);

    // As given and as freshtap's templates key it (lowercased), in one request per account.
    let expected = ["Amelia.Hart@Example.com", PERSON];
    for account_id in [ACCOUNT_ID, SECOND_ID] {
        eventually("the profile deleted in the account", WAIT, || async {
            (deleted(&app.clevertap, account_id) == expected).then_some(())
        })
        .await;
    }
    assert!(
        app.clevertap.profile(PERSON).is_none(),
        "the profile is gone"
    );
    let statuses = app.clevertap.stats().deletes.by_status;
    assert_eq!(statuses.get(&500), Some(&1), "{statuses:?}");

    let listed = eventually("the deletions shown delivered", WAIT, || async {
        let list = app.admin_json("/admin/erasures").await;
        let first = list["items"][0].clone();
        first["deletions"]
            .as_array()
            .is_some_and(|d| d.iter().all(|d| d["state"] == "delivered"))
            .then_some(first)
    })
    .await;
    assert_eq!(listed["id"], record["id"]);
    let text = app
        .admin(Method::GET, "/admin/erasures")
        .await
        .text()
        .await
        .expect("text");
    assert!(!text.to_lowercase().contains(PERSON), "{text}");
    // The deletion rows carry the erasure's request id.
    let path = format!(
        "/admin/webhooks?request_id={}",
        record["request_id"].as_str().unwrap_or_default()
    );
    let row = eventually("the body dropped", WAIT, || async {
        let row = app.admin_json(&path).await;
        row["body_dropped_at"].is_string().then_some(row)
    })
    .await;
    assert!(
        row["route"]
            .as_str()
            .is_some_and(|r| r.starts_with("_delete:")),
        "{row}"
    );
    let audit = app.admin_json("/admin/audit").await;
    let detail = audit["items"][0]["detail"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        detail.contains("CleverTap deletion queued for main, second"),
        "{detail}"
    );
}

#[tokio::test]
async fn a_propagating_erasure_deletes_the_profile_in_every_account() {
    let app = two_accounts(|_| {}).await;
    propagation_scenario(&app).await;
}

#[cfg_attr(
    not(freshtap_postgres),
    ignore = "needs FRESHTAP_TEST_DATABASE_URL (PostgreSQL)"
)]
#[tokio::test]
async fn a_propagating_erasure_deletes_the_profile_in_every_account_on_postgres() {
    let schema = Schema::create().await;
    let url = schema.url();
    let app = two_accounts(move |s| s.queue.url = url.into()).await;
    propagation_scenario(&app).await;
    app.stop().await;
    drop(schema);
}

#[tokio::test]
async fn a_refused_deletion_is_dead_lettered_and_replayed_and_a_refused_account_paused() {
    let app = two_accounts(|_| {}).await;
    // CleverTap refuses the request (400): the lone value is dead-lettered with the status.
    app.clevertap
        .faults()
        .for_account(ACCOUNT_ID)
        .set_error_rate(400, 1.0);
    let answer = app
        .erase(json!({"identity": PERSON, "propagate": true, "accounts": ["main"]}))
        .await;
    assert_eq!(answer.status(), StatusCode::OK);
    let letters = eventually("a dead letter", WAIT, || async {
        let letters = dead_letters(&app).await;
        (!letters.is_empty()).then_some(letters)
    })
    .await;
    assert_eq!(letters[0]["code"], "400", "{letters:?}");
    assert_eq!(letters[0]["route"], "_delete:main");
    app.clevertap
        .faults()
        .for_account(ACCOUNT_ID)
        .set_error_rate(400, 0.0);
    let path = format!("/admin/dead-letters/{}/replay", letters[0]["id"]);
    assert!(app.admin(Method::POST, &path).await.status().is_success());
    eventually("the replayed deletion delivered", WAIT, || async {
        (deleted(&app.clevertap, ACCOUNT_ID) == [PERSON]).then_some(())
    })
    .await;

    // Wrong credentials (401) pause the account; the deletion waits, nothing is burnt, and
    // goes once the credentials are right again.
    app.clevertap
        .faults()
        .set_credentials(SECOND_ID, vec!["rotated".into()]);
    let answer = app
        .erase(
            json!({"identity": "bob.stone@example.com", "propagate": true, "accounts": ["second"]}),
        )
        .await;
    assert_eq!(answer.status(), StatusCode::OK);
    eventually("the account paused", WAIT, || async {
        let stats = app.stats().await;
        let paused = stats["paused_accounts"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        paused
            .iter()
            .any(|p| p["account"] == "second" && p["kind"] == "refused")
            .then_some(())
    })
    .await;
    assert!(dead_letters(&app).await.is_empty(), "nothing dead-lettered");
    app.clevertap
        .faults()
        .set_credentials(SECOND_ID, vec![PASSCODE.into()]);
    eventually("the deletion delivered after the probe", WAIT, || async {
        (deleted(&app.clevertap, SECOND_ID) == ["bob.stone@example.com"]).then_some(())
    })
    .await;
}
