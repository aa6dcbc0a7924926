//! The one loader: everything a plan needs, read in one place, so `keycard serve`,
//! `keycard plan` and the drift check plan from the same facts.
//!
//! Facts come from the journal alone — people, their actions, the removal cap — and from
//! the organization mirror (`crate::mirror`), never from per-person Admin API reads. They
//! are loaded for one person ([`Facts::for_person`]) or for everyone at once
//! ([`Facts::for_everyone`]); [`inputs`] then derives one person's [`Inputs`] from them
//! without I/O, the same way in both cases.
//!
//! The decisions made from these facts — which action becomes a manual note, which the
//! removal cap would hold, which account is linked — are the pure planner's
//! (`plan_person`), never the loader's or the worker's.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Desired, Observed, desired_access};
use crate::admin_api::{
    ApiKey, ApiKeyStatus, Invite, InviteStatus, User, Workspace, WorkspaceMember,
};
use crate::journal::{
    ActionRow, CapState, JournalError, MirrorRow, ObjectKind, PersonRow, PersonStatus, Tx,
    fold_email,
};
use crate::mirror::decode;
use crate::rules::RuleSet;

/// Everything one plan is made from.
#[derive(Debug, Clone)]
pub struct Inputs {
    /// The person, without the addresses someone else (not departed) holds now: their
    /// accounts and invites are that person's, never this one's to link or withdraw. For an
    /// earlier address that means leaving it out of the history; for a leaver whose current
    /// address was given to someone new, not looking anything up by it.
    pub person: PersonRow,
    /// Another active person who holds this person's current address too (the first of
    /// them by creation), when there is one.
    pub address_holder: Option<PersonRow>,
    pub desired: Desired,
    pub observed: Observed,
    /// Another person already linked to the account found for this one, if any.
    pub account_owner: Option<PersonRow>,
    /// Every workspace the rules name, resolved to its id (`None`: no such workspace).
    pub managed: BTreeMap<String, Option<String>>,
    pub cap: CapState,
    /// The person's actions that may still run (holds and releases among them).
    pub unfinished: Vec<ActionRow>,
    /// For a workspace stand-in (`[hygiene] archive_unused_workspaces`): the workspace as
    /// the mirror has it now.
    pub workspace: Option<WorkspaceUse>,
    /// Parts of the Admin API this organization does not offer (the last full read found
    /// them missing, admin-api.md §9): feature (`users`, `invites`, ...) -> why.
    pub unsupported: BTreeMap<String, String>,
}

/// Whether a workspace is in use, as the last full read found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkspaceUse {
    pub id: String,
    /// `None`: the mirror does not have it (archived elsewhere, or never read).
    pub name: Option<String>,
    pub archived: bool,
    pub members: usize,
    pub active_keys: usize,
    /// A rule grants access to it: meant to be used, whatever it holds today.
    pub named_by_rules: bool,
}

/// The journal's and the mirror's facts for some people.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    now: Option<DateTime<Utc>>,
    /// Without an Admin API credential nothing is known of the organization: every person
    /// is planned as having nothing yet, every managed workspace as existing.
    organization_known: bool,
    /// People who are not departed, by address key (who holds an address).
    holders: HashMap<String, Vec<PersonRow>>,
    /// Who is linked to which account (by Admin API user id).
    linked: HashMap<String, Vec<PersonRow>>,
    users: HashMap<String, User>,
    users_by_email: HashMap<String, Vec<User>>,
    invites_by_email: HashMap<String, Vec<Invite>>,
    memberships: HashMap<String, Vec<WorkspaceMember>>,
    keys: HashMap<String, Vec<ApiKey>>,
    /// Workspace name -> id, for every workspace the organization has.
    workspaces: BTreeMap<String, String>,
    cap: u32,
    /// Where the removal cap stands for each person loaded.
    cap_states: HashMap<Uuid, CapState>,
    unfinished: HashMap<Uuid, Vec<ActionRow>>,
    /// `org_limits`: what this organization's platform or plan does not offer.
    unsupported: BTreeMap<String, String>,
    /// Every workspace read, archived ones included, by id.
    workspace_rows: HashMap<String, Workspace>,
    /// Per workspace id: the user ids of its members and the ids of its active keys.
    workspace_use: HashMap<String, (HashSet<String>, HashSet<String>)>,
}

fn all_addresses(person: &PersonRow) -> Vec<String> {
    let mut out: Vec<String> = person
        .email_history
        .0
        .iter()
        .map(|c| fold_email(&c.email))
        .chain(person.email.as_deref().map(fold_email))
        .collect();
    out.sort();
    out.dedup();
    out
}

impl Facts {
    /// The facts of one person's plan, read with targeted queries.
    pub async fn for_person(
        tx: &mut Tx,
        person: &PersonRow,
        organization_known: bool,
        cap: u32,
        now: DateTime<Utc>,
    ) -> Result<Self, JournalError> {
        let mut facts = Self {
            now: Some(now),
            organization_known,
            cap,
            ..Self::default()
        };
        let addresses = all_addresses(person);
        facts.add_holders(tx.people_with_addresses(&addresses).await?);
        if organization_known {
            let mut rows = tx.mirror_by_email(ObjectKind::User, &addresses).await?;
            if let Some(id) = person.anthropic_user_id.as_deref() {
                rows.extend(tx.mirror_get(ObjectKind::User, id).await?);
            }
            facts.add_mirror(&rows);
            facts.add_mirror(&tx.mirror_by_email(ObjectKind::Invite, &addresses).await?);
            let user_ids: Vec<String> = facts.users.keys().cloned().collect();
            for id in &user_ids {
                facts.add_mirror(&tx.mirror_of_user(ObjectKind::WorkspaceMember, id).await?);
                facts.add_mirror(&tx.mirror_of_user(ObjectKind::ApiKey, id).await?);
            }
            facts.add_linked(tx.people_linked_to(&user_ids).await?);
            facts.add_mirror(&tx.mirror_all(ObjectKind::Workspace, None, 10_000).await?);
            if person.source == super::WORKSPACE_STAND_IN {
                // Whether the workspace is used: every membership and key, not just this
                // "person's".
                facts.add_all(tx, ObjectKind::WorkspaceMember).await?;
                facts.add_all(tx, ObjectKind::ApiKey).await?;
            }
            facts.add_limits(tx).await?;
        }
        facts
            .cap_states
            .insert(person.id, tx.cap_state(person.id, cap, now).await?);
        facts
            .unfinished
            .insert(person.id, tx.unfinished_actions(person.id).await?);
        Ok(facts)
    }

    /// Every mirror entry of `kind`, page by page.
    async fn add_all(&mut self, tx: &mut Tx, kind: ObjectKind) -> Result<(), JournalError> {
        let mut after: Option<String> = None;
        loop {
            let rows = tx.mirror_all(kind, after.as_deref(), 5_000).await?;
            let Some(last) = rows.last().map(|r| r.id.clone()) else {
                return Ok(());
            };
            self.add_mirror(&rows);
            after = Some(last);
        }
    }

    async fn add_limits(&mut self, tx: &mut Tx) -> Result<(), JournalError> {
        self.unsupported = tx
            .org_limits()
            .await?
            .into_iter()
            .map(|l| (l.feature, l.reason))
            .collect();
        Ok(())
    }

    /// The facts of everyone's plans, read with a few whole-table queries (the drift check,
    /// `keycard plan --all`). Returns them with everyone they are about.
    pub async fn for_everyone(
        tx: &mut Tx,
        organization_known: bool,
        cap: u32,
        now: DateTime<Utc>,
    ) -> Result<(Self, Vec<PersonRow>), JournalError> {
        let mut facts = Self {
            now: Some(now),
            organization_known,
            cap,
            ..Self::default()
        };
        let people = tx.all_people().await?;
        facts.add_holders(people.clone());
        facts.add_linked(
            people
                .iter()
                .filter(|p| p.anthropic_user_id.is_some())
                .cloned()
                .collect(),
        );
        if organization_known {
            for kind in [
                ObjectKind::Workspace,
                ObjectKind::User,
                ObjectKind::Invite,
                ObjectKind::WorkspaceMember,
                ObjectKind::ApiKey,
            ] {
                facts.add_all(tx, kind).await?;
            }
            facts.add_limits(tx).await?;
        }
        let losing = tx
            .people_losing_access_since(now - chrono::Duration::hours(1))
            .await?;
        let released = tx
            .people_released_since(now - chrono::Duration::hours(1))
            .await?;
        for p in &people {
            let others = losing.iter().filter(|id| **id != p.id).count();
            facts.cap_states.insert(
                p.id,
                CapState {
                    cap,
                    others_this_hour: i64::try_from(others).unwrap_or(i64::MAX),
                    already_admitted: losing.contains(&p.id) || released.contains(&p.id),
                },
            );
        }
        for action in tx.all_unfinished_actions().await? {
            facts
                .unfinished
                .entry(action.person_id)
                .or_default()
                .push(action);
        }
        Ok((facts, people))
    }

    fn add_holders(&mut self, people: Vec<PersonRow>) {
        for p in people {
            if let Some(key) = p.email.as_deref().map(fold_email) {
                self.holders.entry(key).or_default().push(p);
            }
        }
    }

    fn add_linked(&mut self, people: Vec<PersonRow>) {
        for p in people {
            if let Some(id) = p.anthropic_user_id.clone() {
                self.linked.entry(id).or_default().push(p);
            }
        }
    }

    fn add_mirror(&mut self, rows: &[MirrorRow]) {
        for row in rows {
            match row.kind.as_str() {
                "user" => {
                    if let Some(u) = decode::<User>(row)
                        && !self.users.contains_key(&u.id)
                    {
                        self.users_by_email
                            .entry(fold_email(&u.email))
                            .or_default()
                            .push(u.clone());
                        self.users.insert(u.id.clone(), u);
                    }
                }
                "invite" => {
                    if let Some(i) = decode::<Invite>(row) {
                        let list = self
                            .invites_by_email
                            .entry(fold_email(&i.email))
                            .or_default();
                        if !list.iter().any(|x| x.id == i.id) {
                            list.push(i);
                        }
                    }
                }
                "workspace_member" => {
                    if let Some(m) = decode::<WorkspaceMember>(row) {
                        self.workspace_use
                            .entry(m.workspace_id.clone())
                            .or_default()
                            .0
                            .insert(m.user_id.clone());
                        let list = self.memberships.entry(m.user_id.clone()).or_default();
                        if !list.iter().any(|x| x.workspace_id == m.workspace_id) {
                            list.push(m);
                        }
                    }
                }
                "api_key" => {
                    let key = decode::<ApiKey>(row);
                    if let Some(k) = &key
                        && k.status == ApiKeyStatus::Active
                        && let Some(ws) = k.workspace()
                    {
                        self.workspace_use
                            .entry(ws.to_owned())
                            .or_default()
                            .1
                            .insert(k.id.clone());
                    }
                    if let (Some(k), Some(user)) = (key, row.user_id.clone()) {
                        let list = self.keys.entry(user).or_default();
                        if !list.iter().any(|x| x.id == k.id) {
                            list.push(k);
                        }
                    }
                }
                "workspace" => {
                    if let Some(w) = decode::<Workspace>(row) {
                        if !w.is_archived() {
                            self.workspaces.insert(w.name.clone(), w.id.clone());
                        }
                        self.workspace_rows.insert(w.id.clone(), w);
                    }
                }
                _ => {}
            }
        }
    }

    /// Workspace name -> id, for every workspace the organization has.
    pub fn workspace_ids(&self) -> &BTreeMap<String, String> {
        &self.workspaces
    }

    fn cap_for(&self, person: Uuid) -> CapState {
        self.cap_states.get(&person).copied().unwrap_or(CapState {
            cap: self.cap,
            others_this_hour: 0,
            already_admitted: false,
        })
    }

    fn pending_invite(&self, address: &str) -> Option<Invite> {
        let now = self.now?;
        self.invites_by_email
            .get(&fold_email(address))?
            .iter()
            .filter(|i| i.status == InviteStatus::Pending && i.expires_at > now)
            .max_by_key(|i| i.invited_at)
            .cloned()
    }

    fn observe(
        &self,
        person: &PersonRow,
        managed: &BTreeMap<String, Option<String>>,
        with_keys: bool,
    ) -> Observed {
        let mut observed = Observed::default();
        if !self.organization_known {
            return observed;
        }
        let departed = person.status == PersonStatus::Departed;
        // The link survives an email change at the source; the API cannot rename members.
        if let Some(id) = person.anthropic_user_id.as_deref() {
            observed.member = self.users.get(id).cloned();
        }
        // A leaver whose linked account is already gone is done: an account that now has
        // their address belongs to whoever holds it now, not to this record.
        let by_email = !(departed && person.anthropic_user_id.is_some());
        let previous = person.previous_emails();
        if observed.member.is_none() && by_email {
            // The current address first, then earlier ones: an invite accepted under an old
            // address before Keycard noticed is still this person's account.
            observed.member = person
                .email
                .iter()
                .chain(previous.iter())
                .find_map(|a| self.users_by_email.get(&fold_email(a))?.first().cloned());
        }
        observed.stale_invites = previous
            .iter()
            .filter_map(|a| self.pending_invite(a))
            .collect();
        observed.pending_invite = person.email.as_deref().and_then(|a| self.pending_invite(a));
        if let Some(member) = &observed.member {
            for m in self.memberships.get(&member.id).into_iter().flatten() {
                if let Some((name, _)) = managed
                    .iter()
                    .find(|(_, id)| id.as_deref() == Some(m.workspace_id.as_str()))
                {
                    observed.memberships.insert(
                        m.workspace_id.clone(),
                        (name.clone(), m.workspace_role.clone()),
                    );
                }
            }
            if with_keys {
                observed.api_keys = self
                    .keys
                    .get(&member.id)
                    .into_iter()
                    .flatten()
                    .filter(|k| k.status == ApiKeyStatus::Active)
                    .cloned()
                    .collect();
            }
        }
        observed
    }
}

/// One person's plan inputs, derived from loaded facts without I/O.
pub fn inputs(person: &PersonRow, facts: &Facts, rules: &RuleSet) -> Inputs {
    // Addresses another person (not departed) holds now.
    let taken = |key: &str| {
        facts.holders.get(key).is_some_and(|people| {
            people
                .iter()
                .any(|p| p.id != person.id && p.status != PersonStatus::Departed)
        })
    };
    let mut own = person.clone();
    let current_key = own.email.as_deref().map(fold_email);
    let current_taken = current_key.as_deref().is_some_and(taken);
    let address_holder = match current_key.as_deref() {
        Some(key) if current_taken => facts
            .holders
            .get(key)
            .into_iter()
            .flatten()
            .filter(|p| {
                p.id != person.id && !matches!(p.status, PersonStatus::Departed | PersonStatus::New)
            })
            .min_by_key(|p| (p.created_at, p.id))
            .cloned(),
        _ => None,
    };
    if own.status == PersonStatus::Departed && current_taken {
        own.email = None;
    }
    own.email_history
        .0
        .retain(|c| !taken(&fold_email(&c.email)));

    let desired = desired_access(rules, &own);
    let managed: BTreeMap<String, Option<String>> = rules
        .managed_workspaces()
        .into_iter()
        .map(|name| {
            let id = if facts.organization_known {
                facts.workspaces.get(&name).cloned()
            } else {
                Some(format!("<{name}>"))
            };
            (name, id)
        })
        .collect();
    let leaving = own.status == PersonStatus::Departed || desired.org_role.is_none();
    let observed = facts.observe(&own, &managed, leaving);
    let account_owner = observed
        .member
        .as_ref()
        .filter(|m| own.anthropic_user_id.as_deref() != Some(m.id.as_str()))
        .and_then(|m| facts.linked.get(&m.id))
        .and_then(|people| {
            people
                .iter()
                .filter(|p| p.id != own.id)
                .min_by_key(|p| p.created_at)
                .cloned()
        });
    Inputs {
        cap: facts.cap_for(own.id),
        unfinished: facts.unfinished.get(&own.id).cloned().unwrap_or_default(),
        person: own,
        address_holder,
        desired,
        observed,
        account_owner,
        workspace: (person.source == super::WORKSPACE_STAND_IN)
            .then(|| facts.workspace_use(&person.source_person_id, &managed)),
        managed,
        unsupported: facts.unsupported.clone(),
    }
}

impl Facts {
    fn workspace_use(&self, id: &str, managed: &BTreeMap<String, Option<String>>) -> WorkspaceUse {
        let row = self.workspace_rows.get(id);
        let (members, keys) = self
            .workspace_use
            .get(id)
            .map(|(m, k)| (m.len(), k.len()))
            .unwrap_or_default();
        WorkspaceUse {
            id: id.to_owned(),
            name: row.map(|w| w.name.clone()),
            archived: row.is_some_and(Workspace::is_archived),
            members,
            active_keys: keys,
            named_by_rules: managed.values().flatten().any(|m| m == id)
                || row.is_some_and(|w| managed.contains_key(&w.name)),
        }
    }
}

#[cfg(test)]
mod tests;
