//! Order keys read straight from the body (`{{ name }}` identities) against the template
//! engine rendering the same identities: for any body, the same keys in the same order.

use proptest::prelude::*;
use serde_json::json;

use super::render_props::{body, shipped};
use super::*;

/// Identity expressions of every shape the direct reading takes, and some it must leave to the
/// engine (a global, a number filter, a default), with aliases including an alias of an alias.
fn variants() -> Vec<RouteMapping> {
    let names = aliases(&[
        ("mail", &["work_email", "email"]),
        ("who", &["mail", "first_name"]),
        ("phone_number", &["mobile_number", "work_number"]),
    ]);
    let identities = [
        "{{ email }}",
        "{{email|lower}}",
        "{{ contact_email | trim }}",
        "{{- email | lower | trim -}}",
        "{{ first_name | trim | lower }}",
        "{{ id }}",
        "{{ mail | lower }}",
        "{{ who | trim }}",
        "{{ phone_number }}",
        "{{ range }}",
        "{{ email | default('x') }}",
        "{{ lead_score | int }}",
    ];
    let mut mappings: Vec<RouteMapping> = identities
        .iter()
        .map(|identity| {
            let template = json!({"identity": identity, "type": "profile", "profileData": {"Name": "{{ name }}"}});
            route(Mode::Template, "variant.json", &template.to_string(), &names, None)
        })
        .collect();
    let two = json!({"d": [
        {"identity": "{{ email | trim | lower }}", "type": "profile", "profileData": {"Name": "x"}},
        {"objectId": "{{ sales_account_id }}", "type": "profile", "profileData": {"Name": "y"}},
        {"identity": "{{ customer_email }}", "type": "profile", "profileData": {"Name": "z"}}
    ]});
    mappings.push(route(
        Mode::Template,
        "two.json",
        &two.to_string(),
        &names,
        None,
    ));
    mappings.push(route(
        Mode::Delete,
        "contact-deleted.json",
        include_str!("../../../config/templates/contact-deleted.json"),
        &names,
        None,
    ));
    mappings
}

#[test]
fn identities_the_engine_alone_can_read_are_left_to_it() {
    // `range` is a global: with no such field the engine renders the function, so the direct
    // reading must not answer "no key" for it.
    let global = &variants()[9];
    let body = json!({"email": "a@x.com"});
    assert_eq!(global.order_keys(&body), global.rendered_order_keys(&body));
    // An alias naming an alias, and a number, are read by the engine.
    let who = &variants()[7];
    let body = json!({"email": " Ann@X.com ", "first_name": "Ann"});
    assert_eq!(who.order_keys(&body), ["ann@x.com"]);
    let id = &variants()[5];
    assert_eq!(
        id.order_keys(&json!({"contact_id": 16000123})),
        ["16000123"]
    );
}

#[test]
fn direct_identities_resolve_names_as_the_context_does() {
    let [email, mail, first, phone] = [0, 6, 4, 8].map(|i| variants().swap_remove(i));
    let cases = [
        // An alias skips a blank (whitespace) target for the next one.
        (
            &phone,
            json!({"mobile_number": " ", "work_number": "+1 555"}),
            vec!["+1 555"],
        ),
        (
            &mail,
            json!({"work_email": "", "email": "B@x.com"}),
            vec!["b@x.com"],
        ),
        // A field beats a prefixed field of the same short name; a null field does not.
        (
            &email,
            json!({"email": "a@x.com", "contact_email": "c@x.com"}),
            vec!["a@x.com"],
        ),
        (
            &email,
            json!({"email": null, "contact_email": "C@x.com"}),
            vec!["c@x.com"],
        ),
        // A short name two fields share is no one's.
        (
            &first,
            json!({"contact_first_name": "Ann", "lead_first_name": "Bo"}),
            vec![],
        ),
        (&first, json!({"contact_first_name": " Ann "}), vec!["ann"]),
    ];
    for (mapping, body, want) in cases {
        assert_eq!(mapping.order_keys(&body), want, "{body}");
        assert_eq!(mapping.rendered_order_keys(&body), want, "{body}");
    }
}

proptest! {
    #[test]
    fn direct_identities_match_the_template_engine(body in body()) {
        for mapping in shipped().iter().chain(&variants()) {
            prop_assert_eq!(
                mapping.order_keys(&body),
                mapping.rendered_order_keys(&body),
                "{:?}\n body: {}", mapping, body
            );
        }
    }
}
