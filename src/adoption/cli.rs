//! The adoption commands: `keycard import` (and, later in this module, `plan --all` and
//! `keycard report`).

use std::path::PathBuf;
use std::sync::Arc;

use super::import::{self, ImportReport};
use super::{AdoptionError, progress};
use crate::clock::{SharedClock, SystemClock};
use crate::config::{Config, SourceKind};
use crate::journal::Journal;

#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// A CSV of the current staff: a header row with `id` (or `employee_id`) and `email`
    /// (or `work_email`); optional `name`, `department`, `title`, `division`,
    /// `cost_center`, `location`, `worker_type`, `manager_email`, `groups` (`;`-separated)
    /// and `status` (`active`, `on_leave`, `departed`); other columns become attributes.
    #[arg(long, conflicts_with = "scim", required_unless_present = "scim")]
    pub csv: Option<PathBuf>,
    /// Import the Users a connected SCIM source holds instead.
    #[arg(long)]
    pub scim: Option<String>,
    /// The source the people belong to: the one whose webhooks will keep them current
    /// (default: the first configured source that is not SCIM, else `import`).
    #[arg(long)]
    pub source: Option<String>,
    /// Validate and count only; write nothing.
    #[arg(long)]
    pub check: bool,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub config: crate::cli::ConfigArg,
}

fn load(args: &crate::cli::ConfigArg) -> Result<Config, String> {
    Config::load(args.config.as_deref()).map_err(|e| e.to_string())
}

/// The journal a command writes to (migrated, as `serve` would).
async fn open(config: &Config) -> Result<Journal, String> {
    let journal = Journal::connect(&config.journal_url(), 2)
        .await
        .map_err(|e| e.to_string())?;
    journal.migrate().await.map_err(|e| e.to_string())?;
    Ok(journal)
}

/// `keycard import`.
pub async fn import(args: ImportArgs) -> Result<(), String> {
    let config = load(&args.config)?;
    let journal = open(&config).await?;
    let clock: SharedClock = Arc::new(SystemClock);
    let report = run_import(
        &config,
        &journal,
        clock,
        &args,
        &mut *progress::for_stderr(),
    )
    .await
    .map_err(|e| e.to_string())?;
    journal.close().await;
    if args.json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?
        );
    } else {
        for e in &report.errors {
            eprintln!(
                "line {}{}: {}",
                e.line,
                e.id.as_deref()
                    .map(|i| format!(" ({i})"))
                    .unwrap_or_default(),
                e.error
            );
        }
        outln!(
            "{} {} rows into source '{}': {} created, {} updated, {} unchanged, {} linked to existing members, {} rejected",
            if report.written {
                "imported"
            } else {
                "checked (nothing written)"
            },
            report.rows,
            report.source,
            report.created,
            report.updated,
            report.unchanged,
            report.linked,
            report.errors.len()
        );
        match report.mirror_refreshed_at {
            Some(at) => outln!("organization mirror as read at {}", at.to_rfc3339()),
            None => outln!(
                "the organization was not read (no credential): members are linked at the first reconcile"
            ),
        }
    }
    Ok(())
}

/// The import itself, for the CLI and tests: nothing but reads reach the Admin API.
pub async fn run_import(
    config: &Config,
    journal: &Journal,
    clock: SharedClock,
    args: &ImportArgs,
    progress: &mut dyn progress::Progress,
) -> Result<ImportReport, AdoptionError> {
    let now = clock.now();
    let mut report = ImportReport {
        source: match (&args.source, &args.scim) {
            (Some(s), _) | (None, Some(s)) => s.clone(),
            (None, None) => config
                .raw
                .sources
                .iter()
                .find(|s| s.kind != SourceKind::Scim)
                .map_or_else(|| "import".to_owned(), |s| s.name.clone()),
        },
        ..ImportReport::default()
    };
    let client = crate::app::admin_client_on(config, clock.clone(), Some(journal))
        .map_err(|e| AdoptionError::Config(e.to_string()))?;
    report.mirror_refreshed_at =
        super::mirror_refreshed_at(journal, client.as_ref(), &clock, "keycard-import").await?;
    let events = if let Some(name) = &args.scim {
        let source = config
            .sources
            .get(name)
            .filter(|s| s.kind == SourceKind::Scim)
            .ok_or_else(|| {
                AdoptionError::Config(format!("no SCIM source named '{name}' is configured"))
            })?;
        let mut conn = journal.conn().await?;
        let events = import::scim_events(&mut conn, name, source.deactivate_means, now).await?;
        drop(conn);
        report.rows = events.len() as u64;
        events
    } else {
        let path = args.csv.clone().unwrap_or_default();
        let file = std::fs::File::open(&path)
            .map_err(|e| AdoptionError::Input(format!("cannot read {}: {e}", path.display())))?;
        let (rows, mut errors) = import::read_csv(std::io::BufReader::new(file))?;
        report.rows = (rows.len() + errors.len()) as u64;
        let known = {
            let mut conn = journal.conn().await?;
            import::known_people(&mut conn, &report.source).await?
        };
        let (events, more) = import::events_for(&rows, &report.source, &known, now);
        errors.extend(more);
        errors.sort_by_key(|e| e.line);
        report.errors = errors;
        events
    };
    if !args.check {
        import::commit(journal, &events, now, &mut report, progress).await?;
    }
    Ok(report)
}

/// The journal a read-mostly command uses: writable when it can be (so a never-read mirror
/// can be filled), read-only when `keycard serve` holds the embedded journal.
async fn open_for_reading(config: &Config, url: Option<&str>) -> Result<Journal, String> {
    let url = url.map_or_else(|| config.journal_url(), str::to_owned);
    match Journal::connect(&url, 2).await {
        Ok(journal) => Ok(journal),
        Err(_) => Journal::connect_read_only(&url)
            .await
            .map_err(|e| e.to_string()),
    }
}

/// `keycard plan --all`.
pub async fn plan_all(config: &Config, args: crate::cli::PlanArgs) -> Result<(), String> {
    if matches!(args.format, crate::cli::Format::Csv) {
        return Err("plan --all prints --format table or json".into());
    }
    let journal = open_for_reading(config, args.journal.as_deref()).await?;
    if !journal.ready().await.map_err(|e| e.to_string())? {
        return Err(
            "the journal is not set up yet: run keycard migrate (or keycard import) first".into(),
        );
    }
    let clock: SharedClock = Arc::new(SystemClock);
    let preview = run_plan_all(config, &journal, clock)
        .await
        .map_err(|e| e.to_string())?;
    match args.format {
        crate::cli::Format::Json => outln!(
            "{}",
            serde_json::to_string_pretty(&preview).map_err(|e| e.to_string())?
        ),
        _ => out!("{}", super::preview::table(&preview)),
    }
    if preview.exceeds_cap() {
        return Err(format!(
            "this config would take access from {} people; the removal cap (safety.max_removals_per_hour = {}) would hold {} of them",
            preview.cap.people_losing_access, preview.cap.cap, preview.cap.would_hold
        ));
    }
    Ok(())
}

/// The preview itself, for the CLI, tests and benchmarks: reads the organization only when
/// the mirror was never read.
pub async fn run_plan_all(
    config: &Config,
    journal: &Journal,
    clock: SharedClock,
) -> Result<super::preview::Preview, AdoptionError> {
    let worker = crate::app::planning_worker(config, journal, clock.clone())
        .map_err(|e| AdoptionError::Config(e.to_string()))?;
    let client = crate::app::admin_client_on(config, clock.clone(), Some(journal))
        .map_err(|e| AdoptionError::Config(e.to_string()))?;
    let refreshed =
        super::mirror_refreshed_at(journal, client.as_ref(), &clock, "keycard-plan").await?;
    super::preview::preview_all(&worker, journal, clock.now(), refreshed).await
}

#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// access | drift | unmanaged | invites | workspaces | keys
    #[arg(value_parser = clap::builder::PossibleValuesParser::new(super::reports::NAMES))]
    pub name: String,
    #[arg(long, value_enum, default_value_t = crate::cli::Format::Table)]
    pub format: crate::cli::Format,
    /// Journal URL to read (instead of the one the config names).
    #[arg(long, env = "KEYCARD_JOURNAL_URL")]
    pub journal: Option<String>,
    #[command(flatten)]
    pub config: crate::cli::ConfigArg,
}

/// `keycard report NAME`.
pub async fn report(args: ReportArgs) -> Result<(), String> {
    let config = load(&args.config)?;
    let journal = open_for_reading(&config, args.journal.as_deref()).await?;
    if !journal.ready().await.map_err(|e| e.to_string())? {
        return Err(
            "the journal is not set up yet: run keycard migrate (or keycard import) first".into(),
        );
    }
    let clock: SharedClock = Arc::new(SystemClock);
    let ctx = report_context(&config, &journal, clock.clone()).map_err(|e| e.to_string())?;
    let client = crate::app::admin_client_on(&config, clock.clone(), Some(&journal))
        .map_err(|e| e.to_string())?;
    super::mirror_refreshed_at(&journal, client.as_ref(), &clock, "keycard-report")
        .await
        .map_err(|e| e.to_string())?;
    let report = super::reports::build(&ctx, &args.name)
        .await
        .map_err(|e| e.to_string())?;
    let text = match args.format {
        crate::cli::Format::Json | crate::cli::Format::Jsonl => {
            serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?
        }
        crate::cli::Format::Csv => super::reports::csv(&report).map_err(|e| e.to_string())?,
        crate::cli::Format::Table => super::reports::table(&report),
    };
    outln!("{}", text.trim_end_matches('\n'));
    Ok(())
}

/// What the reports read with, from a config (the CLI; `serve` builds its own).
pub fn report_context(
    config: &Config,
    journal: &Journal,
    clock: SharedClock,
) -> Result<super::reports::ReportContext, AdoptionError> {
    Ok(super::reports::ReportContext {
        worker: crate::app::planning_worker(config, journal, clock)
            .map_err(|e| AdoptionError::Config(e.to_string()))?,
        hygiene: config.raw.hygiene.clone(),
    })
}
