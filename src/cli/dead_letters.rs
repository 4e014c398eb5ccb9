//! `freshtap dead-letters …`: list, show, fix and replay dead letters on the queue directly
//! (no running relay needed), with the admin API's rules.

use std::path::PathBuf;

use clap::Subcommand;
use tokio_util::sync::CancellationToken;

use crate::body::BodyKind;
use crate::config::Settings;
use crate::queue::{DeadCode, DeadLetterFilter, Queue, SetBody};
use crate::state::AppState;
use crate::webhook;

#[derive(Debug, Subcommand)]
pub enum DeadLetterAction {
    /// List dead letters as JSON lines (no bodies).
    List {
        /// Only this route's.
        #[arg(long)]
        route: Option<String>,
        /// Only this code: a CleverTap code (e.g. 516) or invalid_body, render_error, …
        #[arg(long)]
        code: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// Print one dead letter with its body, as JSON (the body is shown as stored).
    Show {
        /// The dead letter's id (from `list`).
        id: i64,
    },
    /// Replace the body of an `invalid_body` dead letter (then replay it).
    Fix {
        /// The dead letter's id.
        id: i64,
        /// File with the corrected body (JSON or form); it must parse and fit server.max_body_bytes.
        #[arg(long, value_name = "FILE")]
        body_file: PathBuf,
    },
    /// Put dead letters back to pending.
    Replay {
        /// One dead letter by id.
        #[arg(long)]
        id: Option<i64>,
        /// Every dead letter of this route.
        #[arg(long)]
        route: Option<String>,
        /// Every dead letter with this code.
        #[arg(long)]
        code: Option<String>,
        /// Every dead letter.
        #[arg(long)]
        all: bool,
    },
}

/// The state the offline tools work on: the configured queue, no listener, no worker.
pub(super) async fn state_for_tools(settings: Settings) -> Result<AppState, String> {
    let queue = Queue::connect(&settings.queue)
        .await
        .map_err(|e| e.to_string())?;
    AppState::new(settings, queue, CancellationToken::new()).map_err(|e| e.join("\n"))
}

pub(super) async fn run(settings: Settings, action: DeadLetterAction) -> Result<(), String> {
    let app = state_for_tools(settings).await?;
    match action {
        DeadLetterAction::List { route, code, limit } => {
            let items = app
                .queue
                .dead_letters(DeadLetterFilter {
                    route,
                    code: code_arg(code.as_deref())?,
                    limit,
                    after: None,
                })
                .await
                .map_err(|e| e.to_string())?;
            for l in items {
                let line = serde_json::json!({"id": l.id, "row_id": l.row_id, "record_index": l.record_index,
                    "route": l.route, "code": l.code, "reason": l.reason, "request_id": l.request_id});
                println!("{line}");
            }
            Ok(())
        }
        DeadLetterAction::Show { id } => {
            let letter = app
                .queue
                .dead_letter(id)
                .await
                .map_err(|e| e.to_string())?
                .ok_or_else(|| format!("no dead letter {id}"))?;
            let json = crate::http::admin::dead_letter_json(&letter);
            println!(
                "{}",
                serde_json::to_string_pretty(&json).map_err(|e| e.to_string())?
            );
            Ok(())
        }
        DeadLetterAction::Fix { id, body_file } => fix(&app, id, &body_file).await,
        DeadLetterAction::Replay {
            id,
            route,
            code,
            all,
        } => {
            let letters = match id {
                Some(id) => app
                    .queue
                    .dead_letter(id)
                    .await
                    .map_err(|e| e.to_string())?
                    .into_iter()
                    .collect(),
                None if route.is_some() || code.is_some() || all => app
                    .queue
                    .dead_letters(DeadLetterFilter {
                        route,
                        code: code_arg(code.as_deref())?,
                        limit: usize::MAX >> 1,
                        after: None,
                    })
                    .await
                    .map_err(|e| e.to_string())?,
                None => return Err("give --id, --route, --code or --all".into()),
            };
            let report = crate::replay::replay(&app, letters)
                .await
                .map_err(|e| e.to_string())?;
            println!("{}", serde_json::to_string(&report).unwrap_or_default());
            Ok(())
        }
    }
}

/// `PUT /admin/dead-letters/{id}/body`'s rules: bounded by `server.max_body_bytes`, and only a
/// body that parses replaces an `invalid_body`.
async fn fix(app: &AppState, id: i64, path: &std::path::Path) -> Result<(), String> {
    let limit = app.settings.server.max_body_bytes;
    let size = std::fs::metadata(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?
        .len();
    if size > limit as u64 {
        return Err(format!(
            "{} is {size} bytes; a body may be at most server.max_body_bytes = {limit}",
            path.display()
        ));
    }
    let body = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let kind = BodyKind::from_content_type(None, &body).unwrap_or(BodyKind::Json);
    webhook::parse(kind, &body)
        .map_err(|e| format!("{} does not read as a body: {}", path.display(), e.message))?;
    match app
        .queue
        .set_body(id, body, kind)
        .await
        .map_err(|e| e.to_string())?
    {
        SetBody::Replaced => {
            tracing::info!(dead_letter = id, "invalid body replaced by an operator");
            println!(
                "dead letter {id}: body replaced; replay it with `freshtap dead-letters replay --id {id}`"
            );
            Ok(())
        }
        SetBody::NotFound => Err(format!("no dead letter {id}")),
        SetBody::NotInvalidBody => Err(format!(
            "dead letter {id} is not an invalid_body; fix the template and replay instead"
        )),
    }
}

fn code_arg(code: Option<&str>) -> Result<Option<DeadCode>, String> {
    code.map(|text| {
        DeadCode::parse(text)
            .ok_or_else(|| format!("--code {text}: not a CleverTap code or a freshtap code name"))
    })
    .transpose()
}
