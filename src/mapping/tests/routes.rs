//! End-to-end tests of mod.rs: passthrough, modes, order keys, compile and render errors.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::*;

#[test]
fn passthrough_sample_bodies_get_only_meaning_preserving_repairs() {
    let pass = passthrough();
    let cases = [
        (
            "3.5 phone to E.164, ts filled",
            include_str!("../../../tests/fixtures/3.5.json"),
            json!({"objectId": "amelia.hart@example.com", "type": "profile", "ts": R,
            "profileData": {"Name": "Amelia", "Email": "amelia.hart@example.com", "Phone": "+447700900123", "Lead Source": "Web Form"}}),
        ),
        (
            "3.6 DOB to $D_",
            include_str!("../../../tests/fixtures/3.6.json"),
            json!({"objectId": "amelia.hart@example.com", "type": "profile", "ts": R,
            "profileData": {"MSG-dndPhone": true, "MSG-dndEmail": true, "category-unsubscribe": {"email": ["Newsletters", "Promotions"]},
                "category-resubscribe": {"email": ["Football", "Movies"]}, "DOB": "$D_637372800"}}),
        ),
        (
            "3.13 test payload phone",
            include_str!("../../../tests/fixtures/3.13.json"),
            json!({"objectId": "support-team@freshsales.io", "type": "profile", "ts": R,
            "profileData": {"Name": "freshsales", "Email": "support-team@freshsales.io", "Phone": "+18668323090", "Lead Source": "freshsales"}}),
        ),
    ];
    for (name, text, want) in cases {
        let rendered = pass.render(&body(text), R);
        assert_eq!(
            rendered.records,
            vec![RecordOutcome::Send(want)],
            "case {name}"
        );
    }
    let repaired = repair_json(include_bytes!("../../../tests/fixtures/3.9.txt")).unwrap();
    let rendered = pass.render(&serde_json::from_slice(&repaired).unwrap(), R);
    assert_eq!(
        rendered.records,
        vec![RecordOutcome::Send(
            json!({"identity": "amelia.hart@example.com", "type": "event", "ts": R,
        "evtName": "Deal Won", "evtData": {"Deal": "Hart renewal", "Amount": null, "Stage": "Won"}})
        )],
        "case 3.9 repaired: a custom event property is CleverTap's to judge, even null"
    );
}

#[test]
fn modes_choose_between_template_and_passthrough() {
    let none = BTreeMap::new();
    let upload = body(include_str!("../../../tests/fixtures/3.5.json"));
    let simple = body(include_str!("../../../tests/fixtures/3.1.json"));
    let only_pass = RouteMapping::compile(
        "up",
        Mode::Passthrough,
        None,
        &none,
        None,
        &MappingSettings::default(),
    )
    .unwrap();
    let template_mode = route(Mode::Template, "contact.json", CONTACT, &none, None);
    let auto = route(Mode::Auto, "contact.json", CONTACT, &none, None);
    let dead_reason = |r: &Rendered| match &r.records[..] {
        [RecordOutcome::Dead { code, reason }] => format!("{code}: {reason}"),
        other => format!("{other:?}"),
    };
    assert_eq!(
        dead_reason(&only_pass.render(&simple, R)),
        format!("invalid_record: {NOT_UPLOAD}"),
        "case passthrough refuses a simple body"
    );
    assert!(
        dead_reason(&passthrough().render(&simple, R))
            .starts_with("render_error: route upload has no template"),
        "case auto without template"
    );
    assert!(
        matches!(
            auto.render(&upload, R).records[..],
            [RecordOutcome::Send(_)]
        ),
        "case auto passes an upload through"
    );
    assert!(
        dead_reason(&template_mode.render(&upload, R)).contains("no identity"),
        "case template mode renders the template anyway"
    );
    let bad_element = passthrough().render(&json!({"d": [1]}), R);
    assert!(
        matches!(
            &bad_element.records[..],
            [RecordOutcome::Refused { code: 524, .. }]
        ),
        "case element not an object: {bad_element:?}"
    );
}

#[test]
fn order_keys_come_from_identities() {
    let none = BTreeMap::new();
    let contact = route(Mode::Auto, "contact.json", CONTACT, &none, None);
    let seed = route(
        Mode::Auto,
        "seed-basic.json",
        SEED_BASIC,
        &seed_aliases(),
        None,
    );
    let deal = route(Mode::Auto, "deal.json", DEAL, &none, Some(US_FORMAT));
    let cases: [(&str, &RouteMapping, Value, Vec<&str>); 7] = [
        (
            "template identity lowercased",
            &contact,
            body(include_str!("../../../tests/fixtures/3.14.json")),
            vec!["lucia.fernandez@example.com"],
        ),
        (
            "seed objectId lowercased",
            &seed,
            body(include_str!("../../../tests/fixtures/3.14.json")),
            vec!["lucia.fernandez@example.com"],
        ),
        (
            "no identity",
            &contact,
            body(include_str!("../../../tests/fixtures/3.4.json")),
            vec![],
        ),
        (
            "two records, one key",
            &deal,
            body(include_str!("../../../tests/fixtures/3.10.json")),
            vec!["account-16000987654"],
        ),
        (
            "passthrough",
            &contact,
            body(include_str!("../../../tests/fixtures/3.5.json")),
            vec!["amelia.hart@example.com"],
        ),
        (
            "passthrough dedup and trim",
            &contact,
            json!({"d": [{"identity": " A@X.com "}, {"identity": "a@x.com"}, {"objectId": "B"}]}),
            vec!["a@x.com", "b"],
        ),
        ("not an object", &contact, json!("text"), vec![]),
    ];
    for (name, mapping, input, want) in cases {
        assert_eq!(mapping.order_keys(&input), want, "case {name}");
    }
}

#[test]
fn compile_reports_every_problem_with_file_path_and_line() {
    let none = BTreeMap::new();
    let bad = "{\n  \"type\": \"profile\",\n  \"identity\": \"{{ email | }}\",\n  \"profileData\": {\"Phone\": \"{{ mobile_number | phonee }}\"}\n}";
    let settings = MappingSettings {
        timezone: "Mars/Olympus".into(),
        default_region: "ZZ".into(),
        ..MappingSettings::default()
    };
    let errors = RouteMapping::compile(
        "contacts",
        Mode::Auto,
        Some(("broken.json", bad)),
        &none,
        Some("%Q"),
        &settings,
    )
    .unwrap_err();
    let messages: Vec<String> = errors.iter().map(ToString::to_string).collect();
    let expect = [
        ("timezone", "route contacts: timezone `Mars/Olympus`"),
        ("region", "route contacts: default_region `ZZ`"),
        ("date format", "route contacts: date_format `%Q`"),
        (
            "broken expression",
            "broken.json:3: identity: cannot compile expression",
        ),
        (
            "unknown filter",
            "broken.json:4: profileData.Phone: unknown filter `phonee`",
        ),
    ];
    for (name, want) in expect {
        assert!(
            messages.iter().any(|m| m.starts_with(want)),
            "case {name}: {messages:#?}"
        );
    }
    let json_error = RouteMapping::compile(
        "c",
        Mode::Auto,
        Some(("c.json", "{\n \"type\": \"profile\",\n \"identity\": }")),
        &none,
        None,
        &MappingSettings::default(),
    )
    .unwrap_err();
    assert!(
        json_error[0]
            .to_string()
            .eq("c.json:3:14: template is not valid JSON: expected value"),
        "case broken json: {}",
        json_error[0]
    );
    let d_path = RouteMapping::compile(
        "c",
        Mode::Auto,
        Some((
            "d.json",
            r#"{"d":[{"type":"profile","identity":"{{ x | nope }}"}]}"#,
        )),
        &none,
        None,
        &MappingSettings::default(),
    )
    .unwrap_err();
    assert!(
        d_path[0]
            .to_string()
            .contains("d[0].identity: unknown filter `nope`"),
        "case d path: {}",
        d_path[0]
    );
    let shipped = [
        ("contact", CONTACT),
        ("deal", DEAL),
        ("account", ACCOUNT),
        ("seed-basic", SEED_BASIC),
        ("seed-advanced", SEED_ADVANCED),
    ];
    for (name, source) in shipped {
        assert!(
            RouteMapping::compile(
                name,
                Mode::Auto,
                Some((name, source)),
                &none,
                None,
                &MappingSettings::default()
            )
            .is_ok(),
            "case shipped {name}"
        );
    }
}

#[test]
fn a_hard_filter_failure_is_a_render_error_naming_file_path_and_filter() {
    let mapping = route(
        Mode::Auto,
        "t.json",
        r#"{"d":[{"type":"profile","identity":"{{ email }}","profileData":{"Tags":"{{ tags | split('') }}"}}]}"#,
        &BTreeMap::new(),
        None,
    );
    let rendered = mapping.render(
        &json!({"email": "a@example.com", "tags": "secret-value"}),
        R,
    );
    match &rendered.records[..] {
        [
            RecordOutcome::Dead {
                code: "render_error",
                reason,
            },
        ] => {
            assert!(
                reason.starts_with("t.json: d[0].profileData.Tags:") && reason.contains("split"),
                "case split: {reason}"
            );
            assert!(
                !reason.contains("secret-value"),
                "case split carries no value: {reason}"
            );
        }
        other => panic!("case split: {other:?}"),
    }
}

#[test]
fn dead_policy_dead_letters_an_invalid_reserved_field() {
    let settings = MappingSettings {
        on_invalid_field: OnInvalidField::Dead,
        ..MappingSettings::default()
    };
    let template =
        r#"{"type":"profile","identity":"{{ email }}","profileData":{"Gender":"{{ gender }}"}}"#;
    let mapping = RouteMapping::compile(
        "c",
        Mode::Auto,
        Some(("t.json", template)),
        &BTreeMap::new(),
        None,
        &settings,
    )
    .unwrap();
    let rendered = mapping.render(&json!({"email": "a@example.com", "gender": "X"}), R);
    assert!(
        matches!(&rendered.records[..], [RecordOutcome::Dead { code: "invalid_record", reason }] if reason.contains("Gender must be M or F")),
        "case dead gender: {rendered:?}"
    );
}

#[test]
fn a_route_mapping_can_be_shared_across_tasks() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<RouteMapping>();
}

#[test]
fn a_deletion_route_renders_profiles_to_delete_never_uploads() {
    let deleted = include_str!("../../../config/templates/contact-deleted.json");
    let mapping = route(
        Mode::Delete,
        "contact-deleted.json",
        deleted,
        &BTreeMap::new(),
        None,
    );
    assert!(mapping.is_deletion());
    let contact = body(include_str!("../../../tests/fixtures/3.1.json"));
    assert_eq!(
        mapping.render(&contact, R).records,
        vec![RecordOutcome::Send(
            json!({"identity": "amelia.hart@example.com"})
        )]
    );
    assert_eq!(mapping.order_keys(&contact), ["amelia.hart@example.com"]);
    // An upload-shaped body is not passed through on a deletion route: it is rendered, and
    // holds no email here, so the record is dead rather than a profile deleted by mistake.
    let upload = json!({"d": [{"identity": "x", "type": "profile", "profileData": {}}]});
    assert!(matches!(
        mapping.render(&upload, R).records[..],
        [RecordOutcome::Dead {
            code: "invalid_record",
            ..
        }]
    ));
    // By guid, from a template.
    let by_guid = route(
        Mode::Delete,
        "g.json",
        r#"{"guid": "{{ cf_clevertap_id }}"}"#,
        &BTreeMap::new(),
        None,
    );
    let body_with_guid = json!({"contact_cf_clevertap_id": "__g1"});
    assert_eq!(
        by_guid.render(&body_with_guid, R).records,
        vec![RecordOutcome::Send(json!({"guid": "__g1"}))]
    );
    assert_eq!(by_guid.order_keys(&body_with_guid), ["__g1"]);
}

#[test]
fn an_erasure_deletion_route_reads_clevertaps_own_delete_body() {
    let mapping = RouteMapping::compile(
        "_delete:main",
        Mode::Delete,
        None,
        &BTreeMap::new(),
        None,
        &MappingSettings::default(),
    )
    .unwrap();
    let body = json!({"identity": ["Ann@X.com", "ann@x.com"]});
    assert_eq!(
        mapping.render(&body, R).records,
        vec![
            RecordOutcome::Send(json!({"identity": "Ann@X.com"})),
            RecordOutcome::Send(json!({"identity": "ann@x.com"}))
        ]
    );
    assert_eq!(mapping.order_keys(&body), ["ann@x.com"]);
}
