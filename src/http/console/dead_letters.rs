//! The dead-letters page: filtered by route and code, paged, each letter with CleverTap's code
//! and reason, its body masked, and Replay / Delete; replay of everything the filter matches
//! (recorded in the audit log as `POST /admin/dead-letters/replay` records it).

use std::collections::HashMap;

use axum::extract::{RawQuery, State};
use axum::response::Response;
use minijinja::context;
use minijinja::value::Value;

use super::mask::{masked_body, masked_text};
use super::page::{self, PageError, when};
use super::session::Flash;
use super::{Posted, Session};
use crate::http::admin::privacy::audit;
use crate::queue::{DeadCode, DeadLetter, DeadLetterFilter};
use crate::replay::{ReplayReport, replay};
use crate::routes::UPLOAD_PREFIX;
use crate::state::AppState;

/// Letters a page shows.
const PAGE_SIZE: usize = 25;
/// Letters replayed by filter are read in pages of this many.
const REPLAY_PAGE: usize = 1000;
/// A body longer than this is cut in the list (the letter's own page shows it whole).
const LIST_BODY_CHARS: usize = 2000;

/// The list's filter and position, carried through every link and form so an action returns
/// to the list the operator was looking at.
#[derive(Debug, Default, Clone)]
pub struct Filter {
    pub route: Option<String>,
    pub code: Option<String>,
    pub after: Option<i64>,
}

impl Filter {
    pub fn from_fields(fields: &HashMap<String, String>) -> Self {
        let text = |name: &str| {
            fields
                .get(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        Self {
            route: text("route"),
            code: text("code"),
            after: text("after").and_then(|v| v.parse().ok()),
        }
    }

    /// The code to filter by, or why the text is not one.
    pub fn dead_code(&self) -> Result<Option<DeadCode>, String> {
        self.code
            .as_deref()
            .map(|text| {
                DeadCode::parse(text).ok_or_else(|| {
                    format!(
                        "{text:?} is not a code: give CleverTap's number (e.g. 516) or one of \
                         invalid_body, render_error, invalid_record, max_attempts, max_age."
                    )
                })
            })
            .transpose()
    }

    fn pairs(&self, after: Option<i64>) -> Vec<(&'static str, Option<String>)> {
        vec![
            ("route", self.route.clone()),
            ("code", self.code.clone()),
            ("after", after.map(|a| a.to_string())),
        ]
    }

    fn url(&self, path: &str, after: Option<i64>) -> String {
        let pairs = self.pairs(after);
        let borrowed: Vec<(&str, Option<&str>)> =
            pairs.iter().map(|(k, v)| (*k, v.as_deref())).collect();
        page::with_query(path, &borrowed)
    }

    /// Back to the list at the same page.
    pub fn list_url(&self) -> String {
        self.url("/console/dead-letters", self.after)
    }

    pub fn letter_url(&self, id: i64) -> String {
        self.url(&format!("/console/dead-letters/{id}"), self.after)
    }

    /// For templates: the values and the hidden fields forms repeat.
    pub fn to_value(&self) -> Value {
        context! {
            route => self.route.clone(),
            code => self.code.clone(),
            after => self.after,
            any => self.route.is_some() || self.code.is_some(),
            list_url => self.list_url(),
        }
    }
}

/// A letter as a list row or the letter's page shows it; `body` is the text to print.
pub fn letter_value(letter: &DeadLetter, body: String, filter: &Filter) -> Value {
    context! {
        id => letter.id,
        row_id => letter.row_id,
        record => letter.record_index.map(|i| i + 1),
        route => letter.route.clone(),
        account => letter.account.clone(),
        code => letter.code.as_text().into_owned(),
        refused_by_clevertap => matches!(letter.code, DeadCode::Refused(_)),
        invalid_body => letter.code == DeadCode::InvalidBody,
        reason => masked_text(&letter.reason),
        attempts => letter.attempts,
        request_id => letter.request_id.clone(),
        lookup_url => page::with_query("/console/webhooks", &[("request_id", Some(&letter.request_id))]),
        received => when(letter.received_at_ms),
        dead => when(letter.dead_at_ms),
        content_type => letter.kind.as_str(),
        body => body,
        url => filter.letter_url(letter.id),
    }
}

/// Every route a dead letter can carry: the webhook routes and each account's drop-in.
fn route_names(app: &AppState) -> Vec<String> {
    let mut names: Vec<String> = app.routes.names().iter().map(|n| (*n).to_owned()).collect();
    names.extend(app.accounts.names().map(|a| format!("{UPLOAD_PREFIX}{a}")));
    names
}

pub async fn page(
    State(app): State<AppState>,
    session: Session,
    RawQuery(query): RawQuery,
) -> Result<Response, PageError> {
    let filter = Filter::from_fields(&page::query_fields(query.as_deref()));
    let (letters, problem) = match filter.dead_code() {
        Ok(code) => {
            let mut letters = app
                .queue
                .dead_letters(DeadLetterFilter {
                    route: filter.route.clone(),
                    code,
                    limit: PAGE_SIZE + 1,
                    after: filter.after,
                })
                .await?;
            let more = letters.len() > PAGE_SIZE;
            letters.truncate(PAGE_SIZE);
            let next = more.then(|| letters.last().map(|l| l.id)).flatten();
            ((letters, next), None)
        }
        Err(problem) => ((Vec::new(), None), Some(problem)),
    };
    let (letters, next) = letters;
    let items: Vec<Value> = letters
        .iter()
        .map(|letter| {
            let mut body = masked_body(letter.kind, &letter.body);
            if body.chars().count() > LIST_BODY_CHARS {
                body = body.chars().take(LIST_BODY_CHARS).collect::<String>() + "\n…";
            }
            letter_value(letter, body, &filter)
        })
        .collect();
    let ctx = context! {
        filter => filter.to_value(),
        routes => route_names(&app),
        problem => problem,
        items => items,
        next_url => next.map(|after| filter.url("/console/dead-letters", Some(after))),
        first_url => filter.after.map(|_| filter.url("/console/dead-letters", None)),
    };
    Ok(page::render(
        &session,
        "dead_letters.html",
        "dead-letters",
        ctx,
    ))
}

/// The result of a replay as one sentence for the page.
pub fn replay_message(report: &ReplayReport) -> Flash {
    let mut message = match report.replayed {
        0 => "Nothing was replayed.".to_owned(),
        1 => format!(
            "Replayed dead letter {}: it is pending again and goes out with today's template.",
            report.ids.first().copied().unwrap_or_default()
        ),
        n => format!("Replayed {n} dead letters: they are pending again."),
    };
    for skipped in &report.skipped {
        message.push_str(&format!(
            " Dead letter {} was left as it is: {}.",
            skipped.id,
            skipped.reason.split(';').next().unwrap_or(&skipped.reason)
        ));
    }
    if report.skipped.is_empty() {
        Flash::ok(message)
    } else {
        Flash::problem(message)
    }
}

/// `POST /console/dead-letters/replay`: every letter the filter matches (all without one).
pub async fn replay_matching(
    State(app): State<AppState>,
    posted: Posted,
) -> Result<Response, PageError> {
    let mut filter = Filter::from_fields(&posted.fields);
    filter.after = None;
    let session = &posted.session;
    let code = match filter.dead_code() {
        Ok(code) => code,
        Err(problem) => {
            return Ok(page::done(
                session,
                &filter.list_url(),
                Flash::problem(problem),
            ));
        }
    };
    let mut letters = Vec::new();
    let mut after = None;
    loop {
        let page = app
            .queue
            .dead_letters(DeadLetterFilter {
                route: filter.route.clone(),
                code,
                limit: REPLAY_PAGE,
                after,
            })
            .await?;
        after = page.last().map(|l| l.id);
        let done = page.len() < REPLAY_PAGE;
        letters.extend(page);
        if done {
            break;
        }
    }
    let report = replay(&app, letters).await?;
    tracing::info!(
        replayed = report.replayed,
        "dead letters replayed from the console by filter"
    );
    let target = format!(
        "dead letters route={} code={}",
        filter.route.as_deref().unwrap_or("*"),
        filter.code.as_deref().unwrap_or("*")
    );
    let detail = format!("replayed {}", report.replayed);
    audit(&app, posted.actor.clone(), "replay", target, detail).await;
    Ok(page::done(
        session,
        &filter.list_url(),
        replay_message(&report),
    ))
}
