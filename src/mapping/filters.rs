//! The template filters: date, epoch, phone, lower, trim, int, float, bool, default, split.

use std::sync::Arc;

use minijinja::value::Value;
use minijinja::{Environment, Error, ErrorKind, State};

use super::dates::DateParser;
use super::phones;
use super::sink::{drop_value, is_blank};

/// Filters freshtap defines; any other name must be a minijinja built-in.
pub(crate) const OWN_FILTERS: [&str; 10] = [
    "date", "epoch", "phone", "lower", "trim", "int", "float", "bool", "default", "split",
];

/// Text of a scalar input, None for blanks (which filters pass through as undefined).
fn text_of(value: &Value) -> Option<String> {
    if is_blank(value) {
        return None;
    }
    Some(
        value
            .as_str()
            .map_or_else(|| value.to_string(), str::to_string),
    )
}

pub(crate) fn register(
    env: &mut Environment<'static>,
    dates: Arc<DateParser>,
    region: phones::Region,
) {
    let for_date = Arc::clone(&dates);
    env.add_filter("date", move |state: &State, value: Value| -> Value {
        if is_blank(&value) {
            return Value::UNDEFINED;
        }
        match json_scalar(&value).and_then(|j| for_date.epoch_of_json(&j)) {
            Some(epoch) => Value::from(format!("$D_{epoch}")),
            None => drop_value(
                state,
                &value,
                "date: not a date in the route's format, ISO 8601 or epoch seconds".into(),
            ),
        }
    });
    env.add_filter("epoch", move |state: &State, value: Value| -> Value {
        if is_blank(&value) {
            return Value::UNDEFINED;
        }
        match json_scalar(&value).and_then(|j| dates.epoch_of_json(&j)) {
            Some(epoch) => Value::from(epoch),
            None => drop_value(
                state,
                &value,
                "epoch: not a date in the route's format, ISO 8601 or epoch seconds".into(),
            ),
        }
    });
    env.add_filter("phone", move |state: &State, value: Value| -> Value {
        let Some(text) = text_of(&value) else {
            return Value::UNDEFINED;
        };
        match phones::to_e164(&text, region) {
            Some(e164) => Value::from(e164),
            None => drop_value(
                state,
                &value,
                "phone: not a valid phone number for E.164".into(),
            ),
        }
    });
    env.add_filter("lower", |value: Value| {
        map_text(value, |s| s.to_lowercase())
    });
    env.add_filter("trim", |value: Value| {
        map_text(value, |s| s.trim().to_string())
    });
    env.add_filter("int", |state: &State, value: Value| -> Value {
        match number_of(&value) {
            Number::Blank => Value::UNDEFINED,
            Number::Int(i) => Value::from(i),
            Number::Float(f) if f.abs() < 9.2e18 => Value::from(f.trunc() as i64),
            _ => drop_value(state, &value, "int: not an integer".into()),
        }
    });
    env.add_filter("float", |state: &State, value: Value| -> Value {
        match number_of(&value) {
            Number::Blank => Value::UNDEFINED,
            Number::Int(i) => Value::from(i as f64),
            Number::Float(f) => Value::from(f),
            Number::Bad => drop_value(state, &value, "float: not a number".into()),
        }
    });
    env.add_filter("bool", |state: &State, value: Value| -> Value {
        if is_blank(&value) {
            return Value::UNDEFINED;
        }
        if let Some(text) = value.as_str() {
            return match text.trim().to_ascii_lowercase().as_str() {
                "true" | "yes" | "y" | "1" | "on" => Value::from(true),
                "false" | "no" | "n" | "0" | "off" => Value::from(false),
                _ => drop_value(state, &value, "bool: not true/false/yes/no/1/0".into()),
            };
        }
        match (value.kind(), value.as_i64()) {
            (minijinja::value::ValueKind::Bool, _) => value,
            (_, Some(0)) => Value::from(false),
            (_, Some(1)) => Value::from(true),
            _ => drop_value(state, &value, "bool: not true/false/yes/no/1/0".into()),
        }
    });
    // Freshsales sends "" for a blank field, so `default` must cover empty strings too.
    env.add_filter(
        "default",
        |value: Value, other: Option<Value>, _boolean: Option<bool>| -> Value {
            if is_blank(&value) {
                other.unwrap_or_else(|| Value::from(""))
            } else {
                value
            }
        },
    );
    env.add_filter(
        "split",
        |value: Value, sep: Option<String>| -> Result<Value, Error> {
            let sep = sep.unwrap_or_else(|| ",".to_string());
            if sep.is_empty() {
                return Err(Error::new(
                    ErrorKind::InvalidOperation,
                    "split: the separator is empty",
                ));
            }
            let Some(text) = text_of(&value) else {
                return Ok(Value::UNDEFINED);
            };
            let parts: Vec<Value> = text
                .split(sep.as_str())
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(Value::from)
                .collect();
            Ok(if parts.is_empty() {
                Value::UNDEFINED
            } else {
                Value::from(parts)
            })
        },
    );
    super::sink::count_blanks(env);
}

fn map_text(value: Value, f: impl Fn(&str) -> String) -> Value {
    if value.is_undefined() || value.is_none() {
        return value;
    }
    match value.as_str() {
        Some(s) => Value::from(f(s)),
        None => Value::from(f(&value.to_string())),
    }
}

enum Number {
    Blank,
    Int(i64),
    Float(f64),
    Bad,
}

fn number_of(value: &Value) -> Number {
    if is_blank(value) {
        return Number::Blank;
    }
    if let Some(text) = value.as_str() {
        let text = text.trim();
        if let Ok(i) = text.parse::<i64>() {
            return Number::Int(i);
        }
        return match text.parse::<f64>() {
            Ok(f) if f.is_finite() => Number::Float(f),
            _ => Number::Bad,
        };
    }
    if value.kind() == minijinja::value::ValueKind::Bool {
        return Number::Int(i64::from(value.is_true()));
    }
    if let Some(i) = value.as_i64() {
        return Number::Int(i);
    }
    match f64::try_from(value.clone()) {
        Ok(f) if f.is_finite() => Number::Float(f),
        _ => Number::Bad,
    }
}

/// Scalars only: the date parser reads strings and numbers.
fn json_scalar(value: &Value) -> Option<serde_json::Value> {
    if let Some(s) = value.as_str() {
        return Some(serde_json::Value::from(s));
    }
    if value.kind() != minijinja::value::ValueKind::Number {
        return None;
    }
    if let Some(i) = value.as_i64() {
        return Some(serde_json::Value::from(i));
    }
    f64::try_from(value.clone())
        .ok()
        .and_then(serde_json::Number::from_f64)
        .map(serde_json::Value::Number)
}

#[cfg(test)]
mod tests {
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
}
