//! What the organization holds for a person (from the mirror): the other input of the plan.

use std::collections::BTreeMap;

use crate::admin_api::{ApiKey, Invite, User, WorkspaceRole};

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
