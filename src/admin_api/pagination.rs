//! List queries and cursor paging (spec §3).
//!
//! Each list endpoint has a query type (`ListUsers`, `ListInvites`, ...) holding its filters
//! and [`PageParams`]. [`AdminClient::list_page`] fetches one page; [`AdminClient::pages`]
//! streams pages following the official SDK's rule (started with `before_id` ⇒ keep paging
//! backward with `before_id = first_id`, else forward with `after_id = last_id`; stop when
//! `has_more` is false or the cursor is missing); [`AdminClient::list_all`] collects them.

use futures::{Stream, TryStreamExt, stream};
use serde::de::DeserializeOwned;

use super::client::{AdminClient, Call, Reply};
use super::error::AdminApiError;
use super::pacing::Budget;
use super::types::{
    ApiKey, ApiKeyStatus, Invite, InviteStatus, OrgRole, Page, User, Workspace, WorkspaceMember,
};

/// The largest page the API serves; `list_all` uses it when no limit is set, to spend as
/// little of the 100 requests/min budget as possible.
pub const MAX_PAGE_SIZE: u32 = 1000;

/// `limit`, `after_id`, `before_id`. Send at most one cursor; the client passes what it is
/// given (limit bounds and cursor exclusivity are the server's to enforce).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PageParams {
    pub limit: Option<u32>,
    pub after_id: Option<String>,
    pub before_id: Option<String>,
}

impl PageParams {
    fn append(&self, out: &mut Vec<(&'static str, String)>) {
        if let Some(limit) = self.limit {
            out.push(("limit", limit.to_string()));
        }
        if let Some(after) = &self.after_id {
            out.push(("after_id", after.clone()));
        }
        if let Some(before) = &self.before_id {
            out.push(("before_id", before.clone()));
        }
    }
}

/// A list request: implemented by the `List*` query types of this module.
pub trait ListQuery: Clone + Send + Sync + 'static {
    type Item: DeserializeOwned + Send + 'static;

    /// Route template, for logs.
    fn route(&self) -> &'static str;
    /// Path segments after `/v1/organizations/`.
    fn path(&self) -> Vec<&str>;
    /// Filter query pairs (array filters in `name[]` form, like the SDK).
    fn filters(&self) -> Vec<(&'static str, String)>;
    fn page_params(&self) -> &PageParams;
    fn page_params_mut(&mut self) -> &mut PageParams;
}

macro_rules! page_builders {
    ($($ty:ty),+) => {$(
        impl $ty {
            /// Page size (API default 20, maximum 1000).
            pub fn limit(mut self, limit: u32) -> Self {
                self.page.limit = Some(limit);
                self
            }

            /// Forward cursor: the page right after this ID.
            pub fn after_id(mut self, id: impl Into<String>) -> Self {
                self.page.after_id = Some(id.into());
                self
            }

            /// Backward cursor: the page right before this ID (auto-paging then continues
            /// backward).
            pub fn before_id(mut self, id: impl Into<String>) -> Self {
                self.page.before_id = Some(id.into());
                self
            }
        }
    )+};
}

/// `GET /v1/organizations/users`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListUsers {
    pub page: PageParams,
    /// Normalized, case-insensitive match on the server.
    pub email: Option<String>,
    /// OR'ed.
    pub roles: Vec<OrgRole>,
}

impl ListUsers {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn email(mut self, email: impl Into<String>) -> Self {
        self.email = Some(email.into());
        self
    }

    pub fn role(mut self, role: OrgRole) -> Self {
        self.roles.push(role);
        self
    }
}

impl ListQuery for ListUsers {
    type Item = User;

    fn route(&self) -> &'static str {
        "/v1/organizations/users"
    }

    fn path(&self) -> Vec<&str> {
        vec!["users"]
    }

    fn filters(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if let Some(email) = &self.email {
            out.push(("email", email.clone()));
        }
        out.extend(self.roles.iter().map(|r| ("roles[]", r.to_string())));
        out
    }

    fn page_params(&self) -> &PageParams {
        &self.page
    }

    fn page_params_mut(&mut self) -> &mut PageParams {
        &mut self.page
    }
}

/// `GET /v1/organizations/invites`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListInvites {
    pub page: PageParams,
    pub email: Option<String>,
    pub roles: Vec<OrgRole>,
    /// OR'ed; empty means the server default (all of pending, accepted, expired).
    pub statuses: Vec<InviteStatus>,
}

impl ListInvites {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn email(mut self, email: impl Into<String>) -> Self {
        self.email = Some(email.into());
        self
    }

    pub fn role(mut self, role: OrgRole) -> Self {
        self.roles.push(role);
        self
    }

    pub fn status(mut self, status: InviteStatus) -> Self {
        self.statuses.push(status);
        self
    }
}

impl ListQuery for ListInvites {
    type Item = Invite;

    fn route(&self) -> &'static str {
        "/v1/organizations/invites"
    }

    fn path(&self) -> Vec<&str> {
        vec!["invites"]
    }

    fn filters(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if let Some(email) = &self.email {
            out.push(("email", email.clone()));
        }
        out.extend(self.roles.iter().map(|r| ("roles[]", r.to_string())));
        out.extend(self.statuses.iter().map(|s| ("statuses[]", s.to_string())));
        out
    }

    fn page_params(&self) -> &PageParams {
        &self.page
    }

    fn page_params_mut(&mut self) -> &mut PageParams {
        &mut self.page
    }
}

/// `GET /v1/organizations/workspaces` (never lists the Default Workspace).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListWorkspaces {
    pub page: PageParams,
    pub include_archived: Option<bool>,
}

impl ListWorkspaces {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn include_archived(mut self, include: bool) -> Self {
        self.include_archived = Some(include);
        self
    }
}

impl ListQuery for ListWorkspaces {
    type Item = Workspace;

    fn route(&self) -> &'static str {
        "/v1/organizations/workspaces"
    }

    fn path(&self) -> Vec<&str> {
        vec!["workspaces"]
    }

    fn filters(&self) -> Vec<(&'static str, String)> {
        self.include_archived
            .map(|b| ("include_archived", b.to_string()))
            .into_iter()
            .collect()
    }

    fn page_params(&self) -> &PageParams {
        &self.page
    }

    fn page_params_mut(&mut self) -> &mut PageParams {
        &mut self.page
    }
}

/// `GET /v1/organizations/workspaces/{workspace_id}/members`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListWorkspaceMembers {
    pub workspace_id: String,
    pub page: PageParams,
}

impl ListWorkspaceMembers {
    pub fn new(workspace_id: impl Into<String>) -> Self {
        Self {
            workspace_id: workspace_id.into(),
            page: PageParams::default(),
        }
    }
}

impl ListQuery for ListWorkspaceMembers {
    type Item = WorkspaceMember;

    fn route(&self) -> &'static str {
        "/v1/organizations/workspaces/{workspace_id}/members"
    }

    fn path(&self) -> Vec<&str> {
        vec!["workspaces", &self.workspace_id, "members"]
    }

    fn filters(&self) -> Vec<(&'static str, String)> {
        Vec::new()
    }

    fn page_params(&self) -> &PageParams {
        &self.page
    }

    fn page_params_mut(&mut self) -> &mut PageParams {
        &mut self.page
    }
}

/// `GET /v1/organizations/api_keys`; filters combine with AND.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListApiKeys {
    pub page: PageParams,
    pub status: Option<ApiKeyStatus>,
    pub workspace_id: Option<String>,
    pub created_by_user_id: Option<String>,
}

impl ListApiKeys {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn status(mut self, status: ApiKeyStatus) -> Self {
        self.status = Some(status);
        self
    }

    pub fn workspace_id(mut self, id: impl Into<String>) -> Self {
        self.workspace_id = Some(id.into());
        self
    }

    pub fn created_by_user_id(mut self, id: impl Into<String>) -> Self {
        self.created_by_user_id = Some(id.into());
        self
    }
}

impl ListQuery for ListApiKeys {
    type Item = ApiKey;

    fn route(&self) -> &'static str {
        "/v1/organizations/api_keys"
    }

    fn path(&self) -> Vec<&str> {
        vec!["api_keys"]
    }

    fn filters(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if let Some(status) = &self.status {
            out.push(("status", status.to_string()));
        }
        if let Some(id) = &self.workspace_id {
            out.push(("workspace_id", id.clone()));
        }
        if let Some(id) = &self.created_by_user_id {
            out.push(("created_by_user_id", id.clone()));
        }
        out
    }

    fn page_params(&self) -> &PageParams {
        &self.page
    }

    fn page_params_mut(&mut self) -> &mut PageParams {
        &mut self.page
    }
}

page_builders!(
    ListUsers,
    ListInvites,
    ListWorkspaces,
    ListWorkspaceMembers,
    ListApiKeys
);

/// The query for the page after `page`, per the SDK rule; `None` when paging is over.
pub(crate) fn next_query<Q: ListQuery>(query: &Q, page: &Page<Q::Item>) -> Option<Q> {
    if !page.has_more {
        return None;
    }
    let backward = query.page_params().before_id.is_some();
    let cursor = if backward {
        &page.first_id
    } else {
        &page.last_id
    };
    let cursor = cursor.as_deref().filter(|c| !c.is_empty())?;
    let mut next = query.clone();
    let params = next.page_params_mut();
    if backward {
        params.before_id = Some(cursor.to_owned());
    } else {
        params.after_id = Some(cursor.to_owned());
    }
    Some(next)
}

fn cursor_of<Q: ListQuery>(query: &Q) -> Option<&str> {
    let params = query.page_params();
    params.before_id.as_deref().or(params.after_id.as_deref())
}

enum PageState<Q> {
    Fetch(AdminClient, Q),
    Fail(AdminApiError),
    Done,
}

impl AdminClient {
    /// One page of any list endpoint.
    pub async fn list_page<Q: ListQuery>(
        &self,
        query: &Q,
    ) -> Result<Reply<Page<Q::Item>>, AdminApiError> {
        let mut pairs = query.filters();
        query.page_params().append(&mut pairs);
        let url = self.url(&query.path(), &pairs)?;
        self.execute(Call {
            method: reqwest::Method::GET,
            route: query.route(),
            url,
            body: None,
            beta: None,
            budget: Budget::General,
        })
        .await
    }

    /// Every page from `query` on, lazily, each with its [`super::CallMeta`]. Ends after the
    /// first error. A server that hands back the cursor it was just given ends the stream
    /// with [`AdminApiError::Pagination`] instead of looping forever.
    pub fn pages<Q: ListQuery>(
        &self,
        query: Q,
    ) -> impl Stream<Item = Result<Reply<Page<Q::Item>>, AdminApiError>> + Send + 'static {
        stream::unfold(PageState::Fetch(self.clone(), query), |state| async move {
            match state {
                PageState::Done => None,
                PageState::Fail(error) => Some((Err(error), PageState::Done)),
                PageState::Fetch(client, query) => match client.list_page(&query).await {
                    Err(error) => Some((Err(error), PageState::Done)),
                    Ok(reply) => {
                        let next = match next_query(&query, &reply.value) {
                            None => PageState::Done,
                            Some(next) if cursor_of(&next) == cursor_of(&query) => {
                                PageState::Fail(AdminApiError::Pagination {
                                    message: format!(
                                        "{} returned has_more with the cursor it was given ({:?})",
                                        query.route(),
                                        cursor_of(&query).unwrap_or_default()
                                    ),
                                    request_id: reply.meta.request_id.clone(),
                                })
                            }
                            Some(next) => PageState::Fetch(client, next),
                        };
                        Some((Ok(reply), next))
                    }
                },
            }
        })
    }

    /// Every item from `query` on, lazily.
    pub fn items<Q: ListQuery>(
        &self,
        query: Q,
    ) -> impl Stream<Item = Result<Q::Item, AdminApiError>> + Send + 'static {
        self.pages(query)
            .map_ok(|reply| stream::iter(reply.value.data.into_iter().map(Ok)))
            .try_flatten()
    }

    /// Every item from `query` on, collected. Uses pages of [`MAX_PAGE_SIZE`] unless the
    /// query sets a limit.
    pub async fn list_all<Q: ListQuery>(
        &self,
        mut query: Q,
    ) -> Result<Vec<Q::Item>, AdminApiError> {
        query.page_params_mut().limit.get_or_insert(MAX_PAGE_SIZE);
        self.pages(query)
            .try_fold(Vec::new(), |mut all, reply| async move {
                all.extend(reply.value.data);
                Ok(all)
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(ids: &[&str], has_more: bool) -> Page<User> {
        Page {
            data: Vec::new(),
            has_more,
            first_id: ids.first().map(|s| s.to_string()),
            last_id: ids.last().map(|s| s.to_string()),
        }
    }

    #[test]
    fn forward_paging_uses_last_id() {
        let q = ListUsers::new().limit(2);
        let next = next_query(&q, &page(&["a", "b"], true)).unwrap();
        assert_eq!(next.page.after_id.as_deref(), Some("b"));
        assert_eq!(next.page.before_id, None);
        assert_eq!(next.page.limit, Some(2));
        let again = next_query(&next, &page(&["c", "d"], true)).unwrap();
        assert_eq!(again.page.after_id.as_deref(), Some("d"));
    }

    #[test]
    fn backward_paging_uses_first_id() {
        let q = ListUsers::new().before_id("z");
        let next = next_query(&q, &page(&["x", "y"], true)).unwrap();
        assert_eq!(next.page.before_id.as_deref(), Some("x"));
        assert_eq!(next.page.after_id, None);
    }

    #[test]
    fn stops_without_more_or_cursor() {
        let q = ListUsers::new();
        assert!(next_query(&q, &page(&["a"], false)).is_none());
        assert!(next_query(&q, &page(&[], true)).is_none());
        assert!(next_query(&q, &page(&[""], true)).is_none());
    }

    #[test]
    fn filters_use_bracket_arrays() {
        let q = ListInvites::new()
            .email("a+b@example.com")
            .role(OrgRole::User)
            .role(OrgRole::Other("future".into()))
            .status(InviteStatus::Pending)
            .limit(5)
            .after_id("invite_1");
        let mut pairs = q.filters();
        q.page_params().append(&mut pairs);
        let rendered: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
        assert_eq!(
            rendered,
            [
                "email=a+b@example.com",
                "roles[]=user",
                "roles[]=future",
                "statuses[]=pending",
                "limit=5",
                "after_id=invite_1"
            ]
        );
        let keys = ListApiKeys::new()
            .status(ApiKeyStatus::Active)
            .workspace_id("wrkspc_1")
            .created_by_user_id("user_1");
        assert_eq!(keys.filters().len(), 3);
        assert_eq!(
            ListWorkspaces::new().include_archived(true).filters(),
            [("include_archived", "true".to_string())]
        );
    }
}
