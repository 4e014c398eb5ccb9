//! Opening the PostgreSQL queue: session settings, TLS, the pool, migrations, and the two
//! connections of every replica that carry wake-ups (the LISTEN one and the NOTIFY sender).

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio::sync::{Notify, oneshot, watch};
use tokio_postgres::Config;
use tokio_util::sync::CancellationToken;

use super::setup::{listen, migrate};
use crate::queue::{QueueError, redact_url};

/// Server-side guards on every session: a lock wait (another replica's stuck transaction) ends
/// in an error instead of hanging, and a session left idle inside a transaction (a replica
/// stopped or cut off mid-transaction) is ended by the server, releasing its row and advisory
/// locks for the other replicas.
const SESSION_OPTIONS: &str = "-c lock_timeout=5000 -c idle_in_transaction_session_timeout=15000";

pub(super) struct Parts {
    pub pool: Pool,
    pub notify: Arc<Notify>,
    pub stop: CancellationToken,
}

pub(super) async fn open(
    url: &str,
    pool_size: u32,
    tls_ca_file: Option<&std::path::Path>,
    wake: watch::Sender<u64>,
) -> Result<Parts, QueueError> {
    let mut config = session_config(url)?;
    let tls = super::tls::connector(&mut config, tls_ca_file)?;
    let manager = Manager::from_config(
        config.clone(),
        tls.clone(),
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    let pool = Pool::builder(manager)
        .max_size(usize::try_from(pool_size.max(1)).unwrap_or(1))
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(Duration::from_secs(10)))
        .create_timeout(Some(Duration::from_secs(10)))
        .build()
        .map_err(|error| QueueError::PoolBuild(error.to_string()))?;
    migrate(&pool).await?;

    let stop = CancellationToken::new();
    let (ready_tx, ready_rx) = oneshot::channel();
    tokio::spawn(listen(config, tls, wake, stop.clone(), ready_tx));
    ready_rx.await.map_err(|_| QueueError::Closed)??;
    let notify = Arc::new(Notify::new());
    tokio::spawn(notifier(pool.clone(), Arc::clone(&notify), stop.clone()));
    Ok(Parts { pool, notify, stop })
}

fn session_config(url: &str) -> Result<Config, QueueError> {
    let mut config = Config::from_str(url).map_err(|error| QueueError::PostgresUrl {
        url: redact_url(url),
        reason: error.to_string(),
    })?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(Duration::from_secs(5));
    }
    if config.get_application_name().is_none() {
        config.application_name("freshtap");
    }
    // A dead peer is noticed by the kernel (keepalives for idle connections, the user
    // timeout for unacknowledged data) instead of after hours.
    config
        .keepalives(true)
        .keepalives_idle(Duration::from_secs(30));
    if config.get_tcp_user_timeout().is_none() {
        config.tcp_user_timeout(Duration::from_secs(30));
    }
    let options = match config.get_options() {
        Some(given) => format!("{given} {SESSION_OPTIONS}"),
        None => SESSION_OPTIONS.to_owned(),
    };
    config.options(&options);
    Ok(config)
}

/// Sends `NOTIFY freshtap_work` for the wakes of this replica: any number of wakes while one
/// NOTIFY is on its way cost one more, so a burst of commits is a few notifications, not one
/// per webhook. A failed NOTIFY is only logged: other replicas poll every second anyway.
async fn notifier(pool: Pool, wakes: Arc<Notify>, stop: CancellationToken) {
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = wakes.notified() => {}
        }
        let sent = async {
            let client = pool.get().await?;
            super::ops::notify(&client).await
        };
        if let Err(error) = sent.await {
            tracing::debug!(error = %error, "NOTIFY not sent; other replicas find the work by polling");
        }
    }
}
