//! freshtap: a durable Freshsales → CleverTap webhook relay.
//!
//! Modules in the order a webhook meets them.

/// Command line: serve, demo, check-config, render, dead-letters, simulate-clevertap.
pub mod cli;

/// Settings, layered from defaults, files and environment.
pub mod config;

/// Logging and personal-data masking.
pub mod telemetry;

/// Prometheus metrics.
pub mod metrics;

/// Wiring: the application, its state and listeners.
pub mod startup;

/// The HTTP surface: intake, health, metrics, admin.
pub mod http;

/// Raw webhook bodies: content types, parsing, test payloads, hashes.
pub mod webhook;

/// Template sources (files or the shipped copies).
pub mod templates;

/// Rendering bodies into CleverTap records.
pub mod mapping;

/// The durable queue.
pub mod queue;

/// The delivery worker.
pub mod worker;

/// CleverTap: model, client, batching, classification.
pub mod clevertap;

/// Backoff and giving up.
pub mod retry;

/// Dead-letter replay.
pub mod replay;

/// The demo command.
pub mod demo;
