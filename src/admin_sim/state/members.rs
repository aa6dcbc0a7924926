//! Workspace members: add, list, re-role, remove, and the implicit roles of admins.

use serde_json::{Value, json};

use super::super::error::{SimError, SimResult};
use super::super::input::{Body, PageParams, Query};
use super::super::model::*;
use super::{DuplicateAdd, SimState};

impl SimState {
    // ---------------------------------------------------------------- workspace members

    /// The workspace for a member route: must exist; the Default workspace has no member
    /// list of its own (access follows the org role).
    fn member_workspace(&self, workspace_id: &str) -> SimResult<&Workspace> {
        self.require_console()?;
        self.require_members()?;
        let ws = &self.workspaces[self.workspace_index(workspace_id)?];
        if ws.is_default {
            return Err(SimError::invalid(
                "The Default workspace has no member list; access to it follows the organization role.",
            ));
        }
        Ok(ws)
    }

    fn implicit_role(&self, user_id: &str) -> Option<&'static str> {
        let user = self.users.iter().find(|u| u.id == user_id)?;
        match user.role.as_str() {
            "admin" | "owner" | "primary_owner" => Some("workspace_admin"),
            "billing" => Some("workspace_billing"),
            _ => None,
        }
    }

    fn member_index(&self, workspace_id: &str, user_id: &str) -> Option<usize> {
        self.members
            .iter()
            .position(|m| m.workspace_id == workspace_id && m.user_id == user_id)
    }

    pub(crate) fn add_member(&mut self, workspace_id: &str, body: &Body) -> SimResult<Value> {
        let ws = self.member_workspace(workspace_id)?;
        if ws.archived_at.is_some() {
            return Err(SimError::invalid(format!(
                "Workspace {workspace_id} is archived; members cannot be added."
            )));
        }
        body.only(&["user_id", "workspace_role"])?;
        let user_id = body.required_str("user_id")?.to_owned();
        let role = body
            .required_enum("workspace_role", ALL_WORKSPACE_ROLES)?
            .to_owned();
        if !ADDABLE_WORKSPACE_ROLES.contains(&role.as_str()) {
            return Err(SimError::invalid(
                "workspace_role: 'workspace_billing' cannot be assigned; it is only inherited from the organization billing role",
            ));
        }
        self.user(&user_id)?;
        if let Some(idx) = self.member_index(workspace_id, &user_id) {
            return match self.settings.duplicate_member_add {
                DuplicateAdd::Error => Err(SimError::invalid(format!(
                    "User {user_id} is already a member of workspace {workspace_id}."
                ))),
                DuplicateAdd::Ok => Ok(self.members[idx].to_json()),
            };
        }
        if let Some(limit) = self.settings.workspace_member_limit {
            let count = self
                .members
                .iter()
                .filter(|m| m.workspace_id == workspace_id)
                .count();
            if count >= limit as usize {
                return Err(SimError::invalid_code(
                    "workspace_member_limit_exceeded",
                    format!("Workspace {workspace_id} has reached its member limit of {limit}."),
                ));
            }
        }
        self.next_seq += 1;
        let member = Member {
            seq: self.next_seq,
            user_id,
            workspace_id: workspace_id.to_owned(),
            workspace_role: role,
        };
        let out = member.to_json();
        self.members.push(member);
        Ok(out)
    }

    pub(crate) fn get_member(&self, workspace_id: &str, user_id: &str) -> SimResult<Value> {
        self.member_workspace(workspace_id)?;
        if let Some(idx) = self.member_index(workspace_id, user_id) {
            return Ok(self.members[idx].to_json());
        }
        if self.settings.surface_implicit_memberships
            && let Some(role) = self.implicit_role(user_id)
        {
            return Ok(member_json(user_id, workspace_id, role));
        }
        Err(SimError::not_found("Workspace member", user_id))
    }

    pub(crate) fn list_members(&self, workspace_id: &str, query: &Query) -> SimResult<Value> {
        self.member_workspace(workspace_id)?;
        let page = PageParams::parse(query, self.settings.reject_both_cursors)?;
        let mut items: Vec<(u64, Value)> = self
            .members
            .iter()
            .filter(|m| m.workspace_id == workspace_id)
            .map(|m| (m.seq, m.to_json()))
            .collect();
        if self.settings.surface_implicit_memberships {
            for user in &self.users {
                if self.member_index(workspace_id, &user.id).is_none()
                    && let Some(role) = self.implicit_role(&user.id)
                {
                    items.push((user.seq, member_json(&user.id, workspace_id, role)));
                }
            }
        }
        let cursor = |user_id: &str| -> Option<(u64, bool)> {
            if let Some(idx) = self.member_index(workspace_id, user_id) {
                return Some((self.members[idx].seq, true));
            }
            self.member_tombstones
                .get(&format!("{workspace_id}/{user_id}"))
                .map(|seq| (*seq, false))
        };
        self.paginate(items, &page, cursor)
    }

    fn check_privileged_member(&self, user_id: &str, new_role: Option<&str>) -> SimResult<()> {
        let Some(user) = self.users.iter().find(|u| u.id == user_id) else {
            return Ok(());
        };
        let blocked = match user.role.as_str() {
            "admin" | "owner" | "primary_owner" => true,
            // The one exception: a billing member may be raised to workspace_admin.
            "billing" => new_role != Some("workspace_admin"),
            _ => false,
        };
        if blocked {
            Err(SimError::invalid(format!(
                "User {user_id} holds the organization role {}; change the organization role first.",
                user.role
            )))
        } else {
            Ok(())
        }
    }

    pub(crate) fn update_member(
        &mut self,
        workspace_id: &str,
        user_id: &str,
        body: &Body,
    ) -> SimResult<Value> {
        self.member_workspace(workspace_id)?;
        body.only(&["workspace_role"])?;
        let role = body
            .required_enum("workspace_role", ALL_WORKSPACE_ROLES)?
            .to_owned();
        let idx = self
            .member_index(workspace_id, user_id)
            .ok_or_else(|| SimError::not_found("Workspace member", user_id))?;
        self.check_privileged_member(user_id, Some(&role))?;
        if role == "workspace_billing" {
            return Err(SimError::invalid(
                "workspace_role: 'workspace_billing' is only inherited from the organization billing role",
            ));
        }
        self.members[idx].workspace_role = role;
        Ok(self.members[idx].to_json())
    }

    pub(crate) fn remove_member(&mut self, workspace_id: &str, user_id: &str) -> SimResult<Value> {
        self.member_workspace(workspace_id)?;
        let idx = self
            .member_index(workspace_id, user_id)
            .ok_or_else(|| SimError::not_found("Workspace member", user_id))?;
        self.check_privileged_member(user_id, None)?;
        let member = self.members.remove(idx);
        self.member_tombstones
            .insert(format!("{workspace_id}/{user_id}"), member.seq);
        Ok(json!({
            "type": "workspace_member_deleted",
            "user_id": user_id,
            "workspace_id": workspace_id,
        }))
    }

    /// Seed / control: an explicit membership without the API's checks.
    pub(crate) fn seed_member(&mut self, workspace_id: &str, user_id: &str, role: &str) {
        if self.member_index(workspace_id, user_id).is_none() {
            self.next_seq += 1;
            self.members.push(Member {
                seq: self.next_seq,
                user_id: user_id.to_owned(),
                workspace_id: workspace_id.to_owned(),
                workspace_role: role.to_owned(),
            });
        }
    }
}
