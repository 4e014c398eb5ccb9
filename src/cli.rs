//! The command line: serve (default), demo, check-config, render, dead-letters, healthcheck.
//! The dead-letter tools are in `cli/dead_letters.rs`.

mod dead_letters;
mod erase;

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use crate::config::Settings;
use crate::routes::Routes;
use crate::startup::Application;
use crate::webhook::{self, BodyKind};

/// The environment variables, shown under every `--help`.
const ENVIRONMENT_HELP: &str = "\
Environment:
  FRESHTAP_CONFIG          configuration file used when --config is not given
  FRESHTAP__SECTION__KEY   any key, e.g. FRESHTAP__SERVER__BIND=0.0.0.0:8080,
                           FRESHTAP__CLEVERTAP__ACCOUNTS__MAIN__PASSCODE=…,
                           FRESHTAP__AUTH__ADMIN_TOKEN=… (later wins: built-in defaults,
                           ./config/default.toml, the file, then these variables)
  RUST_LOG is not read: set log.level (FRESHTAP__LOG__LEVEL) instead.
`freshtap check-config` lists every unknown key and invalid value.";

#[derive(Debug, Parser)]
#[command(
    name = "freshtap",
    version,
    about = "A durable Freshsales → CleverTap webhook relay",
    after_help = ENVIRONMENT_HELP
)]
pub struct Cli {
    /// Configuration file (TOML), layered over the built-in defaults (or FRESHTAP_CONFIG).
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
        /// The route whose template renders the body (a `[routes.<name>]` table).
        #[arg(long)]
        route: String,
        /// Body file (JSON or form); standard input when omitted.
        file: Option<PathBuf>,
    },
    /// Inspect and replay dead letters (works on the queue directly).
    DeadLetters {
        #[command(subcommand)]
        action: dead_letters::DeadLetterAction,
    },
    /// Remove one person's stored webhooks and dead letters (on the queue directly); the
    /// erasure is recorded with the identity only as a keyed hash, as `POST /admin/erasures`.
    Erase {
        /// The person's identity as the rows hold it (email, phone or id; matched lowercased).
        #[arg(long)]
        identity: String,
        /// Keep rows still pending or being delivered.
        #[arg(long)]
        keep_pending: bool,
        /// Also queue a CleverTap profile deletion (`/1/delete/profiles.json`), sent by the
        /// running relay's workers.
        #[arg(long)]
        propagate: bool,
        /// With --propagate: a CleverTap account to delete the profile from (repeatable;
        /// default: every configured account).
        #[arg(long = "account", requires = "propagate")]
        accounts: Vec<String>,
    },
    /// GET the local /healthz; exit 0 when healthy (the Docker HEALTHCHECK).
    Healthcheck {
        /// The health URL to GET (plain http).
        #[arg(long, default_value = "http://127.0.0.1:8080/healthz")]
        url: String,
    },
    /// Run the CleverTap simulator alone.
    SimulateClevertap(crate::demo::SimulateArgs),
}

/// Runs the parsed command line; the process exit code.
pub async fn run(cli: Cli) -> ExitCode {
    let command = cli.command.unwrap_or(Command::Serve);
    match command {
        Command::Demo(args) => return crate::demo::run(args, cli.config.as_deref()).await,
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
        Command::DeadLetters { action } => dead_letters::run(settings, action).await,
        Command::Erase {
            identity,
            keep_pending,
            propagate,
            accounts,
        } => {
            let accounts = propagate.then_some(accounts);
            erase::run(settings, &identity, keep_pending, accounts).await
        }
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
    tokio::spawn(crate::startup::cancel_on_signal(shutdown));
    app.run_until_stopped().await.map_err(|e| e.to_string())
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
