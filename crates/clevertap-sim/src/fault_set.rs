//! One set of fault settings (the global one, or one account's) and how a request draws from them.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// What a handler does with one admitted request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Normal,
    Fail(u16),
    Hang,
    StoreThenDrop,
}

/// The faults applying to one request, taken in one lock.
#[derive(Debug, Clone)]
pub struct Decision {
    pub latency: Duration,
    pub action: Action,
    pub record_codes: Arc<HashMap<String, u16>>,
}

/// `{"n":2,"status":503}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailNext {
    pub n: usize,
    pub status: u16,
}

/// One account's own fault settings, as `GET /_sim/faults` shows them under `by_account`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AccountFaultsSnapshot {
    pub fail_next: Vec<FailNext>,
    pub error_rates: BTreeMap<u16, f64>,
    /// `None`: the global latency applies.
    pub latency_ms: Option<u64>,
    pub hang_next: usize,
    pub store_then_drop_next: usize,
    pub record_codes: BTreeMap<String, u16>,
}

/// Fault settings of one scope. `latency` is `None` until set, so an account without its own
/// latency follows the global one.
#[derive(Debug, Default, Clone)]
pub(crate) struct FaultSet {
    fail_next: VecDeque<(u16, usize)>,
    error_rates: BTreeMap<u16, f64>,
    pub(crate) latency: Option<Duration>,
    hang_next: usize,
    store_then_drop_next: usize,
    record_codes: Arc<HashMap<String, u16>>,
}

impl FaultSet {
    pub(crate) fn fail_next(&mut self, n: usize, status: u16) {
        if n > 0 {
            self.fail_next.push_back((status, n));
        }
    }

    /// A rate of 0.0 (or less) clears the status; above 1.0 counts as 1.0.
    pub(crate) fn set_error_rate(&mut self, status: u16, rate: f64) {
        if rate > 0.0 {
            self.error_rates.insert(status, rate.min(1.0));
        } else {
            self.error_rates.remove(&status);
        }
    }

    pub(crate) fn hang_next(&mut self, n: usize) {
        self.hang_next += n;
    }

    pub(crate) fn store_then_drop_next(&mut self, n: usize) {
        self.store_then_drop_next += n;
    }

    /// Code 0 clears the rule. The map is replaced, not edited, so requests holding the old one
    /// keep a consistent view.
    pub(crate) fn set_record_code(&mut self, identity: &str, code: u16) {
        let mut codes = (*self.record_codes).clone();
        if code == 0 {
            codes.remove(identity);
        } else {
            codes.insert(identity.to_owned(), code);
        }
        self.record_codes = Arc::new(codes);
    }

    /// A forced status for the next request: `fail_next` first, else one draw over the rates.
    fn take_failure(&mut self) -> Option<u16> {
        if let Some(front) = self.fail_next.front_mut() {
            let status = front.0;
            front.1 -= 1;
            if front.1 == 0 {
                self.fail_next.pop_front();
            }
            return Some(status);
        }
        if self.error_rates.is_empty() {
            return None;
        }
        let mut draw: f64 = rand::random();
        for (&status, &rate) in &self.error_rates {
            if draw < rate {
                return Some(status);
            }
            draw -= rate;
        }
        None
    }

    fn take_hang(&mut self) -> bool {
        take_one(&mut self.hang_next)
    }

    fn take_drop(&mut self) -> bool {
        take_one(&mut self.store_then_drop_next)
    }

    pub(crate) fn snapshot(&self) -> AccountFaultsSnapshot {
        AccountFaultsSnapshot {
            fail_next: self
                .fail_next
                .iter()
                .map(|&(status, n)| FailNext { n, status })
                .collect(),
            error_rates: self.error_rates.clone(),
            latency_ms: self.latency.map(millis),
            hang_next: self.hang_next,
            store_then_drop_next: self.store_then_drop_next,
            record_codes: self
                .record_codes
                .iter()
                .map(|(k, v)| (k.clone(), *v))
                .collect(),
        }
    }
}

fn take_one(counter: &mut usize) -> bool {
    let some = *counter > 0;
    if some {
        *counter -= 1;
    }
    some
}

pub(crate) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Draws one request's faults, counters consumed: the account's own set is asked first, then
/// the global one; a forced status beats a hang, a hang beats store-then-drop. Latency is the
/// account's if set, else the global one, else `base_latency`.
pub(crate) fn decide(
    mut own: Option<&mut FaultSet>,
    global: &mut FaultSet,
    base_latency: Duration,
) -> Decision {
    let failure = own
        .as_deref_mut()
        .and_then(FaultSet::take_failure)
        .or_else(|| global.take_failure());
    let action = if let Some(status) = failure {
        Action::Fail(status)
    } else if own.as_deref_mut().is_some_and(FaultSet::take_hang) || global.take_hang() {
        Action::Hang
    } else if own.as_deref_mut().is_some_and(FaultSet::take_drop) || global.take_drop() {
        Action::StoreThenDrop
    } else {
        Action::Normal
    };
    let latency = own
        .as_deref()
        .and_then(|set| set.latency)
        .or(global.latency)
        .unwrap_or(base_latency);
    let record_codes = match own {
        Some(set) if !set.record_codes.is_empty() => {
            let mut merged = (*global.record_codes).clone();
            merged.extend(set.record_codes.iter().map(|(k, v)| (k.clone(), *v)));
            Arc::new(merged)
        }
        _ => Arc::clone(&global.record_codes),
    };
    Decision {
        latency,
        action,
        record_codes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set_failing(n: usize, status: u16) -> FaultSet {
        let mut set = FaultSet::default();
        set.fail_next(n, status);
        set
    }

    #[test]
    fn the_accounts_faults_come_first_then_the_global_ones() {
        let mut own = set_failing(1, 503);
        let mut global = set_failing(1, 500);
        global.hang_next(1);
        let base = Duration::from_millis(7);
        let actions: Vec<Action> = (0..4)
            .map(|_| decide(Some(&mut own), &mut global, base).action)
            .collect();
        assert_eq!(
            actions,
            vec![
                Action::Fail(503),
                Action::Fail(500),
                Action::Hang,
                Action::Normal
            ]
        );
    }

    #[test]
    fn latency_and_record_codes_fall_back_to_the_global_set() {
        let mut own = FaultSet::default();
        let mut global = FaultSet {
            latency: Some(Duration::from_millis(40)),
            ..FaultSet::default()
        };
        global.set_record_code("a", 555);
        global.set_record_code("b", 516);
        let base = Duration::ZERO;
        let d = decide(Some(&mut own), &mut global, base);
        assert_eq!(d.latency, Duration::from_millis(40));
        own.latency = Some(Duration::from_millis(5));
        own.set_record_code("b", 515);
        let d = decide(Some(&mut own), &mut global, base);
        assert_eq!(d.latency, Duration::from_millis(5));
        assert_eq!(
            (d.record_codes.get("a"), d.record_codes.get("b")),
            (Some(&555), Some(&515))
        );
        let d = decide(None, &mut FaultSet::default(), Duration::from_millis(9));
        assert_eq!(d.latency, Duration::from_millis(9));
    }

    #[test]
    fn certain_error_rate_always_fails_and_zero_clears_it() {
        let mut set = FaultSet::default();
        set.set_error_rate(500, 2.0);
        assert!((0..20).all(|_| set.take_failure() == Some(500)));
        set.set_error_rate(500, 0.0);
        assert_eq!(set.take_failure(), None);
    }
}
