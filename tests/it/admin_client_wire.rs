//! What the client puts on the wire (methods, paths, headers, bodies, query strings), how it
//! pages, what it returns as call metadata, and what it logs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure should stop the test loudly

use crate::common;

use std::time::Duration;

use common::*;
use futures::{StreamExt, TryStreamExt};
use keycard::admin_api::*;
use serde_json::json;

#[tokio::test]
async fn admin_key_headers_and_default_version() {
    let server = ScriptServer::start(vec![
        Canned::ok(json!({"id": "2b0c0000-0000-4000-8000-000000000000", "type": "organization", "name": "Acme"})),
        Canned::ok(user_json("user_1")),
    ])
    .await;
    let clock = manual_clock();
    let c = client(&server, &clock);
    assert_eq!(c.get_organization().await.unwrap().value.name, "Acme");
    c.update_user_role("user_1", &OrgRole::Billing)
        .await
        .unwrap();
    let reqs = server.requests();
    for r in &reqs {
        assert_eq!(r.header("x-api-key"), Some(ADMIN_KEY));
        assert_eq!(r.header("authorization"), None);
        assert_eq!(r.header("anthropic-version"), Some("2023-06-01"));
        assert_eq!(r.header("accept"), Some("application/json"));
        assert_eq!(r.header("anthropic-beta"), None);
    }
    assert_eq!(reqs[0].method, "GET");
    assert_eq!(reqs[0].path, "/v1/organizations/me");
    assert_eq!(reqs[1].method, "POST");
    assert_eq!(reqs[1].header("content-type"), Some("application/json"));
    assert_eq!(reqs[1].json(), json!({"role": "billing"}));
}

#[tokio::test]
async fn oauth_token_and_configured_version() {
    let server = ScriptServer::start(vec![Canned::ok(user_json("user_1"))]).await;
    let clock = manual_clock();
    let c = AdminClient::with_clock(
        AdminClientConfig::new(Credential::oauth_token("sk-ant-oat01-TOPSECRET"))
            .base_url(server.base_url.clone())
            .anthropic_version("2026-10-21")
            .pacing(None),
        clock,
    )
    .unwrap();
    assert_eq!(c.anthropic_version(), "2026-10-21");
    c.get_user("user_1").await.unwrap();
    let r = &server.requests()[0];
    assert_eq!(
        r.header("authorization"),
        Some("Bearer sk-ant-oat01-TOPSECRET")
    );
    assert_eq!(r.header("x-api-key"), None);
    assert_eq!(r.header("anthropic-version"), Some("2026-10-21"));
}

#[tokio::test]
async fn every_endpoint_uses_the_documented_method_path_and_body() {
    let ws = "wrkspc_1";
    let script = vec![
        Canned::ok(page_json(vec![user_json("user_1")], false, "id")),
        Canned::ok(user_json("user_1")),
        Canned::ok(user_json("user_1")),
        Canned::ok(json!({"id": "user_1", "type": "user_deleted"})),
        Canned::ok(user_json("user_1")),
        Canned::ok(invite_json("invite_1")),
        Canned::ok(invite_json("invite_1")),
        Canned::ok(page_json(vec![invite_json("invite_1")], false, "id")),
        Canned::ok(json!({"id": "invite_1", "type": "invite_deleted"})),
        Canned::ok(workspace_json(ws)),
        Canned::ok(workspace_json(ws)),
        Canned::ok(page_json(vec![workspace_json(ws)], false, "id")),
        Canned::ok(workspace_json(ws)),
        Canned::ok({
            let mut w = workspace_json(ws);
            w["archived_at"] = json!("2026-11-28T10:00:00.000000Z");
            w
        }),
        Canned::ok(member_json(ws, "user_1", "workspace_developer")),
        Canned::ok(member_json(ws, "user_1", "workspace_developer")),
        Canned::ok(page_json(
            vec![member_json(ws, "user_1", "workspace_user")],
            false,
            "user_id",
        )),
        Canned::ok(member_json(ws, "user_1", "workspace_admin")),
        Canned::ok(
            json!({"type": "workspace_member_deleted", "user_id": "user_1", "workspace_id": ws}),
        ),
        Canned::ok(page_json(vec![api_key_json("apikey_1")], false, "id")),
        Canned::ok(api_key_json("apikey_1")),
        Canned::ok(api_key_json("apikey_1")),
    ];
    let server = ScriptServer::start(script).await;
    let clock = manual_clock();
    let c = client(&server, &clock);

    c.list_users(&ListUsers::new()).await.unwrap();
    c.get_user("user_1").await.unwrap();
    c.update_user_role("user_1", &OrgRole::ClaudeCodeUser)
        .await
        .unwrap();
    assert_eq!(c.remove_user("user_1").await.unwrap().value.id, "user_1");
    c.sign_out_user("user_1").await.unwrap();
    c.create_invite(&CreateInvite::new("new@example.com", OrgRole::Developer))
        .await
        .unwrap();
    c.get_invite("invite_1").await.unwrap();
    c.list_invites(&ListInvites::new()).await.unwrap();
    assert_eq!(
        c.delete_invite("invite_1").await.unwrap().value.id,
        "invite_1"
    );
    c.create_workspace(&CreateWorkspace::new("Eng").display_color("#6C5BB9"))
        .await
        .unwrap();
    c.get_workspace(ws).await.unwrap();
    c.list_workspaces(&ListWorkspaces::new().include_archived(true))
        .await
        .unwrap();
    c.update_workspace(ws, &UpdateWorkspace::new().name("Eng 2"))
        .await
        .unwrap();
    assert!(c.archive_workspace(ws).await.unwrap().value.is_archived());
    c.add_workspace_member(ws, "user_1", &WorkspaceRole::WorkspaceDeveloper)
        .await
        .unwrap();
    c.get_workspace_member(ws, "user_1").await.unwrap();
    c.list_workspace_members(&ListWorkspaceMembers::new(ws))
        .await
        .unwrap();
    c.update_workspace_member(ws, "user_1", &WorkspaceRole::WorkspaceAdmin)
        .await
        .unwrap();
    let removed = c.remove_workspace_member(ws, "user_1").await.unwrap().value;
    assert_eq!(
        (removed.user_id.as_str(), removed.workspace_id.as_str()),
        ("user_1", ws)
    );
    c.list_api_keys(&ListApiKeys::new()).await.unwrap();
    c.get_api_key("apikey_1").await.unwrap();
    c.update_api_key(
        "apikey_1",
        &UpdateApiKey::new().status(ApiKeyStatus::Inactive),
    )
    .await
    .unwrap();

    let got: Vec<(String, String, serde_json::Value)> = server
        .requests()
        .iter()
        .map(|r| (r.method.clone(), r.path.clone(), r.json()))
        .collect();
    let null = serde_json::Value::Null;
    let expected = vec![
        ("GET", "/v1/organizations/users", null.clone()),
        ("GET", "/v1/organizations/users/user_1", null.clone()),
        (
            "POST",
            "/v1/organizations/users/user_1",
            json!({"role": "claude_code_user"}),
        ),
        ("DELETE", "/v1/organizations/users/user_1", null.clone()),
        (
            "POST",
            "/v1/organizations/users/user_1/sign_out",
            null.clone(),
        ),
        (
            "POST",
            "/v1/organizations/invites",
            json!({"email": "new@example.com", "role": "developer"}),
        ),
        ("GET", "/v1/organizations/invites/invite_1", null.clone()),
        ("GET", "/v1/organizations/invites", null.clone()),
        ("DELETE", "/v1/organizations/invites/invite_1", null.clone()),
        (
            "POST",
            "/v1/organizations/workspaces",
            json!({"name": "Eng", "display_color": "#6C5BB9"}),
        ),
        ("GET", "/v1/organizations/workspaces/wrkspc_1", null.clone()),
        ("GET", "/v1/organizations/workspaces", null.clone()),
        (
            "POST",
            "/v1/organizations/workspaces/wrkspc_1",
            json!({"name": "Eng 2"}),
        ),
        (
            "POST",
            "/v1/organizations/workspaces/wrkspc_1/archive",
            null.clone(),
        ),
        (
            "POST",
            "/v1/organizations/workspaces/wrkspc_1/members",
            json!({"user_id": "user_1", "workspace_role": "workspace_developer"}),
        ),
        (
            "GET",
            "/v1/organizations/workspaces/wrkspc_1/members/user_1",
            null.clone(),
        ),
        (
            "GET",
            "/v1/organizations/workspaces/wrkspc_1/members",
            null.clone(),
        ),
        (
            "POST",
            "/v1/organizations/workspaces/wrkspc_1/members/user_1",
            json!({"workspace_role": "workspace_admin"}),
        ),
        (
            "DELETE",
            "/v1/organizations/workspaces/wrkspc_1/members/user_1",
            null.clone(),
        ),
        ("GET", "/v1/organizations/api_keys", null.clone()),
        ("GET", "/v1/organizations/api_keys/apikey_1", null.clone()),
        (
            "POST",
            "/v1/organizations/api_keys/apikey_1",
            json!({"status": "inactive"}),
        ),
    ];
    let expected: Vec<(String, String, serde_json::Value)> = expected
        .into_iter()
        .map(|(m, p, b)| (m.to_owned(), p.to_owned(), b))
        .collect();
    assert_eq!(got, expected);

    for r in server.requests() {
        let is_sign_out = r.path.ends_with("/sign_out");
        assert_eq!(
            r.header("anthropic-beta"),
            is_sign_out.then_some("admin-user-sign-out-2026-10-08")
        );
        if r.method == "POST" {
            assert_eq!(r.header("content-type"), Some("application/json"));
        }
    }
}

#[tokio::test]
async fn list_filters_are_encoded_like_the_sdk() {
    let empty =
        || Canned::ok(json!({"data": [], "has_more": false, "first_id": null, "last_id": null}));
    let server = ScriptServer::start(vec![empty(), empty(), empty(), empty()]).await;
    let clock = manual_clock();
    let c = client(&server, &clock);
    let page = c
        .list_users(
            &ListUsers::new()
                .email("Jane+hiring@Example.com")
                .role(OrgRole::User)
                .role(OrgRole::Developer)
                .limit(50)
                .after_id("user_9"),
        )
        .await
        .unwrap()
        .value;
    assert!(page.data.is_empty() && page.first_id.is_none());
    c.list_invites(
        &ListInvites::new()
            .role(OrgRole::Billing)
            .status(InviteStatus::Pending)
            .status(InviteStatus::Expired)
            .before_id("invite_5"),
    )
    .await
    .unwrap();
    c.list_api_keys(
        &ListApiKeys::new()
            .status(ApiKeyStatus::Active)
            .workspace_id("wrkspc_1")
            .created_by_user_id("user_1"),
    )
    .await
    .unwrap();
    c.list_workspaces(&ListWorkspaces::new().include_archived(false))
        .await
        .unwrap();

    let pairs: Vec<Vec<(String, String)>> =
        server.requests().iter().map(|r| r.query_pairs()).collect();
    let own = |v: &[(&str, &str)]| -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    };
    assert_eq!(
        pairs[0],
        own(&[
            ("email", "Jane+hiring@Example.com"),
            ("roles[]", "user"),
            ("roles[]", "developer"),
            ("limit", "50"),
            ("after_id", "user_9"),
        ])
    );
    assert_eq!(
        pairs[1],
        own(&[
            ("roles[]", "billing"),
            ("statuses[]", "pending"),
            ("statuses[]", "expired"),
            ("before_id", "invite_5"),
        ])
    );
    assert_eq!(
        pairs[2],
        own(&[
            ("status", "active"),
            ("workspace_id", "wrkspc_1"),
            ("created_by_user_id", "user_1")
        ])
    );
    assert_eq!(pairs[3], own(&[("include_archived", "false")]));
    // The `+` in the email must arrive as a plus, not a space.
    assert!(
        server.requests()[0]
            .query
            .as_deref()
            .unwrap_or("")
            .contains("%2B")
    );
}

#[tokio::test]
async fn ids_are_percent_encoded_and_empty_ids_rejected_locally() {
    let server = ScriptServer::start(vec![Canned::ok(user_json("a/b"))]).await;
    let clock = manual_clock();
    let c = client(&server, &clock);
    c.get_user("a/b").await.unwrap();
    assert_eq!(server.requests()[0].path, "/v1/organizations/users/a%2Fb");
    let err = c.remove_user("").await.unwrap_err();
    assert!(matches!(err, AdminApiError::InvalidArgument(_)));
    let err = c
        .list_workspace_members(&ListWorkspaceMembers::new(".."))
        .await
        .unwrap_err();
    assert!(matches!(err, AdminApiError::InvalidArgument(_)));
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn list_all_pages_forward_with_after_id() {
    let server = ScriptServer::start(vec![
        Canned::ok(page_json(
            vec![user_json("user_5"), user_json("user_4")],
            true,
            "id",
        )),
        Canned::ok(page_json(
            vec![user_json("user_3"), user_json("user_2")],
            true,
            "id",
        )),
        Canned::ok(page_json(vec![user_json("user_1")], false, "id")),
    ])
    .await;
    let clock = manual_clock();
    let c = client(&server, &clock);
    let users = c
        .list_all_users(ListUsers::new().role(OrgRole::Developer))
        .await
        .unwrap();
    let ids: Vec<_> = users.iter().map(|u| u.id.as_str()).collect();
    assert_eq!(ids, ["user_5", "user_4", "user_3", "user_2", "user_1"]);
    let queries: Vec<_> = server.requests().iter().map(|r| r.query_pairs()).collect();
    let after: Vec<_> = queries
        .iter()
        .map(|q| {
            q.iter()
                .find(|(k, _)| k == "after_id")
                .map(|(_, v)| v.clone())
        })
        .collect();
    assert_eq!(after, [None, Some("user_4".into()), Some("user_2".into())]);
    for q in &queries {
        // Filters ride along on every page; list_all asks for the biggest pages.
        assert!(q.contains(&("roles[]".into(), "developer".into())));
        assert!(q.contains(&("limit".into(), "1000".into())));
    }
}

#[tokio::test]
async fn pages_started_backward_keep_paging_backward() {
    let server = ScriptServer::start(vec![
        Canned::ok(page_json(
            vec![invite_json("invite_8"), invite_json("invite_7")],
            true,
            "id",
        )),
        Canned::ok(page_json(vec![invite_json("invite_6")], false, "id")),
    ])
    .await;
    let clock = manual_clock();
    let c = client(&server, &clock);
    let pages: Vec<_> = c
        .pages(ListInvites::new().before_id("invite_9").limit(2))
        .try_collect()
        .await
        .unwrap();
    assert_eq!(pages.len(), 2);
    assert_eq!(pages[0].meta.request_id.as_deref(), Some("req_test_1"));
    assert_eq!(pages[1].meta.request_id.as_deref(), Some("req_test_2"));
    let before: Vec<_> = server
        .requests()
        .iter()
        .map(|r| {
            let q = r.query_pairs();
            assert!(!q.iter().any(|(k, _)| k == "after_id"));
            q.into_iter()
                .find(|(k, _)| k == "before_id")
                .map(|(_, v)| v)
        })
        .collect();
    assert_eq!(before, [Some("invite_9".into()), Some("invite_8".into())]);
}

#[tokio::test]
async fn paging_stops_on_a_null_cursor_even_if_has_more() {
    let server = ScriptServer::start(vec![Canned::ok(
        json!({"data": [], "has_more": true, "first_id": null, "last_id": null}),
    )])
    .await;
    let clock = manual_clock();
    let all = client(&server, &clock)
        .list_all_api_keys(ListApiKeys::new())
        .await
        .unwrap();
    assert!(all.is_empty());
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn a_server_repeating_the_cursor_cannot_loop_the_client() {
    let stuck = || Canned::ok(page_json(vec![workspace_json("wrkspc_1")], true, "id"));
    let server = ScriptServer::start(vec![stuck(), stuck(), stuck()]).await;
    let clock = manual_clock();
    let c = client(&server, &clock);
    let err = c
        .list_all_workspaces(ListWorkspaces::new())
        .await
        .unwrap_err();
    assert!(matches!(err, AdminApiError::Pagination { .. }), "{err:?}");
    assert_eq!(server.requests().len(), 2);
}

#[tokio::test]
async fn item_stream_flattens_pages_and_stops_at_the_first_error() {
    let server = ScriptServer::start(vec![
        Canned::ok(page_json(
            vec![member_json("wrkspc_1", "user_1", "workspace_user")],
            true,
            "user_id",
        )),
        Canned::error(404, "not_found_error", None),
    ])
    .await;
    let clock = manual_clock();
    let items: Vec<_> = client(&server, &clock)
        .items(ListWorkspaceMembers::new("wrkspc_1"))
        .collect()
        .await;
    assert_eq!(items.len(), 2);
    assert_eq!(
        items[0].as_ref().map(|m| m.user_id.as_str()).ok(),
        Some("user_1")
    );
    assert!(items[1].as_ref().is_err_and(|e| e.is_not_found()));
}

#[tokio::test]
async fn call_meta_reports_org_and_rate_limit_headers() {
    let server = ScriptServer::start(vec![
        Canned::ok(user_json("user_1"))
            .header("request-id", "req_018EeWyXxfu5pfWkrYcMdjWG")
            .header(
                "anthropic-organization-id",
                "12345678-1234-5678-1234-567812345678",
            )
            .header("anthropic-ratelimit-requests-limit", "100")
            .header("anthropic-ratelimit-requests-remaining", "99")
            .header("anthropic-ratelimit-requests-reset", "2026-11-28T10:01:00Z"),
        Canned::ok(user_json("user_2")),
    ])
    .await;
    let clock = manual_clock();
    let c = client(&server, &clock);
    let meta = c.get_user("user_1").await.unwrap().meta;
    assert_eq!(meta.status, 200);
    assert_eq!(meta.attempts, 1);
    assert_eq!(meta.waited, Duration::ZERO);
    assert_eq!(
        meta.request_id.as_deref(),
        Some("req_018EeWyXxfu5pfWkrYcMdjWG")
    );
    assert_eq!(
        meta.organization_id.as_deref(),
        Some("12345678-1234-5678-1234-567812345678")
    );
    let rl = meta.rate_limit.unwrap();
    assert_eq!((rl.limit, rl.remaining), (Some(100), Some(99)));
    assert!(rl.reset.is_some());
    let plain = c.get_user("user_2").await.unwrap().meta;
    assert_eq!(plain.rate_limit, None);
    assert_eq!(plain.organization_id, None);
}
