//! The one loader: everything a plan needs, read in one place, so `keycard serve` and
//! `keycard plan` plan from the same facts.
//!
//! Reads only (journal queries and Admin API GETs). The decisions made from these facts —
//! which action becomes a manual note, which the removal cap would hold, which account is
//! linked — are the pure planner's (`plan_person`), never the loader's or the worker's.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::{Desired, Observed, Policy, desired_access, observe};
use crate::admin_api::{AdminApiError, AdminClient};
use crate::journal::{
    ActionRow, CapState, Journal, JournalError, PersonRow, PersonStatus, fold_email,
};
use crate::rules::RuleSet;

/// What reading the facts of a plan can fail on.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error("reading the organization failed: {0}")]
    AdminApi(#[from] AdminApiError),
}

/// Where a plan's facts come from.
#[derive(Debug, Clone, Copy)]
pub struct Environment<'a> {
    pub journal: &'a Journal,
    /// `None`: no credential (dry run); the person is assumed to have nothing yet.
    pub client: Option<&'a AdminClient>,
    /// Workspace name -> id, as the organization has them now.
    pub workspace_ids: &'a BTreeMap<String, String>,
    pub rules: &'a RuleSet,
    pub policy: &'a Policy,
    pub now: DateTime<Utc>,
}

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
}

/// Loads the facts of one person's plan.
pub async fn load(env: &Environment<'_>, person: PersonRow) -> Result<Inputs, LoadError> {
    let (person, address_holder) = {
        let mut conn = env.journal.conn().await?;
        let history: Vec<String> = person
            .email_history
            .0
            .iter()
            .map(|c| c.email.clone())
            .chain(person.email.clone())
            .collect();
        let taken = conn.emails_held_by_others(person.id, &history).await?;
        let mut own = person;
        let current_taken = own
            .email
            .as_deref()
            .is_some_and(|e| taken.contains(&fold_email(e)));
        let holder = match own.email.as_deref() {
            Some(email) if current_taken => conn.address_holder(email, own.id).await?,
            _ => None,
        };
        if own.status == PersonStatus::Departed && current_taken {
            own.email = None;
        }
        own.email_history
            .0
            .retain(|c| !taken.contains(&fold_email(&c.email)));
        (own, holder)
    };

    let desired = desired_access(env.rules, &person);
    let managed: BTreeMap<String, Option<String>> = env
        .rules
        .managed_workspaces()
        .into_iter()
        .map(|name| {
            let id = match env.client {
                Some(_) => env.workspace_ids.get(&name).cloned(),
                None => Some(format!("<{name}>")),
            };
            (name, id)
        })
        .collect();
    let observed = match env.client {
        Some(client) => {
            let departed = person.status == PersonStatus::Departed;
            let leaving = departed || desired.org_role.is_none();
            // A leaver whose linked account is already gone is done: an account that now
            // has their address belongs to whoever holds it now, not to this record.
            let by_email = !(departed && person.anthropic_user_id.is_some());
            observe(
                client,
                person.anthropic_user_id.as_deref(),
                person.email.as_deref(),
                &person.previous_emails(),
                by_email,
                &managed,
                leaving,
            )
            .await?
        }
        None => Observed::default(),
    };

    let mut conn = env.journal.conn().await?;
    let account_owner = match observed.member.as_ref() {
        Some(m) if person.anthropic_user_id.as_deref() != Some(m.id.as_str()) => {
            conn.linked_elsewhere(&m.id, person.id).await?
        }
        _ => None,
    };
    let cap = conn
        .cap_state(person.id, env.policy.max_removals_per_hour, env.now)
        .await?;
    let unfinished = conn.unfinished_actions(person.id).await?;
    Ok(Inputs {
        person,
        address_holder,
        desired,
        observed,
        account_owner,
        managed,
        cap,
        unfinished,
    })
}
