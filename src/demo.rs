//! `freshtap demo` (relay + CleverTap simulator on a temporary queue; with `--config FILE`,
//! that file's routes and accounts, every account pointed at the simulator) and
//! `simulate-clevertap`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clevertap_sim::{SimAccount, Simulator, SimulatorConfig};
use tokio_util::sync::CancellationToken;

use crate::config::Settings;
use crate::startup::{Application, StartupError};

const DEMO_TOKEN: &str = "demo-token";
const DEMO_ADMIN: &str = "demo-admin";
const DEMO_ACCOUNT: &str = "DEMO-ACC-001";
const DEMO_PASSCODE: &str = "demo-passcode";

/// A Simple-mode Freshsales contact, as a "Trigger Webhook" action sends it.
pub const SAMPLE_CONTACT: &str = r#"{"contact_id":16001234567,"contact_first_name":"Amelia","contact_last_name":"Hart","contact_email":"amelia.hart@example.com","contact_mobile_number":"+44 7700 900123","contact_lead_source_name":"Web Form","contact_lifecycle_stage_name":"Lead","contact_updated_at":"26-11-2026 09:14:33"}"#;

#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Where the relay listens (port 0: any free port).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,
    /// Where the CleverTap simulator listens.
    #[arg(long, default_value = "127.0.0.1:9090")]
    pub simulator_bind: SocketAddr,
    /// Keep the queue in this directory instead of a temporary one.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct SimulateArgs {
    /// Where the simulator listens.
    #[arg(long, default_value = "127.0.0.1:9090")]
    pub bind: SocketAddr,
    /// Account id the simulator accepts.
    #[arg(long, default_value = "SIM-ACC-001")]
    pub account_id: String,
    /// Passcode the simulator accepts.
    #[arg(long, default_value = "sim-passcode")]
    pub passcode: String,
    /// Concurrent requests per account before 429.
    #[arg(long, default_value_t = 15)]
    pub max_in_flight: usize,
    /// Hold every request this long before handling it, as a round trip to CleverTap would
    /// (the benchmark's CleverTap-like network); a `latency_ms` fault replaces it until reset.
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u64,
    /// Keep only the last 1000 requests and records and no profiles, so memory stays flat on
    /// long runs (benchmarks); counters stay exact.
    #[arg(long)]
    pub lean: bool,
    /// With `--lean`, still keep merged profiles, so `profiles` in `/_sim/stats` counts the
    /// distinct identities received (the benchmark's exactly-once check).
    #[arg(long, requires = "lean")]
    pub keep_profiles: bool,
}

/// The demo's settings: built-in defaults, then `config` when given (its routes and
/// accounts), with every account pointed at the simulator and a temporary queue.
pub fn demo_settings(
    bind: SocketAddr,
    simulator_url: &str,
    data_dir: &Path,
    config: Option<&Path>,
) -> Result<Settings, String> {
    let accounts = demo_accounts(config)?;
    let mut overlay = format!(
        r#"
[server]
bind = "{bind}"
[queue]
url = "sqlite://{db}"
[delivery]
base_delay_ms = 200
max_delay_secs = 5
pause_probe_secs = 5
[auth]
token = "{DEMO_TOKEN}"
admin_token = "{DEMO_ADMIN}"
[log]
format = "pretty"
level = "info"
"#,
        db = data_dir.join("freshtap.db").display(),
    );
    for (name, id) in &accounts {
        overlay.push_str(&format!(
            "[clevertap.accounts.{key}]\naccount_id = \"{id}\"\npasscode = \"{DEMO_PASSCODE}\"\n\
             base_url = \"{simulator_url}\"\n",
            key = serde_json::Value::from(name.as_str()),
        ));
    }
    let mut settings = Settings::from_file_and_toml(config, &overlay).map_err(|e| e.to_string())?;
    // The demo serves everything on one port.
    settings.server.admin_bind = None;
    Ok(settings)
}

/// Every account the demo serves (the built-in `main` and those of `config`), with the
/// account id the simulator accepts for it.
fn demo_accounts(config: Option<&Path>) -> Result<Vec<(String, String)>, String> {
    let names: Vec<String> = match config {
        Some(_) => Settings::from_file_and_toml(config, "")
            .map_err(|e| e.to_string())?
            .clevertap
            .accounts
            .into_keys()
            .collect(),
        None => vec!["main".into()],
    };
    Ok(names
        .into_iter()
        .map(|name| {
            let id = if name == "main" {
                DEMO_ACCOUNT.to_owned()
            } else {
                format!("DEMO-{}", name.to_uppercase())
            };
            (name, id)
        })
        .collect())
}

pub async fn run(args: DemoArgs, config: Option<&Path>) -> ExitCode {
    match demo(args, config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("freshtap demo: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn demo(args: DemoArgs, config: Option<&Path>) -> Result<(), String> {
    let temp = tempfile::tempdir().map_err(|e| e.to_string())?;
    let data_dir = args
        .data_dir
        .clone()
        .unwrap_or_else(|| temp.path().to_owned());
    let accounts = demo_accounts(config)?;
    let sim_config = SimulatorConfig {
        accounts: accounts
            .iter()
            .map(|(_, id)| SimAccount::new(id.as_str(), DEMO_PASSCODE))
            .collect(),
        log_records: true,
        ..SimulatorConfig::default()
    };
    let simulator = Simulator::start(args.simulator_bind, sim_config)
        .await
        .map_err(|e| {
            format!(
                "cannot start the simulator on {}: {e}; choose another address with \
                 --simulator-bind",
                args.simulator_bind
            )
        })?;
    let settings = demo_settings(args.bind, &simulator.url(), &data_dir, config)?;
    crate::telemetry::init(&settings.log);
    let shutdown = CancellationToken::new();
    let app = match Application::build(settings, shutdown.clone()).await {
        Ok(app) => app,
        Err(StartupError::Bind { addr, source, .. }) => {
            simulator.shutdown().await;
            return Err(format!(
                "cannot listen on {addr}: {source}; choose another address with --bind"
            ));
        }
        Err(error) => {
            simulator.shutdown().await;
            return Err(error.to_string());
        }
    };
    let relay = format!("http://{}:{}", args.bind.ip(), app.port());
    print_banner(&app, &relay, &simulator.url(), &data_dir);
    tokio::spawn(crate::startup::cancel_on_signal(shutdown));
    let result = app.run_until_stopped().await.map_err(|e| e.to_string());
    simulator.shutdown().await;
    result
}

fn print_banner(app: &Application, relay: &str, simulator: &str, data_dir: &Path) {
    let state = app.state();
    println!("\nfreshtap demo is running (Ctrl-C to stop)\n");
    println!("  routes:");
    for name in state.routes.names() {
        let own = state
            .settings
            .routes
            .get(name)
            .is_some_and(|r| r.token.is_some());
        let token = if own { "its own token" } else { DEMO_TOKEN };
        println!("    {relay}/webhooks/{name}   (token: {token})");
    }
    println!("  CleverTap sim:  {simulator}/_sim/stats");
    println!("  admin API:      {relay}/admin/stats          (Authorization: Bearer {DEMO_ADMIN})");
    println!("  console:        {relay}/console              (admin token: {DEMO_ADMIN})");
    println!(
        "  queue:          {}\n",
        data_dir.join("freshtap.db").display()
    );
    if state.routes.webhook("contacts").is_some() {
        println!("Send a Freshsales contact:\n");
        println!(
            "  curl -s -X POST {relay}/webhooks/contacts -H 'X-Freshtap-Token: {DEMO_TOKEN}' -H 'Content-Type: application/json' -d '{SAMPLE_CONTACT}'\n"
        );
        println!(
            "Then see the profile CleverTap holds:\n\n  curl -s {simulator}/_sim/profiles/amelia.hart@example.com\n"
        );
    }
}

pub async fn simulate(args: SimulateArgs) -> ExitCode {
    crate::telemetry::init(&crate::config::LogSettings {
        format: crate::config::LogFormat::Pretty,
        level: "info".into(),
        mask_pii: true,
    });
    let config = SimulatorConfig {
        accounts: vec![SimAccount {
            id: args.account_id,
            passcodes: vec![args.passcode],
        }],
        max_in_flight: args.max_in_flight,
        latency_ms: args.latency_ms,
        ..SimulatorConfig::default()
    };
    let config = match (args.lean, args.keep_profiles) {
        (false, _) => config,
        (true, keep_profiles) => SimulatorConfig {
            store_profiles: keep_profiles,
            ..config.lean()
        },
    };
    let token = CancellationToken::new();
    tokio::spawn(crate::startup::cancel_on_signal(token.clone()));
    match clevertap_sim::run(args.bind, config, token).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("freshtap simulate-clevertap: {error}");
            ExitCode::FAILURE
        }
    }
}
