//! Integration tests: the real app on port 0 against the in-process CleverTap simulator.

mod admin;
mod console;
mod deletion;
mod delivery;
mod health;
mod holds;
mod hostile;
mod intake;
mod mapping;
mod pause;
#[path = "../pg_support/mod.rs"]
mod pg_support;
mod postgres;
mod privacy;
mod test_app;
mod upload;
