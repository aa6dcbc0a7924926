//! `[hygiene] archive_unused_workspaces`: workspaces with no members and no active keys
//! that no rule names, older than `unused_workspace_days`, are archived.
//!
//! Archiving is irreversible, so it is never a side effect: each workspace gets a departed
//! stand-in person of source [`WORKSPACE_STAND_IN`] (source id = the workspace id), and the
//! one planner plans `archive_workspace` for it — re-checked against the mirror at every
//! run, held by the removal cap like any other destructive action, released by an operator,
//! journaled. Off by default: the `workspaces` report lists unused workspaces either way.

use std::collections::HashSet;

use chrono::{DateTime, Duration, Utc};
use serde_json::json;

use super::AdoptionError;
use super::snapshot::Snapshot;
use super::stand_in::{self, Departure};
use crate::journal::{Journal, PersonStatus};
use crate::planner::WORKSPACE_STAND_IN;

/// Workspace ids already taken on (a stand-in exists and has not been withdrawn).
pub fn queued(snapshot: &Snapshot) -> HashSet<&str> {
    snapshot
        .people
        .iter()
        .filter(|p| p.source == WORKSPACE_STAND_IN && p.status == PersonStatus::Departed)
        .map(|p| p.source_person_id.as_str())
        .collect()
}

/// Takes on every workspace the policy would archive and has none yet; returns how many.
pub async fn queue_archives(
    journal: &Journal,
    named_by_rules: &std::collections::BTreeSet<String>,
    after_days: u32,
    now: DateTime<Utc>,
) -> Result<usize, AdoptionError> {
    let snapshot = Snapshot::load(journal).await?;
    let taken = queued(&snapshot);
    // Any age the config can hold, even one before the calendar begins (then: none is old
    // enough).
    let Some(old_enough) = now.checked_sub_signed(Duration::days(i64::from(after_days))) else {
        return Ok(0);
    };
    let mut departures = Vec::new();
    for usage in snapshot.workspace_usage() {
        let w = usage.workspace;
        if !usage.unused()
            || named_by_rules.contains(&w.name)
            || w.created_at > old_enough
            || taken.contains(w.id.as_str())
        {
            continue;
        }
        departures.push(Departure {
            delivery_id: format!("archive-{}", w.id),
            body: json!({
                "type": "person.departed",
                "occurred_at": now.to_rfc3339(),
                "person": { "id": w.id, "name": w.name },
                "reason": format!(
                    "workspace {} has no members and no active API keys, no rule grants it, and it is older than {after_days} days ([hygiene] archive_unused_workspaces)",
                    w.name
                ),
            }),
        });
    }
    let count = stand_in::record(journal, WORKSPACE_STAND_IN, departures, now).await?;
    if count > 0 {
        tracing::warn!(
            count,
            "unused workspaces are being archived ([hygiene] archive_unused_workspaces)"
        );
    }
    Ok(count)
}

/// After each full read of the organization (`Worker::sweep`). A failure is logged and
/// tried again after the next read.
pub async fn apply_policy(worker: &crate::executor::Worker) {
    let Some(days) = worker.settings().archive_unused_after_days else {
        return;
    };
    let named = worker.managed_workspaces();
    if let Err(e) = queue_archives(worker.journal(), &named, days, worker.now()).await {
        tracing::warn!(error = %e, "could not take on unused workspaces; will retry after the next read");
    }
}
