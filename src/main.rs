//! freshtap's entry point: parse the command line and run it.

use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    freshtap::cli::run(freshtap::cli::Cli::parse()).await
}
