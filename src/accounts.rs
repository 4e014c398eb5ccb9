//! CleverTap accounts: who they are (id and passcode, for the drop-in) and whether delivery to
//! each is held — by an operator, by CleverTap refusing it, or by an outage. Holds live in the
//! queue, so every replica sees one account state and a restart keeps it; this module is the
//! one place that decides, logs and counts a change of that state.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use crate::clock::{duration_ms, now_ms};
use crate::config::Settings;
use crate::credential::Credential;
use crate::metrics::Metrics;
use crate::queue::{Hold, HoldKind, Lifted, Queue, QueueError};
use crate::retry::next_delay;

/// A configured CleverTap account.
pub struct Account {
    pub name: String,
    pub account_id: String,
    pub passcode: Credential,
}

/// What the worker may do for an account now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// Deliver as usual.
    Open,
    /// Send one probe (this replica took it) for the hold of this kind, probed `probes`
    /// times before.
    Probe { kind: HoldKind, probes: u32 },
    /// Nothing to send; look again at `until` (a probe time), or when woken.
    Closed { until: Option<i64> },
}

/// Every configured account and the operations on their holds.
pub struct Accounts {
    list: BTreeMap<String, Account>,
    queue: Queue,
    metrics: Arc<Metrics>,
    probe_every: Duration,
    base_delay: Duration,
    max_delay: Duration,
}

impl Accounts {
    /// Accounts with complete credentials (`Settings::check` refuses the others).
    pub fn new(settings: &Settings, queue: Queue, metrics: Arc<Metrics>) -> Self {
        let mut list = BTreeMap::new();
        for (name, account) in &settings.clevertap.accounts {
            let (Some(account_id), Some(passcode)) = (&account.account_id, &account.passcode)
            else {
                continue;
            };
            list.insert(
                name.clone(),
                Account {
                    name: name.clone(),
                    account_id: account_id.trim().to_owned(),
                    passcode: Credential::new(passcode),
                },
            );
        }
        let d = &settings.delivery;
        Self {
            list,
            queue,
            metrics,
            probe_every: Duration::from_secs(d.pause_probe_secs),
            base_delay: Duration::from_millis(d.base_delay_ms),
            max_delay: Duration::from_secs(d.max_delay_secs),
        }
    }

    pub fn get(&self, name: &str) -> Option<&Account> {
        self.list.get(name)
    }

    /// The account a drop-in request names with `X-CleverTap-Account-Id`.
    pub fn by_account_id(&self, account_id: &str) -> Option<&Account> {
        let wanted = account_id.trim();
        self.list.values().find(|a| a.account_id == wanted)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.list.keys().map(String::as_str)
    }

    /// Every hold of every account (admin, console, gauges).
    pub async fn holds(&self) -> Result<Vec<Hold>, QueueError> {
        self.queue.holds().await
    }

    /// Whether `name` may be delivered to now; takes the probe when one is due.
    pub async fn gate(&self, name: &str, probe_timeout: Duration) -> Result<Gate, QueueError> {
        let holds: Vec<Hold> = self
            .queue
            .holds()
            .await?
            .into_iter()
            .filter(|h| h.account == name)
            .collect();
        if holds.is_empty() {
            return Ok(Gate::Open);
        }
        if holds.iter().any(|h| h.kind == HoldKind::Manual) {
            return Ok(Gate::Closed { until: None });
        }
        let now = now_ms();
        for hold in &holds {
            if hold.probe_at_ms.is_some_and(|at| at <= now) {
                let until = now + duration_ms(probe_timeout);
                if self.queue.take_probe(name, hold.kind, until).await? {
                    return Ok(Gate::Probe {
                        kind: hold.kind,
                        probes: hold.probes,
                    });
                }
            }
        }
        let until = holds.iter().filter_map(|h| h.probe_at_ms).min();
        Ok(Gate::Closed { until })
    }

    /// An operator's pause: delivery stops on every replica until `resume`.
    pub async fn pause(&self, name: &str) -> Result<bool, QueueError> {
        let new = self
            .queue
            .hold(name, HoldKind::Manual, "paused by an operator", None)
            .await?;
        if new {
            self.metrics.account_paused(name, true);
            tracing::warn!(account = %name, "account paused by an operator; webhooks are still accepted");
        }
        Ok(new)
    }

    /// An operator's resume: lifts every hold (a refused or unreachable account is tried at
    /// once); the age deadlines of its rows move back by the held time, once.
    pub async fn resume(&self, name: &str) -> Result<Lifted, QueueError> {
        let lifted = self.queue.lift(name, &HoldKind::ALL).await?;
        self.lifted(name, &lifted, "resumed by an operator");
        Ok(lifted)
    }

    /// CleverTap refused the account (credentials, region, configuration): probe it every
    /// `pause_probe_secs`, burn nothing meanwhile.
    pub async fn refused(&self, name: &str, reason: &str) -> Result<(), QueueError> {
        let probe_at = now_ms() + duration_ms(self.probe_every);
        if self
            .queue
            .hold(name, HoldKind::Refused, reason, Some(probe_at))
            .await?
        {
            self.metrics.account_paused(name, true);
            tracing::error!(account = %name, reason = %reason, probe_secs = self.probe_every.as_secs(),
                "CleverTap refused the account; delivery paused, webhooks are still accepted");
        }
        Ok(())
    }

    /// Every request to the account fails the same way: one probe at a time with backoff, the
    /// rows keep their attempts.
    pub async fn unreachable(&self, name: &str, reason: &str) -> Result<(), QueueError> {
        let probe_at = now_ms() + duration_ms(self.probe_delay(0));
        if self
            .queue
            .hold(name, HoldKind::Unreachable, reason, Some(probe_at))
            .await?
        {
            self.metrics.account_unreachable(name, true);
            tracing::error!(account = %name, reason = %reason,
                "CleverTap unreachable; delivery waits and probes with backoff, webhooks are still accepted");
        }
        Ok(())
    }

    /// A probe failed again: the next one later (`pause_probe_secs` for a refusal, backoff up
    /// to `max_delay_secs` for an outage).
    pub async fn probe_failed(
        &self,
        name: &str,
        kind: HoldKind,
        reason: &str,
        probes: u32,
    ) -> Result<(), QueueError> {
        let delay = match kind {
            HoldKind::Unreachable => self.probe_delay(probes + 1),
            _ => self.probe_every,
        };
        tracing::debug!(account = %name, kind = kind.as_str(), next_in_ms = duration_ms(delay), "probe failed");
        self.queue
            .probe_failed(name, kind, reason, now_ms() + duration_ms(delay))
            .await
    }

    /// CleverTap answers again (the outage is over), whatever it answered.
    pub async fn answers_again(&self, name: &str) -> Result<(), QueueError> {
        let lifted = self.queue.lift(name, &[HoldKind::Unreachable]).await?;
        self.lifted(name, &lifted, "CleverTap answers again");
        Ok(())
    }

    /// A probe went through: the refusal or outage is over.
    pub async fn reachable(&self, name: &str) -> Result<(), QueueError> {
        let lifted = self
            .queue
            .lift(name, &[HoldKind::Refused, HoldKind::Unreachable])
            .await?;
        self.lifted(name, &lifted, "CleverTap answers again");
        Ok(())
    }

    /// A probe was taken but there was nothing to send: probe again as soon as there is.
    pub async fn probe_unused(&self, name: &str, kind: HoldKind) -> Result<(), QueueError> {
        self.queue.reschedule_probe(name, kind, now_ms()).await
    }

    /// Sets the paused/unreachable gauges from the stored holds (changes made by other replicas).
    pub fn refresh_gauges(&self, holds: &[Hold]) {
        for name in self.list.keys() {
            let held = |kinds: &[HoldKind]| {
                holds
                    .iter()
                    .any(|h| &h.account == name && kinds.contains(&h.kind))
            };
            self.metrics
                .account_paused(name, held(&[HoldKind::Manual, HoldKind::Refused]));
            self.metrics
                .account_unreachable(name, held(&[HoldKind::Unreachable]));
        }
    }

    fn lifted(&self, name: &str, lifted: &Lifted, why: &str) {
        if lifted.kinds.contains(&HoldKind::Unreachable) {
            self.metrics.account_unreachable(name, false);
        }
        if lifted
            .kinds
            .iter()
            .any(|k| matches!(k, HoldKind::Manual | HoldKind::Refused))
        {
            self.metrics.account_paused(name, false);
        }
        if let Some(held) = lifted.resumed_after {
            let kinds: Vec<&str> = lifted.kinds.iter().map(|k| k.as_str()).collect();
            tracing::info!(account = %name, held_secs = held.as_secs(), was = %kinds.join(","), why,
                "account delivering again");
        }
    }

    /// Backoff of outage probes: full jitter, `base_delay_ms` doubling up to `max_delay_secs`.
    fn probe_delay(&self, probes: u32) -> Duration {
        next_delay(
            probes,
            self.base_delay,
            self.max_delay,
            rand::random::<f64>(),
        )
        .max(Duration::from_millis(50))
    }
}
