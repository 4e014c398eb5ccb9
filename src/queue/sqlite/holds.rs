//! SQLite statements of account holds: hold, lift (pushing age deadlines back once), probes.

use rusqlite::{Connection, OptionalExtension, params};

use crate::queue::{Hold, HoldKind, Lifted};

pub(super) fn all(c: &Connection) -> rusqlite::Result<Vec<Hold>> {
    let mut stmt = c.prepare_cached(
        "SELECT account, kind, reason, since, probe_at, probes FROM account_holds ORDER BY account, kind",
    )?;
    let rows = stmt.query_map([], |r| {
        let kind: String = r.get(1)?;
        Ok((kind, r.get(0)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?))
    })?;
    let mut holds = Vec::new();
    for row in rows {
        let (kind, account, reason, since_ms, probe_at_ms, probes) = row?;
        if let Some(kind) = HoldKind::parse(&kind) {
            holds.push(Hold {
                account,
                kind,
                reason,
                since_ms,
                probe_at_ms,
                probes,
            });
        }
    }
    Ok(holds)
}

/// Holds `account` for `kind`; false when it already was (its first reason and time stay).
pub(super) fn hold(
    c: &Connection,
    account: &str,
    kind: HoldKind,
    reason: &str,
    now: i64,
    probe_at: Option<i64>,
) -> rusqlite::Result<bool> {
    let period: Option<i64> = c
        .prepare_cached("SELECT min(period_since) FROM account_holds WHERE account = ?1")?
        .query_row([account], |r| r.get(0))?;
    let inserted = c
        .prepare_cached(
            "INSERT OR IGNORE INTO account_holds (account, kind, reason, since, period_since, probe_at, probes) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0)",
        )?
        .execute(params![
            account,
            kind.as_str(),
            reason,
            now,
            period.unwrap_or(now).min(now),
            probe_at
        ])?;
    Ok(inserted > 0)
}

/// Lifts `kinds`; when no hold is left the account's unfinished rows get the held time back
/// on their age deadline, exactly once (this transaction is the only one that sees the last
/// hold go).
pub(super) fn lift(
    c: &Connection,
    account: &str,
    kinds: &[HoldKind],
    now: i64,
) -> rusqlite::Result<Lifted> {
    let mut lifted = Lifted::default();
    let mut period: Option<i64> = None;
    for kind in kinds {
        let gone: Option<i64> = c
            .prepare_cached(
                "DELETE FROM account_holds WHERE account = ?1 AND kind = ?2 RETURNING period_since",
            )?
            .query_row(params![account, kind.as_str()], |r| r.get(0))
            .optional()?;
        if let Some(since) = gone {
            lifted.kinds.push(*kind);
            period = Some(period.map_or(since, |p: i64| p.min(since)));
        }
    }
    let Some(period) = period else {
        return Ok(lifted);
    };
    let left: i64 = c
        .prepare_cached("SELECT count(*) FROM account_holds WHERE account = ?1")?
        .query_row([account], |r| r.get(0))?;
    if left > 0 {
        // The held period goes on under the remaining holds, from when it began.
        c.prepare_cached(
            "UPDATE account_holds SET period_since = min(period_since, ?2) WHERE account = ?1",
        )?
        .execute(params![account, period])?;
        return Ok(lifted);
    }
    let held_ms = (now - period).max(0);
    c.prepare_cached(
        "UPDATE webhooks SET deadline_at = deadline_at + ?2 WHERE account = ?1 AND state IN ('pending', 'leased')",
    )?
    .execute(params![account, held_ms])?;
    lifted.resumed_after = Some(crate::clock::ms_duration(held_ms));
    Ok(lifted)
}

/// Takes the next probe of `account`'s `kind` hold for this caller when it is due: true once
/// per due probe, whichever replica asks first.
pub(super) fn take_probe(
    c: &Connection,
    account: &str,
    kind: HoldKind,
    now: i64,
    until: i64,
) -> rusqlite::Result<bool> {
    let taken = c
        .prepare_cached(
            "UPDATE account_holds SET probe_at = ?4 WHERE account = ?1 AND kind = ?2 \
             AND probe_at IS NOT NULL AND probe_at <= ?3",
        )?
        .execute(params![account, kind.as_str(), now, until])?;
    Ok(taken > 0)
}

pub(super) fn probe_failed(
    c: &Connection,
    account: &str,
    kind: HoldKind,
    reason: &str,
    next_probe_at: i64,
) -> rusqlite::Result<()> {
    c.prepare_cached(
        "UPDATE account_holds SET probe_at = ?3, probes = probes + 1, reason = ?4 \
         WHERE account = ?1 AND kind = ?2",
    )?
    .execute(params![account, kind.as_str(), next_probe_at, reason])?;
    Ok(())
}

pub(super) fn reschedule_probe(
    c: &Connection,
    account: &str,
    kind: HoldKind,
    at: i64,
) -> rusqlite::Result<()> {
    c.prepare_cached("UPDATE account_holds SET probe_at = ?3 WHERE account = ?1 AND kind = ?2")?
        .execute(params![account, kind.as_str(), at])?;
    Ok(())
}
