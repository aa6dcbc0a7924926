//! Compiling `[[rules]]` / `[default]` into a [`RuleSet`], and evaluating it for a person.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use cel::common::value::Val;
use cel::{Context, Env, ExecutionError, Program, Value};
use serde::Serialize;

use super::check::{self, Anchor};
use super::config::{DefaultConfig, RuleConfig};
use super::decision::{
    Attribution, Basis, Candidate, Decision, Explanation, GrantSource, Outcome, RuleOutcome,
};
use super::error::{RuleError, RuleErrorKind};
use super::person::{PersonFacts, PersonStatus};
use super::roles::{OrgRole, WorkspaceRole};

/// Longest workspace name the Admin API accepts.
const MAX_WORKSPACE_NAME: usize = 40;

/// What a rule (or the default) grants.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Grant {
    pub org_role: Option<OrgRole>,
    pub workspaces: BTreeMap<String, WorkspaceRole>,
}

/// One compiled rule.
pub struct Rule {
    index: usize,
    name: String,
    when: String,
    priority: i32,
    grant: Grant,
    program: Program,
}

impl Rule {
    /// Position in `[[rules]]`, from 0.
    pub fn index(&self) -> usize {
        self.index
    }
    pub fn name(&self) -> &str {
        &self.name
    }
    /// The CEL source of `when`.
    pub fn when(&self) -> &str {
        &self.when
    }
    pub fn priority(&self) -> i32 {
        self.priority
    }
    pub fn grant(&self) -> &Grant {
        &self.grant
    }
    fn source(&self) -> GrantSource {
        GrantSource::Rule {
            index: self.index,
            name: self.name.clone(),
        }
    }
}

impl fmt::Debug for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rule")
            .field("index", &self.index)
            .field("name", &self.name)
            .field("when", &self.when)
            .field("priority", &self.priority)
            .field("grant", &self.grant)
            .finish_non_exhaustive()
    }
}

/// Compiled rules plus the default: immutable, cheap to share (`Send + Sync`).
pub struct RuleSet {
    env: Arc<Env>,
    rules: Vec<Rule>,
    default: Option<Grant>,
}

impl fmt::Debug for RuleSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RuleSet")
            .field("rules", &self.rules)
            .field("default", &self.default)
            .finish_non_exhaustive()
    }
}

/// The CEL environment rules run in: the standard library plus the strings extension
/// (`lowerAscii`, `split`, `trim`, ...), handy for emails and titles.
fn environment() -> Result<Env, RuleError> {
    let mut env = Env::stdlib();
    env.add_extension(cel::extensions::strings).map_err(|e| {
        RuleError::new(
            RuleErrorKind::Internal,
            "rules",
            format!("cannot set up the CEL environment: {e}"),
        )
    })?;
    Ok(env)
}

impl RuleSet {
    /// Compiles and validates every rule and the default, reporting all problems at once.
    ///
    /// An empty rule list is fine (everyone gets the default, or nothing).
    pub fn compile(
        rules: &[RuleConfig],
        default: Option<&DefaultConfig>,
    ) -> Result<RuleSet, Vec<RuleError>> {
        let env = Arc::new(environment().map_err(|e| vec![e])?);
        let mut errors = Vec::new();
        let mut compiled = Vec::with_capacity(rules.len());
        let mut seen: BTreeMap<&str, usize> = BTreeMap::new();

        for (index, config) in rules.iter().enumerate() {
            let here = format!("rules[{index}] \"{}\"", config.name);
            check_name(index, config, &mut seen, &mut errors);
            let grant = compile_grant(
                &here,
                config.org_role.as_deref(),
                &config.workspaces,
                &mut errors,
            );
            if let Some(program) = compile_when(&env, &here, &config.when, &mut errors) {
                compiled.push(Rule {
                    index,
                    name: config.name.clone(),
                    when: config.when.clone(),
                    priority: config.priority,
                    grant,
                    program,
                });
            }
        }

        let default = default.map(|config| {
            let grant = compile_grant(
                "default",
                config.org_role.as_deref(),
                &config.workspaces,
                &mut errors,
            );
            if grant.org_role.is_none() && !config.workspaces.is_empty() {
                errors.push(RuleError::new(
                    RuleErrorKind::IncompleteGrant,
                    "default.workspaces",
                    "[default] grants workspaces but no org_role; workspace membership needs an \
                     organization role",
                ));
            }
            grant
        });

        if errors.is_empty() {
            Ok(RuleSet {
                env,
                rules: compiled,
                default,
            })
        } else {
            Err(errors)
        }
    }

    /// The compiled rules, in file order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The `[default]` grant, if configured.
    pub fn default_grant(&self) -> Option<&Grant> {
        self.default.as_ref()
    }

    /// Every workspace any rule or the default names. Keycard only ever touches
    /// memberships in these.
    pub fn managed_workspaces(&self) -> BTreeSet<String> {
        self.rules
            .iter()
            .map(|r| &r.grant)
            .chain(self.default.iter())
            .flat_map(|g| g.workspaces.keys().cloned())
            .collect()
    }

    /// Decides the access `person` should have. Never fails: a rule whose expression errors
    /// counts as not matched and the error is reported in the explanation.
    pub fn evaluate(&self, person: &PersonFacts) -> Decision {
        let outcomes = self.outcomes(person);
        let matched: Vec<&Rule> = self
            .rules
            .iter()
            .zip(&outcomes)
            .filter(|(_, o)| o.outcome.is_match())
            .map(|(r, _)| r)
            .collect();

        let mut explanation = Explanation {
            rules: outcomes,
            basis: Basis::MatchedRules,
            org_role: None,
            workspaces: BTreeMap::new(),
            notes: Vec::new(),
        };

        if person.status == PersonStatus::Departed {
            // Safe by default: whatever the rules say, a leaver keeps nothing.
            explanation.basis = Basis::Departed;
            explanation
                .notes
                .push("the person has departed: no access, whatever the rules say".to_owned());
        } else if !matched.is_empty() {
            explanation.org_role = resolve_org_role(&matched, &mut explanation.notes);
            explanation.workspaces = resolve_workspaces(&matched);
        } else if let Some(default) = &self.default {
            explanation.basis = Basis::Default;
            explanation.org_role = default.org_role.map(from_default);
            explanation.workspaces = default
                .workspaces
                .iter()
                .map(|(w, role)| (w.clone(), from_default(*role)))
                .collect();
        } else {
            explanation.basis = Basis::NoMatchNoDefault;
        }

        if explanation.org_role.is_none() && !explanation.workspaces.is_empty() {
            // Workspace membership requires organization membership.
            let names: Vec<String> = std::mem::take(&mut explanation.workspaces)
                .into_iter()
                .map(|(w, a)| format!("\"{w}\" ({} from {})", a.role, a.source))
                .collect();
            explanation.notes.push(format!(
                "no org role granted, so workspace grants are withheld: {}",
                names.join(", ")
            ));
        }

        Decision {
            org_role: explanation.org_role.as_ref().map(|a| a.role),
            workspaces: explanation
                .workspaces
                .iter()
                .map(|(w, a)| (w.clone(), a.role))
                .collect(),
            explanation,
        }
    }

    fn outcomes(&self, person: &PersonFacts) -> Vec<RuleOutcome> {
        let context = bind(&self.env, person.to_cel());
        self.rules
            .iter()
            .map(|rule| RuleOutcome {
                index: rule.index,
                name: rule.name.clone(),
                outcome: match &context {
                    Ok(context) => outcome(run(&rule.program, context)),
                    Err(e) => Outcome::Error {
                        message: format!("cannot bind `person`: {e}"),
                    },
                },
            })
            .collect()
    }
}

fn from_default<R>(role: R) -> Attribution<R> {
    Attribution {
        role,
        source: GrantSource::Default,
        priority: 0,
        outranked: Vec::new(),
    }
}

/// A context with `person` bound.
fn bind(env: &Arc<Env>, person: Value) -> Result<Context<'static, 'static>, ExecutionError> {
    let value = Box::<dyn Val>::try_from(person)?;
    let mut context = Context::with_env(Arc::clone(env));
    context.add_variable_as_val("person", value);
    Ok(context)
}

/// Why an evaluation produced no value.
enum Failure {
    Execution(ExecutionError),
    /// The interpreter panicked: contained so that one bad rule cannot take the service down.
    Panic,
}

fn run(program: &Program, context: &Context) -> Result<Value, Failure> {
    match catch_unwind(AssertUnwindSafe(|| program.execute(context))) {
        Ok(result) => result.map_err(Failure::Execution),
        Err(_) => Err(Failure::Panic),
    }
}

fn outcome(result: Result<Value, Failure>) -> Outcome {
    match result {
        Ok(Value::Bool(true)) => Outcome::Matched,
        Ok(Value::Bool(false)) => Outcome::NotMatched,
        Ok(other) => Outcome::Error {
            message: format!("evaluated to a {}, not a bool", other.type_of()),
        },
        Err(Failure::Execution(ExecutionError::NoSuchKey(key))) => Outcome::Error {
            // The usual cause: an attribute this person does not have.
            message: format!(
                "no such key: {key} (guard with has() to make an absent key a plain false)"
            ),
        },
        Err(Failure::Execution(e)) => Outcome::Error {
            message: e.to_string(),
        },
        Err(Failure::Panic) => Outcome::Error {
            message: "the CEL interpreter panicked".to_owned(),
        },
    }
}

/// Org role precedence: highest `priority` first; then the most privileged role on the
/// chain `user < claude_code_user < developer`; `billing` is off the chain, so when it ties
/// with a chain role the earliest tied rule decides (billing if it grants billing).
fn resolve_org_role(matched: &[&Rule], notes: &mut Vec<String>) -> Option<Attribution<OrgRole>> {
    let candidates: Vec<(&Rule, OrgRole)> = matched
        .iter()
        .filter_map(|r| r.grant.org_role.map(|role| (*r, role)))
        .collect();
    let top = candidates.iter().map(|(r, _)| r.priority).max()?;
    let tops: Vec<&(&Rule, OrgRole)> = candidates
        .iter()
        .filter(|(r, _)| r.priority == top)
        .collect();

    // The first (file order) of the most privileged chain roles.
    let mut chain_best: Option<&(&Rule, OrgRole)> = None;
    for candidate in tops.iter().copied() {
        if let Some(rank) = candidate.1.chain_rank()
            && chain_best.is_none_or(|(_, best)| best.chain_rank() < Some(rank))
        {
            chain_best = Some(candidate);
        }
    }
    let billing = tops
        .iter()
        .copied()
        .find(|(_, role)| *role == OrgRole::Billing);

    let winner = match (chain_best, billing) {
        (Some(chain), Some(billing)) => {
            // `tops` is non-empty here: it holds both.
            let first = tops.first().map_or(billing.0, |(r, _)| *r);
            let (winner, loser) = if first.index == billing.0.index {
                (billing, chain)
            } else {
                (chain, billing)
            };
            notes.push(format!(
                "org role: {} from {} and {} from {} tie at priority {top} and are not \
                 comparable; the first of the tied rules in the file, {}, grants {}, so {} wins \
                 (set `priority` to choose explicitly)",
                winner.1,
                winner.0.source(),
                loser.1,
                loser.0.source(),
                first.source(),
                first.grant.org_role.map_or("nothing", OrgRole::as_str),
                winner.1,
            ));
            winner
        }
        (Some(only), None) | (None, Some(only)) => only,
        (None, None) => return None,
    };

    Some(Attribution {
        role: winner.1,
        source: winner.0.source(),
        priority: winner.0.priority,
        outranked: candidates
            .iter()
            .filter(|(r, _)| r.index != winner.0.index)
            .map(|(r, role)| Candidate {
                role: *role,
                source: r.source(),
                priority: r.priority,
            })
            .collect(),
    })
}

/// Per workspace: highest `priority` first, then the most privileged role; the earliest
/// rule granting the winning role is credited.
fn resolve_workspaces(matched: &[&Rule]) -> BTreeMap<String, Attribution<WorkspaceRole>> {
    let mut by_workspace: BTreeMap<&str, Vec<(&Rule, WorkspaceRole)>> = BTreeMap::new();
    for rule in matched {
        for (workspace, role) in &rule.grant.workspaces {
            by_workspace
                .entry(workspace)
                .or_default()
                .push((*rule, *role));
        }
    }
    by_workspace
        .into_iter()
        .filter_map(|(workspace, candidates)| {
            let mut winner: Option<&(&Rule, WorkspaceRole)> = None;
            for candidate in &candidates {
                let better = winner.is_none_or(|(best, role)| {
                    (candidate.0.priority, candidate.1) > (best.priority, *role)
                });
                if better {
                    winner = Some(candidate);
                }
            }
            let (rule, role) = winner?;
            Some((
                workspace.to_owned(),
                Attribution {
                    role: *role,
                    source: rule.source(),
                    priority: rule.priority,
                    outranked: candidates
                        .iter()
                        .filter(|(r, _)| r.index != rule.index)
                        .map(|(r, role)| Candidate {
                            role: *role,
                            source: r.source(),
                            priority: r.priority,
                        })
                        .collect(),
                },
            ))
        })
        .collect()
}

fn check_name<'a>(
    index: usize,
    config: &'a RuleConfig,
    seen: &mut BTreeMap<&'a str, usize>,
    errors: &mut Vec<RuleError>,
) {
    let location = format!("rules[{index}] \"{}\".name", config.name);
    if config.name.trim().is_empty() {
        errors.push(RuleError::new(
            RuleErrorKind::InvalidName,
            location,
            "rule name must not be empty",
        ));
    } else if config.name.trim() != config.name {
        errors.push(RuleError::new(
            RuleErrorKind::InvalidName,
            location,
            "rule name must not start or end with whitespace",
        ));
    } else if let Some(first) = seen.get(config.name.as_str()) {
        errors.push(RuleError::new(
            RuleErrorKind::DuplicateName,
            location,
            format!(
                "duplicate rule name \"{}\" (also rules[{first}]); names must be unique",
                config.name
            ),
        ));
    } else {
        seen.insert(&config.name, index);
    }
}

fn compile_grant(
    here: &str,
    org_role: Option<&str>,
    workspaces: &BTreeMap<String, String>,
    errors: &mut Vec<RuleError>,
) -> Grant {
    let org_role = org_role.and_then(|value| match OrgRole::parse(value) {
        Ok(role) => Some(role),
        Err(message) => {
            let kind = if message.contains("administrative") {
                RuleErrorKind::AdministrativeRole
            } else {
                RuleErrorKind::InvalidOrgRole
            };
            errors.push(RuleError::new(kind, format!("{here}.org_role"), message));
            None
        }
    });
    let mut granted = BTreeMap::new();
    for (workspace, value) in workspaces {
        let location = format!("{here}.workspaces.\"{workspace}\"");
        if let Some(message) = workspace_name_problem(workspace) {
            errors.push(RuleError::new(
                RuleErrorKind::InvalidWorkspaceName,
                location.clone(),
                message,
            ));
        }
        match WorkspaceRole::parse(value) {
            Ok(role) => {
                granted.insert(workspace.clone(), role);
            }
            Err(message) => errors.push(RuleError::new(
                RuleErrorKind::InvalidWorkspaceRole,
                location,
                message,
            )),
        }
    }
    Grant {
        org_role,
        workspaces: granted,
    }
}

fn workspace_name_problem(name: &str) -> Option<String> {
    let length = name.chars().count();
    if name.trim().is_empty() {
        Some("workspace name must not be empty".to_owned())
    } else if length > MAX_WORKSPACE_NAME {
        Some(format!(
            "workspace name is {length} characters; the Admin API allows at most \
             {MAX_WORKSPACE_NAME}"
        ))
    } else if name.trim() != name {
        Some("workspace name must not start or end with whitespace".to_owned())
    } else if name == "Default" {
        // The Default Workspace has no member list: access there follows the org role.
        Some(
            "the Default workspace has no members of its own (access follows the org role); \
             it cannot be managed by rules"
                .to_owned(),
        )
    } else {
        None
    }
}

/// Parses and checks one `when`. Returns the program only if it is usable.
fn compile_when(
    env: &Arc<Env>,
    here: &str,
    when: &str,
    errors: &mut Vec<RuleError>,
) -> Option<Program> {
    let location = format!("{here}.when");
    if when.trim().is_empty() {
        errors.push(RuleError::new(
            RuleErrorKind::EmptyExpression,
            location,
            "`when` must not be empty (use 'true' to match everyone)",
        ));
        return None;
    }
    let program = match env.compile(when) {
        Ok(program) => program,
        Err(parse) => {
            for e in parse.errors {
                let position = match e.pos {
                    (line, column) if line > 0 && column > 0 => Some((line as u32, column as u32)),
                    _ => None,
                };
                errors.push(
                    RuleError::new(RuleErrorKind::Syntax, location.clone(), e.msg)
                        .in_expression(when, position),
                );
            }
            return None;
        }
    };

    let before = errors.len();
    let report = check::check(env, program.expression());
    for finding in report.findings {
        let position = program
            .source_info()
            .offset_for(finding.node)
            .map(|(start, _)| {
                let at = char_index(when, start as usize);
                line_column(when, anchored(when, at, &finding.anchor))
            });
        errors.push(
            RuleError::new(finding.kind, location.clone(), finding.message)
                .in_expression(when, position),
        );
    }
    if errors.len() == before
        && let Some(message) = sample_problem(env, &program, report.dynamic)
    {
        errors
            .push(RuleError::new(RuleErrorKind::Type, location, message).in_expression(when, None));
    }
    (errors.len() == before).then_some(program)
}

/// The parser records node positions as byte offsets (its input stream indexes the `str`
/// by byte); columns are reported in characters.
fn char_index(text: &str, byte_offset: usize) -> usize {
    let end = byte_offset.min(text.len());
    match text.get(..end) {
        Some(prefix) => prefix.chars().count(),
        None => end,
    }
}

/// Moves a node's character offset onto the name a finding is about, when the source
/// around it spells that name (a quoted `person["x"]` does not, and keeps the node's).
fn anchored(text: &str, offset: usize, anchor: &Anchor) -> usize {
    let chars: Vec<char> = text.chars().collect();
    let spells = |at: usize, name: &str| {
        name.chars().count() + at <= chars.len()
            && chars[at..].iter().zip(name.chars()).all(|(a, b)| *a == b)
    };
    match anchor {
        Anchor::Node => offset,
        Anchor::Before(name) => {
            let len = name.chars().count();
            // `a.b.f(`: only the last segment is written right before `(`.
            let last = name.rsplit('.').next().unwrap_or(name);
            let last_len = last.chars().count();
            if offset >= len && spells(offset - len, name) {
                offset - len
            } else if offset >= last_len && spells(offset - last_len, last) {
                offset - last_len
            } else {
                offset
            }
        }
        Anchor::After(name) if spells(offset + 1, name) => offset + 1,
        Anchor::After(_) => offset,
    }
}

/// 1-based line and column of the `offset`th character of `text`.
fn line_column(text: &str, offset: usize) -> (u32, u32) {
    let mut line = 1;
    let mut column = 1;
    for c in text.chars().take(offset) {
        if c == '\n' {
            line += 1;
            column = 1;
        } else {
            column += 1;
        }
    }
    (line, column)
}

/// Type-checks as far as practical by running the expression against sample people.
///
/// Every field but `attributes` has a fixed type, so unless the expression reaches into
/// `attributes` (`dynamic`), a type error for a sample is a type error for everyone. Errors
/// that depend on the data (missing keys, bad indexes, `int("")`) are not reported here. A
/// non-bool result is always a mistake.
fn sample_problem(env: &Arc<Env>, program: &Program, dynamic: bool) -> Option<String> {
    for sample in samples() {
        let context = match bind(env, sample.to_cel()) {
            Ok(context) => context,
            Err(e) => return Some(format!("cannot bind a sample `person`: {e}")),
        };
        match run(program, &context) {
            Ok(Value::Bool(_)) => {}
            Ok(other) => {
                return Some(format!(
                    "expression must evaluate to a bool, but gives a {} for a sample person",
                    other.type_of()
                ));
            }
            Err(Failure::Execution(e)) if !dynamic && is_type_error(&e) => {
                return Some(format!("type error for a sample person: {e}"));
            }
            Err(Failure::Panic) => {
                return Some("the CEL interpreter panicked on a sample person".to_owned());
            }
            Err(Failure::Execution(_)) => {}
        }
    }
    None
}

/// A person with nothing known, and one with every field filled.
fn samples() -> [PersonFacts; 2] {
    let filled = Some("sample".to_owned());
    [
        PersonFacts::default(),
        PersonFacts {
            id: "sample".to_owned(),
            email: Some("sample@example.com".to_owned()),
            name: filled.clone(),
            department: filled.clone(),
            title: filled.clone(),
            division: filled.clone(),
            cost_center: filled.clone(),
            location: filled.clone(),
            worker_type: filled.clone(),
            manager_email: Some("manager@example.com".to_owned()),
            groups: vec!["sample".to_owned()],
            attributes: serde_json::Map::new(),
            status: PersonStatus::Active,
            source: "sample".to_owned(),
        },
    ]
}

/// Errors that come from the shape of the expression rather than from the data.
#[allow(deprecated)]
fn is_type_error(e: &ExecutionError) -> bool {
    matches!(
        e,
        ExecutionError::NoSuchOverload(_)
            | ExecutionError::ValuesNotComparable(..)
            | ExecutionError::UnexpectedType { .. }
            | ExecutionError::UnsupportedBinaryOperator(..)
            | ExecutionError::UndeclaredReference(_)
            | ExecutionError::NotSupportedAsMethod { .. }
            | ExecutionError::InvalidArgumentCount { .. }
            | ExecutionError::UnsupportedTargetType { .. }
            | ExecutionError::UnsupportedKeyType(_)
            | ExecutionError::UnsupportedIndex(..)
            | ExecutionError::MissingArgumentOrTarget
    )
}
