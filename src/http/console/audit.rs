//! The audit log and the erasures, newest first and paged with `before` like the other lists:
//! what was done through the admin API and the console, by which credential (its name), from
//! which client, in which request. An erasure shows the keyed hash of the identity, shortened
//! (the identity itself is never stored).

use axum::extract::{RawQuery, State};
use axum::response::Response;
use minijinja::context;
use minijinja::value::Value;

use super::Session;
use super::page::{self, PageError, when};
use crate::queue::{Actor, AuditEntry, ErasureRecord};
use crate::state::AppState;

/// Entries a page shows.
const PAGE_SIZE: usize = 25;
/// Characters of an identity hash shown (the whole hash is in the cell's title).
const HASH_CHARS: usize = 12;

/// `before=` of the query: entries older than that id.
fn before(query: Option<&str>) -> Option<i64> {
    page::query_fields(query)
        .get("before")
        .and_then(|v| v.trim().parse().ok())
}

/// A page of at most `PAGE_SIZE` (one more was read to know whether there is a next page) and
/// the links to the next and the first page of `path`.
fn paged<T>(
    mut items: Vec<T>,
    id: fn(&T) -> i64,
    path: &str,
    before: Option<i64>,
) -> (Vec<T>, Value) {
    let more = items.len() > PAGE_SIZE;
    items.truncate(PAGE_SIZE);
    let next = more.then(|| items.last().map(id)).flatten().map(|last| {
        let last = last.to_string();
        page::with_query(path, &[("before", Some(&last))])
    });
    let pages = context! { next_url => next, first_url => before.map(|_| path.to_owned()) };
    (items, pages)
}

fn who(actor: &Actor) -> Value {
    context! {
        credential => actor.credential.clone(),
        client => actor.client.clone(),
        request_id => actor.request_id.clone(),
    }
}

fn entry_value(entry: &AuditEntry) -> Value {
    context! {
        id => entry.id,
        at => when(entry.at_ms),
        who => who(&entry.actor),
        action => entry.action.clone(),
        target => entry.target.clone(),
        detail => entry.detail.clone(),
    }
}

fn erasure_value(erasure: &ErasureRecord) -> Value {
    let hash = &erasure.identity_hash;
    let short: String = hash.chars().take(HASH_CHARS).collect();
    let removed = erasure.removed;
    context! {
        id => erasure.id,
        at => when(erasure.at_ms),
        who => who(&erasure.actor),
        hash => hash.clone(),
        hash_short => if short.len() < hash.len() { format!("{short}…") } else { short },
        keep_pending => erasure.keep_pending,
        propagate => erasure.propagate,
        deletions => erasure
            .deletions
            .iter()
            .map(|d| context! {
                account => d.account.clone(),
                state => d.state.map_or("purged", |s| s.as_str()),
            })
            .collect::<Vec<_>>(),
        rows => removed.rows(),
        removed => context! {
            pending => removed.pending,
            leased => removed.leased,
            delivered => removed.delivered,
            dead => removed.dead,
            dead_letters => removed.dead_letters,
            scanned => removed.scanned,
            scan_truncated => removed.scan_truncated,
        },
    }
}

/// `GET /console/audit`: the admin actions.
pub async fn audit_page(
    State(app): State<AppState>,
    session: Session,
    RawQuery(query): RawQuery,
) -> Result<Response, PageError> {
    let before = before(query.as_deref());
    let entries = app.queue.audit_log(PAGE_SIZE + 1, before).await?;
    let (entries, pages) = paged(entries, |e| e.id, "/console/audit", before);
    let items: Vec<Value> = entries.iter().map(entry_value).collect();
    let ctx = context! { items => items, pages => pages };
    Ok(page::render(&session, "audit.html", "audit", ctx))
}

/// `GET /console/erasures`: the erasures on request.
pub async fn erasures_page(
    State(app): State<AppState>,
    session: Session,
    RawQuery(query): RawQuery,
) -> Result<Response, PageError> {
    let before = before(query.as_deref());
    let erasures = app.queue.erasures(PAGE_SIZE + 1, before).await?;
    let (erasures, pages) = paged(erasures, |e| e.id, "/console/erasures", before);
    let items: Vec<Value> = erasures.iter().map(erasure_value).collect();
    let ctx = context! { items => items, pages => pages };
    Ok(page::render(&session, "erasures.html", "audit", ctx))
}
