//! Cursor paging edge cases (§3, §11.17–20) through the client's `list_page`, `pages` and
//! `list_all`, counted in the simulator's call log.

use std::collections::HashSet;

use anyhow::Context;
use futures::TryStreamExt;
use keycard::admin_api::*;
use serde_json::json;

use crate::common::sim::{Sim, api_failure, console, failed};

/// A console org whose users, newest first, are `u9 … u1, root` (10 users).
async fn ten_users() -> anyhow::Result<(Sim, Vec<String>)> {
    let s = console().await?;
    for n in 1..=9 {
        s.add_user(&format!("u{n}@acme.test"), "user");
    }
    let all = s.client.list_all_users(ListUsers::new()).await?;
    let ids: Vec<String> = all.into_iter().map(|u| u.id).collect();
    assert_eq!(ids.len(), 10);
    s.sim.clear_calls();
    Ok((s, ids))
}

fn page_ids<T>(page: &Page<T>, id: impl Fn(&T) -> &str) -> Vec<String> {
    page.data.iter().map(|x| id(x).to_owned()).collect()
}

#[tokio::test]
async fn empty_lists_have_null_cursors_and_no_more() -> anyhow::Result<()> {
    let s = console().await?;
    let ws = s
        .client
        .create_workspace(&CreateWorkspace::new("Empty"))
        .await?
        .value;
    s.sim.clear_calls();

    let invites = s.client.list_invites(&ListInvites::new()).await?.value;
    let keys = s.client.list_api_keys(&ListApiKeys::new()).await?.value;
    let members = s
        .client
        .list_workspace_members(&ListWorkspaceMembers::new(&ws.id))
        .await?
        .value;
    let users = s
        .client
        .list_users(&ListUsers::new().role(OrgRole::Billing))
        .await?
        .value;
    let workspaces = s
        .client
        .list_workspaces(&ListWorkspaces::new())
        .await?
        .value;
    assert_eq!(
        workspaces.data.len(),
        1,
        "only Empty; Default is never listed"
    );
    for (name, empty, has_more, first, last) in [
        (
            "invites",
            invites.data.is_empty(),
            invites.has_more,
            invites.first_id,
            invites.last_id,
        ),
        (
            "keys",
            keys.data.is_empty(),
            keys.has_more,
            keys.first_id,
            keys.last_id,
        ),
        (
            "members",
            members.data.is_empty(),
            members.has_more,
            members.first_id,
            members.last_id,
        ),
        (
            "users",
            users.data.is_empty(),
            users.has_more,
            users.first_id,
            users.last_id,
        ),
    ] {
        assert!(empty, "{name}");
        assert!(!has_more, "{name}");
        assert_eq!((first, last), (None, None), "{name}");
    }
    // list_all on an empty list is one request.
    assert!(
        s.client
            .list_all_invites(ListInvites::new())
            .await?
            .is_empty()
    );
    assert_eq!(s.calls_for("invites.list").len(), 2);
    Ok(())
}

#[tokio::test]
async fn exact_page_boundaries() -> anyhow::Result<()> {
    let s = console().await?;
    let mut created = Vec::new();
    for n in 0..5 {
        let invite = s
            .client
            .create_invite(&CreateInvite::new(format!("p{n}@acme.test"), OrgRole::User))
            .await?;
        created.push(invite.value.id);
    }
    created.reverse(); // newest first

    // N items, limit N: everything, no more.
    let page = s
        .client
        .list_invites(&ListInvites::new().limit(5))
        .await?
        .value;
    assert_eq!(page_ids(&page, |i| &i.id), created);
    assert!(!page.has_more);
    assert_eq!(page.first_id.as_deref(), Some(created[0].as_str()));
    assert_eq!(page.last_id.as_deref(), Some(created[4].as_str()));

    // N items, limit N-1: one more.
    let page = s
        .client
        .list_invites(&ListInvites::new().limit(4))
        .await?
        .value;
    assert!(page.has_more);
    assert_eq!(page.last_id.as_deref(), Some(created[3].as_str()));
    let rest = s
        .client
        .list_invites(&ListInvites::new().limit(4).after_id(created[3].clone()))
        .await?
        .value;
    assert_eq!(page_ids(&rest, |i| &i.id), [created[4].clone()]);
    assert!(!rest.has_more);

    // N+1 items, limit N: has_more flips to true.
    let sixth = s
        .client
        .create_invite(&CreateInvite::new("p5@acme.test", OrgRole::User))
        .await?
        .value;
    let page = s
        .client
        .list_invites(&ListInvites::new().limit(5))
        .await?
        .value;
    assert!(page.has_more);
    assert_eq!(page.first_id.as_deref(), Some(sixth.id.as_str()));
    assert_eq!(page.last_id.as_deref(), Some(created[3].as_str()));

    // Default page size is 20: 21 items need two pages.
    for n in 6..21 {
        s.client
            .create_invite(&CreateInvite::new(format!("p{n}@acme.test"), OrgRole::User))
            .await?;
    }
    let default = s.client.list_invites(&ListInvites::new()).await?.value;
    assert_eq!(default.data.len(), 20);
    assert!(default.has_more);
    Ok(())
}

#[tokio::test]
async fn after_the_last_and_before_the_first_item_are_empty() -> anyhow::Result<()> {
    let (s, ids) = ten_users().await?;
    let after_last = s
        .client
        .list_users(&ListUsers::new().after_id(ids[9].clone()))
        .await?
        .value;
    assert!(after_last.data.is_empty());
    assert!(!after_last.has_more);
    assert_eq!((after_last.first_id, after_last.last_id), (None, None));

    let before_first = s
        .client
        .list_users(&ListUsers::new().before_id(ids[0].clone()))
        .await?
        .value;
    assert!(before_first.data.is_empty());
    assert!(!before_first.has_more);

    // Auto-paging from the last item is a single, empty request.
    let all = s
        .client
        .list_all_users(ListUsers::new().after_id(ids[9].clone()))
        .await?;
    assert!(all.is_empty());
    assert_eq!(s.calls_for("users.list").len(), 3);
    Ok(())
}

#[tokio::test]
async fn before_id_pages_backwards_to_the_start() -> anyhow::Result<()> {
    let (s, ids) = ten_users().await?;
    // Start before the oldest user and walk towards the newest, three at a time.
    let pages: Vec<Page<User>> = s
        .client
        .pages(ListUsers::new().limit(3).before_id(ids[9].clone()))
        .map_ok(Reply::into_value)
        .try_collect()
        .await?;
    let got: Vec<Vec<String>> = pages.iter().map(|p| page_ids(p, |u| &u.id)).collect();
    assert_eq!(
        got,
        [ids[6..9].to_vec(), ids[3..6].to_vec(), ids[0..3].to_vec()]
    );
    // has_more is about the backward direction: true until the start is reached.
    let more: Vec<bool> = pages.iter().map(|p| p.has_more).collect();
    assert_eq!(more, [true, true, false]);
    // Every page is still newest-first within itself.
    assert_eq!(pages[0].first_id.as_deref(), Some(ids[6].as_str()));
    assert_eq!(pages[0].last_id.as_deref(), Some(ids[8].as_str()));

    // Each request used the previous page's first_id; none used after_id.
    let queries: Vec<String> = s
        .calls_for("users.list")
        .iter()
        .map(|c| c.query.clone().unwrap_or_default())
        .collect();
    assert_eq!(queries.len(), 3);
    for (query, cursor) in queries.iter().zip([&ids[9], &ids[6], &ids[3]]) {
        assert!(query.contains(&format!("before_id={cursor}")), "{query}");
        assert!(!query.contains("after_id"), "{query}");
    }

    // A backward walk that does not fill its last page stops too.
    let tail: Vec<User> = s
        .client
        .items(ListUsers::new().limit(4).before_id(ids[5].clone()))
        .try_collect()
        .await?;
    let mut tail_ids: Vec<String> = tail.into_iter().map(|u| u.id).collect();
    tail_ids.sort();
    let mut expected = ids[0..5].to_vec();
    expected.sort();
    assert_eq!(tail_ids, expected);
    Ok(())
}

#[tokio::test]
async fn forward_paging_and_filters_with_small_pages() -> anyhow::Result<()> {
    let (s, ids) = ten_users().await?;
    let all = s.client.list_all_users(ListUsers::new().limit(3)).await?;
    let got: Vec<String> = all.into_iter().map(|u| u.id).collect();
    assert_eq!(got, ids);
    // 10 users in pages of 3: 3 + 3 + 3 + 1.
    assert_eq!(s.calls_for("users.list").len(), 4);

    // Filters are applied before paging: 9 `user`s, pages of 4.
    s.sim.clear_calls();
    let users = s
        .client
        .list_all_users(ListUsers::new().role(OrgRole::User).limit(4))
        .await?;
    assert_eq!(users.len(), 9);
    assert!(users.iter().all(|u| u.role == OrgRole::User));
    assert_eq!(s.calls_for("users.list").len(), 3);

    // Workspace members page by user_id.
    let ws = s
        .client
        .create_workspace(&CreateWorkspace::new("Eng"))
        .await?
        .value;
    for id in &ids[0..5] {
        s.client
            .add_workspace_member(&ws.id, id, &WorkspaceRole::WorkspaceUser)
            .await?;
    }
    s.sim.clear_calls();
    let members = s
        .client
        .list_all_workspace_members(ListWorkspaceMembers::new(&ws.id).limit(2))
        .await?;
    let mut member_ids: Vec<String> = members.into_iter().map(|m| m.user_id).collect();
    member_ids.reverse(); // newest-added first, so reversed it is insertion order
    assert_eq!(member_ids, ids[0..5]);
    assert_eq!(s.calls_for("workspace_members.list").len(), 3);
    Ok(())
}

#[tokio::test]
async fn thousand_item_pages_over_2500_users() -> anyhow::Result<()> {
    let s = console().await?;
    let mut added = Vec::with_capacity(2500);
    for n in 0..2500 {
        added.push(s.add_user(&format!("bulk{n:04}@acme.test"), "user"));
    }
    let root = s
        .state_list("users")
        .first()
        .and_then(|u| u["id"].as_str().map(str::to_owned))
        .context("root user")?;
    s.sim.clear_calls();

    let all = s
        .client
        .list_all_users(ListUsers::new().role(OrgRole::User))
        .await?;
    let got: Vec<String> = all.iter().map(|u| u.id.clone()).collect();
    assert_eq!(got.len(), 2500);
    let unique: HashSet<&String> = got.iter().collect();
    assert_eq!(unique.len(), 2500, "no duplicates");
    // Newest first: the reverse of the order they were added.
    let mut expected = added.clone();
    expected.reverse();
    assert_eq!(got, expected);
    assert!(!got.contains(&root));

    // Three requests of up to 1,000, each continuing after the previous page's last id.
    let calls = s.calls_for("users.list");
    assert_eq!(calls.len(), 3);
    let queries: Vec<String> = calls
        .iter()
        .map(|c| c.query.clone().unwrap_or_default())
        .collect();
    assert!(
        queries.iter().all(|q| q.contains("limit=1000")),
        "{queries:?}"
    );
    assert!(!queries[0].contains("after_id"));
    assert!(queries[1].contains(&format!("after_id={}", expected[999])));
    assert!(queries[2].contains(&format!("after_id={}", expected[1999])));
    assert!(calls.iter().all(|c| c.status == 200));

    // Without the role filter the admin comes last (added first).
    let everyone = s.client.list_all_users(ListUsers::new()).await?;
    assert_eq!(everyone.len(), 2501);
    assert_eq!(everyone.last().map(|u| u.id.as_str()), Some(root.as_str()));
    Ok(())
}

#[tokio::test]
async fn limits_and_cursors_the_server_rejects() -> anyhow::Result<()> {
    let (s, ids) = ten_users().await?;
    for limit in [0, 1001] {
        let err = api_failure(s.client.list_users(&ListUsers::new().limit(limit)).await)?;
        assert_eq!(err.status, 400, "limit {limit}");
        assert_eq!(err.error_type, Some(ErrorType::InvalidRequestError));
        assert!(err.message.contains("limit"), "{err}");
        assert_eq!(err.attempts, 1);
    }
    // list_all propagates the rejection instead of paging.
    assert!(failed_all(&s, ListUsers::new().limit(0)).await?);
    // The bounds themselves are fine.
    assert_eq!(
        s.client
            .list_users(&ListUsers::new().limit(1))
            .await?
            .value
            .data
            .len(),
        1
    );
    assert_eq!(
        s.client
            .list_users(&ListUsers::new().limit(1000))
            .await?
            .value
            .data
            .len(),
        10
    );
    // Both cursors at once, and a cursor naming nothing: 400.
    let both = api_failure(
        s.client
            .list_users(
                &ListUsers::new()
                    .after_id(ids[2].clone())
                    .before_id(ids[5].clone()),
            )
            .await,
    )?;
    assert_eq!(both.status, 400);
    let unknown = api_failure(
        s.client
            .list_users(&ListUsers::new().after_id("user_01doesnotexist"))
            .await,
    )?;
    assert_eq!(unknown.status, 400);
    let statuses: Vec<u16> = s.calls_for("users.list").iter().map(|c| c.status).collect();
    assert_eq!(statuses, [400, 400, 400, 200, 200, 400, 400]);
    Ok(())
}

async fn failed_all(s: &Sim, query: ListUsers) -> anyhow::Result<bool> {
    match s.client.list_all_users(query).await {
        Ok(users) => anyhow::bail!("expected a rejection, got {} users", users.len()),
        Err(e) => Ok(e.status() == Some(400)),
    }
}

#[tokio::test]
async fn cursor_naming_a_removed_object() -> anyhow::Result<()> {
    let (s, ids) = ten_users().await?;
    let first = s.client.list_users(&ListUsers::new().limit(4)).await?.value;
    let cursor = first.last_id.clone().context("cursor")?;
    assert_eq!(cursor, ids[3]);
    s.client.remove_user(&cursor).await?;
    // Default (`tolerate`): the removed object's position still works.
    let next = s
        .client
        .list_users(&ListUsers::new().limit(4).after_id(cursor.clone()))
        .await?
        .value;
    assert_eq!(page_ids(&next, |u| &u.id), ids[4..8]);
    // `error`: the stale cursor is a 400 and paging stops with it.
    s.settings(json!({"stale_cursor": "error"}))?;
    let err = failed(
        s.client
            .list_users(&ListUsers::new().limit(4).after_id(cursor))
            .await,
    )?;
    assert_eq!(err.status(), Some(400));
    Ok(())
}
