//! Phones as freshtap sends them, held to what Google's libphonenumber answers for each number
//! of the corpus `tests/fixtures/phones.jsonl` (written by `tests/fixtures/phones_corpus.py`).

use std::collections::BTreeMap;
use std::process::Command;

use freshtap::mapping::{MappingSettings, Mode, RecordOutcome, RouteMapping};
use serde::Deserialize;
use serde_json::json;

/// One line of the corpus: the text, the default region, and libphonenumber's answers.
#[derive(Debug, Deserialize)]
struct Case {
    input: String,
    region: String,
    kind: String,
    e164: Option<String>,
    error: Option<String>,
    valid: bool,
    reason: Option<String>,
    drops_letter: bool,
}

/// The default regions the corpus reads national numbers with.
const REGIONS: [&str; 19] = [
    "US", "GB", "DE", "FR", "IN", "BR", "AU", "SG", "AE", "ID", "KR", "CA", "MX", "ES", "IT", "NL",
    "JP", "ZA", "NG",
];

/// The bare `{{ raw }}` goes through the normalisation of the reserved `Phone`; `Mobile` through
/// the `phone` filter alone. `Source` keeps the profile non-empty when both are refused.
const TEMPLATE: &str = r#"{"type": "profile", "identity": "corpus@example.com",
  "profileData": {"Phone": "{{ raw }}", "Mobile": "{{ raw | phone }}", "Source": "corpus"}}"#;

fn corpus() -> Vec<(usize, Case)> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/phones.jsonl");
    let text = std::fs::read_to_string(path).expect("corpus file");
    text.lines()
        .enumerate()
        .map(|(i, line)| (i + 1, serde_json::from_str(line).expect("corpus line")))
        .collect()
}

/// freshtap's rule (documented in `src/mapping/phones.rs`) applied to libphonenumber's answers.
fn expected(case: &Case) -> Option<&str> {
    let e164 = case.e164.as_deref()?;
    let whole = case.valid || case.reason.as_deref() == Some("IS_POSSIBLE");
    let digits = &e164[1..];
    let clevertap_shape = (7..=15).contains(&digits.len()) && !digits.starts_with('0');
    (whole && clevertap_shape && !case.drops_letter).then_some(e164)
}

fn mapping(region: &str) -> RouteMapping {
    let settings = MappingSettings {
        default_region: region.into(),
        ..MappingSettings::default()
    };
    RouteMapping::compile(
        "phones",
        Mode::Template,
        Some(("phones.json", TEMPLATE)),
        &BTreeMap::new(),
        None,
        &settings,
    )
    .expect("corpus template compiles")
}

/// What a record rendered from `{"raw": text}` carries: (`Phone`, `Mobile`).
fn sent(mapping: &RouteMapping, text: &str) -> (Option<String>, Option<String>) {
    let rendered = mapping.render(&json!({ "raw": text }), 1_700_000_000);
    let [RecordOutcome::Send(record)] = &rendered.records[..] else {
        panic!("{text:?}: not one record to send: {:?}", rendered.records);
    };
    let field = |name: &str| record["profileData"][name].as_str().map(str::to_owned);
    (field("Phone"), field("Mobile"))
}

/// None when freshtap sends `want` both as `Phone` and through the filter; else the failure.
fn mismatch(mapping: &RouteMapping, line: usize, case: &Case, region: &str) -> Option<String> {
    let want = expected(case);
    let (phone, filtered) = sent(mapping, &case.input);
    if phone.as_deref() == want && filtered.as_deref() == want {
        return None;
    }
    Some(format!(
        "line {line} ({}): {:?} with default region {region}: Phone {phone:?}, phone filter \
         {filtered:?}, want {want:?} (libphonenumber: e164 {:?}, error {:?}, valid {}, {:?}, \
         drops a letter {})",
        case.kind, case.input, case.e164, case.error, case.valid, case.reason, case.drops_letter
    ))
}

#[test]
fn every_corpus_number_is_sent_as_libphonenumber_reads_it_or_refused() {
    let mappings: BTreeMap<&str, RouteMapping> = REGIONS.iter().map(|r| (*r, mapping(r))).collect();
    let mut others = BTreeMap::new();
    let cases = corpus();
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|(line, case)| {
            let mapping = match mappings.get(case.region.as_str()) {
                Some(mapping) => mapping,
                None => others
                    .entry(case.region.clone())
                    .or_insert_with(|| mapping(&case.region)),
            };
            mismatch(mapping, *line, case, &case.region)
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} corpus numbers differ:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

/// `+` then a country code. `+00 44 …` is not one: libphonenumber then reads `00` as the default
/// region's international prefix, which depends on the region by design.
fn has_country_code(text: &str) -> bool {
    text.trim_start()
        .strip_prefix(['+', '＋'])
        .and_then(|rest| rest.chars().find(|c| c.is_numeric()))
        .is_some_and(|digit| !matches!(digit, '0' | '０'))
}

#[test]
fn a_number_with_its_country_code_reads_the_same_with_every_default_region() {
    let mappings: Vec<(&str, RouteMapping)> = REGIONS.iter().map(|r| (*r, mapping(r))).collect();
    let cases = corpus();
    let international: Vec<_> = cases
        .iter()
        .filter(|(_, case)| has_country_code(&case.input))
        .collect();
    assert!(
        international.len() > 150,
        "corpus has {} +CC numbers",
        international.len()
    );
    let failures: Vec<String> = international
        .iter()
        .flat_map(|(line, case)| {
            mappings
                .iter()
                .filter_map(|(region, mapping)| mismatch(mapping, *line, case, region))
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn corpus_reads_national_numbers_with_each_supported_region() {
    let cases = corpus();
    assert!(cases.len() >= 250, "corpus has {} numbers", cases.len());
    for region in REGIONS {
        let national = cases
            .iter()
            .filter(|(_, c)| c.region == region && c.kind == "national" && expected(c).is_some())
            .count();
        assert!(
            national >= 1,
            "no national number sent with default region {region}"
        );
    }
    let refused = cases.iter().filter(|(_, c)| expected(c).is_none()).count();
    assert!(refused >= 50, "only {refused} refusals in the corpus");
}

#[test]
fn phones_stay_out_of_the_logs_even_at_trace_level() {
    let dir = tempfile::tempdir().expect("tempdir");
    let body = dir.path().join("body.json");
    let contact = r#"{"contact_email": "a@example.com", "contact_mobile_number": "+49 1512 3456789",
        "contact_work_number": "0151 O3456789"}"#;
    std::fs::write(&body, contact).expect("write body");
    let out = Command::new(env!("CARGO_BIN_EXE_freshtap"))
        .current_dir(dir.path())
        .env_clear()
        .env("FRESHTAP__LOG__LEVEL", "trace,rlibphonenumber=trace")
        .env(
            "FRESHTAP__CLEVERTAP__ACCOUNTS__MAIN__ACCOUNT_ID",
            "TEST-ACCOUNT",
        )
        .env("FRESHTAP__CLEVERTAP__ACCOUNTS__MAIN__PASSCODE", "passcode")
        .env("FRESHTAP__AUTH__TOKEN", "token")
        .args(["render", "--route", "contacts"])
        .arg(&body)
        .output()
        .expect("binary runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "render failed: {stderr}");
    assert!(
        stdout.contains(r#""Phone":"+4915123456789""#),
        "the phone was not parsed: {stdout}"
    );
    // The body's numbers, and the one parsed at start-up to load the metadata.
    for digits in ["15123456789", "3456789", "4155550100"] {
        assert!(!stderr.contains(digits), "{digits} in the logs: {stderr}");
    }
}
