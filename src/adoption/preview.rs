//! `keycard plan --all`: what every person would gain and lose under a (candidate) config,
//! computed from the organization mirror through the planner `serve` uses
//! (`Worker::plan_everyone`, the drift check's own path), with counts per kind and per rule
//! and whether the removal cap would hold part of it. Writes nothing.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use super::AdoptionError;
use crate::executor::Worker;
use crate::journal::{Journal, PersonStatus};
use crate::planner::{Planned, Step};

/// One person's changes.
#[derive(Debug, Clone, Serialize)]
pub struct PersonChange {
    pub person_id: Uuid,
    pub source: String,
    pub source_person_id: String,
    pub email: Option<String>,
    pub status: PersonStatus,
    /// Admin API calls and notes for a human, in the order a run would take them.
    pub steps: Vec<Planned>,
    /// Whether this person loses access (a removal, a membership or a key taken away).
    pub loses_access: bool,
}

/// Where the removal cap stands for the whole change.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct CapOutlook {
    /// `safety.max_removals_per_hour`.
    pub cap: u32,
    /// People who already lost access in the last hour.
    pub used_this_hour: u64,
    /// People the change would take access from.
    pub people_losing_access: u64,
    /// Of those, how many the cap would hold for an operator.
    pub would_hold: u64,
}

/// The whole preview.
#[derive(Debug, Clone, Serialize)]
pub struct Preview {
    pub generated_at: DateTime<Utc>,
    /// When the organization mirror the preview read was refreshed (`None`: never, so the
    /// organization was taken to hold nothing).
    pub mirror_refreshed_at: Option<DateTime<Utc>>,
    pub people: usize,
    pub people_changed: usize,
    /// Steps by kind (`create_invite`, `update_user_role`, `add_workspace_member`, ...).
    pub counts: BTreeMap<String, u64>,
    /// Steps by the rule that causes them, then by kind.
    pub per_rule: BTreeMap<String, BTreeMap<String, u64>>,
    pub cap: CapOutlook,
    pub changes: Vec<PersonChange>,
}

impl Preview {
    /// Whether the change would remove more people than the cap lets through now.
    pub fn exceeds_cap(&self) -> bool {
        self.cap.would_hold > 0
    }
}

/// Everyone's plan under `worker`'s rules and policy, summarised.
pub async fn preview_all(
    worker: &Worker,
    journal: &Journal,
    now: DateTime<Utc>,
    mirror_refreshed_at: Option<DateTime<Utc>>,
) -> Result<Preview, AdoptionError> {
    let everyone = worker.plan_everyone().await?;
    let policy = &worker.settings().policy;
    let used = journal
        .conn()
        .await?
        .people_losing_access_since(now - chrono::Duration::hours(1))
        .await?;
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    let mut per_rule: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    let mut changes = Vec::new();
    let mut losing = 0_u64;
    for (person, plan) in everyone.plans {
        let steps: Vec<Planned> = plan
            .steps
            .into_iter()
            .filter(|p| !matches!(p.step, Step::WaitForAcceptance { .. }))
            .collect();
        if steps.is_empty() {
            continue;
        }
        // Someone already counted this hour does not count again (the cap counts people).
        let loses_access =
            steps.iter().any(|p| p.step.kind().is_destructive()) && !used.contains(&person.id);
        losing += u64::from(loses_access);
        for p in &steps {
            let kind = p.step.kind().as_str().to_owned();
            *counts.entry(kind.clone()).or_default() += 1;
            let rule = p.rule.clone().unwrap_or_else(|| "(no rule)".into());
            *per_rule.entry(rule).or_default().entry(kind).or_default() += 1;
        }
        changes.push(PersonChange {
            person_id: person.id,
            source: person.source,
            source_person_id: person.source_person_id,
            email: person.email,
            status: person.status,
            steps,
            loses_access,
        });
    }
    let used_this_hour = used.len() as u64;
    let room = u64::from(policy.max_removals_per_hour).saturating_sub(used_this_hour);
    Ok(Preview {
        generated_at: now,
        mirror_refreshed_at: if everyone.organization_known {
            mirror_refreshed_at
        } else {
            None
        },
        people: everyone.people,
        people_changed: changes.len(),
        counts,
        per_rule,
        cap: CapOutlook {
            cap: policy.max_removals_per_hour,
            used_this_hour,
            people_losing_access: losing,
            would_hold: losing.saturating_sub(room),
        },
        changes,
    })
}

/// The preview as text: the summary, then each person's changes.
pub fn table(p: &Preview) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "organization mirror: {}",
        p.mirror_refreshed_at.map_or_else(
            || "never read: planned as if the organization held nothing".to_owned(),
            |t| format!("read at {}", t.to_rfc3339())
        )
    );
    let _ = writeln!(
        out,
        "people: {}, with changes: {}",
        p.people, p.people_changed
    );
    for (kind, n) in &p.counts {
        let _ = writeln!(out, "  {kind:<26} {n}");
    }
    let _ = writeln!(out, "per rule:");
    for (rule, kinds) in &p.per_rule {
        let list: Vec<String> = kinds.iter().map(|(k, n)| format!("{k} {n}")).collect();
        let _ = writeln!(out, "  {rule:<26} {}", list.join(", "));
    }
    let _ = writeln!(
        out,
        "removal cap: {} people would lose access; {} already did in the last hour; cap {} per hour{}",
        p.cap.people_losing_access,
        p.cap.used_this_hour,
        p.cap.cap,
        if p.exceeds_cap() {
            format!(
                " -> the cap would HOLD {} of them for an operator",
                p.cap.would_hold
            )
        } else {
            " -> within the cap".to_owned()
        }
    );
    for c in &p.changes {
        let _ = writeln!(
            out,
            "\n{}/{} {} ({})",
            c.source,
            c.source_person_id,
            c.email.as_deref().unwrap_or("-"),
            c.status
        );
        for s in &c.steps {
            let _ = writeln!(
                out,
                "  {:<60} {}",
                s.step.describe(),
                s.rule.as_deref().unwrap_or("")
            );
        }
    }
    out
}
