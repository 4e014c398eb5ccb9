//! Application: wires settings, queue, routes, accounts, HTTP and worker; binds its listeners.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::clevertap::client::Client;
use crate::config::Settings;
use crate::http;
use crate::http::auth::Credential;
use crate::mapping::{Mode, RouteMapping};
use crate::metrics::Metrics;
use crate::queue::{Queue, QueueError};
use crate::telemetry::Pii;
use crate::worker::{self, pause::Pauses};

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("invalid configuration:\n  - {}", .0.join("\n  - "))]
    Config(Vec<String>),
    #[error("cannot open the queue: {0}")]
    Queue(#[from] QueueError),
    #[error("cannot bind {0}: {1}")]
    Bind(std::net::SocketAddr, std::io::Error),
    #[error("server error: {0}")]
    Serve(std::io::Error),
}

/// A configured route: who may call it, which account it feeds, how its bodies render.
pub struct Route {
    pub name: String,
    pub account: String,
    pub tokens: Vec<Credential>,
    pub mapping: Arc<RouteMapping>,
}

/// A configured CleverTap account.
pub struct Account {
    pub name: String,
    pub account_id: String,
    pub passcode: Credential,
    pub client: Client,
    /// The synthetic route of the drop-in `/1/upload` for this account.
    pub upload_route: Route,
}

pub struct Inner {
    pub settings: Settings,
    pub queue: Queue,
    pub metrics: Metrics,
    pub routes: HashMap<String, Route>,
    pub accounts: HashMap<String, Account>,
    pub admin: Option<Credential>,
    pub pauses: Pauses,
    pub pii: Pii,
    pub shutdown: CancellationToken,
    /// Bounds the webhooks being stored at once (`server.max_concurrent_requests`).
    pub intake_slots: Arc<tokio::sync::Semaphore>,
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

impl AppState {
    /// Checks the settings, compiles every route and builds every account's client.
    pub fn new(
        settings: Settings,
        queue: Queue,
        shutdown: CancellationToken,
    ) -> Result<Self, StartupError> {
        let mut problems = settings.check();
        crate::mapping::warm_up();
        let mapping_settings = settings.mapping_settings();
        let mut routes = HashMap::new();
        for (name, route) in &settings.routes {
            let template = match &route.template {
                Some(path) if route.mode != Mode::Passthrough => {
                    match crate::templates::source(path) {
                        Ok(text) => Some((path.clone(), text)),
                        Err(error) => {
                            problems.push(format!("routes.{name}.template: {error}"));
                            continue;
                        }
                    }
                }
                _ => None,
            };
            let compiled = RouteMapping::compile(
                name,
                route.mode,
                template.as_ref().map(|(p, t)| (p.as_str(), t.as_str())),
                &route.alias_table(),
                route.date_format.as_deref(),
                &mapping_settings,
            );
            let mapping = match compiled {
                Ok(mapping) => Arc::new(mapping),
                Err(errors) => {
                    problems.extend(errors.iter().map(|e| format!("routes.{name}: {e}")));
                    continue;
                }
            };
            let tokens = route
                .token
                .as_ref()
                .or(settings.auth.token.as_ref())
                .map(|t| t.list().into_iter().map(Credential::new).collect())
                .unwrap_or_default();
            routes.insert(
                name.clone(),
                Route {
                    name: name.clone(),
                    account: route.account.clone(),
                    tokens,
                    mapping,
                },
            );
        }
        let mut accounts = HashMap::new();
        let timeout = Duration::from_secs(settings.delivery.request_timeout_secs);
        for (name, account) in &settings.clevertap.accounts {
            let (Some(account_id), Some(passcode)) = (&account.account_id, &account.passcode)
            else {
                continue;
            };
            let client = match Client::new(name, account, timeout) {
                Ok(client) => client,
                Err(error) => {
                    problems.push(error.to_string());
                    continue;
                }
            };
            let passthrough = RouteMapping::compile(
                name,
                Mode::Passthrough,
                None,
                &std::collections::BTreeMap::new(),
                None,
                &mapping_settings,
            )
            .map_err(|errors| {
                StartupError::Config(errors.iter().map(ToString::to_string).collect())
            })?;
            let upload_route = Route {
                name: format!("_upload:{name}"),
                account: name.clone(),
                tokens: Vec::new(),
                mapping: Arc::new(passthrough),
            };
            accounts.insert(
                name.clone(),
                Account {
                    name: name.clone(),
                    account_id: account_id.clone(),
                    passcode: Credential::new(passcode),
                    client,
                    upload_route,
                },
            );
        }
        if !problems.is_empty() {
            return Err(StartupError::Config(problems));
        }
        let admin = settings.auth.admin_token.as_ref().map(Credential::new);
        let pii = Pii {
            mask: settings.log.mask_pii,
        };
        let intake_slots = Arc::new(tokio::sync::Semaphore::new(
            settings.server.max_concurrent_requests.max(1),
        ));
        Ok(Self(Arc::new(Inner {
            settings,
            queue,
            metrics: Metrics::new(),
            routes,
            accounts,
            admin,
            pauses: Pauses::default(),
            pii,
            shutdown,
            intake_slots,
        })))
    }

    pub fn shutting_down(&self) -> bool {
        self.shutdown.is_cancelled()
    }
}

/// The relay, built and bound, not yet running.
pub struct Application {
    listener: TcpListener,
    admin_listener: Option<TcpListener>,
    state: AppState,
}

impl Application {
    pub async fn build(
        settings: Settings,
        shutdown: CancellationToken,
    ) -> Result<Self, StartupError> {
        let problems = settings.check();
        if !problems.is_empty() {
            return Err(StartupError::Config(problems));
        }
        let queue = Queue::connect(&settings.queue).await?;
        let bind = settings.server.bind;
        let admin_bind = settings.server.admin_bind;
        let state = AppState::new(settings, queue, shutdown)?;
        let listener = TcpListener::bind(bind)
            .await
            .map_err(|e| StartupError::Bind(bind, e))?;
        let admin_listener = match admin_bind {
            Some(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .map_err(|e| StartupError::Bind(addr, e))?,
            ),
            None => None,
        };
        Ok(Self {
            listener,
            admin_listener,
            state,
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

    /// Serves until the shutdown token is cancelled, then drains: in-flight HTTP requests
    /// finish, deliveries get `shutdown_grace_secs`, leases are released.
    pub async fn run_until_stopped(self) -> Result<(), StartupError> {
        let state = self.state;
        let token = state.shutdown.clone();
        let workers = worker::spawn(state.clone());
        let separate_admin = self.admin_listener.is_some();
        let main_router = http::router(state.clone(), !separate_admin);
        let port = self.listener.local_addr().map_or(0, |a| a.port());
        let main = axum::serve(self.listener, main_router)
            .with_graceful_shutdown(token.clone().cancelled_owned());
        let admin = self.admin_listener.map(|listener| {
            let router = http::admin_router(state.clone());
            tokio::spawn(
                axum::serve(listener, router)
                    .with_graceful_shutdown(token.clone().cancelled_owned())
                    .into_future(),
            )
        });
        tracing::info!(port, "freshtap is listening");
        main.await.map_err(StartupError::Serve)?;
        if let Some(admin) = admin {
            let _ = admin.await;
        }
        workers.stop().await;
        tracing::info!("freshtap stopped");
        Ok(())
    }
}
