//! Wall-clock time as the queue and the logs count it: milliseconds since the Unix epoch.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A duration in whole milliseconds, saturating.
pub fn duration_ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Milliseconds (possibly negative, then zero) as a duration.
pub fn ms_duration(ms: i64) -> Duration {
    Duration::from_millis(u64::try_from(ms.max(0)).unwrap_or(0))
}

/// `hours` as milliseconds.
pub fn hours_ms(hours: u64) -> i64 {
    duration_ms(Duration::from_secs(hours.saturating_mul(3600)))
}

/// An RFC 3339 timestamp for answers and logs; empty for a time out of range.
pub fn iso(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_convert_both_ways() {
        assert_eq!(ms_duration(-5), Duration::ZERO);
        assert_eq!(ms_duration(1500), Duration::from_millis(1500));
        assert_eq!(hours_ms(2), 7_200_000);
        assert_eq!(iso(0), "1970-01-01T00:00:00.000Z");
    }
}
