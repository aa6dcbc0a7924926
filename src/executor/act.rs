//! One step, one Admin API call.

use serde_json::{Value, json};

use crate::admin_api::{
    AdminApiError, AdminClient, ApiKeyStatus, CallMeta, CreateInvite, OrgRole, UpdateApiKey,
    WorkspaceRole,
};
use crate::mirror::{
    Effect, ObjectKind, invite_object, key_object, member_id, member_object, user_object,
};
use crate::planner::Step;

/// The request as journaled: method, route and body; never credentials.
pub(super) fn request_of(step: &Step) -> Value {
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
        Step::ArchiveWorkspace { workspace_id, .. } => (
            "POST",
            format!("/v1/organizations/workspaces/{workspace_id}/archive"),
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

/// What a successful call did: its metadata, and what it changed in the organization (to
/// keep the mirror current from the API's own answer).
#[derive(Debug, Clone)]
pub struct Done {
    pub meta: CallMeta,
    pub effects: Vec<Effect>,
}

/// The mirror entry a destructive step acts on, to read again before the write when the
/// mirror's copy is old.
pub(super) fn target_of(step: &Step) -> Option<(ObjectKind, String)> {
    match step {
        Step::WithdrawInvite { invite_id, .. } => Some((ObjectKind::Invite, invite_id.clone())),
        Step::RemoveWorkspaceMember {
            workspace_id,
            user_id,
            ..
        } => Some((
            ObjectKind::WorkspaceMember,
            member_id(workspace_id, user_id),
        )),
        Step::DeactivateApiKey { key_id, .. } => Some((ObjectKind::ApiKey, key_id.clone())),
        Step::RemoveUser { user_id, .. } => Some((ObjectKind::User, user_id.clone())),
        Step::ArchiveWorkspace { workspace_id, .. } => {
            Some((ObjectKind::Workspace, workspace_id.clone()))
        }
        _ => None,
    }
}

/// What a removal that found its object already gone means for the mirror.
pub(super) fn gone_effects(step: &Step) -> Vec<Effect> {
    match step {
        Step::RemoveUser { user_id, .. } => vec![Effect::UserGone(user_id.clone())],
        other => target_of(other)
            .map(|(kind, id)| vec![Effect::Gone(kind, id)])
            .unwrap_or_default(),
    }
}

/// Performs the step's call; returns its metadata and what it changed.
pub async fn perform(client: &AdminClient, step: &Step) -> Result<Done, AdminApiError> {
    let (meta, effects) = match step {
        Step::CreateInvite { email, role } => {
            let role: OrgRole = parse(role, "organization role")?;
            let reply = client
                .create_invite(&CreateInvite::new(email.clone(), role))
                .await?;
            (reply.meta, vec![Effect::Put(invite_object(&reply.value))])
        }
        Step::WithdrawInvite { .. }
        | Step::RemoveWorkspaceMember { .. }
        | Step::RemoveUser { .. } => {
            let meta = match step {
                Step::WithdrawInvite { invite_id, .. } => {
                    client.delete_invite(invite_id).await?.meta
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
                Step::RemoveUser { user_id, .. } => client.remove_user(user_id).await?.meta,
                _ => unreachable_step()?,
            };
            (meta, gone_effects(step))
        }
        Step::UpdateUserRole { user_id, to, .. } => {
            let role: OrgRole = parse(to, "organization role")?;
            let reply = client.update_user_role(user_id, &role).await?;
            (reply.meta, vec![Effect::Put(user_object(&reply.value))])
        }
        Step::AddWorkspaceMember {
            workspace_id,
            user_id,
            role,
            ..
        } => {
            let role: WorkspaceRole = parse(role, "workspace role")?;
            let reply = client
                .add_workspace_member(workspace_id, user_id, &role)
                .await?;
            (reply.meta, vec![Effect::Put(member_object(&reply.value))])
        }
        Step::UpdateWorkspaceMember {
            workspace_id,
            user_id,
            to,
            ..
        } => {
            let role: WorkspaceRole = parse(to, "workspace role")?;
            let reply = client
                .update_workspace_member(workspace_id, user_id, &role)
                .await?;
            (reply.meta, vec![Effect::Put(member_object(&reply.value))])
        }
        Step::DeactivateApiKey { key_id, status, .. } => {
            let status: ApiKeyStatus = parse(status, "API key status")?;
            let reply = client
                .update_api_key(key_id, &UpdateApiKey::new().status(status))
                .await?;
            (reply.meta, vec![Effect::Put(key_object(&reply.value))])
        }
        Step::ArchiveWorkspace { workspace_id, .. } => {
            let reply = client.archive_workspace(workspace_id).await?;
            (
                reply.meta,
                vec![Effect::Put(crate::mirror::workspace_object(&reply.value))],
            )
        }
        Step::WaitForAcceptance { .. } | Step::ManualAction { .. } => unreachable_step()?,
    };
    Ok(Done { meta, effects })
}

fn unreachable_step<T>() -> Result<T, AdminApiError> {
    Err(AdminApiError::InvalidArgument(
        "this step does not call the Admin API".into(),
    ))
}
