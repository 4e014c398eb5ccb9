//! Record verdicts → row outcomes: delivered and dead records, then for what is left a retry
//! with backoff, a release, or giving up (max attempts, max age).

use std::time::Duration;

use super::plan::Plan;
use crate::clevertap::classify::RecordVerdict;
use crate::config::DeliverySettings;
use crate::queue::{DeadCode, NewDeadLetter, Next, RowOutcome};
use crate::retry::{GiveUp, give_up, next_delay};

/// The rows' outcomes and how many records each way (metrics).
pub(super) struct Settled {
    pub outcomes: Vec<RowOutcome>,
    pub delivered: usize,
    pub dead: usize,
    pub retried: usize,
}

/// A row's records still to send after this delivery.
#[derive(Default)]
struct Left {
    indexes: Vec<u32>,
    reason: Option<String>,
    count_attempt: bool,
    retry_after: Option<Duration>,
    release: bool,
}

pub(super) fn settle(
    settings: &DeliverySettings,
    plan: Plan,
    verdicts: Vec<RecordVerdict>,
    now: i64,
) -> Settled {
    let mut per_row: Vec<Vec<(u32, RecordVerdict)>> =
        plan.rows.iter().map(|_| Vec::new()).collect();
    for (item, verdict) in plan.items.iter().zip(verdicts) {
        per_row[item.row].push((item.index, verdict));
    }
    let mut settled = Settled {
        outcomes: Vec::with_capacity(plan.rows.len()),
        delivered: 0,
        dead: 0,
        retried: 0,
    };
    for (row_plan, verdicts) in plan.rows.into_iter().zip(per_row) {
        let mut outcome = RowOutcome {
            id: row_plan.row.id,
            delivered: row_plan.delivered,
            dead: row_plan.dead,
            next: Next::Release,
        };
        if row_plan.taken {
            let left = sort(&mut outcome, verdicts, &row_plan.row.request_id);
            settled.retried += if left.release { 0 } else { left.indexes.len() };
            outcome.next = next(settings, &mut outcome, left, &row_plan.row, now);
        }
        settled.delivered += outcome.delivered.len();
        settled.dead += outcome.dead.len();
        settled.outcomes.push(outcome);
    }
    settled
}

/// Files each record's verdict under delivered, dead or left to send.
fn sort(outcome: &mut RowOutcome, verdicts: Vec<(u32, RecordVerdict)>, request_id: &str) -> Left {
    let mut left = Left::default();
    for (index, verdict) in verdicts {
        match verdict {
            RecordVerdict::Delivered => outcome.delivered.push(index),
            RecordVerdict::Dead { code, reason } => {
                tracing::warn!(request_id = %request_id, record = index, code, reason = %reason,
                    "CleverTap refused a record; dead-lettered");
                outcome.dead.push(NewDeadLetter {
                    record_index: Some(index),
                    code: DeadCode::Refused(code),
                    reason,
                });
            }
            RecordVerdict::Retry {
                reason,
                count_attempt,
                retry_after,
            } => {
                left.indexes.push(index);
                left.count_attempt |= count_attempt;
                left.retry_after = left.retry_after.max(retry_after);
                left.reason = Some(reason);
            }
            RecordVerdict::Release => {
                left.indexes.push(index);
                left.release = true;
            }
        }
    }
    left
}

fn next(
    settings: &DeliverySettings,
    outcome: &mut RowOutcome,
    left: Left,
    row: &crate::queue::Claimed,
    now: i64,
) -> Next {
    if left.indexes.is_empty() {
        return Next::Finished;
    }
    if left.release {
        return Next::Release;
    }
    let reason = left.reason.unwrap_or_default();
    let attempts = row.attempts + u32::from(left.count_attempt);
    if let Some(why) = give_up(attempts, settings.max_attempts, now, row.deadline_ms) {
        let code = match why {
            GiveUp::MaxAttempts => DeadCode::MaxAttempts,
            GiveUp::MaxAge => DeadCode::MaxAge,
        };
        tracing::warn!(request_id = %row.request_id, records = left.indexes.len(), code = %code, last_error = %reason,
            "giving up; dead-lettered");
        for index in left.indexes {
            outcome.dead.push(NewDeadLetter {
                record_index: Some(index),
                code,
                reason: format!("gave up after {attempts} attempts; last error: {reason}"),
            });
        }
        return Next::Finished;
    }
    let base = Duration::from_millis(settings.base_delay_ms);
    let max = Duration::from_secs(settings.max_delay_secs);
    let delay = next_delay(row.attempts, base, max, rand::random::<f64>());
    let delay = left
        .retry_after
        .map_or(delay, |after| delay.max(after.min(max)));
    Next::Retry {
        due_at_ms: now + crate::clock::duration_ms(delay),
        count_attempt: left.count_attempt,
        error: reason,
    }
}
