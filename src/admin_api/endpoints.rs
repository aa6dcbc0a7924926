//! One typed method per in-scope endpoint (spec §7, §14). Every method returns the decoded
//! object in a [`Reply`] with the call's metadata; list methods take the query types from
//! [`super::pagination`].

use reqwest::Method;
use serde::de::DeserializeOwned;

use super::client::{AdminClient, Call, Reply, SIGN_OUT_BETA};
use super::error::AdminApiError;
use super::pacing::Budget;
use super::pagination::{
    ListApiKeys, ListInvites, ListUsers, ListWorkspaceMembers, ListWorkspaces,
};
use super::types::{
    AddWorkspaceMember, ApiKey, CreateInvite, CreateWorkspace, Invite, InviteDeleted, OrgRole,
    Organization, Page, UpdateApiKey, UpdateUser, UpdateWorkspace, UpdateWorkspaceMember, User,
    UserDeleted, Workspace, WorkspaceMember, WorkspaceMemberDeleted, WorkspaceRole,
};

type Result<T> = std::result::Result<Reply<T>, AdminApiError>;

/// Serializes a request body; our own types always serialize, but stay panic-free.
fn json(body: &impl serde::Serialize) -> std::result::Result<bytes::Bytes, AdminApiError> {
    serde_json::to_vec(body)
        .map(bytes::Bytes::from)
        .map_err(|e| AdminApiError::InvalidArgument(format!("request body: {e}")))
}

impl AdminClient {
    async fn get<T: DeserializeOwned>(&self, route: &'static str, path: &[&str]) -> Result<T> {
        self.send(Method::GET, route, path, None, Budget::General, None)
            .await
    }

    async fn delete<T: DeserializeOwned>(&self, route: &'static str, path: &[&str]) -> Result<T> {
        self.send(Method::DELETE, route, path, None, Budget::General, None)
            .await
    }

    async fn post<T: DeserializeOwned>(
        &self,
        route: &'static str,
        path: &[&str],
        body: Option<bytes::Bytes>,
        budget: Budget,
        beta: Option<&'static str>,
    ) -> Result<T> {
        self.send(Method::POST, route, path, body, budget, beta)
            .await
    }

    async fn send<T: DeserializeOwned>(
        &self,
        method: Method,
        route: &'static str,
        path: &[&str],
        body: Option<bytes::Bytes>,
        budget: Budget,
        beta: Option<&'static str>,
    ) -> Result<T> {
        let url = self.url(path, &[])?;
        self.execute(Call {
            method,
            route,
            url,
            body,
            beta,
            budget,
        })
        .await
    }

    // --- organization ---------------------------------------------------------------------

    /// `GET /v1/organizations/me`: the organization the credential belongs to.
    pub async fn get_organization(&self) -> Result<Organization> {
        self.get("/v1/organizations/me", &["me"]).await
    }

    // --- users ----------------------------------------------------------------------------

    /// `GET /v1/organizations/users`, one page. An email that matches nobody gives an empty
    /// page.
    pub async fn list_users(&self, query: &ListUsers) -> Result<Page<User>> {
        self.list_page(query).await
    }

    /// All users matching `query` (every page).
    pub async fn list_all_users(
        &self,
        query: ListUsers,
    ) -> std::result::Result<Vec<User>, AdminApiError> {
        self.list_all(query).await
    }

    /// `GET /v1/organizations/users/{user_id}`.
    pub async fn get_user(&self, user_id: &str) -> Result<User> {
        self.get("/v1/organizations/users/{user_id}", &["users", user_id])
            .await
    }

    /// `POST /v1/organizations/users/{user_id}` with `{role}`. The API refuses `admin` and
    /// refuses to change administrative members (400).
    pub async fn update_user_role(&self, user_id: &str, role: &OrgRole) -> Result<User> {
        self.post(
            "/v1/organizations/users/{user_id}",
            &["users", user_id],
            Some(json(&UpdateUser { role })?),
            Budget::General,
            None,
        )
        .await
    }

    /// `DELETE /v1/organizations/users/{user_id}`. Administrative members cannot be removed
    /// (400).
    pub async fn remove_user(&self, user_id: &str) -> Result<UserDeleted> {
        self.delete("/v1/organizations/users/{user_id}", &["users", user_id])
            .await
    }

    /// Beta `POST /v1/organizations/users/{user_id}/sign_out` (header `anthropic-beta:
    /// admin-user-sign-out-2026-10-08`): ends the member's sessions and OAuth tokens without
    /// removing them. Orgs outside the beta answer 400 `organization_not_enrolled_in_beta`.
    pub async fn sign_out_user(&self, user_id: &str) -> Result<User> {
        self.post(
            "/v1/organizations/users/{user_id}/sign_out",
            &["users", user_id, "sign_out"],
            None,
            Budget::General,
            Some(SIGN_OUT_BETA),
        )
        .await
    }

    // --- invites --------------------------------------------------------------------------

    /// `POST /v1/organizations/invites`. Paced on both the general and the invite budget.
    /// `already_member` / `invite_already_exists` errors mean "re-read state"
    /// ([`AdminApiError::suggests_reread`]).
    pub async fn create_invite(&self, invite: &CreateInvite) -> Result<Invite> {
        self.post(
            "/v1/organizations/invites",
            &["invites"],
            Some(json(invite)?),
            Budget::InviteCreate,
            None,
        )
        .await
    }

    /// `GET /v1/organizations/invites/{invite_id}`.
    pub async fn get_invite(&self, invite_id: &str) -> Result<Invite> {
        self.get(
            "/v1/organizations/invites/{invite_id}",
            &["invites", invite_id],
        )
        .await
    }

    /// `GET /v1/organizations/invites`, one page.
    pub async fn list_invites(&self, query: &ListInvites) -> Result<Page<Invite>> {
        self.list_page(query).await
    }

    /// All invites matching `query`.
    pub async fn list_all_invites(
        &self,
        query: ListInvites,
    ) -> std::result::Result<Vec<Invite>, AdminApiError> {
        self.list_all(query).await
    }

    /// `DELETE /v1/organizations/invites/{invite_id}` (withdraw; pending invites only).
    pub async fn delete_invite(&self, invite_id: &str) -> Result<InviteDeleted> {
        self.delete(
            "/v1/organizations/invites/{invite_id}",
            &["invites", invite_id],
        )
        .await
    }

    // --- workspaces -----------------------------------------------------------------------

    /// `POST /v1/organizations/workspaces`.
    pub async fn create_workspace(&self, workspace: &CreateWorkspace) -> Result<Workspace> {
        self.post(
            "/v1/organizations/workspaces",
            &["workspaces"],
            Some(json(workspace)?),
            Budget::General,
            None,
        )
        .await
    }

    /// `GET /v1/organizations/workspaces/{workspace_id}` (works for the Default Workspace).
    pub async fn get_workspace(&self, workspace_id: &str) -> Result<Workspace> {
        self.get(
            "/v1/organizations/workspaces/{workspace_id}",
            &["workspaces", workspace_id],
        )
        .await
    }

    /// `GET /v1/organizations/workspaces`, one page.
    pub async fn list_workspaces(&self, query: &ListWorkspaces) -> Result<Page<Workspace>> {
        self.list_page(query).await
    }

    /// All workspaces matching `query`.
    pub async fn list_all_workspaces(
        &self,
        query: ListWorkspaces,
    ) -> std::result::Result<Vec<Workspace>, AdminApiError> {
        self.list_all(query).await
    }

    /// `POST /v1/organizations/workspaces/{workspace_id}`.
    pub async fn update_workspace(
        &self,
        workspace_id: &str,
        update: &UpdateWorkspace,
    ) -> Result<Workspace> {
        self.post(
            "/v1/organizations/workspaces/{workspace_id}",
            &["workspaces", workspace_id],
            Some(json(update)?),
            Budget::General,
            None,
        )
        .await
    }

    /// `POST /v1/organizations/workspaces/{workspace_id}/archive` (irreversible).
    pub async fn archive_workspace(&self, workspace_id: &str) -> Result<Workspace> {
        self.post(
            "/v1/organizations/workspaces/{workspace_id}/archive",
            &["workspaces", workspace_id, "archive"],
            None,
            Budget::General,
            None,
        )
        .await
    }

    // --- workspace members ----------------------------------------------------------------

    /// `POST /v1/organizations/workspaces/{workspace_id}/members`. `workspace_billing` cannot
    /// be assigned.
    pub async fn add_workspace_member(
        &self,
        workspace_id: &str,
        user_id: &str,
        role: &WorkspaceRole,
    ) -> Result<WorkspaceMember> {
        self.post(
            "/v1/organizations/workspaces/{workspace_id}/members",
            &["workspaces", workspace_id, "members"],
            Some(json(&AddWorkspaceMember {
                user_id,
                workspace_role: role,
            })?),
            Budget::General,
            None,
        )
        .await
    }

    /// `GET /v1/organizations/workspaces/{workspace_id}/members/{user_id}`.
    pub async fn get_workspace_member(
        &self,
        workspace_id: &str,
        user_id: &str,
    ) -> Result<WorkspaceMember> {
        self.get(
            "/v1/organizations/workspaces/{workspace_id}/members/{user_id}",
            &["workspaces", workspace_id, "members", user_id],
        )
        .await
    }

    /// `GET /v1/organizations/workspaces/{workspace_id}/members`, one page.
    pub async fn list_workspace_members(
        &self,
        query: &ListWorkspaceMembers,
    ) -> Result<Page<WorkspaceMember>> {
        self.list_page(query).await
    }

    /// All members of one workspace.
    pub async fn list_all_workspace_members(
        &self,
        query: ListWorkspaceMembers,
    ) -> std::result::Result<Vec<WorkspaceMember>, AdminApiError> {
        self.list_all(query).await
    }

    /// `POST /v1/organizations/workspaces/{workspace_id}/members/{user_id}`.
    pub async fn update_workspace_member(
        &self,
        workspace_id: &str,
        user_id: &str,
        role: &WorkspaceRole,
    ) -> Result<WorkspaceMember> {
        self.post(
            "/v1/organizations/workspaces/{workspace_id}/members/{user_id}",
            &["workspaces", workspace_id, "members", user_id],
            Some(json(&UpdateWorkspaceMember {
                workspace_role: role,
            })?),
            Budget::General,
            None,
        )
        .await
    }

    /// `DELETE /v1/organizations/workspaces/{workspace_id}/members/{user_id}`.
    pub async fn remove_workspace_member(
        &self,
        workspace_id: &str,
        user_id: &str,
    ) -> Result<WorkspaceMemberDeleted> {
        self.delete(
            "/v1/organizations/workspaces/{workspace_id}/members/{user_id}",
            &["workspaces", workspace_id, "members", user_id],
        )
        .await
    }

    // --- API keys -------------------------------------------------------------------------

    /// `GET /v1/organizations/api_keys`, one page.
    pub async fn list_api_keys(&self, query: &ListApiKeys) -> Result<Page<ApiKey>> {
        self.list_page(query).await
    }

    /// All API keys matching `query` (e.g. a leaver's: `created_by_user_id` + `active`).
    pub async fn list_all_api_keys(
        &self,
        query: ListApiKeys,
    ) -> std::result::Result<Vec<ApiKey>, AdminApiError> {
        self.list_all(query).await
    }

    /// `GET /v1/organizations/api_keys/{api_key_id}`.
    pub async fn get_api_key(&self, api_key_id: &str) -> Result<ApiKey> {
        self.get(
            "/v1/organizations/api_keys/{api_key_id}",
            &["api_keys", api_key_id],
        )
        .await
    }

    /// `POST /v1/organizations/api_keys/{api_key_id}` (rename and/or change status; `expired`
    /// cannot be set).
    pub async fn update_api_key(&self, api_key_id: &str, update: &UpdateApiKey) -> Result<ApiKey> {
        self.post(
            "/v1/organizations/api_keys/{api_key_id}",
            &["api_keys", api_key_id],
            Some(json(update)?),
            Budget::General,
            None,
        )
        .await
    }
}
