//! Every documented `error_code` (§14), the 4xx rules of §11 and credential/version failures
//! reach the client typed, with the call log showing how many requests were sent.

use std::time::Duration;

use anyhow::Context;
use keycard::admin_api::*;
use keycard::admin_sim::Fault;
use serde_json::{Value, json};

use crate::common::sim::{Sim, api_failure, console, failed, str_field};
use crate::common::{ADMIN_KEY, exact_retry};

/// Asserts a final (not retried) 400 with the given code, and that the simulator logged the
/// same request-id and code.
fn assert_final_400(s: &Sim, err: &ApiError, code: Option<ErrorCode>) {
    assert_eq!(err.status, 400, "{err}");
    assert_eq!(
        err.error_type,
        Some(ErrorType::InvalidRequestError),
        "{err}"
    );
    assert_eq!(err.error_code, code, "{err}");
    assert_eq!(err.attempts, 1, "{err}");
    assert!(!err.is_retryable(), "{err}");
    let calls = s.sim.calls();
    let logged = calls
        .iter()
        .find(|c| Some(c.request_id.as_str()) == err.request_id.as_deref());
    let logged = logged.map(|c| (c.status, c.error_code));
    assert_eq!(
        logged,
        Some((400, code.as_ref().map(ErrorCode::as_str))),
        "{err}"
    );
}

#[tokio::test]
async fn invite_create_error_codes() -> anyhow::Result<()> {
    let s = Sim::start(json!({
        "users": [{"email": "root@acme.test", "role": "admin"}],
        "invites": [{"email": "pending@acme.test", "role": "user"}],
        "settings": {"unverified_email_domains": ["fresh.test"]}
    }))
    .await?;
    let invite = |email: &str| {
        let client = s.client.clone();
        let email = email.to_owned();
        async move {
            client
                .create_invite(&CreateInvite::new(email, OrgRole::Developer))
                .await
        }
    };

    // The goal may already be met: re-read, don't fail.
    for (email, code) in [
        ("root@acme.test", ErrorCode::AlreadyMember),
        ("ROOT@Acme.Test", ErrorCode::AlreadyMember),
        ("pending@acme.test", ErrorCode::InviteAlreadyExists),
        ("Pending@ACME.test", ErrorCode::InviteAlreadyExists),
    ] {
        let err = failed(invite(email).await)?;
        assert!(err.suggests_reread(), "{email}: {err}");
        assert!(!err.outcome_unknown(), "{email}");
        let api = err.api().context("api error")?;
        assert_final_400(&s, api, Some(code));
    }

    let err = api_failure(invite("new@fresh.test").await)?;
    assert_final_400(
        &s,
        &err,
        Some(ErrorCode::CannotInviteEmailsWithUnverifiedDomains),
    );

    s.settings(json!({"allowed_email_domains": ["acme.test"]}))?;
    let err = failed(invite("someone@elsewhere.test").await)?;
    assert!(!err.suggests_reread());
    assert_final_400(
        &s,
        err.api().context("api")?,
        Some(ErrorCode::EmailDomainNotAllowed),
    );

    // Pending invites count towards the member limit: 1 member + 1 pending + 1 new = 3.
    s.settings(json!({"org_member_limit": 3}))?;
    invite("third@acme.test").await?;
    let err = api_failure(invite("fourth@acme.test").await)?;
    assert_final_400(&s, &err, Some(ErrorCode::OrgMemberLimitExceeded));

    // `admin` can never be invited; an address must look like one.
    let admin = api_failure(
        s.client
            .create_invite(&CreateInvite::new("boss@acme.test", OrgRole::Admin))
            .await,
    )?;
    assert_final_400(&s, &admin, None);
    let not_email = api_failure(invite("not-an-address").await)?;
    assert_final_400(&s, &not_email, None);

    // Exactly one invite was created by all of the above.
    let pending: Vec<String> = s
        .state_list("invites")
        .iter()
        .map(|i| str_field(i, "email"))
        .collect();
    assert_eq!(pending, ["pending@acme.test", "third@acme.test"]);
    // Every failure was a single request.
    assert_eq!(s.calls_for("invites.create").len(), 10);
    Ok(())
}

#[tokio::test]
async fn cannot_remove_last_member() -> anyhow::Result<()> {
    let s =
        Sim::start(json!({"users": [{"email": "solo@acme.test", "role": "developer"}]})).await?;
    let solo = s.client.list_all_users(ListUsers::new()).await?;
    let err = api_failure(s.client.remove_user(&solo[0].id).await)?;
    assert_final_400(&s, &err, Some(ErrorCode::CannotRemoveLastMember));
    assert_eq!(s.state_list("users").len(), 1);
    Ok(())
}

#[tokio::test]
async fn concurrent_membership_change_is_retried_then_surfaced() -> anyhow::Result<()> {
    let s = console().await?;
    let client = s.unpaced(exact_retry())?;
    let leaver = s.add_user("leaver@acme.test", "developer");
    s.inject("users.delete", 409, 1)?;
    let reply = client.remove_user(&leaver).await?;
    assert_eq!(reply.value.id, leaver);
    assert_eq!(reply.meta.attempts, 2);
    assert_eq!(s.clock.slept(), [Duration::from_millis(500)]);
    let log: Vec<(u16, Option<&str>)> = s
        .calls_for("users.delete")
        .iter()
        .map(|c| (c.status, c.error_code))
        .collect();
    assert_eq!(
        log,
        [(409, Some("concurrent_membership_change")), (200, None)]
    );
    assert!(
        client
            .get_user(&leaver)
            .await
            .err()
            .is_some_and(|e| e.is_not_found())
    );

    // A conflict that outlasts the policy comes back typed and retryable, state untouched.
    let stuck = s.add_user("stuck@acme.test", "developer");
    s.inject("users.delete", 409, 4)?;
    let err = api_failure(client.remove_user(&stuck).await)?;
    assert_eq!(err.status, 409);
    assert_eq!(err.error_type, Some(ErrorType::ConflictError));
    assert_eq!(err.error_code, Some(ErrorCode::ConcurrentMembershipChange));
    assert_eq!(err.attempts, 4);
    assert!(err.is_retryable());
    assert!(client.get_user(&stuck).await.is_ok());
    Ok(())
}

#[tokio::test]
async fn workspace_member_limit_exceeded() -> anyhow::Result<()> {
    let s = console().await?;
    s.settings(json!({"workspace_member_limit": 1}))?;
    let ws = s
        .client
        .create_workspace(&CreateWorkspace::new("Tiny"))
        .await?
        .value;
    let a = s.add_user("a@acme.test", "user");
    let b = s.add_user("b@acme.test", "user");
    s.client
        .add_workspace_member(&ws.id, &a, &WorkspaceRole::WorkspaceUser)
        .await?;
    let err = api_failure(
        s.client
            .add_workspace_member(&ws.id, &b, &WorkspaceRole::WorkspaceUser)
            .await,
    )?;
    assert_final_400(&s, &err, Some(ErrorCode::WorkspaceMemberLimitExceeded));
    let members = s
        .client
        .list_all_workspace_members(ListWorkspaceMembers::new(&ws.id))
        .await?;
    assert_eq!(members.len(), 1);
    Ok(())
}

fn outcome_unknown_fault(count: u32, apply: bool) -> Fault {
    Fault {
        route: "invites.create".into(),
        status: 503,
        count,
        apply,
        retry_after: None,
    }
}

fn invites_for(s: &Sim, email: &str) -> Vec<Value> {
    s.state_list("invites")
        .into_iter()
        .filter(|i| str_field(i, "email") == email)
        .collect()
}

#[tokio::test]
async fn change_outcome_unknown_not_applied_resend_creates_once() -> anyhow::Result<()> {
    let s = console().await?;
    let client = s.unpaced(exact_retry())?;
    s.inject_fault(outcome_unknown_fault(1, false))?;
    let reply = client
        .create_invite(&CreateInvite::new("new@acme.test", OrgRole::Developer))
        .await?;
    assert_eq!(reply.meta.attempts, 2);
    let log: Vec<(u16, Option<&str>)> = s
        .calls_for("invites.create")
        .iter()
        .map(|c| (c.status, c.error_code))
        .collect();
    assert_eq!(log, [(503, Some("change_outcome_unknown")), (200, None)]);
    let stored = invites_for(&s, "new@acme.test");
    assert_eq!(stored.len(), 1);
    assert_eq!(str_field(&stored[0], "id"), reply.value.id);
    Ok(())
}

#[tokio::test]
async fn change_outcome_unknown_applied_resend_says_reread() -> anyhow::Result<()> {
    let s = console().await?;
    let client = s.unpaced(exact_retry())?;
    s.inject_fault(outcome_unknown_fault(1, true))?;
    let err = failed(
        client
            .create_invite(&CreateInvite::new("new@acme.test", OrgRole::Developer))
            .await,
    )?;
    // The first attempt saved the invite; the resend finds it. The client reports the final
    // answer, marked as the answer to a resend whose earlier attempt may have made the
    // change: re-read (until then the outcome is unknown); neither fail nor send again.
    assert_eq!(err.status(), Some(400));
    assert_eq!(err.error_code(), Some(&ErrorCode::InviteAlreadyExists));
    assert_eq!(err.attempts(), 2);
    assert_eq!(err.api().map(|a| a.earlier_outcome_unknown), Some(true));
    assert!(err.suggests_reread());
    assert!(err.outcome_unknown());
    assert!(!err.is_retryable());
    let log: Vec<(u16, Option<&str>)> = s
        .calls_for("invites.create")
        .iter()
        .map(|c| (c.status, c.error_code))
        .collect();
    assert_eq!(
        log,
        [
            (503, Some("change_outcome_unknown")),
            (400, Some("invite_already_exists"))
        ]
    );
    // Re-reading finds exactly one pending invite: the goal is met.
    let found = client
        .list_all_invites(ListInvites::new().email("new@acme.test"))
        .await?;
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].status, InviteStatus::Pending);
    assert_eq!(invites_for(&s, "new@acme.test").len(), 1);
    Ok(())
}

#[tokio::test]
async fn change_outcome_unknown_outlasting_retries_is_outcome_unknown() -> anyhow::Result<()> {
    let s = console().await?;
    let client = s.unpaced(exact_retry())?;
    s.inject_fault(outcome_unknown_fault(4, true))?;
    let err = failed(
        client
            .create_invite(&CreateInvite::new("new@acme.test", OrgRole::Developer))
            .await,
    )?;
    assert_eq!(err.status(), Some(503));
    assert_eq!(err.error_code(), Some(&ErrorCode::ChangeOutcomeUnknown));
    assert_eq!(err.attempts(), 4);
    // "Don't assume either way; send again later": outcome unknown and retryable.
    assert!(err.outcome_unknown());
    assert!(err.is_retryable());
    assert!(!err.suggests_reread());
    assert_eq!(s.calls_for("invites.create").len(), 4);
    assert_eq!(
        s.clock.slept(),
        [
            Duration::from_millis(500),
            Duration::from_secs(1),
            Duration::from_secs(2)
        ]
    );
    // Four sends, one invite: saved parts were not repeated.
    assert_eq!(invites_for(&s, "new@acme.test").len(), 1);
    // The caller's later resend gets the definitive answer.
    let later = failed(
        client
            .create_invite(&CreateInvite::new("new@acme.test", OrgRole::Developer))
            .await,
    )?;
    assert!(later.suggests_reread());
    Ok(())
}

fn applied_503(route: &str) -> Fault {
    Fault {
        route: route.into(),
        status: 503,
        count: 1,
        apply: true,
        retry_after: None,
    }
}

/// Asserts the answer to a resend whose first attempt made the change: a final refusal,
/// marked so the caller re-reads instead of reporting a failure.
fn assert_echo_of_earlier_success(err: &AdminApiError, status: u16) {
    assert_eq!(err.status(), Some(status), "{err}");
    assert_eq!(err.attempts(), 2, "{err}");
    assert_eq!(err.api().map(|a| a.earlier_outcome_unknown), Some(true));
    assert!(err.outcome_unknown(), "{err}");
    assert!(err.suggests_reread(), "{err}");
    assert!(!err.is_retryable(), "{err}");
}

#[tokio::test]
async fn change_outcome_unknown_then_a_refusal_means_reread() -> anyhow::Result<()> {
    let s = console().await?;
    let client = s.unpaced(exact_retry())?;
    let ws = client
        .create_workspace(&CreateWorkspace::new("Eng"))
        .await?
        .value;
    let leaver = s.add_user("leaver@acme.test", "developer");
    let joiner = s.add_user("joiner@acme.test", "developer");
    let invite = client
        .create_invite(&CreateInvite::new("maybe@acme.test", OrgRole::User))
        .await?
        .value;

    // Removal: the resend finds nobody (404).
    s.inject_fault(applied_503("users.delete"))?;
    let err = failed(client.remove_user(&leaver).await)?;
    assert!(err.is_not_found());
    assert_echo_of_earlier_success(&err, 404);
    assert!(
        !s.state_list("users")
            .iter()
            .any(|u| str_field(u, "id") == leaver)
    );

    // Membership add: the resend is a duplicate add (400 without an error code).
    s.inject_fault(applied_503("workspace_members.create"))?;
    let err = failed(
        client
            .add_workspace_member(&ws.id, &joiner, &WorkspaceRole::WorkspaceUser)
            .await,
    )?;
    assert_eq!(err.error_code(), None);
    assert_echo_of_earlier_success(&err, 400);
    assert_eq!(
        client
            .get_workspace_member(&ws.id, &joiner)
            .await?
            .value
            .workspace_role,
        WorkspaceRole::WorkspaceUser
    );

    // Invite withdrawal: the resend finds the invite no longer pending (400).
    s.inject_fault(applied_503("invites.delete"))?;
    let err = failed(client.delete_invite(&invite.id).await)?;
    assert_echo_of_earlier_success(&err, 400);
    assert_eq!(
        client.get_invite(&invite.id).await?.value.status,
        InviteStatus::Deleted
    );

    // Archive: the resend finds it archived (400).
    s.inject_fault(applied_503("workspaces.archive"))?;
    let err = failed(client.archive_workspace(&ws.id).await)?;
    assert_echo_of_earlier_success(&err, 400);
    assert!(client.get_workspace(&ws.id).await?.value.is_archived());

    // Without an unknown outcome before it, the same refusal is a plain final error.
    let again = failed(client.archive_workspace(&ws.id).await)?;
    assert_eq!(again.status(), Some(400));
    assert!(!again.outcome_unknown());
    assert!(!again.suggests_reread());
    let gone = failed(client.remove_user(&leaver).await)?;
    assert!(gone.is_not_found() && !gone.outcome_unknown() && !gone.suggests_reread());
    Ok(())
}

#[tokio::test]
async fn change_outcome_unknown_on_workspace_create_does_not_duplicate() -> anyhow::Result<()> {
    let s = console().await?;
    let client = s.unpaced(exact_retry())?;
    let request = CreateWorkspace::new("Eng").tag("team", "eng");
    s.inject_fault(applied_503("workspaces.create"))?;
    // §14: the resend must not repeat what the first attempt saved.
    let reply = client.create_workspace(&request).await?;
    assert_eq!(reply.meta.attempts, 2);
    let listed = client.list_all_workspaces(ListWorkspaces::new()).await?;
    assert_eq!(listed, std::slice::from_ref(&reply.value));
    assert_eq!(s.state_list("workspaces").len(), 2, "Default and Eng");
    let log: Vec<(u16, Option<&str>)> = s
        .calls_for("workspaces.create")
        .iter()
        .map(|c| (c.status, c.error_code))
        .collect();
    assert_eq!(log, [(503, Some("change_outcome_unknown")), (200, None)]);
    // A later, separate create is a new workspace: names are not unique.
    let second = client.create_workspace(&request).await?.value;
    assert_ne!(second.id, reply.value.id);
    assert_eq!(
        client
            .list_all_workspaces(ListWorkspaces::new())
            .await?
            .len(),
        2
    );
    Ok(())
}

#[tokio::test]
async fn unknown_ids_are_typed_404s() -> anyhow::Result<()> {
    let s = console().await?;
    let ws = s
        .client
        .create_workspace(&CreateWorkspace::new("Eng"))
        .await?
        .value;
    let c = &s.client;
    let role = WorkspaceRole::WorkspaceUser;
    let errors = [
        failed(c.get_user("user_01missing").await)?,
        failed(c.update_user_role("user_01missing", &OrgRole::User).await)?,
        failed(c.remove_user("user_01missing").await)?,
        failed(c.sign_out_user("user_01missing").await)?,
        failed(c.get_invite("invite_01missing").await)?,
        failed(c.delete_invite("invite_01missing").await)?,
        failed(c.get_workspace("wrkspc_01missing").await)?,
        failed(
            c.update_workspace("wrkspc_01missing", &UpdateWorkspace::new().name("x"))
                .await,
        )?,
        failed(c.archive_workspace("wrkspc_01missing").await)?,
        failed(
            c.list_workspace_members(&ListWorkspaceMembers::new("wrkspc_01missing"))
                .await,
        )?,
        failed(
            c.add_workspace_member("wrkspc_01missing", "user_01x", &role)
                .await,
        )?,
        failed(c.get_workspace_member(&ws.id, "user_01missing").await)?,
        failed(
            c.update_workspace_member(&ws.id, "user_01missing", &role)
                .await,
        )?,
        failed(c.remove_workspace_member(&ws.id, "user_01missing").await)?,
        failed(c.get_api_key("apikey_01missing").await)?,
        failed(
            c.update_api_key("apikey_01missing", &UpdateApiKey::new().name("x"))
                .await,
        )?,
    ];
    let mut enrolled_400 = 0;
    for err in &errors {
        // Sign-out in a Console org fails on enrolment before the lookup.
        if err.error_code() == Some(&ErrorCode::OrganizationNotEnrolledInBeta) {
            enrolled_400 += 1;
            continue;
        }
        assert!(err.is_not_found(), "{err}");
        assert_eq!(err.error_type(), Some(&ErrorType::NotFoundError), "{err}");
        assert_eq!(err.attempts(), 1, "{err}");
        assert!(!err.is_retryable(), "{err}");
        assert!(!err.outcome_unknown() && !err.suggests_reread(), "{err}");
        assert!(err.request_id().is_some_and(|id| id.starts_with("req_")));
    }
    assert_eq!(enrolled_400, 1);
    // One request each, nothing retried.
    let sent = s.sim.calls().len();
    assert_eq!(sent, 1 + errors.len());

    // Enterprise orgs have no workspaces or API keys: those paths are 404.
    let ent = Sim::start(json!({
        "organization": {"kind": "enterprise"},
        "users": [{"email": "owner@big.test", "role": "primary_owner"}]
    }))
    .await?;
    assert!(
        ent.client
            .list_workspaces(&ListWorkspaces::new())
            .await
            .err()
            .is_some_and(|e| e.is_not_found())
    );
    assert!(
        ent.client
            .list_api_keys(&ListApiKeys::new())
            .await
            .err()
            .is_some_and(|e| e.is_not_found())
    );
    Ok(())
}

#[tokio::test]
async fn administrative_members_cannot_be_assigned_changed_or_removed() -> anyhow::Result<()> {
    let s = console().await?;
    let root = s.client.list_all_users(ListUsers::new()).await?[0]
        .id
        .clone();
    let owner = s.add_user("owner@acme.test", "owner");
    let dev = s.add_user("dev@acme.test", "developer");
    let biller = s.add_user("money@acme.test", "billing");

    for err in [
        api_failure(s.client.update_user_role(&dev, &OrgRole::Admin).await)?,
        api_failure(s.client.update_user_role(&dev, &OrgRole::Owner).await)?,
        api_failure(s.client.update_user_role(&root, &OrgRole::Developer).await)?,
        api_failure(s.client.update_user_role(&owner, &OrgRole::User).await)?,
        api_failure(s.client.remove_user(&root).await)?,
        api_failure(s.client.remove_user(&owner).await)?,
    ] {
        assert_final_400(&s, &err, None);
    }
    let roles: Vec<(String, String)> = s
        .state_list("users")
        .iter()
        .map(|u| (str_field(u, "email"), str_field(u, "role")))
        .collect();
    assert_eq!(
        roles,
        [
            ("root@acme.test".to_owned(), "admin".to_owned()),
            ("owner@acme.test".into(), "owner".into()),
            ("dev@acme.test".into(), "developer".into()),
            ("money@acme.test".into(), "billing".into()),
        ]
    );

    // In a workspace: admins can't be changed or removed; billing may only become
    // workspace_admin.
    let ws = s
        .client
        .create_workspace(&CreateWorkspace::new("Eng"))
        .await?
        .value;
    s.sim.add_member(&ws.id, &root, "workspace_admin");
    s.sim.add_member(&ws.id, &biller, "workspace_user");
    for err in [
        api_failure(
            s.client
                .update_workspace_member(&ws.id, &root, &WorkspaceRole::WorkspaceUser)
                .await,
        )?,
        api_failure(s.client.remove_workspace_member(&ws.id, &root).await)?,
        api_failure(
            s.client
                .update_workspace_member(&ws.id, &biller, &WorkspaceRole::WorkspaceDeveloper)
                .await,
        )?,
        api_failure(s.client.remove_workspace_member(&ws.id, &biller).await)?,
    ] {
        assert_final_400(&s, &err, None);
    }
    let raised = s
        .client
        .update_workspace_member(&ws.id, &biller, &WorkspaceRole::WorkspaceAdmin)
        .await?;
    assert_eq!(raised.value.workspace_role, WorkspaceRole::WorkspaceAdmin);
    Ok(())
}

#[tokio::test]
async fn credentials_and_versions() -> anyhow::Result<()> {
    let s = Sim::start(json!({
        "admin_keys": [ADMIN_KEY],
        "oauth_tokens": [
            {"token": "tok-admin", "scopes": ["org:admin"]},
            {"token": "tok-reader", "scopes": ["read:members"]}
        ],
        "users": [{"email": "root@acme.test", "role": "admin"}]
    }))
    .await?;
    let with = |credential: Credential| s.client(move |c| AdminClientConfig { credential, ..c });

    // Both credential kinds that carry admin rights work.
    with(Credential::oauth_token("tok-admin"))?
        .get_organization()
        .await?;
    s.client.get_organization().await?;

    let cases = [
        (
            Credential::admin_key("sk-ant-admin01-not-listed"),
            401,
            ErrorType::AuthenticationError,
        ),
        (
            Credential::admin_key("garbage"),
            401,
            ErrorType::AuthenticationError,
        ),
        (
            Credential::admin_key("sk-ant-api03-a-workspace-key"),
            403,
            ErrorType::PermissionError,
        ),
        (
            Credential::oauth_token("tok-reader"),
            403,
            ErrorType::PermissionError,
        ),
        (
            Credential::oauth_token("tok-unknown"),
            401,
            ErrorType::AuthenticationError,
        ),
    ];
    for (credential, status, error_type) in cases {
        let kind = credential.kind();
        let before = s.sim.calls().len();
        let err = api_failure(with(credential)?.list_users(&ListUsers::new()).await)?;
        assert_eq!(
            (err.status, err.error_type.as_ref()),
            (status, Some(&error_type)),
            "{kind}: {err}"
        );
        assert!(AdminApiError::from(err.clone()).is_auth_error());
        assert!(!err.is_retryable());
        assert_eq!(err.attempts, 1);
        assert_eq!(s.sim.calls().len(), before + 1, "not retried");
    }
    // The org may answer non-admin keys with 401 instead.
    s.settings(json!({"non_admin_key_status": 401}))?;
    let err = api_failure(
        with(Credential::admin_key("sk-ant-api03-a-workspace-key"))?
            .get_organization()
            .await,
    )?;
    assert_eq!(err.status, 401);

    // Version: both documented values work; anything else is a typed 400.
    for version in ["2023-06-01", "2026-10-21"] {
        let c = s.client(|c| c.anthropic_version(version))?;
        assert_eq!(
            c.get_organization().await?.value.id,
            s.sim.organization_id()
        );
    }
    let err = api_failure(
        s.client(|c| c.anthropic_version("2099-01-01"))?
            .get_organization()
            .await,
    )?;
    assert_final_400(&s, &err, None);
    assert!(err.message.contains("2099-01-01"), "{err}");
    Ok(())
}

#[tokio::test]
async fn api_keys_decode_under_both_versions() -> anyhow::Result<()> {
    let s = Sim::start(json!({
        "users": [{"email": "root@acme.test", "role": "admin"}],
        "workspaces": [{"name": "Eng"}],
        "api_keys": [
            {"name": "eng", "workspace": "Eng", "created_by": "root@acme.test"},
            {"name": "default", "created_by": "root@acme.test"},
            {"name": "personal", "created_by": "root@acme.test", "personal": true}
        ]
    }))
    .await?;
    let eng = s.client.list_all_workspaces(ListWorkspaces::new()).await?[0]
        .id
        .clone();
    let default = s.sim.default_workspace_id();
    let root = s.client.list_all_users(ListUsers::new()).await?[0]
        .id
        .clone();
    let old = s.client(|c| c.anthropic_version("2023-06-01"))?;
    let new = s.client(|c| c.anthropic_version("2026-10-21"))?;

    let by_name = |keys: Vec<ApiKey>| -> Vec<(String, Option<String>, Option<String>)> {
        let mut out: Vec<_> = keys
            .into_iter()
            .map(|k| {
                let ws = k.workspace().map(str::to_owned);
                (k.name, k.workspace_id, ws)
            })
            .collect();
        out.sort();
        out
    };
    // 2023-06-01: the deprecated top-level field is there (null for Default/org keys).
    assert_eq!(
        by_name(old.list_all_api_keys(ListApiKeys::new()).await?),
        [
            ("default".to_owned(), None, Some(default.clone())),
            ("eng".to_owned(), Some(eng.clone()), Some(eng.clone())),
            ("personal".to_owned(), None, None),
        ]
    );
    // 2026-10-21: no top-level field; the scope still places every key.
    assert_eq!(
        by_name(new.list_all_api_keys(ListApiKeys::new()).await?),
        [
            ("default".to_owned(), None, Some(default.clone())),
            ("eng".to_owned(), None, Some(eng.clone())),
            ("personal".to_owned(), None, None),
        ]
    );
    let keys = new.list_all_api_keys(ListApiKeys::new()).await?;
    let personal = keys
        .iter()
        .find(|k| k.name == "personal")
        .context("personal")?;
    assert_eq!(personal.scope, Some(ApiKeyScope::Organization));
    assert_eq!(
        personal.principal.as_ref().and_then(Principal::user_id),
        Some(root.as_str())
    );
    let eng_key = keys.iter().find(|k| k.name == "eng").context("eng")?;
    assert_eq!(new.get_api_key(&eng_key.id).await?.value, *eng_key);
    assert_eq!(
        old.get_api_key(&eng_key.id)
            .await?
            .value
            .workspace_id
            .as_deref(),
        Some(eng.as_str())
    );

    // On the wire the 2026 shape really omits the field (not just null).
    let raw: Value = reqwest::Client::new()
        .get(format!(
            "{}/v1/organizations/api_keys/{}",
            s.running.base_url(),
            eng_key.id
        ))
        .header("x-api-key", ADMIN_KEY)
        .header("anthropic-version", "2026-10-21")
        .send()
        .await?
        .json()
        .await?;
    assert!(raw.get("workspace_id").is_none(), "{raw}");
    Ok(())
}
