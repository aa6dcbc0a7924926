//! The organization mirror: what the organization holds — members, invites, workspaces,
//! workspace members, API keys — as the Admin API last showed it, kept in the journal.
//!
//! The Admin API budget (100 requests a minute per organization) is what limits Keycard,
//! so the organization is read in pages, not person by person:
//! - a **full read** (`refresh`) pages through every list endpoint, 1,000 objects a page,
//!   on a schedule, on demand (`keycard sync`, `POST /api/v1/sync`) and when the mirror is
//!   empty; whatever a complete read did not see is gone;
//! - between full reads, a **cheap read** of the newest members (`poll_new_members`)
//!   notices accepted invites, one page when nothing is new;
//! - Keycard's own writes update the mirror from the API's answers (`Effect`);
//! - before a destructive write, an entry older than a bound is read again on its own
//!   (`verify`), so a change made by hand in the Console since the last read is seen.
//!
//! Plans are made from the mirror (`planner::inputs`), never from per-person reads.

mod refresh;

use serde::de::DeserializeOwned;

pub(crate) use refresh::{
    ACCEPTANCES, FULL, MirrorError, RefreshReport, keys_unchanged, poll_new_members,
    read_membership, refresh, refresh_person, verify,
};

use crate::admin_api::{ActorType, ApiKey, Invite, User, Workspace, WorkspaceMember};
use crate::journal::{JournalResult, Tx, fold_email};
pub(crate) use crate::journal::{MirrorObject, MirrorRow, ObjectKind};

fn data<T: serde::Serialize>(value: &T) -> serde_json::Value {
    serde_json::to_value(value).unwrap_or(serde_json::Value::Null)
}

pub(crate) fn user_object(u: &User) -> MirrorObject {
    MirrorObject {
        kind: ObjectKind::User,
        id: u.id.clone(),
        email_key: Some(fold_email(&u.email)),
        user_id: Some(u.id.clone()),
        workspace_id: None,
        status: Some(u.role.as_str().to_owned()),
        data: data(u),
    }
}

pub(crate) fn invite_object(i: &Invite) -> MirrorObject {
    MirrorObject {
        kind: ObjectKind::Invite,
        id: i.id.clone(),
        email_key: Some(fold_email(&i.email)),
        user_id: None,
        workspace_id: None,
        status: Some(i.status.as_str().to_owned()),
        data: data(i),
    }
}

pub(crate) fn workspace_object(w: &Workspace) -> MirrorObject {
    MirrorObject {
        kind: ObjectKind::Workspace,
        id: w.id.clone(),
        email_key: None,
        user_id: None,
        workspace_id: Some(w.id.clone()),
        status: Some(
            if w.is_archived() {
                "archived"
            } else {
                "active"
            }
            .to_owned(),
        ),
        data: data(w),
    }
}

/// The mirror id of a workspace membership.
pub(crate) fn member_id(workspace_id: &str, user_id: &str) -> String {
    format!("{workspace_id}/{user_id}")
}

pub(crate) fn member_object(m: &WorkspaceMember) -> MirrorObject {
    MirrorObject {
        kind: ObjectKind::WorkspaceMember,
        id: member_id(&m.workspace_id, &m.user_id),
        email_key: None,
        user_id: Some(m.user_id.clone()),
        workspace_id: Some(m.workspace_id.clone()),
        status: Some(m.workspace_role.as_str().to_owned()),
        data: data(m),
    }
}

pub(crate) fn key_object(k: &ApiKey) -> MirrorObject {
    let creator = k
        .created_by
        .as_ref()
        .filter(|c| c.kind == ActorType::User)
        .map(|c| c.id.clone());
    MirrorObject {
        kind: ObjectKind::ApiKey,
        id: k.id.clone(),
        email_key: None,
        user_id: creator,
        workspace_id: k.workspace().map(str::to_owned),
        status: Some(k.status.as_str().to_owned()),
        data: data(k),
    }
}

/// A stored object as the API type it was read as; `None` when it no longer decodes (a row
/// written by another version), which the next full read replaces.
pub(crate) fn decode<T: DeserializeOwned>(row: &MirrorRow) -> Option<T> {
    match serde_json::from_value(row.data.clone()) {
        Ok(v) => Some(v),
        Err(e) => {
            tracing::warn!(kind = %row.kind, id = %row.id, error = %e, "a mirror entry does not decode; it is ignored until the next full read");
            None
        }
    }
}

/// What a successful write changed in the organization, from the API's answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// The object as the API now returns it.
    Put(MirrorObject),
    /// The object no longer exists.
    Gone(ObjectKind, String),
    /// A member left the organization, with every workspace membership they had.
    UserGone(String),
}

/// Applies write answers to the mirror, as of `at` (when the write was sent).
pub(crate) async fn apply(
    tx: &mut Tx,
    effects: &[Effect],
    at: chrono::DateTime<chrono::Utc>,
) -> JournalResult<()> {
    for effect in effects {
        match effect {
            Effect::Put(object) => tx.mirror_put(std::slice::from_ref(object), at).await?,
            Effect::Gone(kind, id) => tx.mirror_gone(*kind, id, at).await?,
            Effect::UserGone(user_id) => {
                tx.mirror_gone(ObjectKind::User, user_id, at).await?;
                tx.mirror_gone_memberships_of(user_id, at).await?;
            }
        }
    }
    Ok(())
}
