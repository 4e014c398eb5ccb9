//! CleverTap's own answers to an upload, built for the drop-in `/1/upload`: the 200 answer with
//! its `unprocessed` items, and the error envelope.

use serde_json::{Value, json};

/// CleverTap's 200 answer. `refusals[i]` is `None` when `records[i]` was accepted, else
/// CleverTap's code and error text without the "Skipped record number" suffix; a record without
/// an entry counts as accepted. Each refused record is echoed as the client sent it, numbered
/// from 1. Status: `success` when nothing was refused (an empty `d` included), `fail` when
/// everything was, else `partial`.
pub fn upload_answer(records: &[Value], refusals: &[Option<(u16, String)>]) -> Value {
    let unprocessed: Vec<Value> = records
        .iter()
        .enumerate()
        .filter_map(|(index, record)| {
            let (code, error) = refusals.get(index)?.as_ref()?;
            Some(unprocessed_entry(index, record, *code, error))
        })
        .collect();
    upload_answer_of(records.len(), unprocessed)
}

/// One refused record as CleverTap's answer lists it in `unprocessed` (`index` from 0).
pub fn unprocessed_entry(index: usize, record: &Value, code: u16, error: &str) -> Value {
    json!({
        "status": "fail",
        "code": code,
        // CleverTap's texts carry their own separator (". " or "."): none is added.
        "error": format!("{error}Skipped record number : {}", index + 1),
        "record": record,
    })
}

/// The answer to an upload of `records` records, of which `unprocessed` were refused.
pub fn upload_answer_of(records: usize, unprocessed: Vec<Value>) -> Value {
    let processed = records - unprocessed.len();
    let status = match (processed, unprocessed.len()) {
        (_, 0) => "success",
        (0, _) => "fail",
        _ => "partial",
    };
    json!({"status": status, "processed": processed, "unprocessed": unprocessed})
}

/// CleverTap's envelope for a refused request: `{"status":"fail","error":…,"code":<status>}`.
pub fn error_envelope(status: u16, error: &str) -> Value {
    json!({"status": "fail", "error": error, "code": status})
}

#[cfg(test)]
mod tests {
    use super::*;

    type Verdicts = Vec<Option<(u16, String)>>;

    fn refused(code: u16, error: &str) -> Option<(u16, String)> {
        Some((code, error.to_string()))
    }

    /// Recorded CleverTap answers (reference §9 fixtures F3–F6), rebuilt from their requests.
    #[test]
    fn answers_match_recorded_clevertap_answers() {
        let f3_ok = json!({"identity":"3","ts":1521649274,"type":"profile","profileData":{"Name":"Ada Pell","Email":"ada.pell@example.com"}});
        let f3_bad = json!({"identity":"4","ts":1521649274,"type":"profile","profileData":{"Name":"Ben Okafor","Email":"$$$$$"}});
        let f4 = json!({"identity":"1414","type":"profile","profileData":{"ID":"1414","Name":"Nell","Phone":"+44+441234"}});
        let f5 = json!({"evtName":"Web Page Viewed","identity":"69298","type":"event","evtData":{"title":"Pricing"}});
        let f6 = json!({"identity":"fs-contact-402117","type":"event","evtName":"Deal Updated","evtData":{"prop1":{"stage":"Won"}}});
        let cases = [
            (
                "F3 partial: 515",
                vec![f3_ok.clone(), f3_bad.clone()],
                vec![
                    None,
                    refused(515, "Profile data is incorrect. Email is not valid."),
                ],
                json!({"status":"partial","processed":1,"unprocessed":[{"status":"fail","code":515,"error":"Profile data is incorrect. Email is not valid.Skipped record number : 2","record":f3_bad}]}),
            ),
            (
                "F4 fail: 516",
                vec![f4.clone()],
                vec![refused(
                    516,
                    "Profile data is incorrect. Phone number is not valid.",
                )],
                json!({"status":"fail","processed":0,"unprocessed":[{"status":"fail","code":516,"error":"Profile data is incorrect. Phone number is not valid.Skipped record number : 1","record":f4}]}),
            ),
            (
                "F5 fail: 513, text ends with a space",
                vec![f5.clone()],
                vec![refused(
                    513,
                    "Event Name is incorrect. ErrorCode: 513 - Trying to raise a restricted system event. ",
                )],
                json!({"status":"fail","processed":0,"unprocessed":[{"status":"fail","code":513,"error":"Event Name is incorrect. ErrorCode: 513 - Trying to raise a restricted system event. Skipped record number : 1","record":f5}]}),
            ),
            (
                "F6 fail: 512, text ends with a dot",
                vec![f6.clone()],
                vec![refused(
                    512,
                    "Event data is incorrect. 512 - Only Items can have a nested structure, incorrect nested structure for field : prop1.",
                )],
                json!({"status":"fail","processed":0,"unprocessed":[{"status":"fail","code":512,"error":"Event data is incorrect. 512 - Only Items can have a nested structure, incorrect nested structure for field : prop1.Skipped record number : 1","record":f6}]}),
            ),
            (
                "F1-like success",
                vec![f3_ok.clone(), f5.clone()],
                vec![None, None],
                json!({"status":"success","processed":2,"unprocessed":[]}),
            ),
        ];
        for (name, records, refusals, want) in cases {
            assert_eq!(upload_answer(&records, &refusals), want, "case {name}");
        }
    }

    #[test]
    fn status_and_numbering_follow_the_counts() {
        let records: Vec<Value> = (0..3).map(|i| json!({"identity": i})).collect();
        let e = |code| refused(code, "x. ");
        // (case, records, verdicts, status, processed, the unprocessed errors)
        type Case<'a> = (
            &'a str,
            &'a [Value],
            Verdicts,
            &'a str,
            usize,
            &'a [&'a str],
        );
        let cases: [Case; 5] = [
            ("empty d", &[], vec![], "success", 0, &[]),
            (
                "no verdicts: all accepted",
                &records,
                vec![],
                "success",
                3,
                &[],
            ),
            (
                "middle refused",
                &records,
                vec![None, e(523), None],
                "partial",
                2,
                &["x. Skipped record number : 2"],
            ),
            (
                "all refused",
                &records,
                vec![e(524), e(525), e(509)],
                "fail",
                0,
                &[
                    "x. Skipped record number : 1",
                    "x. Skipped record number : 2",
                    "x. Skipped record number : 3",
                ],
            ),
            (
                "extra verdicts ignored",
                &records[..1],
                vec![None, e(523)],
                "success",
                1,
                &[],
            ),
        ];
        for (name, records, refusals, status, processed, errors) in cases {
            let answer = upload_answer(records, &refusals);
            assert_eq!(answer["status"], status, "case {name}");
            assert_eq!(answer["processed"], processed, "case {name}");
            let got: Vec<&str> = answer["unprocessed"]
                .as_array()
                .unwrap()
                .iter()
                .map(|u| u["error"].as_str().unwrap())
                .collect();
            assert_eq!(got, errors, "case {name}");
        }
    }

    #[test]
    fn error_envelope_is_clevertaps() {
        assert_eq!(
            error_envelope(401, "Account ID is not valid"),
            json!({"status":"fail","error":"Account ID is not valid","code":401}),
            "case F7"
        );
        assert_eq!(
            error_envelope(400, "Malformed request"),
            json!({"status":"fail","error":"Malformed request","code":400}),
            "case malformed"
        );
    }
}
