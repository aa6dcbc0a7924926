use super::*;
use chrono::Utc;

fn user(id: &str, email: &str, role: OrgRole) -> User {
    serde_json::from_value(json!({
        "id": id, "type": "user", "email": email, "name": "x",
        "role": role.as_str(), "added_at": Utc::now(),
    }))
    .unwrap_or_else(|e| panic!("user fixture: {e}"))
}

fn invite(id: &str, email: &str, role: &str) -> Invite {
    serde_json::from_value(json!({
        "id": id, "type": "invite", "email": email, "role": role, "status": "pending",
        "invited_at": Utc::now(), "expires_at": Utc::now(), "accepted_at": null, "rbac_group_ids": [],
    }))
    .unwrap_or_else(|e| panic!("invite fixture: {e}"))
}

fn ctx() -> PlanContext {
    PlanContext {
        managed: BTreeMap::from([
            ("Eng".to_owned(), Some("wrkspc_eng".to_owned())),
            ("Sandbox".to_owned(), Some("wrkspc_sb".to_owned())),
        ]),
        api_keys: ApiKeyPolicy::Deactivate,
        remove_user: true,
        protected: false,
    }
}

fn desired(role: OrgRole, ws: &[(&str, WorkspaceRole)]) -> Desired {
    Desired {
        org_role: Some(role),
        org_role_rule: Some("eng".into()),
        workspaces: ws
            .iter()
            .map(|(n, r)| ((*n).to_owned(), (r.clone(), "eng".to_owned())))
            .collect(),
        explanation: Value::Null,
    }
}

fn kinds(plan: &[Planned]) -> Vec<&'static str> {
    plan.iter().map(|p| p.step.kind().as_str()).collect()
}

#[test]
fn joiner_gets_an_invite_and_waits_for_memberships() {
    let d = desired(
        OrgRole::Developer,
        &[("Eng", WorkspaceRole::WorkspaceDeveloper)],
    );
    let p = plan(
        Some("ada@x.com"),
        PersonStatus::Active,
        &d,
        &Observed::default(),
        &ctx(),
    );
    assert_eq!(kinds(&p), vec!["create_invite", "wait_for_acceptance"]);
}

#[test]
fn pending_invite_with_the_right_role_is_left_alone() {
    let d = desired(OrgRole::Developer, &[]);
    let obs = Observed {
        pending_invite: Some(invite("invite_1", "ada@x.com", "developer")),
        ..Default::default()
    };
    assert!(plan(Some("ada@x.com"), PersonStatus::Active, &d, &obs, &ctx()).is_empty());
}

#[test]
fn pending_invite_with_the_wrong_role_is_resent() {
    let d = desired(OrgRole::Developer, &[]);
    let obs = Observed {
        pending_invite: Some(invite("invite_1", "ada@x.com", "user")),
        ..Default::default()
    };
    let p = plan(Some("ada@x.com"), PersonStatus::Active, &d, &obs, &ctx());
    assert_eq!(kinds(&p), vec!["withdraw_invite", "create_invite"]);
}

#[test]
fn mover_changes_role_and_managed_memberships_only() {
    let d = desired(
        OrgRole::Developer,
        &[("Eng", WorkspaceRole::WorkspaceAdmin)],
    );
    let mut obs = Observed {
        member: Some(user("user_1", "ada@x.com", OrgRole::User)),
        ..Default::default()
    };
    obs.memberships.insert(
        "wrkspc_eng".into(),
        ("Eng".into(), WorkspaceRole::WorkspaceDeveloper),
    );
    obs.memberships.insert(
        "wrkspc_sb".into(),
        ("Sandbox".into(), WorkspaceRole::WorkspaceUser),
    );
    let p = plan(Some("ada@x.com"), PersonStatus::Active, &d, &obs, &ctx());
    assert_eq!(
        kinds(&p),
        vec![
            "update_user_role",
            "update_workspace_member",
            "remove_workspace_member"
        ]
    );
}

#[test]
fn leaver_member_keys_memberships_then_removal() {
    let mut obs = Observed {
        member: Some(user("user_1", "ada@x.com", OrgRole::Developer)),
        ..Default::default()
    };
    obs.memberships.insert(
        "wrkspc_eng".into(),
        ("Eng".into(), WorkspaceRole::WorkspaceUser),
    );
    obs.api_keys = vec![
        serde_json::from_value(json!({
            "id": "apikey_1", "type": "api_key", "name": "ci", "created_at": Utc::now(),
            "created_by": { "id": "user_1", "type": "user" }, "status": "active",
        }))
        .unwrap_or_else(|e| panic!("key fixture: {e}")),
    ];
    let p = plan(
        Some("ada@x.com"),
        PersonStatus::Departed,
        &Desired::default(),
        &obs,
        &ctx(),
    );
    assert_eq!(
        kinds(&p),
        vec![
            "deactivate_api_key",
            "remove_workspace_member",
            "remove_user"
        ]
    );
}

#[test]
fn leaver_before_acceptance_withdraws_invite() {
    let obs = Observed {
        pending_invite: Some(invite("invite_1", "ada@x.com", "user")),
        ..Default::default()
    };
    let p = plan(
        Some("ada@x.com"),
        PersonStatus::Departed,
        &Desired::default(),
        &obs,
        &ctx(),
    );
    assert_eq!(kinds(&p), vec!["withdraw_invite"]);
}

#[test]
fn admins_and_protected_people_become_manual_actions() {
    let obs = Observed {
        member: Some(user("user_1", "boss@x.com", OrgRole::Admin)),
        ..Default::default()
    };
    let p = plan(
        Some("boss@x.com"),
        PersonStatus::Departed,
        &Desired::default(),
        &obs,
        &ctx(),
    );
    assert_eq!(kinds(&p), vec!["needs_manual_action"]);

    let obs = Observed {
        member: Some(user("user_2", "vip@x.com", OrgRole::Developer)),
        ..Default::default()
    };
    let mut c = ctx();
    c.protected = true;
    let p = plan(
        Some("vip@x.com"),
        PersonStatus::Departed,
        &Desired::default(),
        &obs,
        &c,
    );
    assert_eq!(kinds(&p), vec!["needs_manual_action"]);
}

#[test]
fn steps_round_trip_through_the_journal() {
    let step = Step::AddWorkspaceMember {
        workspace_id: "w".into(),
        workspace: "Eng".into(),
        user_id: "u".into(),
        role: "workspace_user".into(),
    };
    assert_eq!(Step::from_journal(step.kind(), &step.params()), Some(step));
}

#[test]
fn every_step_kind_is_a_known_action_kind() {
    let s = || String::from("x");
    let steps = [
        Step::CreateInvite {
            email: s(),
            role: s(),
        },
        Step::WithdrawInvite {
            invite_id: s(),
            email: s(),
        },
        Step::UpdateUserRole {
            user_id: s(),
            from: s(),
            to: s(),
        },
        Step::AddWorkspaceMember {
            workspace_id: s(),
            workspace: s(),
            user_id: s(),
            role: s(),
        },
        Step::UpdateWorkspaceMember {
            workspace_id: s(),
            workspace: s(),
            user_id: s(),
            from: s(),
            to: s(),
        },
        Step::RemoveWorkspaceMember {
            workspace_id: s(),
            workspace: s(),
            user_id: s(),
        },
        Step::DeactivateApiKey {
            key_id: s(),
            name: s(),
            status: s(),
        },
        Step::RemoveUser {
            user_id: s(),
            email: s(),
        },
        Step::ArchiveWorkspace {
            workspace_id: s(),
            workspace: s(),
        },
        Step::WaitForAcceptance {
            email: s(),
            workspaces: vec![],
        },
        Step::ManualAction {
            reason: s(),
            would_do: vec![],
        },
    ];
    let kinds: Vec<ActionKind> = steps.iter().map(Step::kind).collect();
    assert_eq!(kinds, ActionKind::ALL);
}
