//! Load-time checks of a parsed `when` expression, beyond what the parser does.
//!
//! The interpreter only notices an unknown name when it evaluates it, and `&&` / `||` / `?:`
//! may never get there for a given person; so the AST is walked here, every branch, to find
//! unknown variables, functions, types and `person` fields, with their positions.

use std::sync::Arc;

use cel::common::ast::{EntryExpr, Expr, LiteralValue, operators};
use cel::{Context, Env, IdedExpr};

use super::error::RuleErrorKind;
use super::person::PERSON_FIELDS;

/// One finding: what, why, and the node's offset in the source (if the parser recorded it).
pub(crate) struct Finding {
    pub kind: RuleErrorKind,
    pub message: String,
    /// The AST node, to look its position up in the program's source info.
    pub node: u64,
    /// The name the finding is about, which the parser records next to the node's
    /// position: a call's position is its `(`, a selection's its `.`.
    pub anchor: Anchor,
}

pub(crate) enum Anchor {
    /// The node's position is the thing itself (identifiers).
    Node,
    /// The name ends right before the node's position (calls: `foo(`).
    Before(String),
    /// The name starts right after the node's position (selections: `.field`).
    After(String),
}

/// The result of walking one expression.
pub(crate) struct Report {
    pub findings: Vec<Finding>,
    /// Whether the expression's result may depend on `person.attributes` (or on `person` in
    /// a way the walk cannot follow), whose types are free-form: a type error against a
    /// sample person is then not conclusive.
    pub dynamic: bool,
}

pub(crate) fn check(env: &Arc<Env>, expr: &IdedExpr) -> Report {
    let mut checker = Checker {
        env,
        bound: Vec::new(),
        findings: Vec::new(),
        dynamic: false,
    };
    checker.walk(expr);
    Report {
        findings: checker.findings,
        dynamic: checker.dynamic,
    }
}

struct Checker<'a> {
    env: &'a Arc<Env>,
    /// Comprehension variables in scope, innermost last.
    bound: Vec<String>,
    findings: Vec<Finding>,
    dynamic: bool,
}

impl Checker<'_> {
    fn walk(&mut self, e: &IdedExpr) {
        match &e.expr {
            Expr::Unspecified | Expr::Literal(_) => {}
            Expr::Ident(name) => self.ident(name, e.id),
            Expr::Select(select) => {
                if self.is_person(&select.operand) {
                    self.person_field(&select.field, e.id);
                } else if !self.is_type_name(e) {
                    self.walk(&select.operand);
                }
            }
            Expr::Call(call) => {
                if let Some(target) = &call.target {
                    // `a.b.f()` may name the function `a.b.f` (e.g. `optional.of`) rather
                    // than `f` called on `a.b`; the interpreter decides the same way.
                    let qualified = self.qualified_name(target).is_some_and(|name| {
                        self.is_declared(&format!("{name}.{}", call.func_name))
                    });
                    if !qualified {
                        self.function(&call.func_name, call.args.len(), e.id);
                        self.walk(target);
                    }
                } else if is_identifier(&call.func_name) {
                    self.function(&call.func_name, call.args.len(), e.id);
                }
                // `person["department"]` and `person.?department` are field selections too.
                let literal_field = matches!(
                    call.func_name.as_str(),
                    operators::INDEX | operators::OPT_INDEX | operators::OPT_SELECT
                ) && call.args.len() == 2
                    && self.is_person(&call.args[0]);
                if literal_field {
                    if let Expr::Literal(LiteralValue::String(field)) = &call.args[1].expr {
                        self.person_field(field.inner(), e.id);
                    } else {
                        self.dynamic = true;
                        self.walk(&call.args[1]);
                    }
                    return;
                }
                for arg in &call.args {
                    self.walk(arg);
                }
            }
            Expr::Comprehension(comp) => {
                self.walk(&comp.iter_range);
                self.walk(&comp.accu_init);
                let before = self.bound.len();
                self.bound.push(comp.iter_var.clone());
                if let Some(second) = &comp.iter_var2 {
                    self.bound.push(second.clone());
                }
                self.bound.push(comp.accu_var.clone());
                self.walk(&comp.loop_cond);
                self.walk(&comp.loop_step);
                self.walk(&comp.result);
                self.bound.truncate(before);
            }
            Expr::List(list) => {
                for element in &list.elements {
                    self.walk(element);
                }
            }
            Expr::Map(map) => {
                for entry in &map.entries {
                    self.entry(&entry.expr);
                }
            }
            Expr::Struct(st) => {
                if self.env.types().find_struct(&st.type_name).is_none() {
                    self.finding(
                        RuleErrorKind::UnknownType,
                        format!("unknown message type '{}'", st.type_name),
                        e.id,
                        Anchor::Node,
                    );
                }
                for entry in &st.entries {
                    self.entry(&entry.expr);
                }
            }
        }
    }

    fn entry(&mut self, entry: &EntryExpr) {
        match entry {
            EntryExpr::MapEntry(m) => {
                self.walk(&m.key);
                self.walk(&m.value);
            }
            EntryExpr::StructField(f) => self.walk(&f.value),
        }
    }

    fn is_bound(&self, name: &str) -> bool {
        self.bound.iter().any(|b| b == name)
    }

    /// `person` itself (not shadowed by a comprehension variable of the same name).
    fn is_person(&self, e: &IdedExpr) -> bool {
        matches!(&e.expr, Expr::Ident(name) if name.trim_start_matches('.') == "person"
            && !self.is_bound(name))
    }

    fn ident(&mut self, name: &str, id: u64) {
        let plain = name.trim_start_matches('.');
        if self.is_bound(name) {
            return;
        }
        if plain == "person" {
            // `person` used whole (passed to a function, iterated, indexed dynamically):
            // which fields it reaches cannot be followed.
            self.dynamic = true;
            return;
        }
        if self.env.types().find_type(plain).is_some() {
            return;
        }
        self.finding(
            RuleErrorKind::UnknownVariable,
            format!("undeclared reference to '{plain}' (the only variable is `person`)"),
            id,
            Anchor::Node,
        );
    }

    fn person_field(&mut self, field: &str, id: u64) {
        if field == "attributes" {
            self.dynamic = true;
        }
        if !PERSON_FIELDS.contains(&field) {
            self.finding(
                RuleErrorKind::UnknownPersonField,
                format!(
                    "`person` has no field '{field}'; fields are {} (free-form ones are under \
                     `person.attributes`)",
                    PERSON_FIELDS.join(", ")
                ),
                id,
                Anchor::After(field.to_owned()),
            );
        }
    }

    fn function(&mut self, name: &str, arity: usize, id: u64) {
        if !self.is_declared(name) {
            self.finding(
                RuleErrorKind::UnknownFunction,
                format!("undeclared function or macro '{name}' (called with {arity} argument(s))"),
                id,
                Anchor::Before(name.to_owned()),
            );
        }
    }

    /// Whether `name` is declared as a function in the environment.
    ///
    /// `Env` keeps that question crate-private; `Context::add_function` answers it publicly,
    /// refusing (with `OverloadConflict`) exactly the names the `Env` declares. A throwaway
    /// context is used so nothing is actually registered.
    fn is_declared(&self, name: &str) -> bool {
        fn probe() -> bool {
            true
        }
        Context::with_env(Arc::clone(self.env))
            .add_function(name, probe)
            .is_err()
    }

    /// `a.b.c` spelled by nested selections on an unbound identifier other than `person`.
    fn qualified_name(&self, e: &IdedExpr) -> Option<String> {
        match &e.expr {
            Expr::Ident(name) if !self.is_bound(name) && name != "person" => {
                Some(name.trim_start_matches('.').to_owned())
            }
            Expr::Select(select) if !select.test => self
                .qualified_name(&select.operand)
                .map(|prefix| format!("{prefix}.{}", select.field)),
            _ => None,
        }
    }

    /// A qualified type name such as `google.protobuf.Timestamp`.
    fn is_type_name(&self, e: &IdedExpr) -> bool {
        self.qualified_name(e)
            .is_some_and(|name| self.env.types().find_type(&name).is_some())
    }

    fn finding(&mut self, kind: RuleErrorKind, message: String, id: u64, anchor: Anchor) {
        self.findings.push(Finding {
            kind,
            message,
            node: id,
            anchor,
        });
    }
}

/// Operators are calls too (`_==_`, `@in`, `!_`); only names a user can write are checked.
fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
}
