//! Sending a delivery's records: consecutive requests within the caps, each classified; a
//! request refused as a whole is split in halves (in order) to find the records at fault.
//! Returns what happened to every record and to the account; applies nothing.

use std::collections::VecDeque;
use std::ops::Range;
use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;

use super::plan::Item;
use crate::clevertap::batch::chunks;
use crate::clevertap::classify::{Failure, RecordVerdict, Reply, Verdict, classify};
use crate::clevertap::client::Client;
use crate::clevertap::model::upload_body;
use crate::metrics::Delivery;

/// What happened to the account during a delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Trouble {
    None,
    /// CleverTap refused the account or its configuration (401/403/404/405/415, or every
    /// record alone refused).
    Refused(String),
    /// A request failed as a whole; what was not sent yet was not sent.
    Failed {
        failure: Failure,
        reason: String,
    },
}

pub(super) struct Sent {
    /// One per item, in order.
    pub verdicts: Vec<RecordVerdict>,
    pub trouble: Trouble,
    /// Some record went through: CleverTap is reachable.
    pub delivered_any: bool,
    /// Each request: its outcome label and duration (metrics).
    pub requests: Vec<(Delivery, Duration)>,
}

pub(super) struct Limits {
    pub max_records: usize,
    pub max_bytes: usize,
    /// No request starts after this: its answer could come after the lease ends, and another
    /// worker would send the same rows.
    pub last_start: Instant,
}

pub(super) async fn send(client: &Client, items: &[Item], limits: &Limits) -> Sent {
    let sizes: Vec<usize> = items.iter().map(|i| i.bytes.len() + 1).collect();
    let mut ranges: VecDeque<Range<usize>> = chunks(
        &sizes,
        limits.max_records,
        limits.max_bytes.saturating_sub(8),
    )
    .into();
    let mut sent = Sent {
        verdicts: vec![RecordVerdict::Release; items.len()],
        trouble: Trouble::None,
        delivered_any: false,
        requests: Vec::new(),
    };
    let mut halted: Option<RecordVerdict> = None;
    let mut lone_refusals = 0usize;
    while let Some(range) = ranges.pop_front() {
        if halted.is_none() && Instant::now() > limits.last_start {
            halted = Some(RecordVerdict::Release);
        }
        if let Some(verdict) = &halted {
            fill(&mut sent.verdicts, range, verdict);
            continue;
        }
        let slice = &items[range.clone()];
        let started = Instant::now();
        let records: Vec<&[u8]> = slice.iter().map(|it| it.bytes.as_slice()).collect();
        let reply = client.upload(upload_body(&records)).await;
        let values: Vec<&Value> = slice.iter().map(|it| &it.value).collect();
        let label = match classify(&reply, &values, SystemTime::now()) {
            Verdict::Records(list) => {
                sent.delivered_any |= list.contains(&RecordVerdict::Delivered);
                let partial = list.iter().any(|v| *v != RecordVerdict::Delivered);
                for (slot, verdict) in sent.verdicts[range].iter_mut().zip(list) {
                    *slot = verdict;
                }
                if partial {
                    Delivery::Partial
                } else {
                    Delivery::Success
                }
            }
            Verdict::RetryAll {
                retry_after,
                failure,
                reason,
            } => {
                let verdict = RecordVerdict::Retry {
                    reason: reason.clone(),
                    count_attempt: failure != Failure::Throttled,
                    retry_after,
                };
                fill(&mut sent.verdicts, range, &verdict);
                halted = Some(verdict);
                sent.trouble = Trouble::Failed { failure, reason };
                Delivery::Retry
            }
            Verdict::Pause { reason } => {
                halted = Some(RecordVerdict::Release);
                sent.trouble = Trouble::Refused(reason);
                Delivery::Paused
            }
            Verdict::Bisect { reason } => {
                if range.len() == 1 {
                    lone_refusals += 1;
                    sent.verdicts[range.start] = RecordVerdict::Dead {
                        code: status_of(&reply),
                        reason,
                    };
                } else {
                    let mid = range.start + range.len() / 2;
                    ranges.push_front(mid..range.end);
                    ranges.push_front(range.start..mid);
                }
                Delivery::Refused
            }
        };
        sent.requests.push((label, started.elapsed()));
    }
    if !sent.delivered_any && items.len() >= 2 && lone_refusals == items.len() {
        // Every record alone was refused: the account or its configuration is at fault, not
        // the records. Burn nothing.
        sent.trouble = Trouble::Refused(
            "CleverTap refused every record of a batch one by one (400): check the account configuration"
                .into(),
        );
        sent.verdicts.fill(RecordVerdict::Release);
    }
    sent
}

fn fill(verdicts: &mut [RecordVerdict], range: Range<usize>, verdict: &RecordVerdict) {
    verdicts[range]
        .iter_mut()
        .for_each(|v| *v = verdict.clone());
}

/// A lone record refused as a whole request keeps the HTTP status as its code.
fn status_of(reply: &Reply) -> u16 {
    match reply {
        Reply::Http { status, .. } => *status,
        _ => 400,
    }
}
