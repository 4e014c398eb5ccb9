//! A property test of the drop-in's two records of a refusal: over any verdicts, the dead
//! letters it keeps and the `unprocessed` items it answers name the same records, codes and texts.

use proptest::prelude::*;
use serde_json::{Value, json};

use super::dead_letters;
use crate::clevertap::answer::upload_answer;
use crate::queue::DeadCode;

proptest! {
    #[test]
    fn dead_letters_and_the_answer_agree(refusals in prop::collection::vec(
        prop::option::weighted(0.3, (1_u16..1000, ".{0,16}")), 0..30)) {
        let records: Vec<Value> = (0..refusals.len()).map(|i| json!({"identity": i})).collect();
        let answer = upload_answer(&records, &refusals);
        let answered: Vec<(Option<u32>, DeadCode, String)> = answer["unprocessed"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|item| {
                let index = item["record"]["identity"].as_u64().and_then(|i| u32::try_from(i).ok());
                let code = item["code"].as_u64().and_then(|c| u16::try_from(c).ok()).unwrap_or(0);
                let error = item["error"].as_str().unwrap_or("").to_owned();
                (index, DeadCode::Refused(code), error)
            })
            .collect();
        let kept: Vec<(Option<u32>, DeadCode, String)> = dead_letters(&refusals)
            .into_iter()
            .map(|letter| (letter.record_index, letter.code, letter.reason))
            .collect();
        prop_assert_eq!(kept, answered);
    }
}
