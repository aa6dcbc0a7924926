//! `keycard serve` run as a real process: the address it prints first, and waiting (in
//! real time, bounded) for what it does.

use std::io::{BufRead as _, BufReader};
use std::process::Child;
use std::time::{Duration, Instant};

/// The base URL from the first line `keycard serve` prints on its (piped) stdout,
/// `keycard listening on http://127.0.0.1:PORT`; the rest of stdout is closed.
pub fn listening_on(child: &mut Child) -> anyhow::Result<String> {
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| anyhow::anyhow!("no stdout"))?;
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line)?;
    line.trim()
        .strip_prefix("keycard listening on ")
        .map(str::to_owned)
        .ok_or_else(|| anyhow::anyhow!("unexpected first line {line:?}"))
}

/// Polls `done` every 50 ms until it holds; an error naming `what` once `limit` has passed.
pub async fn wait_for(
    what: &str,
    limit: Duration,
    mut done: impl FnMut() -> bool,
) -> anyhow::Result<()> {
    let start = Instant::now();
    while !done() {
        anyhow::ensure!(start.elapsed() < limit, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}
