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
    env.add_filter("date", move |state: &State, value: Value| {
        date(state, &value, &for_date)
    });
    env.add_filter("epoch", move |state: &State, value: Value| {
        epoch(state, &value, &dates)
    });
    env.add_filter("phone", move |state: &State, value: Value| {
        phone(state, &value, region)
    });
    env.add_filter("lower", |value: Value| {
        map_text(value, |s| s.to_lowercase())
    });
    env.add_filter("trim", |value: Value| {
        map_text(value, |s| s.trim().to_string())
    });
    env.add_filter("int", int);
    env.add_filter("float", float);
    env.add_filter("bool", boolean);
    env.add_filter("default", default);
    env.add_filter("split", split);
    super::sink::count_blanks(env);
}

/// `date`: a date in the route's format, ISO 8601 or epoch seconds → `$D_<epoch>`.
fn date(state: &State, value: &Value, dates: &DateParser) -> Value {
    if is_blank(value) {
        return Value::UNDEFINED;
    }
    match json_scalar(value).and_then(|j| dates.epoch_of_json(&j)) {
        Some(epoch) => Value::from(format!("$D_{epoch}")),
        None => drop_value(
            state,
            value,
            "date: not a date in the route's format, ISO 8601 or epoch seconds".into(),
        ),
    }
}

/// `epoch`: the same dates → epoch seconds.
fn epoch(state: &State, value: &Value, dates: &DateParser) -> Value {
    if is_blank(value) {
        return Value::UNDEFINED;
    }
    match json_scalar(value).and_then(|j| dates.epoch_of_json(&j)) {
        Some(epoch) => Value::from(epoch),
        None => drop_value(
            state,
            value,
            "epoch: not a date in the route's format, ISO 8601 or epoch seconds".into(),
        ),
    }
}

/// `phone`: free text → E.164 in the route's default region.
fn phone(state: &State, value: &Value, region: phones::Region) -> Value {
    let Some(text) = text_of(value) else {
        return Value::UNDEFINED;
    };
    match phones::to_e164(&text, region) {
        Some(e164) => Value::from(e164),
        None => drop_value(
            state,
            value,
            "phone: not a valid phone number for E.164".into(),
        ),
    }
}

fn int(state: &State, value: Value) -> Value {
    match number_of(&value) {
        Number::Blank => Value::UNDEFINED,
        Number::Int(i) => Value::from(i),
        Number::Float(f) if f.abs() < 9.2e18 => Value::from(f.trunc() as i64),
        _ => drop_value(state, &value, "int: not an integer".into()),
    }
}

fn float(state: &State, value: Value) -> Value {
    match number_of(&value) {
        Number::Blank => Value::UNDEFINED,
        Number::Int(i) => Value::from(i as f64),
        Number::Float(f) => Value::from(f),
        Number::Bad => drop_value(state, &value, "float: not a number".into()),
    }
}

fn boolean(state: &State, value: Value) -> Value {
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
}

/// Freshsales sends "" for a blank field, so `default` covers empty strings too.
fn default(value: Value, other: Option<Value>, _boolean: Option<bool>) -> Value {
    if is_blank(&value) {
        other.unwrap_or_else(|| Value::from(""))
    } else {
        value
    }
}

fn split(value: Value, sep: Option<String>) -> Result<Value, Error> {
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
mod tests;
