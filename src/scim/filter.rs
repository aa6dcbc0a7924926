//! Attribute paths and the SCIM filter language (RFC 7644 §3.4.2.2).
//!
//! Supported: `eq ne co sw ew gt ge lt le pr`, `and`, `or`, `not (...)`, grouping with
//! parentheses, value paths (`emails[type eq "work" and value co "@x"]`, also followed by a
//! sub-attribute as Entra writes it: `emails[type eq "work"].value eq "a@x"`) and
//! URN-qualified paths. Keywords and attribute names are case-insensitive; string values
//! compare case-insensitively unless the attribute is `caseExact` (`id`, `externalId`,
//! `meta.version`, member `value`). Every attribute must be one the schema declares:
//! anything else is an `invalidFilter` error naming it.

use serde_json::{Map, Value};

use super::schema::{AttrDef, COMMON_ATTRS, Kind, ResourceType, find};

/// Longest filter accepted, in bytes.
pub(crate) const MAX_FILTER_LEN: usize = 4096;
/// Deepest nesting of parentheses / `not` / brackets.
const MAX_DEPTH: usize = 32;

/// A resolved attribute path: optional extension schema, attribute, optional sub-attribute.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AttrPath {
    /// The extension URN the attribute lives under (`None`: core or common attribute).
    pub schema: Option<&'static str>,
    pub attr: &'static AttrDef,
    pub sub: Option<&'static AttrDef>,
}

impl AttrPath {
    /// The definition of the last segment.
    pub(crate) fn leaf(&self) -> &'static AttrDef {
        self.sub.unwrap_or(self.attr)
    }

    /// Values at this path in `object` (multi-valued attributes are flattened).
    pub(crate) fn values<'a>(&self, object: &'a Map<String, Value>) -> Vec<&'a Value> {
        let container = match self.schema {
            Some(urn) => match get_ci(object, urn) {
                Some(Value::Object(ext)) => ext,
                _ => return Vec::new(),
            },
            None => object,
        };
        let Some(top) = get_ci(container, self.attr.name) else {
            return Vec::new();
        };
        let items: Vec<&Value> = match top {
            Value::Array(items) => items.iter().collect(),
            other => vec![other],
        };
        match self.sub {
            None => items,
            Some(sub) => items
                .into_iter()
                .filter_map(|item| item.as_object().and_then(|o| get_ci(o, sub.name)))
                .flat_map(|v| match v {
                    Value::Array(inner) => inner.iter().collect::<Vec<_>>(),
                    other => vec![other],
                })
                .collect(),
        }
    }
}

/// Case-insensitive key lookup (attribute names and schema URNs are case-insensitive).
pub(crate) fn get_ci<'a>(object: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    object.get(key).or_else(|| {
        object
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    })
}

/// The key under which `key` is stored in `object`, whatever its case.
pub(crate) fn key_ci(object: &Map<String, Value>, key: &str) -> Option<String> {
    object.keys().find(|k| k.eq_ignore_ascii_case(key)).cloned()
}

/// Where a path is resolved: a resource type's attributes, or inside one complex attribute
/// (the filter of a value path).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Scope {
    Resource(ResourceType),
    Within(&'static AttrDef),
}

/// Resolves `text` (e.g. `name.givenName`, `urn:...:enterprise:2.0:User:manager.value`).
/// The error names the path and reads well after "invalid path: ".
pub(crate) fn resolve(scope: Scope, text: &str) -> Result<AttrPath, String> {
    match scope {
        Scope::Within(parent) => {
            let def = find(parent.sub, text)
                .ok_or_else(|| format!("'{text}' is not a sub-attribute of '{}'", parent.name))?;
            Ok(AttrPath {
                schema: None,
                attr: def,
                sub: None,
            })
        }
        Scope::Resource(rt) => {
            let (schema, rest) = split_urn(rt, text)?;
            let mut parts = rest.splitn(2, '.');
            let name = parts.next().unwrap_or_default();
            let sub_name = parts.next();
            let attrs: Vec<&'static AttrDef> = match schema {
                Some(urn) => rt
                    .extensions()
                    .iter()
                    .filter(|(u, _)| *u == urn)
                    .flat_map(|(_, a)| a.iter())
                    .collect(),
                None => rt.core_attrs().iter().chain(COMMON_ATTRS.iter()).collect(),
            };
            let attr = attrs
                .into_iter()
                .find(|a| a.name.eq_ignore_ascii_case(name))
                .ok_or_else(|| format!("unknown attribute '{}'", truncate(text)))?;
            let sub = match sub_name {
                None => None,
                Some(s) => Some(
                    find(attr.sub, s)
                        .ok_or_else(|| format!("unknown attribute '{}'", truncate(text)))?,
                ),
            };
            Ok(AttrPath { schema, attr, sub })
        }
    }
}

/// Splits a URN prefix off: `Some(extension urn)` for extension attributes, `None` for core
/// (with or without the core URN prefix).
fn split_urn(rt: ResourceType, text: &str) -> Result<(Option<&'static str>, &str), String> {
    if !text
        .get(..4)
        .is_some_and(|p| p.eq_ignore_ascii_case("urn:"))
    {
        return Ok((None, text));
    }
    let strip = |urn: &str| -> Option<usize> {
        let head = text.get(..urn.len())?;
        (head.eq_ignore_ascii_case(urn) && text[urn.len()..].starts_with(':'))
            .then_some(urn.len() + 1)
    };
    if let Some(at) = strip(rt.core_schema()) {
        return Ok((None, &text[at..]));
    }
    for (urn, _) in rt.extensions() {
        if let Some(at) = strip(urn) {
            return Ok((Some(urn), &text[at..]));
        }
    }
    Err(format!("unknown schema in '{}'", truncate(text)))
}

fn truncate(text: &str) -> String {
    match text.char_indices().nth(80) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

// ---------------------------------------------------------------------------------------------
// Filter AST

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CompareOp {
    Eq,
    Ne,
    Co,
    Sw,
    Ew,
    Gt,
    Ge,
    Lt,
    Le,
}

impl CompareOp {
    fn parse(word: &str) -> Option<Self> {
        Some(match word.to_ascii_lowercase().as_str() {
            "eq" => Self::Eq,
            "ne" => Self::Ne,
            "co" => Self::Co,
            "sw" => Self::Sw,
            "ew" => Self::Ew,
            "gt" => Self::Gt,
            "ge" => Self::Ge,
            "lt" => Self::Lt,
            "le" => Self::Le,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone)]
pub(crate) enum Filter {
    And(Box<Filter>, Box<Filter>),
    Or(Box<Filter>, Box<Filter>),
    Not(Box<Filter>),
    Present(AttrPath),
    Compare(AttrPath, CompareOp, Value),
    /// `attr[filter]`, optionally followed by `.sub op value` / `.sub pr`.
    ValuePath {
        path: AttrPath,
        filter: Box<Filter>,
        then: Option<(&'static AttrDef, Option<(CompareOp, Value)>)>,
    },
}

/// Parses a filter for `scope`. Errors are precise (`position 12: expected an operator`)
/// and go straight into an `invalidFilter` detail.
pub(crate) fn parse(scope: Scope, text: &str) -> Result<Filter, String> {
    if text.len() > MAX_FILTER_LEN {
        return Err(format!("filter is longer than {MAX_FILTER_LEN} bytes"));
    }
    let mut parser = Parser {
        text,
        pos: 0,
        depth: 0,
    };
    let filter = parser.or_expr(scope)?;
    parser.skip_ws();
    if parser.pos < text.len() {
        return Err(parser.error("unexpected text after the filter"));
    }
    Ok(filter)
}

struct Parser<'a> {
    text: &'a str,
    pos: usize,
    depth: usize,
}

impl Parser<'_> {
    fn error(&self, what: &str) -> String {
        let near: String = self.text[self.pos..].chars().take(20).collect();
        if near.is_empty() {
            format!("at the end: {what}")
        } else {
            format!("position {}: {what} (near '{near}')", self.pos + 1)
        }
    }

    fn rest(&self) -> &str {
        &self.text[self.pos..]
    }

    fn skip_ws(&mut self) {
        let trimmed = self.rest().trim_start();
        self.pos = self.text.len() - trimmed.len();
    }

    /// The next word (path characters), without consuming it.
    fn peek_word(&self) -> &str {
        let rest = self.rest();
        let end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || "-_:.$".contains(c)))
            .unwrap_or(rest.len());
        &rest[..end]
    }

    fn take_word(&mut self) -> &str {
        let start = self.pos;
        let len = self.peek_word().len();
        self.pos += len;
        &self.text[start..start + len]
    }

    fn eat(&mut self, c: char) -> bool {
        if self.rest().starts_with(c) {
            self.pos += c.len_utf8();
            true
        } else {
            false
        }
    }

    /// Consumes `keyword` if it is the next word (case-insensitive, followed by a boundary).
    fn eat_keyword(&mut self, keyword: &str) -> bool {
        let word = self.peek_word();
        if word.eq_ignore_ascii_case(keyword) {
            self.pos += word.len();
            true
        } else {
            false
        }
    }

    fn enter(&mut self) -> Result<(), String> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.error("filter nests too deeply"));
        }
        Ok(())
    }

    fn or_expr(&mut self, scope: Scope) -> Result<Filter, String> {
        let mut left = self.and_expr(scope)?;
        loop {
            self.skip_ws();
            let save = self.pos;
            if self.eat_keyword("or") {
                self.skip_ws();
                let right = self.and_expr(scope)?;
                left = Filter::Or(Box::new(left), Box::new(right));
            } else {
                self.pos = save;
                return Ok(left);
            }
        }
    }

    fn and_expr(&mut self, scope: Scope) -> Result<Filter, String> {
        let mut left = self.unary(scope)?;
        loop {
            self.skip_ws();
            let save = self.pos;
            if self.eat_keyword("and") {
                self.skip_ws();
                let right = self.unary(scope)?;
                left = Filter::And(Box::new(left), Box::new(right));
            } else {
                self.pos = save;
                return Ok(left);
            }
        }
    }

    fn unary(&mut self, scope: Scope) -> Result<Filter, String> {
        self.skip_ws();
        if self.eat('(') {
            self.enter()?;
            let inner = self.or_expr(scope)?;
            self.skip_ws();
            if !self.eat(')') {
                return Err(self.error("expected ')'"));
            }
            self.depth -= 1;
            return Ok(inner);
        }
        let save = self.pos;
        if self.eat_keyword("not") {
            self.skip_ws();
            if self.eat('(') {
                self.enter()?;
                let inner = self.or_expr(scope)?;
                self.skip_ws();
                if !self.eat(')') {
                    return Err(self.error("expected ')'"));
                }
                self.depth -= 1;
                return Ok(Filter::Not(Box::new(inner)));
            }
            self.pos = save;
        }
        self.attr_expr(scope)
    }

    fn attr_expr(&mut self, scope: Scope) -> Result<Filter, String> {
        let start = self.pos;
        let word = self.take_word().to_owned();
        if word.is_empty() {
            return Err(self.error("expected an attribute name"));
        }
        let path = resolve(scope, &word).map_err(|e| {
            self.pos = start;
            self.error(&e)
        })?;
        if self.eat('[') {
            if path.sub.is_some() || path.attr.sub.is_empty() {
                return Err(self.error("only a complex attribute can be followed by '['"));
            }
            self.enter()?;
            let inner = self.or_expr(Scope::Within(path.attr))?;
            self.skip_ws();
            if !self.eat(']') {
                return Err(self.error("expected ']'"));
            }
            self.depth -= 1;
            let then = if self.eat('.') {
                let sub_word = self.take_word().to_owned();
                let sub = find(path.attr.sub, &sub_word).ok_or_else(|| {
                    self.error(&format!(
                        "'{sub_word}' is not a sub-attribute of '{}'",
                        path.attr.name
                    ))
                })?;
                let (op, value) = self.operator(sub)?;
                Some((sub, op.map(|op| (op, value))))
            } else {
                None
            };
            return Ok(Filter::ValuePath {
                path,
                filter: Box::new(inner),
                then,
            });
        }
        let (op, value) = self.operator(path.leaf())?;
        Ok(match op {
            None => Filter::Present(path),
            Some(op) => Filter::Compare(path, op, value),
        })
    }

    /// `pr` (→ `None`) or `op value`.
    fn operator(&mut self, def: &AttrDef) -> Result<(Option<CompareOp>, Value), String> {
        self.skip_ws();
        let word = self.take_word().to_owned();
        if word.eq_ignore_ascii_case("pr") {
            return Ok((None, Value::Null));
        }
        let Some(op) = CompareOp::parse(&word) else {
            return Err(self.error("expected an operator (eq ne co sw ew gt ge lt le pr)"));
        };
        self.skip_ws();
        let value = self.value()?;
        match (&value, op) {
            (Value::Bool(_) | Value::Null, CompareOp::Eq | CompareOp::Ne) => {}
            (Value::Bool(_) | Value::Null, _) => {
                return Err(self.error("only eq and ne compare booleans and null"));
            }
            (Value::Number(_), CompareOp::Co | CompareOp::Sw | CompareOp::Ew) => {
                return Err(self.error("co, sw and ew need a string"));
            }
            _ => {}
        }
        if def.kind == Kind::Complex {
            return Err(self.error(&format!(
                "'{}' is complex: compare one of its sub-attributes",
                def.name
            )));
        }
        Ok((Some(op), value))
    }

    fn value(&mut self) -> Result<Value, String> {
        if self.rest().starts_with('"') {
            // Find the closing quote, honouring backslash escapes; then let JSON decode it.
            let bytes = self.rest().as_bytes();
            let mut i = 1;
            let mut escaped = false;
            while i < bytes.len() {
                match bytes[i] {
                    b'\\' if !escaped => escaped = true,
                    b'"' if !escaped => break,
                    _ => escaped = false,
                }
                i += 1;
            }
            if i >= bytes.len() {
                return Err(self.error("unterminated string"));
            }
            let literal = &self.rest()[..=i];
            let decoded: String = serde_json::from_str(literal)
                .map_err(|_| self.error("invalid escape in string"))?;
            self.pos += i + 1;
            return Ok(Value::String(decoded));
        }
        let word = self.take_word().to_owned();
        match word.to_ascii_lowercase().as_str() {
            "true" => Ok(Value::Bool(true)),
            "false" => Ok(Value::Bool(false)),
            "null" => Ok(Value::Null),
            "" => {
                Err(self.error("expected a value (a quoted string, number, true, false or null)"))
            }
            _ => serde_json::from_str::<serde_json::Number>(&word)
                .map(Value::Number)
                .map_err(|_| self.error("expected a value (strings must be in double quotes)")),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Evaluation

impl Filter {
    /// Whether `object` (a rendered resource, or one element inside a value path) matches.
    pub(crate) fn matches(&self, object: &Map<String, Value>) -> bool {
        match self {
            Self::And(a, b) => a.matches(object) && b.matches(object),
            Self::Or(a, b) => a.matches(object) || b.matches(object),
            Self::Not(inner) => !inner.matches(object),
            Self::Present(path) => path.values(object).into_iter().any(present),
            Self::Compare(path, op, value) => {
                let values = path.values(object);
                let exact = path.leaf().case_exact;
                match op {
                    CompareOp::Ne => !values
                        .iter()
                        .any(|v| compare(v, CompareOp::Eq, value, exact)),
                    CompareOp::Eq if value.is_null() => !values.into_iter().any(present),
                    _ => values.iter().any(|v| compare(v, *op, value, exact)),
                }
            }
            Self::ValuePath { path, filter, then } => {
                let elements = path.values(object);
                let mut matching = elements
                    .into_iter()
                    .filter_map(Value::as_object)
                    .filter(|element| filter.matches(element));
                match then {
                    None => matching.next().is_some(),
                    Some((sub, test)) => matching.any(|element| {
                        let v = get_ci(element, sub.name);
                        match (v, test) {
                            (Some(v), None) => present(v),
                            (None, None) => false,
                            (Some(v), Some((op, value))) => compare(v, *op, value, sub.case_exact),
                            (None, Some((CompareOp::Ne, _))) => true,
                            (None, Some(_)) => false,
                        }
                    }),
                }
            }
        }
    }
}

fn present(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
        _ => true,
    }
}

fn compare(actual: &Value, op: CompareOp, expected: &Value, case_exact: bool) -> bool {
    match (actual, expected) {
        (Value::String(a), Value::String(e)) => {
            let (a, e) = if case_exact {
                (a.clone(), e.clone())
            } else {
                (a.to_lowercase(), e.to_lowercase())
            };
            match op {
                CompareOp::Eq => a == e,
                CompareOp::Ne => a != e,
                CompareOp::Co => a.contains(&e),
                CompareOp::Sw => a.starts_with(&e),
                CompareOp::Ew => a.ends_with(&e),
                CompareOp::Gt => a > e,
                CompareOp::Ge => a >= e,
                CompareOp::Lt => a < e,
                CompareOp::Le => a <= e,
            }
        }
        (Value::Bool(a), Value::Bool(e)) => match op {
            CompareOp::Eq => a == e,
            CompareOp::Ne => a != e,
            _ => false,
        },
        (Value::Number(a), Value::Number(e)) => {
            let (Some(a), Some(e)) = (a.as_f64(), e.as_f64()) else {
                return false;
            };
            match op {
                CompareOp::Eq => a == e,
                CompareOp::Ne => a != e,
                CompareOp::Gt => a > e,
                CompareOp::Ge => a >= e,
                CompareOp::Lt => a < e,
                CompareOp::Le => a <= e,
                _ => false,
            }
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn user() -> Map<String, Value> {
        json!({
            "id": "abc", "userName": "Ada@Example.com", "externalId": "00u1",
            "active": true,
            "emails": [{ "value": "ada@example.com", "type": "work", "primary": true },
                       { "value": "ada@home.test", "type": "home" }],
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
                "department": "Engineering", "manager": { "value": "m1" }
            }
        })
        .as_object()
        .cloned()
        .unwrap_or_default()
    }

    fn check(text: &str) -> Result<bool, String> {
        parse(Scope::Resource(ResourceType::User), text).map(|f| f.matches(&user()))
    }

    #[test]
    fn operators_and_logic() {
        for (filter, expected) in [
            (r#"userName eq "ada@example.com""#, true),
            (r#"USERNAME Eq "ADA@EXAMPLE.COM""#, true),
            (r#"userName co "example""#, true),
            (r#"userName sw "ada@""#, true),
            (r#"userName ew ".org""#, false),
            (r#"externalId eq "00U1""#, false),
            (r#"externalId eq "00u1""#, true),
            (r#"id eq "abc" and userName pr"#, true),
            (r#"id eq "x" or emails.value eq "ada@home.test""#, true),
            (r#"not (active eq true)"#, false),
            (r#"title pr"#, false),
            (r#"(id eq "x" or id eq "abc") and active eq true"#, true),
            (r#"emails[type eq "work" and value co "example"]"#, true),
            (r#"emails[type eq "work"].value eq "ada@example.com""#, true),
            (
                r#"emails[type eq "home"].value eq "ada@example.com""#,
                false,
            ),
            (
                r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq "engineering""#,
                true,
            ),
            (
                r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq "m1""#,
                true,
            ),
            (
                r#"urn:ietf:params:scim:schemas:core:2.0:User:userName sw "Ada""#,
                true,
            ),
            (r#"meta.version pr"#, false),
        ] {
            assert_eq!(check(filter), Ok(expected), "{filter}");
        }
    }

    #[test]
    fn precise_errors() {
        for (filter, fragment) in [
            (r#"userName eq"#, "expected a value"),
            (r#"userName eq ada"#, "double quotes"),
            (r#"userName zz "a""#, "expected an operator"),
            (r#"nope eq "a""#, "unknown attribute 'nope'"),
            (r#"name.nope eq "a""#, "unknown attribute"),
            (r#"userName eq "a" and"#, "expected an attribute name"),
            (r#"(userName eq "a""#, "expected ')'"),
            (r#"userName eq "a"#, "unterminated string"),
            (r#"emails[type eq "work""#, "expected ']'"),
            (r#"userName eq "a" extra"#, "unexpected text"),
            (r#"active gt true"#, "booleans"),
            (r#"name eq "x""#, "complex"),
            (r#"urn:x:y:z eq "a""#, "unknown schema"),
            ("", "expected an attribute name"),
        ] {
            let err = check(filter).expect_err(filter);
            assert!(err.contains(fragment), "{filter}: {err}");
        }
        let deep = format!("{}id pr{}", "(".repeat(100), ")".repeat(100));
        assert!(check(&deep).is_err());
    }
}
