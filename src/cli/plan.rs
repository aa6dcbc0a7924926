//! `keycard plan` (one event, or everyone) and `keycard sync --local`: what `serve` would do,
//! computed through the same planning path, without writing to the organization.

use super::*;
pub(super) async fn plan(args: PlanArgs) -> CliResult {
    let config = load(&args.config)?;
    let path = match &args.event {
        Some(path) if !args.all => path.clone(),
        _ => return crate::adoption::cli::plan_all(&config, args).await,
    };
    let bytes = std::fs::read(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let event = crate::ingest::NativeEvent::parse(&bytes)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let now = SystemClock.now();
    let source = args
        .source
        .or_else(|| {
            config
                .raw
                .sources
                .iter()
                .find(|s| s.kind == crate::sources::SourceKind::Keycard)
                .map(|s| s.name.clone())
        })
        .unwrap_or_else(|| "plan".into());
    let lifecycle = event.into_lifecycle(
        crate::ingest::DedupeKey {
            source,
            delivery_id: "plan".into(),
        },
        now,
        &bytes,
    );
    // What the journal already knows of the person (email, attributes, linked account):
    // an update or a departure usually names only the id.
    let url = args.journal.unwrap_or_else(|| config.journal_url());
    let journal = match Journal::connect_read_only(&url).await {
        Ok(journal) if journal.ready().await.unwrap_or(false) => {
            // The embedded journal is opened writable when no `serve` holds it, so the
            // organization mirror can be read into it if it never was; a `serve` that holds
            // it keeps the mirror current itself.
            if url.starts_with("sqlite:") {
                drop(journal);
                match Journal::connect(&url, 1).await {
                    Ok(writable) => writable,
                    Err(_) => Journal::connect_read_only(&url)
                        .await
                        .map_err(|e| e.to_string())?,
                }
            } else {
                journal
            }
        }
        Ok(_) => {
            eprintln!("note: the journal is not set up yet; planning from the event alone");
            Journal::empty().await.map_err(|e| e.to_string())?
        }
        Err(e) => {
            eprintln!("note: journal not readable ({e}); planning from the event alone");
            Journal::empty().await.map_err(|e| e.to_string())?
        }
    };
    let known = async {
        journal
            .conn()
            .await?
            .person_by_source(lifecycle.source(), lifecycle.person.id.as_str())
            .await
    }
    .await
    .map_err(|e| format!("reading the journal: {e}"))?;
    let preview = crate::app::preview(
        &config,
        &journal,
        &lifecycle,
        known.as_ref(),
        Arc::new(SystemClock),
    )
    .await
    .map_err(|e| e.to_string())?;
    outln!("{preview}");
    Ok(())
}

/// `keycard sync --local`: reads the organization from this process into the configured
/// journal (GET requests only) and compares everyone with it; whoever drifted is queued for
/// `serve`.
pub(crate) async fn sync_here(config: &ConfigArg, json: bool) -> CliResult {
    let config = load(config)?;
    let journal = connect(&config).await.map_err(|e| {
        format!("{e} (if a keycard serve holds this journal, ask it instead: POST /api/v1/sync)")
    })?;
    if !journal.ready().await.map_err(|e| e.to_string())? {
        return Err("the journal is not set up yet: run `keycard migrate` first".into());
    }
    let worker = crate::app::worker_for(&config, &journal, Arc::new(SystemClock), "keycard-sync")
        .map_err(|e| e.to_string())?;
    let outcome = worker.sync().await.map_err(|e| e.to_string());
    journal.close().await;
    match outcome? {
        None => outln!(
            "another process is reading the organization now; its read will be compared with everyone when it ends"
        ),
        Some(done) if json => outln!(
            "{}",
            serde_json::to_string_pretty(&done).map_err(|e| e.to_string())?
        ),
        Some(done) => {
            let r = &done.read;
            let took = match (r.started_at, r.finished_at) {
                (Some(a), Some(b)) => {
                    format!(" in {:.1} s", (b - a).num_milliseconds() as f64 / 1000.0)
                }
                _ => String::new(),
            };
            outln!(
                "read the organization: {} objects in {} pages{took} ({} members, {} invites, {} workspaces, {} workspace memberships, {} API keys)",
                r.objects,
                r.pages,
                r.users,
                r.invites,
                r.workspaces,
                r.workspace_members,
                r.api_keys
            );
            let d = &done.drift;
            outln!(
                "compared {} people with it: {} queued to converge, {} accounts linked",
                d.people,
                d.queued,
                d.linked
            );
        }
    }
    Ok(())
}
