//! The `POST /1/upload` handler: auth → concurrency cap → faults → envelope → per-record checks → store.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use serde_json::Value;

use crate::answer::upload_answer;
use crate::fault_set::{Action, Decision};
use crate::gate::{self, Gate, header};
use crate::json::{error_response, error_text, json_response, mask_identity, mask_secret};
use crate::locks::lock;
use crate::net::ConnCtl;
use crate::state::Inner;
use crate::stats::{Finish, RequestOutcome};
use crate::validate::{Rules, judge};

#[derive(Deserialize)]
struct Envelope {
    d: Vec<Value>,
}

/// One request's flight: releases its in-flight slot and completes its log entry when dropped,
/// so a request cancelled mid-way (client gone, outage) is still accounted for.
struct Flight {
    inner: Arc<Inner>,
    seq: u64,
    account: String,
    known: bool,
    admitted: bool,
    records: usize,
    processed: usize,
    unprocessed: usize,
    done: bool,
}

impl Flight {
    fn end(&mut self, status: Option<u16>, outcome: RequestOutcome) {
        if self.done {
            return;
        }
        self.done = true;
        let tick = self.inner.tick();
        let finish = Finish {
            status,
            outcome,
            records: self.records,
            processed: self.processed,
            unprocessed: self.unprocessed,
        };
        lock(&self.inner.book).finish(
            self.seq,
            &self.account,
            self.known,
            self.admitted,
            finish,
            tick,
        );
        self.inner.notify.notify_waiters();
    }

    fn answer(mut self, status: u16, resp: Response) -> Response {
        self.end(Some(status), RequestOutcome::Answered);
        resp
    }

    fn fail(self, status: u16, error: &str) -> Response {
        let cfg = &self.inner.config;
        let resp = error_response(status, error, cfg.space_padded, cfg.retry_after_secs);
        self.answer(status, resp)
    }

    /// Marks the outcome, closes the connection without an answer and never resolves.
    async fn vanish(self, outcome: RequestOutcome, ctl: Option<ConnCtl>) -> Response {
        lock(&self.inner.book).mark(self.seq, outcome);
        gate::vanish(self, outcome, ctl).await
    }
}

impl Drop for Flight {
    fn drop(&mut self) {
        self.end(None, RequestOutcome::Abandoned);
    }
}

/// `POST /1/upload` (any host).
pub async fn upload(State(inner): State<Arc<Inner>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let ctl = parts.extensions.get::<ConnCtl>().cloned();
    let query = parts.uri.query();
    let cfg = &inner.config;
    let account = header(&parts.headers, "x-clevertap-account-id");
    let passcode = header(&parts.headers, "x-clevertap-passcode");
    let auth = inner.faults.check_auth(account, passcode);
    // Counted in flight from arrival, before the body is read.
    let tick = inner.tick();
    let admission = lock(&inner.book).begin(
        account,
        mask_secret(passcode),
        auth.is_ok(),
        cfg.max_in_flight,
        tick,
    );
    inner.notify.notify_waiters();
    let flight = Flight {
        inner: Arc::clone(&inner),
        seq: admission.seq,
        account: account.to_owned(),
        known: auth.is_ok(),
        admitted: admission.admitted,
        records: 0,
        processed: 0,
        unprocessed: 0,
        done: false,
    };
    let (bytes, too_large) = match axum::body::to_bytes(body, cfg.max_body_bytes).await {
        Ok(bytes) => (bytes, false),
        Err(_) => (Bytes::new(), true),
    };
    lock(&inner.book).set_body(admission.seq, bytes.clone());
    if let Err(error) = auth {
        return flight.fail(401, error);
    }
    if !admission.admitted {
        return flight.fail(429, error_text(429));
    }

    let decision = match gate::pass(&inner, account).await {
        Gate::Open(decision) => decision,
        Gate::Fail(status) => return flight.fail(status, error_text(status)),
        Gate::Vanish(outcome) => return flight.vanish(outcome, ctl).await,
    };
    if too_large {
        return flight.fail(413, error_text(413));
    }
    let records = match serde_json::from_slice::<Envelope>(&bytes) {
        Ok(envelope) if envelope.d.len() <= cfg.max_records => envelope.d,
        _ => return flight.fail(400, error_text(400)),
    };
    process(flight, records, query, decision, ctl).await
}

async fn process(
    mut flight: Flight,
    records: Vec<Value>,
    query: Option<&str>,
    decision: Decision,
    ctl: Option<ConnCtl>,
) -> Response {
    let inner = Arc::clone(&flight.inner);
    let cfg = &inner.config;
    let rules = Rules {
        enforce_custom_id_charset: cfg.enforce_custom_id_charset,
        restricted_events: &cfg.restricted_events,
        max_event_properties: cfg.max_event_properties,
    };
    flight.records = records.len();
    // A record code of 400 refuses the whole request carrying that record (as a malformed
    // record makes CleverTap answer 400), so clients can exercise bisection.
    let malformed = records.iter().any(|r| {
        ["identity", "objectId"].iter().any(|k| {
            r.get(*k)
                .and_then(Value::as_str)
                .is_some_and(|id| decision.record_codes.get(id) == Some(&400))
        })
    });
    if malformed {
        return flight.fail(400, error_text(400));
    }
    let judged = judge(records, &rules, &decision.record_codes);
    flight.processed = judged.accepted.len();
    flight.unprocessed = judged.unprocessed.len();

    let body = upload_answer(cfg.answer_shape, &judged, cfg.space_padded);
    let dry_run = query.is_some_and(|q| q.split('&').any(|p| p == "dryRun=1"));
    if !dry_run && !judged.accepted.is_empty() {
        if cfg.log_records {
            for a in &judged.accepted {
                let kind = a.record.get("type").and_then(Value::as_str).unwrap_or("");
                let name = a
                    .record
                    .get("evtName")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                tracing::info!(account = %flight.account, identity = %mask_identity(&a.key), kind, event = name, "clevertap simulator stored a record");
            }
        }
        let mut store = lock(&inner.store);
        for accepted in judged.accepted {
            store.apply(accepted);
        }
        inner
            .accepted_count
            .store(store.accepted_total(), Ordering::SeqCst);
        drop(store);
        inner.notify.notify_waiters();
    }
    if decision.action == Action::StoreThenDrop {
        return flight.vanish(RequestOutcome::StoredThenDropped, ctl).await;
    }
    flight.answer(200, json_response(StatusCode::OK, body))
}
