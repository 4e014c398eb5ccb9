//! PostgreSQL connection-level work: migrations at start, and the LISTEN connection that wakes
//! this replica's workers when any replica commits work.

use std::time::Duration;

use deadpool_postgres::Pool;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_postgres::{AsyncMessage, Config};
use tokio_postgres_rustls::MakeRustlsConnect;
use tokio_util::sync::CancellationToken;

use super::ops;
use crate::clock::duration_ms;
use crate::queue::QueueError;

/// Migrations in order; each is applied once, under an advisory lock, and recorded.
const MIGRATIONS: &[(i32, &str)] = &[
    (
        1,
        include_str!("../../../migrations/postgres/0001_init.sql"),
    ),
    (
        2,
        include_str!("../../../migrations/postgres/0002_holds.sql"),
    ),
    (
        3,
        include_str!("../../../migrations/postgres/0003_activity.sql"),
    ),
    (
        4,
        include_str!("../../../migrations/postgres/0004_privacy.sql"),
    ),
    (
        5,
        include_str!("../../../migrations/postgres/0005_propagation.sql"),
    ),
    (
        6,
        include_str!("../../../migrations/postgres/0006_claim_indexes.sql"),
    ),
];
/// Advisory lock class of the migration transaction (replicas starting together); the second
/// key is the schema, since advisory locks are database-wide.
const MIGRATION_LOCK: i32 = 0x0F7A_0000;
/// How often the listener proves its connection alive.
const HEARTBEAT: Duration = Duration::from_secs(30);

pub(super) fn bump(wake: &watch::Sender<u64>) {
    wake.send_modify(|generation| *generation = generation.wrapping_add(1));
}

/// Applies the missing migrations in one transaction under an advisory lock (per schema), so replicas
/// starting at once apply each migration exactly once and never race on `CREATE … IF NOT EXISTS`.
pub(super) async fn migrate(pool: &Pool) -> Result<(), QueueError> {
    let mut client = pool.get().await?;
    let t = client.transaction().await?;
    // A replica starting during another's (possibly long) migration waits for it, whatever the
    // sessions' lock_timeout.
    t.batch_execute("SET LOCAL lock_timeout = 0").await?;
    t.execute(
        "SELECT pg_advisory_xact_lock($1, hashtext(coalesce(current_schema(), '')))",
        &[&MIGRATION_LOCK],
    )
    .await?;
    t.batch_execute("CREATE TABLE IF NOT EXISTS freshtap_migrations (version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())")
        .await?;
    for (version, sql) in MIGRATIONS {
        let done = t
            .query_opt(
                "SELECT 1 FROM freshtap_migrations WHERE version = $1",
                &[version],
            )
            .await?;
        if done.is_none() {
            t.batch_execute(sql).await?;
            t.execute(
                "INSERT INTO freshtap_migrations (version) VALUES ($1)",
                &[version],
            )
            .await?;
            tracing::info!(version, "postgres queue migration applied");
        }
    }
    t.commit().await?;
    Ok(())
}

/// Keeps a LISTEN connection open, reconnecting with backoff, until `stop` fires. The first
/// outcome is reported on `ready`, so `connect` fails if the listener cannot start at all.
pub(super) async fn listen(
    config: Config,
    tls: MakeRustlsConnect,
    wake: watch::Sender<u64>,
    stop: CancellationToken,
    ready: oneshot::Sender<Result<(), QueueError>>,
) {
    let mut ready = Some(ready);
    let mut backoff = Duration::from_millis(100);
    loop {
        let outcome = tokio::select! {
            () = stop.cancelled() => return,
            outcome = listen_once(&config, &tls, &wake, &mut ready) => outcome,
        };
        if let Some(ready) = ready.take() {
            let _ = ready.send(outcome.and(Err(QueueError::Closed)));
            return;
        }
        if let Err(error) = outcome {
            tracing::warn!(error = %error, retry_in_ms = duration_ms(backoff), "postgres listener lost; reconnecting");
        }
        if stop
            .run_until_cancelled(tokio::time::sleep(backoff))
            .await
            .is_none()
        {
            return;
        }
        backoff = (backoff * 2).min(Duration::from_secs(10));
    }
}

async fn listen_once(
    config: &Config,
    tls: &MakeRustlsConnect,
    wake: &watch::Sender<u64>,
    ready: &mut Option<oneshot::Sender<Result<(), QueueError>>>,
) -> Result<(), QueueError> {
    let (client, mut connection) = config.connect(tls.clone()).await?;
    let (notes, mut received) = mpsc::unbounded_channel::<String>();
    // The connection must be polled for the client to work; it also yields the notifications.
    let driver = tokio::spawn(async move {
        loop {
            match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                Some(Ok(AsyncMessage::Notification(note))) => {
                    if notes.send(note.payload().to_owned()).is_err() {
                        return Ok(());
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(error)) => return Err(error),
                None => return Ok(()),
            }
        }
    });
    let schema: Option<String> = client
        .query_one("SELECT current_schema()", &[])
        .await?
        .try_get(0)?;
    let schema = schema.unwrap_or_default();
    client
        .batch_execute(&format!("LISTEN {}", ops::CHANNEL))
        .await?;
    // Whatever was committed while nobody listened is waiting: look now.
    bump(wake);
    if let Some(ready) = ready.take() {
        let _ = ready.send(Ok(()));
    }
    let mut heartbeat = tokio::time::interval(HEARTBEAT);
    heartbeat.tick().await;
    loop {
        tokio::select! {
            note = received.recv() => match note {
                Some(payload) if payload == schema => bump(wake),
                Some(_) => {}
                None => break,
            },
            _ = heartbeat.tick() => {
                tokio::time::timeout(Duration::from_secs(10), client.simple_query("SELECT 1"))
                    .await
                    .map_err(|_| QueueError::Closed)??;
            }
        }
    }
    drop(client);
    match driver.await {
        Ok(Err(error)) => Err(error.into()),
        _ => Err(QueueError::Closed),
    }
}
