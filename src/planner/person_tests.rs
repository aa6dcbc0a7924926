//! Unit tests for `plan_person`: what turns a planned call into a note for a human (a
//! protected address, an address or account that is someone else's, an endpoint the
//! organization lacks), where the removal cap stops a run, and workspace stand-ins. The
//! pipeline tests in `tests/it` cover the same rules end to end; these pin each condition.

use chrono::{DateTime, TimeZone as _, Utc};
use serde_json::json;
use uuid::Uuid;

use super::tests::user as member;
use super::*;
use crate::journal::{ActionRow, CapState, PersonRow};

fn at(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_800_000_000 + secs, 0)
        .single()
        .unwrap_or_default()
}

fn person(id: u128, status: PersonStatus, email: Option<&str>, created: i64) -> PersonRow {
    PersonRow {
        id: Uuid::from_u128(id),
        source: "hr".to_owned(),
        source_person_id: format!("E{id}"),
        email: email.map(str::to_owned),
        email_history: sqlx::types::Json(vec![]),
        attributes: json!({}),
        status,
        last_order_key: None,
        last_event_id: None,
        anthropic_user_id: None,
        desired: None,
        created_at: at(created),
        updated_at: at(created),
    }
}

fn policy(protected: &[&str]) -> Policy {
    Policy {
        api_keys: ApiKeyPolicy::Deactivate,
        remove_user: true,
        protected_emails: protected.iter().map(|e| fold_email(e)).collect(),
        max_removals_per_hour: 5,
    }
}

fn managed() -> BTreeMap<String, Option<String>> {
    BTreeMap::from([("Eng".to_owned(), Some("wrkspc_eng".to_owned()))])
}

/// A departed member of Eng: the plan removes the membership, then the member.
fn leaver() -> Inputs {
    let mut observed = Observed {
        member: Some(member("user_1", "ada@x.com", OrgRole::Developer)),
        ..Observed::default()
    };
    observed.memberships.insert(
        "wrkspc_eng".to_owned(),
        ("Eng".to_owned(), WorkspaceRole::WorkspaceUser),
    );
    let mut p = person(1, PersonStatus::Departed, Some("ada@x.com"), 10);
    p.anthropic_user_id = Some("user_1".to_owned());
    Inputs {
        person: p,
        address_holder: None,
        desired: Desired::default(),
        observed,
        account_owner: None,
        managed: managed(),
        cap: CapState {
            cap: 5,
            others_this_hour: 0,
            already_admitted: false,
        },
        unfinished: vec![],
        workspace: None,
        unsupported: BTreeMap::new(),
    }
}

/// An active person not linked yet, whose address finds member `user_9` (a user, to be
/// made a developer and added to Eng).
fn joiner_found_by_address() -> Inputs {
    let mut i = leaver();
    i.person = person(2, PersonStatus::Active, Some("bo@x.com"), 20);
    i.observed = Observed {
        member: Some(member("user_9", "bo@x.com", OrgRole::User)),
        ..Observed::default()
    };
    i.desired = Desired {
        org_role: Some(OrgRole::Developer),
        org_role_rule: Some("eng".to_owned()),
        workspaces: BTreeMap::from([(
            "Eng".to_owned(),
            (WorkspaceRole::WorkspaceDeveloper, "eng".to_owned()),
        )]),
        explanation: Value::Null,
    };
    i
}

fn kinds(plan: &Plan) -> Vec<&'static str> {
    plan.steps.iter().map(|p| p.step.kind().as_str()).collect()
}

fn manual_reason(plan: &Plan) -> &str {
    match plan.steps.as_slice() {
        [
            Planned {
                step: Step::ManualAction { reason, .. },
                ..
            },
        ] => reason,
        other => panic!("expected one manual action, got {other:?}"),
    }
}

fn action(kind: ActionKind, params: Value, status: ActionStatus) -> ActionRow {
    ActionRow {
        id: Uuid::from_u128(77),
        seq: 1,
        person_id: Uuid::from_u128(1),
        event_id: None,
        kind,
        params,
        rule: None,
        reason: String::new(),
        status,
        attempts: 0,
        next_attempt_at: None,
        lease_owner: None,
        lease_until: None,
        request: None,
        response_status: None,
        request_id: None,
        outcome: None,
        error: None,
        created_at: at(0),
        started_at: None,
        finished_at: None,
        updated_at: at(0),
        resolved_at: None,
        resolved_by: None,
        resolution: None,
        person_email: None,
        person_source_id: None,
    }
}

fn holds(plan: &Plan) -> Vec<(&'static str, Option<&str>)> {
    plan.steps
        .iter()
        .map(|p| (p.step.kind().as_str(), p.hold.as_deref()))
        .collect()
}

#[test]
fn an_unprotected_leaver_loses_membership_then_the_account() {
    let plan = plan_person(&leaver(), &policy(&["boss@x.com"]));
    assert_eq!(kinds(&plan), ["remove_workspace_member", "remove_user"]);
    assert!(!plan.context.protected);
    assert_eq!(plan.link, None, "already linked to user_1");
}

#[test]
fn protection_follows_the_account_and_the_invite_not_only_the_hr_address() {
    // HR changed the address; the account keeps the protected one (any case).
    let mut i = leaver();
    i.person.email = Some("ada.new@x.com".to_owned());
    i.observed.member = Some(member("user_1", "Ada@X.com", OrgRole::Developer));
    let plan = plan_person(&i, &policy(&["ada@x.com"]));
    assert!(plan.context.protected);
    assert_eq!(kinds(&plan), ["needs_manual_action"]);

    // Only the pending invite carries the protected address.
    let mut i = leaver();
    i.person.email = None;
    i.observed = Observed {
        pending_invite: Some(
            serde_json::from_value(json!({
                "id": "invite_1", "type": "invite", "email": "ADA@x.com", "role": "user",
                "status": "pending", "invited_at": at(0), "expires_at": at(86_400),
                "accepted_at": null, "rbac_group_ids": [],
            }))
            .unwrap_or_else(|e| panic!("invite fixture: {e}")),
        ),
        ..Observed::default()
    };
    let plan = plan_person(&i, &policy(&["ada@x.com"]));
    assert!(plan.context.protected);
    assert_eq!(kinds(&plan), ["needs_manual_action"]);
}

#[test]
fn an_account_found_by_address_is_linked_before_acting() {
    let plan = plan_person(&joiner_found_by_address(), &policy(&[]));
    assert_eq!(plan.link.as_deref(), Some("user_9"));
    assert_eq!(kinds(&plan), ["update_user_role", "add_workspace_member"]);
}

#[test]
fn the_first_holder_of_an_address_keeps_it_and_a_later_one_yields() {
    // The holder was created earlier: this person yields.
    let mut i = joiner_found_by_address();
    i.address_holder = Some(person(3, PersonStatus::Active, Some("bo@x.com"), 5));
    let plan = plan_person(&i, &policy(&[]));
    assert!(
        manual_reason(&plan).contains("who had it first"),
        "{:?}",
        plan.steps
    );
    assert_eq!(plan.link, None);
    assert_eq!(plan.steps[0].reason, "address in use by another person");

    // The holder was created later: this person keeps the address and acts.
    i.address_holder = Some(person(3, PersonStatus::Active, Some("bo@x.com"), 30));
    let plan = plan_person(&i, &policy(&[]));
    assert_eq!(kinds(&plan), ["update_user_role", "add_workspace_member"]);

    // Created in the same instant: the smaller id goes first, each way round.
    i.address_holder = Some(person(1, PersonStatus::Active, Some("bo@x.com"), 20));
    assert_eq!(
        kinds(&plan_person(&i, &policy(&[]))),
        ["needs_manual_action"]
    );
    i.address_holder = Some(person(3, PersonStatus::Active, Some("bo@x.com"), 20));
    assert_eq!(
        kinds(&plan_person(&i, &policy(&[]))),
        ["update_user_role", "add_workspace_member"]
    );
    // The very same record is not "first" over itself.
    i.address_holder = Some(person(2, PersonStatus::Active, Some("bo@x.com"), 20));
    assert_eq!(
        kinds(&plan_person(&i, &policy(&[]))),
        ["update_user_role", "add_workspace_member"]
    );
}

#[test]
fn a_leaver_or_a_linked_person_never_yields_an_address() {
    // Departed: the offboarding still runs on the person's own account.
    let mut i = leaver();
    i.address_holder = Some(person(3, PersonStatus::Active, Some("ada@x.com"), 0));
    assert_eq!(
        kinds(&plan_person(&i, &policy(&[]))),
        ["remove_workspace_member", "remove_user"]
    );
    // Linked to an account of their own: the address is not what identifies them.
    let mut i = joiner_found_by_address();
    i.person.anthropic_user_id = Some("user_9".to_owned());
    i.address_holder = Some(person(3, PersonStatus::Active, Some("bo@x.com"), 0));
    let plan = plan_person(&i, &policy(&[]));
    assert_eq!(kinds(&plan), ["update_user_role", "add_workspace_member"]);
    assert_eq!(plan.link, None, "already linked");
}

#[test]
fn an_account_linked_to_someone_else_is_never_acted_on() {
    let mut i = joiner_found_by_address();
    i.account_owner = Some(person(4, PersonStatus::Departed, Some("bo@x.com"), 0));
    let plan = plan_person(&i, &policy(&[]));
    let reason = manual_reason(&plan);
    assert!(
        reason.contains("the account user_9") && reason.contains("departed"),
        "{reason}"
    );
    assert_eq!(plan.link, None);
    match &plan.steps[0].step {
        Step::ManualAction { would_do, .. } => assert_eq!(
            would_do,
            &[
                "change user_9 role user -> developer".to_owned(),
                "add to Eng as workspace_developer".to_owned()
            ]
        ),
        other => panic!("{other:?}"),
    }
}

#[test]
fn steps_needing_a_missing_endpoint_become_one_note_per_feature() {
    let mut i = leaver();
    i.unsupported = BTreeMap::from([(
        "users".to_owned(),
        "Claude Platform on AWS has no users endpoints".to_owned(),
    )]);
    let plan = plan_person(&i, &policy(&[]));
    assert_eq!(
        kinds(&plan),
        ["remove_workspace_member", "needs_manual_action"]
    );
    match &plan.steps[1].step {
        Step::ManualAction { reason, would_do } => {
            assert!(
                reason.contains("users endpoints") && reason.contains("Claude Platform on AWS"),
                "{reason}"
            );
            assert_eq!(would_do, &["remove member user_1 (ada@x.com)".to_owned()]);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        plan.steps[1].reason,
        "users not offered by this organization"
    );
}

fn stand_in(ws: WorkspaceUse, status: PersonStatus) -> Inputs {
    let mut i = leaver();
    i.person = person(5, status, None, 0);
    i.person.source = WORKSPACE_STAND_IN.to_owned();
    i.observed = Observed::default();
    i.workspace = Some(ws);
    i
}

fn unused_ws() -> WorkspaceUse {
    WorkspaceUse {
        id: "wrkspc_old".to_owned(),
        name: Some("Old".to_owned()),
        archived: false,
        members: 0,
        active_keys: 0,
        named_by_rules: false,
    }
}

#[test]
fn an_unused_workspace_is_archived_only_while_every_condition_holds() {
    let plan = plan_person(&stand_in(unused_ws(), PersonStatus::Departed), &policy(&[]));
    assert_eq!(
        plan.steps.iter().map(|p| &p.step).collect::<Vec<_>>(),
        [&Step::ArchiveWorkspace {
            workspace_id: "wrkspc_old".to_owned(),
            workspace: "Old".to_owned()
        }]
    );
    assert_eq!(
        plan.steps[0].rule.as_deref(),
        Some("hygiene.archive_unused_workspaces")
    );

    let not = |change: &dyn Fn(&mut WorkspaceUse), status: PersonStatus| {
        let mut ws = unused_ws();
        change(&mut ws);
        plan_person(&stand_in(ws, status), &policy(&[])).steps
    };
    assert!(not(&|_| {}, PersonStatus::Active).is_empty(), "not decided");
    assert!(not(&|w| w.archived = true, PersonStatus::Departed).is_empty());
    assert!(not(&|w| w.members = 1, PersonStatus::Departed).is_empty());
    assert!(not(&|w| w.active_keys = 1, PersonStatus::Departed).is_empty());
    assert!(not(&|w| w.named_by_rules = true, PersonStatus::Departed).is_empty());
    assert!(not(&|w| w.name = None, PersonStatus::Departed).is_empty());
}

#[test]
fn archiving_where_workspaces_cannot_be_managed_is_a_note() {
    let mut i = stand_in(unused_ws(), PersonStatus::Departed);
    i.unsupported = BTreeMap::from([("workspaces".to_owned(), "not offered".to_owned())]);
    let plan = plan_person(&i, &policy(&[]));
    assert_eq!(kinds(&plan), ["needs_manual_action"]);
}

#[test]
fn the_cap_holds_the_first_destructive_step_and_nothing_before_it() {
    // A mover who also leaves a managed workspace: the role change is not destructive.
    let mut i = joiner_found_by_address();
    i.person.anthropic_user_id = Some("user_9".to_owned());
    i.desired.workspaces.clear();
    i.observed.memberships.insert(
        "wrkspc_eng".to_owned(),
        ("Eng".to_owned(), WorkspaceRole::WorkspaceUser),
    );
    i.cap.others_this_hour = 5;
    let plan = plan_person(&i, &policy(&[]));
    let h = holds(&plan);
    assert_eq!(h[0], ("update_user_role", None));
    assert_eq!(h[1].0, "remove_workspace_member");
    assert!(
        h[1].1
            .is_some_and(|m| m.contains("removal cap would hold it")),
        "{h:?}"
    );

    // Under the cap nothing is held.
    i.cap.others_this_hour = 4;
    assert!(
        holds(&plan_person(&i, &policy(&[])))
            .iter()
            .all(|(_, h)| h.is_none())
    );
}

#[test]
fn a_held_action_stops_the_run_until_released_and_an_admitted_one_is_never_held_again() {
    let base = leaver();
    let first = plan_person(&base, &policy(&[]));
    let (kind, params) = (first.steps[0].step.kind(), first.steps[0].step.params());

    // The operator has not released it: the run stops there, whatever the cap says.
    let mut i = leaver();
    i.unfinished = vec![action(kind, params.clone(), ActionStatus::Held)];
    let plan = plan_person(&i, &policy(&[]));
    assert_eq!(
        holds(&plan),
        [
            (
                "remove_workspace_member",
                Some(
                    "held by the removal cap until an operator releases action 00000000-0000-0000-0000-00000000004d"
                )
            ),
            ("remove_user", None)
        ]
    );

    // A held action of the same kind for something else is not this step.
    let mut i = leaver();
    i.unfinished = vec![action(
        kind,
        json!({ "workspace_id": "other" }),
        ActionStatus::Held,
    )];
    assert!(
        holds(&plan_person(&i, &policy(&[])))
            .iter()
            .all(|(_, h)| h.is_none())
    );
    // Nor is a held action with these parameters but another kind.
    let mut i = leaver();
    i.unfinished = vec![action(
        ActionKind::RemoveUser,
        params.clone(),
        ActionStatus::Held,
    )];
    assert!(
        holds(&plan_person(&i, &policy(&[])))
            .iter()
            .all(|(_, h)| h.is_none())
    );

    // Released, or already started: admitted, so the cap does not hold that step. (The
    // loader then also reports the person as admitted, which lets the later steps through.)
    for (status, started) in [
        (ActionStatus::Released, None),
        (ActionStatus::Pending, Some(at(1))),
    ] {
        let mut i = leaver();
        i.cap.others_this_hour = 99;
        let mut row = action(kind, params.clone(), status);
        row.started_at = started;
        i.unfinished = vec![row];
        assert_eq!(
            holds(&plan_person(&i, &policy(&[])))[0],
            ("remove_workspace_member", None),
            "{status:?}"
        );
        i.cap.already_admitted = true;
        assert!(
            holds(&plan_person(&i, &policy(&[])))
                .iter()
                .all(|(_, h)| h.is_none()),
            "{status:?}"
        );
    }
    // Pending and never started: not admitted yet, so the cap applies.
    let mut i = leaver();
    i.cap.others_this_hour = 99;
    i.unfinished = vec![action(kind, params, ActionStatus::Pending)];
    assert!(holds(&plan_person(&i, &policy(&[])))[0].1.is_some());
}

#[test]
fn each_step_names_the_part_of_the_admin_api_it_needs() {
    let s = String::new;
    let cases = [
        (
            Step::CreateInvite {
                email: s(),
                role: s(),
            },
            Some("invites"),
        ),
        (
            Step::WithdrawInvite {
                invite_id: s(),
                email: s(),
            },
            Some("invites"),
        ),
        (
            Step::WaitForAcceptance {
                email: s(),
                workspaces: vec![],
            },
            Some("invites"),
        ),
        (
            Step::UpdateUserRole {
                user_id: s(),
                from: s(),
                to: s(),
            },
            Some("users"),
        ),
        (
            Step::RemoveUser {
                user_id: s(),
                email: s(),
            },
            Some("users"),
        ),
        (
            Step::AddWorkspaceMember {
                workspace_id: s(),
                workspace: s(),
                user_id: s(),
                role: s(),
            },
            Some("workspace_members"),
        ),
        (
            Step::UpdateWorkspaceMember {
                workspace_id: s(),
                workspace: s(),
                user_id: s(),
                from: s(),
                to: s(),
            },
            Some("workspace_members"),
        ),
        (
            Step::RemoveWorkspaceMember {
                workspace_id: s(),
                workspace: s(),
                user_id: s(),
            },
            Some("workspace_members"),
        ),
        (
            Step::DeactivateApiKey {
                key_id: s(),
                name: s(),
                status: s(),
            },
            Some("api_keys"),
        ),
        (
            Step::ArchiveWorkspace {
                workspace_id: s(),
                workspace: s(),
            },
            Some("workspaces"),
        ),
        (
            Step::ManualAction {
                reason: s(),
                would_do: vec![],
            },
            None,
        ),
    ];
    for (step, feature) in cases {
        assert_eq!(step.feature(), feature, "{step:?}");
    }
}

#[test]
fn a_journaled_step_starts_in_the_status_its_kind_and_the_mode_give() {
    let manual = Step::ManualAction {
        reason: "x".to_owned(),
        would_do: vec![],
    };
    let wait = Step::WaitForAcceptance {
        email: "a@x.com".to_owned(),
        workspaces: vec!["Eng".to_owned()],
    };
    let call = Step::RemoveUser {
        user_id: "user_1".to_owned(),
        email: "a@x.com".to_owned(),
    };
    for dry_run in [false, true] {
        assert_eq!(
            Plan::initial_status(&manual, dry_run),
            ActionStatus::NeedsManualAction
        );
        assert_eq!(Plan::initial_status(&wait, dry_run), ActionStatus::Waiting);
    }
    assert_eq!(Plan::initial_status(&call, true), ActionStatus::DryRun);
    assert_eq!(Plan::initial_status(&call, false), ActionStatus::Pending);
    assert_eq!(
        wait.describe(),
        "wait for invite acceptance before adding to Eng"
    );
    assert_eq!(manual.describe(), "needs manual action: x");
}
