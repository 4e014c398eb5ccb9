//! The overview page: rows by state, the oldest pending row, intake and delivery over the last
//! hour, and each account with its holds and the Pause / Resume buttons (each one done is
//! recorded in the audit log as `pause` / `resume`, like the admin API's).

use std::time::Duration;

use axum::extract::State;
use axum::response::Response;
use minijinja::context;
use minijinja::value::Value;

use super::page::{self, PageError, ago, when};
use super::session::Flash;
use super::{Posted, Session};
use crate::clock::{duration_ms, now_ms};
use crate::http::admin::privacy::audit;
use crate::http::extract::Path;
use crate::queue::{ActivityBucket, Hold, HoldKind, RowState};
use crate::state::AppState;

/// The last hour, in twelve buckets of five minutes; the last one holds now.
const BUCKET: Duration = Duration::from_secs(300);
const BUCKETS: usize = 12;
/// Height of the tallest bar of the activity chart, in SVG units.
const CHART_HEIGHT: u64 = 96;

pub async fn page(State(app): State<AppState>, session: Session) -> Result<Response, PageError> {
    let stats = app.queue.stats().await?;
    let width = duration_ms(BUCKET);
    let now = now_ms();
    let since = (now / width + 1) * width - width * BUCKETS as i64;
    let activity = app.queue.activity(since, BUCKET, BUCKETS).await?;
    let holds = app.accounts.holds().await?;
    let rows: Vec<Value> = RowState::ALL
        .iter()
        .map(|s| context! { state => s.as_str(), count => stats.count(*s) })
        .collect();
    let oldest = stats
        .oldest_pending_ms
        .map(|t| context! { at => when(t), ago => ago(t) });
    let ctx = context! {
        rows => rows,
        dead => stats.dead,
        oldest => oldest,
        chart => chart(&activity),
        accounts => accounts(&app, &holds),
    };
    Ok(page::render(&session, "overview.html", "overview", ctx))
}

/// Bars for the activity chart, scaled to the busiest bucket, with the counts beside them.
fn chart(buckets: &[ActivityBucket]) -> Value {
    let peak = buckets
        .iter()
        .map(|b| b.received.max(b.delivered + b.dead))
        .max()
        .unwrap_or(0)
        .max(1);
    let scale = |n: u64| n * CHART_HEIGHT / peak;
    let bars: Vec<Value> = buckets
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let time = when(b.start_ms);
            context! {
                x => i * 60,
                label => time.get(11..16).unwrap_or_default().to_owned(),
                received => b.received,
                delivered => b.delivered,
                dead => b.dead,
                received_h => scale(b.received),
                delivered_h => scale(b.delivered),
                dead_h => scale(b.dead),
            }
        })
        .collect();
    let total = |f: fn(&ActivityBucket) -> u64| buckets.iter().map(f).sum::<u64>();
    context! {
        bars => bars,
        height => CHART_HEIGHT,
        peak => peak,
        received => total(|b| b.received),
        delivered => total(|b| b.delivered),
        dead => total(|b| b.dead),
    }
}

fn hold_label(kind: HoldKind) -> &'static str {
    match kind {
        HoldKind::Manual => "paused by an operator",
        HoldKind::Refused => "refused by CleverTap",
        HoldKind::Unreachable => "CleverTap unreachable",
    }
}

fn accounts(app: &AppState, holds: &[Hold]) -> Vec<Value> {
    app.accounts
        .names()
        .map(|name| {
            let mine: Vec<&Hold> = holds.iter().filter(|h| h.account == name).collect();
            let shown: Vec<Value> = mine
                .iter()
                .map(|h| {
                    context! {
                        kind => h.kind.as_str(),
                        label => hold_label(h.kind),
                        since => when(h.since_ms),
                        ago => ago(h.since_ms),
                        reason => h.reason.clone(),
                        probes => h.probes,
                        next_probe => h.probe_at_ms.map(when),
                    }
                })
                .collect();
            context! {
                name => name,
                segment => page::segment(name),
                account_id => app.accounts.get(name).map(|a| a.account_id.clone()),
                held => !mine.is_empty(),
                paused => mine.iter().any(|h| h.kind == HoldKind::Manual),
                holds => shown,
            }
        })
        .collect()
}

async fn set_paused(app: &AppState, posted: &Posted, name: &str, pause: bool) -> Response {
    let session = &posted.session;
    if app.accounts.get(name).is_none() {
        return page::done(
            session,
            "/console",
            Flash::problem(format!("There is no account {name}.")),
        );
    }
    let result = if pause {
        app.accounts.pause(name).await.map(|new| {
            if new {
                format!("Account {name} paused: nothing is sent to it until it is resumed; webhooks are still accepted.")
            } else {
                format!("Account {name} was already paused.")
            }
        })
    } else {
        app.accounts.resume(name).await.map(|lifted| {
            if lifted.kinds.is_empty() {
                format!("Account {name} was not held.")
            } else {
                format!("Account {name} resumed: delivery starts again.")
            }
        })
    };
    let flash = match result {
        Ok(message) => {
            let action = if pause { "pause" } else { "resume" };
            let actor = posted.actor.clone();
            audit(app, actor, action, format!("account {name}"), "done".into()).await;
            Flash::ok(message)
        }
        Err(error) => {
            tracing::error!(error = %error, account = %name, "console pause/resume failed");
            Flash::problem(format!(
                "Account {name}: the queue is unavailable; nothing changed. Try again."
            ))
        }
    };
    page::done(session, "/console", flash)
}

pub async fn pause(
    State(app): State<AppState>,
    Path(name): Path<String>,
    posted: Posted,
) -> Response {
    set_paused(&app, &posted, &name, true).await
}

pub async fn resume(
    State(app): State<AppState>,
    Path(name): Path<String>,
    posted: Posted,
) -> Response {
    set_paused(&app, &posted, &name, false).await
}
