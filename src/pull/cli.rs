//! `keycard pull --source NAME [--dry-run] [--json]`: one full pull now, from this machine,
//! into the journal (the running service applies what it journals); `--dry-run` reads the
//! directory and prints what a pull would journal, writing nothing.

use std::path::PathBuf;
use std::sync::Arc;

use super::{PullReport, Puller};
use crate::clock::SystemClock;
use crate::config::Config;
use crate::journal::Journal;

#[derive(Debug, clap::Args)]
pub struct PullArgs {
    /// Config file (TOML). `KEYCARD_*` environment variables override it.
    #[arg(long, short = 'c', env = "KEYCARD_CONFIG")]
    pub config: Option<PathBuf>,
    /// The `[[sources]]` name to pull (it needs a `[sources.api]` table).
    #[arg(long)]
    pub source: String,
    /// Read and compare only: print what would be journaled, journal nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(args: PullArgs) -> Result<(), String> {
    let config = Config::load(args.config.as_deref()).map_err(|e| e.to_string())?;
    if !config.sources.contains_key(&args.source) {
        return Err(super::PullError::UnknownSource(args.source).to_string());
    }
    let journal = Journal::connect(&config.journal_url(), 2)
        .await
        .map_err(|e| e.to_string())?;
    if !journal.ready().await.map_err(|e| e.to_string())? {
        return Err("the journal is not set up yet: run `keycard migrate` first".into());
    }
    let owner = format!("keycard-pull-{}", uuid::Uuid::new_v4().simple());
    let puller = Puller::from_config(&config, journal.clone(), Arc::new(SystemClock), owner);
    let outcome = puller.run_now(&args.source, args.dry_run).await;
    journal.close().await;
    let report = outcome.map_err(|e| e.to_string())?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?
        );
    } else {
        print!("{}", render(&report));
    }
    Ok(())
}

/// The report as people read it.
pub fn render(r: &PullReport) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let c = &r.counts;
    let _ = writeln!(
        out,
        "{}pull of {} (run {}): read {} records in {} pages; {} hired, {} changed, {} departed, {} held, {} unchanged",
        if r.dry_run { "DRY RUN: " } else { "" },
        r.source,
        r.run_id,
        c.records,
        c.pages,
        c.hired,
        c.changed,
        c.departed,
        c.held,
        c.unchanged
    );
    if let Some(why) = &r.held_because {
        let _ = writeln!(out, "departures HELD: {why}");
        if !r.dry_run {
            let _ = writeln!(
                out,
                "  release them after checking the directory: POST /api/v1/pull-runs/{}/release {{\"reason\": \"...\"}}",
                r.run_id
            );
        }
    }
    let repeated = r.found.iter().filter(|f| f.duplicate).count();
    if repeated > 0 {
        let _ = writeln!(
            out,
            "{repeated} finding(s) were already journaled by an earlier run and wait to be applied (is keycard serve running?)"
        );
    }
    for f in r.found.iter().filter(|f| !f.duplicate) {
        let _ = writeln!(
            out,
            "  {:<13} {}{}: {}{}",
            f.kind.as_str(),
            f.person,
            f.email
                .as_deref()
                .map(|e| format!(" <{e}>"))
                .unwrap_or_default(),
            f.why,
            if f.held { " [held]" } else { "" },
        );
    }
    for e in &r.errors {
        let _ = writeln!(out, "  error: {e}");
    }
    if r.dry_run {
        let _ = writeln!(out, "nothing was journaled (--dry-run)");
    }
    out
}
