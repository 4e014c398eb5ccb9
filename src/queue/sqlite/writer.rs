//! The SQLite writer thread: it takes the first job, drains whatever else has queued, runs
//! them in one transaction (a savepoint each) and commits once; a failed commit marks the
//! queue's health, and a queue file gone from under the process is a fault for good.

use std::sync::mpsc;

use rusqlite::Connection;

use super::file;
use crate::queue::health::Health;

/// Jobs per group commit at most, so one commit never grows without bound.
const MAX_GROUP: usize = 1024;

pub(super) type Finish = Box<dyn FnOnce(Result<(), String>) + Send>;
/// A job runs on the group's connection, or not at all (`None`: the transaction could not
/// start); either way its finish answers the caller once the group's fate is known.
pub(super) type Job = Box<dyn FnOnce(Option<&Connection>) -> Finish + Send>;

pub(super) fn in_savepoint<R>(
    conn: &Connection,
    f: impl FnOnce(&Connection) -> rusqlite::Result<R>,
) -> rusqlite::Result<R> {
    // Cached statements: every job opens and releases one, so parsing them each time counts.
    conn.prepare_cached("SAVEPOINT job")?.execute([])?;
    match f(conn) {
        Ok(value) => {
            conn.prepare_cached("RELEASE job")?.execute([])?;
            Ok(value)
        }
        Err(error) => {
            // SQLite may already have rolled the whole transaction back (disk full, I/O error);
            // then there is no savepoint left and the commit below reports the failure.
            if !conn.is_autocommit() {
                let _ = conn.execute_batch("ROLLBACK TO job; RELEASE job");
            }
            Err(error)
        }
    }
}

/// The writer thread: group commit until every sender is gone.
pub(super) fn writer(
    conn: &Connection,
    jobs: &mpsc::Receiver<Job>,
    health: &Health,
    mut file: file::Watch,
) {
    while let Ok(first) = jobs.recv() {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match jobs.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        let (finishes, commit): (Vec<Finish>, _) = match conn.execute_batch("BEGIN IMMEDIATE") {
            Ok(()) => {
                let finishes = group.into_iter().map(|job| job(Some(conn))).collect();
                (finishes, commit(conn))
            }
            Err(error) => {
                let finishes = group.into_iter().map(|job| job(None)).collect();
                (
                    finishes,
                    Err(format!("a transaction cannot start: {error}")),
                )
            }
        };
        match &commit {
            Ok(()) => health.ok(),
            Err(error) => health.fail(&format!("queue commits fail: {error}")),
        }
        if let Some(reason) = file.gone() {
            health.fail_for_good(&reason);
        }
        for finish in finishes {
            finish(commit.clone());
        }
    }
}

/// Commits the group; when SQLite rolled the transaction back on its own (it does on
/// SQLITE_FULL and some I/O errors) nothing of the group is stored, and that is the answer.
fn commit(conn: &Connection) -> Result<(), String> {
    if conn.is_autocommit() {
        return Err("the transaction was rolled back by SQLite (disk full or I/O error)".into());
    }
    conn.execute_batch("COMMIT").map_err(|error| {
        if !conn.is_autocommit() {
            let _ = conn.execute_batch("ROLLBACK");
        }
        error.to_string()
    })
}
