//! Wire types: the objects the Admin API returns and the bodies it accepts (spec §2, §6, §7, §14).
//!
//! Decoding is deliberately tolerant because Anthropic adds fields and enum values within an
//! API version (§2.4): unknown fields are ignored, unknown enum values are kept verbatim in an
//! `Other(String)` variant (and serialize back unchanged), fields added during 2026 are
//! optional, and `null` is accepted wherever a list or map is expected. Object `type`
//! discriminators are not checked: a wrong object is caught by its missing required fields.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Declares a string enum whose unknown wire values survive as `Other(String)`.
///
/// `From<&str>` maps a known spelling to its variant, so `Other` only ever holds values this
/// build does not know; constructing `Other("user")` by hand is possible but compares unequal
/// to `User`.
macro_rules! wire_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident { $($(#[$vmeta:meta])* $variant:ident => $wire:literal),+ $(,)? }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
            /// A value this client does not know yet, kept verbatim.
            Other(String),
        }

        impl $name {
            /// Every value this build knows, in declaration order.
            pub const KNOWN: &'static [$name] = &[$($name::$variant),+];

            /// The wire spelling.
            pub fn as_str(&self) -> &str {
                match self {
                    $(Self::$variant => $wire,)+
                    Self::Other(value) => value,
                }
            }

            /// `false` for values received from the API that this build does not know.
            pub fn is_known(&self) -> bool {
                !matches!(self, Self::Other(_))
            }
        }

        impl From<&str> for $name {
            fn from(value: &str) -> Self {
                match value {
                    $($wire => Self::$variant,)+
                    other => Self::Other(other.to_owned()),
                }
            }
        }

        impl From<String> for $name {
            fn from(value: String) -> Self {
                match value.as_str() {
                    $($wire => Self::$variant,)+
                    _ => Self::Other(value),
                }
            }
        }

        impl std::str::FromStr for $name {
            type Err = std::convert::Infallible;
            fn from_str(value: &str) -> Result<Self, Self::Err> {
                Ok(Self::from(value))
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(
                &self,
                serializer: S,
            ) -> ::std::result::Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(
                deserializer: D,
            ) -> ::std::result::Result<Self, D::Error> {
                <String as ::serde::Deserialize>::deserialize(deserializer).map(Self::from)
            }
        }
    };
}
pub(crate) use wire_enum;

wire_enum! {
    /// Organization role as returned on users and invites (§6.1: union of Console and
    /// Enterprise roles). Only `User`, `Developer`, `Billing`, `ClaudeCodeUser` (Console) and
    /// `User`, `Managed` (Enterprise) can be assigned through the API.
    pub enum OrgRole {
        User => "user",
        Developer => "developer",
        Billing => "billing",
        ClaudeCodeUser => "claude_code_user",
        Admin => "admin",
        Managed => "managed",
        MembershipAdmin => "membership_admin",
        Owner => "owner",
        PrimaryOwner => "primary_owner",
    }
}

impl OrgRole {
    /// Roles the API refuses to remove, demote or assign (§6.1, §7.2); automation must hand
    /// these people to a human.
    pub fn is_administrative(&self) -> bool {
        matches!(
            self,
            Self::Admin | Self::Owner | Self::PrimaryOwner | Self::MembershipAdmin
        )
    }
}

wire_enum! {
    /// Workspace role (§6.2). `WorkspaceBilling` is only ever inherited, never assignable.
    pub enum WorkspaceRole {
        WorkspaceUser => "workspace_user",
        WorkspaceRestrictedDeveloper => "workspace_restricted_developer",
        WorkspaceDeveloper => "workspace_developer",
        WorkspaceAdmin => "workspace_admin",
        WorkspaceBilling => "workspace_billing",
    }
}

wire_enum! {
    /// Invite status (§7.3).
    pub enum InviteStatus {
        Pending => "pending",
        Accepted => "accepted",
        Expired => "expired",
        Deleted => "deleted",
    }
}

wire_enum! {
    /// API key status (§7.6). `Expired` is derived by the server and cannot be set.
    pub enum ApiKeyStatus {
        Active => "active",
        Inactive => "inactive",
        Archived => "archived",
        Expired => "expired",
    }
}

wire_enum! {
    /// Kind of actor in an API key's `created_by`.
    pub enum ActorType {
        User => "user",
        ServiceAccount => "service_account",
    }
}

/// Treats an explicit `null` like an absent field, for lists and maps.
fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// `GET /v1/organizations/me`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Organization {
    pub id: String,
    pub name: String,
}

/// An organization member (§7.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub id: String,
    pub email: String,
    pub name: String,
    pub role: OrgRole,
    pub added_at: DateTime<Utc>,
}

/// `DELETE /v1/organizations/users/{id}` result (`type: "user_deleted"`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserDeleted {
    pub id: String,
}

/// An invitation (§7.3, §14).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invite {
    pub id: String,
    pub email: String,
    pub role: OrgRole,
    pub status: InviteStatus,
    pub invited_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// Added Jul 2026; absent on older responses.
    #[serde(default)]
    pub accepted_at: Option<DateTime<Utc>>,
    /// Added Jul 2026; `[]` when none.
    #[serde(default, deserialize_with = "null_as_default")]
    pub rbac_group_ids: Vec<String>,
}

/// `DELETE /v1/organizations/invites/{id}` result (`type: "invite_deleted"`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InviteDeleted {
    pub id: String,
}

/// A workspace (§7.4, §14). Everything added during 2026 is optional.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Workspace {
    pub id: String,
    pub name: String,
    /// Documented as always present; optional so an older or odd response still decodes.
    #[serde(default)]
    pub display_color: Option<String>,
    pub created_at: DateTime<Utc>,
    #[serde(default)]
    pub archived_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub data_residency: Option<DataResidency>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub tags: BTreeMap<String, String>,
    #[serde(default)]
    pub compartment_id: Option<String>,
    #[serde(default)]
    pub external_key_id: Option<String>,
    /// New in the 2026-10-21 shape.
    #[serde(default)]
    pub user_profile_id: Option<String>,
}

impl Workspace {
    pub fn is_archived(&self) -> bool {
        self.archived_at.is_some()
    }
}

/// Workspace data residency; also used (all fields optional) in create/update bodies.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataResidency {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace_geo: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_inference_geos: Option<InferenceGeos>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_inference_geo: Option<String>,
}

/// `allowed_inference_geos`: a list of geos or the string `"unrestricted"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InferenceGeos {
    Unrestricted,
    List(Vec<String>),
    /// Any other JSON value, kept verbatim.
    Other(serde_json::Value),
}

impl Serialize for InferenceGeos {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Unrestricted => serializer.serialize_str("unrestricted"),
            Self::List(geos) => geos.serialize(serializer),
            Self::Other(value) => value.serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for InferenceGeos {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(deserializer)?;
        Ok(match value {
            serde_json::Value::String(s) if s == "unrestricted" => Self::Unrestricted,
            serde_json::Value::Array(items) if items.iter().all(|v| v.is_string()) => Self::List(
                items
                    .into_iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect(),
            ),
            other => Self::Other(other),
        })
    }
}

/// A user's explicit membership in a workspace (§7.5).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkspaceMember {
    pub user_id: String,
    pub workspace_id: String,
    pub workspace_role: WorkspaceRole,
}

/// Remove-member result (`type: "workspace_member_deleted"`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkspaceMemberDeleted {
    pub user_id: String,
    pub workspace_id: String,
}

/// An API key (§7.6, §14). The secret is never returned by the API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKey {
    pub id: String,
    pub name: String,
    pub created_at: DateTime<Utc>,
    /// Null for legacy, federated or system-created keys.
    #[serde(default)]
    pub created_by: Option<CreatedBy>,
    #[serde(default)]
    pub partial_key_hint: Option<String>,
    pub status: ApiKeyStatus,
    #[serde(default)]
    pub expires_at: Option<DateTime<Utc>>,
    /// Deprecated; absent under `anthropic-version: 2026-10-21`. Prefer [`ApiKey::workspace`].
    #[serde(default)]
    pub workspace_id: Option<String>,
    #[serde(default)]
    pub principal: Option<Principal>,
    #[serde(default)]
    pub scope: Option<ApiKeyScope>,
}

impl ApiKey {
    /// The workspace the key is bound to: `scope.workspace_id` (real ID, even for the Default
    /// Workspace) when present, else the deprecated top-level `workspace_id`.
    pub fn workspace(&self) -> Option<&str> {
        match &self.scope {
            Some(ApiKeyScope::Workspace { workspace_id }) => Some(workspace_id),
            Some(ApiKeyScope::Organization) => None,
            _ => self.workspace_id.as_deref(),
        }
    }

    /// ID of the user who created the key, if a user did.
    pub fn created_by_user(&self) -> Option<&str> {
        match &self.created_by {
            Some(CreatedBy {
                id,
                kind: ActorType::User,
            }) => Some(id),
            _ => None,
        }
    }
}

/// `created_by` on an API key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatedBy {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: ActorType,
}

/// Who an API key acts as. Accepts both shapes seen in the docs (§7.6): the newer
/// `{type: "user_actor", user_id}` / `{type: "service_account_actor", service_account_id}`
/// and the Aug 2026 `{id, type: "user" | "service_account"}`. Serializes in the newer shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    User {
        user_id: String,
    },
    ServiceAccount {
        service_account_id: String,
    },
    /// Any other shape, kept verbatim.
    Other(serde_json::Value),
}

impl Principal {
    pub fn user_id(&self) -> Option<&str> {
        match self {
            Self::User { user_id } => Some(user_id),
            _ => None,
        }
    }
}

impl Serialize for Principal {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::User { user_id } => {
                serde_json::json!({ "type": "user_actor", "user_id": user_id })
                    .serialize(serializer)
            }
            Self::ServiceAccount { service_account_id } => serde_json::json!({
                "type": "service_account_actor",
                "service_account_id": service_account_id,
            })
            .serialize(serializer),
            Self::Other(value) => value.serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for Principal {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(deserializer)?;
        let field = |name: &str| value.get(name).and_then(|v| v.as_str()).map(str::to_owned);
        let parsed = match field("type").as_deref() {
            Some("user_actor") => field("user_id").map(|user_id| Self::User { user_id }),
            Some("service_account_actor") => field("service_account_id")
                .map(|service_account_id| Self::ServiceAccount { service_account_id }),
            Some("user") => field("id").map(|user_id| Self::User { user_id }),
            Some("service_account") => {
                field("id").map(|service_account_id| Self::ServiceAccount { service_account_id })
            }
            _ => None,
        };
        Ok(parsed.unwrap_or(Self::Other(value)))
    }
}

/// An API key's `scope`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiKeyScope {
    Workspace {
        workspace_id: String,
    },
    Organization,
    /// Any other shape, kept verbatim.
    Other(serde_json::Value),
}

impl Serialize for ApiKeyScope {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Workspace { workspace_id } => {
                serde_json::json!({ "type": "workspace", "workspace_id": workspace_id })
                    .serialize(serializer)
            }
            Self::Organization => {
                serde_json::json!({ "type": "organization" }).serialize(serializer)
            }
            Self::Other(value) => value.serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for ApiKeyScope {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(deserializer)?;
        let parsed = match value.get("type").and_then(|v| v.as_str()) {
            Some("workspace") => value
                .get("workspace_id")
                .and_then(|v| v.as_str())
                .map(|id| Self::Workspace {
                    workspace_id: id.to_owned(),
                }),
            Some("organization") => Some(Self::Organization),
            _ => None,
        };
        Ok(parsed.unwrap_or(Self::Other(value)))
    }
}

/// One page of a list endpoint (§3). `first_id`/`last_id` are null on an empty page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Page<T> {
    pub data: Vec<T>,
    /// More items exist in the direction being paged. Missing is read as `false` so a
    /// malformed envelope stops paging instead of looping.
    #[serde(default)]
    pub has_more: bool,
    #[serde(default)]
    pub first_id: Option<String>,
    #[serde(default)]
    pub last_id: Option<String>,
}

// ---------------------------------------------------------------------------------------
// Request bodies
// ---------------------------------------------------------------------------------------

/// Body of `POST /v1/organizations/invites`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CreateInvite {
    pub email: String,
    pub role: OrgRole,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rbac_group_ids: Option<Vec<String>>,
}

impl CreateInvite {
    pub fn new(email: impl Into<String>, role: OrgRole) -> Self {
        Self {
            email: email.into(),
            role,
            rbac_group_ids: None,
        }
    }

    pub fn rbac_group_ids(mut self, ids: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.rbac_group_ids = Some(ids.into_iter().map(Into::into).collect());
        self
    }
}

/// Body of `POST /v1/organizations/users/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct UpdateUser<'a> {
    pub role: &'a OrgRole,
}

/// Body of `POST /v1/organizations/workspaces`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CreateWorkspace {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display_color: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_residency: Option<DataResidency>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_key_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<BTreeMap<String, String>>,
}

impl CreateWorkspace {
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            ..Self::default()
        }
    }

    pub fn display_color(mut self, color: impl Into<String>) -> Self {
        self.display_color = Some(color.into());
        self
    }

    pub fn data_residency(mut self, residency: DataResidency) -> Self {
        self.data_residency = Some(residency);
        self
    }

    pub fn external_key_id(mut self, id: impl Into<String>) -> Self {
        self.external_key_id = Some(id.into());
        self
    }

    pub fn tag(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.tags
            .get_or_insert_with(BTreeMap::new)
            .insert(key.into(), value.into());
        self
    }
}

/// Body of `POST /v1/organizations/workspaces/{id}`; every field optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct UpdateWorkspace {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display_color: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_residency: Option<DataResidency>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_key_id: Option<String>,
    /// A `None` value asks to delete that tag (SDK typing; server behaviour UNCONFIRMED).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<BTreeMap<String, Option<String>>>,
}

impl UpdateWorkspace {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    pub fn display_color(mut self, color: impl Into<String>) -> Self {
        self.display_color = Some(color.into());
        self
    }

    pub fn data_residency(mut self, residency: DataResidency) -> Self {
        self.data_residency = Some(residency);
        self
    }

    pub fn external_key_id(mut self, id: impl Into<String>) -> Self {
        self.external_key_id = Some(id.into());
        self
    }

    pub fn tag(mut self, key: impl Into<String>, value: Option<String>) -> Self {
        self.tags
            .get_or_insert_with(BTreeMap::new)
            .insert(key.into(), value);
        self
    }
}

/// Body of `POST /v1/organizations/workspaces/{id}/members`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct AddWorkspaceMember<'a> {
    pub user_id: &'a str,
    pub workspace_role: &'a WorkspaceRole,
}

/// Body of `POST /v1/organizations/workspaces/{id}/members/{user_id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct UpdateWorkspaceMember<'a> {
    pub workspace_role: &'a WorkspaceRole,
}

/// Body of `POST /v1/organizations/api_keys/{id}`. `{}` (both `None`) is a valid request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct UpdateApiKey {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<ApiKeyStatus>,
}

impl UpdateApiKey {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    pub fn status(mut self, status: ApiKeyStatus) -> Self {
        self.status = Some(status);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn decode<T: serde::de::DeserializeOwned>(value: serde_json::Value) -> T {
        serde_json::from_value(value).unwrap()
    }

    fn ts(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn enums_round_trip_known_and_unknown_values() {
        fn check<T>(known: &[T], unknown: &str)
        where
            T: Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug + From<String>,
        {
            for value in known {
                let wire = serde_json::to_value(value).unwrap();
                assert_eq!(&decode::<T>(wire), value);
            }
            let other: T = decode(json!(unknown));
            assert_eq!(other, T::from(unknown.to_owned()));
            assert_eq!(serde_json::to_value(&other).unwrap(), json!(unknown));
        }
        check(OrgRole::KNOWN, "space_admiral");
        check(WorkspaceRole::KNOWN, "workspace_auditor");
        check(InviteStatus::KNOWN, "revoked");
        check(ApiKeyStatus::KNOWN, "suspended");
        check(ActorType::KNOWN, "robot");
        assert_eq!(OrgRole::from("claude_code_user"), OrgRole::ClaudeCodeUser);
        assert_eq!(OrgRole::from("space_admiral").as_str(), "space_admiral");
        assert!(!OrgRole::from("space_admiral").is_known());
        assert!(OrgRole::PrimaryOwner.is_administrative());
        assert!(!OrgRole::Developer.is_administrative());
        assert_eq!(
            WorkspaceRole::WorkspaceRestrictedDeveloper.to_string(),
            "workspace_restricted_developer"
        );
    }

    #[test]
    fn organization_and_deletion_results() {
        let org: Organization = decode(json!({
            "id": "12345678-1234-5678-1234-567812345678", "type": "organization", "name": "Acme",
            "brand_new": {"nested": true}
        }));
        assert_eq!(org.name, "Acme");
        let d: UserDeleted = decode(json!({"id": "user_1", "type": "user_deleted"}));
        assert_eq!(d.id, "user_1");
        let d: InviteDeleted = decode(json!({"id": "invite_1", "type": "invite_deleted"}));
        assert_eq!(d.id, "invite_1");
        let d: WorkspaceMemberDeleted = decode(json!({
            "type": "workspace_member_deleted", "user_id": "user_1", "workspace_id": "wrkspc_1"
        }));
        assert_eq!(
            (d.user_id.as_str(), d.workspace_id.as_str()),
            ("user_1", "wrkspc_1")
        );
    }

    #[test]
    fn user_with_both_timestamp_forms_unknown_role_and_fields() {
        let micro: User = decode(json!({
            "id": "user_01WCz1FkmYMm4gnmykNKUu3Q", "type": "user", "email": "a@example.com",
            "name": "A", "role": "developer", "added_at": "2024-10-30T23:58:27.427722Z",
            "surprise": [1, 2, 3]
        }));
        assert_eq!(micro.role, OrgRole::Developer);
        assert_eq!(micro.added_at.timestamp_subsec_micros(), 427_722);
        let plain: User = decode(json!({
            "id": "user_2", "type": "user", "email": "b@example.com", "name": "B",
            "role": "membership_admin", "added_at": "2026-06-12T09:14:03Z"
        }));
        assert_eq!(plain.added_at, ts("2026-06-12T09:14:03Z"));
        assert_eq!(plain.role, OrgRole::MembershipAdmin);
        let offset: User = decode(json!({
            "id": "user_3", "email": "c@example.com", "name": "C",
            "role": "galactic_overlord", "added_at": "2026-06-12T11:14:03+02:00"
        }));
        assert_eq!(offset.added_at, ts("2026-06-12T09:14:03Z"));
        assert_eq!(offset.role, OrgRole::Other("galactic_overlord".into()));
        // Round trip keeps the unknown role.
        let again: User = decode(serde_json::to_value(&offset).unwrap());
        assert_eq!(again, offset);
    }

    #[test]
    fn invite_old_and_new_shapes() {
        let old: Invite = decode(json!({
            "id": "invite_015gWxCN9Hfg2QhZwTK7Mdeu", "type": "invite", "email": "x@example.com",
            "role": "user", "invited_at": "2024-10-30T23:58:27.427722Z",
            "expires_at": "2024-11-20T23:58:27.427722Z", "status": "pending"
        }));
        assert_eq!(old.accepted_at, None);
        assert!(old.rbac_group_ids.is_empty());
        let new: Invite = decode(json!({
            "id": "invite_2", "type": "invite", "email": "y@example.com", "role": "managed",
            "invited_at": "2026-07-01T00:00:00Z", "expires_at": "2026-07-22T00:00:00Z",
            "status": "accepted", "accepted_at": "2026-07-02T10:00:00.5Z",
            "rbac_group_ids": ["rbac_group_1"]
        }));
        assert_eq!(new.status, InviteStatus::Accepted);
        assert_eq!(new.accepted_at, Some(ts("2026-07-02T10:00:00.5Z")));
        assert_eq!(new.rbac_group_ids, ["rbac_group_1"]);
        let odd: Invite = decode(json!({
            "id": "invite_3", "email": "z@example.com", "role": "user",
            "invited_at": "2026-07-01T00:00:00Z", "expires_at": "2026-07-22T00:00:00Z",
            "status": "bounced", "accepted_at": null, "rbac_group_ids": null
        }));
        assert_eq!(odd.status, InviteStatus::Other("bounced".into()));
        assert!(odd.rbac_group_ids.is_empty());
    }

    #[test]
    fn workspace_oldest_and_newest_shapes() {
        let oldest: Workspace = decode(json!({
            "id": "wrkspc_01JwQvzr7rXLA5AGx3HKfFUJ", "type": "workspace", "name": "Eng",
            "display_color": "#6C5BB9", "created_at": "2024-10-30T23:58:27.427722Z",
            "archived_at": null
        }));
        assert!(!oldest.is_archived());
        assert_eq!(oldest.data_residency, None);
        assert!(oldest.tags.is_empty());
        let newest: Workspace = decode(json!({
            "id": "wrkspc_2", "type": "workspace", "name": "Data", "display_color": "#000000",
            "created_at": "2026-01-01T00:00:00Z", "archived_at": "2026-02-01T00:00:00Z",
            "data_residency": {
                "workspace_geo": "us", "allowed_inference_geos": "unrestricted",
                "default_inference_geo": "global"
            },
            "tags": {"team": "data"}, "compartment_id": "c0ffee00-0000-0000-0000-000000000000",
            "external_key_id": null, "user_profile_id": "up_1", "future_field": 1
        }));
        assert!(newest.is_archived());
        let residency = newest.data_residency.clone().unwrap();
        assert_eq!(
            residency.allowed_inference_geos,
            Some(InferenceGeos::Unrestricted)
        );
        assert_eq!(newest.tags.get("team").map(String::as_str), Some("data"));
        assert_eq!(newest.user_profile_id.as_deref(), Some("up_1"));
        let listed: DataResidency = decode(json!({"allowed_inference_geos": ["us", "global"]}));
        assert_eq!(
            listed.allowed_inference_geos,
            Some(InferenceGeos::List(vec!["us".into(), "global".into()]))
        );
        let weird: DataResidency = decode(json!({"allowed_inference_geos": "mars_only"}));
        assert_eq!(
            serde_json::to_value(&weird).unwrap(),
            json!({"allowed_inference_geos": "mars_only"})
        );
        let nulls: Workspace = decode(json!({
            "id": "wrkspc_3", "name": "N", "created_at": "2026-01-01T00:00:00Z",
            "tags": null, "data_residency": null
        }));
        assert!(nulls.tags.is_empty());
        assert_eq!(
            serde_json::from_value::<Workspace>(serde_json::to_value(&newest).unwrap()).unwrap(),
            newest
        );
    }

    #[test]
    fn workspace_member_with_unknown_role() {
        let m: WorkspaceMember = decode(json!({
            "type": "workspace_member", "user_id": "user_1", "workspace_id": "wrkspc_1",
            "workspace_role": "workspace_auditor"
        }));
        assert_eq!(
            m.workspace_role,
            WorkspaceRole::Other("workspace_auditor".into())
        );
        assert_eq!(
            serde_json::to_value(&m).unwrap()["workspace_role"],
            json!("workspace_auditor")
        );
    }

    #[test]
    fn api_key_2023_shape_with_old_principal() {
        let key: ApiKey = decode(json!({
            "id": "apikey_01Rj2N8SVvo6BePZj99NhmiT", "type": "api_key", "name": "ci",
            "created_at": "2024-10-30T23:58:27.427722Z",
            "created_by": {"id": "user_1", "type": "user"},
            "partial_key_hint": "sk-ant-api03-R2D...igAA", "status": "active",
            "expires_at": null, "workspace_id": "wrkspc_1",
            "principal": {"id": "user_1", "type": "user"},
            "scope": {"type": "workspace", "workspace_id": "wrkspc_1"}
        }));
        assert_eq!(
            key.principal,
            Some(Principal::User {
                user_id: "user_1".into()
            })
        );
        assert_eq!(key.created_by_user(), Some("user_1"));
        assert_eq!(key.workspace(), Some("wrkspc_1"));
        let svc: Principal = decode(json!({"id": "svac_1", "type": "service_account"}));
        assert_eq!(
            svc,
            Principal::ServiceAccount {
                service_account_id: "svac_1".into()
            }
        );
    }

    #[test]
    fn api_key_2026_10_21_shape() {
        let key: ApiKey = decode(json!({
            "id": "apikey_2", "type": "api_key", "name": "default ws key",
            "created_at": "2026-10-22T08:00:00Z", "created_by": null,
            "partial_key_hint": null, "status": "expired",
            "expires_at": "2026-10-23T08:00:00Z",
            "principal": {"type": "service_account_actor", "service_account_id": "svac_9"},
            "scope": {"type": "workspace", "workspace_id": "wrkspc_default"}
        }));
        assert_eq!(key.workspace_id, None);
        assert_eq!(key.workspace(), Some("wrkspc_default"));
        assert_eq!(key.created_by_user(), None);
        assert_eq!(key.status, ApiKeyStatus::Expired);
        let org: ApiKey = decode(json!({
            "id": "apikey_3", "name": "org", "created_at": "2026-10-22T08:00:00Z",
            "status": "active", "principal": {"type": "user_actor", "user_id": "user_7"},
            "scope": {"type": "organization"}, "workspace_id": null
        }));
        assert_eq!(org.workspace(), None);
        assert_eq!(
            org.principal.as_ref().and_then(Principal::user_id),
            Some("user_7")
        );
        // Serializes in the newer principal shape.
        assert_eq!(
            serde_json::to_value(&org).unwrap()["principal"],
            json!({"type": "user_actor", "user_id": "user_7"})
        );
    }

    #[test]
    fn api_key_unknown_principal_and_scope_survive() {
        let key: ApiKey = decode(json!({
            "id": "apikey_4", "name": "n", "created_at": "2026-10-22T08:00:00Z",
            "created_by": {"id": "x_1", "type": "robot"}, "status": "active",
            "principal": {"type": "federated_actor", "issuer": "fdis_1"},
            "scope": {"type": "galaxy", "galaxy_id": "g"}, "workspace_id": "wrkspc_legacy"
        }));
        assert_eq!(
            key.principal,
            Some(Principal::Other(
                json!({"type": "federated_actor", "issuer": "fdis_1"})
            ))
        );
        // Unknown scope: fall back to the deprecated field.
        assert_eq!(key.workspace(), Some("wrkspc_legacy"));
        assert_eq!(
            key.created_by.as_ref().map(|c| &c.kind),
            Some(&ActorType::Other("robot".into()))
        );
        let back: ApiKey = decode(serde_json::to_value(&key).unwrap());
        assert_eq!(back, key);
    }

    #[test]
    fn pages_with_null_and_missing_cursor_fields() {
        let empty: Page<User> = decode(json!({
            "data": [], "has_more": false, "first_id": null, "last_id": null
        }));
        assert!(empty.data.is_empty());
        assert_eq!(empty.first_id, None);
        let sparse: Page<Invite> = decode(json!({"data": []}));
        assert!(!sparse.has_more);
        // A bad element fails the page: silently dropping a member would be worse.
        let bad = serde_json::from_value::<Page<User>>(json!({
            "data": [{"id": "user_1"}], "has_more": false
        }));
        assert!(bad.is_err());
    }

    #[test]
    fn request_bodies_serialize_minimally() {
        assert_eq!(
            serde_json::to_value(CreateInvite::new("a@example.com", OrgRole::ClaudeCodeUser))
                .unwrap(),
            json!({"email": "a@example.com", "role": "claude_code_user"})
        );
        assert_eq!(
            serde_json::to_value(
                CreateInvite::new("a@example.com", OrgRole::Managed)
                    .rbac_group_ids(["rbac_group_1"])
            )
            .unwrap(),
            json!({"email": "a@example.com", "role": "managed", "rbac_group_ids": ["rbac_group_1"]})
        );
        assert_eq!(
            serde_json::to_value(UpdateApiKey::new()).unwrap(),
            json!({})
        );
        assert_eq!(
            serde_json::to_value(UpdateApiKey::new().status(ApiKeyStatus::Inactive)).unwrap(),
            json!({"status": "inactive"})
        );
        assert_eq!(
            serde_json::to_value(
                UpdateWorkspace::new()
                    .name("New")
                    .tag("old", None)
                    .tag("team", Some("x".into()))
            )
            .unwrap(),
            json!({"name": "New", "tags": {"old": null, "team": "x"}})
        );
        assert_eq!(
            serde_json::to_value(
                CreateWorkspace::new("Eng")
                    .display_color("#123456")
                    .data_residency(DataResidency {
                        allowed_inference_geos: Some(InferenceGeos::List(vec!["us".into()])),
                        default_inference_geo: Some("us".into()),
                        ..DataResidency::default()
                    })
                    .tag("team", "eng")
            )
            .unwrap(),
            json!({
                "name": "Eng", "display_color": "#123456",
                "data_residency": {"allowed_inference_geos": ["us"], "default_inference_geo": "us"},
                "tags": {"team": "eng"}
            })
        );
        assert_eq!(
            serde_json::to_value(AddWorkspaceMember {
                user_id: "user_1",
                workspace_role: &WorkspaceRole::WorkspaceDeveloper
            })
            .unwrap(),
            json!({"user_id": "user_1", "workspace_role": "workspace_developer"})
        );
    }
}
