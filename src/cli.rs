//! Command line: `keycard <subcommand>` (docs/spec/keycard.md §2).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use clap::{Parser, Subcommand, ValueEnum};

use crate::app::{Application, compile_rules};
use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::journal::{Journal, JournalFilter};

mod check;
mod journal;
mod plan;
use check::check_config;
use journal::{journal, parse_time_arg, sign};
use plan::plan;
pub(crate) use plan::sync_here;

/// `keycard --version`: the crate version and the git revision it was built from (build.rs).
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (",
    env!("KEYCARD_GIT_REV"),
    ")"
);

#[derive(Debug, Parser)]
#[command(
    name = "keycard",
    version = VERSION,
    about = "Joiner / mover / leaver automation for the Claude Platform"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, clap::Args)]
pub struct ConfigArg {
    /// Config file (TOML). `KEYCARD_*` environment variables override it.
    #[arg(long, short = 'c', env = "KEYCARD_CONFIG")]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP server and the workers (applies migrations unless told not to).
    Serve(ConfigArg),
    /// Apply journal migrations and exit.
    Migrate(ConfigArg),
    /// Validate config and rules; print sources, rules and managed workspaces.
    CheckConfig(CheckArgs),
    /// Show the actions an event (or, with --all, a config for everyone) would cause, with the rules that matched; changes nothing.
    Plan(PlanArgs),
    /// Query the journal.
    Journal(JournalArgs),
    /// Release actions held by the removal cap, with a reason (through the running service).
    Release(crate::cli_ops::ReleaseArgs),
    /// Mark a manual action as dealt with, with a note (through the running service).
    Resolve(crate::cli_ops::ResolveArgs),
    /// Read the whole organization now and compare everyone with it: ask the running
    /// service (with a reason), or with `--local` read it from here into the journal.
    Sync(crate::cli_ops::SyncArgs),
    /// Import the current staff (CSV or a SCIM source) as people; writes nothing to the organization.
    Import(crate::adoption::cli::ImportArgs),
    /// A best-practice report from the organization mirror: access, drift, unmanaged, invites, workspaces, keys.
    Report(crate::adoption::cli::ReportArgs),
    /// Sign a payload the way a Standard Webhooks sender would (for curl and tests).
    Sign(SignArgs),
    /// Run the local Admin API simulator (demos and tests).
    AdminSim(crate::admin_sim::SimArgs),
    /// Run a simulator of a sender's own API (Gusto, HiBob, Okta, Graph, BambooHR).
    SenderSim(crate::sender_sim::SenderSimArgs),
    /// Show the whole loop on this machine: simulator, embedded journal, signed events.
    Demo(crate::demo::DemoArgs),
    /// Print a shell completion script (e.g. `keycard completions bash > /etc/bash_completion.d/keycard`).
    Completions(CompletionsArgs),
    /// Print the man page (roff), or write one page per command into a directory.
    Man(ManArgs),
    /// Exit 0 when a running `keycard serve` answers its liveness route (container health checks).
    Health(HealthArgs),
    /// Gusto's verification handshake: open a window, list and confirm the token.
    GustoToken(crate::gusto_cli::GustoTokenArgs),
    /// Send a test alert to the configured notify targets now and report how each answered.
    NotifyTest(crate::notify::NotifyTestArgs),
}

#[derive(Debug, clap::Args)]
pub struct CompletionsArgs {
    pub shell: clap_complete::Shell,
}

#[derive(Debug, clap::Args)]
pub struct ManArgs {
    /// Write keycard.1 and keycard-<command>.1 here instead of printing keycard.1.
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct HealthArgs {
    /// The route to probe.
    #[arg(
        long,
        env = "KEYCARD_HEALTH_URL",
        default_value = "http://127.0.0.1:8080/healthz"
    )]
    pub url: url::Url,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 5)]
    pub timeout_secs: u64,
}

#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// Skip checking workspace names against the Admin API (it is a GET, made only when a
    /// credential is configured).
    #[arg(long)]
    pub offline: bool,
    /// Print the effective configuration, one key a line, with where each value came from
    /// (default, the file, or the environment variable); secrets are never printed.
    #[arg(long)]
    pub print: bool,
}

#[derive(Debug, clap::Args)]
pub struct PlanArgs {
    /// A native-format event (docs/spec/keycard.md §4).
    #[arg(long, required_unless_present = "all", conflicts_with = "all")]
    pub event: Option<PathBuf>,
    /// Everyone at once: what each person would gain and lose under this config, from the
    /// organization mirror; exits 1 when the removal cap would hold part of it.
    #[arg(long)]
    pub all: bool,
    /// Output of `--all`.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// The source the event would arrive from (default: the first `keycard` source).
    #[arg(long)]
    pub source: Option<String>,
    /// Journal URL to read what is known of the person (default: the config's journal).
    #[arg(long, env = "KEYCARD_JOURNAL_URL")]
    pub journal: Option<String>,
    #[command(flatten)]
    pub config: ConfigArg,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// A page as a table for people.
    Table,
    /// Audit records as one JSON array.
    Json,
    /// Audit records as CSV (quoted by the csv crate, formulas defused).
    Csv,
    /// Audit records, one JSON object per line.
    Jsonl,
}

#[derive(Debug, clap::Args)]
pub struct JournalArgs {
    /// Person: journal id, source id or email.
    #[arg(long)]
    pub person: Option<String>,
    #[arg(long)]
    pub email: Option<String>,
    #[arg(long)]
    pub status: Option<String>,
    #[arg(long)]
    pub source: Option<String>,
    /// Action kind (e.g. create_invite) or, with --events, event kind.
    #[arg(long)]
    pub kind: Option<String>,
    /// Lower bound (inclusive): RFC 3339, a date (2026-12-01, UTC) or a duration back from
    /// now (24h, 7d).
    #[arg(long, value_parser = parse_time_arg)]
    pub since: Option<DateTime<Utc>>,
    /// Upper bound (exclusive), written like --since.
    #[arg(long, value_parser = parse_time_arg)]
    pub until: Option<DateTime<Utc>>,
    /// Rows per page (1 to 1000; with --all, 1000 unless given).
    #[arg(long, value_parser = clap::value_parser!(i64).range(1..=1000))]
    pub limit: Option<i64>,
    /// Every page, streamed as it is read (csv, json, jsonl).
    #[arg(long)]
    pub all: bool,
    /// Cursor printed by a previous page.
    #[arg(long)]
    pub cursor: Option<String>,
    /// List events instead of actions.
    #[arg(long)]
    pub events: bool,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Journal URL to read (instead of the one the config names).
    #[arg(long, env = "KEYCARD_JOURNAL_URL")]
    pub journal: Option<String>,
    #[command(flatten)]
    pub config: ConfigArg,
}

#[derive(Debug, clap::Args)]
pub struct SignArgs {
    /// Environment variable holding the `whsec_...` secret.
    #[arg(long, default_value = "KEYCARD_SOURCE_SECRET")]
    pub secret_env: String,
    /// The delivery id (`webhook-id`); a fresh one when absent.
    #[arg(long)]
    pub id: Option<String>,
    /// Unix seconds (`webhook-timestamp`); now when absent.
    #[arg(long)]
    pub timestamp: Option<i64>,
    /// Print a ready-to-run curl command posting the signed body to this URL.
    #[arg(long)]
    pub curl: Option<String>,
    /// The body to sign.
    pub file: PathBuf,
}

pub async fn run() -> ExitCode {
    // Two rustls crypto providers are linked (reqwest's aws-lc-rs, sqlx's ring), so code
    // that asks rustls for the process default (sqlx verifying a PostgreSQL server against
    // `sslrootcert`) would panic on the ambiguity: name one. An error only means one is
    // already installed.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let cli = Cli::parse();
    // The demo prints its own narrative; only warnings go to the log there.
    let quiet = matches!(
        cli.command,
        Command::Demo(_)
            | Command::Journal(_)
            | Command::Import(_)
            | Command::Report(_)
            | Command::Sign(_)
            | Command::Plan(_)
            | Command::CheckConfig(_)
            | Command::Completions(_)
            | Command::Man(_)
            | Command::Health(_)
            | Command::Release(_)
            | Command::Resolve(_)
            | Command::Sync(_)
            | Command::GustoToken(_)
    );
    crate::telemetry::init_with_default(if quiet { "warn" } else { "info" });
    if matches!(
        cli.command,
        Command::CheckConfig(_)
            | Command::Journal(_)
            | Command::Plan(_)
            | Command::Sign(_)
            | Command::Migrate(_)
            | Command::Completions(_)
            | Command::Man(_)
    ) {
        quiet_on_closed_pipe();
    }
    let result = match cli.command {
        Command::Serve(args) => serve(args).await,
        Command::Migrate(args) => migrate(args).await,
        Command::CheckConfig(args) => check_config(args).await,
        Command::Plan(args) => plan(args).await,
        Command::Journal(args) => journal(args).await,
        Command::Release(args) => crate::cli_ops::release(args).await,
        Command::Resolve(args) => crate::cli_ops::resolve(args).await,
        Command::Sync(args) => crate::cli_ops::sync(args).await,
        Command::Import(args) => crate::adoption::cli::import(args).await,
        Command::Report(args) => crate::adoption::cli::report(args).await,
        Command::Sign(args) => sign(args),
        Command::AdminSim(args) => crate::admin_sim::run_cli(args)
            .await
            .map_err(|e| e.to_string()),
        Command::SenderSim(args) => crate::sender_sim::run_cli(args)
            .await
            .map_err(|e| e.to_string()),
        Command::Demo(args) => crate::demo::run(args).await.map(|_| ()),
        Command::Completions(args) => completions(args),
        Command::Man(args) => man(args),
        Command::Health(args) => health(args).await,
        Command::GustoToken(args) => crate::gusto_cli::run(args),
        Command::NotifyTest(args) => crate::notify::run_test_cli(args).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            let _ =
                std::io::Write::write_fmt(&mut std::io::stderr(), format_args!("error: {err}\n"));
            ExitCode::FAILURE
        }
    }
}

/// `keycard journal | head` should stop quietly like any Unix tool, not panic on the
/// broken pipe: Rust ignores SIGPIPE, which turns the closed pipe into a `println!` panic.
/// Report commands get the default action back; the servers keep ignoring it.
fn quiet_on_closed_pipe() {
    #[cfg(unix)]
    // SAFETY: called once at start-up, before any other thread of ours writes to a pipe;
    // `signal` with SIG_DFL installs no handler code.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

type CliResult = Result<(), String>;

fn completions(args: CompletionsArgs) -> CliResult {
    let mut command = <Cli as clap::CommandFactory>::command();
    clap_complete::generate(args.shell, &mut command, "keycard", &mut std::io::stdout());
    Ok(())
}

fn man(args: ManArgs) -> CliResult {
    let command = <Cli as clap::CommandFactory>::command();
    match args.dir {
        Some(dir) => {
            std::fs::create_dir_all(&dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
            clap_mangen::generate_to(command, &dir)
                .map_err(|e| format!("cannot write man pages to {}: {e}", dir.display()))?;
            outln!("man pages written to {}", dir.display());
            Ok(())
        }
        None => {
            let mut out = std::io::stdout().lock();
            clap_mangen::Man::new(command)
                .render(&mut out)
                .map_err(|e| format!("cannot write the man page: {e}"))
        }
    }
}

/// A distroless image has no curl: the binary probes itself. Any 2xx is healthy.
async fn health(args: HealthArgs) -> CliResult {
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(args.timeout_secs))
        .build()
        .map_err(|e| format!("cannot build an HTTP client: {e}"))?;
    let response = client.get(args.url.clone()).send().await.map_err(|e| {
        // reqwest's own message hides the cause (refused, timed out): show the chain.
        let mut message = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(cause) = source {
            message = format!("{message}: {cause}");
            source = cause.source();
        }
        format!("{}: {message}", args.url)
    })?;
    if response.status().is_success() {
        Ok(())
    } else {
        Err(format!("{}: HTTP {}", args.url, response.status()))
    }
}

fn load(args: &ConfigArg) -> Result<Config, String> {
    Config::load(args.config.as_deref()).map_err(|e| e.to_string())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}

async fn serve(args: ConfigArg) -> CliResult {
    let config = load(&args)?;
    let app = Application::build(config, Arc::new(SystemClock))
        .await
        .map_err(|e| e.to_string())?;
    let addr = app.local_addr().map_err(|e| e.to_string())?;
    outln!("keycard listening on http://{addr}");
    tracing::info!(%addr, "keycard serving");
    if let Some(ops) = app.ops_addr() {
        let ops = ops.map_err(|e| e.to_string())?;
        outln!("keycard ops API and metrics on http://{ops}");
        tracing::info!(%ops, "ops API and metrics on their own listener");
    }
    app.run(shutdown_signal()).await.map_err(|e| e.to_string())
}

async fn connect(config: &Config) -> Result<Journal, String> {
    Journal::connect(&config.journal_url(), 2)
        .await
        .map_err(|e| e.to_string())
}

async fn migrate(args: ConfigArg) -> CliResult {
    let config = load(&args)?;
    let journal = connect(&config).await?;
    journal.migrate().await.map_err(|e| e.to_string())?;
    outln!("journal migrations applied");
    Ok(())
}
