//! Members of the organization: list, read, role changes, removal and sign-out (docs/spec/admin-api.md §11).

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::super::error::{SimError, SimResult};
use super::super::input::{Body, PageParams, Query, check_enum};
use super::super::model::*;
use super::SimState;

impl SimState {
    // ---------------------------------------------------------------- users

    /// The `roles` list filter accepts the roles of this kind of org (§7.2, and the SDK's
    /// "accepted values depend on the organization type"); others are unknown enum values.
    pub(super) fn check_roles_filter(&self, roles: &[&str]) -> SimResult<()> {
        roles
            .iter()
            .try_for_each(|r| check_enum("roles", r, filterable_roles(self.org.kind)))
    }

    pub(crate) fn list_users(&self, query: &Query) -> SimResult<Value> {
        self.require_members()?;
        let page = PageParams::parse(query, self.settings.reject_both_cursors)?;
        let email = query.get("email").map(normalize_email);
        let roles = query.all("roles");
        self.check_roles_filter(&roles)?;
        let items = self
            .users
            .iter()
            .filter(|u| {
                email
                    .as_ref()
                    .is_none_or(|e| normalize_email(&u.email) == *e)
            })
            .filter(|u| roles.is_empty() || roles.contains(&u.role.as_str()))
            .map(|u| (u.seq, u.to_json()))
            .collect();
        let users = &self.users;
        self.paginate(
            items,
            &page,
            self.global_cursor(|id| users.iter().any(|u| u.id == id)),
        )
    }

    pub(crate) fn get_user(&self, id: &str) -> SimResult<Value> {
        self.require_members()?;
        Ok(self.user(id)?.to_json())
    }

    pub(super) fn validate_assignable_role<'a>(&self, body: &'a Body) -> SimResult<&'a str> {
        let role = body.required_enum("role", RETURNED_ORG_ROLES)?;
        if !assignable_roles(self.org.kind).contains(&role) {
            return Err(SimError::invalid(format!(
                "role: '{role}' cannot be assigned through the API; allowed: {}",
                assignable_roles(self.org.kind).join(", ")
            )));
        }
        Ok(role)
    }

    pub(crate) fn update_user(&mut self, id: &str, body: &Body) -> SimResult<Value> {
        self.require_members()?;
        body.only(&["role"])?;
        let role = self.validate_assignable_role(body)?.to_owned();
        let idx = self.user_index(id)?;
        let user = &mut self.users[idx];
        if is_administrative(&user.role) {
            return Err(SimError::invalid(format!(
                "Cannot change the role of {} ({}): members with an administrative role can only be changed in the Console.",
                user.id, user.role
            )));
        }
        user.role = role;
        Ok(user.to_json())
    }

    pub(crate) fn remove_user(&mut self, id: &str, now: DateTime<Utc>) -> SimResult<Value> {
        self.require_members()?;
        let idx = self.user_index(id)?;
        let role = self.users[idx].role.clone();
        if is_administrative(&role) {
            return Err(SimError::invalid(format!(
                "Cannot remove {id}: members with the {role} role cannot be removed through the API."
            )));
        }
        if self.users.len() == 1 {
            return Err(SimError::invalid_code(
                "cannot_remove_last_member",
                format!("Cannot remove {id}: it is the organization's only member."),
            ));
        }
        self.users.remove(idx);
        // A removed user is no longer an org member, so explicit memberships go too.
        let (gone, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut self.members)
            .into_iter()
            .partition(|m| m.user_id == id);
        self.members = kept;
        for m in gone {
            self.member_tombstones
                .insert(format!("{}/{}", m.workspace_id, m.user_id), m.seq);
        }
        if self.settings.remove_user_deactivates_personal_keys {
            for key in &mut self.api_keys {
                if key.principal_user_id.as_deref() == Some(id)
                    && key.effective_status(now) == KeyStatus::Active
                {
                    key.status = KeyStatus::Inactive;
                }
            }
        }
        Ok(json!({ "id": id, "type": "user_deleted" }))
    }

    pub(crate) fn sign_out_user(
        &self,
        id: &str,
        beta_header: Option<&str>,
        caller: Caller,
    ) -> SimResult<Value> {
        self.require_members()?;
        let opted_in = beta_header.is_some_and(|h| {
            h.split(',')
                .any(|b| b.trim() == "admin-user-sign-out-2026-10-08")
        });
        if !opted_in {
            return Err(SimError::invalid(
                "This endpoint is in beta: send the header anthropic-beta: admin-user-sign-out-2026-10-08.",
            ));
        }
        if !self.sign_out_enrolled() {
            return Err(SimError::invalid_code(
                "organization_not_enrolled_in_beta",
                "This organization is not enrolled in the admin-user-sign-out beta.",
            ));
        }
        let user = self.user(id)?;
        // The refusals of the SDK's sign_out (§14): the primary owner never (400); owners
        // and members with owner permissions (a Console `admin`) and membership admins not
        // with an Admin API key (403, role-specific code), and no privileged member with an
        // OAuth token (403 `cannot_sign_out_privileged_member`). "The caller itself" is not
        // modelled: the simulator does not know whom a key belongs to.
        let refusal = match (user.role.as_str(), caller) {
            ("primary_owner", _) => Some(SimError::invalid_code(
                "cannot_sign_out_primary_owner",
                format!(
                    "Cannot sign out {}: no API key or token can sign out the organization's primary owner.",
                    user.id
                ),
            )),
            ("owner" | "admin" | "membership_admin", Caller::OAuthToken) => {
                Some(SimError::permission_code(
                    "cannot_sign_out_privileged_member",
                    format!(
                        "Cannot sign out {}: an OAuth token cannot sign out a member with the {} role.",
                        user.id, user.role
                    ),
                ))
            }
            ("owner" | "admin", Caller::ApiKey) => Some(SimError::permission_code(
                "cannot_sign_out_owner",
                format!(
                    "Cannot sign out {}: this API key cannot sign out a member with owner permissions ({}).",
                    user.id, user.role
                ),
            )),
            ("membership_admin", Caller::ApiKey) => Some(SimError::permission_code(
                "cannot_sign_out_membership_admin",
                format!(
                    "Cannot sign out {}: this API key may not sign out membership admins.",
                    user.id
                ),
            )),
            _ => None,
        };
        match refusal {
            Some(err) => Err(err),
            None => Ok(user.to_json()),
        }
    }
}
