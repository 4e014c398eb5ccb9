//! The application: opens the queue, builds the state, binds the listeners; then serves,
//! spawns the worker, and on a stop request drains (readiness 503 for `server.drain_secs`
//! while still serving), stops accepting, lets deliveries finish, and returns.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::config::Settings;
use crate::http;
use crate::http::serve::{Limits, serve};
use crate::queue::{Queue, QueueError, redact_url};
use crate::state::AppState;
use crate::worker;

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("invalid configuration:\n  - {}", .0.join("\n  - "))]
    Config(Vec<String>),
    #[error("cannot open the queue: {0}")]
    Queue(#[from] QueueError),
    #[error(
        "cannot listen on {addr}: {source}; to use another address set {key} in the \
         configuration file or {}",
        crate::config::env_var(key)
    )]
    Bind {
        addr: SocketAddr,
        key: &'static str,
        source: std::io::Error,
    },
}

/// The relay, built and bound, not yet running.
pub struct Application {
    listener: TcpListener,
    admin_listener: Option<TcpListener>,
    state: AppState,
    workers: worker::Workers,
}

impl Application {
    /// `stop` asks the running app to stop (SIGTERM in `serve`, the test harness in tests).
    pub async fn build(settings: Settings, stop: CancellationToken) -> Result<Self, StartupError> {
        let problems = crate::state::problems(&settings);
        if !problems.is_empty() {
            return Err(StartupError::Config(problems));
        }
        crate::mapping::warm_up();
        let queue = Queue::connect(&settings.queue).await?;
        let bind = settings.server.bind;
        let admin_bind = settings.server.admin_bind;
        let state = AppState::new(settings, queue, stop).map_err(StartupError::Config)?;
        let listener = listen(bind, "server.bind").await?;
        let admin_listener = match admin_bind {
            Some(addr) => Some(listen(addr, "server.admin_bind").await?),
            None => None,
        };
        let workers = worker::build(&state).map_err(|e| StartupError::Config(vec![e]))?;
        Ok(Self {
            listener,
            admin_listener,
            state,
            workers,
        })
    }

    pub fn port(&self) -> u16 {
        self.listener.local_addr().map_or(0, |a| a.port())
    }

    pub fn admin_port(&self) -> Option<u16> {
        self.admin_listener
            .as_ref()
            .and_then(|l| l.local_addr().ok())
            .map(|a| a.port())
    }

    pub fn state(&self) -> AppState {
        self.state.clone()
    }

    /// Serves until a stop is asked for, then drains: readiness 503 for `drain_secs` while
    /// still serving, then in-flight HTTP requests finish, deliveries get
    /// `shutdown_grace_secs`, and it returns.
    pub async fn run_until_stopped(self) -> Result<(), StartupError> {
        let state = self.state;
        let mut workers = self.workers;
        announce(&state, &self.listener, self.admin_listener.as_ref());
        workers.start();
        let shutdown = state.shutdown.clone();
        let limits = limits(&state.settings);
        let separate_admin = self.admin_listener.is_some();
        let main = serve(
            self.listener,
            http::router(state.clone(), !separate_admin),
            limits,
            shutdown.clone(),
        );
        let admin = self.admin_listener.map(|listener| {
            let router = http::admin_router(state.clone());
            tokio::spawn(serve(listener, router, limits, shutdown.clone()))
        });
        let drain = Duration::from_secs(state.settings.server.drain_secs);
        let stopping = state.stopping.clone();
        tokio::spawn(async move {
            stopping.cancelled().await;
            tracing::info!(
                drain_secs = drain.as_secs(),
                "stop requested: /readyz answers 503 while draining"
            );
            tokio::time::sleep(drain).await;
            shutdown.cancel();
        });
        main.await;
        if let Some(admin) = admin {
            let _ = admin.await;
        }
        workers.stop().await;
        tracing::info!("freshtap stopped");
        Ok(())
    }
}

fn limits(settings: &Settings) -> Limits {
    let server = &settings.server;
    Limits {
        header_timeout: Duration::from_secs(server.header_timeout_secs),
        idle_timeout: Duration::from_secs(server.idle_timeout_secs),
        max_connections: server.max_connections,
        grace: Duration::from_secs(server.request_timeout_secs),
    }
}

async fn listen(addr: SocketAddr, key: &'static str) -> Result<TcpListener, StartupError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| StartupError::Bind { addr, key, source })
}

/// The one startup line: where it listens, on what queue, which routes and accounts.
fn announce(state: &AppState, listener: &TcpListener, admin: Option<&TcpListener>) {
    let addr = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    let admin_addr = admin
        .and_then(|l| l.local_addr().ok())
        .map_or_else(|| addr.clone(), |a| a.to_string());
    let accounts: Vec<&str> = state.accounts.names().collect();
    let admin_api = if state.admin.is_some() {
        admin_addr.as_str()
    } else {
        "off"
    };
    tracing::info!(
        addr = %addr,
        queue = state.queue.backend(),
        queue_url = %redact_url(secrecy::ExposeSecret::expose_secret(&state.settings.queue.url)),
        routes = %state.routes.names().join(","),
        accounts = %accounts.join(","),
        admin_api,
        delivery = state.settings.delivery.enabled,
        "freshtap is listening"
    );
}

/// Cancels `token` on SIGTERM or SIGINT.
pub async fn cancel_on_signal(token: CancellationToken) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(error) => {
                    tracing::error!(error = %error, "cannot listen for SIGTERM");
                    let _ = ctrl_c.await;
                    token.cancel();
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    tracing::info!("shutdown requested; draining");
    token.cancel();
}
