//! What rules decide for one person, and why.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

use super::roles::{OrgRole, WorkspaceRole};

/// The access a person should have, with the reasoning behind it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    /// `None`: the person should not be in the organization at all.
    pub org_role: Option<OrgRole>,
    /// Desired memberships in managed workspaces; a managed workspace absent here means
    /// "not a member".
    pub workspaces: BTreeMap<String, WorkspaceRole>,
    pub explanation: Explanation,
}

impl Decision {
    /// Whether the decision grants nothing.
    pub fn is_no_access(&self) -> bool {
        self.org_role.is_none() && self.workspaces.is_empty()
    }
}

/// How a [`Decision`] came about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Explanation {
    /// Every rule, in file order, with its outcome.
    pub rules: Vec<RuleOutcome>,
    pub basis: Basis,
    /// Who supplied the org role, and who was outranked.
    pub org_role: Option<Attribution<OrgRole>>,
    /// Per granted workspace: who supplied the role, and who was outranked.
    pub workspaces: BTreeMap<String, Attribution<WorkspaceRole>>,
    /// Anything else worth knowing: ties settled by file order, grants withheld.
    pub notes: Vec<String>,
}

/// What the decision was based on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Basis {
    /// At least one rule matched; the matching rules' grants were merged.
    MatchedRules,
    /// No rule matched; `[default]` applied.
    Default,
    /// No rule matched and there is no `[default]`: no access.
    NoMatchNoDefault,
    /// The person has departed: no access, whatever the rules say.
    Departed,
}

/// One rule's outcome for the person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleOutcome {
    /// Position in `[[rules]]`, from 0.
    pub index: usize,
    pub name: String,
    pub outcome: Outcome,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Outcome {
    Matched,
    NotMatched,
    /// Evaluation failed (e.g. a missing attribute or a type mismatch); counts as not
    /// matched.
    Error {
        message: String,
    },
}

impl Outcome {
    pub fn is_match(&self) -> bool {
        matches!(self, Outcome::Matched)
    }
}

/// Where a granted value came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "from", rename_all = "snake_case")]
pub enum GrantSource {
    Rule { index: usize, name: String },
    Default,
}

impl fmt::Display for GrantSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GrantSource::Rule { index, name } => write!(f, "rules[{index}] \"{name}\""),
            GrantSource::Default => f.write_str("[default]"),
        }
    }
}

/// A granted role, the rule (or default) credited with it, and the other candidates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Attribution<R> {
    pub role: R,
    pub source: GrantSource,
    /// The priority of the credited rule (0 for the default).
    pub priority: i32,
    /// Other matching rules that granted a role for the same thing, in file order, with
    /// what they granted (possibly the same role, when an earlier rule is credited).
    pub outranked: Vec<Candidate<R>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Candidate<R> {
    pub role: R,
    pub source: GrantSource,
    pub priority: i32,
}

impl fmt::Display for Decision {
    /// A human-readable account, for `keycard plan` and logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let e = &self.explanation;
        for rule in &e.rules {
            let outcome = match &rule.outcome {
                Outcome::Matched => "matched".to_owned(),
                Outcome::NotMatched => "not matched".to_owned(),
                Outcome::Error { message } => format!("error (not matched): {message}"),
            };
            writeln!(f, "rules[{}] \"{}\": {outcome}", rule.index, rule.name)?;
        }
        let basis = match e.basis {
            Basis::MatchedRules => "matching rules",
            Basis::Default => "[default] (no rule matched)",
            Basis::NoMatchNoDefault => "nothing (no rule matched, no [default])",
            Basis::Departed => "nothing (departed)",
        };
        writeln!(f, "based on: {basis}")?;
        match &e.org_role {
            Some(a) => writeln!(f, "org role: {} from {}", a.role, a.source)?,
            None => writeln!(f, "org role: none")?,
        }
        for (workspace, a) in &e.workspaces {
            writeln!(f, "workspace \"{workspace}\": {} from {}", a.role, a.source)?;
        }
        for note in &e.notes {
            writeln!(f, "note: {note}")?;
        }
        Ok(())
    }
}
