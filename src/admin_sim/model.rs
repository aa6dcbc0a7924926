//! The simulator's objects and their wire shapes (docs/spec/admin-api.md §7, §14).
//!
//! Deliberately independent of `crate::admin_api`'s types: the client and the simulator are
//! two readings of the same spec, so a field one of them gets wrong shows up in the tests
//! (and the official SDK checks the simulator on its own).

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::{Value, json};

/// Wire form of a timestamp: RFC 3339, UTC, microseconds, `Z` (§2.2).
pub(super) fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

fn ts_opt(t: Option<DateTime<Utc>>) -> Value {
    t.map_or(Value::Null, |t| Value::String(ts(t)))
}

/// The `anthropic-version` a request was made with; it changes a few shapes (§14).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ApiVersion {
    V2023_06_01,
    V2026_10_21,
}

impl ApiVersion {
    pub(super) fn parse(s: &str) -> Option<Self> {
        match s {
            "2023-06-01" => Some(Self::V2023_06_01),
            "2026-10-21" => Some(Self::V2026_10_21),
            _ => None,
        }
    }
}

/// The kind of credential a call authenticated with; a few refusals depend on it (§14
/// sign-out: an OAuth token gets `cannot_sign_out_privileged_member` where an API key gets the
/// role-specific code).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Caller {
    ApiKey,
    OAuthToken,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum OrgKind {
    #[default]
    Console,
    Enterprise,
    /// Claude Platform on AWS: only the workspace endpoints exist (admin-api.md §9).
    Aws,
}

#[derive(Debug, Clone)]
pub(super) struct Organization {
    pub id: String,
    pub name: String,
    pub kind: OrgKind,
}

impl Organization {
    pub(super) fn to_json(&self) -> Value {
        json!({ "id": self.id, "type": "organization", "name": self.name })
    }
}

/// Organization roles as returned (§6.1).
pub(super) const RETURNED_ORG_ROLES: &[&str] = &[
    "admin",
    "billing",
    "claude_code_user",
    "developer",
    "managed",
    "membership_admin",
    "owner",
    "primary_owner",
    "user",
];

/// Roles the users/invites list `roles` filter accepts, per org kind (§7.2).
pub(super) fn filterable_roles(kind: OrgKind) -> &'static [&'static str] {
    match kind {
        OrgKind::Console | OrgKind::Aws => {
            &["user", "developer", "billing", "admin", "claude_code_user"]
        }
        OrgKind::Enterprise => &[
            "user",
            "owner",
            "primary_owner",
            "membership_admin",
            "managed",
        ],
    }
}

/// Roles that make a member administrative: never assignable, changeable or removable.
pub(super) fn is_administrative(role: &str) -> bool {
    matches!(
        role,
        "admin" | "owner" | "primary_owner" | "membership_admin"
    )
}

/// Roles the API may assign by invite or update, per org kind (§6.1).
pub(super) fn assignable_roles(kind: OrgKind) -> &'static [&'static str] {
    match kind {
        OrgKind::Console | OrgKind::Aws => &["user", "developer", "billing", "claude_code_user"],
        OrgKind::Enterprise => &["user", "managed"],
    }
}

#[derive(Debug, Clone)]
pub(super) struct User {
    pub id: String,
    pub seq: u64,
    pub email: String,
    pub name: String,
    pub role: String,
    pub added_at: DateTime<Utc>,
}

impl User {
    pub(super) fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "type": "user",
            "email": self.email,
            "name": self.name,
            "role": self.role,
            "added_at": ts(self.added_at),
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum InviteStatus {
    Pending,
    Accepted,
    Expired,
    Deleted,
}

impl InviteStatus {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Accepted => "accepted",
            Self::Expired => "expired",
            Self::Deleted => "deleted",
        }
    }
}

#[derive(Debug, Clone)]
pub(super) struct Invite {
    pub id: String,
    pub seq: u64,
    pub email: String,
    pub role: String,
    pub status: InviteStatus,
    pub invited_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub accepted_at: Option<DateTime<Utc>>,
    pub rbac_group_ids: Vec<String>,
}

impl Invite {
    pub(super) fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "type": "invite",
            "email": self.email,
            "role": self.role,
            "status": self.status.as_str(),
            "invited_at": ts(self.invited_at),
            "expires_at": ts(self.expires_at),
            "accepted_at": ts_opt(self.accepted_at),
            "rbac_group_ids": self.rbac_group_ids,
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(super) enum AllowedGeos {
    Unrestricted,
    List(Vec<String>),
}

#[derive(Debug, Clone)]
pub(super) struct DataResidency {
    pub workspace_geo: String,
    pub allowed_inference_geos: AllowedGeos,
    pub default_inference_geo: String,
}

impl DataResidency {
    pub(super) fn to_json(&self) -> Value {
        let allowed = match &self.allowed_inference_geos {
            AllowedGeos::Unrestricted => Value::String("unrestricted".into()),
            AllowedGeos::List(list) => json!(list),
        };
        json!({
            "workspace_geo": self.workspace_geo,
            "allowed_inference_geos": allowed,
            "default_inference_geo": self.default_inference_geo,
        })
    }
}

impl Default for DataResidency {
    fn default() -> Self {
        Self {
            workspace_geo: "us".into(),
            allowed_inference_geos: AllowedGeos::Unrestricted,
            default_inference_geo: "global".into(),
        }
    }
}

#[derive(Debug, Clone)]
pub(super) struct Workspace {
    pub id: String,
    pub seq: u64,
    pub name: String,
    pub display_color: String,
    pub created_at: DateTime<Utc>,
    pub archived_at: Option<DateTime<Utc>>,
    pub data_residency: DataResidency,
    pub tags: BTreeMap<String, String>,
    pub compartment_id: String,
    pub external_key_id: Option<String>,
    pub is_default: bool,
}

impl Workspace {
    pub(super) fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "type": "workspace",
            "name": self.name,
            "display_color": self.display_color,
            "created_at": ts(self.created_at),
            "archived_at": ts_opt(self.archived_at),
            "data_residency": self.data_residency.to_json(),
            "tags": self.tags,
            "compartment_id": self.compartment_id,
            "external_key_id": self.external_key_id,
            "user_profile_id": Value::Null,
        })
    }
}

#[derive(Debug, Clone)]
pub(super) struct Member {
    pub seq: u64,
    pub user_id: String,
    pub workspace_id: String,
    pub workspace_role: String,
}

pub(super) fn member_json(user_id: &str, workspace_id: &str, role: &str) -> Value {
    json!({
        "type": "workspace_member",
        "user_id": user_id,
        "workspace_id": workspace_id,
        "workspace_role": role,
    })
}

impl Member {
    pub(super) fn to_json(&self) -> Value {
        member_json(&self.user_id, &self.workspace_id, &self.workspace_role)
    }
}

/// Workspace roles assignable through add-member (§6.2): never `workspace_billing`.
pub(super) const ADDABLE_WORKSPACE_ROLES: &[&str] = &[
    "workspace_user",
    "workspace_developer",
    "workspace_restricted_developer",
    "workspace_admin",
];

/// Every workspace role update-member's schema accepts.
pub(super) const ALL_WORKSPACE_ROLES: &[&str] = &[
    "workspace_user",
    "workspace_developer",
    "workspace_restricted_developer",
    "workspace_admin",
    "workspace_billing",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum KeyStatus {
    Active,
    Inactive,
    Archived,
    Expired,
}

impl KeyStatus {
    pub(super) fn parse(s: &str) -> Option<Self> {
        match s {
            "active" => Some(Self::Active),
            "inactive" => Some(Self::Inactive),
            "archived" => Some(Self::Archived),
            "expired" => Some(Self::Expired),
            _ => None,
        }
    }

    pub(super) fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Inactive => "inactive",
            Self::Archived => "archived",
            Self::Expired => "expired",
        }
    }
}

#[derive(Debug, Clone)]
pub(super) enum KeyScope {
    /// The real workspace id (the Default workspace's too).
    Workspace(String),
    Organization,
}

#[derive(Debug, Clone)]
pub(super) struct ApiKey {
    pub id: String,
    pub seq: u64,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub created_by_user_id: Option<String>,
    pub partial_key_hint: String,
    /// Stored status; `expired` is derived from `expires_at` and the clock.
    pub status: KeyStatus,
    pub expires_at: Option<DateTime<Utc>>,
    pub scope: KeyScope,
    /// Personal (principal-bound) key: acts as this user.
    pub principal_user_id: Option<String>,
}

impl ApiKey {
    pub(super) fn effective_status(&self, now: DateTime<Utc>) -> KeyStatus {
        match self.expires_at {
            Some(exp) if exp <= now && self.status == KeyStatus::Active => KeyStatus::Expired,
            _ => self.status,
        }
    }

    pub(super) fn to_json(
        &self,
        now: DateTime<Utc>,
        default_workspace_id: &str,
        version: ApiVersion,
    ) -> Value {
        let created_by = self
            .created_by_user_id
            .as_ref()
            .map_or(Value::Null, |id| json!({ "id": id, "type": "user" }));
        let principal = self.principal_user_id.as_ref().map_or(
            Value::Null,
            |id| json!({ "type": "user_actor", "user_id": id }),
        );
        let scope = match &self.scope {
            KeyScope::Workspace(id) => json!({ "type": "workspace", "workspace_id": id }),
            KeyScope::Organization => json!({ "type": "organization" }),
        };
        let mut out = json!({
            "id": self.id,
            "type": "api_key",
            "name": self.name,
            "created_at": ts(self.created_at),
            "created_by": created_by,
            "expires_at": ts_opt(self.expires_at),
            "partial_key_hint": self.partial_key_hint,
            "principal": principal,
            "scope": scope,
            "status": self.effective_status(now).as_str(),
        });
        // The deprecated top-level field exists only in the older version; it is null for
        // Default-workspace keys and for org-scoped keys (§7.6).
        if version == ApiVersion::V2023_06_01
            && let Some(obj) = out.as_object_mut()
        {
            let ws = match &self.scope {
                KeyScope::Workspace(id) if id != default_workspace_id => Value::String(id.clone()),
                _ => Value::Null,
            };
            obj.insert("workspace_id".into(), ws);
        }
        out
    }
}

const BASE58: &[u8] = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";

/// Mints an id the way the docs' examples look: prefix + `01` + 22 base58 characters.
pub(super) fn mint_id(prefix: &str) -> String {
    let mut id = String::with_capacity(prefix.len() + 24);
    id.push_str(prefix);
    id.push_str("01");
    for _ in 0..22 {
        let i = rand::random_range(0..BASE58.len());
        id.push(char::from(BASE58[i]));
    }
    id
}

/// A random lowercase UUID-looking string (organization ids, compartment ids).
pub(super) fn mint_uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Normalizes an address for the list `email` filter: case-insensitive, `+tag` ignored
/// (the documented example: `jane+hiring@example.com` matches `jane@example.com`).
pub(super) fn normalize_email(email: &str) -> String {
    let lower = email.trim().to_lowercase();
    match lower.split_once('@') {
        Some((local, domain)) => {
            let local = local.split_once('+').map_or(local, |(base, _)| base);
            format!("{local}@{domain}")
        }
        None => lower,
    }
}

/// A deliberately plain address check: one `@`, non-empty local part, a dotted domain,
/// no whitespace. The real service's exact rules are not documented.
pub(super) fn looks_like_email(s: &str) -> bool {
    if s.len() > 320 || s.chars().any(char::is_whitespace) {
        return false;
    }
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_look_like_the_docs() {
        let id = mint_id("user_");
        assert!(id.starts_with("user_01"));
        assert_eq!(id.len(), "user_".len() + 24);
    }

    #[test]
    fn email_normalization_drops_tag_and_case() {
        assert_eq!(
            normalize_email("Jane+Hiring@Example.com"),
            "jane@example.com"
        );
        assert_eq!(normalize_email("jane@example.com"), "jane@example.com");
    }

    #[test]
    fn email_check() {
        assert!(looks_like_email("a@b.co"));
        assert!(!looks_like_email("a@b"));
        assert!(!looks_like_email("not an email"));
        assert!(!looks_like_email("@b.co"));
        assert!(!looks_like_email("a@@b.co"));
    }
}
