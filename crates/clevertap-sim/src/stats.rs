//! Request bookkeeping: counters, in-flight accounting (admitted and attempted) and the request log.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::Instant;

use axum::body::Bytes;
use serde::Serialize;
use serde_json::Value;

use crate::deletions::DeleteStats;

/// How a logged `/1/upload` request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestOutcome {
    /// Still being handled (latency, or a hang whose client has not gone yet).
    InProgress,
    /// An HTTP answer was sent (see `status`).
    Answered,
    /// `hang_next`: never answered.
    Hung,
    /// `store_then_drop_next`: records stored, connection dropped without an answer.
    StoredThenDropped,
    /// Connection dropped by an outage while the request was handled.
    DroppedByOutage,
    /// The client went away (or the simulator stopped) before an answer.
    Abandoned,
}

/// One `/1/upload` request as the simulator saw it.
#[derive(Debug, Clone, Serialize)]
pub struct ReceivedRequest {
    /// Arrival sequence number, 0-based.
    pub seq: u64,
    pub account_id: String,
    /// The passcode header, masked (`si***`).
    pub passcode: String,
    /// HTTP status answered; `None` when no answer was sent.
    pub status: Option<u16>,
    pub outcome: RequestOutcome,
    /// The body as JSON, or a JSON string holding the raw text when it is not JSON.
    pub body: Value,
    /// Records in `d` (0 when the body never reached validation).
    pub records: usize,
    pub processed: usize,
    pub unprocessed: usize,
    /// Ticks of one simulator-wide counter: request B started after A was answered iff
    /// `B.started_tick > A.finished_tick`.
    pub started_tick: u64,
    pub finished_tick: Option<u64>,
    /// Microseconds since the simulator started.
    pub started_us: u64,
    pub finished_us: Option<u64>,
}

/// Per-account counters. `in_flight` counts requests admitted under the cap; the `attempted`
/// counts include those refused with 429, so they show what the sender put on the wire.
#[derive(Debug, Clone, Default, Serialize)]
pub struct AccountStats {
    pub requests: u64,
    pub records_received: u64,
    pub records_accepted: u64,
    pub records_rejected: u64,
    pub by_status: BTreeMap<u16, u64>,
    pub in_flight: usize,
    pub peak_in_flight: usize,
    pub in_flight_attempted: usize,
    pub peak_in_flight_attempted: usize,
    /// The most requests of this account in flight at once, 429-refused ones included (the
    /// same figure as `peak_in_flight_attempted`): a sender that respects the cap keeps it at
    /// or below `max_in_flight`.
    pub max_in_flight_seen: usize,
    /// Requests refused with 429 because `max_in_flight` were already in flight (a 429 from
    /// `fail_next` or `error_rates` is not counted here, only in `by_status`).
    pub throttled: u64,
}

/// Snapshot of the simulator's counters (also `GET /_sim/stats`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct SimStats {
    /// `/1/upload` requests received.
    pub requests: u64,
    /// Requests that got an HTTP answer.
    pub answered: u64,
    pub records_received: u64,
    pub records_accepted: u64,
    pub records_rejected: u64,
    pub by_status: BTreeMap<u16, u64>,
    /// Requests admitted (past auth and the concurrency cap) and not yet finished.
    pub in_flight: usize,
    pub peak_in_flight: usize,
    /// Every concurrent request, those answered 401/429 included.
    pub in_flight_attempted: usize,
    pub peak_in_flight_attempted: usize,
    pub hung: u64,
    pub dropped: u64,
    pub profiles: usize,
    pub events: u64,
    pub accounts: BTreeMap<String, AccountStats>,
    /// `POST /1/delete/profiles.json`, counted apart from uploads.
    pub deletes: DeleteStats,
}

struct LogEntry {
    seq: u64,
    account_id: String,
    passcode: String,
    body: Bytes,
    status: Option<u16>,
    outcome: RequestOutcome,
    records: usize,
    processed: usize,
    unprocessed: usize,
    started_tick: u64,
    finished_tick: Option<u64>,
    started: Instant,
    finished: Option<Instant>,
}

/// Everything counted per request, behind one short-held mutex.
pub struct Book {
    pub stats: SimStats,
    log: VecDeque<LogEntry>,
    next_seq: u64,
    history_limit: usize,
    flights: HashMap<String, AccountStats>,
}

/// What `begin` decided.
pub struct Admission {
    pub seq: u64,
    pub admitted: bool,
}

/// How one request ended, for `finish`.
pub struct Finish {
    pub status: Option<u16>,
    pub outcome: RequestOutcome,
    pub records: usize,
    pub processed: usize,
    pub unprocessed: usize,
}

impl Book {
    pub fn new(history_limit: usize) -> Self {
        Book {
            stats: SimStats::default(),
            log: VecDeque::new(),
            next_seq: 0,
            history_limit: history_limit.max(1),
            flights: HashMap::new(),
        }
    }

    /// Clears counters and the log (in-flight counts of live requests are kept).
    pub fn clear(&mut self) {
        let (in_flight, attempted) = (self.stats.in_flight, self.stats.in_flight_attempted);
        self.stats = SimStats {
            in_flight,
            in_flight_attempted: attempted,
            peak_in_flight: in_flight,
            peak_in_flight_attempted: attempted,
            ..SimStats::default()
        };
        self.log.clear();
        for acc in self.flights.values_mut() {
            *acc = AccountStats {
                in_flight: acc.in_flight,
                in_flight_attempted: acc.in_flight_attempted,
                peak_in_flight: acc.in_flight,
                peak_in_flight_attempted: acc.in_flight_attempted,
                max_in_flight_seen: acc.in_flight_attempted,
                ..AccountStats::default()
            };
        }
    }

    /// Logs a request and counts it in flight. `known_account` is false after a failed auth;
    /// then the request is counted as attempted only. Admitted iff under `max_in_flight`.
    pub fn begin(
        &mut self,
        account_id: &str,
        passcode: String,
        known_account: bool,
        max_in_flight: usize,
        tick: u64,
    ) -> Admission {
        let seq = self.next_seq;
        self.next_seq += 1;
        let s = &mut self.stats;
        s.requests += 1;
        s.in_flight_attempted += 1;
        s.peak_in_flight_attempted = s.peak_in_flight_attempted.max(s.in_flight_attempted);
        let mut admitted = false;
        if known_account {
            let acc = match self.flights.get_mut(account_id) {
                Some(acc) => acc,
                None => self.flights.entry(account_id.to_owned()).or_default(),
            };
            acc.requests += 1;
            acc.in_flight_attempted += 1;
            acc.peak_in_flight_attempted =
                acc.peak_in_flight_attempted.max(acc.in_flight_attempted);
            acc.max_in_flight_seen = acc.peak_in_flight_attempted;
            if acc.in_flight < max_in_flight {
                admitted = true;
                acc.in_flight += 1;
                acc.peak_in_flight = acc.peak_in_flight.max(acc.in_flight);
                s.in_flight += 1;
                s.peak_in_flight = s.peak_in_flight.max(s.in_flight);
            } else {
                acc.throttled += 1;
            }
        }
        if self.log.len() >= self.history_limit {
            self.log.pop_front();
        }
        self.log.push_back(LogEntry {
            seq,
            account_id: account_id.to_owned(),
            passcode,
            body: Bytes::new(),
            status: None,
            outcome: RequestOutcome::InProgress,
            records: 0,
            processed: 0,
            unprocessed: 0,
            started_tick: tick,
            finished_tick: None,
            started: Instant::now(),
            finished: None,
        });
        Admission { seq, admitted }
    }

    /// Keeps the request body for `requests()` (read after the request was counted in flight).
    pub fn set_body(&mut self, seq: u64, body: Bytes) {
        if let Some(entry) = self.entry_mut(seq) {
            entry.body = body;
        }
    }

    /// Marks an outcome without ending the flight (a hang keeps its slot until the client goes).
    pub fn mark(&mut self, seq: u64, outcome: RequestOutcome) {
        match outcome {
            RequestOutcome::Hung => self.stats.hung += 1,
            RequestOutcome::StoredThenDropped | RequestOutcome::DroppedByOutage => {
                self.stats.dropped += 1
            }
            _ => {}
        }
        if let Some(entry) = self.entry_mut(seq) {
            entry.outcome = outcome;
        }
    }

    /// Ends a request: counters, by-status, in-flight release, log entry completed.
    pub fn finish(
        &mut self,
        seq: u64,
        account_id: &str,
        known: bool,
        admitted: bool,
        f: Finish,
        tick: u64,
    ) {
        let s = &mut self.stats;
        s.in_flight_attempted = s.in_flight_attempted.saturating_sub(1);
        if admitted {
            s.in_flight = s.in_flight.saturating_sub(1);
        }
        if let Some(status) = f.status {
            s.answered += 1;
            *s.by_status.entry(status).or_default() += 1;
        }
        s.records_received += f.records as u64;
        s.records_accepted += f.processed as u64;
        s.records_rejected += f.unprocessed as u64;
        if known && let Some(acc) = self.flights.get_mut(account_id) {
            acc.in_flight_attempted = acc.in_flight_attempted.saturating_sub(1);
            if admitted {
                acc.in_flight = acc.in_flight.saturating_sub(1);
            }
            if let Some(status) = f.status {
                *acc.by_status.entry(status).or_default() += 1;
            }
            acc.records_received += f.records as u64;
            acc.records_accepted += f.processed as u64;
            acc.records_rejected += f.unprocessed as u64;
        }
        if let Some(entry) = self.entry_mut(seq) {
            entry.status = f.status;
            if entry.outcome == RequestOutcome::InProgress || f.status.is_some() {
                entry.outcome = f.outcome;
            }
            entry.records = f.records;
            entry.processed = f.processed;
            entry.unprocessed = f.unprocessed;
            entry.finished_tick = Some(tick);
            entry.finished = Some(Instant::now());
        }
    }

    fn entry_mut(&mut self, seq: u64) -> Option<&mut LogEntry> {
        let first = self.log.front()?.seq;
        let index = usize::try_from(seq.checked_sub(first)?).ok()?;
        self.log.get_mut(index)
    }

    pub fn snapshot(&self) -> SimStats {
        let mut stats = self.stats.clone();
        stats.accounts = self
            .flights
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        stats
    }

    /// The logged requests, oldest first; bodies parsed here, not on the hot path.
    pub fn requests(&self, epoch: Instant) -> Vec<ReceivedRequest> {
        let micros = |t: Instant| {
            u64::try_from(t.saturating_duration_since(epoch).as_micros()).unwrap_or(u64::MAX)
        };
        self.log
            .iter()
            .map(|e| ReceivedRequest {
                seq: e.seq,
                account_id: e.account_id.clone(),
                passcode: e.passcode.clone(),
                status: e.status,
                outcome: e.outcome,
                body: serde_json::from_slice(&e.body).unwrap_or_else(|_| {
                    Value::String(String::from_utf8_lossy(&e.body).into_owned())
                }),
                records: e.records,
                processed: e.processed,
                unprocessed: e.unprocessed,
                started_tick: e.started_tick,
                finished_tick: e.finished_tick,
                started_us: micros(e.started),
                finished_us: e.finished.map(micros),
            })
            .collect()
    }
}
