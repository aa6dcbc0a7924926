//! Reading the organization into the mirror: whole (in pages), the newest members only, one
//! person, or one object before a destructive write.
//!
//! No journal transaction is held across an Admin API call: each page is written in a
//! transaction of its own once it has arrived.

use chrono::{DateTime, Duration, SubsecRound, Utc};

use super::{
    Effect, MirrorObject, ObjectKind, invite_object, key_object, member_id, member_object,
    user_object, workspace_object,
};
use crate::admin_api::{
    AdminApiError, AdminClient, ApiKeyStatus, InviteStatus, ListApiKeys, ListInvites, ListUsers,
    ListWorkspaceMembers, ListWorkspaces, Page, User,
};
use crate::admin_api::{ListQuery, MAX_PAGE_SIZE};
use crate::clock::SharedClock;
use crate::journal::{Journal, JournalError, LimitRow, fold_email};

/// What reading the organization can fail on.
#[derive(Debug, thiserror::Error)]
pub enum MirrorError {
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error("reading the organization failed: {0}")]
    AdminApi(#[from] AdminApiError),
}

/// What a full read did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct RefreshReport {
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// List requests sent (one per page).
    pub pages: u64,
    pub objects: u64,
    pub users: u64,
    pub invites: u64,
    pub workspaces: u64,
    pub workspace_members: u64,
    pub api_keys: u64,
}

/// The part name under which a full read holds its lease and records its time.
pub(crate) const FULL: &str = "full";
/// The part name of the cheap read of the newest members.
pub(crate) const ACCEPTANCES: &str = "acceptances";

/// How long a reader may hold a part before another process may take it over; renewed
/// with every page.
fn lease() -> Duration {
    Duration::minutes(10)
}

/// Reads every page of one list into the mirror, each page stamped with when its request
/// was sent (so a write Keycard made after that keeps its newer state). Returns (pages,
/// objects).
async fn read_list<Q: ListQuery>(
    client: &AdminClient,
    journal: &Journal,
    clock: &SharedClock,
    owner: &str,
    mut query: Q,
    to_object: fn(&Q::Item) -> MirrorObject,
) -> Result<(u64, u64), MirrorError> {
    query.page_params_mut().limit = Some(MAX_PAGE_SIZE);
    let (mut pages, mut objects) = (0, 0);
    loop {
        let sent = clock.now();
        let page: Page<Q::Item> = client.list_page(&query).await?.value;
        pages += 1;
        objects += page.data.len() as u64;
        let rows: Vec<MirrorObject> = page.data.iter().map(to_object).collect();
        let mut tx = journal.begin().await?;
        tx.mirror_put(&rows, sent).await?;
        tx.mirror_lease(FULL, owner, clock.now(), lease()).await?;
        tx.commit().await?;
        match page.last_id.filter(|id| page.has_more && !id.is_empty()) {
            Some(last) => {
                let params = query.page_params_mut();
                params.after_id = Some(last);
                params.before_id = None;
            }
            None => return Ok((pages, objects)),
        }
    }
}

/// Reads the whole organization into the mirror, unless another process is reading it now
/// (`None`). Whatever a complete read did not see is gone from the mirror afterwards.
pub(crate) async fn refresh(
    client: &AdminClient,
    journal: &Journal,
    clock: &SharedClock,
    owner: &str,
) -> Result<Option<RefreshReport>, MirrorError> {
    // PostgreSQL keeps microseconds: a start with nanoseconds would be later than the
    // `seen_at` of what this very read stores, and the read would discard its own rows.
    let started = clock.now().trunc_subsecs(6);
    if !journal
        .conn()
        .await?
        .mirror_lease(FULL, owner, started, lease())
        .await?
    {
        return Ok(None);
    }
    match read_all(client, journal, clock, owner, started).await {
        Ok(report) => Ok(Some(report)),
        Err(e) => {
            // Another process (or the next attempt) may read it; what was read stays.
            if let Ok(mut conn) = journal.conn().await {
                let _ = conn.mirror_release(FULL, owner).await;
            }
            Err(e)
        }
    }
}

async fn read_all(
    client: &AdminClient,
    journal: &Journal,
    clock: &SharedClock,
    owner: &str,
    started: DateTime<Utc>,
) -> Result<RefreshReport, MirrorError> {
    let mut report = RefreshReport {
        started_at: Some(started),
        ..RefreshReport::default()
    };
    let mut limits = Vec::new();
    let (p, n) = supported(
        read_list(client, journal, clock, owner, ListWorkspaces::new(), |w| {
            workspace_object(w)
        })
        .await,
        "workspaces",
        clock,
        &mut limits,
    )?;
    (report.pages, report.workspaces) = (report.pages + p, n);
    let (p, n) = supported(
        read_list(client, journal, clock, owner, ListUsers::new(), user_object).await,
        "users",
        clock,
        &mut limits,
    )?;
    (report.pages, report.users) = (report.pages + p, n);
    let (p, n) = supported(
        read_list(
            client,
            journal,
            clock,
            owner,
            ListInvites::new(),
            invite_object,
        )
        .await,
        "invites",
        clock,
        &mut limits,
    )?;
    (report.pages, report.invites) = (report.pages + p, n);
    let (p, n) = supported(
        read_list(
            client,
            journal,
            clock,
            owner,
            ListApiKeys::new(),
            key_object,
        )
        .await,
        "api_keys",
        clock,
        &mut limits,
    )?;
    (report.pages, report.api_keys) = (report.pages + p, n);

    // Members of every workspace the organization has now.
    let mut conn = journal.conn().await?;
    let mut workspaces = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let rows = conn
            .mirror_all(ObjectKind::Workspace, after.as_deref(), 1000)
            .await?;
        let Some(last) = rows.last().map(|r| r.id.clone()) else {
            break;
        };
        workspaces.extend(
            rows.into_iter()
                .filter(|r| r.seen_at >= started && r.status.as_deref() == Some("active"))
                .map(|r| r.id),
        );
        after = Some(last);
    }
    drop(conn);
    for ws in &workspaces {
        let member_start = clock.now().trunc_subsecs(6);
        let read = read_list(
            client,
            journal,
            clock,
            owner,
            ListWorkspaceMembers::new(ws.clone()),
            member_object,
        )
        .await;
        let before = limits.len();
        let (p, n) = supported(read, "workspace_members", clock, &mut limits)?;
        if limits.len() > before {
            // The organization has workspaces but no workspace-member endpoints (Claude
            // Platform on AWS): one answer says so for all of them.
            break;
        }
        report.pages += p;
        report.workspace_members += n;
        journal
            .conn()
            .await?
            .mirror_sweep(ObjectKind::WorkspaceMember, Some(ws), member_start)
            .await?;
    }

    let finished = clock.now();
    let mut tx = journal.begin().await?;
    for kind in [
        ObjectKind::Workspace,
        ObjectKind::User,
        ObjectKind::Invite,
        ObjectKind::ApiKey,
    ] {
        tx.mirror_sweep(kind, None, started).await?;
    }
    tx.mirror_drop_members_outside(&workspaces).await?;
    for feature in FEATURES {
        match limits.iter().find(|l| l.feature == *feature) {
            Some(limit) => {
                tracing::warn!(feature, reason = %limit.reason, "the Admin API does not serve this part of the organization");
                tx.record_limit(limit).await?;
            }
            None => tx.clear_limit(feature).await?,
        }
    }
    report.objects = report.users
        + report.invites
        + report.workspaces
        + report.workspace_members
        + report.api_keys;
    tx.mirror_read_done(
        FULL,
        owner,
        started,
        finished,
        i64::try_from(report.pages).unwrap_or(i64::MAX),
        i64::try_from(report.objects).unwrap_or(i64::MAX),
    )
    .await?;
    tx.commit().await?;
    report.finished_at = Some(finished);
    tracing::info!(
        pages = report.pages,
        users = report.users,
        invites = report.invites,
        workspaces = report.workspaces,
        workspace_members = report.workspace_members,
        api_keys = report.api_keys,
        "organization mirror read"
    );
    Ok(report)
}

/// The parts of the organization a full read lists.
const FEATURES: &[&str] = &[
    "workspaces",
    "users",
    "invites",
    "api_keys",
    "workspace_members",
];

/// A list the organization answers "not found" for (the endpoint does not exist for its
/// platform or plan, admin-api.md §9) is a limit, recorded with the read, not a failure to
/// retry: the read goes on without it.
fn supported(
    read: Result<(u64, u64), MirrorError>,
    feature: &str,
    clock: &SharedClock,
    limits: &mut Vec<LimitRow>,
) -> Result<(u64, u64), MirrorError> {
    match read {
        Err(MirrorError::AdminApi(e)) if e.is_not_found() => {
            limits.push(LimitRow {
                feature: feature.to_owned(),
                reason: format!(
                    "the Admin API answered {e} when listing {feature}: this organization's platform or plan does not offer it (admin-api.md §9), so Keycard cannot read or change it"
                ),
                http_status: e.status().map(i32::from),
                request_id: e.request_id().map(str::to_owned),
                detected_at: clock.now(),
            });
            Ok((0, 0))
        }
        other => other,
    }
}

/// Members the cheap read found that the mirror did not have.
#[derive(Debug, Clone, Default)]
pub(crate) struct NewMembers {
    pub users: Vec<User>,
    pub pages: u64,
    /// The read stopped before reaching a member the mirror knew: a full read is due.
    pub incomplete: bool,
}

/// Reads the newest members (the list is newest first) until it reaches one the mirror
/// already has: usually one request, whatever the number of pending invites. New members
/// go into the mirror, and pending invites to their addresses are marked accepted.
pub(crate) async fn poll_new_members(
    client: &AdminClient,
    journal: &Journal,
    clock: &SharedClock,
    max_pages: u64,
) -> Result<NewMembers, MirrorError> {
    let mut out = NewMembers::default();
    let mut query = ListUsers::new().limit(100);
    loop {
        let sent = clock.now();
        let page = client.list_users(&query).await?.value;
        out.pages += 1;
        let ids: Vec<String> = page.data.iter().map(|u| u.id.clone()).collect();
        let mut tx = journal.begin().await?;
        let known = tx.mirror_known(ObjectKind::User, &ids).await?;
        let fresh: Vec<User> = page
            .data
            .into_iter()
            .filter(|u| !known.contains(&u.id))
            .collect();
        let reached_known = !known.is_empty();
        tx.mirror_put(&fresh.iter().map(user_object).collect::<Vec<_>>(), sent)
            .await?;
        let keys: Vec<String> = fresh.iter().map(|u| fold_email(&u.email)).collect();
        for invite in tx.mirror_by_email(ObjectKind::Invite, &keys).await? {
            if invite.status.as_deref() == Some(InviteStatus::Pending.as_str())
                && let Some(mut inv) = super::decode::<crate::admin_api::Invite>(&invite)
            {
                inv.status = InviteStatus::Accepted;
                tx.mirror_put(&[invite_object(&inv)], sent).await?;
            }
        }
        tx.commit().await?;
        out.users.extend(fresh);
        match page.last_id.filter(|id| page.has_more && !id.is_empty()) {
            Some(last) if !reached_known && out.pages < max_pages => {
                query = query.after_id(last);
            }
            Some(_) if !reached_known => {
                out.incomplete = true;
                return Ok(out);
            }
            _ => return Ok(out),
        }
    }
}

/// Reads one person's part of the organization into the mirror: the member (by linked id,
/// then by each address), pending invites to their addresses, their memberships in
/// `workspaces`, and (with `with_keys`) the active keys they created. For the re-read after
/// the API says a goal is already met, where the mirror was evidently behind.
pub(crate) async fn refresh_person(
    client: &AdminClient,
    journal: &Journal,
    clock: &SharedClock,
    linked_user_id: Option<&str>,
    addresses: &[String],
    workspaces: &[String],
    with_keys: bool,
) -> Result<(), MirrorError> {
    let sent = clock.now();
    let mut objects = Vec::new();
    let mut gone = Vec::new();
    let mut member: Option<User> = None;
    if let Some(id) = linked_user_id {
        match client.get_user(id).await {
            Ok(reply) => member = Some(reply.value),
            Err(e) if e.is_not_found() => gone.push(Effect::UserGone(id.to_owned())),
            Err(e) => return Err(e.into()),
        }
    }
    for address in addresses {
        // The list filter tolerates +tag variants; only the same folded address is this one.
        let users = client
            .list_all_users(ListUsers::new().email(address.clone()))
            .await?;
        for u in users
            .iter()
            .filter(|u| fold_email(&u.email) == fold_email(address))
        {
            objects.push(user_object(u));
            member.get_or_insert_with(|| u.clone());
        }
        let invites = client
            .list_all_invites(ListInvites::new().email(address.clone()))
            .await?;
        objects.extend(
            invites
                .iter()
                .filter(|i| fold_email(&i.email) == fold_email(address))
                .map(invite_object),
        );
    }
    if let Some(member) = &member {
        objects.push(user_object(member));
        for ws in workspaces {
            match client.get_workspace_member(ws, &member.id).await {
                Ok(reply) => objects.push(member_object(&reply.value)),
                Err(e) if e.is_not_found() => gone.push(Effect::Gone(
                    ObjectKind::WorkspaceMember,
                    member_id(ws, &member.id),
                )),
                Err(e) => return Err(e.into()),
            }
        }
        if with_keys {
            let keys = client
                .list_all_api_keys(
                    ListApiKeys::new()
                        .created_by_user_id(member.id.clone())
                        .status(ApiKeyStatus::Active),
                )
                .await?;
            objects.extend(keys.iter().map(key_object));
        }
    }
    let mut tx = journal.begin().await?;
    tx.mirror_put(&objects, sent).await?;
    super::apply(&mut tx, &gone, sent).await?;
    tx.commit().await?;
    Ok(())
}

/// Before a destructive write: reads the object again when the mirror's entry is older
/// than `max_age`, and stores what it found. `true` when the entry was fresh enough or is
/// unchanged; `false` when the organization differs from what the plan was made from (the
/// caller re-plans instead of writing).
pub(crate) async fn verify(
    client: &AdminClient,
    journal: &Journal,
    clock: &SharedClock,
    kind: ObjectKind,
    id: &str,
    max_age: Duration,
) -> Result<bool, MirrorError> {
    let now = clock.now();
    let Some(row) = journal.conn().await?.mirror_get(kind, id).await? else {
        // Not in the mirror at all: nothing to compare with; the plan came from elsewhere.
        return Ok(true);
    };
    if now - row.seen_at <= max_age {
        return Ok(true);
    }
    let fresh: Result<Option<MirrorObject>, AdminApiError> = match kind {
        ObjectKind::User => client
            .get_user(id)
            .await
            .map(|r| Some(user_object(&r.value))),
        ObjectKind::ApiKey => client
            .get_api_key(id)
            .await
            .map(|r| Some(key_object(&r.value))),
        ObjectKind::WorkspaceMember => {
            match (row.workspace_id.as_deref(), row.user_id.as_deref()) {
                (Some(ws), Some(user)) => client
                    .get_workspace_member(ws, user)
                    .await
                    .map(|r| Some(member_object(&r.value))),
                _ => Ok(None),
            }
        }
        ObjectKind::Invite => client
            .get_invite(id)
            .await
            .map(|r| Some(invite_object(&r.value))),
        ObjectKind::Workspace => client
            .get_workspace(id)
            .await
            .map(|r| Some(workspace_object(&r.value))),
    };
    let mut tx = journal.begin().await?;
    let same = match fresh {
        Ok(Some(object)) => {
            let same = object.status == row.status && object.data == row.data;
            tx.mirror_put(&[object], now).await?;
            same
        }
        Ok(None) => true,
        Err(e) if e.is_not_found() => {
            let effect = if kind == ObjectKind::User {
                Effect::UserGone(id.to_owned())
            } else {
                Effect::Gone(kind, id.to_owned())
            };
            super::apply(&mut tx, &[effect], now).await?;
            false
        }
        Err(e) => return Err(e.into()),
    };
    tx.commit().await?;
    Ok(same)
}

/// After an add was refused: reads one workspace membership and stores it. `Some(role)`
/// when the user is a member of the workspace, `None` when they are not.
pub(crate) async fn read_membership(
    client: &AdminClient,
    journal: &Journal,
    clock: &SharedClock,
    workspace_id: &str,
    user_id: &str,
) -> Result<Option<String>, MirrorError> {
    match client.get_workspace_member(workspace_id, user_id).await {
        Ok(reply) => {
            let object = member_object(&reply.value);
            let role = object.status.clone();
            let mut tx = journal.begin().await?;
            tx.mirror_put(&[object], clock.now()).await?;
            tx.commit().await?;
            Ok(role)
        }
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Reads the active API keys a member created and stores them. `true` when the mirror
/// already had every one of them; `false` when some were new (the caller re-plans, so they
/// are deactivated with the rest of the offboarding).
pub(crate) async fn keys_unchanged(
    client: &AdminClient,
    journal: &Journal,
    clock: &SharedClock,
    user_id: &str,
) -> Result<bool, MirrorError> {
    let sent = clock.now();
    let keys = client
        .list_all_api_keys(
            ListApiKeys::new()
                .created_by_user_id(user_id.to_owned())
                .status(ApiKeyStatus::Active),
        )
        .await?;
    let mut tx = journal.begin().await?;
    let known: Vec<String> = tx
        .mirror_of_user(ObjectKind::ApiKey, user_id)
        .await?
        .into_iter()
        .filter(|r| r.status.as_deref() == Some(ApiKeyStatus::Active.as_str()))
        .map(|r| r.id)
        .collect();
    let unchanged = keys.iter().all(|k| known.contains(&k.id));
    tx.mirror_put(&keys.iter().map(key_object).collect::<Vec<_>>(), sent)
        .await?;
    tx.commit().await?;
    Ok(unchanged)
}
