//! Mapping end to end: Simple-mode bodies through the shipped templates to CleverTap.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::test_app::{eventually, spawn_on, spawn_with_toml};

const ROUTES: &str = r#"
[routes.deals]
account = "main"
template = "config/templates/deal.json"
mode = "template"
date_format = "%m-%d-%Y %H:%M:%S"
[routes.accounts]
account = "main"
template = "config/templates/account.json"
date_format = "%m-%d-%Y %H:%M:%S"
[routes.seed-basic]
account = "main"
template = "config/templates/seed-basic.json"
[routes.seed-basic.aliases]
phone_number = ["mobile_number", "work_number"]
lead_source = "lead_source_name"
[routes.seed-advanced]
account = "main"
template = "config/templates/seed-advanced.json"
[routes.seed-advanced.aliases]
dob_timestamp = ["cf_date_of_birth"]
[routes.upload]
account = "main"
mode = "passthrough"
"#;

#[tokio::test]
async fn each_shipped_route_delivers_what_its_template_intends() {
    let app = spawn_with_toml(ROUTES, |_| {}).await;
    let contact = include_str!("../fixtures/3.1.json");
    let deal = include_str!("../fixtures/3.10.json");
    let account = include_str!("../fixtures/3.11.json");
    for (route, body) in [
        ("contacts", contact),
        ("deals", deal),
        ("accounts", account),
        ("seed-basic", contact),
        ("seed-advanced", include_str!("../fixtures/3.14.json")),
        ("upload", include_str!("../fixtures/3.5.json")),
    ] {
        let response = app.post_webhook(route, body).await;
        assert_eq!(response.status(), StatusCode::ACCEPTED, "{route}");
    }
    // contacts, deals (profile + Deal Won), accounts, seed-basic, seed-advanced, upload
    app.clevertap
        .wait_for_accepted(7, Duration::from_secs(10))
        .await
        .expect("all records delivered");
    let amelia = app
        .clevertap
        .profile("amelia.hart@example.com")
        .expect("contact profile");
    assert_eq!(amelia["Phone"], "+447700900123");
    assert_eq!(amelia["Lead Source"], "Web Form");
    // The seed payload (objectId = email) lands on the same profile after the contact
    // route's record (per-identity order), so its Name = {{first_name}} wins.
    assert_eq!(amelia["Name"], "Amelia");
    assert_eq!(amelia["Lifecycle Stage"], "Lead");
    let won: Vec<Value> = app
        .clevertap
        .events()
        .into_iter()
        .filter(|e| e["evtName"] == "Deal Won")
        .collect();
    assert_eq!(won.len(), 1);
    assert_eq!(won[0]["evtData"]["Amount"], 48000.0);
    let account = app
        .clevertap
        .profile("account-16000987654")
        .expect("account profile");
    assert_eq!(account["Phone"], "+14155550100");
    // CleverTap's advanced guide payload, verbatim, fed by a Simple-mode contact (3.14).
    let lucia = app
        .clevertap
        .profile("Lucia.Fernandez@Example.com")
        .expect("seed-advanced profile");
    assert_eq!(lucia["DOB"], "$D_637372800");
    assert_eq!(lucia["MSG-dndPhone"], true);
    assert_eq!(
        lucia["category-unsubscribe"]["email"],
        serde_json::json!(["Newsletters", "Promotions"])
    );
}

#[tokio::test]
async fn replaying_after_a_template_fix_uses_the_fixed_template() {
    let templates = tempfile::tempdir().expect("tempdir");
    let path = templates.path().join("fixme.json");
    std::fs::write(&path, r#"{"type":"profile","identity":"{{ no_such_field }}","profileData":{"Name":"{{ first_name }}"}}"#)
        .expect("write template");
    let routes = format!(
        "[routes.fixme]\naccount = \"main\"\ntemplate = \"{}\"\nmode = \"template\"\n",
        path.display()
    );
    let app = spawn_with_toml(&routes, |_| {}).await;
    assert_eq!(
        app.post_webhook("fixme", include_str!("../fixtures/3.1.json"))
            .await
            .status(),
        StatusCode::ACCEPTED
    );
    let letter = eventually(
        "the render dead letter",
        Duration::from_secs(10),
        || async {
            let list = app.admin_json("/admin/dead-letters").await;
            list["items"]
                .as_array()
                .and_then(|items| items.first().cloned())
        },
    )
    .await;
    assert_eq!(letter["code"], "invalid_record");
    assert_eq!(
        app.clevertap.stats().requests,
        0,
        "an unsendable record never costs a request"
    );

    let (clevertap, dir) = app.stop().await;
    std::fs::write(&path, r#"{"type":"profile","identity":"{{ email | lower }}","profileData":{"Name":"{{ first_name }}"}}"#)
        .expect("fix template");
    let app = spawn_on(dir, clevertap, &routes, |_| {}).await;
    let report: Value = app
        .admin(Method::POST, "/admin/dead-letters/replay?all=true")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(report["replayed"], 1);
    let records = app
        .clevertap
        .wait_for_accepted(1, Duration::from_secs(10))
        .await
        .expect("delivered after the fix");
    assert_eq!(records[0]["identity"], "amelia.hart@example.com");
    assert_eq!(records[0]["profileData"]["Name"], "Amelia");
}
