//! What every CleverTap endpoint does before its own work: read the credential headers, pass
//! the faults (latency, outage, forced statuses, hangs); and how a request vanishes unanswered.

use axum::http::HeaderMap;
use axum::response::Response;

use crate::fault_set::{Action, Decision};
use crate::net::ConnCtl;
use crate::state::Inner;
use crate::stats::RequestOutcome;

/// A header as text; absent or not UTF-8 reads as empty (an unknown account, then).
pub(crate) fn header<'h>(headers: &'h HeaderMap, name: &str) -> &'h str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

/// What the faults left of one admitted request.
pub(crate) enum Gate {
    /// Handle it; `decision` still says whether to drop the connection after storing.
    Open(Decision),
    /// Answer this status, do nothing else.
    Fail(u16),
    /// Never answer.
    Vanish(RequestOutcome),
}

/// Draws `account`'s faults, waits out the latency, then says what is left to do.
pub(crate) async fn pass(inner: &Inner, account: &str) -> Gate {
    let decision = inner.faults.decide(account);
    if !decision.latency.is_zero() {
        tokio::time::sleep(decision.latency).await;
    }
    if inner.net.in_outage() {
        return Gate::Vanish(RequestOutcome::DroppedByOutage);
    }
    match decision.action {
        Action::Fail(status) => Gate::Fail(status),
        Action::Hang => Gate::Vanish(RequestOutcome::Hung),
        Action::Normal | Action::StoreThenDrop => Gate::Open(decision),
    }
}

/// Closes the connection without an answer (a hang leaves it open) and never resolves.
/// `flight` is held until the connection task drops this future (client gone, outage,
/// shutdown), so the request keeps its in-flight slot while the client waits.
pub(crate) async fn vanish<F: Send>(
    flight: F,
    outcome: RequestOutcome,
    ctl: Option<ConnCtl>,
) -> Response {
    if outcome != RequestOutcome::Hung
        && let Some(ctl) = ctl
    {
        ctl.drop.cancel();
    }
    let _flight = flight;
    std::future::pending::<Response>().await
}
