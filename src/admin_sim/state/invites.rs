//! Invites: create (with the duplicate rules), list, withdraw, accept, expiry.

use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};

use super::super::error::{SimError, SimResult};
use super::super::input::{Body, PageParams, Query, check_enum};
use super::super::model::*;
use super::{SimState, display_name_from_email};

impl SimState {
    // ---------------------------------------------------------------- invites

    pub(crate) fn create_invite(&mut self, body: &Body, now: DateTime<Utc>) -> SimResult<Value> {
        self.require_members()?;
        body.only(&["email", "role", "rbac_group_ids"])?;
        let email = body.required_str("email")?.to_owned();
        if !looks_like_email(&email) {
            return Err(SimError::invalid(format!(
                "email: value is not a valid email address: '{email}'"
            )));
        }
        let role = self.validate_assignable_role(body)?.to_owned();
        let groups = body
            .optional_string_array("rbac_group_ids")?
            .unwrap_or_default();
        if groups.len() > 100 {
            return Err(SimError::invalid(
                "rbac_group_ids: List should have at most 100 items",
            ));
        }
        if !groups.is_empty() && self.org.kind == OrgKind::Console {
            return Err(SimError::invalid(
                "rbac_group_ids: RBAC groups are only available to Claude Enterprise organizations.",
            ));
        }
        let domain = email
            .rsplit_once('@')
            .map(|(_, d)| d.to_lowercase())
            .unwrap_or_default();
        if let Some(allowed) = &self.settings.allowed_email_domains
            && !allowed.iter().any(|d| d.eq_ignore_ascii_case(&domain))
        {
            return Err(SimError::invalid_code(
                "email_domain_not_allowed",
                format!("The domain {domain} is not allowed for this organization."),
            ));
        }
        if self
            .settings
            .unverified_email_domains
            .iter()
            .any(|d| d.eq_ignore_ascii_case(&domain))
        {
            return Err(SimError::invalid_code(
                "cannot_invite_emails_with_unverified_domains",
                format!(
                    "The domain {domain} must be verified before its addresses can be invited."
                ),
            ));
        }
        if let Some(user) = self.user_by_email(&email) {
            return Err(SimError::invalid_code(
                "already_member",
                format!(
                    "{email} already belongs to a member of the organization ({}).",
                    user.id
                ),
            ));
        }
        if let Some(existing) = self
            .invites
            .iter()
            .find(|i| i.status == InviteStatus::Pending && i.email.eq_ignore_ascii_case(&email))
        {
            return Err(SimError::invalid_code(
                "invite_already_exists",
                format!(
                    "A pending invite for {email} already exists ({}).",
                    existing.id
                ),
            ));
        }
        if let Some(limit) = self.settings.org_member_limit {
            let pending = self
                .invites
                .iter()
                .filter(|i| i.status == InviteStatus::Pending)
                .count();
            if self.users.len() + pending >= limit as usize {
                return Err(SimError::invalid_code(
                    "org_member_limit_exceeded",
                    format!(
                        "The organization's member limit of {limit} is reached (pending invites count)."
                    ),
                ));
            }
        }
        let id = mint_id("invite_");
        let seq = self.seq_for(&id);
        let invite = Invite {
            id,
            seq,
            email,
            role,
            status: InviteStatus::Pending,
            invited_at: now,
            expires_at: now + Duration::days(21),
            accepted_at: None,
            rbac_group_ids: groups,
        };
        let out = invite.to_json();
        self.invites.push(invite);
        Ok(out)
    }

    /// Seeds an invite (seed file); skips the API's checks except duplicates.
    pub(crate) fn seed_invite(&mut self, email: &str, role: &str, now: DateTime<Utc>) -> Value {
        let id = mint_id("invite_");
        let seq = self.seq_for(&id);
        let invite = Invite {
            id,
            seq,
            email: email.to_owned(),
            role: role.to_owned(),
            status: InviteStatus::Pending,
            invited_at: now,
            expires_at: now + Duration::days(21),
            accepted_at: None,
            rbac_group_ids: Vec::new(),
        };
        let out = invite.to_json();
        self.invites.push(invite);
        out
    }

    pub(crate) fn get_invite(&self, id: &str) -> SimResult<Value> {
        self.require_members()?;
        Ok(self.invites[self.invite_index(id)?].to_json())
    }

    pub(crate) fn list_invites(&self, query: &Query) -> SimResult<Value> {
        self.require_members()?;
        let page = PageParams::parse(query, self.settings.reject_both_cursors)?;
        let email = query.get("email").map(normalize_email);
        let roles = query.all("roles");
        self.check_roles_filter(&roles)?;
        let statuses = query.all("statuses");
        statuses
            .iter()
            .try_for_each(|s| check_enum("statuses", s, &["accepted", "expired", "pending"]))?;
        let items = self
            .invites
            .iter()
            .filter(|i| i.status != InviteStatus::Deleted)
            .filter(|i| {
                email
                    .as_ref()
                    .is_none_or(|e| normalize_email(&i.email) == *e)
            })
            .filter(|i| roles.is_empty() || roles.contains(&i.role.as_str()))
            .filter(|i| statuses.is_empty() || statuses.contains(&i.status.as_str()))
            .map(|i| (i.seq, i.to_json()))
            .collect();
        let invites = &self.invites;
        self.paginate(
            items,
            &page,
            self.global_cursor(|id| {
                invites
                    .iter()
                    .any(|i| i.id == id && i.status != InviteStatus::Deleted)
            }),
        )
    }

    pub(crate) fn delete_invite(&mut self, id: &str) -> SimResult<Value> {
        self.require_members()?;
        let idx = self.invite_index(id)?;
        let invite = &mut self.invites[idx];
        if invite.status != InviteStatus::Pending {
            let hint = if invite.status == InviteStatus::Accepted {
                " Remove the member instead."
            } else {
                ""
            };
            return Err(SimError::invalid(format!(
                "Only pending invites can be deleted; {id} is {}.{hint}",
                invite.status.as_str()
            )));
        }
        invite.status = InviteStatus::Deleted;
        Ok(json!({ "id": id, "type": "invite_deleted" }))
    }

    /// Control API: the invitee accepts, becoming a member with the invite's role.
    pub(crate) fn accept_invite(
        &mut self,
        id: &str,
        name: Option<&str>,
        now: DateTime<Utc>,
    ) -> SimResult<Value> {
        let idx = self.invite_index(id)?;
        let invite = &self.invites[idx];
        if invite.status != InviteStatus::Pending {
            return Err(SimError::invalid(format!(
                "Invite {id} is {} and cannot be accepted.",
                invite.status.as_str()
            )));
        }
        if self.user_by_email(&invite.email).is_some() {
            return Err(SimError::invalid(format!(
                "{} is already a member of the organization.",
                invite.email
            )));
        }
        let (email, role) = (invite.email.clone(), invite.role.clone());
        let name = name.map_or_else(|| display_name_from_email(&email), str::to_owned);
        let invite = &mut self.invites[idx];
        invite.status = InviteStatus::Accepted;
        invite.accepted_at = Some(now);
        Ok(self.add_user(&email, &name, &role, now).to_json())
    }

    /// Adds a member directly (seed file and control API): any role, admins included.
    pub(crate) fn add_user(
        &mut self,
        email: &str,
        name: &str,
        role: &str,
        now: DateTime<Utc>,
    ) -> &User {
        let id = mint_id("user_");
        let seq = self.seq_for(&id);
        self.users.push(User {
            id,
            seq,
            email: email.to_owned(),
            name: name.to_owned(),
            role: role.to_owned(),
            added_at: now,
        });
        let last = self.users.len() - 1;
        &self.users[last]
    }
}
