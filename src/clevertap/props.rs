//! Property tests of CleverTap's answers: the classifier over arbitrary statuses and bodies
//! never panics and gives every record sent exactly one verdict; and the drop-in's own answer,
//! read back by the classifier, blames exactly the records it refused, with their codes.

use std::time::SystemTime;

use proptest::prelude::*;
use serde_json::{Value, json};

use super::answer::upload_answer;
use super::classify::{RecordVerdict, Reply, Verdict, classify};

fn record(i: usize) -> Value {
    json!({"identity": format!("r{i}"), "type": "profile", "profileData": {}})
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        ".{0,20}",
        (0_usize..12).prop_map(|k| format!("x.Skipped record number : {k}")),
        Just("Skipped record number :".to_owned()),
        Just("Skipped record number : 99999999999999999999999".to_owned()),
    ]
}

fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u16>().prop_map(Value::from),
        text().prop_map(Value::from),
    ];
    leaf.prop_recursive(2, 12, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
            prop::collection::btree_map("[a-z]{1,6}", inner, 0..3)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// An `unprocessed` item of any era's shape, or anything at all.
fn item(sent: usize) -> impl Strategy<Value = Value> {
    let code = prop_oneof![
        (500_u64..560).prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        "[0-9 ]{0,4}".prop_map(Value::from),
        any_json(),
    ];
    let shaped = (code, text(), prop::option::of(0..sent + 2), any::<bool>()).prop_map(
        move |(code, error, echo, as_text)| {
            let mut item = json!({"status": "fail", "code": code, "error": error});
            if let Some(i) = echo {
                let echoed = record(i);
                item["record"] = if as_text {
                    Value::String(echoed.to_string())
                } else {
                    echoed
                };
            }
            item
        },
    );
    prop_oneof![4 => shaped, 1 => any_json()]
}

fn body(sent: usize) -> impl Strategy<Value = Vec<u8>> {
    let answer = (
        prop::option::of(any_json()),
        prop::collection::vec(item(sent), 0..sent + 2),
        any_json(),
    )
        .prop_map(|(processed, unprocessed, status)| {
            json!({"status": status, "processed": processed, "unprocessed": unprocessed})
                .to_string()
                .into_bytes()
        });
    prop_oneof![
        3 => answer,
        1 => prop::collection::vec(any::<u8>(), 0..64),
        1 => any_json().prop_map(|v| v.to_string().into_bytes()),
    ]
}

fn reply() -> impl Strategy<Value = (usize, Reply)> {
    (0_usize..6).prop_flat_map(|sent| {
        let http = (
            prop_oneof![3 => Just(200_u16), 1 => 100_u16..600, 1 => any::<u16>()],
            prop::option::of(prop_oneof![
                "[0-9]{1,3}".boxed(),
                ".{0,30}".boxed(),
                Just("Tue, 01 Dec 2026 22:00:00 GMT".to_owned()).boxed(),
            ]),
            body(sent),
        )
            .prop_map(|(status, retry_after, body)| Reply::Http {
                status,
                retry_after,
                body,
            });
        let other = prop_oneof![
            Just(Reply::Timeout),
            ".{0,10}".prop_map(Reply::Connect),
            ".{0,10}".prop_map(Reply::Other),
        ];
        (Just(sent), prop_oneof![6 => http, 1 => other])
    })
}

/// What the drop-in refuses: CleverTap's codes (555 included) with any text.
fn refusals() -> impl Strategy<Value = Vec<Option<(u16, String)>>> {
    let code = prop_oneof![4 => 509_u16..=535, 1 => Just(555_u16), 1 => 1_u16..1000];
    prop::collection::vec(prop::option::weighted(0.4, (code, text())), 1..12)
}

proptest! {
    #[test]
    fn every_record_sent_gets_exactly_one_verdict((sent, reply) in reply()) {
        let records: Vec<Value> = (0..sent).map(record).collect();
        let refs: Vec<&Value> = records.iter().collect();
        if let Verdict::Records(verdicts) = classify(&reply, &refs, SystemTime::now()) {
            prop_assert_eq!(verdicts.len(), sent);
        }
    }

    #[test]
    fn the_drop_in_answer_read_back_blames_exactly_the_refused(refusals in refusals()) {
        let records: Vec<Value> = (0..refusals.len()).map(record).collect();
        let answer = upload_answer(&records, &refusals);
        let unprocessed = answer["unprocessed"].as_array().map_or(0, Vec::len);
        prop_assert_eq!(answer["processed"].as_u64(), Some((records.len() - unprocessed) as u64));
        prop_assert_eq!(unprocessed, refusals.iter().flatten().count());
        let reply = Reply::Http { status: 200, retry_after: None, body: answer.to_string().into_bytes() };
        let refs: Vec<&Value> = records.iter().collect();
        let Verdict::Records(verdicts) = classify(&reply, &refs, SystemTime::now()) else {
            return Err(TestCaseError::fail(format!("not per-record: {answer}")));
        };
        for (index, (verdict, refusal)) in verdicts.iter().zip(&refusals).enumerate() {
            let fine = match (refusal, verdict) {
                (None, RecordVerdict::Delivered) => true,
                (Some((555, _)), RecordVerdict::Retry { .. }) => true,
                (Some((code, _)), RecordVerdict::Dead { code: got, .. }) => code == got,
                _ => false,
            };
            prop_assert!(fine, "record {}: {:?} read back as {:?}", index + 1, refusal, verdict);
        }
    }
}
