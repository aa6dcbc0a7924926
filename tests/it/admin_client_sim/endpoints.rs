//! Every in-scope endpoint through the client, each outcome checked by a later read through
//! the API and/or the simulator's own state.

use std::collections::BTreeSet;

use anyhow::{Context, ensure};
use chrono::Duration;
use keycard::admin_api::*;
use keycard::clock::Clock;
use serde_json::json;

use crate::common::sim::{Sim, api_failure, console, str_field};
use crate::common::t0;

fn ids<T>(items: &[T], id: impl Fn(&T) -> &str) -> Vec<String> {
    items.iter().map(|x| id(x).to_owned()).collect()
}

#[tokio::test]
async fn organization_me_and_call_metadata() -> anyhow::Result<()> {
    let s = console().await?;
    let reply = s.client.get_organization().await?;
    assert_eq!(reply.value.name, "Acme");
    assert_eq!(reply.value.id, s.sim.organization_id());
    assert_eq!(reply.meta.status, 200);
    assert_eq!(reply.meta.attempts, 1);
    assert_eq!(
        reply.meta.organization_id.as_deref(),
        Some(s.sim.organization_id().as_str())
    );
    let calls = s.sim.calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].route, Some("organization.me"));
    assert_eq!(calls[0].method, "GET");
    assert_eq!(calls[0].path, "/v1/organizations/me");
    // The request-id the client reports is the one the simulator logged.
    assert_eq!(
        reply.meta.request_id.as_deref(),
        Some(calls[0].request_id.as_str())
    );
    Ok(())
}

#[tokio::test]
async fn users_list_get_update_and_remove() -> anyhow::Result<()> {
    let s = console().await?;
    let dev = s.add_user("Dev.Person@Acme.test", "developer");
    let plain = s.add_user("plain@acme.test", "user");
    let ws = s
        .client
        .create_workspace(&CreateWorkspace::new("Eng"))
        .await?
        .value;
    s.client
        .add_workspace_member(&ws.id, &dev, &WorkspaceRole::WorkspaceDeveloper)
        .await?;
    let dev_key = str_field(&s.sim.add_api_key("dev-ci", Some(&ws.id), Some(&dev)), "id");

    // Newest first.
    let page = s.client.list_users(&ListUsers::new()).await?.value;
    assert_eq!(
        ids(&page.data, |u| &u.email),
        ["plain@acme.test", "Dev.Person@Acme.test", "root@acme.test"]
    );
    assert!(!page.has_more);
    // Email filter: case-insensitive, +tag ignored.
    for query in [
        "dev.person@acme.test",
        "DEV.PERSON@ACME.TEST",
        "dev.person+onboarding@acme.test",
    ] {
        let found = s
            .client
            .list_users(&ListUsers::new().email(query))
            .await?
            .value;
        assert_eq!(ids(&found.data, |u| &u.id), [dev.as_str()], "{query}");
    }
    let nobody = s
        .client
        .list_users(&ListUsers::new().email("ghost@acme.test"))
        .await?
        .value;
    assert!(nobody.data.is_empty());
    // Roles filter, OR'ed.
    let by_role = s
        .client
        .list_users(&ListUsers::new().role(OrgRole::User).role(OrgRole::Admin))
        .await?
        .value;
    assert_eq!(
        ids(&by_role.data, |u| &u.email),
        ["plain@acme.test", "root@acme.test"]
    );

    let got = s.client.get_user(&dev).await?.value;
    assert_eq!(got.role, OrgRole::Developer);
    assert_eq!(got.added_at, t0());

    // Role update, seen by a later read and in the simulator's state.
    let updated = s
        .client
        .update_user_role(&dev, &OrgRole::ClaudeCodeUser)
        .await?;
    assert_eq!(updated.value.role, OrgRole::ClaudeCodeUser);
    assert_eq!(
        s.client.get_user(&dev).await?.value.role,
        OrgRole::ClaudeCodeUser
    );
    let state_role = s
        .state_list("users")
        .into_iter()
        .find(|u| str_field(u, "id") == dev)
        .map(|u| str_field(&u, "role"));
    assert_eq!(state_role.as_deref(), Some("claude_code_user"));

    // Removal: gone from get and list, and its workspace membership went with it.
    let removed = s.client.remove_user(&dev).await?.value;
    assert_eq!(removed.id, dev);
    assert!(
        s.client
            .get_user(&dev)
            .await
            .err()
            .is_some_and(|e| e.is_not_found())
    );
    let after = s.client.list_all_users(ListUsers::new()).await?;
    assert_eq!(ids(&after, |u| &u.id).len(), 2);
    assert!(!after.iter().any(|u| u.id == dev));
    assert!(
        s.client
            .list_all_workspace_members(ListWorkspaceMembers::new(&ws.id))
            .await?
            .is_empty()
    );
    assert!(s.state_list("workspace_members").is_empty());
    // Workspace keys the leaver created keep working (§11.12).
    let key = s.client.get_api_key(&dev_key).await?.value;
    assert_eq!(key.status, ApiKeyStatus::Active);
    assert_eq!(key.created_by_user(), Some(dev.as_str()));
    // A second removal is a 404.
    assert!(
        s.client
            .remove_user(&dev)
            .await
            .err()
            .is_some_and(|e| e.is_not_found())
    );
    assert!(s.client.get_user(&plain).await.is_ok());
    Ok(())
}

#[tokio::test]
async fn sign_out_works_for_enrolled_enterprise_orgs_only() -> anyhow::Result<()> {
    let ent = Sim::start(json!({
        "organization": {"name": "Big Co", "kind": "enterprise"},
        "users": [
            {"email": "owner@big.test", "role": "primary_owner"},
            {"email": "worker@big.test", "role": "user"}
        ],
    }))
    .await?;
    let users = ent.client.list_all_users(ListUsers::new()).await?;
    let worker = users
        .iter()
        .find(|u| u.email == "worker@big.test")
        .context("worker")?;
    let owner = users
        .iter()
        .find(|u| u.role == OrgRole::PrimaryOwner)
        .context("owner")?;
    let signed_out = ent.client.sign_out_user(&worker.id).await?;
    assert_eq!(signed_out.value, *worker);
    // Signing out does not remove the member.
    assert_eq!(ent.client.get_user(&worker.id).await?.value, *worker);
    let calls = ent.calls_for("users.sign_out");
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].status, 200);
    // The primary owner cannot be signed out (the SDK 2.14 error code for it is a 400).
    let refused = api_failure(ent.client.sign_out_user(&owner.id).await)?;
    assert_eq!(refused.status, 400);
    assert_eq!(refused.error_type, Some(ErrorType::InvalidRequestError));
    assert_eq!(
        refused.error_code.as_ref().map(|c| c.as_str()),
        Some("cannot_sign_out_primary_owner")
    );
    // Enterprise orgs assign `managed`, not Console roles.
    let managed = ent
        .client
        .update_user_role(&worker.id, &OrgRole::Managed)
        .await?;
    assert_eq!(managed.value.role, OrgRole::Managed);
    let console_role = api_failure(
        ent.client
            .update_user_role(&worker.id, &OrgRole::Developer)
            .await,
    )?;
    assert_eq!(console_role.status, 400);

    let s = console().await?;
    let dev = s.add_user("dev@acme.test", "developer");
    let err = api_failure(s.client.sign_out_user(&dev).await)?;
    assert_eq!(err.status, 400);
    assert_eq!(err.error_type, Some(ErrorType::InvalidRequestError));
    assert_eq!(
        err.error_code,
        Some(ErrorCode::OrganizationNotEnrolledInBeta)
    );
    assert_eq!(err.attempts, 1);
    assert!(!err.is_retryable());
    // ...until the org is enrolled.
    s.settings(json!({"sign_out_beta_enrolled": true}))?;
    assert_eq!(s.client.sign_out_user(&dev).await?.value.id, dev);
    Ok(())
}

#[tokio::test]
async fn invites_create_get_list_filter_and_delete() -> anyhow::Result<()> {
    let s = console().await?;
    let jane = s
        .client
        .create_invite(&CreateInvite::new(
            "Jane+Hiring@Example.com",
            OrgRole::Developer,
        ))
        .await?
        .value;
    assert_eq!(jane.status, InviteStatus::Pending);
    assert_eq!(jane.email, "Jane+Hiring@Example.com");
    assert_eq!(jane.invited_at, s.clock.now());
    assert_eq!(jane.expires_at, s.clock.now() + Duration::days(21));
    assert_eq!(jane.accepted_at, None);
    assert!(jane.rbac_group_ids.is_empty());
    let bob = s
        .client
        .create_invite(&CreateInvite::new("bob@example.com", OrgRole::User))
        .await?
        .value;
    let carol = s
        .client
        .create_invite(&CreateInvite::new("carol@example.com", OrgRole::Billing))
        .await?
        .value;
    let dan = s
        .client
        .create_invite(&CreateInvite::new(
            "dan@example.com",
            OrgRole::ClaudeCodeUser,
        ))
        .await?
        .value;
    assert_eq!(s.client.get_invite(&bob.id).await?.value, bob);

    // Carol accepts: she becomes a member with the invite's role.
    s.sim
        .accept_invite_for("carol@example.com")
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let carol_now = s.client.get_invite(&carol.id).await?.value;
    assert_eq!(carol_now.status, InviteStatus::Accepted);
    assert_eq!(carol_now.accepted_at, Some(s.clock.now()));
    let member = s
        .client
        .list_users(&ListUsers::new().email("carol@example.com"))
        .await?
        .value;
    assert_eq!(member.data.len(), 1);
    assert_eq!(member.data[0].role, OrgRole::Billing);

    // Dan's invite is withdrawn.
    let deleted = s.client.delete_invite(&dan.id).await?.value;
    assert_eq!(deleted.id, dan.id);
    assert_eq!(
        s.client.get_invite(&dan.id).await?.value.status,
        InviteStatus::Deleted
    );

    let list = |q: ListInvites| {
        let client = s.client.clone();
        async move {
            client
                .list_all_invites(q)
                .await
                .map(|all| ids(&all, |i| &i.id))
        }
    };
    // Newest first; withdrawn invites are not listed.
    assert_eq!(
        list(ListInvites::new()).await?,
        [carol.id.clone(), bob.id.clone(), jane.id.clone()]
    );
    // Email: case-insensitive and +tag-normalized, on both the query and the stored address.
    for query in [
        "jane@example.com",
        "JANE@EXAMPLE.COM",
        "jane+other@example.com",
        "Jane+Hiring@Example.com",
    ] {
        assert_eq!(
            list(ListInvites::new().email(query)).await?,
            [jane.id.as_str()],
            "{query}"
        );
    }
    assert!(
        list(ListInvites::new().email("janet@example.com"))
            .await?
            .is_empty()
    );
    // Roles OR'ed; statuses OR'ed; different filters AND'ed.
    assert_eq!(
        list(
            ListInvites::new()
                .role(OrgRole::User)
                .role(OrgRole::Billing)
        )
        .await?,
        [carol.id.clone(), bob.id.clone()]
    );
    assert_eq!(
        list(ListInvites::new().status(InviteStatus::Accepted)).await?,
        [carol.id.as_str()]
    );
    assert_eq!(
        list(
            ListInvites::new()
                .status(InviteStatus::Pending)
                .role(OrgRole::Developer)
        )
        .await?,
        [jane.id.as_str()]
    );
    assert!(
        list(
            ListInvites::new()
                .status(InviteStatus::Accepted)
                .role(OrgRole::Developer)
        )
        .await?
        .is_empty()
    );

    // Only pending invites can be withdrawn.
    let accepted = api_failure(s.client.delete_invite(&carol.id).await)?;
    assert_eq!(accepted.status, 400);
    assert_eq!(accepted.attempts, 1);

    // 22 days later the pending ones have expired, lazily.
    s.clock.advance(std::time::Duration::from_secs(22 * 86_400));
    assert_eq!(
        list(ListInvites::new().status(InviteStatus::Expired)).await?,
        [bob.id.clone(), jane.id.clone()]
    );
    assert!(
        list(ListInvites::new().status(InviteStatus::Pending))
            .await?
            .is_empty()
    );
    let expired = api_failure(s.client.delete_invite(&bob.id).await)?;
    assert_eq!(expired.status, 400);
    // An expired invite no longer blocks a new one for the same address.
    let again = s
        .client
        .create_invite(&CreateInvite::new("bob@example.com", OrgRole::User))
        .await?
        .value;
    assert_eq!(again.status, InviteStatus::Pending);
    assert_ne!(again.id, bob.id);
    Ok(())
}

#[tokio::test]
async fn workspaces_create_get_list_update_archive() -> anyhow::Result<()> {
    let s = console().await?;
    let default_id = s.sim.default_workspace_id();
    // Default is gettable by its real id but never listed.
    let default = s.client.get_workspace(&default_id).await?.value;
    assert_eq!(default.name, "Default");
    assert!(
        s.client
            .list_workspaces(&ListWorkspaces::new())
            .await?
            .value
            .data
            .is_empty()
    );

    let eng = s
        .client
        .create_workspace(
            &CreateWorkspace::new("Engineering")
                .display_color("#123ABC")
                .tag("team", "eng")
                .tag("cost", "cc-1")
                .data_residency(DataResidency {
                    allowed_inference_geos: Some(InferenceGeos::List(vec!["us".into()])),
                    default_inference_geo: Some("us".into()),
                    ..DataResidency::default()
                }),
        )
        .await?
        .value;
    assert!(eng.id.starts_with("wrkspc_"));
    assert_eq!(eng.display_color.as_deref(), Some("#123ABC"));
    assert_eq!(eng.created_at, s.clock.now());
    assert!(!eng.is_archived());
    let residency = eng.data_residency.clone().context("residency")?;
    assert_eq!(
        residency.allowed_inference_geos,
        Some(InferenceGeos::List(vec!["us".into()]))
    );
    assert_eq!(residency.workspace_geo.as_deref(), Some("us"));
    let data = s
        .client
        .create_workspace(&CreateWorkspace::new("Data"))
        .await?
        .value;
    assert_eq!(s.client.get_workspace(&eng.id).await?.value, eng);

    let listed = s.client.list_all_workspaces(ListWorkspaces::new()).await?;
    assert_eq!(ids(&listed, |w| &w.id), [data.id.clone(), eng.id.clone()]);

    // Update: rename, recolour, delete one tag and set another.
    let updated = s
        .client
        .update_workspace(
            &eng.id,
            &UpdateWorkspace::new()
                .name("Eng")
                .display_color("#000000")
                .tag("cost", None)
                .tag("owner", Some("ada".into())),
        )
        .await?
        .value;
    let reread = s.client.get_workspace(&eng.id).await?.value;
    assert_eq!(reread, updated);
    assert_eq!(reread.name, "Eng");
    assert_eq!(reread.display_color.as_deref(), Some("#000000"));
    assert_eq!(
        reread.tags.into_iter().collect::<Vec<_>>(),
        [
            ("owner".into(), "ada".into()),
            ("team".into(), "eng".into())
        ]
    );

    // Archive: a key in it stops, it leaves the default list, stays gettable.
    let key = s.sim.add_api_key("eng-ci", Some(&eng.id), None);
    let key_id = str_field(&key, "id");
    let archived = s.client.archive_workspace(&eng.id).await?.value;
    assert_eq!(archived.archived_at, Some(s.clock.now()));
    assert!(s.client.get_workspace(&eng.id).await?.value.is_archived());
    assert_eq!(
        s.client.get_api_key(&key_id).await?.value.status,
        ApiKeyStatus::Archived
    );
    let active = s.client.list_all_workspaces(ListWorkspaces::new()).await?;
    assert_eq!(ids(&active, |w| &w.id), [data.id.as_str()]);
    let all = s
        .client
        .list_all_workspaces(ListWorkspaces::new().include_archived(true))
        .await?;
    assert_eq!(ids(&all, |w| &w.id), [data.id.clone(), eng.id.clone()]);
    let explicit_false = s
        .client
        .list_all_workspaces(ListWorkspaces::new().include_archived(false))
        .await?;
    assert_eq!(ids(&explicit_false, |w| &w.id), [data.id.as_str()]);

    // Archiving is irreversible and final; the Default workspace can't be archived or renamed.
    for err in [
        api_failure(s.client.archive_workspace(&eng.id).await)?,
        api_failure(
            s.client
                .update_workspace(&eng.id, &UpdateWorkspace::new().name("Back"))
                .await,
        )?,
        api_failure(s.client.archive_workspace(&default_id).await)?,
        api_failure(
            s.client
                .update_workspace(&default_id, &UpdateWorkspace::new().name("Mine"))
                .await,
        )?,
    ] {
        assert_eq!(err.status, 400, "{err}");
        assert_eq!(err.error_type, Some(ErrorType::InvalidRequestError));
        assert_eq!(err.attempts, 1);
    }
    assert!(
        !s.client
            .get_workspace(&default_id)
            .await?
            .value
            .is_archived()
    );
    // Validation reaches the client as a typed 400.
    let bad_color = api_failure(
        s.client
            .create_workspace(&CreateWorkspace::new("X").display_color("red"))
            .await,
    )?;
    assert_eq!(bad_color.status, 400);
    let state = s.state_list("workspaces");
    assert_eq!(
        state.len(),
        3,
        "Default, Eng, Data; nothing else was created"
    );

    // The cap counts non-archived workspaces only (Data here; Eng is archived).
    s.settings(json!({"max_workspaces": 2}))?;
    let ops = s
        .client
        .create_workspace(&CreateWorkspace::new("Ops"))
        .await?
        .value;
    let over = api_failure(
        s.client
            .create_workspace(&CreateWorkspace::new("More"))
            .await,
    )?;
    assert_eq!(over.status, 400);
    s.client.archive_workspace(&ops.id).await?;
    s.client
        .create_workspace(&CreateWorkspace::new("More"))
        .await?;
    Ok(())
}

#[tokio::test]
async fn workspace_members_add_get_list_update_remove() -> anyhow::Result<()> {
    let s = console().await?;
    let ws = s
        .client
        .create_workspace(&CreateWorkspace::new("Eng"))
        .await?
        .value;
    let ada = s.add_user("ada@acme.test", "developer");
    let bea = s.add_user("bea@acme.test", "user");

    let added = s
        .client
        .add_workspace_member(&ws.id, &ada, &WorkspaceRole::WorkspaceDeveloper)
        .await?
        .value;
    assert_eq!(
        (added.user_id.as_str(), added.workspace_id.as_str()),
        (ada.as_str(), ws.id.as_str())
    );
    s.client
        .add_workspace_member(&ws.id, &bea, &WorkspaceRole::WorkspaceUser)
        .await?;
    assert_eq!(
        s.client.get_workspace_member(&ws.id, &ada).await?.value,
        added
    );
    let members = s
        .client
        .list_all_workspace_members(ListWorkspaceMembers::new(&ws.id))
        .await?;
    assert_eq!(ids(&members, |m| &m.user_id), [bea.clone(), ada.clone()]);

    let promoted = s
        .client
        .update_workspace_member(&ws.id, &ada, &WorkspaceRole::WorkspaceAdmin)
        .await?
        .value;
    assert_eq!(promoted.workspace_role, WorkspaceRole::WorkspaceAdmin);
    assert_eq!(
        s.client
            .get_workspace_member(&ws.id, &ada)
            .await?
            .value
            .workspace_role,
        WorkspaceRole::WorkspaceAdmin
    );

    let removed = s.client.remove_workspace_member(&ws.id, &bea).await?.value;
    assert_eq!(
        (removed.user_id.as_str(), removed.workspace_id.as_str()),
        (bea.as_str(), ws.id.as_str())
    );
    assert!(
        s.client
            .get_workspace_member(&ws.id, &bea)
            .await
            .err()
            .is_some_and(|e| e.is_not_found())
    );
    let state: Vec<(String, String)> = s
        .state_list("workspace_members")
        .iter()
        .map(|m| (str_field(m, "user_id"), str_field(m, "workspace_role")))
        .collect();
    assert_eq!(state, [(ada.clone(), "workspace_admin".to_owned())]);
    // Bea is still an org member: only the membership went.
    assert!(s.client.get_user(&bea).await.is_ok());

    // Rules reaching the client as typed errors.
    let billing = api_failure(
        s.client
            .add_workspace_member(&ws.id, &bea, &WorkspaceRole::WorkspaceBilling)
            .await,
    )?;
    assert_eq!(billing.status, 400);
    let duplicate = api_failure(
        s.client
            .add_workspace_member(&ws.id, &ada, &WorkspaceRole::WorkspaceUser)
            .await,
    )?;
    assert_eq!(duplicate.status, 400);
    let not_a_user = api_failure(
        s.client
            .add_workspace_member(&ws.id, "user_01nobody", &WorkspaceRole::WorkspaceUser)
            .await,
    )?;
    assert_eq!(not_a_user.status, 404);
    for err in [
        api_failure(
            s.client
                .update_workspace_member(&ws.id, &bea, &WorkspaceRole::WorkspaceUser)
                .await,
        )?,
        api_failure(s.client.remove_workspace_member(&ws.id, &bea).await)?,
        api_failure(s.client.get_workspace_member("wrkspc_01nope", &ada).await)?,
    ] {
        assert_eq!(err.status, 404, "{err}");
        assert_eq!(err.error_type, Some(ErrorType::NotFoundError));
    }
    Ok(())
}

#[tokio::test]
async fn api_keys_list_filters_get_and_update() -> anyhow::Result<()> {
    let s = console().await?;
    let ada = s.add_user("ada@acme.test", "developer");
    let bea = s.add_user("bea@acme.test", "developer");
    let eng = s
        .client
        .create_workspace(&CreateWorkspace::new("Eng"))
        .await?
        .value;
    let ops = s
        .client
        .create_workspace(&CreateWorkspace::new("Ops"))
        .await?
        .value;
    let key = |name: &str, ws: Option<&str>, by: &str| {
        str_field(&s.sim.add_api_key(name, ws, Some(by)), "id")
    };
    let ada_eng = key("ada-eng", Some(&eng.id), &ada);
    let ada_eng_old = key("ada-eng-old", Some(&eng.id), &ada);
    let bea_eng = key("bea-eng", Some(&eng.id), &bea);
    let ada_ops = key("ada-ops", Some(&ops.id), &ada);
    let ada_default = key("ada-default", None, &ada);

    // Deactivate one through the API; a later read and the state agree.
    let inactive = s
        .client
        .update_api_key(
            &ada_eng_old,
            &UpdateApiKey::new().status(ApiKeyStatus::Inactive),
        )
        .await?
        .value;
    assert_eq!(inactive.status, ApiKeyStatus::Inactive);
    assert_eq!(
        s.client.get_api_key(&ada_eng_old).await?.value.status,
        ApiKeyStatus::Inactive
    );

    let list = |q: ListApiKeys| {
        let client = s.client.clone();
        async move {
            client
                .list_all_api_keys(q)
                .await
                .map(|k| ids(&k, |k| &k.id))
        }
    };
    assert_eq!(
        list(ListApiKeys::new()).await?,
        [
            ada_default.clone(),
            ada_ops.clone(),
            bea_eng.clone(),
            ada_eng_old.clone(),
            ada_eng.clone()
        ]
    );
    assert_eq!(
        list(ListApiKeys::new().created_by_user_id(&ada))
            .await?
            .len(),
        4
    );
    assert_eq!(
        list(ListApiKeys::new().workspace_id(&eng.id)).await?,
        [bea_eng.clone(), ada_eng_old.clone(), ada_eng.clone()]
    );
    // All three filters AND'ed.
    assert_eq!(
        list(
            ListApiKeys::new()
                .status(ApiKeyStatus::Active)
                .workspace_id(&eng.id)
                .created_by_user_id(&ada)
        )
        .await?,
        [ada_eng.as_str()]
    );
    assert_eq!(
        list(
            ListApiKeys::new()
                .status(ApiKeyStatus::Inactive)
                .created_by_user_id(&ada)
        )
        .await?,
        [ada_eng_old.as_str()]
    );
    assert!(
        list(
            ListApiKeys::new()
                .status(ApiKeyStatus::Inactive)
                .created_by_user_id(&bea)
        )
        .await?
        .is_empty()
    );
    // Keys in the Default workspace filter by its real id.
    assert_eq!(
        list(ListApiKeys::new().workspace_id(s.sim.default_workspace_id())).await?,
        [ada_default.as_str()]
    );

    // Get and rename.
    let got = s.client.get_api_key(&ada_ops).await?.value;
    assert_eq!(got.name, "ada-ops");
    assert_eq!(got.workspace(), Some(ops.id.as_str()));
    assert_eq!(got.created_by_user(), Some(ada.as_str()));
    assert!(got.partial_key_hint.is_some());
    let renamed = s
        .client
        .update_api_key(&ada_ops, &UpdateApiKey::new().name("ops-deploy"))
        .await?
        .value;
    assert_eq!(renamed.name, "ops-deploy");
    assert_eq!(renamed.status, ApiKeyStatus::Active);
    assert_eq!(
        s.client.get_api_key(&ada_ops).await?.value.name,
        "ops-deploy"
    );
    // An empty update is valid and changes nothing.
    assert_eq!(
        s.client
            .update_api_key(&ada_ops, &UpdateApiKey::new())
            .await?
            .value,
        renamed
    );

    // `expired` cannot be set; `archived` is permanent.
    let expired = api_failure(
        s.client
            .update_api_key(&ada_ops, &UpdateApiKey::new().status(ApiKeyStatus::Expired))
            .await,
    )?;
    assert_eq!(expired.status, 400);
    s.client
        .update_api_key(
            &ada_ops,
            &UpdateApiKey::new().status(ApiKeyStatus::Archived),
        )
        .await?;
    let reactivate = api_failure(
        s.client
            .update_api_key(&ada_ops, &UpdateApiKey::new().status(ApiKeyStatus::Active))
            .await,
    )?;
    assert_eq!(reactivate.status, 400);
    let states: BTreeSet<(String, String)> = s
        .state_list("api_keys")
        .iter()
        .map(|k| (str_field(k, "name"), str_field(k, "status")))
        .collect();
    assert!(states.contains(&("ops-deploy".into(), "archived".into())));
    assert!(states.contains(&("ada-eng-old".into(), "inactive".into())));
    ensure!(states.len() == 5, "no key was created or lost: {states:?}");
    Ok(())
}

#[tokio::test]
async fn expired_keys_are_derived_from_the_shared_clock() -> anyhow::Result<()> {
    let expires = t0() + Duration::hours(1);
    let s = Sim::start(json!({
        "users": [{"email": "root@acme.test", "role": "admin"}],
        "workspaces": [{"name": "Eng"}],
        "api_keys": [
            {"name": "short", "workspace": "Eng", "created_by": "root@acme.test", "expires_at": expires},
            {"name": "forever", "workspace": "Eng", "created_by": "root@acme.test"}
        ],
    }))
    .await?;
    let expired = || {
        let client = s.client.clone();
        async move {
            client
                .list_all_api_keys(ListApiKeys::new().status(ApiKeyStatus::Expired))
                .await
                .map(|k| ids(&k, |k| &k.name))
        }
    };
    assert!(expired().await?.is_empty());
    s.clock.advance(std::time::Duration::from_secs(3600));
    assert_eq!(expired().await?, ["short"]);
    let active = s
        .client
        .list_all_api_keys(ListApiKeys::new().status(ApiKeyStatus::Active))
        .await?;
    assert_eq!(ids(&active, |k| &k.name), ["forever"]);
    assert_eq!(active[0].expires_at, None);
    Ok(())
}
