//! Turns Freshsales date text, ISO 8601 or epoch numbers into epoch seconds (CleverTap's `$D_` dates).

use chrono::format::{Item, StrftimeItems};
use chrono::{
    DateTime, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeDelta, TimeZone, Timelike as _,
};
use chrono_tz::Tz;

/// Values above this are taken as milliseconds: 10^11 s is the year 5138, 10^11 ms is 1973.
const MILLIS_THRESHOLD: i64 = 100_000_000_000;

/// Specifiers that start the time part of a strftime format; the text before the first one is
/// the date part, which Freshsales uses alone for date fields.
const TIME_SPECIFIERS: [&str; 12] = [
    "%H", "%I", "%k", "%l", "%M", "%S", "%T", "%R", "%p", "%P", "%X", "%r",
];

#[derive(Debug, Clone)]
pub(crate) struct DateParser {
    format: String,
    date_part: Option<String>,
    tz: Tz,
}

/// A strftime format is usable only if chrono can read every item in it.
pub(crate) fn format_is_valid(format: &str) -> bool {
    !format.trim().is_empty() && StrftimeItems::new(format).all(|item| !matches!(item, Item::Error))
}

impl DateParser {
    pub(crate) fn new(format: &str, tz: Tz) -> Self {
        let cut = TIME_SPECIFIERS
            .iter()
            .filter_map(|spec| format.find(spec))
            .min()
            .unwrap_or(format.len());
        let date_part = format[..cut]
            .trim_end_matches([' ', 'T', ',', '\t'])
            .to_string();
        Self {
            format: format.to_string(),
            date_part: (!date_part.is_empty() && date_part != format).then_some(date_part),
            tz,
        }
    }

    /// Epoch seconds for a JSON value, or None when it is not a date this route understands.
    pub(crate) fn epoch_of_json(&self, value: &serde_json::Value) -> Option<i64> {
        match value {
            serde_json::Value::Number(n) => n
                .as_i64()
                .or_else(|| {
                    n.as_f64()
                        .filter(|f| f.is_finite() && f.abs() < 9.0e15)
                        .map(|f| f.trunc() as i64)
                })
                .map(from_epoch_number),
            serde_json::Value::String(s) => self.epoch_of_text(s),
            _ => None,
        }
    }

    pub(crate) fn epoch_of_text(&self, text: &str) -> Option<i64> {
        let text = text.trim();
        if text.is_empty() {
            return None;
        }
        if let Some(rest) = text.strip_prefix("$D_") {
            return rest.parse::<i64>().ok();
        }
        if let Ok(naive) = NaiveDateTime::parse_from_str(text, &self.format) {
            return self.local_epoch(naive);
        }
        if let Ok(date) = NaiveDate::parse_from_str(text, &self.format) {
            return self.local_epoch(date.and_time(NaiveTime::MIN));
        }
        if let Some(part) = &self.date_part
            && let Ok(date) = NaiveDate::parse_from_str(text, part)
        {
            return self.local_epoch(date.and_time(NaiveTime::MIN));
        }
        if is_epoch_digits(text) {
            return text.parse::<i64>().ok().map(from_epoch_number);
        }
        self.iso_epoch(text)
    }

    fn iso_epoch(&self, text: &str) -> Option<i64> {
        if let Ok(dt) = DateTime::parse_from_rfc3339(text) {
            return Some(dt.timestamp());
        }
        for format in ["%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%d %H:%M:%S%.f%z"] {
            if let Ok(dt) = DateTime::parse_from_str(text, format) {
                return Some(dt.timestamp());
            }
        }
        for format in [
            "%Y-%m-%dT%H:%M:%S%.f",
            "%Y-%m-%d %H:%M:%S%.f",
            "%Y-%m-%dT%H:%M",
            "%Y-%m-%d %H:%M",
        ] {
            if let Ok(naive) = NaiveDateTime::parse_from_str(text, format) {
                return self.local_epoch(naive);
            }
        }
        NaiveDate::parse_from_str(text, "%Y-%m-%d")
            .ok()
            .and_then(|date| self.local_epoch(date.and_time(NaiveTime::MIN)))
    }

    /// Local wall time → instant. A fold takes the earlier instant; a DST gap takes the first
    /// valid minute after it, since the wall time never existed and the change happened then.
    fn local_epoch(&self, naive: NaiveDateTime) -> Option<i64> {
        let mut probe = naive;
        // Gaps are at most a few hours; a day bounds the search for any zone history.
        for _ in 0..=(24 * 60) {
            match self.tz.from_local_datetime(&probe) {
                LocalResult::Single(dt) => return Some(dt.timestamp()),
                LocalResult::Ambiguous(earliest, _) => return Some(earliest.timestamp()),
                LocalResult::None => {
                    let next = probe.checked_add_signed(TimeDelta::minutes(1))?;
                    probe = next.with_second(0)?;
                }
            }
        }
        None
    }
}

fn is_epoch_digits(text: &str) -> bool {
    let digits = text.strip_prefix('-').unwrap_or(text);
    !digits.is_empty() && digits.len() <= 16 && digits.bytes().all(|b| b.is_ascii_digit())
}

/// Epoch seconds from a number that may be milliseconds.
pub(crate) fn from_epoch_number(n: i64) -> i64 {
    if n.unsigned_abs() > MILLIS_THRESHOLD.unsigned_abs() {
        n / 1000
    } else {
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parser(format: &str, tz: &str) -> DateParser {
        DateParser::new(format, tz.parse().unwrap())
    }

    #[test]
    fn parses_each_accepted_shape() {
        let uk = parser("%d-%m-%Y %H:%M:%S", "UTC");
        let us = parser("%m-%d-%Y %H:%M:%S", "UTC");
        let cases: [(&str, &DateParser, &str, Option<i64>); 13] = [
            ("date part alone", &uk, "14-03-1990", Some(637_372_800)),
            (
                "full datetime",
                &uk,
                "26-11-2026 09:14:33",
                Some(1_795_684_473),
            ),
            ("us date part", &us, "11-26-2026", Some(1_795_651_200)),
            (
                "us datetime",
                &us,
                "03-02-2025 08:00:00",
                Some(1_740_902_400),
            ),
            ("iso date", &uk, "1990-03-14", Some(637_372_800)),
            (
                "iso datetime naive",
                &uk,
                "1990-03-14T00:00:00",
                Some(637_372_800),
            ),
            (
                "rfc3339 with offset",
                &uk,
                "1990-03-14T01:00:00+01:00",
                Some(637_372_800),
            ),
            ("epoch seconds text", &uk, "637372800", Some(637_372_800)),
            ("epoch millis text", &uk, "637372800000", Some(637_372_800)),
            ("already $D_", &uk, "$D_637372800", Some(637_372_800)),
            ("garbage", &uk, "next tuesday", None),
            ("month 13 in uk format", &uk, "14-13-1990", None),
            ("empty", &uk, "  ", None),
        ];
        for (name, p, input, want) in cases {
            assert_eq!(p.epoch_of_text(input), want, "case {name}");
        }
    }

    #[test]
    fn honours_timezone_gaps_and_folds() {
        let london = parser("%d-%m-%Y %H:%M:%S", "Europe/London");
        // 2026-03-29 01:30 does not exist in London (clocks go 01:00 → 02:00): first valid is 02:00 BST = 01:00 UTC.
        assert_eq!(
            london.epoch_of_text("29-03-2026 01:30:00"),
            Some(1_774_746_000),
            "gap"
        );
        // 2026-10-25 01:30 happens twice: the earlier is BST (00:30 UTC).
        assert_eq!(
            london.epoch_of_text("25-10-2026 01:30:00"),
            Some(1_792_888_200),
            "fold"
        );
        assert_eq!(
            london.epoch_of_text("14-07-2026 12:00:00"),
            Some(1_784_026_800),
            "summer time"
        );
    }

    #[test]
    fn json_numbers_are_epoch_seconds() {
        let p = parser("%d-%m-%Y %H:%M:%S", "UTC");
        assert_eq!(
            p.epoch_of_json(&serde_json::json!(637_372_800)),
            Some(637_372_800),
            "int"
        );
        assert_eq!(
            p.epoch_of_json(&serde_json::json!(637_372_800.7)),
            Some(637_372_800),
            "float"
        );
        assert_eq!(p.epoch_of_json(&serde_json::json!(true)), None, "bool");
    }

    #[test]
    fn validates_formats() {
        assert!(format_is_valid("%d-%m-%Y %H:%M:%S"), "account format");
        assert!(!format_is_valid("%d-%m-%Y %Q"), "unknown specifier");
        assert!(!format_is_valid(""), "empty");
    }
}
