//! One dead letter: its page (body masked), Reveal (that one body unmasked, and for an
//! `invalid_body` a form to fix it), Replay, Delete, and saving a fixed body — with the checks
//! of `PUT /admin/dead-letters/{id}/body`: bounded, and only a body that reads. Replay, Delete
//! and a saved body are recorded in the audit log as the admin API records them.

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use minijinja::context;

use super::dead_letters::{Filter, letter_value, replay_message};
use super::mask::{masked_body, raw_body};
use super::page::{self, PageError};
use super::session::Flash;
use super::{Posted, Session};
use crate::http::admin::privacy::audit;
use crate::http::extract::Path;
use crate::queue::{DeadCode, DeadLetter, SetBody};
use crate::replay::replay;
use crate::state::AppState;
use crate::webhook;

/// The letter `id` names, or a page saying there is none.
async fn find(app: &AppState, id: &str) -> Result<(i64, DeadLetter), PageError> {
    let missing = || PageError::not_found(format!("There is no dead letter {id}."));
    let number: i64 = id.parse().map_err(|_| missing())?;
    let letter = app.queue.dead_letter(number).await?.ok_or_else(missing)?;
    Ok((number, letter))
}

/// A letter's page: masked, or revealed with the text the edit form holds.
fn letter_page(
    session: &Session,
    status: StatusCode,
    letter: &DeadLetter,
    filter: &Filter,
    revealed: Option<(&str, Option<String>)>,
) -> Response {
    let body = match revealed {
        Some(_) => raw_body(&letter.body),
        None => masked_body(letter.kind, &letter.body),
    };
    let ctx = context! {
        letter => letter_value(letter, body, filter),
        filter => filter.to_value(),
        revealed => revealed.is_some(),
        editable => revealed.is_some() && letter.code == DeadCode::InvalidBody,
        draft => revealed.as_ref().map(|(draft, _)| (*draft).to_owned()),
        problem => revealed.and_then(|(_, problem)| problem),
    };
    page::render_status(session, status, "dead_letter.html", "dead-letters", ctx)
}

pub async fn page(
    State(app): State<AppState>,
    Path(id): Path<String>,
    session: Session,
    RawQuery(query): RawQuery,
) -> Result<Response, PageError> {
    let filter = Filter::from_fields(&page::query_fields(query.as_deref()));
    let (_, letter) = find(&app, &id).await?;
    Ok(letter_page(
        &session,
        StatusCode::OK,
        &letter,
        &filter,
        None,
    ))
}

/// Renders that one body unmasked (a POST: it is an act, logged, never a link to keep).
pub async fn reveal(
    State(app): State<AppState>,
    Path(id): Path<String>,
    posted: Posted,
) -> Result<Response, PageError> {
    let filter = Filter::from_fields(&posted.fields);
    let (number, letter) = find(&app, &id).await?;
    tracing::info!(
        dead_letter = number,
        "dead letter body revealed in the console"
    );
    let draft = raw_body(&letter.body);
    Ok(letter_page(
        &posted.session,
        StatusCode::OK,
        &letter,
        &filter,
        Some((&draft, None)),
    ))
}

/// A replay of one letter in the audit log, as `POST /admin/dead-letters/{id}/replay` records it.
async fn record_replay(app: &AppState, posted: &Posted, id: i64, replayed: usize) {
    let (actor, target) = (posted.actor.clone(), format!("dead letter {id}"));
    audit(app, actor, "replay", target, format!("replayed {replayed}")).await;
}

pub async fn replay_one(
    State(app): State<AppState>,
    Path(id): Path<String>,
    posted: Posted,
) -> Result<Response, PageError> {
    let filter = Filter::from_fields(&posted.fields);
    let (number, letter) = find(&app, &id).await?;
    let report = replay(&app, vec![letter]).await?;
    record_replay(&app, &posted, number, report.replayed).await;
    Ok(page::done(
        &posted.session,
        &filter.list_url(),
        replay_message(&report),
    ))
}

pub async fn delete(
    State(app): State<AppState>,
    Path(id): Path<String>,
    posted: Posted,
) -> Result<Response, PageError> {
    let filter = Filter::from_fields(&posted.fields);
    let (number, _) = find(&app, &id).await?;
    let flash = if app.queue.delete_dead_letter(number).await? {
        tracing::info!(dead_letter = number, "dead letter deleted in the console");
        let (actor, target) = (posted.actor.clone(), format!("dead letter {number}"));
        audit(&app, actor, "delete", target, "deleted".into()).await;
        Flash::ok(format!("Deleted dead letter {number}."))
    } else {
        Flash::problem(format!("Dead letter {number} was already gone."))
    };
    Ok(page::done(&posted.session, &filter.list_url(), flash))
}

/// Why a fixed body cannot be stored (the checks of `PUT /admin/dead-letters/{id}/body`):
/// larger than intake accepts, or still not readable as the letter's content type.
fn refusal(limit: usize, letter: &DeadLetter, draft: &str) -> Option<String> {
    if draft.len() > limit {
        return Some(format!(
            "The body is {} bytes; at most {limit} are accepted.",
            draft.len()
        ));
    }
    webhook::parse(letter.kind, draft.as_bytes())
        .err()
        .map(|error| format!("The body still does not read: {}", error.message))
}

/// Saves the fixed body of an `invalid_body` letter, then replays it when asked to. A body
/// that is too large or still does not read is refused with the operator's text kept in the
/// form.
pub async fn save_body(
    State(app): State<AppState>,
    Path(id): Path<String>,
    posted: Posted,
) -> Result<Response, PageError> {
    let filter = Filter::from_fields(&posted.fields);
    let (number, letter) = find(&app, &id).await?;
    let session = &posted.session;
    // Browsers send a textarea's line breaks as CRLF whatever was typed; the operator meant
    // the line breaks, not the carriage returns.
    let draft = posted
        .fields
        .get("body")
        .map_or("", String::as_str)
        .replace("\r\n", "\n");
    if let Some(problem) = refusal(app.settings.server.max_body_bytes, &letter, &draft) {
        return Ok(letter_page(
            session,
            StatusCode::BAD_REQUEST,
            &letter,
            &filter,
            Some((&draft, Some(problem))),
        ));
    }
    match app
        .queue
        .set_body(number, draft.into_bytes(), letter.kind)
        .await?
    {
        SetBody::Replaced => {}
        SetBody::NotFound => {
            let flash = Flash::problem(format!("Dead letter {number} is gone; nothing was saved."));
            return Ok(page::done(session, &filter.list_url(), flash));
        }
        SetBody::NotInvalidBody => {
            let flash = Flash::problem(format!(
                "Dead letter {number} is not an invalid_body: fix the template and replay it instead."
            ));
            return Ok(page::done(session, &filter.letter_url(number), flash));
        }
    }
    tracing::info!(dead_letter = number, "invalid body replaced in the console");
    let (actor, target) = (posted.actor.clone(), format!("dead letter {number}"));
    audit(&app, actor, "set_body", target, "replaced".into()).await;
    if posted.field("then") != Some("replay") {
        let flash = Flash::ok(format!(
            "Saved the body of dead letter {number}; replay it when ready."
        ));
        return Ok(page::done(session, &filter.letter_url(number), flash));
    }
    let (_, fixed) = find(&app, &number.to_string()).await?;
    let report = replay(&app, vec![fixed]).await?;
    record_replay(&app, &posted, number, report.replayed).await;
    Ok(page::done(
        session,
        &filter.list_url(),
        replay_message(&report),
    ))
}
