//! Command line: `keycard <subcommand>`.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "keycard",
    version,
    about = "Joiner / mover / leaver automation for the Claude Platform"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the local Admin API simulator (demos and tests).
    AdminSim(crate::admin_sim::SimArgs),
}

pub async fn run() -> ExitCode {
    let cli = Cli::parse();
    crate::telemetry::init();
    let result = match cli.command {
        Command::AdminSim(args) => crate::admin_sim::run_cli(args).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}
