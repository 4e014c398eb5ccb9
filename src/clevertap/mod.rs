//! CleverTap `/1/upload`: the wire model, the HTTP client, batching and answer classification.

pub mod batch;
pub mod classify;
pub mod client;
pub mod model;
