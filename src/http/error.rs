//! ApiError and its one IntoResponse: the JSON error envelope every failure answers with.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::queue::QueueError;

tokio::task_local! {
    /// The request id of the request being served (set by the request-context middleware).
    pub static REQUEST_ID: String;
}

pub fn current_request_id() -> String {
    REQUEST_ID.try_with(Clone::clone).unwrap_or_default()
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("no route named {0:?}")]
    UnknownRoute(String),
    #[error("missing or wrong token")]
    Unauthorized,
    #[error("body is larger than {0} bytes")]
    TooLarge(usize),
    #[error(
        "content type {0:?} is not supported; send application/json or application/x-www-form-urlencoded"
    )]
    UnsupportedType(String),
    #[error("{message}")]
    InvalidBody {
        message: String,
        dead_letter_id: Option<i64>,
    },
    #[error("the relay is shutting down")]
    ShuttingDown,
    #[error("the relay is overloaded; retry shortly")]
    Overloaded,
    #[error("the queue is unavailable")]
    Queue(#[from] QueueError),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Conflict(String),
    #[error("the request took too long")]
    Timeout,
    #[error("method not allowed here")]
    MethodNotAllowed,
}

impl ApiError {
    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            Self::UnknownRoute(_) => (StatusCode::NOT_FOUND, "unknown_route"),
            Self::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
            Self::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "too_large"),
            Self::UnsupportedType(_) => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_type"),
            Self::InvalidBody { .. } => (StatusCode::BAD_REQUEST, "invalid_body"),
            Self::ShuttingDown | Self::Queue(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            Self::Overloaded => (StatusCode::SERVICE_UNAVAILABLE, "overloaded"),
            Self::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            Self::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            Self::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            Self::Timeout => (StatusCode::REQUEST_TIMEOUT, "timeout"),
            Self::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
        }
    }
}

/// Queue errors answered with 503, logged at most once per [`LOG_INTERVAL_MS`].
static QUEUE_ERRORS: LogInterval = LogInterval::new();
/// Webhooks shed under load, logged likewise.
static SHED: LogInterval = LogInterval::new();
const LOG_INTERVAL_MS: i64 = 10_000;

/// At most one log line per interval, counting the events it stands for.
struct LogInterval {
    last_ms: AtomicI64,
    since: AtomicU64,
}

impl LogInterval {
    const fn new() -> Self {
        Self {
            last_ms: AtomicI64::new(i64::MIN),
            since: AtomicU64::new(0),
        }
    }

    /// `Some(n)`: log now, for the `n` events since the last line (this one included).
    fn admit(&self, now_ms: i64) -> Option<u64> {
        let count = self.since.fetch_add(1, Ordering::AcqRel) + 1;
        let last = self.last_ms.load(Ordering::Acquire);
        let due = last == i64::MIN || now_ms.saturating_sub(last) >= LOG_INTERVAL_MS;
        if due
            && self
                .last_ms
                .compare_exchange(last, now_ms, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            self.since.fetch_sub(count, Ordering::AcqRel);
            return Some(count);
        }
        None
    }
}

/// Logs a shed webhook or upload: one WARN line per interval, counting those since the last.
pub(super) fn note_shed() {
    if let Some(shed) = SHED.admit(crate::clock::now_ms()) {
        tracing::warn!(
            shed,
            "intake overloaded: webhooks shed with 503 (see server.max_concurrent_requests, max_wait_ms, max_waiting_bytes)"
        );
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        if let Self::Queue(error) = &self {
            // The cause is logged here, the caller only learns it should retry; during an outage
            // every request fails alike, so at most one line per interval says how many did.
            if let Some(refused) = QUEUE_ERRORS.admit(crate::clock::now_ms()) {
                tracing::error!(error = %error, refused, "queue unavailable; answering 503");
            }
        }
        let mut body = json!({
            "error": {"code": code, "message": self.to_string()},
            "request_id": current_request_id(),
        });
        if let Self::InvalidBody {
            dead_letter_id: Some(id),
            ..
        } = &self
        {
            body["dead_letter_id"] = json!(id);
        }
        let mut response = (status, axum::Json(body)).into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            // Overload clears in moments; a queue outage or a restart takes longer.
            let after = if matches!(self, Self::Overloaded) {
                "1"
            } else {
                "5"
            };
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static(after));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::LogInterval;

    #[test]
    fn an_outage_logs_one_line_per_interval_with_the_count() {
        let interval = LogInterval::new();
        assert_eq!(interval.admit(1_000), Some(1));
        for at in 1_001..1_100 {
            assert_eq!(interval.admit(at), None);
        }
        assert_eq!(interval.admit(11_000), Some(100));
        assert_eq!(interval.admit(11_001), None);
    }
}
