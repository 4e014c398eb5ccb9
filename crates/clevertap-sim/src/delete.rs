//! The `POST /1/delete/profiles.json` handler: auth → concurrency cap → faults → body → delete.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::Value;

use crate::deletions::{DeleteKey, Deletion};
use crate::fault_set::Action;
use crate::gate::{self, Gate, header};
use crate::json::{error_response, error_text, json_response, to_bytes};
use crate::locks::lock;
use crate::net::ConnCtl;
use crate::state::Inner;
use crate::stats::RequestOutcome;

/// CleverTap's per-request limit on `identity` and `guid` arrays.
const MAX_DELETE_VALUES: usize = 100;

/// One delete request's flight: releases its in-flight slot and counts its status when
/// dropped, so a request cancelled mid-way is still accounted for.
struct DeleteFlight {
    inner: Arc<Inner>,
    account: String,
    admitted: Option<u64>,
    done: bool,
}

impl DeleteFlight {
    fn end(&mut self, status: Option<u16>) {
        if !self.done {
            self.done = true;
            lock(&self.inner.deletions).finish(&self.account, self.admitted.is_some(), status);
            self.inner.notify.notify_waiters();
        }
    }

    fn answer(mut self, status: u16, resp: Response) -> Response {
        self.end(Some(status));
        resp
    }

    fn fail(self, status: u16, error: &str) -> Response {
        let cfg = &self.inner.config;
        let resp = error_response(status, error, cfg.space_padded, cfg.retry_after_secs);
        self.answer(status, resp)
    }
}

impl Drop for DeleteFlight {
    fn drop(&mut self) {
        self.end(None);
    }
}

/// The values a delete body names, or the 400 text. `identity` or `guid` (never both), a
/// string or an array of 1 to 100 non-empty strings; numbers are taken as their text, as
/// `/1/upload` takes a numeric identity.
fn parse_delete(body: &[u8]) -> Result<(DeleteKey, Vec<String>), &'static str> {
    let Ok(Value::Object(obj)) = serde_json::from_slice::<Value>(body) else {
        return Err(error_text(400));
    };
    let (key, value) = match (obj.get("identity"), obj.get("guid")) {
        (Some(_), Some(_)) => return Err("Only one of identity or guid may be given"),
        (Some(v), None) => (DeleteKey::Identity, v),
        (None, Some(v)) => (DeleteKey::Guid, v),
        (None, None) => return Err("identity or guid is required"),
    };
    let items = match value {
        Value::Array(items) => items.iter().collect(),
        single => vec![single],
    };
    if items.len() > MAX_DELETE_VALUES {
        return Err("At most 100 values per request");
    }
    let values: Option<Vec<String>> = items
        .into_iter()
        .map(|v| match v {
            Value::String(s) if !s.trim().is_empty() => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        })
        .collect();
    match values {
        Some(values) if !values.is_empty() => Ok((key, values)),
        _ => Err("identity and guid values must be non-empty strings"),
    }
}

/// `POST /1/delete/profiles.json` (any host).
pub async fn delete_profiles(State(inner): State<Arc<Inner>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let ctl = parts.extensions.get::<ConnCtl>().cloned();
    let cfg = &inner.config;
    let account = header(&parts.headers, "x-clevertap-account-id");
    let auth = inner
        .faults
        .check_auth(account, header(&parts.headers, "x-clevertap-passcode"));
    let admitted = lock(&inner.deletions).begin(account, auth.is_ok(), cfg.max_in_flight);
    inner.notify.notify_waiters();
    let flight = DeleteFlight {
        inner: Arc::clone(&inner),
        account: account.to_owned(),
        admitted,
        done: false,
    };
    let bytes = axum::body::to_bytes(body, cfg.max_body_bytes).await;
    if let Err(error) = auth {
        return flight.fail(401, error);
    }
    let Some(seq) = admitted else {
        return flight.fail(429, error_text(429));
    };
    let decision = match gate::pass(&inner, account).await {
        Gate::Open(decision) => decision,
        Gate::Fail(status) => return flight.fail(status, error_text(status)),
        Gate::Vanish(outcome) => return gate::vanish(flight, outcome, ctl).await,
    };
    let Ok(bytes) = bytes else {
        return flight.fail(413, error_text(413));
    };
    let (key, values) = match parse_delete(&bytes) {
        Ok(parsed) => parsed,
        Err(error) => return flight.fail(400, error),
    };
    apply(&inner, seq, account, key, values);
    if decision.action == Action::StoreThenDrop {
        return gate::vanish(flight, RequestOutcome::StoredThenDropped, ctl).await;
    }
    let body = to_bytes(&serde_json::json!({"status": "success"}), cfg.space_padded);
    flight.answer(200, json_response(StatusCode::OK, body))
}

/// Removes each named profile and logs one deletion per value, in order.
fn apply(inner: &Inner, seq: u64, account: &str, key: DeleteKey, values: Vec<String>) {
    let unix_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    let at_us = u64::try_from(inner.epoch.elapsed().as_micros()).unwrap_or(u64::MAX);
    let mut store = lock(&inner.store);
    let mut book = lock(&inner.deletions);
    for value in values {
        let removed = store.remove_profile(&value);
        book.record(Deletion {
            seq,
            account_id: account.to_owned(),
            key,
            value,
            removed,
            tick: inner.tick(),
            at_us,
            unix_ms,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_name_identities_or_guids_within_the_limit() {
        let ok = |body: &str| parse_delete(body.as_bytes());
        assert_eq!(
            ok(r#"{"identity":"x"}"#),
            Ok((DeleteKey::Identity, vec!["x".to_owned()]))
        );
        assert_eq!(
            ok(r#"{"guid":["a","b"],"other":1}"#),
            Ok((DeleteKey::Guid, vec!["a".to_owned(), "b".to_owned()]))
        );
        assert_eq!(
            ok(r#"{"identity":[4]}"#),
            Ok((DeleteKey::Identity, vec!["4".to_owned()]))
        );
        let hundred: Vec<String> = (0..100).map(|i| format!("u{i}")).collect();
        let body = serde_json::json!({ "identity": hundred }).to_string();
        assert_eq!(ok(&body).map(|(_, v)| v.len()), Ok(100));
    }

    #[test]
    fn every_refused_body_says_why() {
        let hundred_one: Vec<String> = (0..101).map(|i| format!("u{i}")).collect();
        let too_many = serde_json::json!({ "identity": hundred_one }).to_string();
        for (body, error) in [
            ("not json", "Malformed request"),
            ("[\"x\"]", "Malformed request"),
            (
                r#"{"identity":"x","guid":"y"}"#,
                "Only one of identity or guid may be given",
            ),
            ("{}", "identity or guid is required"),
            (too_many.as_str(), "At most 100 values per request"),
            (
                r#"{"identity":[]}"#,
                "identity and guid values must be non-empty strings",
            ),
            (
                r#"{"guid":[" "]}"#,
                "identity and guid values must be non-empty strings",
            ),
            (
                r#"{"identity":{"a":1}}"#,
                "identity and guid values must be non-empty strings",
            ),
        ] {
            assert_eq!(parse_delete(body.as_bytes()), Err(error), "{body}");
        }
    }
}
