//! In-memory CleverTap store: merged profiles, the event log and every accepted record, in order.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use serde_json::{Map, Number, Value};

use crate::validate::Accepted;

/// Accepted records, applied in order. `history_limit` bounds the record and event logs
/// (oldest dropped); profiles are kept unless `store_profiles` is off.
#[derive(Debug)]
pub struct Store {
    history_limit: usize,
    store_profiles: bool,
    profiles: HashMap<String, Map<String, Value>>,
    accepted: VecDeque<Arc<Value>>,
    events: VecDeque<Arc<Value>>,
    accepted_total: u64,
    events_total: u64,
}

impl Store {
    pub fn new(history_limit: usize, store_profiles: bool) -> Self {
        Store {
            history_limit: history_limit.max(1),
            store_profiles,
            profiles: HashMap::new(),
            accepted: VecDeque::new(),
            events: VecDeque::new(),
            accepted_total: 0,
            events_total: 0,
        }
    }

    pub fn clear(&mut self) {
        self.profiles.clear();
        self.accepted.clear();
        self.events.clear();
        self.accepted_total = 0;
        self.events_total = 0;
    }

    /// Applies one accepted record: profiles merged by key, events appended (with `identity`).
    pub fn apply(&mut self, accepted: Accepted) {
        let Accepted { key, record } = accepted;
        let kind = record.get("type").and_then(Value::as_str).unwrap_or("");
        match kind {
            "profile" => {
                if self.store_profiles {
                    self.merge_profile(&key, &record);
                }
                push_bounded(&mut self.accepted, Arc::new(record), self.history_limit);
            }
            "event" => {
                let mut record = record;
                if let Value::Object(obj) = &mut record
                    && !obj.contains_key("identity")
                {
                    obj.insert("identity".to_owned(), Value::String(key));
                }
                let record = Arc::new(record);
                push_bounded(&mut self.events, Arc::clone(&record), self.history_limit);
                push_bounded(&mut self.accepted, record, self.history_limit);
                self.events_total += 1;
            }
            _ => push_bounded(&mut self.accepted, Arc::new(record), self.history_limit),
        }
        self.accepted_total += 1;
    }

    fn merge_profile(&mut self, key: &str, record: &Value) {
        let profile = match self.profiles.get_mut(key) {
            Some(p) => p,
            None => self.profiles.entry(key.to_owned()).or_default(),
        };
        let Some(data) = record.get("profileData").and_then(Value::as_object) else {
            return;
        };
        for (field, value) in data {
            apply_field(profile, field, value);
        }
        // `profileData.identity` re-keys the profile found by the top-level id (an alias).
        if let Some(new_key) = data.get("identity").and_then(Value::as_str)
            && new_key != key
            && !new_key.is_empty()
            && let Some(moved) = self.profiles.remove(key)
        {
            let target = self.profiles.entry(new_key.to_owned()).or_default();
            for (field, value) in moved {
                target.insert(field, value);
            }
        }
    }

    pub fn profile(&self, key: &str) -> Option<Value> {
        self.profiles.get(key).map(|p| Value::Object(p.clone()))
    }

    /// Removes the profile stored under `key`; true when there was one.
    pub fn remove_profile(&mut self, key: &str) -> bool {
        self.profiles.remove(key).is_some()
    }

    pub fn profile_count(&self) -> usize {
        self.profiles.len()
    }

    pub fn accepted(&self) -> Vec<Value> {
        self.accepted.iter().map(|r| (**r).clone()).collect()
    }

    pub fn events(&self) -> Vec<Value> {
        self.events.iter().map(|r| (**r).clone()).collect()
    }

    pub fn accepted_total(&self) -> u64 {
        self.accepted_total
    }

    pub fn events_total(&self) -> u64 {
        self.events_total
    }
}

fn push_bounded(log: &mut VecDeque<Arc<Value>>, item: Arc<Value>, limit: usize) {
    if log.len() >= limit {
        log.pop_front();
    }
    log.push_back(item);
}

/// Applies one `profileData` entry: a plain value sets (last writer wins); `$incr`, `$decr`,
/// `$add`, `$remove`, `$delete` operate on the stored value; other objects are stored as given.
pub fn apply_field(profile: &mut Map<String, Value>, field: &str, value: &Value) {
    let op = value
        .as_object()
        .filter(|o| o.len() == 1)
        .and_then(|o| o.iter().next())
        .filter(|(k, _)| k.starts_with('$'));
    let Some((op, arg)) = op else {
        profile.insert(field.to_owned(), value.clone());
        return;
    };
    match op.as_str() {
        "$delete" => {
            profile.remove(field);
        }
        "$incr" | "$decr" => {
            let sign = if op == "$incr" { 1.0 } else { -1.0 };
            let current = profile.get(field).cloned().unwrap_or(Value::from(0));
            profile.insert(field.to_owned(), add_numbers(&current, arg, sign));
        }
        "$add" => {
            let mut set = match profile.remove(field) {
                Some(Value::Array(items)) => items,
                Some(Value::Null) | None => Vec::new(),
                Some(scalar) => vec![scalar],
            };
            for item in as_list(arg) {
                if !set.contains(item) {
                    set.push(item.clone());
                }
            }
            profile.insert(field.to_owned(), Value::Array(set));
        }
        "$remove" => {
            if let Some(Value::Array(items)) = profile.get_mut(field) {
                let gone = as_list(arg);
                items.retain(|item| !gone.contains(&item));
            }
        }
        _ => {
            profile.insert(field.to_owned(), value.clone());
        }
    }
}

fn as_list(arg: &Value) -> Vec<&Value> {
    match arg {
        Value::Array(items) => items.iter().collect(),
        other => vec![other],
    }
}

/// `current + sign * delta`, integer when both are integers; a non-number current counts as 0.
fn add_numbers(current: &Value, delta: &Value, sign: f64) -> Value {
    let a = if current.is_number() {
        current.as_i64()
    } else {
        Some(0)
    };
    if let (Some(a), Some(b)) = (a, delta.as_i64()) {
        let sum = if sign < 0.0 {
            a.checked_sub(b)
        } else {
            a.checked_add(b)
        };
        if let Some(sum) = sum {
            return Value::from(sum);
        }
    }
    let a = current.as_f64().unwrap_or(0.0);
    let b = delta.as_f64().unwrap_or(0.0);
    Number::from_f64(a + sign * b).map_or(Value::Null, Value::Number)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn profile_after(ops: &[Value]) -> Value {
        let mut store = Store::new(usize::MAX, true);
        for data in ops {
            let record = json!({"type":"profile","identity":"u1","profileData":data});
            store.apply(Accepted {
                key: "u1".into(),
                record,
            });
        }
        store.profile("u1").unwrap_or(Value::Null)
    }

    #[test]
    fn last_writer_wins_and_operations_apply() {
        let p = profile_after(&[
            json!({"Name":"A","Count":1,"Tags":["x"],"Gender":"F"}),
            json!({"Name":"B","Count":{"$incr":2},"Tags":{"$add":["y","x"]}}),
            json!({"Count":{"$decr":1},"Tags":{"$remove":["x"]},"Gender":{"$delete":1}}),
        ]);
        assert_eq!(p, json!({"Name":"B","Count":2,"Tags":["y"]}));
    }

    #[test]
    fn add_turns_scalar_into_set_and_incr_creates() {
        let p = profile_after(&[
            json!({"I":"a"}),
            json!({"I":{"$add":"b"},"N":{"$incr":1.5}}),
        ]);
        assert_eq!(p, json!({"I":["a","b"],"N":1.5}));
    }

    #[test]
    fn events_get_identity_and_history_is_bounded() {
        let mut store = Store::new(2, true);
        for i in 0..3 {
            let record = json!({"type":"event","objectId":"o1","evtName":"E","evtData":{"i":i}});
            store.apply(Accepted {
                key: "o1".into(),
                record,
            });
        }
        let events = store.events();
        assert_eq!(events.len(), 2);
        assert_eq!(events[0]["identity"], "o1");
        assert_eq!(events[1]["evtData"]["i"], 2);
        assert_eq!(store.accepted_total(), 3);
    }
}
