//! The in-process fake CleverTap with one account, on a port of its own.

use clevertap_sim::{SimAccount, Simulator, SimulatorConfig};

pub async fn one_account(account_id: &str, passcode: &str) -> Simulator {
    let config = SimulatorConfig {
        accounts: vec![SimAccount::new(account_id, passcode)],
        ..SimulatorConfig::default()
    };
    Simulator::start("127.0.0.1:0".parse().expect("addr"), config)
        .await
        .expect("simulator")
}
