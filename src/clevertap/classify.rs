//! CleverTap's answer to one request → what happens to each record (CleverTap reference §5).

use std::time::{Duration, SystemTime};

use serde_json::Value;

use super::model::UploadResponse;

/// What came back from one `/1/upload` request.
#[derive(Debug, Clone)]
pub enum Reply {
    Http {
        status: u16,
        retry_after: Option<String>,
        body: Vec<u8>,
    },
    Timeout,
    Connect(String),
    Other(String),
}

/// What becomes of one record: the one verdict type from the classifier to the queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordVerdict {
    Delivered,
    /// Refused for good: CleverTap's code (or the HTTP status of a lone refused record).
    Dead {
        code: u16,
        reason: String,
    },
    /// Again later, with backoff. `count_attempt` is false for a failure that is not the
    /// record's (429); a `retry_after` from CleverTap sets the least wait.
    Retry {
        reason: String,
        count_attempt: bool,
        retry_after: Option<Duration>,
    },
    /// Not judged: back to pending at once, no attempt counted (a held account, a lease about
    /// to run out).
    Release,
}

/// How a request failed as a whole, which decides whether the account is in trouble.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// 429: too many concurrent requests; costs no attempt.
    Throttled,
    /// Connection refused or reset, timeout, 502/503/504: CleverTap (or the way to it) is down.
    Outage,
    /// 500 and other server answers: the batch's own fault, or the start of an outage.
    Server,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// One verdict per record sent, in order.
    Records(Vec<RecordVerdict>),
    /// Nothing was stored (or the outcome is unknown): every record again, later.
    RetryAll {
        retry_after: Option<Duration>,
        failure: Failure,
        reason: String,
    },
    /// Credentials or configuration are wrong: burn nothing, stop sending to the account.
    Pause { reason: String },
    /// The request as a whole was refused: split it to find the record at fault.
    Bisect { reason: String },
}

/// Decides what an answer means for the `sent` records.
pub fn classify(reply: &Reply, sent: &[&Value], now: SystemTime) -> Verdict {
    match reply {
        Reply::Timeout => retry(Failure::Outage, "timed out waiting for CleverTap"),
        Reply::Connect(error) => retry(
            Failure::Outage,
            &format!("could not connect to CleverTap: {error}"),
        ),
        Reply::Other(error) => retry(
            Failure::Outage,
            &format!("request to CleverTap failed: {error}"),
        ),
        Reply::Http {
            status,
            retry_after,
            body,
        } => match status {
            200..=299 => classify_success(body, sent),
            400 | 413 => Verdict::Bisect {
                reason: format!("CleverTap answered {status}: {}", error_text(body)),
            },
            401 | 403 => Verdict::Pause {
                reason: format!(
                    "CleverTap answered {status} ({}): check account_id, passcode and region",
                    error_text(body)
                ),
            },
            404 | 405 | 415 => Verdict::Pause {
                reason: format!("CleverTap answered {status}: check base_url and region"),
            },
            _ => Verdict::RetryAll {
                retry_after: retry_after
                    .as_deref()
                    .and_then(|v| parse_retry_after(v, now)),
                failure: match status {
                    429 => Failure::Throttled,
                    502..=504 => Failure::Outage,
                    _ => Failure::Server,
                },
                reason: if *status == 429 {
                    "CleverTap answered 429: too many concurrent requests".into()
                } else {
                    format!("CleverTap answered {status}")
                },
            },
        },
    }
}

/// Decides what an answer to a `/1/delete/profiles.json` request means for its `count`
/// values: a 2xx whose `status` is not `fail` deletes them all (CleverTap answers
/// `{"status":"success"}`, for profiles it never held too); a `fail` in a 2xx is a refusal of
/// the request (split to find the value at fault); any other status reads as for an upload.
pub fn classify_delete(reply: &Reply, count: usize, now: SystemTime) -> Verdict {
    let Reply::Http {
        status: 200..=299,
        body,
        ..
    } = reply
    else {
        return classify(reply, &[], now);
    };
    let Ok(answer) = serde_json::from_slice::<Value>(body) else {
        return retry(
            Failure::Server,
            "CleverTap answered 200 with a body that is not JSON; outcome unknown",
        );
    };
    if answer.get("status").and_then(Value::as_str) == Some("fail") {
        return Verdict::Bisect {
            reason: format!("CleverTap refused the deletion: {}", error_text(body)),
        };
    }
    Verdict::Records(vec![RecordVerdict::Delivered; count])
}

fn retry(failure: Failure, reason: &str) -> Verdict {
    Verdict::RetryAll {
        retry_after: None,
        failure,
        reason: reason.to_owned(),
    }
}

fn error_text(body: &[u8]) -> String {
    serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v.get("error").and_then(Value::as_str).map(str::to_owned))
        .unwrap_or_else(|| "no error text".to_owned())
}

fn classify_success(body: &[u8], sent: &[&Value]) -> Verdict {
    let Some(response) = UploadResponse::parse(body) else {
        return retry(
            Failure::Server,
            "CleverTap answered 200 with a body that is not JSON; outcome unknown",
        );
    };
    if response.unprocessed.is_empty() {
        return if response.processed == Some(0) && !sent.is_empty() {
            Verdict::Bisect {
                reason: "CleverTap processed 0 records and named none".into(),
            }
        } else {
            Verdict::Records(vec![RecordVerdict::Delivered; sent.len()])
        };
    }
    let mut verdicts = vec![RecordVerdict::Delivered; sent.len()];
    for item in &response.unprocessed {
        let verdict = if item.code == 555 {
            RecordVerdict::Retry {
                reason: format!("555: {}", item.error),
                count_attempt: true,
                retry_after: None,
            }
        } else {
            RecordVerdict::Dead {
                code: item.code,
                reason: item.error.clone(),
            }
        };
        for index in blamed(item, sent) {
            verdicts[index] = verdict.clone();
        }
    }
    Verdict::Records(verdicts)
}

/// Which sent records an `unprocessed` entry is about: its record number, else the records
/// matching its echo (id, type, event name), else every record with the echo's id.
fn blamed(item: &super::model::Unprocessed, sent: &[&Value]) -> Vec<usize> {
    if let Some(index) = item.skipped_index().filter(|i| *i < sent.len()) {
        return vec![index];
    }
    let Some(echo) = &item.record else {
        return Vec::new();
    };
    let exact: Vec<usize> = (0..sent.len())
        .filter(|&i| {
            same_id(sent[i], echo)
                && sent[i].get("type") == echo.get("type")
                && sent[i].get("evtName") == echo.get("evtName")
        })
        .collect();
    if !exact.is_empty() {
        return exact;
    }
    (0..sent.len())
        .filter(|&i| same_id(sent[i], echo))
        .collect()
}

fn same_id(a: &Value, b: &Value) -> bool {
    ["identity", "objectId", "FBID", "GPID"]
        .iter()
        .any(|key| match (a.get(*key), b.get(*key)) {
            (Some(x), Some(y)) => id_text(x) == id_text(y),
            _ => false,
        })
}

fn id_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `Retry-After` in seconds or as an HTTP date.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests;
