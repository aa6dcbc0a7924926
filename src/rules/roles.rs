//! The roles rules may grant: the subset of the Admin API's roles that automation is allowed
//! to assign (`docs/spec/admin-api.md` §6).

use std::fmt;

use serde::{Deserialize, Serialize};

/// An organization role a rule may grant.
///
/// Administrative roles (`admin`, `owner`, `primary_owner`, `membership_admin`) are not
/// representable: automation never assigns them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrgRole {
    User,
    ClaudeCodeUser,
    Developer,
    Billing,
}

impl OrgRole {
    pub const ALL: [OrgRole; 4] = [
        OrgRole::User,
        OrgRole::ClaudeCodeUser,
        OrgRole::Developer,
        OrgRole::Billing,
    ];

    /// The wire value, as the Admin API spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            OrgRole::User => "user",
            OrgRole::ClaudeCodeUser => "claude_code_user",
            OrgRole::Developer => "developer",
            OrgRole::Billing => "billing",
        }
    }

    /// Rank on the privilege chain `user < claude_code_user < developer`. `billing` grants
    /// different powers rather than more of the same, so it is not on the chain.
    pub fn chain_rank(self) -> Option<u8> {
        match self {
            OrgRole::User => Some(0),
            OrgRole::ClaudeCodeUser => Some(1),
            OrgRole::Developer => Some(2),
            OrgRole::Billing => None,
        }
    }

    pub(crate) fn parse(value: &str) -> Result<OrgRole, String> {
        if let Some(role) = OrgRole::ALL.into_iter().find(|r| r.as_str() == value) {
            return Ok(role);
        }
        if is_administrative(value) {
            return Err(format!(
                "org_role \"{value}\" is an administrative role and can never be assigned by \
                 automation; grant it by hand in the Console"
            ));
        }
        let mut message = format!(
            "unknown org_role \"{value}\"; expected one of {}",
            quoted_list(OrgRole::ALL.iter().map(|r| r.as_str()))
        );
        if value.starts_with("workspace_") {
            message.push_str(" (workspace roles belong in `workspaces`)");
        }
        Err(message)
    }
}

impl fmt::Display for OrgRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Roles that make a member administrative (Console and Enterprise spellings).
fn is_administrative(value: &str) -> bool {
    matches!(
        value,
        "admin" | "owner" | "primary_owner" | "membership_admin"
    )
}

/// A workspace role a rule may grant. Ordered by privilege:
/// `workspace_user < workspace_restricted_developer < workspace_developer < workspace_admin`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum WorkspaceRole {
    #[serde(rename = "workspace_user")]
    User,
    #[serde(rename = "workspace_restricted_developer")]
    RestrictedDeveloper,
    #[serde(rename = "workspace_developer")]
    Developer,
    #[serde(rename = "workspace_admin")]
    Admin,
}

impl WorkspaceRole {
    pub const ALL: [WorkspaceRole; 4] = [
        WorkspaceRole::User,
        WorkspaceRole::RestrictedDeveloper,
        WorkspaceRole::Developer,
        WorkspaceRole::Admin,
    ];

    /// The wire value, as the Admin API spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            WorkspaceRole::User => "workspace_user",
            WorkspaceRole::RestrictedDeveloper => "workspace_restricted_developer",
            WorkspaceRole::Developer => "workspace_developer",
            WorkspaceRole::Admin => "workspace_admin",
        }
    }

    pub(crate) fn parse(value: &str) -> Result<WorkspaceRole, String> {
        if let Some(role) = WorkspaceRole::ALL.into_iter().find(|r| r.as_str() == value) {
            return Ok(role);
        }
        if value == "workspace_billing" {
            return Err(
                "workspace role \"workspace_billing\" cannot be assigned: it is only ever \
                 inherited from the org billing role"
                    .to_owned(),
            );
        }
        let mut message = format!(
            "unknown workspace role \"{value}\"; expected one of {}",
            quoted_list(WorkspaceRole::ALL.iter().map(|r| r.as_str()))
        );
        // A common slip: writing the org-style name without the prefix.
        let prefixed = format!("workspace_{value}");
        if WorkspaceRole::ALL.iter().any(|r| r.as_str() == prefixed) {
            message.push_str(&format!(" (did you mean \"{prefixed}\"?)"));
        }
        Err(message)
    }
}

impl fmt::Display for WorkspaceRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

fn quoted_list<'a>(values: impl Iterator<Item = &'a str>) -> String {
    values
        .map(|v| format!("\"{v}\""))
        .collect::<Vec<_>>()
        .join(", ")
}
