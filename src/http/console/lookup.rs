//! Webhook lookup by request id: the row's state, attempts, records delivered, last error and
//! dead letters.

use axum::extract::{RawQuery, State};
use axum::response::Response;
use minijinja::context;
use minijinja::value::Value;

use super::Session;
use super::dead_letters::{Filter, letter_value};
use super::mask::{masked_body, masked_text};
use super::page::{self, PageError, ago, when};
use crate::state::AppState;

pub async fn page(
    State(app): State<AppState>,
    session: Session,
    RawQuery(query): RawQuery,
) -> Result<Response, PageError> {
    let fields = page::query_fields(query.as_deref());
    let wanted = fields
        .get("request_id")
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty());
    let found = match &wanted {
        Some(request_id) => app.queue.webhook_by_request_id(request_id).await?,
        None => None,
    };
    let filter = Filter::default();
    let webhook = found.map(|view| {
        let letters: Vec<Value> = view
            .dead_letters
            .iter()
            .map(|l| letter_value(l, masked_body(l.kind, &l.body), &filter))
            .collect();
        let mut delivered = view.delivered.clone();
        delivered.sort_unstable();
        context! {
            id => view.id,
            route => view.route,
            account => view.account,
            state => view.state.as_str(),
            attempts => view.attempts,
            request_id => view.request_id,
            received => when(view.received_at_ms),
            received_ago => ago(view.received_at_ms),
            delivered => delivered.len(),
            delivered_records => delivered.iter().map(|i| (i + 1).to_string()).collect::<Vec<_>>().join(", "),
            last_error => view.last_error.as_deref().map(masked_text),
            dead_letters => letters,
        }
    });
    let ctx = context! { wanted => wanted, webhook => webhook };
    Ok(page::render(&session, "lookup.html", "lookup", ctx))
}
