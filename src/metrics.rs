//! The Prometheus metrics (docs/operations.md), one method per event; labels only from config and enums.
//!
//! Each app owns its recorder (nothing global), so two apps in one test share nothing.

use std::time::Duration;

use metrics::{Key, Label, Level, Metadata, Recorder};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusRecorder};

static META: Metadata<'static> = Metadata::new("freshtap", Level::INFO, Some("freshtap"));

/// Outcome label of `freshtap_webhooks_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Intake {
    Accepted,
    Duplicate,
    Test,
    Unauthorized,
    TooLarge,
    InvalidBody,
    UnknownRoute,
    UnsupportedType,
    Unavailable,
    /// Shed under load (503 `overloaded`).
    Overloaded,
    /// A drop-in upload whose every record CleverTap's rules refuse.
    Refused,
}

impl Intake {
    fn label(self) -> &'static str {
        match self {
            Self::Accepted => "accepted",
            Self::Duplicate => "duplicate",
            Self::Test => "test",
            Self::Unauthorized => "unauthorized",
            Self::TooLarge => "too_large",
            Self::InvalidBody => "invalid_body",
            Self::UnknownRoute => "unknown_route",
            Self::UnsupportedType => "unsupported_type",
            Self::Unavailable => "unavailable",
            Self::Overloaded => "overloaded",
            Self::Refused => "refused",
        }
    }
}

/// Outcome label of `freshtap_deliveries_total` (one CleverTap request).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    Success,
    Partial,
    Retry,
    Paused,
    Refused,
}

/// Outcome label of `freshtap_records_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordOutcome {
    Delivered,
    Dead,
    Retried,
}

pub struct Metrics {
    recorder: PrometheusRecorder,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let buckets = [
            0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            30.0,
        ];
        let builder = PrometheusBuilder::new();
        let builder = builder
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &buckets)
            .unwrap_or_else(|_| PrometheusBuilder::new());
        Self {
            recorder: builder.build_recorder(),
        }
    }

    pub fn render(&self) -> String {
        self.recorder.handle().render()
    }

    /// Folds buffered histogram samples into their buckets (bounded memory between scrapes).
    pub fn upkeep(&self) {
        self.recorder.handle().run_upkeep();
    }

    fn counter(&self, name: &'static str, labels: Vec<Label>, by: u64) {
        self.recorder
            .register_counter(&Key::from_parts(name, labels), &META)
            .increment(by);
    }

    fn gauge(&self, name: &'static str, labels: Vec<Label>, value: f64) {
        self.recorder
            .register_gauge(&Key::from_parts(name, labels), &META)
            .set(value);
    }

    fn histogram(&self, name: &'static str, value: f64) {
        self.recorder
            .register_histogram(&Key::from_static_name(name), &META)
            .record(value);
    }

    pub fn webhook(&self, route: &str, outcome: Intake) {
        self.counter(
            "freshtap_webhooks_total",
            vec![
                Label::new("route", route.to_owned()),
                Label::from_static_parts("outcome", outcome.label()),
            ],
            1,
        );
    }

    /// A webhook (or drop-in upload) waited for an intake slot (`server.max_wait_ms`).
    pub fn intake_waited(&self) {
        self.counter("freshtap_intake_waited_total", vec![], 1);
    }

    pub fn intake_time(&self, elapsed: Duration) {
        self.histogram("freshtap_intake_seconds", elapsed.as_secs_f64());
    }

    pub fn delivery(&self, account: &str, outcome: Delivery, elapsed: Duration) {
        let label = match outcome {
            Delivery::Success => "success",
            Delivery::Partial => "partial",
            Delivery::Retry => "retry",
            Delivery::Paused => "paused",
            Delivery::Refused => "refused",
        };
        self.counter(
            "freshtap_deliveries_total",
            vec![
                Label::new("account", account.to_owned()),
                Label::from_static_parts("outcome", label),
            ],
            1,
        );
        self.histogram("freshtap_delivery_seconds", elapsed.as_secs_f64());
    }

    pub fn records(&self, account: &str, outcome: RecordOutcome, count: usize) {
        if count == 0 {
            return;
        }
        let label = match outcome {
            RecordOutcome::Delivered => "delivered",
            RecordOutcome::Dead => "dead",
            RecordOutcome::Retried => "retried",
        };
        self.counter(
            "freshtap_records_total",
            vec![
                Label::new("account", account.to_owned()),
                Label::from_static_parts("outcome", label),
            ],
            count as u64,
        );
    }

    pub fn account_paused(&self, account: &str, paused: bool) {
        self.gauge(
            "freshtap_account_paused",
            vec![Label::new("account", account.to_owned())],
            if paused { 1.0 } else { 0.0 },
        );
    }

    pub fn field_dropped(&self, field: &str) {
        self.counter(
            "freshtap_fields_dropped_total",
            vec![Label::new("field", field.to_owned())],
            1,
        );
    }

    pub fn body_repaired(&self, route: &str) {
        self.counter(
            "freshtap_bodies_repaired_total",
            vec![Label::new("route", route.to_owned())],
            1,
        );
    }

    pub fn purged(&self, state: &'static str, count: u64) {
        self.counter(
            "freshtap_purged_total",
            vec![Label::from_static_parts("state", state)],
            count,
        );
    }

    /// `freshtap_queue_rows{state}`.
    pub fn queue_rows(&self, state: &'static str, count: u64) {
        self.gauge(
            "freshtap_queue_rows",
            vec![Label::from_static_parts("state", state)],
            count as f64,
        );
    }

    /// `freshtap_queue_oldest_pending_seconds` (0 when nothing waits).
    pub fn oldest_pending(&self, seconds: f64) {
        self.gauge("freshtap_queue_oldest_pending_seconds", Vec::new(), seconds);
    }

    /// `freshtap_account_unreachable{account}`: every request to it fails the same way.
    pub fn account_unreachable(&self, account: &str, unreachable: bool) {
        self.gauge(
            "freshtap_account_unreachable",
            vec![Label::new("account", account.to_owned())],
            if unreachable { 1.0 } else { 0.0 },
        );
    }

    /// `freshtap_ready`: 1 while this replica's `/readyz` answers 200.
    pub fn ready(&self, ready: bool) {
        self.gauge("freshtap_ready", Vec::new(), if ready { 1.0 } else { 0.0 });
    }
}
