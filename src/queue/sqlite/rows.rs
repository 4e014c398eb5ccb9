//! How the SQLite rows hold what the queue model names: dead letters of a row, the active
//! order keys of an unfinished row, and delivered record indexes as text. Shared by the
//! delivery path (`ops.rs`) and the admin statements (`admin.rs`).

use rusqlite::{Connection, params};

use crate::queue::NewDeadLetter;

pub(super) fn insert_dead_letters(
    c: &Connection,
    row_id: i64,
    dead: &[NewDeadLetter],
    attempts: u32,
    now: i64,
) -> rusqlite::Result<()> {
    let mut insert = c.prepare_cached(
        "INSERT INTO dead_letters (row_id, record_index, code, reason, attempts, dead_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    for letter in dead {
        insert.execute(params![
            row_id,
            letter.record_index,
            letter.code.as_text(),
            letter.reason,
            attempts,
            now
        ])?;
    }
    Ok(())
}

pub(super) fn activate_keys(c: &Connection, row_id: i64, keys: &str) -> rusqlite::Result<()> {
    let mut insert =
        c.prepare_cached("INSERT OR IGNORE INTO active_keys (row_id, key) VALUES (?1, ?2)")?;
    for key in keys.split('\n').filter(|k| !k.is_empty()) {
        insert.execute(params![row_id, key])?;
    }
    Ok(())
}

pub(super) fn parse_indexes(text: &str) -> Vec<u32> {
    text.split(',').filter_map(|s| s.parse().ok()).collect()
}

pub(super) fn join_indexes(indexes: &[u32]) -> String {
    indexes
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(",")
}
