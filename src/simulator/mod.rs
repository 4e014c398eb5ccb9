//! Placeholder until the simulator module lands.
use std::net::SocketAddr;
pub struct SimAccount { pub id: String, pub passcodes: Vec<String> }
#[derive(Default)]
pub struct SimulatorConfig { pub accounts: Vec<SimAccount>, pub log_records: bool, pub max_in_flight: usize }
pub struct Simulator;
impl Simulator {
    pub async fn start(_b: SocketAddr, _c: SimulatorConfig) -> std::io::Result<Self> { Err(std::io::Error::other("no simulator")) }
    pub fn url(&self) -> String { String::new() }
    pub async fn shutdown(self) {}
}
pub async fn run(_b: SocketAddr, _c: SimulatorConfig, _t: tokio_util::sync::CancellationToken) -> std::io::Result<()> { Ok(()) }
