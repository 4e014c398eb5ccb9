//! The command line: serve (default), demo, check-config, render, dead-letters, healthcheck.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use crate::config::Settings;
use crate::queue::{DeadCode, DeadLetterFilter, Queue};
use crate::routes::Routes;
use crate::startup::Application;
use crate::state::AppState;
use crate::webhook::{self, BodyKind};

#[derive(Debug, Parser)]
#[command(
    name = "freshtap",
    version,
    about = "A durable Freshsales → CleverTap webhook relay"
)]
pub struct Cli {
    /// Configuration file (TOML), layered over the built-in defaults.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the relay (the default).
    Serve,
    /// Run the relay and a CleverTap simulator on a temporary embedded queue, and print a curl to try.
    Demo(crate::demo::DemoArgs),
    /// Validate the configuration (templates, accounts, regions) and exit.
    CheckConfig,
    /// Print the records a webhook body would produce on a route.
    Render {
        #[arg(long)]
        route: String,
        /// Body file (JSON or form); standard input when omitted.
        file: Option<PathBuf>,
    },
    /// Inspect and replay dead letters (works on the queue directly).
    DeadLetters {
        #[command(subcommand)]
        action: DeadLetterAction,
    },
    /// GET the local /healthz; exit 0 when healthy (the Docker HEALTHCHECK).
    Healthcheck {
        #[arg(long, default_value = "http://127.0.0.1:8080/healthz")]
        url: String,
    },
    /// Run the CleverTap simulator alone.
    SimulateClevertap(crate::demo::SimulateArgs),
}

#[derive(Debug, Subcommand)]
pub enum DeadLetterAction {
    /// List dead letters as JSON lines.
    List {
        #[arg(long)]
        route: Option<String>,
        #[arg(long)]
        code: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// Put dead letters back to pending.
    Replay {
        /// One dead letter by id.
        #[arg(long)]
        id: Option<i64>,
        #[arg(long)]
        route: Option<String>,
        #[arg(long)]
        code: Option<String>,
        /// Every dead letter.
        #[arg(long)]
        all: bool,
    },
}

/// Runs the parsed command line; the process exit code.
pub async fn run(cli: Cli) -> ExitCode {
    let command = cli.command.unwrap_or(Command::Serve);
    match command {
        Command::Demo(args) => return crate::demo::run(args).await,
        Command::SimulateClevertap(args) => return crate::demo::simulate(args).await,
        Command::Healthcheck { url } => return healthcheck(&url).await,
        _ => {}
    }
    if let Command::CheckConfig = command {
        return check_config(cli.config.as_deref());
    }
    let settings = match Settings::load(cli.config.as_deref()) {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("freshtap: {error}");
            return ExitCode::FAILURE;
        }
    };
    crate::telemetry::init(&settings.log);
    let result = match command {
        Command::Render { route, file } => render(&settings, &route, file),
        Command::DeadLetters { action } => dead_letters(settings, action).await,
        _ => serve(settings).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("freshtap: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(settings: Settings) -> Result<(), String> {
    let shutdown = CancellationToken::new();
    let app = Application::build(settings, shutdown.clone())
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(cancel_on_signal(shutdown));
    app.run_until_stopped().await.map_err(|e| e.to_string())
}

/// Cancels `token` on SIGTERM or SIGINT.
pub async fn cancel_on_signal(token: CancellationToken) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(error) => {
                    tracing::error!(error = %error, "cannot listen for SIGTERM");
                    let _ = ctrl_c.await;
                    token.cancel();
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    tracing::info!("shutdown requested; draining");
    token.cancel();
}

/// Everything `serve` would refuse, without opening the queue or binding a port: every
/// problem of every layer and of the settings they make, then exit 1; else "configuration OK".
fn check_config(path: Option<&std::path::Path>) -> ExitCode {
    let (settings, mut problems) = Settings::load_all(path);
    if let Some(settings) = &settings {
        problems.extend(crate::state::problems(settings));
    }
    if problems.is_empty() {
        println!("configuration OK");
        return ExitCode::SUCCESS;
    }
    eprintln!(
        "freshtap: invalid configuration ({} problem{}):\n  - {}",
        problems.len(),
        if problems.len() == 1 { "" } else { "s" },
        problems.join("\n  - ")
    );
    ExitCode::FAILURE
}

/// The records a body would produce on a route; compiles the templates, opens no queue.
fn render(settings: &Settings, route_name: &str, file: Option<PathBuf>) -> Result<(), String> {
    let mut body = Vec::new();
    match file {
        Some(path) => {
            body =
                std::fs::read(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?
        }
        None => {
            std::io::stdin()
                .read_to_end(&mut body)
                .map_err(|e| e.to_string())?;
        }
    }
    let routes = Routes::compile(settings).map_err(|problems| problems.join("\n"))?;
    let route = routes
        .webhook(route_name)
        .ok_or_else(|| format!("no route named {route_name}"))?;
    let kind = BodyKind::from_content_type(None, &body).unwrap_or(BodyKind::Json);
    let parsed = webhook::parse(kind, &body).map_err(|e| e.message)?;
    let now = crate::clock::now_ms() / 1000;
    let rendered = route.mapping.render(&parsed.value, now);
    let mut failed = false;
    for (index, record) in rendered.records.iter().enumerate() {
        match record {
            crate::mapping::RecordOutcome::Send(value) => println!("{value}"),
            crate::mapping::RecordOutcome::Skip => {
                println!("# record {index}: skipped (its $when is false)")
            }
            crate::mapping::RecordOutcome::Dead { code, reason } => {
                failed = true;
                println!("# record {index}: {code}: {reason}");
            }
            crate::mapping::RecordOutcome::Refused { code, error } => {
                failed = true;
                println!("# record {index}: {code}: {error}");
            }
        }
    }
    for dropped in &rendered.dropped {
        println!(
            "# record {}: field {} dropped: {}",
            dropped.record_index, dropped.field, dropped.reason
        );
    }
    if failed {
        Err("some records cannot be sent".into())
    } else {
        Ok(())
    }
}

async fn state_for_tools(settings: Settings) -> Result<AppState, String> {
    let queue = Queue::connect(&settings.queue)
        .await
        .map_err(|e| e.to_string())?;
    AppState::new(settings, queue, CancellationToken::new()).map_err(|e| e.join("\n"))
}

async fn dead_letters(settings: Settings, action: DeadLetterAction) -> Result<(), String> {
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

fn code_arg(code: Option<&str>) -> Result<Option<DeadCode>, String> {
    code.map(|text| {
        DeadCode::parse(text)
            .ok_or_else(|| format!("--code {text}: not a CleverTap code or a freshtap code name"))
    })
    .transpose()
}

/// A minimal HTTP/1.0 GET over TCP: the slim image has no curl, and this needs no TLS.
async fn healthcheck(url: &str) -> ExitCode {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rest = url.trim_start_matches("http://");
    let (authority, path) = rest.split_once('/').map_or((rest, "/"), |(a, p)| (a, p));
    let attempt = async {
        let mut stream = tokio::net::TcpStream::connect(authority).await.ok()?;
        let request = format!(
            "GET /{} HTTP/1.0\r\nHost: {authority}\r\n\r\n",
            path.trim_start_matches('/')
        );
        stream.write_all(request.as_bytes()).await.ok()?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await.ok()?;
        let status_line = String::from_utf8_lossy(&answer)
            .lines()
            .next()
            .map(str::to_owned)?;
        Some(status_line.split_whitespace().nth(1) == Some("200"))
    };
    match tokio::time::timeout(std::time::Duration::from_secs(3), attempt).await {
        Ok(Some(true)) => ExitCode::SUCCESS,
        _ => {
            eprintln!("freshtap: {url} is not healthy");
            ExitCode::FAILURE
        }
    }
}
