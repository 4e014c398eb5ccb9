//! Replaying dead letters (admin API and CLI): re-check fixed bodies, then back to pending.

use crate::clock::hours_ms;
use crate::queue::{DeadCode, DeadLetter, QueueError, Replay};
use crate::state::AppState;
use crate::webhook;

#[derive(Debug, Default, serde::Serialize)]
pub struct ReplayReport {
    pub replayed: usize,
    pub ids: Vec<i64>,
    /// Dead letters left as they were, with the reason (an `invalid_body` still unreadable).
    pub skipped: Vec<Skipped>,
}

#[derive(Debug, serde::Serialize)]
pub struct Skipped {
    pub id: i64,
    pub reason: String,
}

/// Puts `letters` back to pending. Record dead letters go back as they are (the row is
/// re-rendered with today's template at delivery); an `invalid_body` letter goes back only if
/// its (fixed) body now reads, with the order keys of that body.
pub async fn replay(app: &AppState, letters: Vec<DeadLetter>) -> Result<ReplayReport, QueueError> {
    let mut items = Vec::with_capacity(letters.len());
    let mut skipped = Vec::new();
    for letter in letters {
        if letter.record_index.is_some() || letter.code != DeadCode::InvalidBody {
            items.push(Replay {
                dead_letter_id: letter.id,
                order_keys: None,
            });
            continue;
        }
        let Some(route) = app.routes.resolve(&letter.route) else {
            skipped.push(Skipped {
                id: letter.id,
                reason: format!("route {} is no longer configured", letter.route),
            });
            continue;
        };
        match webhook::parse(letter.kind, &letter.body) {
            Ok(parsed) => {
                let mut keys = route.mapping.order_keys(&parsed.value);
                if keys.is_empty() {
                    keys.push(hex::encode(webhook::body_hash(&letter.body)));
                }
                items.push(Replay {
                    dead_letter_id: letter.id,
                    order_keys: Some(keys),
                });
            }
            Err(error) => skipped.push(Skipped {
                id: letter.id,
                reason: format!(
                    "body still unreadable ({}); fix it with PUT /admin/dead-letters/{}/body",
                    error.message, letter.id
                ),
            }),
        }
    }
    let max_age = crate::clock::ms_duration(hours_ms(app.settings.delivery.max_age_hours));
    let ids = app.queue.replay(items, max_age).await?;
    tracing::info!(
        replayed = ids.len(),
        skipped = skipped.len(),
        "dead letters replayed"
    );
    Ok(ReplayReport {
        replayed: ids.len(),
        ids,
        skipped,
    })
}
