//! `keycard check-config`: validates a config without starting anything, and (with a
//! credential) checks that the workspaces the rules name exist.

use super::*;
pub(super) async fn check_config(check: CheckArgs) -> CliResult {
    let args = check.config;
    let config = load(&args)?;
    let rules = compile_rules(&config).map_err(|e| e.to_string())?;
    // What serve would refuse at start (e.g. plain http to a host that is not loopback),
    // check-config refuses too, even offline: building the client makes no request.
    crate::app::admin_client(&config, Arc::new(SystemClock)).map_err(|e| e.to_string())?;
    if !check.offline {
        check_workspaces(&config, &rules).await?;
    }
    outln!(
        "config OK{}",
        args.config
            .as_ref()
            .map(|p| format!(" ({})", p.display()))
            .unwrap_or_default()
    );
    outln!(
        "journal:   {}{}",
        crate::config::print::redact_url(&config.journal_url()),
        if config.journal_is_embedded() {
            " (embedded default)"
        } else {
            ""
        }
    );
    outln!(
        "admin API: {} ({}{})",
        config.raw.admin_api.base_url,
        config
            .admin_credential
            .as_ref()
            .map_or("no credential: dry run", |c| c.kind()),
        if config.raw.admin_api.dry_run {
            ", dry_run = true"
        } else {
            ""
        }
    );
    outln!("sources:");
    for s in config.sources.values() {
        outln!(
            "  {:<16} kind={:<12} secrets={} window={}  POST /webhooks/{}",
            s.name,
            s.kind.as_str(),
            s.secrets.len(),
            // Some senders put no timestamp under their signature.
            if s.kind.signs_timestamp() {
                format!("{}s", s.tolerance.as_secs())
            } else {
                "none".to_owned()
            },
            s.name
        );
    }
    outln!("rules:");
    for r in rules.rules() {
        outln!("  {:<16} when {}", r.name(), r.when());
    }
    match &config.raw.default {
        Some(d) => outln!(
            "default:   org_role={}",
            d.org_role.as_deref().unwrap_or("(none)")
        ),
        None => outln!("default:   none (people who match no rule get no access)"),
    }
    let managed: Vec<String> = rules.managed_workspaces().into_iter().collect();
    outln!(
        "managed workspaces: {}",
        if managed.is_empty() {
            "(none)".into()
        } else {
            managed.join(", ")
        }
    );
    if check.print {
        outln!("\neffective configuration:");
        out!(
            "{}",
            crate::config::print::render(&config).map_err(|e| e.to_string())?
        );
    }
    Ok(())
}

/// A rule naming a workspace the organization does not have would make every matching
/// person a manual action; say so now. Only with a credential, and unreachability is a
/// note, not a failure (the config itself is valid).
async fn check_workspaces(config: &Config, rules: &crate::rules::RuleSet) -> CliResult {
    let Ok(Some(client)) = crate::app::admin_client(config, Arc::new(SystemClock)) else {
        return Ok(());
    };
    let listed = tokio::time::timeout(
        std::time::Duration::from_secs(15),
        client.list_all_workspaces(crate::admin_api::ListWorkspaces::new()),
    )
    .await;
    let existing: Vec<String> = match listed {
        Ok(Ok(list)) => list.into_iter().map(|w| w.name).collect(),
        // It answered, and refused the credential: that is a config error, not an outage.
        Ok(Err(e)) if matches!(e.status(), Some(401 | 403)) => {
            return Err(format!(
                "admin_api: the Admin API refused the configured credential ({e}); check admin_api.admin_key_env / oauth_token_env (an Admin key starts sk-ant-admin01-)"
            ));
        }
        Ok(Err(e)) => {
            eprintln!("note: workspace names not checked, the Admin API did not answer: {e}");
            return Ok(());
        }
        Err(_) => {
            eprintln!("note: workspace names not checked, the Admin API did not answer in 15 s");
            return Ok(());
        }
    };
    let mut problems = Vec::new();
    let named = rules
        .rules()
        .iter()
        .map(|r| (format!("rule '{}'", r.name()), r.grant()))
        .chain(rules.default_grant().map(|g| ("[default]".to_owned(), g)));
    for (whose, grant) in named {
        for workspace in grant.workspaces.keys() {
            if !existing.contains(workspace) {
                problems.push(format!(
                    "{whose} names workspace '{workspace}', which the organization does not have"
                ));
            }
        }
    }
    if problems.is_empty() {
        return Ok(());
    }
    Err(format!(
        "{}\n  existing workspaces: {}\n  (fix the name, create the workspace, or pass --offline to skip this check)",
        problems.join("\n"),
        if existing.is_empty() {
            "(none)".to_owned()
        } else {
            existing.join(", ")
        }
    ))
}
