//! One delivery: render the claimed rows, pack a request, send (bisecting on 400), record.

use std::collections::VecDeque;
use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;

use super::pause::PauseKind;
use crate::clevertap::batch::rows_that_fit;
use crate::clevertap::classify::{RecordVerdict, Verdict, classify};
use crate::clevertap::model::upload_body;
use crate::mapping::RecordOutcome;
use crate::metrics::{Delivery, RecordOutcome as RecordMetric};
use crate::queue::{Claimed, NewDeadLetter, Next, RowOutcome, now_ms};
use crate::retry::{give_up, next_delay};
use crate::startup::{Account, AppState};
use crate::webhook::{self, BodyKind};

/// Time kept in hand between the last request a delivery starts and its lease's end.
const LEASE_MARGIN: Duration = Duration::from_secs(2);

/// A record ready to send.
struct Item {
    row: usize,
    index: u32,
    value: Value,
    bytes: Vec<u8>,
}

/// What became of one sent record.
#[derive(Clone)]
enum Fate {
    Delivered,
    Dead {
        code: String,
        reason: String,
    },
    Retry {
        reason: String,
        count_attempt: bool,
        retry_after: Option<Duration>,
    },
    /// Not sent or not judged: the account is paused (no attempt counted).
    Release,
}

/// Per-row bookkeeping while a delivery runs.
struct Plan {
    row: Claimed,
    delivered: Vec<u32>,
    dead: Vec<NewDeadLetter>,
    items: Vec<Item>,
}

pub async fn deliver(app: &AppState, account_name: &str, rows: Vec<Claimed>) {
    let Some(account) = app.accounts.get(account_name) else {
        return;
    };
    // Rendering a full batch is milliseconds of CPU on a runtime thread; yield between rows so
    // the webhooks being accepted meanwhile are not held behind it (intake while draining).
    let mut plans: Vec<Plan> = Vec::with_capacity(rows.len());
    for (n, row) in rows.into_iter().enumerate() {
        if n > 0 {
            tokio::task::yield_now().await;
        }
        plans.push(plan(app, row));
    }
    for (i, plan) in plans.iter_mut().enumerate() {
        plan.items.iter_mut().for_each(|item| item.row = i);
    }
    let settings = &app.settings.delivery;
    // Whole rows up to the caps; the rest go back to pending at once.
    let sendable: Vec<usize> = (0..plans.len())
        .filter(|&i| !plans[i].items.is_empty())
        .collect();
    let sizes: Vec<(usize, usize)> = sendable
        .iter()
        .map(|&i| {
            (
                plans[i].items.len(),
                plans[i].items.iter().map(|it| it.bytes.len() + 1).sum(),
            )
        })
        .collect();
    let fit = rows_that_fit(
        &sizes,
        settings.batch_max_records,
        settings.batch_max_bytes.saturating_sub(8),
    );
    let mut items: Vec<Item> = Vec::new();
    for &i in &sendable[..fit] {
        items.append(&mut plans[i].items);
    }
    let fates = if items.is_empty() {
        Vec::new()
    } else {
        send(app, account, &items).await
    };
    let mut per_row: Vec<Vec<(u32, Fate)>> = vec![Vec::new(); plans.len()];
    for (item, fate) in items.iter().zip(fates) {
        per_row[item.row].push((item.index, fate));
    }
    let released: Vec<usize> = sendable[fit..].to_vec();
    let now = now_ms();
    let mut outcomes = Vec::with_capacity(plans.len());
    let (mut n_delivered, mut n_dead, mut n_retried) = (0, 0, 0);
    for (i, plan) in plans.into_iter().enumerate() {
        let outcome = if released.contains(&i) {
            RowOutcome {
                id: plan.row.id,
                delivered: plan.delivered,
                dead: plan.dead,
                next: Next::Release,
            }
        } else {
            settle(app, plan, std::mem::take(&mut per_row[i]), now)
        };
        n_delivered += outcome.delivered.len();
        n_dead += outcome.dead.len();
        n_retried += usize::from(matches!(outcome.next, Next::Retry { .. }));
        outcomes.push(outcome);
    }
    app.metrics
        .records(account_name, RecordMetric::Delivered, n_delivered);
    app.metrics
        .records(account_name, RecordMetric::Dead, n_dead);
    app.metrics
        .records(account_name, RecordMetric::Retried, n_retried);
    if let Err(error) = app.queue.complete(outcomes).await {
        // The lease expires and the rows are delivered again: at-least-once, never lost.
        tracing::error!(account = %account_name, error = %error, "delivery outcome not recorded; rows come back when the lease expires");
    }
}

/// Renders a claimed row into the records still to send.
fn plan(app: &AppState, row: Claimed) -> Plan {
    let mut plan = Plan {
        row,
        delivered: Vec::new(),
        dead: Vec::new(),
        items: Vec::new(),
    };
    let row = &plan.row;
    let route = app.routes.get(&row.route).or_else(|| {
        app.accounts
            .get(&row.account)
            .map(|a| &a.upload_route)
            .filter(|r| r.name == row.route)
    });
    let Some(route) = route else {
        plan.dead.push(NewDeadLetter {
            record_index: None,
            code: "render_error".into(),
            reason: format!(
                "route {} is no longer configured; configure it and replay",
                row.route
            ),
        });
        return plan;
    };
    let parsed = match webhook::parse(BodyKind::from_stored(&row.content_type), &row.body) {
        Ok(parsed) => parsed,
        Err(error) => {
            plan.dead.push(NewDeadLetter {
                record_index: None,
                code: "invalid_body".into(),
                reason: error.message,
            });
            return plan;
        }
    };
    let rendered = route
        .mapping
        .render(&parsed.value, row.received_at_ms / 1000);
    for dropped in &rendered.dropped {
        app.metrics.field_dropped(&dropped.field);
        tracing::warn!(request_id = %row.request_id, field = %dropped.field, value = %app.pii.any(&dropped.value),
            reason = %dropped.reason, "invalid field dropped; the record goes on");
    }
    for (index, outcome) in rendered.records.into_iter().enumerate() {
        let index = u32::try_from(index).unwrap_or(u32::MAX);
        if plan.row.done.contains(&index) {
            continue;
        }
        match outcome {
            RecordOutcome::Send(value) => {
                let bytes = serde_json::to_vec(&value).unwrap_or_default();
                plan.items.push(Item {
                    row: 0,
                    index,
                    value,
                    bytes,
                });
            }
            RecordOutcome::Skip => plan.delivered.push(index),
            RecordOutcome::Dead { code, reason } => {
                tracing::warn!(request_id = %plan.row.request_id, record = index, code, reason = %reason, "record not sendable; dead-lettered");
                plan.dead.push(NewDeadLetter {
                    record_index: Some(index),
                    code: code.to_owned(),
                    reason,
                });
            }
            RecordOutcome::Refused { code, error } => {
                tracing::warn!(request_id = %plan.row.request_id, record = index, code, reason = %error, "record refused as CleverTap would; dead-lettered");
                plan.dead.push(NewDeadLetter {
                    record_index: Some(index),
                    code: code.to_string(),
                    reason: error,
                });
            }
        }
    }
    plan
}

/// Sends `items` as one request; on a whole-request refusal, splits it in halves (in order)
/// until the offending records are isolated.
async fn send(app: &AppState, account: &Account, items: &[Item]) -> Vec<Fate> {
    let mut fates: Vec<Option<Fate>> = vec![None; items.len()];
    let mut ranges = VecDeque::from([(0, items.len())]);
    let mut halted: Option<Fate> = None;
    let (mut any_delivered, mut lone_refusals) = (false, 0usize);
    // Bisection sends requests one after another; stop before the lease could lapse under
    // us (another worker would then send the same rows). The rest goes next time, no attempt
    // counted, and the records already judged are kept.
    let started = Instant::now();
    let request_timeout = Duration::from_secs(app.settings.delivery.request_timeout_secs);
    let lease = app.settings.lease();
    while let Some((lo, hi)) = ranges.pop_front() {
        if halted.is_none() && started.elapsed() + request_timeout + LEASE_MARGIN > lease {
            halted = Some(Fate::Retry {
                reason: "bisection stopped before the lease ran out; continuing later".into(),
                count_attempt: false,
                retry_after: None,
            });
        }
        if let Some(fate) = &halted {
            fates[lo..hi]
                .iter_mut()
                .for_each(|f| *f = Some(fate.clone()));
            continue;
        }
        let slice = &items[lo..hi];
        let records: Vec<&[u8]> = slice.iter().map(|it| it.bytes.as_slice()).collect();
        let values: Vec<&Value> = slice.iter().map(|it| &it.value).collect();
        let started = Instant::now();
        let reply = account.client.upload(upload_body(&records)).await;
        let verdict = classify(&reply, &values, SystemTime::now());
        let (metric, fate_all) = match &verdict {
            Verdict::Records(list) => {
                any_delivered |= list.contains(&RecordVerdict::Delivered);
                for (slot, v) in fates[lo..hi].iter_mut().zip(list) {
                    *slot = Some(match v {
                        RecordVerdict::Delivered => Fate::Delivered,
                        RecordVerdict::Dead { code, reason } => Fate::Dead {
                            code: code.clone(),
                            reason: reason.clone(),
                        },
                        RecordVerdict::Retry { reason } => Fate::Retry {
                            reason: reason.clone(),
                            count_attempt: true,
                            retry_after: None,
                        },
                    });
                }
                let partial = list.iter().any(|v| *v != RecordVerdict::Delivered);
                (
                    if partial {
                        Delivery::Partial
                    } else {
                        Delivery::Success
                    },
                    None,
                )
            }
            Verdict::RetryAll {
                retry_after,
                count_attempt,
                reason,
            } => {
                tracing::warn!(account = %account.name, records = slice.len(), reason = %reason, "CleverTap request failed; will retry");
                let fate = Fate::Retry {
                    reason: reason.clone(),
                    count_attempt: *count_attempt,
                    retry_after: *retry_after,
                };
                halted = Some(fate.clone());
                (Delivery::Retry, Some(fate))
            }
            Verdict::Pause { reason } => {
                super::pause_account(app, &account.name, PauseKind::Refused, reason.clone());
                halted = Some(Fate::Release);
                (Delivery::Paused, Some(Fate::Release))
            }
            Verdict::Bisect { reason } => {
                if slice.len() == 1 {
                    lone_refusals += 1;
                    let code = match &reply {
                        crate::clevertap::classify::Reply::Http { status, .. } => {
                            status.to_string()
                        }
                        _ => "400".to_owned(),
                    };
                    fates[lo] = Some(Fate::Dead {
                        code,
                        reason: reason.clone(),
                    });
                } else {
                    let mid = lo + slice.len() / 2;
                    ranges.push_front((mid, hi));
                    ranges.push_front((lo, mid));
                }
                (Delivery::Refused, None)
            }
        };
        app.metrics
            .delivery(&account.name, metric, started.elapsed());
        if let Some(fate) = fate_all {
            fates[lo..hi]
                .iter_mut()
                .for_each(|f| *f = Some(fate.clone()));
        }
    }
    if !any_delivered && items.len() >= 2 && lone_refusals == items.len() {
        // Every record alone was refused: the account or its configuration is at fault, not
        // the records. Burn nothing.
        super::pause_account(app, &account.name, PauseKind::Refused,
            "CleverTap refused every record of a batch one by one (400): check the account configuration".into());
        return vec![Fate::Release; items.len()];
    }
    if any_delivered
        && app
            .pauses
            .get(&account.name)
            .is_some_and(|p| p.kind == PauseKind::Refused)
    {
        super::resume_account(app, &account.name).await;
    }
    fates
        .into_iter()
        .map(|f| f.unwrap_or(Fate::Release))
        .collect()
}

/// Turns the fates of a row's records into the row's outcome (retry, give up, or finished).
fn settle(app: &AppState, mut plan: Plan, fates: Vec<(u32, Fate)>, now: i64) -> RowOutcome {
    let settings = &app.settings.delivery;
    let mut retry: Option<(String, bool, Option<Duration>)> = None;
    let mut pending: Vec<u32> = Vec::new();
    let mut release = false;
    for (index, fate) in fates {
        match fate {
            Fate::Delivered => plan.delivered.push(index),
            Fate::Dead { code, reason } => {
                tracing::warn!(request_id = %plan.row.request_id, record = index, code = %code, reason = %reason, "CleverTap refused a record; dead-lettered");
                plan.dead.push(NewDeadLetter {
                    record_index: Some(index),
                    code,
                    reason,
                });
            }
            Fate::Retry {
                reason,
                count_attempt,
                retry_after,
            } => {
                pending.push(index);
                let counted = retry.as_ref().is_some_and(|r| r.1) || count_attempt;
                let after = retry.as_ref().and_then(|r| r.2).max(retry_after);
                retry = Some((reason, counted, after));
            }
            Fate::Release => {
                pending.push(index);
                release = true;
            }
        }
    }
    let id = plan.row.id;
    let next = if release {
        Next::Release
    } else if let Some((reason, count_attempt, retry_after)) = retry {
        let attempts = plan.row.attempts + u32::from(count_attempt);
        if let Some(why) = give_up(attempts, settings.max_attempts, now, plan.row.deadline_ms) {
            tracing::warn!(request_id = %plan.row.request_id, records = pending.len(), code = why.code(), last_error = %reason, "giving up; dead-lettered");
            for index in pending {
                plan.dead.push(NewDeadLetter {
                    record_index: Some(index),
                    code: why.code().into(),
                    reason: format!("gave up after {attempts} attempts; last error: {reason}"),
                });
            }
            Next::Finished
        } else {
            let base = Duration::from_millis(settings.base_delay_ms);
            let max = Duration::from_secs(settings.max_delay_secs);
            let delay = next_delay(plan.row.attempts, base, max, rand::random::<f64>());
            let delay = retry_after.map_or(delay, |after| delay.max(after.min(max)));
            let due_at_ms = now + i64::try_from(delay.as_millis()).unwrap_or(i64::MAX / 2);
            Next::Retry {
                due_at_ms,
                count_attempt,
                error: reason,
            }
        }
    } else {
        Next::Finished
    };
    RowOutcome {
        id,
        delivered: plan.delivered,
        dead: plan.dead,
        next,
    }
}
