//! Tests of the classifier: every answer of CleverTap's reference, table by table.

use super::*;
use serde_json::json;

fn http(status: u16, body: &str) -> Reply {
    Reply::Http {
        status,
        retry_after: None,
        body: body.as_bytes().to_vec(),
    }
}

fn refs(values: &[Value]) -> Vec<&Value> {
    values.iter().collect()
}

fn records(n: usize) -> Vec<Value> {
    (0..n)
        .map(|i| json!({"identity": format!("{i}"), "type": "profile"}))
        .collect()
}

fn dead(code: u16) -> RecordVerdict {
    RecordVerdict::Dead {
        code,
        reason: String::new(),
    }
}

fn retried() -> RecordVerdict {
    RecordVerdict::Retry {
        reason: String::new(),
        count_attempt: true,
        retry_after: None,
    }
}

/// Verdicts with reasons blanked, to compare codes only.
fn codes(verdict: Verdict) -> Vec<RecordVerdict> {
    match verdict {
        Verdict::Records(list) => list
            .into_iter()
            .map(|v| match v {
                RecordVerdict::Dead { code, .. } => dead(code),
                RecordVerdict::Retry { .. } => retried(),
                other => other,
            })
            .collect(),
        other => panic!("expected per-record verdicts, got {other:?}"),
    }
}

#[test]
fn reference_fixtures_classify_as_expected() {
    let now = SystemTime::now();
    let f3 = r#"{"status":"partial","processed":1,"unprocessed":[{"status":"fail","code":515,"error":"Profile data is incorrect. Email is not valid.Skipped record number : 2","record":{"identity":"4"}}]}"#;
    let f8 = r#"{"status":"success","processed":0,"unprocessed":[{"status":"fail","code":525,"error":"Timestamp should be present in the Unix Epoch format. Skipped record number : 1","record":"{ \"identity\" : \"22\" }"},{"status":"fail","code":525,"error":"Timestamp should be present in the Unix Epoch format. Skipped record number : 2","record":"{ \"identity\" : \"23\" }"}]}"#;
    let cases: Vec<(&str, Reply, usize, Vec<RecordVerdict>)> = vec![
        (
            "F1 all processed",
            http(
                200,
                r#"{"status":"success","processed":2,"unprocessed":[]}"#,
            ),
            2,
            vec![RecordVerdict::Delivered, RecordVerdict::Delivered],
        ),
        (
            "F3 partial",
            http(200, f3),
            2,
            vec![RecordVerdict::Delivered, dead(515)],
        ),
        (
            "F8 string records, success status",
            http(200, f8),
            2,
            vec![dead(525), dead(525)],
        ),
        (
            "555 retried alone",
            http(
                200,
                r#"{"status":"partial","processed":1,"unprocessed":[{"code":555,"error":"misc. Skipped record number : 1"}]}"#,
            ),
            2,
            vec![retried(), RecordVerdict::Delivered],
        ),
    ];
    for (name, reply, n, expected) in cases {
        assert_eq!(
            codes(classify(&reply, &refs(&records(n)), now)),
            expected,
            "{name}"
        );
    }
}

#[test]
fn whole_request_answers_map_to_actions() {
    let now = SystemTime::now();
    let sent = records(3);
    let kind = |v: Verdict| match v {
        Verdict::Records(_) => "records",
        Verdict::RetryAll {
            failure: Failure::Server,
            ..
        } => "retry",
        Verdict::RetryAll {
            failure: Failure::Outage,
            ..
        } => "outage",
        Verdict::RetryAll {
            failure: Failure::Throttled,
            ..
        } => "retry-free",
        Verdict::Pause { .. } => "pause",
        Verdict::Bisect { .. } => "bisect",
    };
    let cases = [
        (
            "400 malformed",
            http(
                400,
                r#"{"status":"fail","error":"Malformed request","code":400}"#,
            ),
            "bisect",
        ),
        ("413 too large", http(413, ""), "bisect"),
        (
            "401 F7",
            http(
                401,
                r#"{"status":"fail","error":"Account ID is not valid","code":401}"#,
            ),
            "pause",
        ),
        ("403", http(403, ""), "pause"),
        ("404 wrong base_url", http(404, "<html>"), "pause"),
        ("405", http(405, ""), "pause"),
        ("415", http(415, ""), "pause"),
        ("429 costs no attempt", http(429, ""), "retry-free"),
        ("500", http(500, ""), "retry"),
        ("502 html", http(502, "<html>bad gateway</html>"), "outage"),
        ("503", http(503, ""), "outage"),
        ("504", http(504, ""), "outage"),
        ("timeout", Reply::Timeout, "outage"),
        ("refused", Reply::Connect("refused".into()), "outage"),
        (
            "200 nothing processed, nothing named",
            http(200, r#"{"status":"fail","processed":0,"unprocessed":[]}"#),
            "bisect",
        ),
        ("200 not json", http(200, "<html>"), "retry"),
    ];
    for (name, reply, expected) in cases {
        assert_eq!(
            kind(classify(&reply, &refs(&sent), now)),
            expected,
            "{name}"
        );
    }
}

#[test]
fn an_echo_without_a_number_blames_the_matching_record() {
    let sent = vec![
        json!({"identity":"a","type":"profile"}),
        json!({"identity":"b","type":"event","evtName":"Deal Won"}),
    ];
    let body = r#"{"status":"partial","processed":1,"unprocessed":[{"code":512,"error":"nested","record":{"identity":"b","type":"event","evtName":"Deal Won"}}]}"#;
    assert_eq!(
        codes(classify(&http(200, body), &refs(&sent), SystemTime::now())),
        vec![RecordVerdict::Delivered, dead(512)]
    );
}

#[test]
fn retry_after_is_honoured_in_seconds_and_dates() {
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
    assert_eq!(parse_retry_after("7", now), Some(Duration::from_secs(7)));
    let date = httpdate::fmt_http_date(now + Duration::from_secs(30));
    assert_eq!(parse_retry_after(&date, now), Some(Duration::from_secs(30)));
    assert_eq!(parse_retry_after("soon", now), None);
    let reply = Reply::Http {
        status: 429,
        retry_after: Some("3".into()),
        body: Vec::new(),
    };
    assert!(
        matches!(classify(&reply, &refs(&records(1)), now), Verdict::RetryAll { retry_after: Some(d), .. } if d == Duration::from_secs(3))
    );
}

#[test]
fn deletion_answers_read_as_the_delete_api_gives_them() {
    let now = SystemTime::now();
    assert_eq!(
        classify_delete(&http(200, r#"{"status":"success"}"#), 3, now),
        Verdict::Records(vec![RecordVerdict::Delivered; 3])
    );
    assert!(matches!(
        classify_delete(&http(200, r#"{"status":"fail","error":"bad identity"}"#), 2, now),
        Verdict::Bisect { reason } if reason.contains("bad identity")
    ));
    assert!(matches!(
        classify_delete(&http(200, "<html>"), 1, now),
        Verdict::RetryAll {
            failure: Failure::Server,
            ..
        }
    ));
    assert!(matches!(
        classify_delete(
            &http(
                400,
                r#"{"status":"fail","error":"At most 100 values per request"}"#
            ),
            2,
            now
        ),
        Verdict::Bisect { .. }
    ));
    assert!(matches!(
        classify_delete(&http(401, "{}"), 1, now),
        Verdict::Pause { .. }
    ));
    assert!(matches!(
        classify_delete(&http(429, "{}"), 1, now),
        Verdict::RetryAll {
            failure: Failure::Throttled,
            ..
        }
    ));
    assert!(matches!(
        classify_delete(&Reply::Timeout, 1, now),
        Verdict::RetryAll {
            failure: Failure::Outage,
            ..
        }
    ));
}
