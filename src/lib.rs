//! freshtap: a durable Freshsales → CleverTap webhook relay.
//!
//! Modules from the top floor down: the command line and the wiring, the HTTP edge and the
//! worker, the domain they share (state, routes, accounts, replay), then the pure core
//! (webhook bodies, mapping, CleverTap's model and classifier, backoff), the queue, and the
//! ground floor (settings, logs, metrics, time). Imports only ever point down.

/// Command line: serve, demo, check-config, render, dead-letters, healthcheck, simulate-clevertap.
pub mod cli;

/// The demo command and the stand-alone simulator command.
pub mod demo;

/// Wiring: build the application, serve, drain, stop.
pub mod startup;

/// The HTTP surface: intake, drop-in upload, health, metrics, admin.
pub mod http;

/// The delivery worker: claim, plan, send, settle; housekeeping.
pub mod worker;

/// The application state shared by the HTTP edge and the worker.
pub mod state;

/// The one route registry.
pub mod routes;

/// CleverTap accounts and their holds (pauses, refusals, outages), shared through the queue.
pub mod accounts;

/// Dead-letter replay (admin API and CLI).
pub mod replay;

/// Erasure on request: the identity's keyed hash and the shared erase step.
pub mod erasure;

/// Raw webhook bodies: content types, parsing, test payloads, hashes.
pub mod webhook;

/// Template sources (files or the shipped copies).
pub mod templates;

/// Rendering bodies into CleverTap records.
pub mod mapping;

/// CleverTap: model, client, batching, classification.
pub mod clevertap;

/// Backoff and giving up.
pub mod retry;

/// The durable queue.
pub mod queue;

/// Settings, layered from defaults, files and environment.
pub mod config;

/// Configured secrets, compared in constant time.
pub mod credential;

/// The two body kinds, JSON and form.
pub mod body;

/// Logging and personal-data masking.
pub mod telemetry;

/// Prometheus metrics.
pub mod metrics;

/// Admission of webhooks to be stored: slots, a bounded wait, load shedding.
pub mod admission;

/// Wall-clock milliseconds.
pub mod clock;
