//! Integration tests of the opt-in 2017 answer shapes against exchanges CleverTap really
//! answered that way (recorded by the clevertap-ruby client's test suite in 2017; names, emails
//! and phones rewritten).

mod sim_support;

use clevertap_sim::{AnswerShape, SimulatorConfig};
use serde_json::{Map, Value, json};
use sim_support::*;

/// Early 2017: every record refused with 525 (`ts` 0), `status` still `success`,
/// each `record` a space-padded JSON string.
const F8_REQUEST: &str = r#"{"d":[{"identity":"22","ts":0,"type":"profile","profileData":{"Name":"Ada Pell"}},{"identity":"23","ts":0,"type":"profile","profileData":{"Name":"Ben Okafor"}}]}"#;
const F8_ANSWER: &str = r#"{ "status" : "success" , "processed" : 0 , "unprocessed" : [ { "status" : "fail" , "code" : 525 , "error" : "Timestamp should be present in the Unix Epoch format. Skipped record number : 1" , "record" : "{ \"identity\" : \"22\" , \"ts\" : 0 , \"type\" : \"profile\" , \"profileData\" : { \"Name\" : \"Ada Pell\"}}"} , { "status" : "fail" , "code" : 525 , "error" : "Timestamp should be present in the Unix Epoch format. Skipped record number : 2" , "record" : "{ \"identity\" : \"23\" , \"ts\" : 0 , \"type\" : \"profile\" , \"profileData\" : { \"Name\" : \"Ben Okafor\"}}"}]}"#;

/// 20 October 2017: the refused record's JSON text is the key, the error its value, no code.
const OCT_2017_REQUEST: &str = r#"{"d":[{"identity":"3","ts":1508483325,"type":"profile","profileData":{"identity":3,"created_at":"2017-10-20 10:08:45 +0300","Name":"Ada Pell","Email":"ada.pell@example.com","Gender":"F","Phone":"+35929870412","Employed":"Y","Education":"Graduate","Married":"Y","Age":"18"}},{"identity":"4","ts":1508483325,"type":"profile","profileData":{"identity":4,"created_at":"2017-10-20 10:08:45 +0300","Name":"Ben Okafor","Email":"$$$$$","Gender":"M","Phone":"+35929870413","Employed":"Y","Education":"Graduate","Married":"Y","Age":"18"}}]}"#;
const OCT_2017_ANSWER: &str = r#"{ "status" : "success" , "processed" : 1 , "unprocessed" : [ { "{ \"identity\" : \"4\" , \"ts\" : 1508483325 , \"type\" : \"profile\" , \"profileData\" : { \"identity\" : 4 , \"created_at\" : \"2017-10-20 10:08:45 +0300\" , \"Name\" : \"Ben Okafor\" , \"Email\" : \"$$$$$\" , \"Gender\" : \"M\" , \"Phone\" : \"+35929870413\" , \"Employed\" : \"Y\" , \"Education\" : \"Graduate\" , \"Married\" : \"Y\" , \"Age\" : \"18\"}}" : "Profile data is incorrect. Email is not valid.Skipped record number : 2"}]}"#;

/// JSON texts inside the answer (a `record` string, an item's key) parsed, so answers compare
/// by meaning: CleverTap's echo keeps the sender's key order, which the simulator need not.
fn normalised(answer: &Value) -> Value {
    let parse = |text: &str| serde_json::from_str::<Value>(text).unwrap_or(Value::Null);
    let mut out = answer.clone();
    if let Some(items) = out["unprocessed"].as_array_mut() {
        for item in items {
            let Some(obj) = item.as_object() else {
                continue;
            };
            let mut fixed = Map::new();
            for (k, v) in obj {
                match (k.as_str(), v) {
                    ("record", Value::String(text)) => fixed.insert(k.clone(), parse(text)),
                    (key, _) if key.starts_with('{') => {
                        fixed.insert("record-key".into(), parse(key));
                        fixed.insert("record-value".into(), v.clone())
                    }
                    _ => fixed.insert(k.clone(), v.clone()),
                };
            }
            *item = Value::Object(fixed);
        }
    }
    out
}

async fn answer_with(shape: AnswerShape, request: &str) -> (u16, String) {
    let sim = sim_with(SimulatorConfig {
        answer_shape: shape,
        space_padded: true,
        ..SimulatorConfig::default()
    })
    .await;
    let resp = client()
        .post(format!("{}/1/upload", sim.url()))
        .header("X-CleverTap-Account-Id", ACC)
        .header("X-CleverTap-Passcode", PASS)
        .body(request.to_owned())
        .send()
        .await
        .expect("answered");
    let status = resp.status().as_u16();
    let text = resp.text().await.expect("body");
    sim.shutdown().await;
    (status, text)
}

fn parsed(text: &str) -> Value {
    serde_json::from_str(text).expect("answer is JSON")
}

#[tokio::test]
async fn record_as_string_answers_as_early_2017_did() {
    let (status, text) = answer_with(AnswerShape::RecordAsString, F8_REQUEST).await;
    assert_eq!(status, 200);
    assert_eq!(normalised(&parsed(&text)), normalised(&parsed(F8_ANSWER)));
    // Spaced like the recording up to the first echo.
    let head = r#"{ "status" : "success" , "processed" : 0 , "unprocessed" : [ { "status" : "fail" , "code" : 525 , "error" : "Timestamp"#;
    assert!(text.starts_with(head), "{text}");
    let echo = parsed(&text)["unprocessed"][0]["record"].clone();
    assert!(
        echo.as_str().is_some_and(|r| r.starts_with("{ \"")),
        "{echo}"
    );
}

#[tokio::test]
async fn record_as_key_answers_as_october_2017_did() {
    let (status, text) = answer_with(AnswerShape::RecordAsKey, OCT_2017_REQUEST).await;
    assert_eq!(status, 200);
    let got = parsed(&text);
    assert_eq!(normalised(&got), normalised(&parsed(OCT_2017_ANSWER)));
    let item = got["unprocessed"][0]
        .as_object()
        .cloned()
        .unwrap_or_default();
    assert_eq!(item.len(), 1, "{item:?}");
    assert!(item.get("code").is_none());
}

#[tokio::test]
async fn the_current_shape_stays_the_default() {
    assert_eq!(
        SimulatorConfig::default().answer_shape,
        AnswerShape::Current
    );
    let (status, text) = answer_with(AnswerShape::Current, F8_REQUEST).await;
    let got = parsed(&text);
    assert_eq!((status, got["status"].clone()), (200, json!("fail")));
    assert_eq!(got["unprocessed"][1]["record"]["identity"], "23");
    assert_eq!(got["unprocessed"][1]["code"], 525);
}
