//! Adoption settings: the deployment mode, what happens to members no person names, and
//! the hygiene thresholds the reports use.

use serde::{Deserialize, Serialize};

/// `mode`: whether Keycard may write to the organization.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Plans, journals and reports everything; writes to the organization.
    #[default]
    Enforce,
    /// Plans, journals and reports everything; writes nothing (every action is journaled
    /// as `dry_run`) until the operator switches to `enforce`.
    Observe,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Enforce => "enforce",
            Self::Observe => "observe",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "enforce" => Some(Self::Enforce),
            "observe" => Some(Self::Observe),
            _ => None,
        }
    }
}

/// `[unmanaged] policy`: members and invites that no person record names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum UnmanagedPolicy {
    /// Listed by `keycard report unmanaged`; nothing is done.
    #[default]
    Report,
    /// Offboarded like a leaver, through the removal cap; admins, owners and protected
    /// addresses never.
    Remove,
}

#[derive(Debug, Clone, Default, Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct UnmanagedConfig {
    pub policy: UnmanagedPolicy,
}

/// `[hygiene]`: the thresholds of the best-practice reports.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct HygieneConfig {
    /// Invites that expired more than this many days ago are flagged for clean-up.
    pub expired_invite_days: u32,
    /// Active API keys older than this many days are due for rotation.
    pub key_rotation_days: u32,
    /// Archive workspaces with no members and no active keys that no rule names (default
    /// false: only reported). Irreversible, so each archive goes through the removal cap.
    pub archive_unused_workspaces: bool,
    /// A workspace younger than this many days is never called unused (it may be waiting
    /// for its first members).
    pub unused_workspace_days: u32,
}

impl Default for HygieneConfig {
    fn default() -> Self {
        Self {
            expired_invite_days: 30,
            key_rotation_days: 90,
            archive_unused_workspaces: false,
            unused_workspace_days: 30,
        }
    }
}
