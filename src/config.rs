//! Settings: typed, layered once (defaults → file → environment), secrets resolved and checked.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use config::{Config, Environment, File, FileFormat};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::mapping::{MappingSettings, Mode, OnInvalidField};

/// The shipped `config/default.toml`, compiled in so the binary runs from any directory.
pub const BUILT_IN: &str = include_str!("../config/default.toml");

/// CleverTap regions and their API hosts (CleverTap reference §1).
pub const REGIONS: &[(&str, &str)] = &[
    ("eu1", "api.clevertap.com"),
    ("in1", "in1.api.clevertap.com"),
    ("sg1", "sg1.api.clevertap.com"),
    ("us1", "us1.api.clevertap.com"),
    ("aps3", "aps3.api.clevertap.com"),
    ("mec1", "mec1.api.clevertap.com"),
    ("sk1", "sk1.api.clevertap.com"),
];

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration could not be read: {0}")]
    Load(#[from] config::ConfigError),
    #[error("cannot read {key} from {path}: {source}")]
    SecretFile {
        key: String,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(String),
}

#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    pub server: ServerSettings,
    pub queue: QueueSettings,
    pub delivery: DeliverySettings,
    pub mapping: MappingConfig,
    #[serde(default)]
    pub clevertap: ClevertapSettings,
    #[serde(default)]
    pub routes: BTreeMap<String, RouteSettings>,
    pub auth: AuthSettings,
    pub log: LogSettings,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ServerSettings {
    pub bind: SocketAddr,
    pub max_body_bytes: usize,
    pub request_timeout_secs: u64,
    pub max_concurrent_requests: usize,
    pub shutdown_grace_secs: u64,
    pub admin_bind: Option<SocketAddr>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct QueueSettings {
    pub url: SecretString,
    pub url_file: Option<PathBuf>,
    /// PEM CA certificates trusted for PostgreSQL TLS (`sslmode=require`), beyond the system's.
    pub tls_ca_file: Option<PathBuf>,
    pub lease_secs: u64,
    pub dedup_window_secs: u64,
    pub delivered_retention_hours: u64,
    pub dead_retention_days: u64,
    pub pool_size: u32,
}

#[derive(Debug, Clone, Deserialize)]
pub struct DeliverySettings {
    pub enabled: bool,
    pub batch_max_records: usize,
    pub batch_max_bytes: usize,
    pub batch_linger_ms: u64,
    pub max_in_flight: usize,
    pub base_delay_ms: u64,
    pub max_delay_secs: u64,
    pub max_attempts: u32,
    pub max_age_hours: u64,
    pub request_timeout_secs: u64,
    pub pause_probe_secs: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct MappingConfig {
    pub date_format: String,
    pub timezone: String,
    pub default_region: String,
    pub on_invalid_field: OnInvalidField,
    pub detect_test_webhooks: bool,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct ClevertapSettings {
    #[serde(default)]
    pub accounts: BTreeMap<String, AccountSettings>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct AccountSettings {
    pub account_id: Option<String>,
    pub passcode: Option<SecretString>,
    pub passcode_file: Option<PathBuf>,
    #[serde(default = "default_region")]
    pub region: String,
    pub base_url: Option<String>,
}

fn default_region() -> String {
    "eu1".to_owned()
}

/// One token or several (rotation without downtime).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Tokens {
    One(SecretString),
    Many(Vec<SecretString>),
}

impl Tokens {
    pub fn list(&self) -> Vec<&SecretString> {
        match self {
            Self::One(token) => vec![token],
            Self::Many(tokens) => tokens.iter().collect(),
        }
    }
}

/// A template name mapped to one webhook field, or to several tried in order.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum AliasTarget {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Clone, Deserialize)]
pub struct RouteSettings {
    pub account: String,
    pub token: Option<Tokens>,
    pub token_file: Option<PathBuf>,
    pub template: Option<String>,
    #[serde(default)]
    pub mode: Mode,
    pub date_format: Option<String>,
    #[serde(default)]
    pub aliases: BTreeMap<String, AliasTarget>,
}

impl RouteSettings {
    pub fn alias_table(&self) -> BTreeMap<String, Vec<String>> {
        self.aliases
            .iter()
            .map(|(name, target)| {
                let targets = match target {
                    AliasTarget::One(one) => vec![one.clone()],
                    AliasTarget::Many(many) => many.clone(),
                };
                (name.clone(), targets)
            })
            .collect()
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct AuthSettings {
    pub token: Option<Tokens>,
    pub token_file: Option<PathBuf>,
    pub header: String,
    pub admin_token: Option<SecretString>,
    pub admin_token_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct LogSettings {
    pub format: LogFormat,
    pub level: String,
    pub mask_pii: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Json,
    Pretty,
}

impl Settings {
    /// Loads every layer: built-in defaults, `./config/default.toml`, `path` (or
    /// `FRESHTAP_CONFIG`), then `FRESHTAP__SECTION__KEY` variables; resolves `*_file` secrets.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        let env_path = std::env::var_os("FRESHTAP_CONFIG").map(PathBuf::from);
        let mut layers = Config::builder()
            .add_source(File::from_str(BUILT_IN, FileFormat::Toml))
            .add_source(File::new("config/default.toml", FileFormat::Toml).required(false));
        if let Some(file) = path.map(Path::to_path_buf).or(env_path) {
            layers = layers.add_source(File::from(file).format(FileFormat::Toml));
        }
        let settings: Self = layers
            .add_source(
                Environment::with_prefix("FRESHTAP")
                    .prefix_separator("__")
                    .separator("__")
                    .try_parsing(true),
            )
            .build()?
            .try_deserialize()?;
        settings.resolve_secrets()
    }

    /// Built-in defaults with `overlay` (TOML) on top; no files, no environment. For tests
    /// and the demo.
    pub fn from_toml(overlay: &str) -> Result<Self, ConfigError> {
        let settings: Self = Config::builder()
            .add_source(File::from_str(BUILT_IN, FileFormat::Toml))
            .add_source(File::from_str(overlay, FileFormat::Toml))
            .build()?
            .try_deserialize()?;
        settings.resolve_secrets()
    }

    fn resolve_secrets(mut self) -> Result<Self, ConfigError> {
        if let Some(path) = &self.queue.url_file {
            self.queue.url = read_secret("queue.url_file", path)?;
        }
        if let Some(path) = &self.auth.token_file {
            self.auth.token = Some(Tokens::One(read_secret("auth.token_file", path)?));
        }
        if let Some(path) = &self.auth.admin_token_file {
            self.auth.admin_token = Some(read_secret("auth.admin_token_file", path)?);
        }
        for (name, account) in &mut self.clevertap.accounts {
            if let Some(path) = &account.passcode_file {
                let key = format!("clevertap.accounts.{name}.passcode_file");
                account.passcode = Some(read_secret(&key, path)?);
            }
        }
        for (name, route) in &mut self.routes {
            if let Some(path) = &route.token_file {
                let key = format!("routes.{name}.token_file");
                route.token = Some(Tokens::One(read_secret(&key, path)?));
            }
        }
        Ok(self)
    }

    /// Everything that can be checked without a network: numbers in range, accounts complete
    /// and referenced, regions known. Template compilation is checked by `startup`.
    pub fn check(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let d = &self.delivery;
        if d.request_timeout_secs + 5 > self.queue.lease_secs {
            problems.push(format!(
                "queue.lease_secs ({}) must exceed delivery.request_timeout_secs ({}) by at least 5 s",
                self.queue.lease_secs, d.request_timeout_secs
            ));
        }
        if d.batch_max_records == 0 || d.batch_max_records > 1000 {
            problems.push("delivery.batch_max_records must be 1 to 1000 (CleverTap's cap)".into());
        }
        if d.max_in_flight == 0 {
            problems.push("delivery.max_in_flight must be at least 1".into());
        }
        if d.max_attempts == 0 {
            problems.push("delivery.max_attempts must be at least 1".into());
        }
        if d.batch_max_bytes < 1024 || d.batch_max_bytes > 5 * 1024 * 1024 {
            problems.push("delivery.batch_max_bytes must be 1 KiB to 5 MiB".into());
        }
        for (name, account) in &self.clevertap.accounts {
            problems.extend(account_problems(name, account));
        }
        for (name, route) in &self.routes {
            if !self.clevertap.accounts.contains_key(&route.account) {
                problems.push(format!(
                    "routes.{name}.account = \"{}\" names no [clevertap.accounts.{}] table",
                    route.account, route.account
                ));
            }
            if route.token.is_none() && self.auth.token.is_none() {
                problems.push(format!(
                    "routes.{name} has no token: set routes.{name}.token or auth.token \
                     (FRESHTAP__AUTH__TOKEN)"
                ));
            }
            if route.mode != Mode::Passthrough && route.template.is_none() {
                problems.push(format!(
                    "routes.{name}.template is required unless mode = \"passthrough\""
                ));
            }
        }
        problems
    }

    pub fn mapping_settings(&self) -> MappingSettings {
        MappingSettings {
            date_format: self.mapping.date_format.clone(),
            timezone: self.mapping.timezone.clone(),
            default_region: self.mapping.default_region.clone(),
            on_invalid_field: self.mapping.on_invalid_field,
        }
    }

    pub fn lease(&self) -> Duration {
        Duration::from_secs(self.queue.lease_secs)
    }
}

fn account_problems(name: &str, account: &AccountSettings) -> Vec<String> {
    let mut problems = Vec::new();
    let env = name.to_uppercase();
    if account.account_id.as_deref().is_none_or(str::is_empty) {
        problems.push(format!(
            "clevertap.accounts.{name}.account_id is not set \
             (or FRESHTAP__CLEVERTAP__ACCOUNTS__{env}__ACCOUNT_ID)"
        ));
    }
    if account
        .passcode
        .as_ref()
        .is_none_or(|p| p.expose_secret().is_empty())
    {
        problems.push(format!(
            "clevertap.accounts.{name}.passcode is not set \
             (or passcode_file, or FRESHTAP__CLEVERTAP__ACCOUNTS__{env}__PASSCODE)"
        ));
    }
    if account.base_url.is_none() && !REGIONS.iter().any(|(r, _)| *r == account.region) {
        let known: Vec<&str> = REGIONS.iter().map(|(r, _)| *r).collect();
        problems.push(format!(
            "clevertap.accounts.{name}.region = \"{}\" is not one of {}",
            account.region,
            known.join(", ")
        ));
    }
    if let Some(url) = &account.base_url
        && !(url.starts_with("http://") || url.starts_with("https://"))
    {
        problems.push(format!(
            "clevertap.accounts.{name}.base_url must start with http:// or https://"
        ));
    }
    problems
}

fn read_secret(key: &str, path: &Path) -> Result<SecretString, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::SecretFile {
        key: key.to_owned(),
        path: path.to_owned(),
        source,
    })?;
    Ok(SecretString::from(
        text.trim_end_matches(['\n', '\r']).to_owned(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_defaults_match_the_documented_contract() {
        let s = Settings::from_toml("").expect("defaults load");
        assert_eq!(s.server.max_body_bytes, 262_144);
        assert_eq!(s.queue.lease_secs, 60);
        assert_eq!(s.queue.dedup_window_secs, 600);
        assert_eq!(s.delivery.batch_max_records, 500);
        assert_eq!(s.delivery.max_in_flight, 10);
        assert_eq!(s.delivery.max_attempts, 20);
        assert_eq!(s.auth.header, "X-Freshtap-Token");
        assert!(s.log.mask_pii);
    }

    #[test]
    fn missing_credentials_name_the_key_to_set() {
        let s = Settings::from_toml("[auth]\ntoken = \"t\"").expect("loads");
        let problems = s.check().join("\n");
        assert!(
            problems.contains("clevertap.accounts.main.account_id is not set"),
            "{problems}"
        );
        assert!(
            problems.contains("FRESHTAP__CLEVERTAP__ACCOUNTS__MAIN__PASSCODE"),
            "{problems}"
        );
    }

    #[test]
    fn a_lease_shorter_than_the_timeout_is_refused() {
        let s = Settings::from_toml("[queue]\nlease_secs = 10\n").expect("loads");
        assert!(s.check().iter().any(|p| p.contains("lease_secs")));
    }

    #[test]
    fn token_lists_and_aliases_deserialize() {
        let s = Settings::from_toml(
            "[routes.contacts]\naccount=\"main\"\ntoken=[\"a\",\"b\"]\n\
             [routes.contacts.aliases]\nphone_number=[\"mobile_number\",\"work_number\"]\nlead_source=\"lead_source_name\"\n",
        )
        .expect("loads");
        let route = &s.routes["contacts"];
        assert_eq!(route.token.as_ref().map(|t| t.list().len()), Some(2));
        let aliases = route.alias_table();
        assert_eq!(
            aliases["phone_number"],
            vec!["mobile_number", "work_number"]
        );
        assert_eq!(aliases["lead_source"], vec!["lead_source_name"]);
    }

    #[test]
    fn secrets_never_print() {
        let s = Settings::from_toml(
            "[clevertap.accounts.main]\naccount_id=\"X\"\npasscode=\"hunter2\"\n",
        )
        .expect("loads");
        assert!(!format!("{s:?}").contains("hunter2"));
    }
}
