//! CleverTap's own Node library as the judge of the drop-in `/1/upload`: the real app on port 0
//! against the in-process simulator, `node tests/node/drop_in.js` pointed at it (the script
//! checks the library's parsed answers), then the simulator's records checked against what the
//! script says CleverTap should have received. Ignored, with the reason, where Node or
//! `tests/node/node_modules` (`npm ci` in tests/node) is missing; `.ci/run` installs both.

#[path = "api/test_app.rs"]
#[allow(
    dead_code,
    reason = "shared with tests/api; this binary uses a part of it"
)]
mod test_app;

use std::time::Duration;

use serde_json::Value;

use test_app::{ACCOUNT_ID, PASSCODE, spawn_app};

fn node() -> String {
    std::env::var("FRESHTAP_TEST_NODE")
        .ok()
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| "node".into())
}

/// Records compared as a multiset: delivery order across identities is the queue's to choose.
fn sorted(records: &[Value]) -> Vec<String> {
    let mut texts: Vec<String> = records.iter().map(Value::to_string).collect();
    texts.sort();
    texts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(freshtap_node),
    ignore = "needs node and CleverTap's library: run `npm ci` in tests/node (or set FRESHTAP_TEST_NODE)"
)]
async fn clevertaps_node_library_cannot_tell_freshtap_from_clevertap() {
    let app = spawn_app().await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/node/drop_in.js");
    let output = tokio::process::Command::new(node())
        .arg(script)
        .env("FRESHTAP_URL", &app.address)
        .env("FRESHTAP_ACCOUNT_ID", ACCOUNT_ID)
        .env("FRESHTAP_PASSCODE", PASSCODE)
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(120), output)
        .await
        .expect("the Node judge finishes within 2 minutes")
        .expect("node runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the Node judge found differences ({}):\n{stderr}",
        output.status
    );
    let report: Value = serde_json::from_slice(&output.stdout).expect("the judge's report is JSON");
    let expected = report["delivered"].as_array().expect("delivered records");
    assert!(expected.len() > 1000, "{} records", expected.len());
    let received = app
        .clevertap
        .wait_for_accepted(expected.len(), Duration::from_secs(30))
        .await
        .expect("every accepted record reaches CleverTap");
    // A moment more: a record sent twice, or one refused record sent after all, would show.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let received_now = app.clevertap.accepted_records();
    assert_eq!(received_now.len(), received.len(), "nothing more arrives");
    let (got, want) = (sorted(&received_now), sorted(expected));
    let extra: Vec<&String> = got.iter().filter(|r| !want.contains(r)).take(3).collect();
    let missing: Vec<&String> = want.iter().filter(|r| !got.contains(r)).take(3).collect();
    assert!(
        got == want,
        "CleverTap received exactly the accepted records, unchanged but for the documented \
         repairs; received but not expected: {extra:?}; expected but not received: {missing:?}"
    );
    assert_eq!(
        app.clevertap.stats().records_rejected,
        0,
        "CleverTap refused none of what freshtap sent"
    );
    let letters = app.admin_json("/admin/dead-letters?limit=100").await;
    let mut codes: Vec<String> = letters["items"]
        .as_array()
        .expect("dead letters")
        .iter()
        .map(|l| l["code"].as_str().unwrap_or("?").to_owned())
        .collect();
    codes.sort();
    assert_eq!(
        codes,
        [
            "509", "512", "513", "514", "515", "516", "517", "518", "519", "520", "523", "525",
            "525"
        ],
        "each refused record is kept as a dead letter with CleverTap's code"
    );
}
