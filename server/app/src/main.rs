//! The `agui-server` binary: parse the command line and hand over to the library.

use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    agui_server::main_with(agui_server::cli::Cli::parse()).await
}
