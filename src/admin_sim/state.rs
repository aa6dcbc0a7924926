//! The simulated organization and every state rule of docs/spec/admin-api.md §11.
//!
//! All operations take `now` from the simulator's clock, so invite expiry, key expiry and
//! the rate-limit buckets follow the time tests set.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::error::{SimError, SimResult};
use super::input::{Body, PageParams, Query, check_enum};
use super::model::*;

/// Behaviour switches for the points the spec leaves UNCONFIRMED, and the limits.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    pub rate_limit_per_minute: u32,
    pub invite_limit_per_hour: u32,
    /// Status for a valid but non-admin key: 403 (default) or 401.
    pub non_admin_key_status: u16,
    pub reject_both_cursors: bool,
    /// `tolerate`: a cursor naming a since-deleted object still pages from its position;
    /// `error`: it is a 400.
    pub stale_cursor: CursorPolicy,
    /// `error`: adding an existing workspace member is a 400; `ok`: returns the member.
    pub duplicate_member_add: DuplicateAdd,
    /// Model the newest guide: a removed user's personal (principal-bound) keys stop.
    pub remove_user_deactivates_personal_keys: bool,
    /// List/get inherited admin/billing workspace memberships.
    pub surface_implicit_memberships: bool,
    pub org_member_limit: Option<u32>,
    pub workspace_member_limit: Option<u32>,
    pub max_workspaces: u32,
    /// `None` = any domain may be invited.
    pub allowed_email_domains: Option<Vec<String>>,
    pub unverified_email_domains: Vec<String>,
    /// `None` = enrolled only for Enterprise orgs.
    pub sign_out_beta_enrolled: Option<bool>,
    pub max_body_bytes: usize,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum CursorPolicy {
    Tolerate,
    Error,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum DuplicateAdd {
    Error,
    Ok,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            rate_limit_per_minute: 100,
            invite_limit_per_hour: 1200,
            non_admin_key_status: 403,
            reject_both_cursors: true,
            stale_cursor: CursorPolicy::Tolerate,
            duplicate_member_add: DuplicateAdd::Error,
            remove_user_deactivates_personal_keys: false,
            surface_implicit_memberships: false,
            org_member_limit: None,
            workspace_member_limit: None,
            max_workspaces: 100,
            allowed_email_domains: None,
            unverified_email_domains: Vec::new(),
            sign_out_beta_enrolled: None,
            max_body_bytes: 1024 * 1024,
        }
    }
}

/// A token bucket: `capacity` tokens, refilled continuously over `period`.
#[derive(Debug, Clone)]
pub struct Bucket {
    capacity: f64,
    tokens: f64,
    period_secs: f64,
    updated: DateTime<Utc>,
}

impl Bucket {
    pub fn new(capacity: u32, period_secs: f64, now: DateTime<Utc>) -> Self {
        Self {
            capacity: f64::from(capacity),
            tokens: f64::from(capacity),
            period_secs,
            updated: now,
        }
    }

    fn rate(&self) -> f64 {
        self.capacity / self.period_secs
    }

    fn refill(&mut self, now: DateTime<Utc>) {
        let elapsed = (now - self.updated).num_microseconds().unwrap_or(i64::MAX) as f64 / 1e6;
        if elapsed > 0.0 {
            self.tokens = (self.tokens + elapsed * self.rate()).min(self.capacity);
            self.updated = now;
        }
    }

    /// Takes a token, or returns the whole seconds to wait for one.
    pub fn try_take(&mut self, now: DateTime<Utc>) -> Result<(), u64> {
        self.refill(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else if self.capacity <= 0.0 {
            Err(self.period_secs.ceil() as u64)
        } else {
            Err(((1.0 - self.tokens) / self.rate()).ceil().max(1.0) as u64)
        }
    }
}

#[derive(Debug, Clone)]
pub struct OAuthToken {
    pub token: String,
    pub scopes: Vec<String>,
}

/// Who is calling (checked before any route runs).
#[derive(Debug, Clone)]
pub struct Credentials {
    pub admin_keys: Vec<String>,
    pub oauth_tokens: Vec<OAuthToken>,
}

#[derive(Debug)]
pub struct SimState {
    pub org: Organization,
    pub settings: Settings,
    pub credentials: Credentials,
    next_seq: u64,
    /// Position of every id ever minted, deleted ones included, so a cursor that names a
    /// deleted object can still be placed (`stale_cursor = tolerate`).
    positions: HashMap<String, u64>,
    pub users: Vec<User>,
    pub invites: Vec<Invite>,
    pub workspaces: Vec<Workspace>,
    pub members: Vec<Member>,
    /// Positions of deleted memberships, keyed `workspace_id/user_id`.
    member_tombstones: HashMap<String, u64>,
    pub api_keys: Vec<ApiKey>,
    pub default_workspace_id: String,
    pub general_bucket: Bucket,
    pub invite_bucket: Bucket,
}

impl SimState {
    pub fn new(
        org: Organization,
        settings: Settings,
        credentials: Credentials,
        now: DateTime<Utc>,
    ) -> Self {
        let default_workspace_id = mint_id("wrkspc_");
        let general_bucket = Bucket::new(settings.rate_limit_per_minute, 60.0, now);
        let invite_bucket = Bucket::new(settings.invite_limit_per_hour, 3600.0, now);
        let mut state = Self {
            org,
            settings,
            credentials,
            next_seq: 0,
            positions: HashMap::new(),
            users: Vec::new(),
            invites: Vec::new(),
            workspaces: Vec::new(),
            members: Vec::new(),
            member_tombstones: HashMap::new(),
            api_keys: Vec::new(),
            default_workspace_id: default_workspace_id.clone(),
            general_bucket,
            invite_bucket,
        };
        let seq = state.seq_for(&default_workspace_id);
        state.workspaces.push(Workspace {
            id: default_workspace_id,
            seq,
            name: "Default".into(),
            display_color: "#6C5BB9".into(),
            created_at: now,
            archived_at: None,
            data_residency: DataResidency::default(),
            tags: BTreeMap::new(),
            compartment_id: mint_uuid(),
            external_key_id: None,
            is_default: true,
        });
        state
    }

    /// Re-creates the buckets after a settings change.
    pub fn reset_buckets(&mut self, now: DateTime<Utc>) {
        self.general_bucket = Bucket::new(self.settings.rate_limit_per_minute, 60.0, now);
        self.invite_bucket = Bucket::new(self.settings.invite_limit_per_hour, 3600.0, now);
    }

    fn seq_for(&mut self, id: &str) -> u64 {
        self.next_seq += 1;
        self.positions.insert(id.to_owned(), self.next_seq);
        self.next_seq
    }

    pub fn sign_out_enrolled(&self) -> bool {
        self.settings
            .sign_out_beta_enrolled
            .unwrap_or(self.org.kind == OrgKind::Enterprise)
    }

    /// Invites flip to `expired` lazily once the clock passes `expires_at` (§11.13).
    pub fn expire_invites(&mut self, now: DateTime<Utc>) {
        for invite in &mut self.invites {
            if invite.status == InviteStatus::Pending && invite.expires_at <= now {
                invite.status = InviteStatus::Expired;
            }
        }
    }

    // ---------------------------------------------------------------- lookups

    pub fn user(&self, id: &str) -> SimResult<&User> {
        self.users
            .iter()
            .find(|u| u.id == id)
            .ok_or_else(|| SimError::not_found("User", id))
    }

    fn user_index(&self, id: &str) -> SimResult<usize> {
        self.users
            .iter()
            .position(|u| u.id == id)
            .ok_or_else(|| SimError::not_found("User", id))
    }

    pub fn user_by_email(&self, email: &str) -> Option<&User> {
        self.users
            .iter()
            .find(|u| u.email.eq_ignore_ascii_case(email))
    }

    fn invite_index(&self, id: &str) -> SimResult<usize> {
        self.invites
            .iter()
            .position(|i| i.id == id)
            .ok_or_else(|| SimError::not_found("Invite", id))
    }

    fn workspace_index(&self, id: &str) -> SimResult<usize> {
        self.workspaces
            .iter()
            .position(|w| w.id == id)
            .ok_or_else(|| SimError::not_found("Workspace", id))
    }

    pub fn workspace_by_name(&self, name: &str) -> Option<&Workspace> {
        self.workspaces
            .iter()
            .find(|w| w.name == name && w.archived_at.is_none())
    }

    fn key_index(&self, id: &str) -> SimResult<usize> {
        self.api_keys
            .iter()
            .position(|k| k.id == id)
            .ok_or_else(|| SimError::not_found("API key", id))
    }

    fn require_console(&self) -> SimResult<()> {
        // Workspaces and API keys do not exist for Claude Enterprise orgs (§9).
        if self.org.kind == OrgKind::Enterprise {
            Err(SimError::not_found_path())
        } else {
            Ok(())
        }
    }

    // ---------------------------------------------------------------- paging

    /// Pages a newest-first list exactly per §3. `items` carry their position (`seq`);
    /// `cursor_seq` places a cursor id (which need not be in the filtered list).
    fn paginate(
        &self,
        mut items: Vec<(u64, Value)>,
        page: &PageParams,
        cursor_seq: impl Fn(&str) -> Option<(u64, bool)>,
    ) -> SimResult<Value> {
        items.sort_by_key(|item| std::cmp::Reverse(item.0));
        let place = |id: &str| -> SimResult<u64> {
            match cursor_seq(id) {
                Some((seq, alive)) => {
                    if !alive && self.settings.stale_cursor == CursorPolicy::Error {
                        Err(SimError::invalid(format!(
                            "Cursor {id} refers to an object that no longer exists."
                        )))
                    } else {
                        Ok(seq)
                    }
                }
                None => Err(SimError::invalid(format!(
                    "Invalid pagination cursor: {id}"
                ))),
            }
        };
        let (data, has_more): (Vec<(u64, Value)>, bool) = if let Some(before) = &page.before_id {
            let seq = place(before)?;
            // Newer than the cursor, i.e. earlier in the list; the page is the `limit`
            // items right before the cursor.
            let newer: Vec<_> = items.into_iter().filter(|(s, _)| *s > seq).collect();
            let start = newer.len().saturating_sub(page.limit);
            let has_more = start > 0;
            (newer.into_iter().skip(start).collect(), has_more)
        } else {
            let older: Vec<_> = match &page.after_id {
                Some(after) => {
                    let seq = place(after)?;
                    items.into_iter().filter(|(s, _)| *s < seq).collect()
                }
                None => items,
            };
            let has_more = older.len() > page.limit;
            (older.into_iter().take(page.limit).collect(), has_more)
        };
        let id_of = |v: &Value| {
            v.get("id")
                .or_else(|| v.get("user_id"))
                .cloned()
                .unwrap_or(Value::Null)
        };
        let first_id = data.first().map_or(Value::Null, |(_, v)| id_of(v));
        let last_id = data.last().map_or(Value::Null, |(_, v)| id_of(v));
        Ok(json!({
            "data": data.into_iter().map(|(_, v)| v).collect::<Vec<_>>(),
            "has_more": has_more,
            "first_id": first_id,
            "last_id": last_id,
        }))
    }

    fn global_cursor<'a>(
        &'a self,
        alive: impl Fn(&str) -> bool + 'a,
    ) -> impl Fn(&str) -> Option<(u64, bool)> + 'a {
        move |id| self.positions.get(id).map(|seq| (*seq, alive(id)))
    }

    // ---------------------------------------------------------------- organization

    pub fn org_me(&self) -> Value {
        self.org.to_json()
    }

    // ---------------------------------------------------------------- users

    /// The `roles` list filter accepts the roles of this kind of org (§7.2, and the SDK's
    /// "accepted values depend on the organization type"); others are unknown enum values.
    fn check_roles_filter(&self, roles: &[&str]) -> SimResult<()> {
        roles
            .iter()
            .try_for_each(|r| check_enum("roles", r, filterable_roles(self.org.kind)))
    }

    pub fn list_users(&self, query: &Query) -> SimResult<Value> {
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

    pub fn get_user(&self, id: &str) -> SimResult<Value> {
        Ok(self.user(id)?.to_json())
    }

    fn validate_assignable_role<'a>(&self, body: &'a Body) -> SimResult<&'a str> {
        let role = body.required_enum("role", RETURNED_ORG_ROLES)?;
        if !assignable_roles(self.org.kind).contains(&role) {
            return Err(SimError::invalid(format!(
                "role: '{role}' cannot be assigned through the API; allowed: {}",
                assignable_roles(self.org.kind).join(", ")
            )));
        }
        Ok(role)
    }

    pub fn update_user(&mut self, id: &str, body: &Body) -> SimResult<Value> {
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

    pub fn remove_user(&mut self, id: &str, now: DateTime<Utc>) -> SimResult<Value> {
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

    pub fn sign_out_user(
        &self,
        id: &str,
        beta_header: Option<&str>,
        caller: Caller,
    ) -> SimResult<Value> {
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

    // ---------------------------------------------------------------- invites

    pub fn create_invite(&mut self, body: &Body, now: DateTime<Utc>) -> SimResult<Value> {
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
    pub fn seed_invite(&mut self, email: &str, role: &str, now: DateTime<Utc>) -> Value {
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

    pub fn get_invite(&self, id: &str) -> SimResult<Value> {
        Ok(self.invites[self.invite_index(id)?].to_json())
    }

    pub fn list_invites(&self, query: &Query) -> SimResult<Value> {
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

    pub fn delete_invite(&mut self, id: &str) -> SimResult<Value> {
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
    pub fn accept_invite(
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
    pub fn add_user(&mut self, email: &str, name: &str, role: &str, now: DateTime<Utc>) -> &User {
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

    // ---------------------------------------------------------------- workspaces

    fn check_workspace_name(name: &str) -> SimResult<()> {
        let len = name.chars().count();
        if name.trim().is_empty() || len > 40 {
            return Err(SimError::invalid(
                "name: String should have at least 1 and at most 40 characters",
            ));
        }
        Ok(())
    }

    fn check_color(color: &str) -> SimResult<()> {
        let ok = color.len() == 7
            && color.starts_with('#')
            && color[1..].chars().all(|c| c.is_ascii_hexdigit());
        if ok {
            Ok(())
        } else {
            Err(SimError::invalid(format!(
                "display_color: String should match pattern '^#[0-9A-Fa-f]{{6}}$'; got '{color}'"
            )))
        }
    }

    fn parse_tags(
        tags: &Map<String, Value>,
        existing: &mut BTreeMap<String, String>,
    ) -> SimResult<()> {
        for (key, value) in tags {
            if key.to_lowercase().starts_with("anthropic") {
                return Err(SimError::invalid(format!(
                    "tags: key '{key}' may not start with 'anthropic'"
                )));
            }
            match value {
                Value::String(v) => {
                    existing.insert(key.clone(), v.clone());
                }
                // A null value deletes the tag (the SDK types values as nullable).
                Value::Null => {
                    existing.remove(key);
                }
                _ => {
                    return Err(SimError::invalid(format!(
                        "tags.{key}: Input should be a valid string"
                    )));
                }
            }
        }
        Ok(())
    }

    fn parse_geo_list(value: &Value) -> SimResult<AllowedGeos> {
        match value {
            Value::String(s) if s == "unrestricted" => Ok(AllowedGeos::Unrestricted),
            Value::Array(items) => items
                .iter()
                .map(|v| match v.as_str() {
                    Some(g @ ("global" | "us")) => Ok(g.to_owned()),
                    _ => Err(SimError::invalid(
                        "data_residency.allowed_inference_geos: items should be 'global' or 'us'",
                    )),
                })
                .collect::<SimResult<Vec<_>>>()
                .map(AllowedGeos::List),
            _ => Err(SimError::invalid(
                "data_residency.allowed_inference_geos: Input should be a list or 'unrestricted'",
            )),
        }
    }

    fn apply_residency(
        residency: &mut DataResidency,
        input: &Map<String, Value>,
        creating: bool,
    ) -> SimResult<()> {
        for key in input.keys() {
            if ![
                "workspace_geo",
                "allowed_inference_geos",
                "default_inference_geo",
            ]
            .contains(&key.as_str())
            {
                return Err(SimError::invalid(format!(
                    "data_residency.{key}: Extra inputs are not permitted"
                )));
            }
        }
        if let Some(geo) = input.get("workspace_geo").filter(|v| !v.is_null()) {
            let geo = geo.as_str().ok_or_else(|| {
                SimError::invalid("data_residency.workspace_geo: Input should be a valid string")
            })?;
            if creating {
                check_enum("data_residency.workspace_geo", geo, &["us"])?;
                residency.workspace_geo = geo.to_owned();
            } else if geo != residency.workspace_geo {
                return Err(SimError::invalid(
                    "data_residency.workspace_geo cannot be changed after the workspace is created",
                ));
            }
        }
        if let Some(allowed) = input.get("allowed_inference_geos").filter(|v| !v.is_null()) {
            residency.allowed_inference_geos = Self::parse_geo_list(allowed)?;
        }
        if let Some(default) = input.get("default_inference_geo").filter(|v| !v.is_null()) {
            let default = default.as_str().ok_or_else(|| {
                SimError::invalid(
                    "data_residency.default_inference_geo: Input should be a valid string",
                )
            })?;
            check_enum(
                "data_residency.default_inference_geo",
                default,
                &["global", "us"],
            )?;
            residency.default_inference_geo = default.to_owned();
        }
        if let AllowedGeos::List(list) = &residency.allowed_inference_geos
            && !list.contains(&residency.default_inference_geo)
        {
            return Err(SimError::invalid(format!(
                "data_residency.default_inference_geo '{}' must be one of allowed_inference_geos",
                residency.default_inference_geo
            )));
        }
        Ok(())
    }

    fn check_external_key(value: &str) -> SimResult<()> {
        if value.starts_with("ekey_") || value.starts_with("arn:aws:kms:") {
            Ok(())
        } else {
            Err(SimError::invalid(format!(
                "external_key_id: '{value}' is not a registered external key"
            )))
        }
    }

    /// `user_profile_id` (create and update in the SDK): the simulator models no user
    /// profiles, so naming one is the SDK's `user_profile_not_found`; null is accepted.
    fn check_user_profile(body: &Body) -> SimResult<()> {
        match body.optional_str("user_profile_id")? {
            None => Ok(()),
            Some(id) => Err(SimError::invalid_code(
                "user_profile_not_found",
                format!("User profile {id} does not exist in this organization."),
            )),
        }
    }

    pub fn create_workspace(&mut self, body: &Body, now: DateTime<Utc>) -> SimResult<Value> {
        self.require_console()?;
        body.only(&[
            "name",
            "display_color",
            "data_residency",
            "external_key_id",
            "tags",
            "user_profile_id",
        ])?;
        let name = body.required_str("name")?.to_owned();
        Self::check_workspace_name(&name)?;
        let color = match body.optional_str("display_color")? {
            Some(c) => {
                Self::check_color(c)?;
                c.to_owned()
            }
            None => {
                const PALETTE: &[&str] = &["#6C5BB9", "#D97757", "#3B82F6", "#10B981", "#F59E0B"];
                PALETTE[rand::random_range(0..PALETTE.len())].to_owned()
            }
        };
        let mut residency = DataResidency::default();
        if let Some(input) = body.optional_object("data_residency")? {
            Self::apply_residency(&mut residency, input, true)?;
        }
        let mut tags = BTreeMap::new();
        if let Some(input) = body.optional_object("tags")? {
            Self::parse_tags(input, &mut tags)?;
        }
        let external_key_id = body.optional_str("external_key_id")?.map(str::to_owned);
        if let Some(k) = &external_key_id {
            Self::check_external_key(k)?;
        }
        Self::check_user_profile(body)?;
        let active = self
            .workspaces
            .iter()
            .filter(|w| !w.is_default && w.archived_at.is_none())
            .count();
        if active >= self.settings.max_workspaces as usize {
            return Err(SimError::invalid(format!(
                "The organization already has {active} workspaces, the maximum; archive one or ask your account team for more."
            )));
        }
        let id = mint_id("wrkspc_");
        let seq = self.seq_for(&id);
        let ws = Workspace {
            id,
            seq,
            name,
            display_color: color,
            created_at: now,
            archived_at: None,
            data_residency: residency,
            tags,
            compartment_id: mint_uuid(),
            external_key_id,
            is_default: false,
        };
        let out = ws.to_json();
        self.workspaces.push(ws);
        Ok(out)
    }

    pub fn get_workspace(&self, id: &str) -> SimResult<Value> {
        self.require_console()?;
        Ok(self.workspaces[self.workspace_index(id)?].to_json())
    }

    pub fn list_workspaces(&self, query: &Query) -> SimResult<Value> {
        self.require_console()?;
        let page = PageParams::parse(query, self.settings.reject_both_cursors)?;
        let include_archived = query.bool("include_archived")?.unwrap_or(false);
        // The SDK's `include_default` (default false keeps §7.4's "never listed") and `ids`
        // (at most 100; ids the caller can't list are left out, the other filters still apply).
        let include_default = query.bool("include_default")?.unwrap_or(false);
        let ids = query.all("ids");
        if ids.len() > 100 {
            return Err(SimError::invalid("ids: List should have at most 100 items"));
        }
        let items = self
            .workspaces
            .iter()
            .filter(|w| include_default || !w.is_default)
            .filter(|w| include_archived || w.archived_at.is_none())
            .filter(|w| ids.is_empty() || ids.contains(&w.id.as_str()))
            .map(|w| (w.seq, w.to_json()))
            .collect();
        let workspaces = &self.workspaces;
        self.paginate(
            items,
            &page,
            self.global_cursor(|id| {
                workspaces
                    .iter()
                    .any(|w| w.id == id && (include_default || !w.is_default))
            }),
        )
    }

    pub fn update_workspace(&mut self, id: &str, body: &Body) -> SimResult<Value> {
        self.require_console()?;
        body.only(&[
            "name",
            "display_color",
            "data_residency",
            "external_key_id",
            "tags",
            "user_profile_id",
        ])?;
        let idx = self.workspace_index(id)?;
        let mut ws = self.workspaces[idx].clone();
        if ws.archived_at.is_some() {
            return Err(SimError::invalid(format!(
                "Workspace {id} is archived and cannot be modified."
            )));
        }
        if let Some(name) = body.optional_str("name")? {
            Self::check_workspace_name(name)?;
            if ws.is_default && name != ws.name {
                return Err(SimError::invalid(
                    "The Default workspace cannot be renamed.",
                ));
            }
            ws.name = name.to_owned();
        }
        if let Some(color) = body.optional_str("display_color")? {
            Self::check_color(color)?;
            ws.display_color = color.to_owned();
        }
        if let Some(input) = body.optional_object("data_residency")? {
            Self::apply_residency(&mut ws.data_residency, input, false)?;
        }
        if let Some(key) = body.optional_str("external_key_id")? {
            Self::check_external_key(key)?;
            match &ws.external_key_id {
                Some(existing) if existing != key => {
                    return Err(SimError::invalid(
                        "external_key_id is write-once and is already set for this workspace",
                    ));
                }
                _ => ws.external_key_id = Some(key.to_owned()),
            }
        }
        if let Some(input) = body.optional_object("tags")? {
            Self::parse_tags(input, &mut ws.tags)?;
        }
        Self::check_user_profile(body)?;
        let out = ws.to_json();
        self.workspaces[idx] = ws;
        Ok(out)
    }

    pub fn archive_workspace(
        &mut self,
        id: &str,
        body: &Body,
        now: DateTime<Utc>,
    ) -> SimResult<Value> {
        self.require_console()?;
        body.only(&[])?;
        let idx = self.workspace_index(id)?;
        let ws = &mut self.workspaces[idx];
        if ws.is_default {
            return Err(SimError::invalid(
                "The Default workspace cannot be archived.",
            ));
        }
        if ws.archived_at.is_some() {
            return Err(SimError::invalid(format!(
                "Workspace {id} is already archived."
            )));
        }
        ws.archived_at = Some(now);
        let out = ws.to_json();
        // Archiving deactivates every key in the workspace.
        for key in &mut self.api_keys {
            if matches!(&key.scope, KeyScope::Workspace(w) if w == id)
                && key.effective_status(now) != KeyStatus::Expired
            {
                key.status = KeyStatus::Archived;
            }
        }
        Ok(out)
    }

    // ---------------------------------------------------------------- workspace members

    /// The workspace for a member route: must exist; the Default workspace has no member
    /// list of its own (access follows the org role).
    fn member_workspace(&self, workspace_id: &str) -> SimResult<&Workspace> {
        self.require_console()?;
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

    pub fn add_member(&mut self, workspace_id: &str, body: &Body) -> SimResult<Value> {
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

    pub fn get_member(&self, workspace_id: &str, user_id: &str) -> SimResult<Value> {
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

    pub fn list_members(&self, workspace_id: &str, query: &Query) -> SimResult<Value> {
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

    pub fn update_member(
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

    pub fn remove_member(&mut self, workspace_id: &str, user_id: &str) -> SimResult<Value> {
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
    pub fn seed_member(&mut self, workspace_id: &str, user_id: &str, role: &str) {
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

    // ---------------------------------------------------------------- API keys

    pub fn list_api_keys(
        &self,
        query: &Query,
        now: DateTime<Utc>,
        version: ApiVersion,
    ) -> SimResult<Value> {
        self.require_console()?;
        let page = PageParams::parse(query, self.settings.reject_both_cursors)?;
        let status = query.get("status");
        if let Some(s) = status {
            check_enum("status", s, &["active", "inactive", "archived", "expired"])?;
        }
        let workspace = query.get("workspace_id");
        let creator = query.get("created_by_user_id");
        let items = self
            .api_keys
            .iter()
            .filter(|k| status.is_none_or(|s| k.effective_status(now).as_str() == s))
            .filter(|k| {
                workspace.is_none_or(|w| matches!(&k.scope, KeyScope::Workspace(id) if id == w))
            })
            .filter(|k| creator.is_none_or(|c| k.created_by_user_id.as_deref() == Some(c)))
            .map(|k| (k.seq, k.to_json(now, &self.default_workspace_id, version)))
            .collect();
        let keys = &self.api_keys;
        self.paginate(
            items,
            &page,
            self.global_cursor(|id| keys.iter().any(|k| k.id == id)),
        )
    }

    pub fn get_api_key(
        &self,
        id: &str,
        now: DateTime<Utc>,
        version: ApiVersion,
    ) -> SimResult<Value> {
        self.require_console()?;
        Ok(self.api_keys[self.key_index(id)?].to_json(now, &self.default_workspace_id, version))
    }

    pub fn update_api_key(
        &mut self,
        id: &str,
        body: &Body,
        now: DateTime<Utc>,
        version: ApiVersion,
    ) -> SimResult<Value> {
        self.require_console()?;
        body.only(&["name", "status"])?;
        let idx = self.key_index(id)?;
        let name = body.optional_str("name")?;
        if let Some(n) = name
            && (n.is_empty() || n.chars().count() > 500)
        {
            return Err(SimError::invalid(
                "name: String should have at least 1 and at most 500 characters",
            ));
        }
        let status = body.optional_str("status")?;
        if let Some(s) = status {
            check_enum("status", s, &["active", "inactive", "archived", "expired"])?;
            if s == "expired" {
                return Err(SimError::invalid(
                    "status: 'expired' cannot be set; it follows expires_at",
                ));
            }
        }
        let key = &mut self.api_keys[idx];
        let current = key.effective_status(now);
        if (name.is_some() || status.is_some()) && current == KeyStatus::Expired {
            return Err(SimError::invalid(format!(
                "API key {id} has expired and cannot be changed."
            )));
        }
        if let Some(s) = status.and_then(KeyStatus::parse)
            && current == KeyStatus::Archived
            && s != KeyStatus::Archived
        {
            return Err(SimError::invalid(format!(
                "API key {id} is archived; archiving is permanent."
            )));
        }
        if let Some(n) = name {
            key.name = n.to_owned();
        }
        if let Some(s) = status.and_then(KeyStatus::parse) {
            key.status = s;
        }
        Ok(key.to_json(now, &self.default_workspace_id, version))
    }

    /// Seed / control: a key as the Console would have created it.
    #[allow(clippy::too_many_arguments)]
    pub fn seed_api_key(
        &mut self,
        name: &str,
        scope: KeyScope,
        created_by_user_id: Option<String>,
        principal_user_id: Option<String>,
        status: KeyStatus,
        expires_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Value {
        let id = mint_id("apikey_");
        let seq = self.seq_for(&id);
        let tail: String = id.chars().rev().take(4).collect();
        let key = ApiKey {
            id,
            seq,
            name: name.to_owned(),
            created_at: now,
            created_by_user_id,
            partial_key_hint: format!("sk-ant-api03-R2D...{tail}"),
            status,
            expires_at,
            scope,
            principal_user_id,
        };
        let out = key.to_json(now, &self.default_workspace_id, ApiVersion::V2026_10_21);
        self.api_keys.push(key);
        out
    }

    /// The whole state for `GET /_sim/state` and the demo's tables.
    pub fn dump(&self, now: DateTime<Utc>) -> Value {
        json!({
            "organization": self.org.to_json(),
            "kind": self.org.kind,
            "default_workspace_id": self.default_workspace_id,
            "users": self.users.iter().map(User::to_json).collect::<Vec<_>>(),
            "invites": self.invites.iter().map(Invite::to_json).collect::<Vec<_>>(),
            "workspaces": self.workspaces.iter().map(Workspace::to_json).collect::<Vec<_>>(),
            "workspace_members": self.members.iter().map(Member::to_json).collect::<Vec<_>>(),
            "api_keys": self.api_keys.iter().map(|k| k.to_json(now, &self.default_workspace_id, ApiVersion::V2026_10_21)).collect::<Vec<_>>(),
            "now": ts(now),
            "settings": self.settings,
        })
    }
}

fn display_name_from_email(email: &str) -> String {
    email.split('@').next().unwrap_or(email).to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t0() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-28T10:00:00Z")
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default()
    }

    #[test]
    fn bucket_refills_and_reports_wait() {
        let now = t0();
        let mut b = Bucket::new(2, 60.0, now);
        assert!(b.try_take(now).is_ok());
        assert!(b.try_take(now).is_ok());
        assert_eq!(b.try_take(now), Err(30));
        assert!(b.try_take(now + Duration::seconds(30)).is_ok());
    }
}

#[cfg(test)]
mod sdk_conformance_tests {
    //! Unit-level pins for the behaviour the official SDK's conformance suite asked for.

    use super::*;
    use crate::admin_sim::seed::Seed;

    fn state(seed: Value) -> SimState {
        let seed: Seed = match serde_json::from_value(seed) {
            Ok(s) => s,
            Err(e) => panic!("seed: {e}"),
        };
        match seed.build(Utc::now()) {
            Ok(s) => s,
            Err(e) => panic!("seed: {e}"),
        }
    }

    fn body(v: Value) -> Body {
        match Body::parse(v.to_string().as_bytes()) {
            Ok(b) => b,
            Err(e) => panic!("body: {e}"),
        }
    }

    fn id_of(st: &SimState, email: &str) -> String {
        st.user_by_email(email)
            .map(|u| u.id.clone())
            .unwrap_or_default()
    }

    fn names(page: &Value) -> Vec<String> {
        page["data"]
            .as_array()
            .map(|d| {
                d.iter()
                    .map(|w| w["name"].as_str().unwrap_or_default().to_owned())
                    .collect()
            })
            .unwrap_or_default()
    }

    #[test]
    fn workspace_list_include_default_and_ids() {
        let st = state(json!({ "workspaces": [ { "name": "A" }, { "name": "B" } ] }));
        let list = |q: &str| st.list_workspaces(&Query::parse(Some(q)));
        assert_eq!(
            list("").map(|p| names(&p)).ok(),
            Some(vec!["B".into(), "A".into()])
        );
        assert_eq!(
            list("include_default=true").map(|p| names(&p)).ok(),
            Some(vec!["B".into(), "A".into(), "Default".into()])
        );
        let a = st
            .workspace_by_name("A")
            .map(|w| w.id.clone())
            .unwrap_or_default();
        let default = st.default_workspace_id.clone();
        assert_eq!(
            list(&format!("ids[]={a}&ids[]={default}"))
                .map(|p| names(&p))
                .ok(),
            Some(vec!["A".into()])
        );
        let many: Vec<String> = (0..101).map(|i| format!("ids[]=w{i}")).collect();
        assert_eq!(
            list(&many.join("&")).map_err(|e| e.status.as_u16()).err(),
            Some(400)
        );
    }

    #[test]
    fn user_profile_id_is_not_found() {
        let mut st = state(json!({}));
        let err = st
            .create_workspace(
                &body(json!({ "name": "W", "user_profile_id": "up_1" })),
                Utc::now(),
            )
            .err();
        assert_eq!(
            err.and_then(|e| e.error_code),
            Some("user_profile_not_found")
        );
        let ok = st.create_workspace(
            &body(json!({ "name": "W", "user_profile_id": null })),
            Utc::now(),
        );
        assert!(ok.is_ok());
    }

    #[test]
    fn roles_filter_follows_the_org_kind() {
        let console = state(json!({ "users": [ { "email": "a@x.test", "role": "admin" } ] }));
        assert!(
            console
                .list_users(&Query::parse(Some("roles[]=admin")))
                .is_ok()
        );
        assert!(
            console
                .list_users(&Query::parse(Some("roles[]=owner")))
                .is_err()
        );
        let enterprise = state(json!({ "organization": { "kind": "enterprise" } }));
        assert!(
            enterprise
                .list_users(&Query::parse(Some("roles[]=owner")))
                .is_ok()
        );
        assert!(
            enterprise
                .list_invites(&Query::parse(Some("roles[]=developer")))
                .is_err()
        );
    }

    #[test]
    fn sign_out_refusals_carry_codes() {
        let st = state(json!({
            "organization": { "kind": "enterprise" },
            "users": [
                { "email": "po@x.test", "role": "primary_owner" },
                { "email": "o@x.test", "role": "owner" },
                { "email": "ma@x.test", "role": "membership_admin" },
                { "email": "m@x.test", "role": "managed" },
            ],
        }));
        let beta = Some("admin-user-sign-out-2026-10-08");
        let code = |email: &str, caller: Caller| {
            st.sign_out_user(&id_of(&st, email), beta, caller)
                .map(|_| ())
                .map_err(|e| (e.status.as_u16(), e.error_code.unwrap_or_default()))
        };
        let po = Err((400, "cannot_sign_out_primary_owner"));
        assert_eq!(code("po@x.test", Caller::ApiKey), po);
        assert_eq!(code("po@x.test", Caller::OAuthToken), po);
        assert_eq!(
            code("o@x.test", Caller::ApiKey),
            Err((403, "cannot_sign_out_owner"))
        );
        assert_eq!(
            code("ma@x.test", Caller::ApiKey),
            Err((403, "cannot_sign_out_membership_admin"))
        );
        let privileged = Err((403, "cannot_sign_out_privileged_member"));
        assert_eq!(code("o@x.test", Caller::OAuthToken), privileged);
        assert_eq!(code("ma@x.test", Caller::OAuthToken), privileged);
        assert_eq!(code("m@x.test", Caller::ApiKey), Ok(()));
    }
}
