//! One step, one Admin API call.

use serde_json::{Value, json};

use crate::admin_api::{
    AdminApiError, AdminClient, ApiKeyStatus, CallMeta, CreateInvite, OrgRole, UpdateApiKey,
    WorkspaceRole,
};
use crate::planner::Step;

/// The request as journaled: method, route and body; never credentials.
pub fn request_of(step: &Step) -> Value {
    let (method, path, body) = match step {
        Step::CreateInvite { email, role } => (
            "POST",
            "/v1/organizations/invites".to_owned(),
            json!({ "email": email, "role": role }),
        ),
        Step::WithdrawInvite { invite_id, .. } => (
            "DELETE",
            format!("/v1/organizations/invites/{invite_id}"),
            Value::Null,
        ),
        Step::UpdateUserRole { user_id, to, .. } => (
            "POST",
            format!("/v1/organizations/users/{user_id}"),
            json!({ "role": to }),
        ),
        Step::AddWorkspaceMember {
            workspace_id,
            user_id,
            role,
            ..
        } => (
            "POST",
            format!("/v1/organizations/workspaces/{workspace_id}/members"),
            json!({ "user_id": user_id, "workspace_role": role }),
        ),
        Step::UpdateWorkspaceMember {
            workspace_id,
            user_id,
            to,
            ..
        } => (
            "POST",
            format!("/v1/organizations/workspaces/{workspace_id}/members/{user_id}"),
            json!({ "workspace_role": to }),
        ),
        Step::RemoveWorkspaceMember {
            workspace_id,
            user_id,
            ..
        } => (
            "DELETE",
            format!("/v1/organizations/workspaces/{workspace_id}/members/{user_id}"),
            Value::Null,
        ),
        Step::DeactivateApiKey { key_id, status, .. } => (
            "POST",
            format!("/v1/organizations/api_keys/{key_id}"),
            json!({ "status": status }),
        ),
        Step::RemoveUser { user_id, .. } => (
            "DELETE",
            format!("/v1/organizations/users/{user_id}"),
            Value::Null,
        ),
        Step::WaitForAcceptance { .. } | Step::ManualAction { .. } => return Value::Null,
    };
    json!({ "method": method, "path": path, "body": body })
}

fn parse<T: std::str::FromStr>(value: &str, what: &str) -> Result<T, AdminApiError> {
    value
        .parse()
        .map_err(|_| AdminApiError::InvalidArgument(format!("{what} '{value}' is not known")))
}

/// Performs the step's call; returns the call's metadata.
pub async fn perform(client: &AdminClient, step: &Step) -> Result<CallMeta, AdminApiError> {
    let meta = match step {
        Step::CreateInvite { email, role } => {
            let role: OrgRole = parse(role, "organization role")?;
            client
                .create_invite(&CreateInvite::new(email.clone(), role))
                .await?
                .meta
        }
        Step::WithdrawInvite { invite_id, .. } => client.delete_invite(invite_id).await?.meta,
        Step::UpdateUserRole { user_id, to, .. } => {
            let role: OrgRole = parse(to, "organization role")?;
            client.update_user_role(user_id, &role).await?.meta
        }
        Step::AddWorkspaceMember {
            workspace_id,
            user_id,
            role,
            ..
        } => {
            let role: WorkspaceRole = parse(role, "workspace role")?;
            client
                .add_workspace_member(workspace_id, user_id, &role)
                .await?
                .meta
        }
        Step::UpdateWorkspaceMember {
            workspace_id,
            user_id,
            to,
            ..
        } => {
            let role: WorkspaceRole = parse(to, "workspace role")?;
            client
                .update_workspace_member(workspace_id, user_id, &role)
                .await?
                .meta
        }
        Step::RemoveWorkspaceMember {
            workspace_id,
            user_id,
            ..
        } => {
            client
                .remove_workspace_member(workspace_id, user_id)
                .await?
                .meta
        }
        Step::DeactivateApiKey { key_id, status, .. } => {
            let status: ApiKeyStatus = parse(status, "API key status")?;
            client
                .update_api_key(key_id, &UpdateApiKey::new().status(status))
                .await?
                .meta
        }
        Step::RemoveUser { user_id, .. } => client.remove_user(user_id).await?.meta,
        Step::WaitForAcceptance { .. } | Step::ManualAction { .. } => {
            return Err(AdminApiError::InvalidArgument(
                "this step does not call the Admin API".into(),
            ));
        }
    };
    Ok(meta)
}
