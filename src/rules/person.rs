//! What rules can see about a person, and how it becomes the CEL variable `person`.

use std::collections::HashMap;
use std::sync::Arc;

use cel::Value;
use cel::objects::Map;
use serde::{Deserialize, Serialize};

/// Where a person stands: the journal's one lifecycle status (rules see it as
/// `person.status`; a person not applied yet is shown to rules as `active`).
pub use crate::journal::PersonStatus;

/// The facts rules are evaluated against (§4's native person fields plus status and source).
///
/// Absent optional fields are `None`; rules see them as `""` (see the module docs).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PersonFacts {
    /// The source's immutable id for the person.
    pub id: String,
    pub email: Option<String>,
    pub name: Option<String>,
    pub department: Option<String>,
    pub title: Option<String>,
    pub division: Option<String>,
    pub cost_center: Option<String>,
    pub location: Option<String>,
    pub worker_type: Option<String>,
    pub manager_email: Option<String>,
    #[serde(default)]
    pub groups: Vec<String>,
    #[serde(default)]
    pub attributes: serde_json::Map<String, serde_json::Value>,
    #[serde(default)]
    pub status: PersonStatus,
    /// Name of the configured source the facts came from.
    pub source: String,
}

/// The keys of the `person` map, in the order the docs list them.
pub(crate) const PERSON_FIELDS: [&str; 14] = [
    "id",
    "email",
    "name",
    "department",
    "title",
    "division",
    "cost_center",
    "location",
    "worker_type",
    "manager_email",
    "groups",
    "attributes",
    "status",
    "source",
];

impl PersonFacts {
    /// The CEL value bound to `person`: a map with every key of [`PERSON_FIELDS`] present,
    /// so a field test never fails for lack of a key.
    pub(crate) fn to_cel(&self) -> Value {
        let text = |v: &Option<String>| Value::from(v.clone().unwrap_or_default());
        let mut map: HashMap<&'static str, Value> = HashMap::with_capacity(PERSON_FIELDS.len());
        map.insert("id", Value::from(self.id.clone()));
        map.insert("email", text(&self.email));
        map.insert("name", text(&self.name));
        map.insert("department", text(&self.department));
        map.insert("title", text(&self.title));
        map.insert("division", text(&self.division));
        map.insert("cost_center", text(&self.cost_center));
        map.insert("location", text(&self.location));
        map.insert("worker_type", text(&self.worker_type));
        map.insert("manager_email", text(&self.manager_email));
        map.insert(
            "groups",
            Value::List(Arc::new(
                self.groups.iter().map(|g| Value::from(g.clone())).collect(),
            )),
        );
        map.insert("attributes", json_object(&self.attributes));
        map.insert("status", Value::from(self.status.as_str()));
        map.insert("source", Value::from(self.source.clone()));
        Value::Map(Map::from(map))
    }
}

fn json_object(object: &serde_json::Map<String, serde_json::Value>) -> Value {
    let map: HashMap<String, Value> = object
        .iter()
        .map(|(k, v)| (k.clone(), json_value(v)))
        .collect();
    Value::Map(Map::from(map))
}

/// JSON → CEL: integers become `int` (`uint` beyond `i64`), other numbers `double`.
fn json_value(value: &serde_json::Value) -> Value {
    match value {
        serde_json::Value::Null => Value::Null,
        serde_json::Value::Bool(b) => Value::Bool(*b),
        serde_json::Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::Int(i)
            } else if let Some(u) = n.as_u64() {
                Value::UInt(u)
            } else {
                n.as_f64().map_or(Value::Null, Value::Float)
            }
        }
        serde_json::Value::String(s) => Value::from(s.clone()),
        serde_json::Value::Array(items) => {
            Value::List(Arc::new(items.iter().map(json_value).collect()))
        }
        serde_json::Value::Object(object) => json_object(object),
    }
}
