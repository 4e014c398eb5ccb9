//! Runtime fault control, global or per account: forced statuses, error rates, latency, hangs,
//! drops, per-record codes; and for the whole server outages and credentials.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use serde::Serialize;

use crate::config::SimAccount;
use crate::fault_set::{self, AccountFaultsSnapshot, Decision, FailNext, FaultSet};
use crate::locks::{lock, read, write};
use crate::net::Net;
use crate::validate::check_credentials;

#[derive(Debug, Default)]
struct State {
    global: FaultSet,
    accounts: HashMap<String, FaultSet>,
}

/// Fault switches; every method takes `&self` and acts on the next requests. The methods here
/// apply to every account; [`Faults::for_account`] scopes the same switches to one account.
pub struct Faults {
    state: Mutex<State>,
    base_latency: Duration,
    accounts: RwLock<HashMap<String, Vec<String>>>,
    initial_accounts: HashMap<String, Vec<String>>,
    net: Arc<Net>,
    outage_generation: AtomicU64,
}

/// Current fault settings (`GET /_sim/faults`, and the answer of `POST /_sim/faults`): the global
/// ones flat, each account's own under `by_account`.
#[derive(Debug, Clone, Serialize)]
pub struct FaultsSnapshot {
    pub fail_next: Vec<FailNext>,
    pub error_rates: BTreeMap<u16, f64>,
    /// The latency every request gets unless its account has its own.
    pub latency_ms: u64,
    pub hang_next: usize,
    pub store_then_drop_next: usize,
    pub record_codes: BTreeMap<String, u16>,
    pub outage: bool,
    /// Accounts whose credentials are accepted.
    pub accounts: Vec<String>,
    pub by_account: BTreeMap<String, AccountFaultsSnapshot>,
}

/// The fault switches of one account (see [`Faults::for_account`]): they apply to requests
/// carrying that account id, before the global ones.
pub struct AccountFaults<'a> {
    faults: &'a Faults,
    account: String,
}

impl Faults {
    /// `base_latency` is what every request is held when no latency fault is set (and what
    /// `reset` returns to).
    pub(crate) fn new(accounts: &[SimAccount], net: Arc<Net>, base_latency: Duration) -> Self {
        let initial: HashMap<String, Vec<String>> = accounts
            .iter()
            .map(|a| (a.id.clone(), a.passcodes.clone()))
            .collect();
        Faults {
            state: Mutex::new(State::default()),
            base_latency,
            accounts: RwLock::new(initial.clone()),
            initial_accounts: initial,
            net,
            outage_generation: AtomicU64::new(0),
        }
    }

    /// Runs `f` on the global set (`None`) or on the account's own set, created on first use.
    pub(crate) fn with<R>(&self, account: Option<&str>, f: impl FnOnce(&mut FaultSet) -> R) -> R {
        let mut st = lock(&self.state);
        match account {
            None => f(&mut st.global),
            Some(id) => f(st.accounts.entry(id.to_owned()).or_default()),
        }
    }

    /// The switches of one account only; the global ones still apply to it afterwards.
    pub fn for_account(&self, account_id: &str) -> AccountFaults<'_> {
        AccountFaults {
            faults: self,
            account: account_id.to_owned(),
        }
    }

    /// The next `n` requests are answered `status` (before validation, nothing stored).
    pub fn fail_next(&self, n: usize, status: u16) {
        self.with(None, |set| set.fail_next(n, status));
    }

    /// A random share `rate` (0.0–1.0) of requests is answered `status`; 0.0 clears it.
    pub fn set_error_rate(&self, status: u16, rate: f64) {
        self.with(None, |set| set.set_error_rate(status, rate));
    }

    /// Delay added to every admitted request before it is handled.
    pub fn set_latency(&self, latency: Duration) {
        self.with(None, |set| set.latency = Some(latency));
    }

    /// The next `n` requests are never answered.
    pub fn hang_next(&self, n: usize) {
        self.with(None, |set| set.hang_next(n));
    }

    /// The next `n` requests are stored, then their connection is dropped without an answer.
    pub fn store_then_drop_next(&self, n: usize) {
        self.with(None, |set| set.store_then_drop_next(n));
    }

    /// Records whose key (identity, else objectId …) equals `identity` come back unprocessed
    /// with `code` (e.g. 555 or 516); code 400 instead refuses every request carrying such a
    /// record with HTTP 400 "Malformed request". Code 0 clears the rule.
    pub fn set_record_code(&self, identity: &str, code: u16) {
        self.with(None, |set| set.set_record_code(identity, code));
    }

    /// `true`: the listener is closed and live connections dropped at once (connections are
    /// refused); `false`: listening again on the same port. Always for every account: they
    /// share one listener, as CleverTap's accounts share one host.
    pub fn outage(&self, on: bool) {
        self.outage_generation.fetch_add(1, Ordering::SeqCst);
        self.net.set_outage(on);
    }

    /// Outage for `duration`, starting after `delay`; a later `outage`/`reset` call wins.
    pub(crate) fn outage_for(self: &Arc<Self>, delay: Duration, duration: Duration) {
        let faults = Arc::clone(self);
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            faults.outage(true);
            let generation = faults.outage_generation.load(Ordering::SeqCst);
            tokio::time::sleep(duration).await;
            if faults.outage_generation.load(Ordering::SeqCst) == generation {
                faults.outage(false);
            }
        });
    }

    /// Replaces (or adds) an account's passcodes; an empty list removes the account.
    pub fn set_credentials(&self, account_id: &str, passcodes: Vec<String>) {
        let mut accounts = write(&self.accounts);
        if passcodes.is_empty() {
            accounts.remove(account_id);
        } else {
            accounts.insert(account_id.to_owned(), passcodes);
        }
    }

    /// Clears every fault (global and per account), ends an outage, restores the configured
    /// accounts and latency.
    pub fn reset(&self) {
        *lock(&self.state) = State::default();
        *write(&self.accounts) = self.initial_accounts.clone();
        if self.net.in_outage() {
            self.outage(false);
        } else {
            self.outage_generation.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// `Ok` or the 401 text.
    pub(crate) fn check_auth(&self, account: &str, passcode: &str) -> Result<(), &'static str> {
        let accounts = read(&self.accounts);
        check_credentials(&accounts, account, passcode)
    }

    /// Takes the faults for one admitted request of `account` (counters consumed).
    pub(crate) fn decide(&self, account: &str) -> Decision {
        let mut st = lock(&self.state);
        let State { global, accounts } = &mut *st;
        fault_set::decide(accounts.get_mut(account), global, self.base_latency)
    }

    pub fn snapshot(&self) -> FaultsSnapshot {
        let st = lock(&self.state);
        let mut accounts: Vec<String> = read(&self.accounts).keys().cloned().collect();
        accounts.sort();
        let global = st.global.snapshot();
        FaultsSnapshot {
            fail_next: global.fail_next,
            error_rates: global.error_rates,
            latency_ms: fault_set::millis(st.global.latency.unwrap_or(self.base_latency)),
            hang_next: global.hang_next,
            store_then_drop_next: global.store_then_drop_next,
            record_codes: global.record_codes,
            outage: self.net.in_outage(),
            accounts,
            by_account: st
                .accounts
                .iter()
                .map(|(id, set)| (id.clone(), set.snapshot()))
                .collect(),
        }
    }
}

impl AccountFaults<'_> {
    /// This account's next `n` requests are answered `status`.
    pub fn fail_next(&self, n: usize, status: u16) {
        self.with(|set| set.fail_next(n, status));
    }

    /// A random share `rate` of this account's requests is answered `status`; 0.0 clears it.
    pub fn set_error_rate(&self, status: u16, rate: f64) {
        self.with(|set| set.set_error_rate(status, rate));
    }

    /// Delay of this account's requests, instead of the global one.
    pub fn set_latency(&self, latency: Duration) {
        self.with(|set| set.latency = Some(latency));
    }

    /// This account's next `n` requests are never answered.
    pub fn hang_next(&self, n: usize) {
        self.with(|set| set.hang_next(n));
    }

    /// This account's next `n` requests are stored, then their connection is dropped.
    pub fn store_then_drop_next(&self, n: usize) {
        self.with(|set| set.store_then_drop_next(n));
    }

    /// As [`Faults::set_record_code`], for this account's requests only (it wins over a
    /// global code for the same identity).
    pub fn set_record_code(&self, identity: &str, code: u16) {
        self.with(|set| set.set_record_code(identity, code));
    }

    /// Clears this account's own faults; global ones and credentials are untouched.
    pub fn reset(&self) {
        lock(&self.faults.state).accounts.remove(&self.account);
    }

    fn with<R>(&self, f: impl FnOnce(&mut FaultSet) -> R) -> R {
        self.faults.with(Some(&self.account), f)
    }
}
