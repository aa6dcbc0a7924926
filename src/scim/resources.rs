//! User and Group resources: validating what a client sends into the stored form,
//! rendering the stored form back (with `id`, `schemas`, `meta`, computed `groups`), and
//! `attributes` / `excludedAttributes` projection.
//!
//! The stored form keeps every declared attribute exactly as sent (values are never
//! normalised, as Entra requires), under the catalog's canonical spelling; `password` is
//! never stored; read-only attributes a client echoes back (`id`, `meta`, `groups`) are
//! ignored. An attribute the schemas do not declare is refused with `invalidValue`.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value, json};

use super::error::ScimError;
use super::filter::get_ci;
use super::schema::{AttrDef, ENTERPRISE_SCHEMA, Kind, Mutability, ResourceType, find};
use crate::journal::ScimRecord;

/// Largest string value accepted, in bytes.
const MAX_VALUE_LEN: usize = 16 * 1024;
/// Most members one Group may have.
pub(crate) const MAX_MEMBERS: usize = 10_000;

/// Validates a client-sent resource (POST / PUT body, or the result of a PATCH) into the
/// stored form.
pub(crate) fn normalize(rt: ResourceType, input: &Value) -> Result<Map<String, Value>, ScimError> {
    let Value::Object(input) = input else {
        return Err(ScimError::invalid_syntax("the body must be a JSON object"));
    };
    let mut out = Map::new();
    for (key, value) in input {
        if ["schemas", "id", "meta"]
            .iter()
            .any(|k| k.eq_ignore_ascii_case(key))
        {
            continue;
        }
        if key.eq_ignore_ascii_case("externalId") {
            match value {
                Value::Null => {}
                Value::String(s) => {
                    check_len("externalId", s)?;
                    out.insert("externalId".into(), value.clone());
                }
                _ => return Err(ScimError::invalid_value("externalId must be a string")),
            }
            continue;
        }
        if let Some((urn, attrs)) = rt
            .extensions()
            .iter()
            .find(|(urn, _)| urn.eq_ignore_ascii_case(key))
        {
            let Value::Object(ext) = value else {
                if value.is_null() {
                    continue;
                }
                return Err(ScimError::invalid_value(format!("{urn} must be an object")));
            };
            let mut clean = Map::new();
            for (k, v) in ext {
                if k.eq_ignore_ascii_case("schemas") {
                    continue;
                }
                let def = find(attrs, k).ok_or_else(|| {
                    ScimError::invalid_value(format!("unknown attribute '{urn}:{k}'"))
                })?;
                if let Some(v) = normalize_attr(def, v, &format!("{urn}:{}", def.name))? {
                    clean.insert(def.name.into(), v);
                }
            }
            if !clean.is_empty() {
                out.insert((*urn).into(), Value::Object(clean));
            }
            continue;
        }
        let def = find(rt.core_attrs(), key)
            .ok_or_else(|| ScimError::invalid_value(format!("unknown attribute '{key}'")))?;
        if matches!(def.mutability, Mutability::ReadOnly | Mutability::WriteOnly) {
            // `groups` is computed from Group membership; `password` is never stored.
            continue;
        }
        if let Some(v) = normalize_attr(def, value, def.name)? {
            out.insert(def.name.into(), v);
        }
    }
    let required = match rt {
        ResourceType::User => "userName",
        ResourceType::Group => "displayName",
    };
    match out.get(required) {
        Some(Value::String(s)) if !s.trim().is_empty() => {}
        _ => {
            return Err(ScimError::invalid_value(format!(
                "{required} is required and must be a non-empty string"
            )));
        }
    }
    if let Some(Value::Array(members)) = out.get("members")
        && members.len() > MAX_MEMBERS
    {
        return Err(ScimError::invalid_value(format!(
            "a group may have at most {MAX_MEMBERS} members"
        )));
    }
    Ok(out)
}

fn check_len(name: &str, s: &str) -> Result<(), ScimError> {
    if s.len() > MAX_VALUE_LEN {
        return Err(ScimError::invalid_value(format!(
            "{name} is longer than {MAX_VALUE_LEN} bytes"
        )));
    }
    Ok(())
}

/// One attribute value; `Ok(None)` drops it (null clears).
fn normalize_attr(def: &AttrDef, value: &Value, name: &str) -> Result<Option<Value>, ScimError> {
    if value.is_null() {
        return Ok(None);
    }
    if def.multi {
        let items = match value {
            Value::Array(items) => items.clone(),
            // A single object where a list is expected: accepted as a list of one.
            Value::Object(_) => vec![value.clone()],
            _ => {
                return Err(ScimError::invalid_value(format!("{name} must be an array")));
            }
        };
        let mut clean = Vec::with_capacity(items.len());
        for item in &items {
            if let Some(v) = normalize_single(def, item, name)? {
                clean.push(v);
            }
        }
        return Ok(Some(Value::Array(clean)));
    }
    normalize_single(def, value, name)
}

fn normalize_single(def: &AttrDef, value: &Value, name: &str) -> Result<Option<Value>, ScimError> {
    match def.kind {
        Kind::Complex => {
            let object = match value {
                Value::Object(o) => o.clone(),
                // Entra sets the manager as a bare id string.
                Value::String(s) if find(def.sub, "value").is_some() => {
                    let mut o = Map::new();
                    o.insert("value".into(), Value::String(s.clone()));
                    o
                }
                Value::Null => return Ok(None),
                _ => {
                    return Err(ScimError::invalid_value(format!(
                        "{name} must be an object"
                    )));
                }
            };
            let mut clean = Map::new();
            for (k, v) in &object {
                if v.is_null() {
                    continue;
                }
                let sub = find(def.sub, k).ok_or_else(|| {
                    ScimError::invalid_value(format!("unknown attribute '{name}.{k}'"))
                })?;
                if let Some(v) = normalize_single(sub, v, &format!("{name}.{}", sub.name))? {
                    clean.insert(sub.name.into(), v);
                }
            }
            Ok((!clean.is_empty()).then_some(Value::Object(clean)))
        }
        Kind::Boolean => match value {
            Value::Bool(_) => Ok(Some(value.clone())),
            // Entra's legacy dialect sends "True" / "False".
            Value::String(s) if s.eq_ignore_ascii_case("true") => Ok(Some(Value::Bool(true))),
            Value::String(s) if s.eq_ignore_ascii_case("false") => Ok(Some(Value::Bool(false))),
            _ => Err(ScimError::invalid_value(format!(
                "{name} must be a boolean"
            ))),
        },
        Kind::String | Kind::Reference | Kind::Binary | Kind::DateTime => match value {
            Value::String(s) => {
                check_len(name, s)?;
                Ok(Some(value.clone()))
            }
            _ => Err(ScimError::invalid_value(format!("{name} must be a string"))),
        },
    }
}

/// Base URL of a source's SCIM endpoint, e.g. `https://keycard.example/scim/v2/okta`.
pub(crate) fn location(base: &str, rt: ResourceType, id: &str) -> String {
    format!("{base}/{}/{id}", rt.endpoint())
}

pub(crate) fn etag(version: i64) -> String {
    format!("W/\"{version}\"")
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The resource as served. `groups` (User only) are `(id, displayName)` pairs.
pub(crate) fn render(base: &str, record: &ScimRecord, groups: &[(String, String)]) -> Value {
    let rt = if record.resource_type == "Group" {
        ResourceType::Group
    } else {
        ResourceType::User
    };
    let mut out = Map::new();
    let mut schemas = vec![json!(rt.core_schema())];
    let stored = record.resource.as_object().cloned().unwrap_or_default();
    for (urn, _) in rt.extensions() {
        if stored.contains_key(*urn) {
            schemas.push(json!(urn));
        }
    }
    out.insert("schemas".into(), Value::Array(schemas));
    out.insert("id".into(), json!(record.id));
    for (k, v) in stored {
        out.insert(k, v);
    }
    if rt == ResourceType::User && !groups.is_empty() {
        out.insert(
            "groups".into(),
            Value::Array(
                groups
                    .iter()
                    .map(|(id, name)| {
                        json!({
                            "value": id,
                            "display": name,
                            "type": "direct",
                            "$ref": location(base, ResourceType::Group, id),
                        })
                    })
                    .collect(),
            ),
        );
    }
    out.insert(
        "meta".into(),
        json!({
            "resourceType": rt.as_str(),
            "created": rfc3339(record.created_at),
            "lastModified": rfc3339(record.updated_at),
            "location": location(base, rt, &record.id),
            "version": etag(record.version),
        }),
    );
    Value::Object(out)
}

/// `attributes` / `excludedAttributes` (RFC 7644 §3.4.2.5), on top-level attributes,
/// extension attributes (`urn:...:department`) and core sub-attributes (`name.givenName`).
/// `id` and `schemas` are always returned.
#[derive(Debug, Clone, Default)]
pub(crate) struct Projection {
    include: Vec<String>,
    exclude: Vec<String>,
}

impl Projection {
    pub(crate) fn parse(
        rt: ResourceType,
        attributes: Option<&str>,
        excluded: Option<&str>,
    ) -> Result<Self, ScimError> {
        let split = |text: Option<&str>| -> Result<Vec<String>, ScimError> {
            text.unwrap_or_default()
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| {
                    super::filter::resolve(super::filter::Scope::Resource(rt), s)
                        .map(|p| {
                            let mut name = match p.schema {
                                Some(urn) => format!("{urn}:{}", p.attr.name),
                                None => p.attr.name.to_owned(),
                            };
                            if let Some(sub) = p.sub {
                                name.push('.');
                                name.push_str(sub.name);
                            }
                            name
                        })
                        .map_err(ScimError::invalid_value)
                })
                .collect()
        };
        Ok(Self {
            include: split(attributes)?,
            exclude: split(excluded)?,
        })
    }

    pub(crate) fn apply(&self, mut resource: Value) -> Value {
        let Some(obj) = resource.as_object_mut() else {
            return resource;
        };
        if !self.include.is_empty() {
            let keep = |key: &str| {
                ["id", "schemas"].contains(&key)
                    || self.include.iter().any(|i| {
                        i == key
                            || i.starts_with(&format!("{key}."))
                            || i.starts_with(&format!("{key}:"))
                    })
            };
            obj.retain(|k, _| keep(k));
            narrow(obj, &self.include);
        }
        for exc in &self.exclude {
            if ["id", "schemas"].contains(&exc.as_str()) {
                continue;
            }
            remove_path(obj, exc);
        }
        resource
    }
}

/// For included `a.b` / `urn:x:a`, drops the siblings of `b` / `a` that were not named.
fn narrow(obj: &mut Map<String, Value>, include: &[String]) {
    let keys: Vec<String> = obj.keys().cloned().collect();
    for key in keys {
        if include.iter().any(|i| i == &key) {
            continue;
        }
        let sep = if key.starts_with("urn:") { ':' } else { '.' };
        let wanted: Vec<&str> = include
            .iter()
            .filter_map(|i| i.strip_prefix(key.as_str()))
            .filter_map(|rest| rest.strip_prefix(sep))
            .collect();
        if wanted.is_empty() {
            continue;
        }
        let keep = |o: &mut Map<String, Value>| o.retain(|k, _| wanted.contains(&k.as_str()));
        match obj.get_mut(&key) {
            Some(Value::Object(o)) => keep(o),
            Some(Value::Array(items)) => {
                for item in items.iter_mut() {
                    if let Value::Object(o) = item {
                        keep(o);
                    }
                }
            }
            _ => {}
        }
    }
}

fn remove_path(obj: &mut Map<String, Value>, path: &str) {
    if let Some((urn, attr)) = path
        .starts_with("urn:")
        .then(|| path.rsplit_once(':'))
        .flatten()
    {
        if let Some(Value::Object(ext)) = obj.get_mut(urn) {
            ext.remove(attr);
        }
        return;
    }
    match path.split_once('.') {
        None => {
            obj.remove(path);
        }
        Some((attr, sub)) => match obj.get_mut(attr) {
            Some(Value::Object(o)) => {
                o.remove(sub);
            }
            Some(Value::Array(items)) => {
                for item in items.iter_mut() {
                    if let Value::Object(o) = item {
                        o.remove(sub);
                    }
                }
            }
            _ => {}
        },
    }
}

// ---------------------------------------------------------------------------------------------
// Reading stored resources

pub(crate) fn text<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    get_ci(obj, key).and_then(Value::as_str)
}

pub(crate) fn enterprise(obj: &Map<String, Value>) -> Option<&Map<String, Value>> {
    get_ci(obj, ENTERPRISE_SCHEMA).and_then(Value::as_object)
}

/// `active` as stored (absent means active, RFC 7643 leaves it to the provider).
pub(crate) fn is_active(obj: &Map<String, Value>) -> bool {
    get_ci(obj, "active")
        .and_then(Value::as_bool)
        .unwrap_or(true)
}

/// The member ids of a stored Group.
pub(crate) fn member_ids(obj: &Map<String, Value>) -> Vec<String> {
    let mut ids: Vec<String> = get_ci(obj, "members")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|m| m.as_object().and_then(|o| text(o, "value")))
        .map(str::to_owned)
        .collect();
    ids.sort();
    ids.dedup();
    ids
}
