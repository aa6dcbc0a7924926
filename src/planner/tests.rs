use super::*;
use chrono::Utc;

pub(super) fn user(id: &str, email: &str, role: OrgRole) -> User {
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

// --- person_facts / desired_access: the journaled person as the rules see it ---

use crate::journal::PersonRow;

fn person_row(status: PersonStatus, email: Option<&str>, attributes: Value) -> PersonRow {
    PersonRow {
        id: uuid::Uuid::nil(),
        source: "bamboohr".to_owned(),
        source_person_id: "E42".to_owned(),
        email: email.map(str::to_owned),
        email_history: sqlx::types::Json(vec![]),
        attributes,
        status,
        last_order_key: None,
        last_event_id: None,
        anthropic_user_id: None,
        desired: None,
        created_at: Utc::now(),
        updated_at: Utc::now(),
    }
}

fn full_attributes() -> Value {
    json!({
        "email": "old@x.com", "name": "Ada Lovelace", "department": "Engineering",
        "title": "Staff Engineer", "division": "R&D", "cost_center": "CC-7",
        "location": "London", "worker_type": "contractor", "manager_email": "grace@x.com",
        "groups": ["eng", 7, "oncall"], "attributes": { "clearance": "high" },
    })
}

#[test]
fn person_facts_reads_every_attribute_the_rules_can_name() {
    let row = person_row(PersonStatus::Active, Some("ada@x.com"), full_attributes());
    let facts = person_facts(&row);
    let want = crate::rules::PersonFacts {
        id: "E42".to_owned(),
        // The journaled address wins over one in the attributes.
        email: Some("ada@x.com".to_owned()),
        name: Some("Ada Lovelace".to_owned()),
        department: Some("Engineering".to_owned()),
        title: Some("Staff Engineer".to_owned()),
        division: Some("R&D".to_owned()),
        cost_center: Some("CC-7".to_owned()),
        location: Some("London".to_owned()),
        worker_type: Some("contractor".to_owned()),
        manager_email: Some("grace@x.com".to_owned()),
        // Non-string group entries are dropped, not stringified.
        groups: vec!["eng".to_owned(), "oncall".to_owned()],
        attributes: serde_json::Map::from_iter([("clearance".to_owned(), json!("high"))]),
        status: PersonStatus::Active,
        source: "bamboohr".to_owned(),
    };
    assert_eq!(facts, want);
}

#[test]
fn person_facts_falls_back_to_the_attributes_address_and_reads_absent_as_none() {
    let row = person_row(
        PersonStatus::Departed,
        None,
        json!({ "email": "ada@x.com", "department": 3 }),
    );
    let facts = person_facts(&row);
    assert_eq!(facts.email.as_deref(), Some("ada@x.com"));
    // A non-string value is not a department.
    assert_eq!(facts.department, None);
    assert_eq!(facts.name, None);
    assert!(facts.groups.is_empty() && facts.attributes.is_empty());
    assert_eq!(facts.status, PersonStatus::Departed);

    let bare = person_facts(&person_row(PersonStatus::Active, None, json!({})));
    assert_eq!(bare.email, None);
}

#[test]
fn a_new_person_is_seen_by_the_rules_as_active() {
    let row = person_row(PersonStatus::New, Some("ada@x.com"), json!({}));
    assert_eq!(person_facts(&row).status, PersonStatus::Active);
    let row = person_row(PersonStatus::OnLeave, Some("ada@x.com"), json!({}));
    assert_eq!(person_facts(&row).status, PersonStatus::OnLeave);
}

fn rule(
    name: &str,
    when: &str,
    org_role: Option<&str>,
    ws: &[(&str, &str)],
) -> crate::rules::RuleConfig {
    crate::rules::RuleConfig {
        name: name.to_owned(),
        when: when.to_owned(),
        org_role: org_role.map(str::to_owned),
        workspaces: ws
            .iter()
            .map(|(w, r)| ((*w).to_owned(), (*r).to_owned()))
            .collect(),
        priority: 0,
    }
}

#[test]
fn desired_access_credits_each_grant_to_the_rule_that_made_it() {
    let rules = crate::rules::RuleSet::compile(
        &[
            rule(
                "engineers",
                r#"person.department == "Engineering""#,
                Some("developer"),
                &[("Eng", "workspace_developer")],
            ),
            rule(
                "contractors",
                r#"person.worker_type == "contractor""#,
                None,
                &[("Sandbox", "workspace_user")],
            ),
        ],
        Some(&crate::rules::DefaultConfig {
            org_role: Some("user".to_owned()),
            workspaces: BTreeMap::new(),
        }),
    )
    .unwrap_or_else(|e| panic!("rules: {e:?}"));
    let d = desired_access(
        &rules,
        &person_row(PersonStatus::Active, Some("ada@x.com"), full_attributes()),
    );
    assert_eq!(d.org_role, Some(OrgRole::Developer));
    assert_eq!(d.org_role_rule.as_deref(), Some("engineers"));
    assert_eq!(
        d.workspaces,
        BTreeMap::from([
            (
                "Eng".to_owned(),
                (WorkspaceRole::WorkspaceDeveloper, "engineers".to_owned())
            ),
            (
                "Sandbox".to_owned(),
                (WorkspaceRole::WorkspaceUser, "contractors".to_owned())
            ),
        ])
    );
    assert!(d.explanation.get("rules").is_some(), "{}", d.explanation);

    // Nobody matches: the default grants the role, and says so.
    let d = desired_access(
        &rules,
        &person_row(PersonStatus::Active, Some("bo@x.com"), json!({})),
    );
    assert_eq!(d.org_role, Some(OrgRole::User));
    assert_eq!(d.org_role_rule.as_deref(), Some("default"));
    assert!(d.workspaces.is_empty());
}

#[test]
fn the_preview_shows_the_verdict_the_observation_and_where_the_run_stops() {
    let person = person_row(PersonStatus::Departed, Some("ada@x.com"), json!({}));
    let mut known = person_row(PersonStatus::Active, Some("ada@x.com"), json!({}));
    known.anthropic_user_id = Some("user_1".to_owned());
    let mut steps = plan(
        Some("ada@x.com"),
        PersonStatus::Departed,
        &Desired::default(),
        &Observed {
            member: Some(user("user_1", "ada@x.com", OrgRole::Developer)),
            ..Observed::default()
        },
        &ctx(),
    );
    let removal = steps.len() - 1;
    steps[removal].hold = Some("the removal cap (1/h) is reached".to_owned());
    let p = Plan {
        desired: desired(
            OrgRole::Developer,
            &[("Eng", WorkspaceRole::WorkspaceDeveloper)],
        ),
        context: ctx(),
        observed: Observed::default(),
        steps,
        link: Some("user_1".to_owned()),
    };
    let out = render::preview(
        &person,
        Some(&known),
        &["a note".to_owned()],
        &p,
        false,
        true,
    );
    for want in [
        "person E42 (ada@x.com) status departed",
        "known as 00000000-0000-0000-0000-000000000000",
        ", linked to user_1",
        "note:     a note",
        "desired: org_role=developer workspaces=Eng=workspace_developer (rule eng)",
        "observed: (no Admin API credential configured",
        "link:     the account user_1 would be linked to this person",
        "(dry run: journaled, never performed)",
        "1. ",
        "HELD: the removal cap (1/h) is reached; the run stops here",
    ] {
        assert!(out.contains(want), "missing {want:?} in\n{out}");
    }

    let converged = Plan {
        steps: vec![],
        link: None,
        desired: Desired::default(),
        ..p
    };
    let out = render::preview(&person, None, &[], &converged, true, false);
    assert!(
        out.contains("not known yet: planned from the event alone"),
        "{out}"
    );
    assert!(
        out.contains("desired: org_role=(none) workspaces=(none)"),
        "{out}"
    );
    assert!(out.contains("observed: {"), "{out}");
    assert!(out.contains("(none: already converged)"), "{out}");
    assert!(!out.contains("dry run") && !out.contains("link:"), "{out}");
}

#[test]
fn someone_no_rule_grants_anything_is_offboarded_and_told_why() {
    let obs = Observed {
        member: Some(user("user_1", "ada@x.com", OrgRole::Developer)),
        ..Default::default()
    };
    // Active, but no rule gives an organization role: offboarded like a leaver.
    let p = plan(
        Some("ada@x.com"),
        PersonStatus::Active,
        &Desired::default(),
        &obs,
        &ctx(),
    );
    assert_eq!(kinds(&p), vec!["remove_user"]);
    assert!(
        p[0].reason.starts_with("no rule grants access"),
        "{}",
        p[0].reason
    );
    let p = plan(
        Some("ada@x.com"),
        PersonStatus::Departed,
        &Desired::default(),
        &obs,
        &ctx(),
    );
    assert!(
        p[0].reason.starts_with("person departed"),
        "{}",
        p[0].reason
    );
}

#[test]
fn the_api_key_policy_decides_what_a_leavers_keys_become() {
    let mut obs = Observed {
        member: Some(user("user_1", "ada@x.com", OrgRole::Developer)),
        ..Default::default()
    };
    obs.api_keys = vec![
        serde_json::from_value(json!({
            "id": "apikey_1", "type": "api_key", "name": "ci", "created_at": Utc::now(),
            "created_by": { "id": "user_1", "type": "user" }, "status": "active",
        }))
        .unwrap_or_else(|e| panic!("key fixture: {e}")),
    ];
    let status_with = |api_keys| {
        let c = PlanContext { api_keys, ..ctx() };
        plan(
            Some("ada@x.com"),
            PersonStatus::Departed,
            &Desired::default(),
            &obs,
            &c,
        )
        .iter()
        .find_map(|p| match &p.step {
            Step::DeactivateApiKey { status, .. } => Some(status.clone()),
            _ => None,
        })
    };
    assert_eq!(
        status_with(ApiKeyPolicy::Deactivate).as_deref(),
        Some("inactive")
    );
    assert_eq!(
        status_with(ApiKeyPolicy::Archive).as_deref(),
        Some("archived")
    );
    assert_eq!(status_with(ApiKeyPolicy::Keep), None);
}

#[test]
fn a_member_gains_a_workspace_the_rules_now_grant() {
    let obs = Observed {
        member: Some(user("user_1", "ada@x.com", OrgRole::Developer)),
        ..Default::default()
    };
    let d = desired(OrgRole::Developer, &[("Eng", WorkspaceRole::WorkspaceUser)]);
    let p = plan(Some("ada@x.com"), PersonStatus::Active, &d, &obs, &ctx());
    assert_eq!(kinds(&p), vec!["add_workspace_member"]);
}
