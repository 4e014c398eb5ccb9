//! The body of `POST /_sim/faults` and how it is applied, globally or to one account.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use crate::fault_set::{FailNext, FaultSet};
use crate::faults::Faults;

/// Body of `POST /_sim/faults`; every field optional, applied in this order. With `account`,
/// `reset` and the request-level faults (`fail_next` … `record_codes`) apply to that account
/// only; `credentials` name their accounts themselves; an outage cannot be scoped.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultsRequest {
    pub account: Option<String>,
    #[serde(default)]
    pub reset: bool,
    pub fail_next: Option<FailNext>,
    pub error_rates: Option<BTreeMap<u16, f64>>,
    pub latency_ms: Option<u64>,
    pub hang_next: Option<usize>,
    pub store_then_drop_next: Option<usize>,
    pub record_codes: Option<HashMap<String, u16>>,
    pub credentials: Option<HashMap<String, Vec<String>>>,
    /// Refuse connections for this long, starting shortly after the answer is sent.
    pub outage_secs: Option<f64>,
}

impl FaultsRequest {
    fn has_request_faults(&self) -> bool {
        self.fail_next.is_some()
            || self.error_rates.is_some()
            || self.latency_ms.is_some()
            || self.hang_next.is_some()
            || self.store_then_drop_next.is_some()
            || self.record_codes.is_some()
    }

    /// Checked before anything is applied, so a refused body changes nothing.
    fn check(&self) -> Result<(), &'static str> {
        match self.account.as_deref() {
            Some(id) if id.trim().is_empty() => Err("\"account\" must name an account"),
            Some(_) if self.outage_secs.is_some() => Err(
                "an outage closes the listener every account shares: send \"outage_secs\" without \"account\"",
            ),
            _ => Ok(()),
        }
    }

    fn apply_to(self, set: &mut FaultSet) {
        if let Some(f) = self.fail_next {
            set.fail_next(f.n, f.status);
        }
        for (status, rate) in self.error_rates.unwrap_or_default() {
            set.set_error_rate(status, rate);
        }
        if let Some(ms) = self.latency_ms {
            set.latency = Some(Duration::from_millis(ms));
        }
        if let Some(n) = self.hang_next {
            set.hang_next(n);
        }
        if let Some(n) = self.store_then_drop_next {
            set.store_then_drop_next(n);
        }
        for (identity, code) in self.record_codes.unwrap_or_default() {
            set.set_record_code(&identity, code);
        }
    }
}

impl Faults {
    /// Applies a `POST /_sim/faults` body, or says why it was refused (nothing applied then).
    pub(crate) fn apply(self: &Arc<Self>, mut req: FaultsRequest) -> Result<(), &'static str> {
        req.check()?;
        let account = req.account.take();
        if req.reset {
            match &account {
                None => self.reset(),
                Some(id) => self.for_account(id).reset(),
            }
        }
        let credentials = req.credentials.take();
        let outage = req.outage_secs.take();
        if req.has_request_faults() {
            self.with(account.as_deref(), |set| req.apply_to(set));
        }
        for (account, passcodes) in credentials.unwrap_or_default() {
            self.set_credentials(&account, passcodes);
        }
        if let Some(secs) = outage.filter(|s| s.is_finite() && *s > 0.0) {
            self.outage_for(Duration::from_millis(100), Duration::from_secs_f64(secs));
        }
        Ok(())
    }
}
