//! PostgreSQL statements of account holds: hold, lift (pushing age deadlines back once), probes.
//! Changes to one account's holds are serialised by its advisory lock, so two replicas lifting
//! at once extend the deadlines once.

use deadpool_postgres::Transaction;

use super::ops::{execute, query, query_one, query_opt, to_u32};
use crate::queue::{Hold, HoldKind, Lifted, QueueError};

const HOLD_LOCK: i32 = 0x0F7A_0003;
const ACCOUNT_LOCK: &str =
    "SELECT pg_advisory_xact_lock($1, hashtext(coalesce(current_schema(), '') || '/' || $2))";

async fn lock(t: &Transaction<'_>, account: &str) -> Result<(), QueueError> {
    query(t, ACCOUNT_LOCK, &[&HOLD_LOCK, &account]).await?;
    Ok(())
}

pub(super) async fn all(t: &Transaction<'_>) -> Result<Vec<Hold>, QueueError> {
    let rows = query(
        t,
        "SELECT account, kind, reason, since, probe_at, probes FROM account_holds ORDER BY account, kind",
        &[],
    )
    .await?;
    let mut holds = Vec::with_capacity(rows.len());
    for r in rows {
        let Some(kind) = HoldKind::parse(r.try_get(1)?) else {
            continue;
        };
        holds.push(Hold {
            account: r.try_get(0)?,
            kind,
            reason: r.try_get(2)?,
            since_ms: r.try_get(3)?,
            probe_at_ms: r.try_get(4)?,
            probes: to_u32(r.try_get(5)?),
        });
    }
    Ok(holds)
}

/// Holds `account` for `kind`; false when it already was (its first reason and time stay).
pub(super) async fn hold(
    t: &Transaction<'_>,
    account: &str,
    kind: HoldKind,
    reason: &str,
    now: i64,
    probe_at: Option<i64>,
) -> Result<bool, QueueError> {
    lock(t, account).await?;
    let inserted = execute(
        t,
        "INSERT INTO account_holds (account, kind, reason, since, period_since, probe_at, probes) \
         SELECT $1, $2, $3, $4, least($4, (SELECT min(period_since) FROM account_holds WHERE account = $1)), $5, 0 \
         ON CONFLICT (account, kind) DO NOTHING",
        &[&account, &kind.as_str(), &reason, &now, &probe_at],
    )
    .await?;
    Ok(inserted > 0)
}

/// Lifts `kinds`; when no hold is left the account's unfinished rows get the held time back
/// on their age deadline, exactly once.
pub(super) async fn lift(
    t: &Transaction<'_>,
    account: &str,
    kinds: &[HoldKind],
    now: i64,
) -> Result<Lifted, QueueError> {
    lock(t, account).await?;
    let names: Vec<&str> = kinds.iter().map(|k| k.as_str()).collect();
    let gone = query(
        t,
        "DELETE FROM account_holds WHERE account = $1 AND kind = ANY($2) RETURNING kind, period_since",
        &[&account, &names],
    )
    .await?;
    let mut lifted = Lifted::default();
    let mut period: Option<i64> = None;
    for r in &gone {
        if let Some(kind) = HoldKind::parse(r.try_get(0)?) {
            lifted.kinds.push(kind);
        }
        let since: i64 = r.try_get(1)?;
        period = Some(period.map_or(since, |p| p.min(since)));
    }
    lifted.kinds.sort_unstable();
    let Some(period) = period else {
        return Ok(lifted);
    };
    let left: i64 = query_one(
        t,
        "SELECT count(*) FROM account_holds WHERE account = $1",
        &[&account],
    )
    .await?
    .try_get(0)?;
    if left > 0 {
        // The held period goes on under the remaining holds, from when it began.
        execute(
            t,
            "UPDATE account_holds SET period_since = least(period_since, $2) WHERE account = $1",
            &[&account, &period],
        )
        .await?;
        return Ok(lifted);
    }
    let held_ms = (now - period).max(0);
    execute(
        t,
        "UPDATE webhooks SET deadline_at = deadline_at + $2 WHERE account = $1 AND state IN ('pending', 'leased')",
        &[&account, &held_ms],
    )
    .await?;
    lifted.resumed_after = Some(crate::clock::ms_duration(held_ms));
    Ok(lifted)
}

/// Takes the next probe of `account`'s `kind` hold when it is due: true once per due probe,
/// whichever replica asks first.
pub(super) async fn take_probe(
    t: &Transaction<'_>,
    account: &str,
    kind: HoldKind,
    now: i64,
    until: i64,
) -> Result<bool, QueueError> {
    let taken = query_opt(
        t,
        "UPDATE account_holds SET probe_at = $4 WHERE account = $1 AND kind = $2 \
         AND probe_at IS NOT NULL AND probe_at <= $3 RETURNING 1",
        &[&account, &kind.as_str(), &now, &until],
    )
    .await?;
    Ok(taken.is_some())
}

pub(super) async fn probe_failed(
    t: &Transaction<'_>,
    account: &str,
    kind: HoldKind,
    reason: &str,
    next_probe_at: i64,
) -> Result<(), QueueError> {
    execute(
        t,
        "UPDATE account_holds SET probe_at = $3, probes = probes + 1, reason = $4 \
         WHERE account = $1 AND kind = $2",
        &[&account, &kind.as_str(), &next_probe_at, &reason],
    )
    .await?;
    Ok(())
}

pub(super) async fn reschedule_probe(
    t: &Transaction<'_>,
    account: &str,
    kind: HoldKind,
    at: i64,
) -> Result<(), QueueError> {
    execute(
        t,
        "UPDATE account_holds SET probe_at = $3 WHERE account = $1 AND kind = $2",
        &[&account, &kind.as_str(), &at],
    )
    .await?;
    Ok(())
}
