//! The global `[mapping]` settings checked once, each problem naming `mapping.<key>`, its
//! environment variable and a hint (`UK` → `GB`, the nearest IANA zone name); routes then
//! report only what is their own.

use super::{MappingSettings, dates, phones};
use crate::config::{env_var, nearest};

/// Common region codes that are not ISO 3166 alpha-2, and the code meant.
const REGION_HINTS: &[(&str, &str)] = &[
    ("UK", "GB"),
    ("EN", "GB"),
    ("USA", "US"),
    ("UAE", "AE"),
    ("IND", "IN"),
    ("KSA", "SA"),
    ("EL", "GR"),
];

/// Every problem of the `[mapping]` table; empty when every route can use it.
pub fn check_settings(settings: &MappingSettings) -> Vec<String> {
    let mut problems = Vec::new();
    if settings.timezone.parse::<chrono_tz::Tz>().is_err() {
        let names = chrono_tz::TZ_VARIANTS.iter().map(|tz| tz.name());
        let hint = nearest(&settings.timezone, names)
            .map(|name| format!("; did you mean \"{name}\"?"))
            .unwrap_or_else(|| " (e.g. \"Europe/London\", \"Asia/Kolkata\")".into());
        problems.push(problem(
            "timezone",
            &settings.timezone,
            "is not an IANA time zone name",
            &hint,
        ));
    }
    if phones::parse_region(&settings.default_region).is_none() {
        let upper = settings.default_region.trim().to_uppercase();
        let hint = REGION_HINTS
            .iter()
            .find(|(wrong, _)| *wrong == upper)
            .map(|(_, right)| format!("; did you mean \"{right}\"?"))
            .unwrap_or_else(|| " (e.g. \"US\", \"GB\", \"IN\")".into());
        problems.push(problem(
            "default_region",
            &settings.default_region,
            "is not an ISO 3166 alpha-2 region",
            &hint,
        ));
    }
    if !dates::format_is_valid(&settings.date_format) {
        problems.push(problem(
            "date_format",
            &settings.date_format,
            "is not a valid chrono strftime format",
            " (e.g. \"%d-%m-%Y %H:%M:%S\")",
        ));
    }
    problems
}

fn problem(key: &str, value: &str, what: &str, hint: &str) -> String {
    let path = format!("mapping.{key}");
    format!("{path} = \"{value}\" {what} ({}){hint}", env_var(&path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wrong_default_region_names_the_key_its_variable_and_the_right_code() {
        let settings = MappingSettings {
            default_region: "UK".into(),
            ..MappingSettings::default()
        };
        assert_eq!(
            check_settings(&settings),
            [
                "mapping.default_region = \"UK\" is not an ISO 3166 alpha-2 region \
              (FRESHTAP__MAPPING__DEFAULT_REGION); did you mean \"GB\"?"
            ]
        );
    }

    #[test]
    fn a_misspelled_zone_suggests_the_nearest_name() {
        let settings = MappingSettings {
            timezone: "Europe/Londn".into(),
            date_format: "%Q".into(),
            ..MappingSettings::default()
        };
        let problems = check_settings(&settings).join("\n");
        assert!(
            problems.contains(
                "mapping.timezone = \"Europe/Londn\" is not an IANA time zone name \
                 (FRESHTAP__MAPPING__TIMEZONE); did you mean \"Europe/London\"?"
            ),
            "{problems}"
        );
        assert!(
            problems.contains("mapping.date_format = \"%Q\""),
            "{problems}"
        );
        assert!(check_settings(&MappingSettings::default()).is_empty());
    }
}
