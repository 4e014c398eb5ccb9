//! A property test of the shipped templates over arbitrary webhook bodies: rendering never
//! panics, and every record it sends is one CleverTap's own rules (`upload_rules`, the drop-in's
//! judge) take as it is — nothing CleverTap would refuse leaves through a template.

use proptest::prelude::*;
use serde_json::{Map, Value};

use super::*;

/// The fields the shipped templates read, bare and with the module prefixes Freshsales uses.
const FIELDS: [&str; 30] = [
    "id",
    "email",
    "first_name",
    "last_name",
    "name",
    "mobile_number",
    "work_number",
    "phone",
    "updated_at",
    "created_at",
    "closed_date",
    "expected_close",
    "cf_date_of_birth",
    "cf_interests",
    "cf_newsletter_opt_in",
    "cf_seats",
    "lead_score",
    "amount",
    "annual_revenue",
    "number_of_employees",
    "customer_email",
    "sales_account_id",
    "deal_stage_name",
    "lead_source_name",
    "city",
    "phone_number",
    "dob_timestamp",
    "lead_source",
    "website",
    "currency_name",
];
const PREFIXES: [&str; 5] = ["", "contact_", "deal_", "sales_account_", "lead_"];

fn leaf() -> impl Strategy<Value = Value> {
    let texts = prop::sample::select(vec![
        "",
        " ",
        "Won",
        "ada@example.com",
        " Ada@Example.COM ",
        "not an email",
        "a@b",
        "+44 7700 900123",
        "+49 1512 3456789",
        "(415) 555-0100",
        "00 33 1 42 68 53 00",
        "223",
        "+44+441234",
        "26-11-2026 09:14:33",
        "11-26-2026 09:14:33",
        "2026-11-26T09:14:33Z",
        "31-02-2026 00:00:00",
        "01-01-0001 00:00:00",
        "01-01-9999 23:59:59",
        "1764150000",
        "1764150000000",
        "-1",
        "0",
        "1e400",
        "NaN",
        "true",
        "no",
        "a;b;;c",
        "\u{0}",
        "x\u{FFFD}",
        "{{ 7 * 7 }}",
        "Zoë 🚀",
    ]);
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        texts.prop_map(Value::from),
        ".{0,12}".prop_map(Value::from),
    ]
}

fn field_value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(2, 8, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_]{1,6}", inner, 0..3)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A Freshsales-like body: the templates' fields under some prefix, with anything in them;
/// as a form body would arrive (every value text) a quarter of the time.
pub(super) fn body() -> impl Strategy<Value = Value> {
    let entry = (
        prop::sample::select(PREFIXES.to_vec()),
        prop::sample::select(FIELDS.to_vec()),
        prop_oneof![4 => leaf(), 1 => field_value()],
    );
    // The ids the templates key on, usually present, so that records get as far as sending.
    let email = prop_oneof![
        3 => prop::sample::select(vec!["ada@example.com", " Ada@Example.COM ", "lena.ortiz@example.com"])
            .prop_map(Value::from),
        1 => leaf(),
    ];
    let ids = (
        prop::sample::select(PREFIXES.to_vec()),
        prop::option::weighted(0.8, email),
        prop::option::weighted(0.6, prop_oneof![any::<u32>().prop_map(Value::from), leaf()]),
    );
    let entries = prop::collection::vec(entry, 0..14);
    (ids, entries, any::<u8>()).prop_map(|((prefix, email, id), mut entries, form)| {
        let mut map = Map::new();
        entries.extend(email.map(|e| (prefix, "email", e)));
        entries.extend(id.map(|i| ("", "sales_account_id", i)));
        for (prefix, field, value) in entries {
            let value = match value {
                Value::String(_) => value,
                other if form < 64 => Value::String(other.to_string()),
                other => other,
            };
            map.insert(format!("{prefix}{field}"), value);
        }
        Value::Object(map)
    })
}

pub(super) fn shipped() -> Vec<RouteMapping> {
    let seed = seed_aliases();
    let none = BTreeMap::new();
    vec![
        route(Mode::Auto, "contact.json", CONTACT, &none, None),
        route(Mode::Auto, "deal.json", DEAL, &none, None),
        route(Mode::Auto, "account.json", ACCOUNT, &none, Some(US_FORMAT)),
        route(Mode::Template, "seed-basic.json", SEED_BASIC, &seed, None),
        route(
            Mode::Template,
            "seed-advanced.json",
            SEED_ADVANCED,
            &seed,
            None,
        ),
    ]
}

proptest! {
    #[test]
    fn templates_send_only_what_clevertap_takes_as_it_is(body in body()) {
        let dates = dates::DateParser::new(&MappingSettings::default().date_format, chrono_tz::UTC);
        let repairs = upload_rules::Repairs { dates: &dates, region: phones::Region::US };
        for mapping in shipped() {
            for outcome in mapping.render(&body, R).records {
                match outcome {
                    RecordOutcome::Send(record) => {
                        let judged = upload_rules::judge(record.clone(), R, &repairs);
                        prop_assert_eq!(
                            judged.map(Value::Object),
                            Ok(record.clone()),
                            "{:?} sent a record CleverTap's rules refuse or alter\n body: {}",
                            mapping, body
                        );
                    }
                    RecordOutcome::Dead { code, .. } => {
                        prop_assert!(["render_error", "invalid_record"].contains(&code));
                    }
                    RecordOutcome::Skip => {}
                    RecordOutcome::Refused { code, .. } => {
                        return Err(TestCaseError::fail(format!("a template record refused {code}")));
                    }
                }
            }
        }
    }
}
