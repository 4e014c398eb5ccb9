//! Bookkeeping of `POST /1/delete/profiles.json`: counters, the per-account in-flight cap of
//! that API, and the log of every deleted identity or guid.

use std::collections::{BTreeMap, HashMap, VecDeque};

use serde::Serialize;

/// Which id a deletion named.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeleteKey {
    Identity,
    Guid,
}

/// One value of an accepted deletion request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Deletion {
    /// The deletion request's sequence number (0-based, counted apart from uploads).
    pub seq: u64,
    pub account_id: String,
    pub key: DeleteKey,
    pub value: String,
    /// A stored profile was found under `value` and removed.
    pub removed: bool,
    /// The simulator-wide clock of `ReceivedRequest::started_tick`: a deletion with a tick
    /// above an upload's `finished_tick` happened after that upload was answered.
    pub tick: u64,
    /// Microseconds since the simulator started.
    pub at_us: u64,
    /// Wall-clock time, milliseconds since the Unix epoch.
    pub unix_ms: u64,
}

/// Counters of the delete endpoint (`deletes` in `/_sim/stats`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DeleteStats {
    /// Requests received.
    pub requests: u64,
    /// Requests that got an HTTP answer, by status.
    pub by_status: BTreeMap<u16, u64>,
    /// Identities and guids of accepted requests.
    pub values: u64,
    /// Of those, how many removed a stored profile.
    pub profiles_removed: u64,
    /// Admitted requests not finished yet.
    pub in_flight: usize,
    /// Requests refused with 429 by the per-account cap of this API.
    pub throttled: u64,
}

/// Everything the delete endpoint counts, behind one short-held mutex.
pub(crate) struct DeleteBook {
    stats: DeleteStats,
    flights: HashMap<String, usize>,
    /// Every request between `begin` and `finish`, refused ones included.
    attempted: usize,
    log: VecDeque<Deletion>,
    next_seq: u64,
    history_limit: usize,
}

impl DeleteBook {
    pub(crate) fn new(history_limit: usize) -> Self {
        DeleteBook {
            stats: DeleteStats::default(),
            flights: HashMap::new(),
            attempted: 0,
            log: VecDeque::new(),
            next_seq: 0,
            history_limit: history_limit.max(1),
        }
    }

    /// Counts a request; `Some(seq)` when it is admitted: a known account under `max_in_flight`
    /// delete requests of its own (CleverTap caps concurrency per account and per API).
    pub(crate) fn begin(
        &mut self,
        account: &str,
        known: bool,
        max_in_flight: usize,
    ) -> Option<u64> {
        self.stats.requests += 1;
        self.attempted += 1;
        if !known {
            return None;
        }
        let in_flight = self.flights.entry(account.to_owned()).or_default();
        if *in_flight >= max_in_flight {
            self.stats.throttled += 1;
            return None;
        }
        *in_flight += 1;
        self.stats.in_flight += 1;
        let seq = self.next_seq;
        self.next_seq += 1;
        Some(seq)
    }

    /// Ends a request begun with `begin`; `status` is `None` when no answer was sent.
    pub(crate) fn finish(&mut self, account: &str, admitted: bool, status: Option<u16>) {
        self.attempted = self.attempted.saturating_sub(1);
        if admitted {
            if let Some(n) = self.flights.get_mut(account) {
                *n = n.saturating_sub(1);
            }
            self.stats.in_flight = self.stats.in_flight.saturating_sub(1);
        }
        if let Some(status) = status {
            *self.stats.by_status.entry(status).or_default() += 1;
        }
    }

    pub(crate) fn record(&mut self, deletion: Deletion) {
        self.stats.values += 1;
        if deletion.removed {
            self.stats.profiles_removed += 1;
        }
        if self.log.len() >= self.history_limit {
            self.log.pop_front();
        }
        self.log.push_back(deletion);
    }

    /// Counters and log cleared; requests still in flight keep their slots.
    pub(crate) fn clear(&mut self) {
        self.stats = DeleteStats {
            in_flight: self.stats.in_flight,
            ..DeleteStats::default()
        };
        self.log.clear();
    }

    pub(crate) fn attempted(&self) -> usize {
        self.attempted
    }

    pub(crate) fn stats(&self) -> DeleteStats {
        self.stats.clone()
    }

    pub(crate) fn deletions(&self) -> Vec<Deletion> {
        self.log.iter().cloned().collect()
    }
}
