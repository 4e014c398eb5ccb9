//! Settings: the typed shape of every configuration key (the ground floor every module reads).
//!
//! Loading (defaults → files → environment, `*_file` secrets) is in `load.rs`, refusing
//! unknown keys (`strict.rs`, against the key tree `schema.rs` reads off these types); the
//! checks `serve` and `check-config` run before anything starts are in `check.rs`.

mod check;
mod load;
mod schema;
mod strict;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;

pub use load::{BUILT_IN, ConfigError};
pub use strict::{ENV_PREFIX, env_var, nearest};

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

#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    pub server: ServerSettings,
    pub queue: QueueSettings,
    pub delivery: DeliverySettings,
    pub mapping: MappingSettings,
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
    /// The drop-in `/1/upload`'s own body limit (1000 CRM-sized records fit).
    pub max_upload_bytes: usize,
    pub request_timeout_secs: u64,
    /// A client must send its request headers within this time.
    pub header_timeout_secs: u64,
    /// A keep-alive connection with no traffic this long is closed.
    pub idle_timeout_secs: u64,
    /// Connections open at once per listener; more are closed at once.
    pub max_connections: usize,
    pub max_concurrent_requests: usize,
    /// A webhook that finds every slot taken waits this long for one before it is shed.
    pub max_wait_ms: u64,
    /// Bodies waiting for a slot hold at most this many bytes together; beyond, shed at once.
    pub max_waiting_bytes: usize,
    pub shutdown_grace_secs: u64,
    /// After a stop request, `/readyz` answers 503 this long while the listener still serves.
    pub drain_secs: u64,
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
    /// Bodies of delivered rows are emptied after this (their metadata stays).
    pub delivered_body_retention_hours: u64,
    pub dead_retention_days: u64,
    /// Bodies without an extracted identity an erasure reads at most.
    pub erasure_scan_rows: usize,
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

/// `[mapping]`: how Freshsales values are read (also the defaults of every route).
#[derive(Debug, Clone, Deserialize)]
pub struct MappingSettings {
    /// chrono strftime of the Freshsales account's dates.
    pub date_format: String,
    /// IANA zone the Freshsales dates are in.
    pub timezone: String,
    /// ISO 3166 alpha-2 region for phones without `+`.
    pub default_region: String,
    pub on_invalid_field: OnInvalidField,
    pub detect_test_webhooks: bool,
}

impl Default for MappingSettings {
    fn default() -> Self {
        Self {
            date_format: "%d-%m-%Y %H:%M:%S".into(),
            timezone: "UTC".into(),
            default_region: "US".into(),
            on_invalid_field: OnInvalidField::Drop,
            detect_test_webhooks: true,
        }
    }
}

/// What becomes of a reserved field CleverTap would reject, on template routes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnInvalidField {
    /// Leave the field out, count it, deliver the rest of the record.
    Drop,
    /// Dead-letter the whole record.
    Dead,
}

/// How a route reads its bodies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// `{"d":[…]}` passes through, anything else renders through the template.
    #[default]
    Auto,
    Template,
    Passthrough,
    /// Each rendered record names a CleverTap profile (`identity`, or `guid`/`objectId`) to
    /// delete through `/1/delete/profiles.json` instead of an upload.
    Delete,
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
    /// Key of the identity hash erasures keep; derived from the admin token when unset.
    pub erasure_key: Option<SecretString>,
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
    pub fn lease(&self) -> Duration {
        Duration::from_secs(self.queue.lease_secs)
    }
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
    fn a_log_level_that_is_no_filter_is_refused() {
        let s = Settings::from_toml("[log]\nlevel = \"freshtap=loud\"\n").expect("loads");
        assert!(
            s.check().iter().any(|p| p.contains("log.level")),
            "{:?}",
            s.check()
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
