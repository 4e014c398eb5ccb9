//! CleverTap `/1/upload`: the wire model, the HTTP client, batching, answer classification, and
//! the answers the drop-in gives as CleverTap would.

pub mod answer;
pub mod batch;
pub mod classify;
pub mod client;
pub mod model;

#[cfg(test)]
mod props;
