//! PATCH (RFC 7644 §3.5.2) in both dialects IdPs speak:
//! - RFC / Okta / Entra with `aadOptscim062020`: lower-case ops, `path` with value filters
//!   (`members[value eq "id"]`), path-less `replace` whose value object may use dotted
//!   (`name.givenName`) and URN-qualified keys;
//! - Entra's legacy default: capitalised ops (`Replace`), booleans as `"False"` strings,
//!   `Remove` of `members` with a value list, the manager as a bare id string.
//!
//! Operations apply in order to a copy of the stored resource; the result is validated
//! again as a whole (so the set is atomic: any error leaves the resource untouched).

use serde_json::{Map, Value};

use super::error::{ScimError, ScimType};
use super::filter::{self, AttrPath, CompareOp, Filter, Scope, get_ci, key_ci};
use super::schema::{AttrDef, Kind, Mutability, ResourceType, find};

/// Most operations in one PATCH.
const MAX_OPERATIONS: usize = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Add,
    Remove,
    Replace,
}

/// A parsed PATCH target.
#[derive(Debug, Clone)]
enum Target {
    Attr(AttrPath),
    Filtered {
        path: AttrPath,
        filter: Filter,
        sub: Option<&'static AttrDef>,
    },
}

/// Applies a PatchOp request body to `resource` (the stored form) and returns the result.
pub(crate) fn apply(
    rt: ResourceType,
    resource: &Map<String, Value>,
    body: &Value,
) -> Result<Map<String, Value>, ScimError> {
    let operations = get_ci(
        body.as_object()
            .ok_or_else(|| ScimError::invalid_syntax("the body must be a PatchOp object"))?,
        "Operations",
    )
    .and_then(Value::as_array)
    .ok_or_else(|| ScimError::invalid_syntax("Operations must be an array"))?;
    if operations.is_empty() {
        return Err(ScimError::invalid_syntax("Operations must not be empty"));
    }
    if operations.len() > MAX_OPERATIONS {
        return Err(ScimError::invalid_syntax(format!(
            "at most {MAX_OPERATIONS} operations per PATCH"
        )));
    }
    let mut out = resource.clone();
    for (i, operation) in operations.iter().enumerate() {
        let at = |e: ScimError| ScimError {
            detail: format!("Operations[{i}]: {}", e.detail),
            ..e
        };
        let operation = operation.as_object().ok_or_else(|| {
            at(ScimError::invalid_syntax(
                "each operation must be an object",
            ))
        })?;
        let op = match get_ci(operation, "op").and_then(Value::as_str) {
            Some(o) if o.eq_ignore_ascii_case("add") => Op::Add,
            Some(o) if o.eq_ignore_ascii_case("remove") => Op::Remove,
            Some(o) if o.eq_ignore_ascii_case("replace") => Op::Replace,
            _ => {
                return Err(at(ScimError::invalid_syntax(
                    "op must be add, remove or replace",
                )));
            }
        };
        let path = get_ci(operation, "path").and_then(|p| match p {
            Value::String(s) if !s.trim().is_empty() => Some(s.trim()),
            _ => None,
        });
        let value = get_ci(operation, "value");
        apply_one(rt, &mut out, op, path, value).map_err(at)?;
    }
    Ok(out)
}

fn apply_one(
    rt: ResourceType,
    resource: &mut Map<String, Value>,
    op: Op,
    path: Option<&str>,
    value: Option<&Value>,
) -> Result<(), ScimError> {
    let Some(path) = path else {
        return match op {
            Op::Remove => Err(ScimError::no_target("remove needs a path")),
            Op::Add | Op::Replace => {
                let Some(Value::Object(items)) = value else {
                    return Err(ScimError::invalid_value(
                        "an operation without path needs an object value",
                    ));
                };
                for (key, v) in items {
                    if ["schemas", "id", "meta"]
                        .iter()
                        .any(|k| k.eq_ignore_ascii_case(key))
                    {
                        continue;
                    }
                    // `"urn:...:enterprise:2.0:User": { "department": ... }`
                    if let Some((urn, _)) = rt
                        .extensions()
                        .iter()
                        .find(|(u, _)| u.eq_ignore_ascii_case(key))
                    {
                        let Value::Object(inner) = v else {
                            return Err(ScimError::invalid_value(format!(
                                "{urn} must be an object"
                            )));
                        };
                        for (k, v) in inner {
                            if k.eq_ignore_ascii_case("schemas") {
                                continue;
                            }
                            let target = parse_target(rt, &format!("{urn}:{k}"))?;
                            set(resource, op, &target, v)?;
                        }
                        continue;
                    }
                    let target = parse_target(rt, key)?;
                    set(resource, op, &target, v)?;
                }
                Ok(())
            }
        };
    };
    // The whole extension (`"path": "urn:...:enterprise:2.0:User"`).
    if let Some((urn, _)) = rt
        .extensions()
        .iter()
        .find(|(u, _)| u.eq_ignore_ascii_case(path))
    {
        return match (op, value) {
            (Op::Remove, _) => {
                if let Some(key) = key_ci(resource, urn) {
                    resource.remove(&key);
                }
                Ok(())
            }
            (_, Some(Value::Object(inner))) => {
                if op == Op::Replace
                    && let Some(key) = key_ci(resource, urn)
                {
                    resource.remove(&key);
                }
                for (k, v) in inner {
                    if k.eq_ignore_ascii_case("schemas") {
                        continue;
                    }
                    let target = parse_target(rt, &format!("{urn}:{k}"))?;
                    set(resource, Op::Replace, &target, v)?;
                }
                Ok(())
            }
            _ => Err(ScimError::invalid_value(format!(
                "{urn} needs an object value"
            ))),
        };
    }
    let target = parse_target(rt, path)?;
    match op {
        Op::Remove => remove(resource, &target, value),
        Op::Add | Op::Replace => {
            let Some(value) = value else {
                // Some Entra suites send a value-less Replace to clear (e.g. the manager).
                return if op == Op::Replace {
                    remove(resource, &target, None)
                } else {
                    Err(ScimError::invalid_value("add needs a value"))
                };
            };
            set(resource, op, &target, value)
        }
    }
}

/// Parses `attr`, `attr.sub`, `urn:...:attr`, `attr[filter]`, `attr[filter].sub`.
fn parse_target(rt: ResourceType, path: &str) -> Result<Target, ScimError> {
    let target = if let Some(open) = path.find('[') {
        let close = path
            .rfind(']')
            .filter(|c| *c > open)
            .ok_or_else(|| ScimError::invalid_path(format!("'{path}': missing ']'")))?;
        let attr = filter::resolve(Scope::Resource(rt), &path[..open])
            .map_err(|e| ScimError::invalid_path(format!("'{path}': {e}")))?;
        if attr.sub.is_some() || !attr.attr.multi {
            return Err(ScimError::invalid_path(format!(
                "'{path}': a value filter needs a multi-valued attribute"
            )));
        }
        let inner = filter::parse(Scope::Within(attr.attr), &path[open + 1..close])
            .map_err(|e| ScimError::invalid_path(format!("'{path}': {e}")))?;
        let rest = &path[close + 1..];
        let sub = match rest.strip_prefix('.') {
            None if rest.is_empty() => None,
            None => {
                return Err(ScimError::invalid_path(format!(
                    "'{path}': unexpected text after ']'"
                )));
            }
            Some(name) => Some(find(attr.attr.sub, name).ok_or_else(|| {
                ScimError::invalid_path(format!(
                    "'{path}': '{name}' is not a sub-attribute of '{}'",
                    attr.attr.name
                ))
            })?),
        };
        Target::Filtered {
            path: attr,
            filter: inner,
            sub,
        }
    } else {
        Target::Attr(
            filter::resolve(Scope::Resource(rt), path)
                .map_err(|e| ScimError::invalid_path(format!("'{path}': {e}")))?,
        )
    };
    let (attr, sub) = match &target {
        Target::Attr(p) => (p.attr, p.sub),
        Target::Filtered { path, sub, .. } => (path.attr, *sub),
    };
    let read_only = |d: &AttrDef| d.mutability == Mutability::ReadOnly;
    if read_only(attr) || sub.is_some_and(read_only) {
        return Err(ScimError::bad_request(
            ScimType::Mutability,
            format!("'{path}' is read-only"),
        ));
    }
    Ok(target)
}

/// The object holding a path's attribute (the resource, or its extension object),
/// created when `create`.
fn container<'a>(
    resource: &'a mut Map<String, Value>,
    path: &AttrPath,
    create: bool,
) -> Option<&'a mut Map<String, Value>> {
    match path.schema {
        None => Some(resource),
        Some(urn) => {
            let key = key_ci(resource, urn).unwrap_or_else(|| urn.to_owned());
            if !resource.contains_key(&key) {
                if !create {
                    return None;
                }
                resource.insert(key.clone(), Value::Object(Map::new()));
            }
            match resource.get_mut(&key) {
                Some(Value::Object(ext)) => Some(ext),
                _ => None,
            }
        }
    }
}

fn entry<'a>(object: &'a mut Map<String, Value>, name: &str) -> Option<&'a mut Value> {
    let key = key_ci(object, name)?;
    object.get_mut(&key)
}

fn put(object: &mut Map<String, Value>, name: &str, value: Value) {
    if let Some(old) = key_ci(object, name) {
        object.remove(&old);
    }
    object.insert(name.to_owned(), value);
}

/// The value as a list of items (multi-valued targets accept one item or a list).
fn as_items(value: &Value) -> Vec<Value> {
    match value {
        Value::Array(items) => items.clone(),
        other => vec![other.clone()],
    }
}

/// Whether two multi-valued items are the same (by `value` when both have one).
fn same_item(a: &Value, b: &Value) -> bool {
    match (
        a.as_object().and_then(|o| get_ci(o, "value")),
        b.as_object().and_then(|o| get_ci(o, "value")),
    ) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

/// Merges sub-attributes of `value` into the complex object `current` (RFC 7644
/// §3.5.2.1/3: unspecified sub-attributes are left unchanged).
fn merge_complex(def: &AttrDef, current: Option<&Value>, value: &Value) -> Value {
    let mut merged = current
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    match value {
        Value::Object(o) => {
            for (k, v) in o {
                let name = find(def.sub, k).map_or(k.as_str(), |s| s.name);
                put(&mut merged, name, v.clone());
            }
            Value::Object(merged)
        }
        // A bare string for a complex attribute (the Entra manager): validation makes it
        // `{ "value": ... }`.
        other => other.clone(),
    }
}

fn set(
    resource: &mut Map<String, Value>,
    op: Op,
    target: &Target,
    value: &Value,
) -> Result<(), ScimError> {
    match target {
        Target::Attr(path) => {
            let Some(obj) = container(resource, path, true) else {
                return Err(ScimError::invalid_path("extension is not an object"));
            };
            let def = path.attr;
            match path.sub {
                None if def.multi => {
                    let mut items = match (op, entry(obj, def.name)) {
                        (Op::Add, Some(Value::Array(existing))) => existing.clone(),
                        _ => Vec::new(),
                    };
                    for item in as_items(value) {
                        if let Some(pos) = items.iter().position(|i| same_item(i, &item)) {
                            items[pos] = item;
                        } else {
                            items.push(item);
                        }
                    }
                    put(obj, def.name, Value::Array(items));
                }
                None if def.kind == Kind::Complex => {
                    let merged = merge_complex(def, obj.get(def.name), value);
                    put(obj, def.name, merged);
                }
                None => put(obj, def.name, value.clone()),
                Some(sub) if def.multi => {
                    // `emails.value`: every element; none yet → one new element.
                    match entry(obj, def.name) {
                        Some(Value::Array(items)) if !items.is_empty() => {
                            for item in items.iter_mut() {
                                if let Value::Object(o) = item {
                                    put(o, sub.name, value.clone());
                                }
                            }
                        }
                        _ => {
                            let mut o = Map::new();
                            o.insert(sub.name.to_owned(), value.clone());
                            put(obj, def.name, Value::Array(vec![Value::Object(o)]));
                        }
                    }
                }
                Some(sub) => {
                    let mut current = match entry(obj, def.name) {
                        Some(Value::Object(o)) => o.clone(),
                        _ => Map::new(),
                    };
                    put(&mut current, sub.name, value.clone());
                    put(obj, def.name, Value::Object(current));
                }
            }
            Ok(())
        }
        Target::Filtered { path, filter, sub } => {
            let Some(obj) = container(resource, path, true) else {
                return Err(ScimError::invalid_path("extension is not an object"));
            };
            let def = path.attr;
            let mut items = match entry(obj, def.name) {
                Some(Value::Array(items)) => items.clone(),
                _ => Vec::new(),
            };
            let mut matched = false;
            for item in items.iter_mut() {
                let Value::Object(o) = item else { continue };
                if !filter.matches(o) {
                    continue;
                }
                matched = true;
                match sub {
                    Some(sub) => put(o, sub.name, value.clone()),
                    None => {
                        if let Value::Object(merged) = merge_complex(def, Some(item), value) {
                            *item = Value::Object(merged);
                        }
                    }
                }
            }
            if !matched {
                // `emails[type eq "work"].value` on a user with no work email yet (Entra):
                // create the element the filter describes.
                let Some(mut seed) = seed_from_filter(filter) else {
                    return Err(ScimError::no_target(format!(
                        "no '{}' element matches the filter",
                        def.name
                    )));
                };
                match (sub, value) {
                    (Some(sub), v) => {
                        seed.insert(sub.name.to_owned(), v.clone());
                    }
                    (None, Value::Object(o)) => {
                        for (k, v) in o {
                            seed.insert(k.clone(), v.clone());
                        }
                    }
                    (None, _) => {
                        return Err(ScimError::invalid_value(format!(
                            "a '{}' element must be an object",
                            def.name
                        )));
                    }
                }
                items.push(Value::Object(seed));
            }
            put(obj, def.name, Value::Array(items));
            Ok(())
        }
    }
}

/// `type eq "work"` (optionally `and`-ed) → `{ "type": "work" }`.
fn seed_from_filter(filter: &Filter) -> Option<Map<String, Value>> {
    match filter {
        Filter::Compare(path, CompareOp::Eq, value) => {
            let mut o = Map::new();
            o.insert(path.attr.name.to_owned(), value.clone());
            Some(o)
        }
        Filter::And(a, b) => {
            let mut o = seed_from_filter(a)?;
            o.extend(seed_from_filter(b)?);
            Some(o)
        }
        _ => None,
    }
}

fn remove(
    resource: &mut Map<String, Value>,
    target: &Target,
    value: Option<&Value>,
) -> Result<(), ScimError> {
    match target {
        Target::Attr(path) => {
            let Some(obj) = container(resource, path, false) else {
                return Ok(());
            };
            let def = path.attr;
            match (path.sub, value) {
                // Entra legacy: `{"op":"Remove","path":"members","value":[{"value":"id"}]}`.
                (None, Some(value)) if def.multi && !value.is_null() => {
                    let gone = as_items(value);
                    if let Some(Value::Array(items)) = entry(obj, def.name) {
                        items.retain(|i| !gone.iter().any(|g| same_item(i, g)));
                    }
                }
                (None, _) => {
                    if let Some(key) = key_ci(obj, def.name) {
                        obj.remove(&key);
                    }
                }
                (Some(sub), _) => match entry(obj, def.name) {
                    Some(Value::Object(o)) => {
                        if let Some(key) = key_ci(o, sub.name) {
                            o.remove(&key);
                        }
                    }
                    Some(Value::Array(items)) => {
                        for item in items.iter_mut() {
                            if let Value::Object(o) = item
                                && let Some(key) = key_ci(o, sub.name)
                            {
                                o.remove(&key);
                            }
                        }
                    }
                    _ => {}
                },
            }
            Ok(())
        }
        Target::Filtered { path, filter, sub } => {
            let Some(obj) = container(resource, path, false) else {
                return Ok(());
            };
            if let Some(Value::Array(items)) = entry(obj, path.attr.name) {
                match sub {
                    None => items.retain(|i| !i.as_object().is_some_and(|o| filter.matches(o))),
                    Some(sub) => {
                        for item in items.iter_mut() {
                            if let Value::Object(o) = item
                                && filter.matches(o)
                                && let Some(key) = key_ci(o, sub.name)
                            {
                                o.remove(&key);
                            }
                        }
                    }
                }
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ENT: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

    fn user() -> Map<String, Value> {
        json!({
            "userName": "ada@acme.test", "active": true,
            "name": { "givenName": "Ada", "familyName": "Lovelace" },
            "emails": [{ "value": "ada@acme.test", "type": "work", "primary": true }],
        })
        .as_object()
        .cloned()
        .unwrap_or_default()
    }

    fn patch(rt: ResourceType, base: Map<String, Value>, ops: Value) -> Result<Value, ScimError> {
        let body = json!({ "schemas": [super::super::schema::PATCH_SCHEMA], "Operations": ops });
        apply(rt, &base, &body)
            .and_then(|m| super::super::resources::normalize(rt, &Value::Object(m)))
            .map(Value::Object)
    }

    #[test]
    fn okta_pathless_deactivate_and_entra_legacy_string_bool() {
        let out = patch(
            ResourceType::User,
            user(),
            json!([{ "op": "replace", "value": { "active": false } }]),
        );
        assert_eq!(out.map(|v| v["active"].clone()), Ok(json!(false)));
        let out = patch(
            ResourceType::User,
            user(),
            json!([{ "op": "Replace", "path": "active", "value": "False" }]),
        );
        assert_eq!(out.map(|v| v["active"].clone()), Ok(json!(false)));
    }

    #[test]
    fn entra_dotted_and_urn_keys_and_bare_manager() {
        let out = patch(
            ResourceType::User,
            user(),
            json!([
                { "op": "replace", "value": {
                    "name.givenName": "Augusta",
                    (format!("{ENT}:department")): "Research",
                    (format!("{ENT}:employeeNumber")): "E42",
                }},
                { "op": "Add", "path": format!("{ENT}:manager"), "value": "mgr-1" },
                { "op": "Replace", "path": "emails[type eq \"work\"].value", "value": "a@acme.test" },
                { "op": "Add", "path": "phoneNumbers[type eq \"mobile\"].value", "value": "+1 555" },
            ]),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            out["name"],
            json!({ "givenName": "Augusta", "familyName": "Lovelace" })
        );
        assert_eq!(out[ENT]["department"], "Research");
        assert_eq!(out[ENT]["employeeNumber"], "E42");
        assert_eq!(out[ENT]["manager"], json!({ "value": "mgr-1" }));
        assert_eq!(out["emails"][0]["value"], "a@acme.test");
        assert_eq!(out["emails"][0]["primary"], true);
        assert_eq!(
            out["phoneNumbers"],
            json!([{ "type": "mobile", "value": "+1 555" }])
        );

        let cleared = patch(
            ResourceType::User,
            Value::Object(out.as_object().cloned().unwrap_or_default())
                .as_object()
                .cloned()
                .unwrap_or_default(),
            json!([{ "op": "Remove", "path": format!("{ENT}:manager") }]),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(cleared[ENT].get("manager").is_none());
    }

    #[test]
    fn group_members_both_dialects() {
        let group =
            json!({ "displayName": "eng", "members": [{ "value": "u1" }, { "value": "u2" }] })
                .as_object()
                .cloned()
                .unwrap_or_default();
        let out = patch(
            ResourceType::Group,
            group.clone(),
            json!([
                { "op": "add", "path": "members", "value": [{ "value": "u3", "$ref": null }] },
                { "op": "remove", "path": "members[value eq \"u1\"]" },
                { "op": "Remove", "path": "members", "value": [{ "value": "u2" }] },
            ]),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(out["members"], json!([{ "value": "u3" }]));
        let out = patch(
            ResourceType::Group,
            group,
            json!([{ "op": "replace", "path": "members", "value": [{ "value": "u9" }] },
                   { "op": "replace", "value": { "id": "g1", "displayName": "Engineering" } }]),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(out["members"], json!([{ "value": "u9" }]));
        assert_eq!(out["displayName"], "Engineering");
    }

    #[test]
    fn bad_paths_are_scim_errors() {
        for (ops, scim_type) in [
            (
                json!([{ "op": "replace", "path": "nope", "value": 1 }]),
                "invalidPath",
            ),
            (
                json!([{ "op": "replace", "path": "emails[type eq]", "value": 1 }]),
                "invalidPath",
            ),
            (
                json!([{ "op": "replace", "path": "emails[type eq \"work\"", "value": 1 }]),
                "invalidPath",
            ),
            (json!([{ "op": "remove" }]), "noTarget"),
            (json!([{ "op": "move", "path": "title" }]), "invalidSyntax"),
            (
                json!([{ "op": "replace", "path": "groups", "value": [] }]),
                "mutability",
            ),
            (
                json!([{ "op": "replace", "path": "active", "value": "maybe" }]),
                "invalidValue",
            ),
            (
                json!([{ "op": "replace", "path": "emails[type eq \"x\" or type eq \"y\"].value", "value": "a" }]),
                "noTarget",
            ),
            (json!([]), "invalidSyntax"),
        ] {
            let err = patch(ResourceType::User, user(), ops.clone()).expect_err("fails");
            assert_eq!(
                err.scim_type.map(ScimType::as_str),
                Some(scim_type),
                "{ops}: {err}"
            );
        }
    }
}
