//! The planner: desired access + observed Admin API state -> the actions that close the gap.
//!
//! Pure: no I/O, no clock. The same function serves events, invite follow-up, retries and
//! `keycard plan`, so whatever path led here, the same state gives the same plan
//! (keycard.md §1.2, §6).

mod desired;
mod observe;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

pub use desired::{desired_access, person_facts};
pub use observe::{Observed, observe};

use crate::admin_api::{AdminApiError, AdminClient, ApiKey, Invite, OrgRole, User, WorkspaceRole};
use crate::config::ApiKeyPolicy;
use crate::journal::PersonRow;
use crate::rules::RuleSet;

/// Offboarding and safety policy from config.
#[derive(Debug, Clone)]
pub struct Policy {
    pub api_keys: ApiKeyPolicy,
    pub remove_user: bool,
    /// Lower-cased addresses automation never touches.
    pub protected_emails: Vec<String>,
}

/// Everything one reconcile decides.
#[derive(Debug, Clone)]
pub struct Decided {
    pub desired: Desired,
    pub observed: Observed,
    pub context: PlanContext,
    pub steps: Vec<Planned>,
}

/// Rules, then observation (GETs only), then the plan. With no client the person is
/// assumed to have nothing yet (dry run without a credential).
pub async fn decide(
    client: Option<&AdminClient>,
    workspace_ids: &BTreeMap<String, String>,
    rules: &RuleSet,
    person: &PersonRow,
    policy: &Policy,
) -> Result<Decided, AdminApiError> {
    let desired = desired_access(rules, person);
    let lifecycle = Lifecycle::parse(&person.status);
    let managed: BTreeMap<String, Option<String>> = rules
        .managed_workspaces()
        .into_iter()
        .map(|name| {
            let id = match client {
                Some(_) => workspace_ids.get(&name).cloned(),
                None => Some(format!("<{name}>")),
            };
            (name, id)
        })
        .collect();
    let observed = match client {
        Some(client) => {
            let leaving = lifecycle == Lifecycle::Departed || desired.org_role.is_none();
            // A leaver whose linked account is already gone is done: an account that now
            // has their address belongs to whoever holds it now, not to this record.
            let by_email =
                !(lifecycle == Lifecycle::Departed && person.anthropic_user_id.is_some());
            observe(
                client,
                person.anthropic_user_id.as_deref(),
                person.email.as_deref(),
                &previous_emails(person),
                by_email,
                &managed,
                leaving,
            )
            .await?
        }
        None => Observed::default(),
    };
    // Protection follows the account as well as the HR record: an address changed (or
    // missing) at the source must not unprotect the account it is linked to.
    let protected = [
        person.email.as_deref(),
        observed.member.as_ref().map(|m| m.email.as_str()),
        observed.pending_invite.as_ref().map(|i| i.email.as_str()),
    ]
    .into_iter()
    .flatten()
    .any(|e| policy.protected_emails.contains(&e.trim().to_lowercase()));
    let context = PlanContext {
        managed,
        api_keys: policy.api_keys,
        remove_user: policy.remove_user,
        protected,
    };
    let steps = plan(
        person.email.as_deref(),
        lifecycle,
        &desired,
        &observed,
        &context,
    );
    Ok(Decided {
        desired,
        observed,
        context,
        steps,
    })
}

/// Where a person stands in their lifecycle (from the journal).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Lifecycle {
    Active,
    OnLeave,
    Departed,
}

impl Lifecycle {
    pub fn parse(status: &str) -> Self {
        match status {
            "departed" => Self::Departed,
            "on_leave" => Self::OnLeave,
            _ => Self::Active,
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
    pub fn kind(&self) -> &'static str {
        match self {
            Self::CreateInvite { .. } => "create_invite",
            Self::WithdrawInvite { .. } => "withdraw_invite",
            Self::UpdateUserRole { .. } => "update_user_role",
            Self::AddWorkspaceMember { .. } => "add_workspace_member",
            Self::UpdateWorkspaceMember { .. } => "update_workspace_member",
            Self::RemoveWorkspaceMember { .. } => "remove_workspace_member",
            Self::DeactivateApiKey { .. } => "deactivate_api_key",
            Self::RemoveUser { .. } => "remove_user",
            Self::WaitForAcceptance { .. } => "wait_for_acceptance",
            Self::ManualAction { .. } => "needs_manual_action",
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

    pub fn from_journal(kind: &str, params: &Value) -> Option<Self> {
        let mut v = params.clone();
        v.as_object_mut()?.insert("kind".into(), json!(kind));
        serde_json::from_value(v).ok()
    }

    /// Whether it calls the Admin API.
    pub fn is_call(&self) -> bool {
        !matches!(
            self,
            Self::WaitForAcceptance { .. } | Self::ManualAction { .. }
        )
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
}

fn planned(step: Step, rule: Option<&str>, reason: impl Into<String>) -> Planned {
    Planned {
        step,
        rule: rule.map(str::to_owned),
        reason: reason.into(),
    }
}

/// Addresses the person had before the current one (from the journal's email history).
fn previous_emails(person: &PersonRow) -> Vec<String> {
    let current = person.email.as_deref().unwrap_or_default();
    let mut out: Vec<String> = Vec::new();
    for entry in person.email_history.as_array().into_iter().flatten() {
        if let Some(e) = entry.get("email").and_then(Value::as_str)
            && !e.eq_ignore_ascii_case(current)
            && !out.iter().any(|o| o.eq_ignore_ascii_case(e))
        {
            out.push(e.to_owned());
        }
    }
    out
}

/// The whole plan for one person.
pub fn plan(
    email: Option<&str>,
    lifecycle: Lifecycle,
    desired: &Desired,
    observed: &Observed,
    ctx: &PlanContext,
) -> Vec<Planned> {
    let leaving = lifecycle == Lifecycle::Departed || desired.org_role.is_none();
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

fn plan_leaver(lifecycle: Lifecycle, observed: &Observed, ctx: &PlanContext) -> Vec<Planned> {
    let why = if lifecycle == Lifecycle::Departed {
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
