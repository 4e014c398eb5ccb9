//! Backoff and giving up: exponential with full jitter; dead after max attempts or max age.

use std::time::Duration;

/// The delay before attempt `attempt + 1`: uniformly within `[0, min(base·2^attempt, max)]`.
/// `unit` is a random number in `[0, 1]` (the caller passes `rand::random()`).
pub fn next_delay(attempt: u32, base: Duration, max: Duration, unit: f64) -> Duration {
    let ceiling = base
        .saturating_mul(2_u32.saturating_pow(attempt.min(31)))
        .min(max);
    ceiling.mul_f64(unit.clamp(0.0, 1.0))
}

/// Why a row stops being retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GiveUp {
    MaxAttempts,
    MaxAge,
}

/// After `attempts` failed attempts, at `now_ms`, for a row whose age deadline is
/// `deadline_ms`: give up, or retry?
pub fn give_up(attempts: u32, max_attempts: u32, now_ms: i64, deadline_ms: i64) -> Option<GiveUp> {
    if attempts >= max_attempts {
        Some(GiveUp::MaxAttempts)
    } else if now_ms >= deadline_ms {
        Some(GiveUp::MaxAge)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_cap_with_full_jitter() {
        let base = Duration::from_millis(1000);
        let max = Duration::from_secs(600);
        let cases = [
            (0, 1.0, Duration::from_secs(1)),
            (1, 1.0, Duration::from_secs(2)),
            (3, 1.0, Duration::from_secs(8)),
            (3, 0.5, Duration::from_secs(4)),
            (3, 0.0, Duration::ZERO),
            (20, 1.0, max),
            (u32::MAX, 1.0, max),
            (2, 7.0, Duration::from_secs(4)),
        ];
        for (attempt, unit, expected) in cases {
            assert_eq!(
                next_delay(attempt, base, max, unit),
                expected,
                "attempt {attempt}, unit {unit}"
            );
        }
    }

    #[test]
    fn rows_give_up_on_attempts_or_age_whichever_first() {
        assert_eq!(give_up(20, 20, 0, 100), Some(GiveUp::MaxAttempts));
        assert_eq!(give_up(3, 20, 100, 100), Some(GiveUp::MaxAge));
        assert_eq!(give_up(3, 20, 99, 100), None);
    }
}
