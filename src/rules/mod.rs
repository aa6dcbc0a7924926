//! Rules: from what Keycard knows about a person to the access they should have.
//!
//! Config (`[[rules]]`, `[default]`, see [`RuleConfig`] / [`DefaultConfig`]) is compiled
//! once, at load, into a [`RuleSet`]; [`RuleSet::evaluate`] then turns a person's
//! [`PersonFacts`] into a [`Decision`]: the desired org role, the desired memberships in
//! managed workspaces, and an [`Explanation`] fit for the journal.
//!
//! # Loading
//!
//! [`RuleSet::compile`] reports *all* problems, each located (`rules[2] "engineering".when`,
//! plus line and column inside the expression where known): CEL syntax errors; unknown
//! variables, functions, types and `person` fields (found by walking every branch of the
//! expression, since evaluation short-circuits); type errors and non-bool results against
//! sample people; empty or duplicate rule names; roles that are unknown or that automation
//! must never assign (`admin`, owners, `workspace_billing`); bad workspace names.
//!
//! # The CEL context
//!
//! One variable, `person`, a map with these keys, **always all present**:
//!
//! | key | CEL type | |
//! |---|---|---|
//! | `id`, `email`, `name`, `department`, `title`, `division`, `cost_center`, `location`, `worker_type`, `manager_email` | string | absent → `""` |
//! | `groups` | list(string) | absent → `[]` |
//! | `attributes` | map(string, dyn) | free-form JSON; absent → `{}` |
//! | `status` | string | `"active"`, `"on_leave"` or `"departed"` |
//! | `source` | string | name of the configured source |
//!
//! Missing-attribute convention: the fixed fields are never missing, so
//! `person.department == "Engineering"` is simply `false` when the department is unknown,
//! and `person.title.startsWith("Staff")` works on everyone. `"eng" in person.groups` works
//! on an empty list. The free-form `attributes` map holds only what the source sent: test
//! with `has(person.attributes.level)` (or `person.attributes.?level.orValue("")`) before
//! using a key; reading a key that is absent is a runtime error, which makes the rule *not
//! match* for that person and is reported in the explanation. JSON integers become `int`,
//! other numbers `double`. The standard library and the strings extension (`lowerAscii`,
//! `split`, `trim`, ...) are available.
//!
//! # Precedence
//!
//! Deterministic, and recorded in [`Explanation`]:
//!
//! 1. Every rule is evaluated. A rule matches when `when` is `true`; `false`, a non-bool or
//!    a runtime error means not matched (errors are reported, never raised).
//! 2. **All** matching rules apply. For the org role, and for each workspace separately,
//!    the candidates are the matching rules that grant one:
//!    * the highest `priority` wins (default 0; use it to cap, e.g. contractors at `user`);
//!    * at equal priority the most privileged role wins: org roles on the chain
//!      `user < claude_code_user < developer`; workspace roles
//!      `workspace_user < workspace_restricted_developer < workspace_developer < workspace_admin`;
//!    * `billing` is not on the chain (different powers, not more). If `billing` and a
//!      chain role tie at the top priority, the earliest tied rule in the file decides:
//!      `billing` if it grants `billing`, otherwise the best chain role. A note says so.
//!    * the earliest rule (file order) granting the winning role is credited with it.
//! 3. If no rule matched, `[default]` applies as written. Without `[default]`: no access.
//!    A matching rule that grants nothing therefore keeps someone out of the default.
//! 4. Workspace membership needs an org role: if the result has workspaces but no org
//!    role, the workspaces are withheld (with a note).
//! 5. A `departed` person gets no access whatever the rules say (rules are still evaluated
//!    and reported). `on_leave` is left to the rules (`person.status == "active"`).

mod check;
mod config;
mod decision;
mod error;
mod person;
mod roles;
mod ruleset;

pub use config::{DefaultConfig, RuleConfig};
pub use decision::{
    Attribution, Basis, Candidate, Decision, Explanation, GrantSource, Outcome, RuleOutcome,
};
pub use error::{RuleError, RuleErrorKind};
pub(crate) use person::PERSON_FIELDS;
pub use person::{PersonFacts, PersonStatus};
pub use roles::{OrgRole, WorkspaceRole};
pub use ruleset::{Grant, Rule, RuleSet};

#[cfg(test)]
mod tests;
