//! Properties of the pure planner (issue 15, "Go further"): for any observed organization and
//! any desired access, a plan never touches administrators, owners, protected people or
//! workspaces it cannot resolve, and once its calls are applied, planning again finds nothing
//! to do.
//!
//! `Observed::memberships` holds managed workspaces only (the loader, `inputs.rs`, drops the
//! rest before planning; the pipeline's mover test covers a hand-made membership there), so
//! the generator keeps to that contract; a rule may still name a workspace that does not
//! exist (`Ghost`, resolved to no id).

use proptest::prelude::*;

use super::*;

const MANAGED: [(&str, &str); 2] = [("Eng", "wrkspc_eng"), ("Sandbox", "wrkspc_sb")];
const WS_ROLES: [WorkspaceRole; 4] = [
    WorkspaceRole::WorkspaceUser,
    WorkspaceRole::WorkspaceDeveloper,
    WorkspaceRole::WorkspaceAdmin,
    WorkspaceRole::WorkspaceRestrictedDeveloper,
];
const ORG_ROLES: [OrgRole; 9] = [
    OrgRole::User,
    OrgRole::Developer,
    OrgRole::Billing,
    OrgRole::ClaudeCodeUser,
    OrgRole::Admin,
    OrgRole::Managed,
    OrgRole::MembershipAdmin,
    OrgRole::Owner,
    OrgRole::PrimaryOwner,
];

fn user(role: OrgRole, email: &str) -> User {
    serde_json::from_value(json!({
        "id": "user_1", "type": "user", "email": email, "name": "x",
        "role": role.as_str(), "added_at": "2026-01-01T00:00:00Z",
    }))
    .unwrap_or_else(|e| panic!("user: {e}"))
}

fn invite(id: &str, email: &str, role: &str) -> Invite {
    serde_json::from_value(json!({
        "id": id, "type": "invite", "email": email, "role": role, "status": "pending",
        "invited_at": "2026-01-01T00:00:00Z", "expires_at": "2026-02-01T00:00:00Z",
        "accepted_at": null, "rbac_group_ids": [],
    }))
    .unwrap_or_else(|e| panic!("invite: {e}"))
}

fn api_key(n: usize) -> ApiKey {
    serde_json::from_value(json!({
        "id": format!("apikey_{n}"), "name": format!("k{n}"),
        "created_at": "2026-01-01T00:00:00Z",
        "created_by": { "id": "user_1", "type": "user" },
        "status": "active",
    }))
    .unwrap_or_else(|e| panic!("api key: {e}"))
}

#[derive(Debug, Clone)]
struct Case {
    email: Option<&'static str>,
    status: PersonStatus,
    desired: Desired,
    observed: Observed,
    protected: bool,
}

fn ws_role() -> impl Strategy<Value = WorkspaceRole> {
    (0..WS_ROLES.len()).prop_map(|i| WS_ROLES[i].clone())
}

fn case() -> impl Strategy<Value = Case> {
    let desired = (
        prop::option::of(prop_oneof![Just(OrgRole::User), Just(OrgRole::Developer)]),
        prop::option::of(ws_role()),
        prop::option::of(ws_role()),
        prop::option::of(ws_role()),
    )
        .prop_map(|(org, eng, sb, ghost)| {
            let mut workspaces = BTreeMap::new();
            if org.is_some() {
                for (name, role) in [("Eng", eng), ("Sandbox", sb), ("Ghost", ghost)] {
                    if let Some(r) = role {
                        workspaces.insert(name.to_owned(), (r, "rule".to_owned()));
                    }
                }
            }
            Desired {
                org_role: org,
                org_role_rule: Some("rule".into()),
                workspaces,
                explanation: Value::Null,
            }
        });
    let member = prop::option::of((0..ORG_ROLES.len()).prop_map(|i| ORG_ROLES[i].clone()));
    let invite_role = prop::option::of(prop_oneof![Just("user"), Just("developer")]);
    let memberships = (prop::option::of(ws_role()), prop::option::of(ws_role()));
    (
        prop_oneof![Just(Some("ada@x.test")), Just(None)],
        prop_oneof![
            Just(PersonStatus::Active),
            Just(PersonStatus::OnLeave),
            Just(PersonStatus::Departed)
        ],
        desired,
        member,
        invite_role,
        memberships,
        0usize..3,
        any::<bool>(),
    )
        .prop_map(
            |(email, status, desired, member, invite_role, (eng, sb), keys, protected)| {
                let mut observed = Observed::default();
                match member {
                    Some(role) => {
                        observed.member = Some(user(role, "ada@x.test"));
                        for (id, name, r) in
                            [(MANAGED[0].1, "Eng", eng), (MANAGED[1].1, "Sandbox", sb)]
                        {
                            if let Some(r) = r {
                                observed
                                    .memberships
                                    .insert(id.to_owned(), (name.to_owned(), r));
                            }
                        }
                        observed.api_keys = (0..keys).map(api_key).collect();
                    }
                    None => {
                        observed.pending_invite =
                            invite_role.map(|r| invite("invite_1", "ada@x.test", r));
                    }
                }
                Case {
                    email,
                    status,
                    desired,
                    observed,
                    protected,
                }
            },
        )
}

fn context(protected: bool) -> PlanContext {
    PlanContext {
        managed: MANAGED
            .iter()
            .map(|(n, id)| ((*n).to_owned(), Some((*id).to_owned())))
            .chain([("Ghost".to_owned(), None)])
            .collect(),
        api_keys: ApiKeyPolicy::Deactivate,
        remove_user: true,
        protected,
    }
}

fn planned(c: &Case, observed: &Observed) -> Vec<Planned> {
    plan(
        c.email,
        c.status,
        &c.desired,
        observed,
        &context(c.protected),
    )
}

/// The organization after the plan's calls succeed (an invite stays pending: acceptance is
/// the invitee's, not the plan's).
fn apply(observed: &Observed, steps: &[Planned]) -> Observed {
    let mut o = observed.clone();
    for p in steps {
        match &p.step {
            Step::CreateInvite { email, role } => {
                o.pending_invite = Some(invite("invite_new", email, role));
            }
            Step::WithdrawInvite { invite_id, .. } => {
                if o.pending_invite
                    .as_ref()
                    .is_some_and(|i| &i.id == invite_id)
                {
                    o.pending_invite = None;
                }
                o.stale_invites.retain(|i| &i.id != invite_id);
            }
            Step::UpdateUserRole { to, .. } => {
                if let Some(m) = o.member.as_mut() {
                    m.role = serde_json::from_value(json!(to)).unwrap_or(m.role.clone());
                }
            }
            Step::AddWorkspaceMember {
                workspace_id,
                workspace,
                role,
                ..
            }
            | Step::UpdateWorkspaceMember {
                workspace_id,
                workspace,
                to: role,
                ..
            } => {
                let role = serde_json::from_value(json!(role)).unwrap_or_else(|e| panic!("{e}"));
                o.memberships
                    .insert(workspace_id.clone(), (workspace.clone(), role));
            }
            Step::RemoveWorkspaceMember { workspace_id, .. } => {
                o.memberships.remove(workspace_id);
            }
            Step::DeactivateApiKey { key_id, .. } => o.api_keys.retain(|k| &k.id != key_id),
            // Only workspace stand-ins plan it, never a person's plan.
            Step::ArchiveWorkspace { .. } => panic!("a person's plan archived a workspace"),
            Step::RemoveUser { .. } => {
                o.member = None;
                o.memberships.clear();
            }
            Step::WaitForAcceptance { .. } | Step::ManualAction { .. } => {}
        }
    }
    o
}

fn workspace_of(step: &Step) -> Option<&str> {
    match step {
        Step::AddWorkspaceMember { workspace_id, .. }
        | Step::UpdateWorkspaceMember { workspace_id, .. }
        | Step::RemoveWorkspaceMember { workspace_id, .. } => Some(workspace_id),
        _ => None,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn admins_owners_and_protected_people_get_no_calls(c in case()) {
        let steps = planned(&c, &c.observed);
        let administrative = c.observed.member.as_ref().is_some_and(|m| m.role.is_administrative());
        if administrative || c.protected {
            prop_assert!(steps.iter().all(|p| !p.step.is_call()), "{steps:#?}");
        }
    }

    #[test]
    fn only_resolved_managed_workspaces_are_touched(c in case()) {
        for p in planned(&c, &c.observed) {
            if let Some(ws) = workspace_of(&p.step) {
                prop_assert!(MANAGED.iter().any(|(_, id)| *id == ws), "{:?}", p.step);
            }
        }
    }

    #[test]
    fn applying_a_plan_then_planning_again_finds_nothing_to_do(c in case()) {
        let steps = planned(&c, &c.observed);
        let after = apply(&c.observed, &steps);
        let again: Vec<_> = planned(&c, &after)
            .into_iter()
            .filter(|p| p.step.is_call())
            .collect();
        prop_assert!(again.is_empty(), "first {steps:#?}\nthen {again:#?}");
    }
}
