//! Members and invites no person record names, and the `[unmanaged] policy`.
//!
//! Under `remove`, each one (admins, owners and protected addresses never) gets a stand-in
//! person of source `unmanaged` who has departed: the one planner then offboards them like
//! any leaver — pending invite withdrawn, keys deactivated, managed memberships removed,
//! member removed — every removal through the removal cap, every step journaled.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;

use super::AdoptionError;
use super::snapshot::{Snapshot, UNMANAGED_SOURCE, person_of};
use super::stand_in::{self, Departure};
use crate::journal::{Journal, fold_email};
use crate::planner::Policy;

/// A member or pending invite that no person names.
#[derive(Debug, Clone, Serialize)]
pub struct Unmanaged {
    /// `member` or `invite`.
    pub kind: &'static str,
    pub id: String,
    pub email: String,
    pub role: String,
    /// When they joined, or were invited.
    pub since: DateTime<Utc>,
    /// Why automation never removes it, when it does not.
    pub never_removed: Option<String>,
    /// Whether the `remove` policy has taken it on (a stand-in person exists).
    pub removal_queued: bool,
}

/// Everything unmanaged in the mirror, members first.
pub fn find(snapshot: &Snapshot, policy: &Policy, now: DateTime<Utc>) -> Vec<Unmanaged> {
    let owners = snapshot.owners();
    let stand_ins = snapshot.stand_ins();
    let protected = |email: &str| policy.protected_emails.contains(&fold_email(email));
    let mut out: Vec<Unmanaged> = snapshot
        .users
        .iter()
        .filter(|u| person_of(&owners, u).is_none())
        .map(|u| Unmanaged {
            kind: "member",
            id: u.id.clone(),
            email: u.email.clone(),
            role: u.role.as_str().to_owned(),
            since: u.added_at,
            never_removed: if u.role.is_administrative() {
                Some(format!("holds the organization role {}", u.role.as_str()))
            } else if protected(&u.email) {
                Some("listed in safety.protected_emails".into())
            } else {
                None
            },
            removal_queued: stand_ins.contains(u.id.as_str()),
        })
        .collect();
    out.extend(
        snapshot
            .invites
            .iter()
            .filter(|i| {
                i.status == crate::admin_api::InviteStatus::Pending
                    && i.expires_at > now
                    && !owners.1.contains_key(&fold_email(&i.email))
            })
            .map(|i| Unmanaged {
                kind: "invite",
                id: i.id.clone(),
                email: i.email.clone(),
                role: i.role.as_str().to_owned(),
                since: i.invited_at,
                never_removed: protected(&i.email)
                    .then(|| "listed in safety.protected_emails".to_owned()),
                removal_queued: stand_ins.contains(i.id.as_str()),
            }),
    );
    out
}

/// The `remove` policy: a departed stand-in person for every unmanaged member and invite
/// that may be removed and has none yet, committed in one transaction with their jobs.
/// Returns how many were taken on.
pub async fn queue_removals(
    journal: &Journal,
    policy: &Policy,
    now: DateTime<Utc>,
) -> Result<usize, AdoptionError> {
    let snapshot = Snapshot::load(journal).await?;
    let departures = find(&snapshot, policy, now)
        .into_iter()
        .filter(|u| u.never_removed.is_none() && !u.removal_queued)
        .map(|u| Departure {
            delivery_id: format!("unmanaged-{}", u.id),
            body: json!({
                "type": "person.departed",
                "occurred_at": now.to_rfc3339(),
                "person": { "id": u.id, "email": u.email },
                "reason": format!("{} no person record names ([unmanaged] policy = \"remove\")", u.kind),
            }),
        })
        .collect();
    let count = stand_in::record(journal, UNMANAGED_SOURCE, departures, now).await?;
    if count > 0 {
        tracing::warn!(
            count,
            "members and invites no person names are being removed ([unmanaged] policy = \"remove\")"
        );
    }
    Ok(count)
}

/// After each full read of the organization (`Worker::sweep`): under `remove`, takes on
/// what no person names. A failure is logged and tried again after the next read.
pub async fn apply_policy(worker: &crate::executor::Worker) {
    let settings = worker.settings();
    if settings.unmanaged != super::UnmanagedPolicy::Remove {
        return;
    }
    if let Err(e) = queue_removals(worker.journal(), &settings.policy, worker.now()).await {
        tracing::warn!(error = %e, "could not take on unmanaged members; will retry after the next read");
    }
}
