//! The body of a 200 `/1/upload` answer: today's shape, or one of the two CleverTap answered
//! in 2017, so a client's tolerance of them can be tested end to end.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::json::to_bytes;
use crate::validate::{Judged, Unprocessed};

/// How `/1/upload` words a 200 answer (`answer_shape` in the settings).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnswerShape {
    /// `status` from the counts (`success`, `partial`, `fail`); items
    /// `{"status":"fail","code":C,"error":"…","record":{…}}`.
    #[default]
    Current,
    /// Early 2017: `status` always `success` (even when nothing was processed); each item's
    /// `record` is the record as space-padded JSON text instead of an object.
    RecordAsString,
    /// October 2017: `status` always `success`; each item is `{"<record as JSON text>":
    /// "<error>"}`, with no `status` and no `code`.
    RecordAsKey,
}

#[derive(Serialize)]
struct Answer<'a, T> {
    status: &'a str,
    processed: usize,
    unprocessed: &'a [T],
}

#[derive(Serialize)]
struct StringRecordItem<'a> {
    status: &'a str,
    code: u16,
    error: &'a str,
    record: String,
}

/// The answer body for a judged batch; `padded` spaces it as real CleverTap answers are.
pub(crate) fn upload_answer(shape: AnswerShape, judged: &Judged, padded: bool) -> Vec<u8> {
    let processed = judged.accepted.len();
    match shape {
        AnswerShape::Current => {
            let status = judged.status();
            let unprocessed = judged.unprocessed.as_slice();
            to_bytes(
                &Answer {
                    status,
                    processed,
                    unprocessed,
                },
                padded,
            )
        }
        AnswerShape::RecordAsString => {
            let items: Vec<StringRecordItem<'_>> = judged
                .unprocessed
                .iter()
                .map(|u| StringRecordItem {
                    status: u.status,
                    code: u.code,
                    error: &u.error,
                    record: record_text(u),
                })
                .collect();
            let unprocessed = items.as_slice();
            to_bytes(
                &Answer {
                    status: "success",
                    processed,
                    unprocessed,
                },
                padded,
            )
        }
        AnswerShape::RecordAsKey => {
            let items: Vec<BTreeMap<String, &str>> = judged
                .unprocessed
                .iter()
                .map(|u| BTreeMap::from([(record_text(u), u.error.as_str())]))
                .collect();
            let unprocessed = items.as_slice();
            to_bytes(
                &Answer {
                    status: "success",
                    processed,
                    unprocessed,
                },
                padded,
            )
        }
    }
}

/// The record as CleverTap's 2017 answers printed it: space-padded JSON text.
fn record_text(u: &Unprocessed) -> String {
    String::from_utf8(to_bytes(&u.record, true)).unwrap_or_default()
}
