//! `keycard notify-test`: sends one `keycard.test` message to a configured target, now, and
//! says how the receiver answered — to check a target's URL and secret before relying on it.

use crate::cli::ConfigArg;
use crate::clock::{Clock, SystemClock};
use crate::config::Config;

use super::SendResult;

#[derive(Debug, clap::Args)]
pub struct NotifyTestArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// The `[[notify.targets]]` name (default: every target).
    #[arg(long)]
    pub target: Option<String>,
}

pub async fn run(args: NotifyTestArgs) -> Result<(), String> {
    let config = Config::load(args.config.config.as_deref()).map_err(|e| e.to_string())?;
    let targets: Vec<_> = config
        .notify_targets
        .iter()
        .filter(|t| args.target.as_ref().is_none_or(|n| *n == t.name))
        .collect();
    if targets.is_empty() {
        return Err(match args.target {
            Some(name) => format!("no [[notify.targets]] entry is named '{name}'"),
            None => "no [[notify.targets]] are configured".into(),
        });
    }
    let mut failed = 0;
    for t in targets {
        match super::send_test(
            t,
            config.raw.notify.console_url.as_deref(),
            SystemClock.now(),
        )
        .await
        {
            SendResult::Delivered(status) => outln!("{}: delivered ({status})", t.name),
            SendResult::Retry { status, error, .. } | SendResult::GiveUp { status, error } => {
                failed += 1;
                let status = status.map(|s| format!(" ({s})")).unwrap_or_default();
                outln!("{}: NOT delivered{status}: {error}", t.name);
            }
        }
    }
    if failed > 0 {
        return Err(format!(
            "{failed} target(s) did not accept the test message"
        ));
    }
    Ok(())
}
