//! Opening the SQLite file: directory, pragmas, a quick integrity check, then the migrations.

use std::path::Path;
use std::time::Duration;

use rusqlite::Connection;

use crate::queue::QueueError;

/// Schema versions in order, recorded in `PRAGMA user_version`. Every script is idempotent, so
/// a file from before versioning (version 0) takes them all.
const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../../../migrations/sqlite/0001_init.sql")),
    (2, include_str!("../../../migrations/sqlite/0002_holds.sql")),
    (
        3,
        include_str!("../../../migrations/sqlite/0003_activity.sql"),
    ),
    (
        4,
        include_str!("../../../migrations/sqlite/0004_privacy.sql"),
    ),
    (
        5,
        include_str!("../../../migrations/sqlite/0005_propagation.sql"),
    ),
    (
        6,
        include_str!("../../../migrations/sqlite/0006_bodies.sql"),
    ),
];

/// Page size of a new queue file.
const PAGE_SIZE: i64 = 2048;

pub(super) fn connection(path: &str) -> Result<Connection, QueueError> {
    if let Some(dir) = Path::new(path).parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir)?;
    }
    let conn = Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(10))?;
    let damaged = |detail: String| QueueError::Corrupt {
        path: path.to_owned(),
        detail,
    };
    // 2 KiB pages for a new file (an existing one keeps its own; WAL fixes it): every commit
    // writes each page it dirtied to the WAL whole, and the two random-key indexes (dedup hash,
    // active identities) dirty about one page per row, so half-size pages halve those bytes.
    // Measured: 10–20 % less CPU per stored webhook than 4 KiB (BENCHMARKS.md).
    conn.pragma_update(None, "page_size", PAGE_SIZE)?;
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(|e| damaged(e.to_string()))?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // Temporary storage in memory. Every queue job runs in its own savepoint (`writer.rs`),
    // and SQLite journals each page a savepoint first changes; past 64 KiB (a claim or a
    // completion of a few hundred rows, an upload of 1000 records) that journal went to a
    // temporary file, created, written and deleted for each job: a fifth of the writer's time
    // end to end (BENCHMARKS.md). It lives only while its job runs. No statement here sorts
    // into a temporary b-tree (`activity.rs` counts per bucket for that reason).
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    let verdict: String = conn
        .query_row("PRAGMA quick_check(1)", [], |r| r.get(0))
        .map_err(|e| damaged(e.to_string()))?;
    if verdict != "ok" {
        return Err(damaged(verdict));
    }
    migrate(&conn)?;
    Ok(conn)
}

fn migrate(conn: &Connection) -> Result<(), QueueError> {
    let current: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    for (version, sql) in MIGRATIONS {
        if *version > current {
            conn.execute_batch(&format!(
                "BEGIN IMMEDIATE; {sql}\nPRAGMA user_version = {version}; COMMIT;"
            ))?;
            tracing::info!(version, "sqlite queue migration applied");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use rusqlite::{Connection, params};

    use super::MIGRATIONS;
    use crate::queue::health::Health;
    use crate::queue::sqlite::SqliteQueue;
    use crate::queue::{ClaimLimit, DeadLetterFilter};

    /// A queue file written before bodies had their own table (schema version 5) opens, and
    /// what it held is still delivered byte for byte: a pending row's body by a claim, an
    /// invalid body's dead letter with its body.
    #[tokio::test]
    async fn a_version_5_file_keeps_its_bodies() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("queue.db");
        let path = path.to_str().unwrap();
        let pending = br#"{"contact_email":"ada@example.com"}"#;
        let invalid = b"{not json";
        {
            let old = Connection::open(path).unwrap();
            old.pragma_update(None, "journal_mode", "WAL").unwrap();
            for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v <= 5) {
                old.execute_batch(&format!("{sql}\nPRAGMA user_version = {version};"))
                    .unwrap();
            }
            let insert = "INSERT INTO webhooks (route, account, content_type, body, body_hash, request_id, \
                 received_at, state, due_at, deadline_at, order_keys) \
                 VALUES ('contacts', 'main', ?1, ?2, X'01', ?3, 1, ?4, 1, 9000000000000, '')";
            old.execute(insert, params!["json", &pending[..], "r1", "pending"])
                .unwrap();
            old.execute(insert, params!["json", &invalid[..], "r2", "dead"])
                .unwrap();
            old.execute(
                "INSERT INTO dead_letters (row_id, record_index, code, reason, attempts, dead_at) \
                 VALUES (2, NULL, 'invalid_body', 'not JSON', 0, 1)",
                [],
            )
            .unwrap();
        }
        let queue = SqliteQueue::open(path, Health::default()).await.unwrap();
        let claimed = queue
            .claim("main".into(), ClaimLimit::from(10), Duration::from_secs(60))
            .await
            .unwrap();
        assert_eq!(claimed.len(), 1);
        assert_eq!(claimed[0].body, pending);
        let letters = queue
            .dead_letters(DeadLetterFilter {
                route: None,
                code: None,
                limit: 10,
                after: None,
            })
            .await
            .unwrap();
        assert_eq!(letters.len(), 1);
        assert_eq!(letters[0].body, invalid);
    }
}
