//! The dead-letter commands as an operator meets them, through the real binary: an unreadable
//! webhook is shown, a fix that does not parse is refused, a good fix is stored and replayed.

mod support;

use std::path::PathBuf;
use std::process::Output;
use std::time::Duration;

use clevertap_sim::{SimAccount, Simulator, SimulatorConfig};
use serde_json::Value;
use support::relay::Relay;

const TOKEN: &str = "cli-token";

fn output_text(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn file(relay: &Relay, name: &str, text: &str) -> PathBuf {
    let path = relay.dir().join(name);
    std::fs::write(&path, text).expect("write file");
    path
}

async fn simulator(account: &str, passcode: &str) -> Simulator {
    let config = SimulatorConfig {
        accounts: vec![SimAccount::new(account, passcode)],
        ..SimulatorConfig::default()
    };
    Simulator::start("127.0.0.1:0".parse().expect("addr"), config)
        .await
        .expect("simulator")
}

#[tokio::test(flavor = "multi_thread")]
async fn an_invalid_body_is_shown_and_fixed_from_the_command_line() {
    let sim = simulator("CLI-ACC", "cli-pass").await;
    let setup = Relay::new(&format!(
        "[server]\nbind = \"127.0.0.1:0\"\ndrain_secs = 0\n\
         [queue]\nurl = \"sqlite://{{dir}}/freshtap.db\"\n\
         [clevertap.accounts.main]\naccount_id = \"CLI-ACC\"\npasscode = \"cli-pass\"\n\
         base_url = \"{}\"\n\
         [auth]\ntoken = \"{TOKEN}\"\n[log]\nlevel = \"warn,freshtap::startup=info\"\n",
        sim.url()
    ));
    let relay = setup.start();
    relay.wait_healthy().await;
    let client = reqwest::Client::new();
    let answer: Value = client
        .post(relay.url("/webhooks/contacts"))
        .header("X-Freshtap-Token", TOKEN)
        .header("Content-Type", "application/json")
        .body("{\"contact_email\":\"fix.me@example.com\" \"oops\"}")
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("json");
    let id = answer["dead_letter_id"].as_i64().expect("dead letter id");
    let id_text = id.to_string();

    let shown = setup.run(&["dead-letters", "show", &id_text]);
    assert!(shown.status.success(), "{}", output_text(&shown));
    let letter: Value = serde_json::from_slice(&shown.stdout).expect("one JSON object");
    assert_eq!(letter["code"], "invalid_body");
    assert!(letter["body"].as_str().is_some_and(|b| b.contains("oops")));

    let still_bad = file(&setup, "bad.json", "{not json");
    let refused = setup.run(&["dead-letters", "fix", &id_text, "--body-file"]);
    assert!(!refused.status.success(), "--body-file is required");
    let still_bad = still_bad.display().to_string();
    let refused = setup.run(&["dead-letters", "fix", &id_text, "--body-file", &still_bad]);
    assert!(!refused.status.success());
    assert!(
        output_text(&refused).contains("does not read"),
        "{}",
        output_text(&refused)
    );

    let good = file(
        &setup,
        "good.json",
        r#"{"contact_email":"fix.me@example.com","contact_first_name":"Fix"}"#,
    );
    let good = good.display().to_string();
    let fixed = setup.run(&["dead-letters", "fix", &id_text, "--body-file", &good]);
    assert!(fixed.status.success(), "{}", output_text(&fixed));
    let replayed = setup.run(&["dead-letters", "replay", "--id", &id_text]);
    assert!(replayed.status.success(), "{}", output_text(&replayed));
    sim.wait_for_accepted(1, Duration::from_secs(10))
        .await
        .expect("the fixed body is delivered");
    assert!(sim.profile("fix.me@example.com").is_some());
}
