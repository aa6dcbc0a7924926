//! `keycard gusto-token`: the operator's half of Gusto's verification handshake
//! (`sources/gusto_token.rs`): open a short window, list the tokens received, confirm the
//! one Gusto shows, or clear them.

use std::io::Write as _;

use chrono::Utc;

use crate::cli::ConfigArg;
use crate::config::{Config, SourceKind};
use crate::sources::gusto_token::{DEFAULT_WINDOW_MINUTES, TokenStore};

#[derive(Debug, clap::Args)]
pub struct GustoTokenArgs {
    #[command(subcommand)]
    pub action: GustoTokenAction,
    #[command(flatten)]
    pub config: ConfigArg,
    /// The `kind = "gusto"` source (its `verification_token_file` holds the files).
    #[arg(long, global = true, default_value = "gusto")]
    pub source: String,
}

#[derive(Debug, clap::Subcommand)]
pub enum GustoTokenAction {
    /// Accept verification tokens for a few minutes (then request one from Gusto).
    Open {
        #[arg(long, default_value_t = DEFAULT_WINDOW_MINUTES)]
        minutes: u32,
    },
    /// List the tokens received (fingerprints; `--reveal` prints the tokens).
    List {
        #[arg(long)]
        reveal: bool,
    },
    /// Make the candidate with this fingerprint (or a prefix of it) the source's token.
    Confirm {
        #[arg(long)]
        fingerprint: String,
    },
    /// Close the window and forget every candidate.
    Clear,
}

pub(crate) fn run(args: GustoTokenArgs) -> Result<(), String> {
    let config = Config::load(args.config.config.as_deref()).map_err(|e| e.to_string())?;
    let source = config
        .sources
        .get(&args.source)
        .ok_or_else(|| format!("no source named '{}' is configured", args.source))?;
    if source.kind != SourceKind::Gusto {
        return Err(format!("source '{}' is not of kind gusto", args.source));
    }
    let options: crate::sources::gusto::Options = source.options().map_err(|e| e.to_string())?;
    let path = options.verification_token_file.as_ref().ok_or_else(|| {
        format!(
            "sources '{}'.verification_token_file: set it to receive the token through the handshake",
            args.source
        )
    })?;
    let store = TokenStore::new(path);
    let mut out = std::io::stdout().lock();
    let text = match args.action {
        GustoTokenAction::Open { minutes } => {
            let until = store
                .open_window(Utc::now(), minutes)
                .map_err(|e| e.to_string())?;
            format!(
                "verification window open until {}: request a token from Gusto now\n(GET /v1/webhook_subscriptions/{{uuid}}/request_verification_token), then `keycard gusto-token list`\n",
                until.to_rfc3339()
            )
        }
        GustoTokenAction::List { reveal } => {
            let mut text = String::new();
            match store
                .window_open_until(Utc::now())
                .map_err(|e| e.to_string())?
            {
                Some(until) => {
                    text.push_str(&format!("window open until {}\n", until.to_rfc3339()))
                }
                None => text.push_str("window closed\n"),
            }
            for c in store.candidates().map_err(|e| e.to_string())? {
                text.push_str(&format!(
                    "{}  received {}  subscription {}{}\n",
                    c.fingerprint,
                    c.received_at.to_rfc3339(),
                    crate::telemetry::escape(&c.subscription),
                    if reveal {
                        format!("  token {}", c.token())
                    } else {
                        String::new()
                    }
                ));
            }
            text
        }
        GustoTokenAction::Confirm { fingerprint } => {
            let chosen = store.confirm(&fingerprint).map_err(|e| e.to_string())?;
            format!(
                "token {} written to {}; verify the subscription with it (PUT /v1/webhook_subscriptions/{{uuid}}/verify), then set secret_file = \"{}\" and restart\n",
                chosen.fingerprint,
                path.display(),
                path.display()
            )
        }
        GustoTokenAction::Clear => {
            store.clear().map_err(|e| e.to_string())?;
            "window closed, candidates forgotten\n".to_owned()
        }
    };
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| format!("stdout: {e}"))
}
