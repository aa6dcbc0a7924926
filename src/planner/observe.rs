//! Reading what the Admin API says a person has: the other input of the plan.

use std::collections::BTreeMap;

use crate::admin_api::{
    AdminApiError, AdminClient, ApiKey, ApiKeyStatus, Invite, InviteStatus, ListApiKeys,
    ListInvites, ListUsers, User, WorkspaceRole,
};

/// The person's current state in the organization.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    pub member: Option<User>,
    pub pending_invite: Option<Invite>,
    /// Pending invites to addresses the person had before (an email changed before the
    /// invite was accepted): they must not stay usable.
    pub stale_invites: Vec<Invite>,
    /// Memberships in managed workspaces: workspace id -> (name, role).
    pub memberships: BTreeMap<String, (String, WorkspaceRole)>,
    /// Active API keys the member created (read only when offboarding needs them).
    pub api_keys: Vec<ApiKey>,
}

/// Reads the member (by linked user id first, then, when `by_email`, by exact email), their
/// pending invite, their memberships in the managed workspaces and, when `with_keys`, the
/// active keys they created. Only GETs: safe for `keycard plan`.
#[allow(clippy::too_many_arguments)]
pub async fn observe(
    client: &AdminClient,
    linked_user_id: Option<&str>,
    email: Option<&str>,
    previous_emails: &[String],
    by_email: bool,
    managed: &BTreeMap<String, Option<String>>,
    with_keys: bool,
) -> Result<Observed, AdminApiError> {
    let mut observed = Observed::default();

    // The link survives an email change at the source; the API cannot rename members.
    if let Some(id) = linked_user_id {
        match client.get_user(id).await {
            Ok(reply) => observed.member = Some(reply.value),
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e),
        }
    }
    if observed.member.is_none() && by_email {
        // The current address first, then earlier ones: an invite accepted under an old
        // address before Keycard noticed is still this person's account.
        for address in email
            .into_iter()
            .chain(previous_emails.iter().map(String::as_str))
        {
            // The list filter tolerates +tag variants; only an exact (case-insensitive)
            // match is the same person.
            let users = client
                .list_all_users(ListUsers::new().email(address))
                .await?;
            observed.member = users
                .into_iter()
                .find(|u| u.email.eq_ignore_ascii_case(address));
            if observed.member.is_some() {
                break;
            }
        }
    }
    for address in previous_emails {
        let invites = client
            .list_all_invites(
                ListInvites::new()
                    .email(address.clone())
                    .status(InviteStatus::Pending),
            )
            .await?;
        observed
            .stale_invites
            .extend(invites.into_iter().filter(|i| {
                i.email.eq_ignore_ascii_case(address) && i.status == InviteStatus::Pending
            }));
    }
    if let Some(email) = email {
        let invites = client
            .list_all_invites(
                ListInvites::new()
                    .email(email)
                    .status(InviteStatus::Pending),
            )
            .await?;
        observed.pending_invite = invites
            .into_iter()
            .find(|i| i.email.eq_ignore_ascii_case(email) && i.status == InviteStatus::Pending);
    }

    if let Some(member) = &observed.member {
        for (name, id) in managed {
            let Some(workspace_id) = id else { continue };
            match client.get_workspace_member(workspace_id, &member.id).await {
                Ok(reply) => {
                    observed.memberships.insert(
                        workspace_id.clone(),
                        (name.clone(), reply.value.workspace_role),
                    );
                }
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e),
            }
        }
        if with_keys {
            observed.api_keys = client
                .list_all_api_keys(
                    ListApiKeys::new()
                        .created_by_user_id(member.id.clone())
                        .status(ApiKeyStatus::Active),
                )
                .await?;
        }
    }
    Ok(observed)
}
