//! End-to-end tests of mod.rs: the reference's sample bodies through the shipped templates, to
//! the exact CleverTap records; passthrough rules and routes in the submodules.

mod order_keys_props;
mod passthrough;
mod passthrough_props;
mod recorded;
mod refusals;
mod render_props;
mod routes;

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::*;

const R: i64 = 1_795_700_000; // received_at used throughout: 2026-11-26 19:33:20 UTC
const CONTACT: &str = include_str!("../../../config/templates/contact.json");
const DEAL: &str = include_str!("../../../config/templates/deal.json");
const ACCOUNT: &str = include_str!("../../../config/templates/account.json");
const SEED_BASIC: &str = include_str!("../../../config/templates/seed-basic.json");
const SEED_ADVANCED: &str = include_str!("../../../config/templates/seed-advanced.json");
const US_FORMAT: &str = "%m-%d-%Y %H:%M:%S";

fn body(text: &str) -> Value {
    serde_json::from_str(text).unwrap()
}

fn aliases(pairs: &[(&str, &[&str])]) -> BTreeMap<String, Vec<String>> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.iter().map(|s| s.to_string()).collect()))
        .collect()
}

fn seed_aliases() -> BTreeMap<String, Vec<String>> {
    aliases(&[
        ("phone_number", &["mobile_number", "work_number"]),
        ("lead_source", &["lead_source_name"]),
        ("dob_timestamp", &["cf_date_of_birth"]),
    ])
}

fn route(
    mode: Mode,
    file: &str,
    source: &str,
    aliases: &BTreeMap<String, Vec<String>>,
    date_format: Option<&str>,
) -> RouteMapping {
    RouteMapping::compile(
        "test",
        mode,
        Some((file, source)),
        aliases,
        date_format,
        &MappingSettings::default(),
    )
    .unwrap()
}

/// A route with no template: uploads pass through (also used by the worker's plan tests).
pub(crate) fn passthrough() -> RouteMapping {
    RouteMapping::compile(
        "upload",
        Mode::Auto,
        None,
        &BTreeMap::new(),
        None,
        &MappingSettings::default(),
    )
    .unwrap()
}

/// 3.2 arrives form-urlencoded; the relay hands the mapping an object of strings.
fn form(text: &str) -> Value {
    let decode = |s: &str| {
        let bytes = s.replace('+', " ").into_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'%' && i + 2 < bytes.len() + 1 {
                out.push(
                    u8::from_str_radix(std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap(), 16)
                        .unwrap(),
                );
                i += 3;
            } else {
                out.push(bytes[i]);
                i += 1;
            }
        }
        String::from_utf8(out).unwrap()
    };
    Value::Object(
        text.split('&')
            .filter_map(|p| p.split_once('='))
            .map(|(k, v)| (decode(k), Value::String(decode(v))))
            .collect(),
    )
}

fn sent(outcome: &RecordOutcome) -> Value {
    match outcome {
        RecordOutcome::Send(v) => v.clone(),
        other => panic!("expected Send, got {other:?}"),
    }
}

#[test]
fn sample_bodies_render_through_the_shipped_templates() {
    let none = BTreeMap::new();
    let contact = route(Mode::Auto, "contact.json", CONTACT, &none, None);
    let account = route(Mode::Auto, "account.json", ACCOUNT, &none, Some(US_FORMAT));
    let cases: Vec<(&str, &RouteMapping, Value, Value)> = vec![
        (
            "3.1 simple contact",
            &contact,
            body(include_str!("../../../tests/fixtures/3.1.json")),
            json!({
            "type": "profile", "identity": "amelia.hart@example.com", "ts": 1_795_684_473,
            "profileData": {"Name": "Amelia Hart", "Email": "amelia.hart@example.com", "Phone": "+447700900123",
                "Lead Source": "Web Form", "Lifecycle Stage": "Lead", "Lead Score": 42, "Plan": "Pro",
                "Freshsales Contact ID": 16_001_234_567_i64}}),
        ),
        (
            "3.2 form contact: all text, same record but the id stays text",
            &contact,
            form(include_str!("../../../tests/fixtures/3.2.txt")),
            json!({
            "type": "profile", "identity": "amelia.hart@example.com", "ts": 1_795_684_473,
            "profileData": {"Name": "Amelia Hart", "Email": "amelia.hart@example.com", "Phone": "+447700900123",
                "Lead Source": "Web Form", "Lifecycle Stage": "Lead", "Lead Score": 42, "Plan": "Pro",
                "Freshsales Contact ID": "16001234567"}}),
        ),
        (
            "3.3 unicode and escapes",
            &contact,
            body(include_str!("../../../tests/fixtures/3.3.json")),
            json!({
            "type": "profile", "identity": "zoe.obrien@example.org", "ts": 1_795_687_331,
            "profileData": {"Name": "Zoë O'Brien-Nguyễn", "Email": "zoe.obrien@example.org", "Phone": "+14155550134",
                "Job Title": "Fondatrice 🚀", "Company": "Smith & Søn", "Freshsales Contact ID": 16_001_234_568_i64}}),
        ),
        (
            "3.11 account, US dates",
            &account,
            body(include_str!("../../../tests/fixtures/3.11.json")),
            json!({
            "type": "profile", "identity": "account-16000987654", "ts": R,
            "profileData": {"Name": "Northwind Analytics", "Phone": "+14155550100", "Address": "500 Market St\nSuite 200",
                "Zipcode": "94105", "Employees": 120, "Annual Revenue": 8_500_000.0, "Tier": "Gold",
                "Account Created": "$D_1740902400"}}),
        ),
        (
            "3.12 test webhook renders like any contact",
            &contact,
            body(include_str!("../../../tests/fixtures/3.12.json")),
            json!({
            "type": "profile", "identity": "support-team@freshsales.io", "ts": 1_795_694_400,
            "profileData": {"Name": "freshsales freshsales", "Email": "support-team@freshsales.io", "Phone": "+18668323090",
                "Lead Source": "freshsales", "Lead Score": 123_456, "Freshsales Contact ID": 123_456}}),
        ),
        (
            "3.14 custom fields, mixed-case email, no updated_at",
            &contact,
            body(include_str!("../../../tests/fixtures/3.14.json")),
            json!({
            "type": "profile", "identity": "lucia.fernandez@example.com", "ts": R,
            "profileData": {"Name": "Lucía Fernández", "Email": "lucia.fernandez@example.com", "Plan": "Enterprise",
                "Interests": ["Football", "Movies"], "Newsletter Opt-in": true, "DOB": "$D_637372800",
                "Freshsales Contact ID": 16_001_234_570_i64}}),
        ),
    ];
    for (name, mapping, input, want) in cases {
        let rendered = mapping.render(&input, R);
        assert_eq!(rendered.records.len(), 1, "case {name}");
        assert_eq!(sent(&rendered.records[0]), want, "case {name}");
        assert!(
            rendered.dropped.is_empty(),
            "case {name}: {:?}",
            rendered.dropped
        );
    }
}

#[test]
fn a_contact_without_email_is_dead_and_a_bad_phone_is_dropped() {
    let contact = route(Mode::Auto, "contact.json", CONTACT, &BTreeMap::new(), None);
    let no_email = contact.render(&body(include_str!("../../../tests/fixtures/3.4.json")), R);
    match &no_email.records[..] {
        [
            RecordOutcome::Dead {
                code: "invalid_record",
                reason,
            },
        ] => assert!(reason.contains("no identity"), "case 3.4: {reason}"),
        other => panic!("case 3.4: {other:?}"),
    }
    assert!(
        no_email.dropped.is_empty(),
        "case 3.4: a dead record reports no drops"
    );

    let mut with_email = body(include_str!("../../../tests/fixtures/3.4.json"));
    with_email["contact_email"] = json!("ravi@example.com");
    let rendered = contact.render(&with_email, R);
    assert_eq!(
        sent(&rendered.records[0]),
        json!({"type": "profile", "identity": "ravi@example.com", "ts": R,
               "profileData": {"Name": "Ravi", "Email": "ravi@example.com", "Freshsales Contact ID": 16_001_234_569_i64}}),
        "case 3.4 with email"
    );
    assert_eq!(rendered.dropped.len(), 1, "case 3.4 with email: one drop");
    let drop = &rendered.dropped[0];
    assert_eq!(
        (drop.record_index, drop.field.as_str(), drop.value.as_str()),
        (0, "profileData.Phone", "555-0199"),
        "case 3.4 drop"
    );
    assert!(
        drop.reason.contains("phone"),
        "case 3.4 drop reason: {}",
        drop.reason
    );
}

#[test]
fn seed_templates_render_verbatim_with_the_seed_aliases() {
    let seeds = seed_aliases();
    let basic = route(Mode::Auto, "seed-basic.json", SEED_BASIC, &seeds, None);
    let advanced = route(
        Mode::Auto,
        "seed-advanced.json",
        SEED_ADVANCED,
        &seeds,
        None,
    );
    let b31 = body(include_str!("../../../tests/fixtures/3.1.json"));
    let b314 = body(include_str!("../../../tests/fixtures/3.14.json"));
    let prefs = json!({"MSG-dndPhone": true, "MSG-dndEmail": true,
        "category-unsubscribe": {"email": ["Newsletters", "Promotions"]},
        "category-resubscribe": {"email": ["Football", "Movies"]}});
    let mut prefs_dob = prefs.clone();
    prefs_dob["DOB"] = json!("$D_637372800");
    let cases = [
        (
            "basic from 3.1",
            &basic,
            &b31,
            json!({"objectId": "amelia.hart@example.com", "type": "profile", "ts": R,
            "profileData": {"Name": "Amelia", "Email": "amelia.hart@example.com", "Phone": "+447700900123", "Lead Source": "Web Form"}}),
        ),
        (
            "basic from 3.14",
            &basic,
            &b314,
            json!({"objectId": "Lucia.Fernandez@Example.com", "type": "profile", "ts": R,
            "profileData": {"Name": "Lucía", "Email": "Lucia.Fernandez@Example.com"}}),
        ),
        (
            "advanced from 3.1 (no DOB field)",
            &advanced,
            &b31,
            json!({"objectId": "amelia.hart@example.com", "type": "profile", "ts": R, "profileData": prefs}),
        ),
        (
            "advanced from 3.14 (DOB 14-03-1990)",
            &advanced,
            &b314,
            json!({"objectId": "Lucia.Fernandez@Example.com", "type": "profile", "ts": R, "profileData": prefs_dob}),
        ),
    ];
    for (name, mapping, input, want) in cases {
        let rendered = mapping.render(input, R);
        assert_eq!(
            rendered.records.iter().map(sent).collect::<Vec<_>>(),
            vec![want],
            "case {name}"
        );
    }
}

#[test]
fn deals_send_a_profile_and_a_won_event_only_when_won() {
    let deal = route(
        Mode::Template,
        "deal.json",
        DEAL,
        &aliases(&[("customer_email", &["contact_email"])]),
        Some(US_FORMAT),
    );
    let won = body(include_str!("../../../tests/fixtures/3.10.json"));
    let rendered = deal.render(&won, R);
    let profile = json!({"type": "profile", "identity": "account-16000987654", "ts": 1_795_711_551,
        "profileData": {"Last Deal": "Northwind renewal 2027", "Last Deal Stage": "Won", "Last Deal Pipeline": "Default Pipeline",
            "Last Deal Amount": 48000.0, "Last Deal Currency": "US Dollar", "Last Deal Expected Close": "$D_1795996800"}});
    let event = json!({"type": "event", "identity": "account-16000987654", "ts": 1_795_711_551, "evtName": "Deal Won",
        "evtData": {"Deal": "Northwind renewal 2027", "Deal ID": 16_009_876_543_i64, "Amount": 48000.0, "Currency": "US Dollar",
            "Pipeline": "Default Pipeline", "Closed": "$D_1795651200", "Seats": 25, "Account": "Northwind Analytics"}});
    assert_eq!(
        rendered.records,
        vec![
            RecordOutcome::Send(profile.clone()),
            RecordOutcome::Send(event)
        ],
        "case 3.10 won"
    );

    let mut qualified = won.clone();
    qualified["deal_deal_stage_name"] = json!("Qualified");
    let rendered = deal.render(&qualified, R);
    let mut profile_q = profile;
    profile_q["profileData"]["Last Deal Stage"] = json!("Qualified");
    assert_eq!(
        rendered.records,
        vec![RecordOutcome::Send(profile_q), RecordOutcome::Skip],
        "case 3.10 qualified"
    );

    let mut with_contact = won;
    with_contact["contact_email"] = json!(" Dana.Buyer@Example.com ");
    assert_eq!(
        deal.order_keys(&with_contact),
        vec!["dana.buyer@example.com"],
        "case deal keyed by the aliased contact"
    );
}
