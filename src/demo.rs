//! `freshtap demo` (relay + CleverTap simulator on a temporary queue) and `simulate-clevertap`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clevertap_sim::{SimAccount, Simulator, SimulatorConfig};
use tokio_util::sync::CancellationToken;

use crate::config::Settings;
use crate::startup::Application;

const DEMO_TOKEN: &str = "demo-token";
const DEMO_ADMIN: &str = "demo-admin";
const DEMO_ACCOUNT: &str = "DEMO-ACC-001";
const DEMO_PASSCODE: &str = "demo-passcode";

/// A Simple-mode Freshsales contact, as a "Trigger Webhook" action sends it.
pub const SAMPLE_CONTACT: &str = r#"{"contact_id":16001234567,"contact_first_name":"Amelia","contact_last_name":"Hart","contact_email":"amelia.hart@example.com","contact_mobile_number":"+44 7700 900123","contact_lead_source_name":"Web Form","contact_lifecycle_stage_name":"Lead","contact_updated_at":"26-11-2026 09:14:33"}"#;

#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Where the relay listens.
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

/// The demo's settings: built-in defaults, the demo account pointed at the simulator.
pub fn demo_settings(
    bind: SocketAddr,
    simulator_url: &str,
    data_dir: &std::path::Path,
) -> Result<Settings, String> {
    let overlay = format!(
        r#"
[server]
bind = "{bind}"
[queue]
url = "sqlite://{db}"
[delivery]
base_delay_ms = 200
max_delay_secs = 5
pause_probe_secs = 5
[clevertap.accounts.main]
account_id = "{DEMO_ACCOUNT}"
passcode = "{DEMO_PASSCODE}"
base_url = "{simulator_url}"
[auth]
token = "{DEMO_TOKEN}"
admin_token = "{DEMO_ADMIN}"
[log]
format = "pretty"
level = "info"
"#,
        db = data_dir.join("freshtap.db").display(),
    );
    Settings::from_toml(&overlay).map_err(|e| e.to_string())
}

pub async fn run(args: DemoArgs) -> ExitCode {
    match demo(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("freshtap demo: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn demo(args: DemoArgs) -> Result<(), String> {
    let temp = tempfile::tempdir().map_err(|e| e.to_string())?;
    let data_dir = args
        .data_dir
        .clone()
        .unwrap_or_else(|| temp.path().to_owned());
    let sim_config = SimulatorConfig {
        accounts: vec![SimAccount {
            id: DEMO_ACCOUNT.into(),
            passcodes: vec![DEMO_PASSCODE.into()],
        }],
        log_records: true,
        ..SimulatorConfig::default()
    };
    let simulator = Simulator::start(args.simulator_bind, sim_config)
        .await
        .map_err(|e| format!("cannot start the simulator on {}: {e}", args.simulator_bind))?;
    let settings = demo_settings(args.bind, &simulator.url(), &data_dir)?;
    crate::telemetry::init(&settings.log);
    let shutdown = CancellationToken::new();
    let app = Application::build(settings, shutdown.clone())
        .await
        .map_err(|e| e.to_string())?;
    let relay = format!("http://{}:{}", args.bind.ip(), app.port());
    println!("\nfreshtap demo is running (Ctrl-C to stop)\n");
    println!("  relay:          {relay}/webhooks/contacts   (token: {DEMO_TOKEN})");
    println!("  CleverTap sim:  {}/_sim/stats", simulator.url());
    println!("  admin API:      {relay}/admin/stats          (Authorization: Bearer {DEMO_ADMIN})");
    println!(
        "  queue:          {}\n",
        data_dir.join("freshtap.db").display()
    );
    println!("Send a Freshsales contact:\n");
    println!(
        "  curl -s -X POST {relay}/webhooks/contacts -H 'X-Freshtap-Token: {DEMO_TOKEN}' -H 'Content-Type: application/json' -d '{SAMPLE_CONTACT}'\n"
    );
    println!(
        "Then see the profile CleverTap holds:\n\n  curl -s {}/_sim/profiles/amelia.hart@example.com\n",
        simulator.url()
    );
    tokio::spawn(crate::cli::cancel_on_signal(shutdown));
    let result = app.run_until_stopped().await.map_err(|e| e.to_string());
    simulator.shutdown().await;
    result
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
    tokio::spawn(crate::cli::cancel_on_signal(token.clone()));
    match clevertap_sim::run(args.bind, config, token).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("freshtap simulate-clevertap: {error}");
            ExitCode::FAILURE
        }
    }
}
