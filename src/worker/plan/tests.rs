//! A stored upload judged record by record gives exactly what the whole-body render gives,
//! and a body that does not read that way falls back to it.

use super::*;
use crate::mapping::tests::passthrough;

const RECEIVED: i64 = 1_795_700_000;

fn records(done: Vec<u32>) -> Records {
    Records {
        plan: RowPlan {
            row: Claimed {
                id: 7,
                route: "upload".into(),
                account: "main".into(),
                kind: BodyKind::Json,
                body: Vec::new(),
                request_id: "req-1".into(),
                received_at_ms: RECEIVED * 1000,
                attempts: 0,
                deadline_ms: i64::MAX,
                done,
            },
            delivered: Vec::new(),
            dead: Vec::new(),
            taken: true,
        },
        items: Vec::new(),
        index: 0,
        deletion: false,
    }
}

/// What a delivery would send and dead-letter: (record index, bytes sent, echo) and the dead.
type Seen = (Vec<(u32, String, Value)>, Vec<NewDeadLetter>, Vec<u32>);

fn seen(out: &Records) -> Seen {
    let items = out
        .items
        .iter()
        .map(|i| {
            (
                i.index,
                String::from_utf8_lossy(&i.bytes).into_owned(),
                i.value.clone(),
            )
        })
        .collect();
    (items, out.plan.dead.clone(), out.plan.delivered.clone())
}

/// The whole-body way: parse, render, take each record.
fn whole(mapping: &RouteMapping, body: &str, done: Vec<u32>) -> Seen {
    let mut out = records(done);
    let parsed = webhook::parse(BodyKind::Json, body.as_bytes()).expect("the body is JSON");
    for (i, outcome) in mapping
        .render(&parsed.value, RECEIVED)
        .records
        .into_iter()
        .enumerate()
    {
        out.take(i, outcome);
    }
    seen(&out)
}

const BODIES: &[&str] = &[
    // Profiles with repairs CleverTap's rules allow: phone, identity spacing, dates.
    r#"{"d":[{"identity":" ada@example.com ","type":"profile","profileData":{"Name":"Ada","Phone":"+1 (415) 555-2671","DOB":"$D_1995700000"}}]}"#,
    // Refusals among accepted records, an event with and without ts, a token, an unknown type.
    r#"{"d":[{"type":"user","identity":"x"},{"identity":"b@example.com","type":"event","evtName":"Charged","evtData":{"Amount":12.5},"ts":1795700000},{"identity":"c@example.com","type":"event","evtName":"Charged","evtData":{}},{"type":"token","identity":"d","tokenData":{"id":"t","type":"fcm"}},{"type":"profile","profileData":{"Name":"no id"}},"not an object",{"objectId":42,"type":"profile","profileData":{"Plan":{"$add":["Pro"]}}}]}"#,
    // Unicode, escapes, nested values, other top-level keys before and after `d`.
    r#"{"x":1,"d":[{"identity":"\u00e9l\u00e8ve@example.com","type":"profile","profileData":{"Notes":"line\nbreak \"quoted\"","Tags":["a","b"],"Score":1e2,"Big":12345678901234567890}}],"y":{"z":[1,2]}}"#,
    r#"{"d":[]}"#,
];

#[test]
fn record_by_record_matches_the_whole_body() {
    let mapping = passthrough();
    for body in BODIES {
        for done in [vec![], vec![0], vec![1, 3]] {
            let mut out = records(done.clone());
            assert!(
                judge_upload(&mapping, body.as_bytes(), RECEIVED, &mut out),
                "{body} reads record by record"
            );
            assert_eq!(seen(&out), whole(&mapping, body, done), "{body}");
        }
    }
}

#[test]
fn bodies_the_record_reader_cannot_take_fall_back_whole() {
    let mapping = passthrough();
    for body in [
        // Two `d` keys: the whole-body parse keeps the last one.
        r#"{"d":[{"identity":"a","type":"profile","profileData":{"A":1}}],"d":[{"identity":"b","type":"profile","profileData":{"B":2}}]}"#,
        // Valid JSON syntax that does not parse as a value: out of f64's range.
        r#"{"d":[{"identity":"a","type":"profile","profileData":{"A":1}},{"identity":"b","type":"profile","profileData":{"B":1e400}}]}"#,
        // `d` is not an array; the body is not an object.
        r#"{"d":{"identity":"a"}}"#,
        r#"[{"d":[]}]"#,
    ] {
        let mut out = records(vec![]);
        assert!(
            !judge_upload(&mapping, body.as_bytes(), RECEIVED, &mut out),
            "{body}"
        );
    }
}
