//! The per-render sink through which filters report dropped values and blank interpolations.

use std::sync::{Arc, Mutex};

use minijinja::value::{Object, Value};
use minijinja::{Environment, State};

/// Context key of the per-render sink; filters find it through the template state.
pub(crate) const SINK_KEY: &str = "__freshtap_sink";

/// A value a filter refused: the caller records it as a DroppedField for the key being rendered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FilterDrop {
    pub value: String,
    pub reason: String,
}

#[derive(Debug, Default)]
struct SinkState {
    drops: Vec<FilterDrop>,
    printed: usize,
    blank: usize,
}

/// Lives in one render's context, so concurrent renders never share it.
#[derive(Debug, Default)]
pub(crate) struct RenderSink(Mutex<SinkState>);

impl Object for RenderSink {}

impl RenderSink {
    /// Drops and (printed, blank) interpolation counts since the last call.
    pub(crate) fn take(&self) -> (Vec<FilterDrop>, usize, usize) {
        match self.0.lock() {
            Ok(mut state) => {
                let taken = std::mem::take(&mut *state);
                (taken.drops, taken.printed, taken.blank)
            }
            Err(_) => (Vec::new(), 0, 0),
        }
    }

    fn with(&self, f: impl FnOnce(&mut SinkState)) {
        if let Ok(mut state) = self.0.lock() {
            f(&mut state);
        }
    }
}

pub(crate) fn sink_of(state: &State) -> Option<Arc<RenderSink>> {
    state.lookup(SINK_KEY)?.downcast_object::<RenderSink>()
}

pub(crate) fn drop_value(state: &State, value: &Value, reason: String) -> Value {
    if let Some(sink) = sink_of(state) {
        let value = value
            .as_str()
            .map_or_else(|| value.to_string(), str::to_string);
        sink.with(|s| s.drops.push(FilterDrop { value, reason }));
    }
    Value::UNDEFINED
}

pub(crate) fn is_blank(value: &Value) -> bool {
    value.is_undefined() || value.is_none() || value.as_str().is_some_and(|s| s.trim().is_empty())
}

/// Counting blank interpolations lets a mixed string such as "account-{{ id }}" be omitted
/// when every value in it was blank, instead of sending "account-".
pub(crate) fn count_blanks(env: &mut Environment<'static>) {
    env.set_formatter(|out, state, value| {
        if let Some(sink) = sink_of(state) {
            let blank = is_blank(value);
            sink.with(|s| {
                s.printed += 1;
                s.blank += usize::from(blank);
            });
        }
        minijinja::escape_formatter(out, state, value)
    });
}
