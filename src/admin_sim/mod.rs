//! In-memory simulator of the Anthropic Admin API.

#[derive(Debug, clap::Args)]
pub struct SimArgs {}

pub async fn run_cli(_args: SimArgs) -> Result<(), Box<dyn std::error::Error>> {
    Ok(())
}
