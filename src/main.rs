//! Thin entry point: everything lives in the library so tests can drive it.

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    keycard::cli::run().await
}
