//! Load-time errors in `[[rules]]` / `[default]`, each with where it is.

use std::fmt;

use serde::Serialize;

/// What kind of mistake a [`RuleError`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleErrorKind {
    /// The rule name is empty or has surrounding whitespace.
    InvalidName,
    DuplicateName,
    /// `when` is empty.
    EmptyExpression,
    /// The CEL parser rejected `when`.
    Syntax,
    /// `when` refers to a variable other than `person` (or a comprehension variable).
    UnknownVariable,
    /// `when` calls a function or macro the environment does not declare.
    UnknownFunction,
    /// `when` selects a field `person` does not have.
    UnknownPersonField,
    /// `when` names a type that is not registered.
    UnknownType,
    /// `when` fails with a type error, or yields a non-bool, for a sample person.
    Type,
    InvalidOrgRole,
    /// An administrative org role, which automation never assigns.
    AdministrativeRole,
    InvalidWorkspaceRole,
    InvalidWorkspaceName,
    /// `[default]` grants workspaces without an org role, which cannot be applied.
    IncompleteGrant,
    /// The CEL environment itself could not be set up (a bug, not a config mistake).
    Internal,
}

/// One problem found while compiling the rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleError {
    pub kind: RuleErrorKind,
    /// Where in the config: `rules[2] "engineering".when`, `default.org_role`,
    /// `rules[0] "x".workspaces."Eng"`. Rule indexes count from 0, in file order.
    pub location: String,
    /// 1-based line and column inside the expression, when known.
    pub position: Option<(u32, u32)>,
    /// The expression text, for errors about `when`.
    pub expression: Option<String>,
    pub message: String,
}

impl RuleError {
    pub(crate) fn new(
        kind: RuleErrorKind,
        location: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            kind,
            location: location.into(),
            position: None,
            expression: None,
            message: message.into(),
        }
    }

    pub(crate) fn in_expression(mut self, expression: &str, position: Option<(u32, u32)>) -> Self {
        self.expression = Some(expression.to_owned());
        self.position = position;
        self
    }
}

impl fmt::Display for RuleError {
    /// `location[:line:column]: message`, then the offending expression line with a caret.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.location)?;
        if let Some((line, column)) = self.position {
            write!(f, ":{line}:{column}")?;
        }
        write!(f, ": {}", self.message)?;
        if let Some(expression) = &self.expression {
            match self.position {
                Some((line, column)) => {
                    let text = expression
                        .lines()
                        .nth(line.saturating_sub(1) as usize)
                        .unwrap_or_default();
                    let pad = column.saturating_sub(1) as usize;
                    write!(f, "\n    {text}\n    {:pad$}^", "")?;
                }
                None => write!(f, "\n    {expression}")?,
            }
        }
        Ok(())
    }
}

impl std::error::Error for RuleError {}
