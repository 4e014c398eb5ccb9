//! `freshtap erase --identity … [--propagate [--account NAME]…]`: one person's rows and dead
//! letters removed on the queue directly, recorded like an erasure through the admin API (the
//! identity only as a keyed hash); with `--propagate`, CleverTap profile deletions are queued
//! for the relay's workers to send.

use crate::config::Settings;
use crate::queue::Actor;

/// Runs the erasure and prints its record (counts per state, never the identity) as JSON.
pub(super) async fn run(
    settings: Settings,
    identity: &str,
    keep_pending: bool,
    propagate: Option<Vec<String>>,
) -> Result<(), String> {
    if identity.trim().is_empty() {
        return Err("--identity is empty".into());
    }
    let app = super::dead_letters::state_for_tools(settings).await?;
    let actor = Actor {
        credential: "command line".into(),
        client: "local".into(),
        request_id: uuid::Uuid::now_v7().to_string(),
    };
    let propagate_to = match propagate {
        Some(named) => crate::erasure::accounts(&app, (!named.is_empty()).then_some(named))?,
        None => Vec::new(),
    };
    let request = crate::erasure::Request {
        identity: identity.to_owned(),
        keep_pending,
        propagate_to,
    };
    let record = crate::erasure::erase(&app, request, actor)
        .await
        .map_err(|e| e.to_string())?;
    let text = serde_json::to_string_pretty(&record).map_err(|e| e.to_string())?;
    println!("{text}");
    Ok(())
}
