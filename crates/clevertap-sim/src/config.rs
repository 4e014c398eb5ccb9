//! Simulator settings: the accounts it accepts, its limits and its answer style.

use serde::{Deserialize, Serialize};

use crate::answer::AnswerShape;
use crate::validate;

/// One simulated CleverTap account: id and accepted passcodes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimAccount {
    pub id: String,
    pub passcodes: Vec<String>,
}

impl SimAccount {
    pub fn new(id: impl Into<String>, passcode: impl Into<String>) -> Self {
        SimAccount {
            id: id.into(),
            passcodes: vec![passcode.into()],
        }
    }
}

/// Simulator settings; `Default` gives one account `SIM-ACC-001` / `sim-passcode`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct SimulatorConfig {
    pub accounts: Vec<SimAccount>,
    /// Per account; beyond → 429 `Too many concurrent requests`.
    pub max_in_flight: usize,
    /// When set, 429 answers carry `Retry-After`.
    pub retry_after_secs: Option<u64>,
    /// Records per request; beyond → 400 `Malformed request`.
    pub max_records: usize,
    /// Check `objectId` against CleverTap's custom-id charset (→ 526).
    pub enforce_custom_id_charset: bool,
    /// Event names answered 513.
    pub restricted_events: Vec<String>,
    /// Answer JSON with CleverTap's space padding.
    pub space_padded: bool,
    /// Today's answers, or one of CleverTap's 2017 shapes (opt-in, for testing clients).
    pub answer_shape: AnswerShape,
    /// `tracing::info!` each stored record, identity masked.
    pub log_records: bool,
    /// Event properties allowed; beyond → 522.
    pub max_event_properties: usize,
    /// Body size cap; beyond → 413.
    pub max_body_bytes: usize,
    /// How many requests, records and events are kept for inspection (oldest dropped); counters
    /// are never bounded. Lower it for long benchmarks.
    pub history_limit: usize,
    /// Keep merged profiles (off for long benchmarks with many identities).
    pub store_profiles: bool,
    /// Every admitted request is held this long before it is handled, as a round trip to
    /// CleverTap would take; a `latency_ms` fault replaces it until `reset`.
    pub latency_ms: u64,
}

impl Default for SimulatorConfig {
    fn default() -> Self {
        SimulatorConfig {
            accounts: vec![SimAccount::new("SIM-ACC-001", "sim-passcode")],
            max_in_flight: 15,
            retry_after_secs: None,
            max_records: 1000,
            enforce_custom_id_charset: false,
            restricted_events: validate::DEFAULT_RESTRICTED_EVENTS
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
            space_padded: false,
            answer_shape: AnswerShape::Current,
            log_records: false,
            max_event_properties: 256,
            max_body_bytes: 16 * 1024 * 1024,
            history_limit: usize::MAX,
            store_profiles: true,
            latency_ms: 0,
        }
    }
}

impl SimulatorConfig {
    /// For long runs (benchmark, demo): keeps only the last 1000 requests/records/events and no
    /// profiles, so memory stays flat; counters stay exact.
    pub fn lean(self) -> Self {
        SimulatorConfig {
            history_limit: 1000,
            store_profiles: false,
            ..self
        }
    }
}
