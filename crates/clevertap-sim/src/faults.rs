//! Runtime fault control: forced statuses, error rates, latency, hangs, drops, outages, per-record codes, credentials.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::SimAccount;
use crate::locks::{lock, read, write};
use crate::net::Net;
use crate::validate::check_credentials;

/// What the upload handler does with one admitted request.
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

#[derive(Debug, Default)]
struct State {
    fail_next: VecDeque<(u16, usize)>,
    error_rates: BTreeMap<u16, f64>,
    latency: Duration,
    hang_next: usize,
    store_then_drop_next: usize,
    record_codes: Arc<HashMap<String, u16>>,
}

/// Fault switches; every method takes `&self` and acts on the next requests.
pub struct Faults {
    state: Mutex<State>,
    accounts: RwLock<HashMap<String, Vec<String>>>,
    initial_accounts: HashMap<String, Vec<String>>,
    net: Arc<Net>,
    outage_generation: AtomicU64,
}

/// Current fault settings (`GET /_sim/faults`, and the answer of `POST /_sim/faults`).
#[derive(Debug, Clone, Serialize)]
pub struct FaultsSnapshot {
    pub fail_next: Vec<FailNext>,
    pub error_rates: BTreeMap<u16, f64>,
    pub latency_ms: u64,
    pub hang_next: usize,
    pub store_then_drop_next: usize,
    pub record_codes: BTreeMap<String, u16>,
    pub outage: bool,
    pub accounts: Vec<String>,
}

/// `{"n":2,"status":503}`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct FailNext {
    pub n: usize,
    pub status: u16,
}

/// Body of `POST /_sim/faults`; every field optional, applied in this order.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultsRequest {
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

impl Faults {
    pub(crate) fn new(accounts: &[SimAccount], net: Arc<Net>) -> Self {
        let initial: HashMap<String, Vec<String>> = accounts
            .iter()
            .map(|a| (a.id.clone(), a.passcodes.clone()))
            .collect();
        Faults {
            state: Mutex::new(State::default()),
            accounts: RwLock::new(initial.clone()),
            initial_accounts: initial,
            net,
            outage_generation: AtomicU64::new(0),
        }
    }

    /// The next `n` requests are answered `status` (before validation, nothing stored).
    pub fn fail_next(&self, n: usize, status: u16) {
        if n > 0 {
            lock(&self.state).fail_next.push_back((status, n));
        }
    }

    /// A random share `rate` (0.0–1.0) of requests is answered `status`; 0.0 clears it.
    pub fn set_error_rate(&self, status: u16, rate: f64) {
        let mut st = lock(&self.state);
        if rate > 0.0 {
            st.error_rates.insert(status, rate.min(1.0));
        } else {
            st.error_rates.remove(&status);
        }
    }

    /// Delay added to every admitted request before it is answered.
    pub fn set_latency(&self, latency: Duration) {
        lock(&self.state).latency = latency;
    }

    /// `true`: the listener is closed and live connections dropped at once (connections are
    /// refused); `false`: listening again on the same port.
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

    /// The next `n` requests are never answered.
    pub fn hang_next(&self, n: usize) {
        lock(&self.state).hang_next += n;
    }

    /// The next `n` requests are stored, then their connection is dropped without an answer.
    pub fn store_then_drop_next(&self, n: usize) {
        lock(&self.state).store_then_drop_next += n;
    }

    /// Records whose key (identity, else objectId …) equals `identity` come back unprocessed
    /// with `code` (e.g. 555 or 516); code 400 instead refuses every request carrying such a
    /// record with HTTP 400 "Malformed request". Code 0 clears the rule.
    pub fn set_record_code(&self, identity: &str, code: u16) {
        let mut st = lock(&self.state);
        let mut codes = (*st.record_codes).clone();
        if code == 0 {
            codes.remove(identity);
        } else {
            codes.insert(identity.to_owned(), code);
        }
        st.record_codes = Arc::new(codes);
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

    /// Clears every fault, ends an outage and restores the configured accounts.
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

    /// Takes the faults for one admitted request (counters consumed).
    pub(crate) fn decide(&self) -> Decision {
        let mut st = lock(&self.state);
        let mut action = Action::Normal;
        if let Some(front) = st.fail_next.front_mut() {
            action = Action::Fail(front.0);
            front.1 -= 1;
            if front.1 == 0 {
                st.fail_next.pop_front();
            }
        } else if !st.error_rates.is_empty() {
            let mut draw: f64 = rand::random();
            for (&status, &rate) in &st.error_rates {
                if draw < rate {
                    action = Action::Fail(status);
                    break;
                }
                draw -= rate;
            }
        }
        if action == Action::Normal && st.hang_next > 0 {
            st.hang_next -= 1;
            action = Action::Hang;
        } else if action == Action::Normal && st.store_then_drop_next > 0 {
            st.store_then_drop_next -= 1;
            action = Action::StoreThenDrop;
        }
        Decision {
            latency: st.latency,
            action,
            record_codes: Arc::clone(&st.record_codes),
        }
    }

    /// Applies a `POST /_sim/faults` body.
    pub(crate) fn apply(self: &Arc<Self>, req: FaultsRequest) {
        if req.reset {
            self.reset();
        }
        if let Some(f) = req.fail_next {
            self.fail_next(f.n, f.status);
        }
        for (status, rate) in req.error_rates.unwrap_or_default() {
            self.set_error_rate(status, rate);
        }
        if let Some(ms) = req.latency_ms {
            self.set_latency(Duration::from_millis(ms));
        }
        if let Some(n) = req.hang_next {
            self.hang_next(n);
        }
        if let Some(n) = req.store_then_drop_next {
            self.store_then_drop_next(n);
        }
        for (identity, code) in req.record_codes.unwrap_or_default() {
            self.set_record_code(&identity, code);
        }
        for (account, passcodes) in req.credentials.unwrap_or_default() {
            self.set_credentials(&account, passcodes);
        }
        if let Some(secs) = req.outage_secs.filter(|s| s.is_finite() && *s > 0.0) {
            self.outage_for(Duration::from_millis(100), Duration::from_secs_f64(secs));
        }
    }

    pub fn snapshot(&self) -> FaultsSnapshot {
        let st = lock(&self.state);
        let mut accounts: Vec<String> = read(&self.accounts).keys().cloned().collect();
        accounts.sort();
        FaultsSnapshot {
            fail_next: st
                .fail_next
                .iter()
                .map(|&(status, n)| FailNext { n, status })
                .collect(),
            error_rates: st.error_rates.clone(),
            latency_ms: u64::try_from(st.latency.as_millis()).unwrap_or(u64::MAX),
            hang_next: st.hang_next,
            store_then_drop_next: st.store_then_drop_next,
            record_codes: st
                .record_codes
                .iter()
                .map(|(k, v)| (k.clone(), *v))
                .collect(),
            outage: self.net.in_outage(),
            accounts,
        }
    }
}
