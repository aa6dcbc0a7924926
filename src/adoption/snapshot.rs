//! The organization as the mirror holds it, and everyone the journal knows, loaded whole
//! for the reports.

use std::collections::{HashMap, HashSet};

use serde::de::DeserializeOwned;

use super::AdoptionError;
use crate::admin_api::{ApiKey, Invite, User, Workspace, WorkspaceMember};
use crate::journal::{Journal, ObjectKind, PersonRow, Tx, fold_email};
use crate::mirror::decode;

/// People of this source stand for members no HR record names, created by the `remove`
/// policy so they are offboarded like any leaver.
pub const UNMANAGED_SOURCE: &str = "unmanaged";

#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub users: Vec<User>,
    pub invites: Vec<Invite>,
    pub workspaces: Vec<Workspace>,
    pub members: Vec<WorkspaceMember>,
    pub keys: Vec<ApiKey>,
    pub people: Vec<PersonRow>,
}

async fn all<T: DeserializeOwned>(tx: &mut Tx, kind: ObjectKind) -> Result<Vec<T>, AdoptionError> {
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let rows = tx.mirror_all(kind, after.as_deref(), 5_000).await?;
        let Some(last) = rows.last().map(|r| r.id.clone()) else {
            return Ok(out);
        };
        out.extend(rows.iter().filter_map(decode::<T>));
        after = Some(last);
    }
}

/// How much a workspace is used, as the mirror has it.
#[derive(Debug, Clone)]
pub struct WorkspaceUsage<'a> {
    pub workspace: &'a Workspace,
    pub members: usize,
    pub active_keys: usize,
}

impl WorkspaceUsage<'_> {
    /// No members and no active keys.
    pub fn unused(&self) -> bool {
        self.members == 0 && self.active_keys == 0
    }
}

impl Snapshot {
    /// Every workspace not archived, with its members and active keys counted.
    pub fn workspace_usage(&self) -> Vec<WorkspaceUsage<'_>> {
        let mut members: HashMap<&str, usize> = HashMap::new();
        for m in &self.members {
            *members.entry(m.workspace_id.as_str()).or_default() += 1;
        }
        let mut keys: HashMap<&str, usize> = HashMap::new();
        for k in self
            .keys
            .iter()
            .filter(|k| k.status == crate::admin_api::ApiKeyStatus::Active)
        {
            if let Some(ws) = k.workspace() {
                *keys.entry(ws).or_default() += 1;
            }
        }
        self.workspaces
            .iter()
            .filter(|w| !w.is_archived())
            .map(|w| WorkspaceUsage {
                workspace: w,
                members: members.get(w.id.as_str()).copied().unwrap_or(0),
                active_keys: keys.get(w.id.as_str()).copied().unwrap_or(0),
            })
            .collect()
    }
}

/// Who names which account and address (`Snapshot::owners`).
pub type Owners<'a> = (
    HashMap<&'a str, &'a PersonRow>,
    HashMap<String, &'a PersonRow>,
);

/// The person a member is, by link, else by address.
pub fn person_of<'a>(owners: &Owners<'a>, user: &User) -> Option<&'a PersonRow> {
    owners
        .0
        .get(user.id.as_str())
        .copied()
        .or_else(|| owners.1.get(&fold_email(&user.email)).copied())
}

impl Snapshot {
    pub async fn load(journal: &Journal) -> Result<Self, AdoptionError> {
        let mut tx = journal.conn().await?;
        Ok(Self {
            users: all(&mut tx, ObjectKind::User).await?,
            invites: all(&mut tx, ObjectKind::Invite).await?,
            workspaces: all(&mut tx, ObjectKind::Workspace).await?,
            members: all(&mut tx, ObjectKind::WorkspaceMember).await?,
            keys: all(&mut tx, ObjectKind::ApiKey).await?,
            people: tx.all_people().await?,
        })
    }

    /// Who names which account and address: user id -> person, address key -> person.
    /// People standing in for unmanaged members are left out (they name nobody).
    pub fn owners(&self) -> Owners<'_> {
        let mut by_user = HashMap::new();
        let mut by_address = HashMap::new();
        for p in self.people.iter().filter(|p| p.source != UNMANAGED_SOURCE) {
            if let Some(id) = p.anthropic_user_id.as_deref() {
                by_user.insert(id, p);
            }
            let addresses = p
                .email
                .iter()
                .cloned()
                .chain(p.email_history.0.iter().map(|c| c.email.clone()));
            for a in addresses {
                by_address.entry(fold_email(&a)).or_insert(p);
            }
        }
        (by_user, by_address)
    }

    pub fn workspace_names(&self) -> HashMap<&str, &str> {
        self.workspaces
            .iter()
            .map(|w| (w.id.as_str(), w.name.as_str()))
            .collect()
    }

    /// Ids of people standing in for unmanaged members, by the member or invite they stand for.
    pub fn stand_ins(&self) -> HashSet<&str> {
        self.people
            .iter()
            .filter(|p| p.source == UNMANAGED_SOURCE)
            .map(|p| p.source_person_id.as_str())
            .collect()
    }
}
