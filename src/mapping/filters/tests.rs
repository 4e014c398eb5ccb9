//! Tests of the template filters: each filter over its inputs, and a property test of `phone`.

use super::*;
use crate::mapping::context::{json_to_value, value_to_json};
use crate::mapping::sink::{FilterDrop, RenderSink, SINK_KEY};
use crate::mapping::template::filter_names;
use proptest::prelude::*;
use serde_json::json;

fn eval(expr: &str, input: &serde_json::Value) -> (Option<serde_json::Value>, Vec<FilterDrop>) {
    let mut env = Environment::new();
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Chainable);
    let dates = Arc::new(DateParser::new("%d-%m-%Y %H:%M:%S", chrono_tz::UTC));
    register(&mut env, dates, phones::parse_region("US").unwrap());
    let sink = Arc::new(RenderSink::default());
    let ctx = Value::from_pairs([
        ("x".to_string(), json_to_value(input)),
        (
            SINK_KEY.to_string(),
            Value::from_dyn_object(Arc::clone(&sink)),
        ),
    ]);
    let source = format!("{{% set v = ({expr}) %}}");
    let template = env.template_from_str(&source).unwrap();
    let value = template
        .render_captured(ctx)
        .unwrap()
        .state()
        .lookup("v")
        .unwrap_or_default();
    (value_to_json(&value).unwrap(), sink.take().0)
}

#[test]
fn each_filter_maps_its_inputs() {
    let cases: Vec<(
        &str,
        &str,
        serde_json::Value,
        Option<serde_json::Value>,
        usize,
    )> = vec![
        (
            "date account format",
            "x | date",
            json!("14-03-1990"),
            Some(json!("$D_637372800")),
            0,
        ),
        (
            "date epoch number",
            "x | date",
            json!(637_372_800),
            Some(json!("$D_637372800")),
            0,
        ),
        (
            "date blank omitted silently",
            "x | date",
            json!(""),
            None,
            0,
        ),
        (
            "date garbage dropped",
            "x | date",
            json!("someday"),
            None,
            1,
        ),
        (
            "epoch integer",
            "x | epoch",
            json!("26-11-2026 09:14:33"),
            Some(json!(1_795_684_473)),
            0,
        ),
        (
            "phone e164",
            "x | phone",
            json!("(415) 555-0100"),
            Some(json!("+14155550100")),
            0,
        ),
        ("phone bad dropped", "x | phone", json!("555-0199"), None, 1),
        ("phone undefined", "missing | phone", json!(null), None, 0),
        (
            "lower",
            "x | lower",
            json!("A@B.COM"),
            Some(json!("a@b.com")),
            0,
        ),
        ("trim", "x | trim", json!("  a "), Some(json!("a")), 0),
        (
            "trim keeps undefined",
            "missing | trim | lower",
            json!(null),
            None,
            0,
        ),
        ("int from text", "x | int", json!("25"), Some(json!(25)), 0),
        ("int from float", "x | int", json!(12.9), Some(json!(12)), 0),
        ("int empty omitted", "x | int", json!(""), None, 0),
        ("int garbage dropped", "x | int", json!("many"), None, 1),
        (
            "float from text",
            "x | float",
            json!("120.5"),
            Some(json!(120.5)),
            0,
        ),
        ("bool text", "x | bool", json!("true"), Some(json!(true)), 0),
        ("bool no", "x | bool", json!("No"), Some(json!(false)), 0),
        ("bool number", "x | bool", json!(0), Some(json!(false)), 0),
        (
            "bool garbage dropped",
            "x | bool",
            json!("perhaps"),
            None,
            1,
        ),
        (
            "default on empty string",
            "x | default('n/a')",
            json!(""),
            Some(json!("n/a")),
            0,
        ),
        (
            "default keeps value",
            "x | default('n/a')",
            json!("v"),
            Some(json!("v")),
            0,
        ),
        (
            "split trims and drops empties",
            "x | split(';')",
            json!(" Football; ;Movies "),
            Some(json!(["Football", "Movies"])),
            0,
        ),
        (
            "split default comma",
            "x | split",
            json!("a,b"),
            Some(json!(["a", "b"])),
            0,
        ),
        (
            "builtin upper stays",
            "x | upper",
            json!("ab"),
            Some(json!("AB")),
            0,
        ),
    ];
    for (name, expr, input, want, dropped) in cases {
        let (got, drops) = eval(expr, &input);
        assert_eq!(got, want, "case {name}");
        assert_eq!(drops.len(), dropped, "case {name}: {drops:?}");
    }
}

#[test]
fn filter_names_skip_string_literals() {
    assert_eq!(
        filter_names("{{ a | trim | lower }}"),
        ["trim", "lower"],
        "case chain"
    );
    assert_eq!(
        filter_names("{{ a | split('|x') | phone }}"),
        ["split", "phone"],
        "case pipe in literal"
    );
}

proptest! {
    #[test]
    fn phone_never_panics_and_is_omitted_or_e164(text in "\\PC{0,40}") {
        let (got, _) = eval("x | phone", &json!(text));
        if let Some(got) = got {
            let s = got.as_str().unwrap_or_default().to_string();
            prop_assert!(phones::is_e164(&s), "not e164: {}", s);
        }
    }

    #[test]
    fn phone_never_panics_on_phone_like_text(text in "[+0-9 ()\\-.x]{0,24}") {
        let (got, _) = eval("x | phone", &json!(text));
        if let Some(got) = got {
            prop_assert!(phones::is_e164(got.as_str().unwrap_or_default()));
        }
    }

    #[test]
    fn date_never_panics_and_is_omitted_or_d_epoch(text in "\\PC{0,40}") {
        let (got, _) = eval("x | date", &json!(text));
        if let Some(got) = got {
            prop_assert!(is_d_epoch(got.as_str().unwrap_or_default()));
        }
    }

    #[test]
    fn date_never_panics_on_date_like_text(text in "[0-9]{1,6}[-/ :T]{0,2}[0-9]{0,4}[-/ :T]{0,2}[0-9]{0,6}( [0-9]{1,2}:[0-9]{1,2}:[0-9]{1,2})?") {
        let (got, _) = eval("x | date", &json!(text));
        if let Some(got) = got {
            prop_assert!(is_d_epoch(got.as_str().unwrap_or_default()));
        }
    }
}

fn is_d_epoch(s: &str) -> bool {
    s.strip_prefix("$D_")
        .map(|n| n.strip_prefix('-').unwrap_or(n))
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}
