//! Rules: from what Keycard knows about a person to the access they should have.
//!
//! Config (`[[rules]]`, `[default]`, see [`RuleConfig`] / [`DefaultConfig`]) is compiled
//! once, at load, into a `RuleSet`; `RuleSet::evaluate` then turns a person's
//! [`PersonFacts`] into a [`Decision`]: the desired org role, the desired memberships in
//! managed workspaces, and an [`Explanation`] fit for the journal.

mod config;
mod decision;
mod error;
mod person;
mod roles;

pub use config::{DefaultConfig, RuleConfig};
pub use decision::{
    Attribution, Basis, Candidate, Decision, Explanation, GrantSource, Outcome, RuleOutcome,
};
pub use error::{RuleError, RuleErrorKind};
pub use person::{PersonFacts, PersonStatus};
pub use roles::{OrgRole, WorkspaceRole};
