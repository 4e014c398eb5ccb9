//! What the process-level tests share: the launcher of the real `freshtap` binary and a TCP
//! proxy to the database that a test can cut.
#![allow(
    dead_code,
    reason = "each test binary uses a different part of the helper"
)]

pub mod db_proxy;
pub mod relay;
pub mod replica;
pub mod sim;
