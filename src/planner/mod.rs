//! The planner: desired access + observed Admin API state -> the actions that close the gap.
//!
//! Pure: no I/O, no clock. The same function serves events, invite follow-up, retries and
//! `keycard plan`, so whatever path led here, the same state gives the same plan
//! (docs/spec/keycard.md §1.2, §6).

mod desired;
mod inputs;
mod observe;
pub mod render;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

pub use desired::{desired_access, person_facts};
pub use inputs::{Facts, Inputs, WorkspaceUse, inputs};
pub use observe::Observed;

use crate::admin_api::{ApiKey, Invite, OrgRole, User, WorkspaceRole};
use crate::config::ApiKeyPolicy;
use crate::journal::{ActionKind, ActionStatus, PersonStatus, fold_email};

/// People of this source stand for a workspace `[hygiene] archive_unused_workspaces` is
/// archiving (source id = workspace id): the one planner, the removal cap, holds, releases
/// and the journal then treat the archive like any other destructive action.
pub const WORKSPACE_STAND_IN: &str = "workspace";

/// Offboarding and safety policy from config.
#[derive(Debug, Clone)]
pub struct Policy {
    pub api_keys: ApiKeyPolicy,
    pub remove_user: bool,
    /// Addresses automation never touches (folded with `fold_email`).
    pub protected_emails: Vec<String>,
    /// `safety.max_removals_per_hour`: how many people may lose access in an hour.
    pub max_removals_per_hour: u32,
}

impl Policy {
    pub fn from_config(config: &crate::config::Config) -> Self {
        Self {
            api_keys: config.raw.offboarding.api_keys,
            remove_user: config.raw.offboarding.remove_user,
            protected_emails: config
                .raw
                .safety
                .protected_emails
                .iter()
                .map(|e| fold_email(e))
                .collect(),
            max_removals_per_hour: config.raw.safety.max_removals_per_hour,
        }
    }

    fn protects(&self, email: &str) -> bool {
        self.protected_emails.contains(&fold_email(email))
    }
}

/// What one reconcile of one person decides: the access the rules give, the steps that
/// close the gap, and the journal-side decisions that go with them.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub desired: Desired,
    #[serde(skip)]
    pub context: PlanContext,
    #[serde(skip)]
    pub observed: Observed,
    pub steps: Vec<Planned>,
    /// The account found by this person's address, to be linked to them before acting.
    pub link: Option<String>,
}

impl Plan {
    /// The status a step's action has once journaled, before anything runs.
    pub fn initial_status(step: &Step, dry_run: bool) -> ActionStatus {
        match step {
            Step::ManualAction { .. } => ActionStatus::NeedsManualAction,
            Step::WaitForAcceptance { .. } => ActionStatus::Waiting,
            _ if dry_run => ActionStatus::DryRun,
            _ => ActionStatus::Pending,
        }
    }
}

/// The plan for one person from its loaded facts. Pure: every rule that turns an action
/// into a note for a human, or marks where the removal cap stops it, is here, so `keycard
/// plan` shows exactly what `keycard serve` does with the same facts.
pub fn plan_person(inputs: &Inputs, policy: &Policy) -> Plan {
    let person = &inputs.person;
    let observed = &inputs.observed;
    // Protection follows the account as well as the HR record: an address changed (or
    // missing) at the source must not unprotect the account it is linked to.
    let protected = [
        person.email.as_deref(),
        observed.member.as_ref().map(|m| m.email.as_str()),
        observed.pending_invite.as_ref().map(|i| i.email.as_str()),
    ]
    .into_iter()
    .flatten()
    .any(|e| policy.protects(e));
    let context = PlanContext {
        managed: inputs.managed.clone(),
        api_keys: policy.api_keys,
        remove_user: policy.remove_user,
        protected,
    };
    if let Some(ws) = inputs.workspace.as_ref() {
        let mut steps = archive_steps(ws, person.status);
        if !inputs.unsupported.is_empty() {
            steps = without_unsupported(steps, &inputs.unsupported);
        }
        mark_holds(&mut steps, inputs);
        return Plan {
            desired: Desired::default(),
            context,
            observed: observed.clone(),
            steps,
            link: None,
        };
    }
    let mut steps = plan(
        person.email.as_deref(),
        person.status,
        &inputs.desired,
        observed,
        &context,
    );

    let mut link = observed
        .member
        .as_ref()
        .map(|m| m.id.clone())
        .filter(|id| person.anthropic_user_id.as_deref() != Some(id.as_str()));
    // Two active records with one address (one human in two feeds, an HR typo): the first
    // keeps it, a later one without an account of its own yields. Otherwise both would act
    // on the one invite, each withdrawing the other's, forever.
    if person.status != PersonStatus::Departed
        && person.anthropic_user_id.is_none()
        && let (Some(email), Some(first)) = (person.email.as_deref(), &inputs.address_holder)
        && (first.created_at, first.id) < (person.created_at, person.id)
    {
        steps = manual_instead(
            &steps,
            format!(
                "the address {email} belongs to person {}/{} ({}), who had it first; Keycard does not invite or act on it for this person. Fix the address at the source, or link an account with POST /api/v1/people/{}/link",
                first.source, first.source_person_id, first.id, person.id
            ),
            "address in use by another person",
        );
        link = None;
    } else if let (Some(id), Some(owner)) = (link.as_deref(), &inputs.account_owner) {
        // Found by email, but the account is another person's (a rehire under a new id, or
        // the same human in a second source): acting on it for this person could remove
        // someone else's access. Never handed over automatically, not even from a departed
        // record: an address can be reused by a different human, and the account carries
        // its owner's API keys and history.
        steps = manual_instead(
            &steps,
            format!(
                "the account {id} with this person's email is linked to person {}/{} ({}, {}); Keycard does not act on it for this person. If it is this person's, say so with POST /api/v1/people/{}/link; if not, remove the old account in the Console and Keycard will invite this person",
                owner.source, owner.source_person_id, owner.id, owner.status, person.id
            ),
            "account linked to another person",
        );
        link = None;
    }

    if !inputs.unsupported.is_empty() {
        steps = without_unsupported(steps, &inputs.unsupported);
    }
    mark_holds(&mut steps, inputs);
    Plan {
        desired: inputs.desired.clone(),
        context,
        observed: observed.clone(),
        steps,
        link,
    }
}

/// A workspace stand-in's plan: archive it while it is still unused and no rule names it.
/// Anything else (it gained a member or a key, a rule now grants it, it is gone) plans
/// nothing: the decision is remade from the next full read.
fn archive_steps(ws: &WorkspaceUse, status: PersonStatus) -> Vec<Planned> {
    let unused = ws.members == 0 && ws.active_keys == 0;
    match &ws.name {
        Some(name)
            if status == PersonStatus::Departed && !ws.archived && unused && !ws.named_by_rules =>
        {
            vec![planned(
                Step::ArchiveWorkspace {
                    workspace_id: ws.id.clone(),
                    workspace: name.clone(),
                },
                Some("hygiene.archive_unused_workspaces"),
                "no members and no active API keys, and no rule grants it",
            )]
        }
        _ => Vec::new(),
    }
}

/// Steps that need an endpoint the organization does not offer (a Claude Enterprise org
/// has no API keys, Claude Platform on AWS no members or invites: admin-api.md §9) become
/// one manual note per missing feature, saying what a person must do instead, rather than
/// calls that would fail and be retried. The rest of the plan stands.
fn without_unsupported(
    steps: Vec<Planned>,
    unsupported: &BTreeMap<String, String>,
) -> Vec<Planned> {
    let mut kept = Vec::new();
    let mut missing: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for p in steps {
        match p.step.feature().filter(|f| unsupported.contains_key(*f)) {
            Some(feature) => missing.entry(feature).or_default().push(p.step.describe()),
            None => kept.push(p),
        }
    }
    for (feature, would_do) in missing {
        let why = unsupported.get(feature).cloned().unwrap_or_default();
        kept.push(planned(
            Step::ManualAction {
                reason: format!(
                    "this organization does not offer the Admin API's {feature} endpoints, so Keycard cannot do this; do it where the organization is managed. ({why})"
                ),
                would_do,
            },
            None,
            format!("{feature} not offered by this organization"),
        ));
    }
    kept
}

/// Marks the step where a run stops at the removal cap: an action an operator has not
/// released yet, or the first destructive step the cap would hold now. Later steps are not
/// reached in that run.
fn mark_holds(steps: &mut [Planned], inputs: &Inputs) {
    for p in steps.iter_mut() {
        let kind = p.step.kind();
        let params = p.step.params();
        let existing = inputs
            .unfinished
            .iter()
            .find(|a| a.kind == kind && a.params == params);
        if let Some(row) = existing.filter(|a| a.status == ActionStatus::Held) {
            p.hold = Some(format!(
                "held by the removal cap until an operator releases action {}",
                row.id
            ));
            return;
        }
        // Admitted once, always admitted: a retry or a crash recovery of a destructive action
        // already under way (or released) is not held again mid-offboarding.
        let admitted =
            existing.is_some_and(|a| a.status == ActionStatus::Released || a.started_at.is_some());
        if kind.is_destructive() && !admitted {
            if inputs.cap.would_hold() {
                p.hold = Some(format!(
                    "the removal cap would hold it: {} people lost access in the last hour (safety.max_removals_per_hour = {})",
                    inputs.cap.others_this_hour, inputs.cap.cap
                ));
            }
            // Admitted (or held) here; the person's later destructive steps go with it.
            return;
        }
    }
}

/// The access a person should have, with the rule behind each grant.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Desired {
    pub org_role: Option<OrgRole>,
    pub org_role_rule: Option<String>,
    /// Workspace name -> (role, rule that granted it).
    pub workspaces: BTreeMap<String, (WorkspaceRole, String)>,
    /// The rules evaluation, journaled with the plan.
    pub explanation: Value,
}

/// Facts the planner needs besides desired and observed state.
#[derive(Debug, Clone)]
pub struct PlanContext {
    /// Every workspace the rules name, resolved to its id (None: no such workspace).
    pub managed: BTreeMap<String, Option<String>>,
    pub api_keys: ApiKeyPolicy,
    pub remove_user: bool,
    /// The person's email is in `safety.protected_emails`.
    pub protected: bool,
}

/// One step of a plan, with everything needed to execute and explain it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Step {
    CreateInvite {
        email: String,
        role: String,
    },
    WithdrawInvite {
        invite_id: String,
        email: String,
    },
    UpdateUserRole {
        user_id: String,
        from: String,
        to: String,
    },
    AddWorkspaceMember {
        workspace_id: String,
        workspace: String,
        user_id: String,
        role: String,
    },
    UpdateWorkspaceMember {
        workspace_id: String,
        workspace: String,
        user_id: String,
        from: String,
        to: String,
    },
    RemoveWorkspaceMember {
        workspace_id: String,
        workspace: String,
        user_id: String,
    },
    DeactivateApiKey {
        key_id: String,
        name: String,
        status: String,
    },
    RemoveUser {
        user_id: String,
        email: String,
    },
    /// `[hygiene] archive_unused_workspaces`: a workspace nobody uses (irreversible).
    ArchiveWorkspace {
        workspace_id: String,
        workspace: String,
    },
    /// Journaled only: memberships that wait for the invite to be accepted.
    WaitForAcceptance {
        email: String,
        workspaces: Vec<String>,
    },
    /// Journaled only: automation must not do this; a person must.
    ManualAction {
        reason: String,
        would_do: Vec<String>,
    },
}

impl Step {
    pub fn kind(&self) -> ActionKind {
        match self {
            Self::CreateInvite { .. } => ActionKind::CreateInvite,
            Self::WithdrawInvite { .. } => ActionKind::WithdrawInvite,
            Self::UpdateUserRole { .. } => ActionKind::UpdateUserRole,
            Self::AddWorkspaceMember { .. } => ActionKind::AddWorkspaceMember,
            Self::UpdateWorkspaceMember { .. } => ActionKind::UpdateWorkspaceMember,
            Self::RemoveWorkspaceMember { .. } => ActionKind::RemoveWorkspaceMember,
            Self::DeactivateApiKey { .. } => ActionKind::DeactivateApiKey,
            Self::RemoveUser { .. } => ActionKind::RemoveUser,
            Self::ArchiveWorkspace { .. } => ActionKind::ArchiveWorkspace,
            Self::WaitForAcceptance { .. } => ActionKind::WaitForAcceptance,
            Self::ManualAction { .. } => ActionKind::NeedsManualAction,
        }
    }

    /// The step's parameters as journaled (and compared between runs).
    pub fn params(&self) -> Value {
        let mut v = serde_json::to_value(self).unwrap_or(Value::Null);
        if let Some(obj) = v.as_object_mut() {
            obj.remove("kind");
        }
        v
    }

    pub fn from_journal(kind: ActionKind, params: &Value) -> Option<Self> {
        let mut v = params.clone();
        v.as_object_mut()?
            .insert("kind".into(), json!(kind.as_str()));
        serde_json::from_value(v).ok()
    }

    /// Whether it calls the Admin API.
    pub fn is_call(&self) -> bool {
        !matches!(
            self,
            Self::WaitForAcceptance { .. } | Self::ManualAction { .. }
        )
    }

    /// The part of the Admin API the step needs (as `org_limits` names it), if any.
    pub fn feature(&self) -> Option<&'static str> {
        Some(match self {
            Self::CreateInvite { .. } | Self::WithdrawInvite { .. } => "invites",
            // Acceptance is seen in the invite list.
            Self::WaitForAcceptance { .. } => "invites",
            Self::UpdateUserRole { .. } | Self::RemoveUser { .. } => "users",
            Self::AddWorkspaceMember { .. }
            | Self::UpdateWorkspaceMember { .. }
            | Self::RemoveWorkspaceMember { .. } => "workspace_members",
            Self::DeactivateApiKey { .. } => "api_keys",
            Self::ArchiveWorkspace { .. } => "workspaces",
            Self::ManualAction { .. } => return None,
        })
    }

    /// A short description for tables and manual-action notes.
    pub fn describe(&self) -> String {
        match self {
            Self::CreateInvite { email, role } => format!("invite {email} as {role}"),
            Self::WithdrawInvite { invite_id, email } => {
                format!("withdraw invite {invite_id} ({email})")
            }
            Self::UpdateUserRole { user_id, from, to } => {
                format!("change {user_id} role {from} -> {to}")
            }
            Self::AddWorkspaceMember {
                workspace, role, ..
            } => format!("add to {workspace} as {role}"),
            Self::UpdateWorkspaceMember {
                workspace,
                from,
                to,
                ..
            } => format!("change {workspace} role {from} -> {to}"),
            Self::RemoveWorkspaceMember { workspace, .. } => format!("remove from {workspace}"),
            Self::DeactivateApiKey {
                name,
                key_id,
                status,
            } => format!("set API key {name} ({key_id}) {status}"),
            Self::RemoveUser { user_id, email } => format!("remove member {user_id} ({email})"),
            Self::ArchiveWorkspace {
                workspace_id,
                workspace,
            } => format!("archive the unused workspace {workspace} ({workspace_id})"),
            Self::WaitForAcceptance { workspaces, .. } => {
                format!(
                    "wait for invite acceptance before adding to {}",
                    workspaces.join(", ")
                )
            }
            Self::ManualAction { reason, .. } => format!("needs manual action: {reason}"),
        }
    }
}

/// A step with why it exists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Planned {
    pub step: Step,
    pub rule: Option<String>,
    pub reason: String,
    /// Why the run stops at this step (the removal cap), when it does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hold: Option<String>,
}

fn planned(step: Step, rule: Option<&str>, reason: impl Into<String>) -> Planned {
    Planned {
        step,
        rule: rule.map(str::to_owned),
        reason: reason.into(),
        hold: None,
    }
}

/// The whole plan for one person.
pub fn plan(
    email: Option<&str>,
    lifecycle: PersonStatus,
    desired: &Desired,
    observed: &Observed,
    ctx: &PlanContext,
) -> Vec<Planned> {
    let leaving = lifecycle == PersonStatus::Departed || desired.org_role.is_none();
    // Invites to an address the person no longer has go first, whatever else happens.
    let mut steps: Vec<Planned> = observed
        .stale_invites
        .iter()
        .map(|invite| {
            planned(
                Step::WithdrawInvite {
                    invite_id: invite.id.clone(),
                    email: invite.email.clone(),
                },
                None,
                format!(
                    "the invite went to a previous address; the person's address is now {}",
                    email.unwrap_or("unknown")
                ),
            )
        })
        .collect();
    steps.extend(if leaving {
        plan_leaver(lifecycle, observed, ctx)
    } else {
        plan_joiner_or_mover(email, desired, observed, ctx)
    });

    // Administrators and protected people are never changed by automation: the whole
    // change set becomes one note for a human.
    let admin = observed
        .member
        .as_ref()
        .filter(|m| m.role.is_administrative());
    if steps.iter().any(|p| p.step.is_call()) && (admin.is_some() || ctx.protected) {
        let reason = match admin {
            Some(m) => format!(
                "{} holds the organization role {}, which automation never changes or removes",
                m.email,
                m.role.as_str()
            ),
            None => "the address is listed in safety.protected_emails".to_owned(),
        };
        steps = manual_instead(&steps, reason.clone(), reason);
    }
    steps
}

/// The plan replaced by one note for a person: why automation stops here, and the calls it
/// would otherwise have made.
pub fn manual_instead(steps: &[Planned], why: String, short: impl Into<String>) -> Vec<Planned> {
    let would_do = steps
        .iter()
        .filter(|p| p.step.is_call())
        .map(|p| p.step.describe())
        .collect();
    vec![planned(
        Step::ManualAction {
            reason: why,
            would_do,
        },
        None,
        short,
    )]
}

fn plan_leaver(lifecycle: PersonStatus, observed: &Observed, ctx: &PlanContext) -> Vec<Planned> {
    let why = if lifecycle == PersonStatus::Departed {
        "person departed"
    } else {
        "no rule grants access"
    };
    let mut steps = Vec::new();
    if let Some(invite) = &observed.pending_invite {
        steps.push(planned(
            Step::WithdrawInvite {
                invite_id: invite.id.clone(),
                email: invite.email.clone(),
            },
            Some("offboarding"),
            format!("{why}: withdraw the pending invite"),
        ));
    }
    let Some(member) = &observed.member else {
        return steps;
    };
    if ctx.api_keys != ApiKeyPolicy::Keep {
        let status = if ctx.api_keys == ApiKeyPolicy::Archive {
            "archived"
        } else {
            "inactive"
        };
        for key in &observed.api_keys {
            steps.push(planned(
                Step::DeactivateApiKey {
                    key_id: key.id.clone(),
                    name: key.name.clone(),
                    status: status.to_owned(),
                },
                Some("offboarding.api_keys"),
                format!("{why}: API keys they created keep working after removal"),
            ));
        }
    }
    for (workspace_id, (name, _role)) in &observed.memberships {
        steps.push(planned(
            Step::RemoveWorkspaceMember {
                workspace_id: workspace_id.clone(),
                workspace: name.clone(),
                user_id: member.id.clone(),
            },
            Some("offboarding"),
            format!("{why}: remove from managed workspace {name}"),
        ));
    }
    if ctx.remove_user {
        steps.push(planned(
            Step::RemoveUser {
                user_id: member.id.clone(),
                email: member.email.clone(),
            },
            Some("offboarding.remove_user"),
            format!("{why}: remove from the organization"),
        ));
    }
    steps
}

fn plan_joiner_or_mover(
    email: Option<&str>,
    desired: &Desired,
    observed: &Observed,
    ctx: &PlanContext,
) -> Vec<Planned> {
    let mut steps = Vec::new();
    let Some(role) = &desired.org_role else {
        return steps;
    };
    let role_rule = desired.org_role_rule.as_deref();

    // Workspaces the rules name that do not exist cannot be granted.
    for (name, (_, rule)) in &desired.workspaces {
        if ctx.managed.get(name).is_none_or(Option::is_none) {
            steps.push(planned(
                Step::ManualAction {
                    reason: format!("workspace '{name}' named by rule '{rule}' does not exist"),
                    would_do: vec![format!("add to {name}")],
                },
                Some(rule),
                format!("create workspace '{name}' or fix rule '{rule}'"),
            ));
        }
    }

    let Some(member) = &observed.member else {
        let Some(email) = email else {
            steps.push(planned(
                Step::ManualAction {
                    reason: "no email address is known for this person".into(),
                    would_do: vec![format!("invite as {}", role.as_str())],
                },
                role_rule,
                "an invite needs an email address",
            ));
            return steps;
        };
        match &observed.pending_invite {
            Some(invite) if invite.role == *role => {}
            Some(invite) => {
                steps.push(planned(
                    Step::WithdrawInvite {
                        invite_id: invite.id.clone(),
                        email: invite.email.clone(),
                    },
                    role_rule,
                    format!(
                        "pending invite has role {}, rules want {}: withdraw and re-send",
                        invite.role.as_str(),
                        role.as_str()
                    ),
                ));
                steps.push(planned(
                    Step::CreateInvite {
                        email: email.to_owned(),
                        role: role.as_str().to_owned(),
                    },
                    role_rule,
                    "re-send the invite with the right role",
                ));
            }
            None => steps.push(planned(
                Step::CreateInvite {
                    email: email.to_owned(),
                    role: role.as_str().to_owned(),
                },
                role_rule,
                "not a member and no pending invite",
            )),
        }
        let waiting: Vec<String> = desired
            .workspaces
            .keys()
            .filter(|n| ctx.managed.get(*n).is_some_and(Option::is_some))
            .cloned()
            .collect();
        if !waiting.is_empty() {
            steps.push(planned(
                Step::WaitForAcceptance {
                    email: email.to_owned(),
                    workspaces: waiting,
                },
                None,
                "workspace memberships need a user id; applied once the invite is accepted",
            ));
        }
        return steps;
    };

    if member.role != *role {
        steps.push(planned(
            Step::UpdateUserRole {
                user_id: member.id.clone(),
                from: member.role.as_str().to_owned(),
                to: role.as_str().to_owned(),
            },
            role_rule,
            format!("rules want organization role {}", role.as_str()),
        ));
    }

    // Managed workspaces only: add or re-role what the rules grant, remove what they don't.
    for (name, id) in &ctx.managed {
        let Some(workspace_id) = id else { continue };
        let want = desired.workspaces.get(name);
        let have = observed.memberships.get(workspace_id).map(|(_, r)| r);
        match (want, have) {
            (Some((want, rule)), None) => steps.push(planned(
                Step::AddWorkspaceMember {
                    workspace_id: workspace_id.clone(),
                    workspace: name.clone(),
                    user_id: member.id.clone(),
                    role: want.as_str().to_owned(),
                },
                Some(rule),
                format!("rule '{rule}' grants {name} as {}", want.as_str()),
            )),
            (Some((want, rule)), Some(have)) if have != want => steps.push(planned(
                Step::UpdateWorkspaceMember {
                    workspace_id: workspace_id.clone(),
                    workspace: name.clone(),
                    user_id: member.id.clone(),
                    from: have.as_str().to_owned(),
                    to: want.as_str().to_owned(),
                },
                Some(rule),
                format!("rule '{rule}' grants {name} as {}", want.as_str()),
            )),
            (None, Some(_)) => steps.push(planned(
                Step::RemoveWorkspaceMember {
                    workspace_id: workspace_id.clone(),
                    workspace: name.clone(),
                    user_id: member.id.clone(),
                },
                None,
                format!("no rule grants {name} any more"),
            )),
            _ => {}
        }
    }
    steps
}

/// Convenience for tests and `keycard plan`: a member as the API would report it.
pub fn describe_observed(observed: &Observed) -> Value {
    json!({
        "member": observed.member.as_ref().map(|m: &User| json!({ "id": m.id, "email": m.email, "role": m.role.as_str() })),
        "pending_invite": observed.pending_invite.as_ref().map(|i: &Invite| json!({ "id": i.id, "role": i.role.as_str(), "expires_at": i.expires_at })),
        "memberships": observed.memberships.iter().map(|(id, (name, role))| json!({ "workspace_id": id, "workspace": name, "role": role.as_str() })).collect::<Vec<_>>(),
        "api_keys": observed.api_keys.iter().map(|k: &ApiKey| json!({ "id": k.id, "name": k.name, "status": k.status.as_str() })).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod person_tests;

#[cfg(test)]
mod proptests;
