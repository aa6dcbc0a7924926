//! The `[[rules]]` and `[default]` sections of the config file, as written.
//!
//! Roles are kept as strings here so that [`RuleSet::compile`](super::RuleSet::compile) can
//! report every bad value at once, with its location, instead of serde stopping at the first.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One `[[rules]]` entry.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    /// Unique, non-empty; names the rule in explanations and the journal.
    pub name: String,
    /// CEL expression over `person`; the rule matches when it evaluates to `true`.
    pub when: String,
    /// Organization role granted on a match.
    #[serde(default)]
    pub org_role: Option<String>,
    /// Workspace name → workspace role granted on a match.
    #[serde(default)]
    pub workspaces: BTreeMap<String, String>,
    /// Higher wins when matching rules grant different roles for the same thing (default 0).
    #[serde(default)]
    pub priority: i32,
}

/// The `[default]` section: the grant for whoever matches no rule.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DefaultConfig {
    #[serde(default)]
    pub org_role: Option<String>,
    #[serde(default)]
    pub workspaces: BTreeMap<String, String>,
}
