//! Sending a delivery's records: consecutive requests within the caps (uploads, then profile
//! deletions of at most 100 values each), each classified; a request refused as a whole is
//! split in halves (in order) to find the records at fault. Returns what happened to every
//! record and to the account; applies nothing.

use std::collections::VecDeque;
use std::ops::Range;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use serde_json::Value;

use super::Working;
use super::plan::{Item, Op};
use crate::clevertap::batch::chunks;
use crate::clevertap::classify::{
    Failure, RecordVerdict, Reply, Verdict, classify, classify_delete,
};
use crate::clevertap::client::Client;
use crate::clevertap::model::Envelope;

/// CleverTap's limit of values per `/1/delete/profiles.json` request.
const MAX_DELETE_VALUES: usize = 100;
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

/// Sends `items` in chunks; `working` stops counting the delivery as working while it waits
/// for each answer. Each item's bytes move into its request's body (one copy of a record is
/// held while the request is out); a request split in halves gives them back.
pub(super) async fn send(
    client: &Client,
    items: &mut [Item],
    limits: &Limits,
    working: &mut Working<'_>,
) -> Sent {
    let mut ranges = requests(items, limits);
    let mut run = Run {
        sent: Sent {
            verdicts: vec![RecordVerdict::Release; items.len()],
            trouble: Trouble::None,
            delivered_any: false,
            requests: Vec::new(),
        },
        halted: None,
        lone_refusals: 0,
    };
    while let Some(range) = ranges.pop_front() {
        if run.halted.is_none() && Instant::now() > limits.last_start {
            run.halted = Some(RecordVerdict::Release);
        }
        if let Some(verdict) = &run.halted {
            fill(&mut run.sent.verdicts, range, verdict);
            continue;
        }
        let started = Instant::now();
        let op = items[range.start].op;
        let (body, spans) = take_body(&mut items[range.clone()]);
        let slice = &items[range.clone()];
        let (reply, verdict) = match op {
            Op::Upload => {
                let reply = working.waiting(client.upload(body.clone())).await;
                let values: Vec<&Value> = slice.iter().map(|it| &it.value).collect();
                let verdict = classify(&reply, &values, SystemTime::now());
                (reply, verdict)
            }
            Op::Delete(_) => {
                let reply = working.waiting(client.delete(body.clone())).await;
                let verdict = classify_delete(&reply, slice.len(), SystemTime::now());
                (reply, verdict)
            }
        };
        if matches!(verdict, Verdict::Bisect { .. }) && range.len() > 1 {
            // The halves are sent next: their records come back out of this body.
            for (item, span) in items[range.clone()].iter_mut().zip(spans) {
                item.bytes = body[span].to_vec();
            }
        }
        drop(body);
        let label = run.judge(range, verdict, &reply, &mut ranges);
        run.sent.requests.push((label, started.elapsed()));
    }
    run.finish()
}

/// The request body of `items` (all of one kind), their bytes moved into it one by one.
fn take_body(items: &mut [Item]) -> (Bytes, Vec<Range<usize>>) {
    let key = match items.first().map(|i| i.op) {
        Some(Op::Delete(key)) => key,
        _ => "d",
    };
    let len = items.iter().map(|i| i.bytes.len() + 1).sum();
    let mut envelope = Envelope::new(key, len);
    for item in items.iter_mut() {
        envelope.push(&std::mem::take(&mut item.bytes));
    }
    let (body, spans) = envelope.finish();
    (Bytes::from(body), spans)
}

/// The requests of a delivery, in order: each run of items of one kind (uploads, deletions by
/// identity, by guid) cut into chunks within the caps.
fn requests(items: &[Item], limits: &Limits) -> VecDeque<Range<usize>> {
    let mut ranges = VecDeque::new();
    let mut start = 0;
    while let Some(first) = items.get(start) {
        let end = start
            + items[start..]
                .iter()
                .take_while(|i| i.op == first.op)
                .count();
        let sizes: Vec<usize> = items[start..end]
            .iter()
            .map(|i| i.bytes.len() + 1)
            .collect();
        let max_records = match first.op {
            Op::Upload => limits.max_records,
            Op::Delete(_) => limits.max_records.min(MAX_DELETE_VALUES),
        };
        let cut = chunks(&sizes, max_records, limits.max_bytes.saturating_sub(16));
        ranges.extend(cut.into_iter().map(|r| r.start + start..r.end + start));
        start = end;
    }
    ranges
}

/// A delivery's requests so far.
struct Run {
    sent: Sent,
    /// Set once a request failed as a whole: what is left is not sent, and gets this.
    halted: Option<RecordVerdict>,
    lone_refusals: usize,
}

impl Run {
    /// Files one request's verdict; a refused request is split into halves sent next.
    fn judge(
        &mut self,
        range: Range<usize>,
        verdict: Verdict,
        reply: &Reply,
        ranges: &mut VecDeque<Range<usize>>,
    ) -> Delivery {
        match verdict {
            Verdict::Records(list) => {
                self.sent.delivered_any |= list.contains(&RecordVerdict::Delivered);
                let partial = list.iter().any(|v| *v != RecordVerdict::Delivered);
                for (slot, verdict) in self.sent.verdicts[range].iter_mut().zip(list) {
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
                fill(&mut self.sent.verdicts, range, &verdict);
                self.halted = Some(verdict);
                self.sent.trouble = Trouble::Failed { failure, reason };
                Delivery::Retry
            }
            Verdict::Pause { reason } => {
                self.halted = Some(RecordVerdict::Release);
                self.sent.trouble = Trouble::Refused(reason);
                Delivery::Paused
            }
            Verdict::Bisect { reason } => {
                if range.len() == 1 {
                    self.lone_refusals += 1;
                    self.sent.verdicts[range.start] = RecordVerdict::Dead {
                        code: status_of(reply),
                        reason,
                    };
                } else {
                    let mid = range.start + range.len() / 2;
                    ranges.push_front(mid..range.end);
                    ranges.push_front(range.start..mid);
                }
                Delivery::Refused
            }
        }
    }

    fn finish(mut self) -> Sent {
        let n = self.sent.verdicts.len();
        if !self.sent.delivered_any && n >= 2 && self.lone_refusals == n {
            // Every record alone was refused: the account or its configuration is at fault,
            // not the records. Burn nothing.
            self.sent.trouble = Trouble::Refused(
                "CleverTap refused every record of a batch one by one (400): check the account configuration"
                    .into(),
            );
            self.sent.verdicts.fill(RecordVerdict::Release);
        }
        self.sent
    }
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
