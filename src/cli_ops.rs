//! `keycard release`, `keycard resolve`, `keycard sync`: an operator's writes from the
//! command line. They go through the running service's ops API (so they work while `keycard
//! serve` holds the embedded journal, wake its workers at once, and are signed in and
//! journaled exactly as the HTTP writes are), with the operator's own token.

use serde_json::{Value, json};

/// Where the service is and who the operator is.
#[derive(Debug, clap::Args)]
pub struct OpsClientArgs {
    /// The running `keycard serve`.
    #[arg(long, env = "KEYCARD_URL", default_value = "http://127.0.0.1:8080")]
    pub url: url::Url,
    /// Environment variable holding your operator token (falls back to KEYCARD_OPS_TOKEN).
    #[arg(long, default_value = "KEYCARD_TOKEN")]
    pub token_env: String,
}

#[derive(Debug, clap::Args)]
pub struct ReleaseArgs {
    /// Ids of held actions (`keycard journal --status held`).
    #[arg(required = true, num_args = 1..)]
    pub ids: Vec<String>,
    /// Why they may go ahead (journaled with your name).
    #[arg(long)]
    pub reason: String,
    #[command(flatten)]
    pub client: OpsClientArgs,
}

#[derive(Debug, clap::Args)]
pub struct ResolveArgs {
    /// Id of a needs_manual_action action.
    pub id: String,
    /// What was done by hand (journaled with your name).
    #[arg(long, alias = "note")]
    pub reason: String,
    #[command(flatten)]
    pub client: OpsClientArgs,
}

#[derive(Debug, clap::Args)]
pub struct SyncArgs {
    /// Why the organization is read now (journaled with your name).
    #[arg(long, required_unless_present = "local")]
    pub reason: Option<String>,
    /// Read it from this process into the configured journal, and report what was found,
    /// instead of asking the running service (for a journal no `serve` holds).
    #[arg(long)]
    pub local: bool,
    /// With `--local`: the report as JSON.
    #[arg(long, requires = "local")]
    pub json: bool,
    #[command(flatten)]
    pub config: crate::cli::ConfigArg,
    #[command(flatten)]
    pub client: OpsClientArgs,
}

type CliResult = Result<(), String>;

impl OpsClientArgs {
    fn token(&self) -> Result<String, String> {
        std::env::var(&self.token_env)
            .ok()
            .or_else(|| std::env::var("KEYCARD_OPS_TOKEN").ok())
            .map(|t| t.trim().to_owned())
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                format!(
                    "set {} to your operator token ([[server.operators]] in the service's config)",
                    self.token_env
                )
            })
    }

    /// POSTs `body` to `/api/v1/<path>`; a problem+json answer becomes its detail.
    async fn post(&self, path: &str, body: &Value) -> Result<Value, String> {
        let token = self.token()?;
        let url = self
            .url
            .join(&format!("api/v1/{path}"))
            .map_err(|e| format!("--url: {e}"))?;
        let response = reqwest::Client::new()
            .post(url.clone())
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .map_err(|e| format!("{url}: {e}"))?;
        let status = response.status();
        let answer: Value = response.json().await.unwrap_or(Value::Null);
        if status.is_success() {
            Ok(answer)
        } else {
            Err(format!(
                "{url}: HTTP {}: {}",
                status.as_u16(),
                answer
                    .get("detail")
                    .and_then(Value::as_str)
                    .unwrap_or("no detail")
            ))
        }
    }
}

fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

pub(crate) async fn release(args: ReleaseArgs) -> CliResult {
    let answer = args
        .client
        .post(
            "actions/release",
            &json!({ "ids": args.ids, "reason": args.reason }),
        )
        .await?;
    let released = answer.get("released").and_then(Value::as_array);
    let refused = answer.get("refused").and_then(Value::as_array);
    for row in released.into_iter().flatten() {
        outln!(
            "released {}  {}  {}",
            text(row, "id"),
            text(row, "kind"),
            text(row, "person_email")
        );
    }
    let refused: Vec<&Value> = refused.into_iter().flatten().collect();
    for row in &refused {
        eprintln!("not released {}: {}", text(row, "id"), text(row, "detail"));
    }
    if refused.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{} of the actions were not released",
            refused.len()
        ))
    }
}

pub(crate) async fn resolve(args: ResolveArgs) -> CliResult {
    let row = args
        .client
        .post(
            &format!("actions/{}/resolve", args.id),
            &json!({ "reason": args.reason }),
        )
        .await?;
    outln!(
        "resolved {}  {}  by {}",
        text(&row, "id"),
        text(&row, "person_email"),
        text(&row, "resolved_by")
    );
    Ok(())
}

pub(crate) async fn sync(args: SyncArgs) -> CliResult {
    if args.local {
        return crate::cli::sync_here(&args.config, args.json).await;
    }
    let answer = args
        .client
        .post("sync", &json!({ "reason": args.reason }))
        .await?;
    outln!(
        "sync requested ({}): the organization is read within a poll interval",
        text(&answer, "requested")
    );
    Ok(())
}
