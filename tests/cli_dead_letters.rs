//! The offline tools as an operator meets them, through the real binary: an unreadable webhook
//! is shown, a fix that does not parse is refused, a good fix is stored and replayed; and one
//! person's data is erased from the command line.

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

fn relay_for(sim: &Simulator) -> Relay {
    Relay::new(&format!(
        "[server]\nbind = \"127.0.0.1:0\"\ndrain_secs = 0\n\
         [queue]\nurl = \"sqlite://{{dir}}/freshtap.db\"\n\
         [clevertap.accounts.main]\naccount_id = \"CLI-ACC\"\npasscode = \"cli-pass\"\n\
         base_url = \"{}\"\n\
         [auth]\ntoken = \"{TOKEN}\"\n[log]\nlevel = \"warn,freshtap::startup=info\"\n",
        sim.url()
    ))
}

#[tokio::test(flavor = "multi_thread")]
async fn one_person_is_erased_from_the_command_line() {
    let sim = simulator("CLI-ACC", "cli-pass").await;
    let setup = relay_for(&sim);
    let relay = setup.start();
    relay.wait_healthy().await;
    let client = reqwest::Client::new();
    for email in ["erase.me@example.com", "keep.me@example.com"] {
        let sent = client
            .post(relay.url("/webhooks/contacts"))
            .header("X-Freshtap-Token", TOKEN)
            .header("Content-Type", "application/json")
            .body(format!(
                "{{\"contact_email\":\"{email}\",\"contact_first_name\":\"A\"}}"
            ))
            .send()
            .await
            .expect("sent");
        assert_eq!(sent.status(), 202);
    }
    sim.wait_for_accepted(2, Duration::from_secs(10))
        .await
        .expect("both delivered");

    let erased = setup.run(&["erase", "--identity", "Erase.Me@example.com"]);
    assert!(erased.status.success(), "{}", output_text(&erased));
    let stdout = String::from_utf8_lossy(&erased.stdout);
    let record: Value = serde_json::from_str(&stdout).expect("the erasure as JSON");
    assert_eq!(record["removed"]["delivered"], 1, "{stdout}");
    assert!(!stdout.to_lowercase().contains("erase.me"), "{stdout}");
    let again = setup.run(&["erase", "--identity", "erase.me@example.com"]);
    let again: Value = serde_json::from_slice(&again.stdout).expect("JSON");
    assert_eq!(again["removed"]["delivered"], 0, "nothing left to remove");
    let other = setup.run(&[
        "erase",
        "--identity",
        "keep.me@example.com",
        "--keep-pending",
    ]);
    let other: Value = serde_json::from_slice(&other.stdout).expect("JSON");
    assert_eq!(
        other["removed"]["delivered"], 1,
        "the other person was kept until asked"
    );

    // Propagation: the deletion is queued by the command and sent by the running relay.
    let unknown = setup.run(&[
        "erase",
        "--identity",
        "x@example.com",
        "--propagate",
        "--account",
        "nope",
    ]);
    assert!(!unknown.status.success());
    assert!(
        output_text(&unknown).contains("not a configured"),
        "{}",
        output_text(&unknown)
    );
    let stray = setup.run(&["erase", "--identity", "x@example.com", "--account", "main"]);
    assert!(!stray.status.success(), "--account needs --propagate");
    let propagated = setup.run(&["erase", "--identity", "erase.me@example.com", "--propagate"]);
    assert!(propagated.status.success(), "{}", output_text(&propagated));
    let record: Value = serde_json::from_slice(&propagated.stdout).expect("JSON");
    assert_eq!(record["deletions"][0]["account"], "main", "{record}");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !sim
        .deletions()
        .iter()
        .any(|d| d.value == "erase.me@example.com")
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the relay sent the deletion"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_invalid_body_is_shown_and_fixed_from_the_command_line() {
    let sim = simulator("CLI-ACC", "cli-pass").await;
    let setup = relay_for(&sim);
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
