//! The application's state: settings, routes, accounts, queue, metrics and the stop signals,
//! shared by every handler and task. It knows no HTTP server and no worker.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::accounts::Accounts;
use crate::admission::{Admission, Bounds};
use crate::clock::now_ms;
use crate::config::Settings;
use crate::credential::Credential;
use crate::metrics::Metrics;
use crate::queue::{Queue, RowState};
use crate::routes::Routes;
use crate::telemetry::Pii;

pub struct Inner {
    pub settings: Settings,
    pub queue: Queue,
    pub metrics: Arc<Metrics>,
    pub routes: Routes,
    pub accounts: Accounts,
    pub admin: Option<Credential>,
    pub pii: Pii,
    /// Cancelled when a stop is asked for (SIGTERM): readiness turns 503 at once, while the
    /// listener keeps serving for `server.drain_secs`.
    pub stopping: CancellationToken,
    /// Cancelled when the listener stops accepting and the worker stops claiming.
    pub shutdown: CancellationToken,
    /// Bounds the webhooks being stored at once and those waiting to be (`server.max_concurrent_requests`,
    /// `max_wait_ms`, `max_waiting_bytes`).
    pub admission: Admission,
}

/// Shared state of one app; cloned into every handler and task. Nothing is global.
#[derive(Clone)]
pub struct AppState(pub Arc<Inner>);

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

/// Everything `serve` would refuse in these settings, without opening a queue: values out of
/// range, missing credentials, templates that do not compile.
pub fn problems(settings: &Settings) -> Vec<String> {
    let mut problems = settings.check();
    if let Err(mut errors) = Routes::compile(settings) {
        problems.append(&mut errors);
    }
    problems
}

impl AppState {
    /// Checks the settings and compiles every route; every problem found when any fails.
    pub fn new(
        settings: Settings,
        queue: Queue,
        stopping: CancellationToken,
    ) -> Result<Self, Vec<String>> {
        let mut problems = settings.check();
        let routes = Routes::compile(&settings).map_err(|mut errors| {
            problems.append(&mut errors);
            std::mem::take(&mut problems)
        })?;
        if !problems.is_empty() {
            return Err(problems);
        }
        let metrics = Arc::new(Metrics::new());
        let accounts = Accounts::new(&settings, queue.clone(), Arc::clone(&metrics));
        let admin = settings.auth.admin_token.as_ref().map(Credential::new);
        let pii = Pii {
            mask: settings.log.mask_pii,
        };
        let admission = Admission::new(Bounds {
            slots: settings.server.max_concurrent_requests,
            waiting_bytes: settings.server.max_waiting_bytes,
            max_wait: Duration::from_millis(settings.server.max_wait_ms),
        });
        Ok(Self(Arc::new(Inner {
            shutdown: CancellationToken::new(),
            stopping,
            settings,
            queue,
            metrics,
            routes,
            accounts,
            admin,
            pii,
            admission,
        })))
    }

    /// True once the listener stops accepting: intake answers 503 from then on.
    pub fn shutting_down(&self) -> bool {
        self.shutdown.is_cancelled()
    }

    /// True once a stop is asked for: readiness is 503 (the load balancer drains this replica).
    pub fn stopping(&self) -> bool {
        self.stopping.is_cancelled()
    }

    /// Whether this replica can accept webhooks now, else why not: stopping, or a queue that
    /// does not answer or cannot commit. A held CleverTap account does not count (it would
    /// take every replica out of the load balancer and refuse Freshsales).
    pub async fn readiness(&self) -> Result<(), String> {
        let ready = if self.stopping() {
            Err("shutting down".to_owned())
        } else {
            match tokio::time::timeout(READY_TIMEOUT, self.queue.ping()).await {
                Ok(Ok(())) => self.queue.fault().map_or(Ok(()), Err),
                Ok(Err(error)) => Err(format!("queue unreachable: {error}")),
                Err(_) => Err("queue timed out".to_owned()),
            }
        };
        self.metrics.ready(ready.is_ok());
        ready
    }

    /// Refreshes the queue and account gauges from the queue (a scrape, or every few seconds).
    pub async fn refresh_gauges(&self) {
        match self.queue.stats().await {
            Ok(stats) => {
                for state in RowState::ALL {
                    self.metrics.queue_rows(state.as_str(), stats.count(state));
                }
                let oldest = stats
                    .oldest_pending_ms
                    .map_or(0.0, |t| ((now_ms() - t).max(0) as f64) / 1000.0);
                self.metrics.oldest_pending(oldest);
            }
            Err(error) => tracing::warn!(error = %error, "queue gauges not refreshed"),
        }
        if let Ok(holds) = self.accounts.holds().await {
            self.accounts.refresh_gauges(&holds);
        }
    }
}

/// `/readyz` gives up on the queue after this.
const READY_TIMEOUT: Duration = Duration::from_secs(2);
