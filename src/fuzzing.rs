//! Entry points for the fuzz targets (`fuzz/`, FUZZING.md) into parsers that are private to
//! the crate. Not an API: nothing else may call these.

use serde_json::{Map, Value};

use crate::scim::filter::{self, Scope};
use crate::scim::schema::ResourceType;

fn resource_type(user: bool) -> ResourceType {
    if user {
        ResourceType::User
    } else {
        ResourceType::Group
    }
}

/// Parses a SCIM filter for Users (or Groups) and, when it parses, evaluates it on `object`.
pub fn scim_filter(user: bool, text: &str, object: &Map<String, Value>) -> Option<bool> {
    filter::parse(Scope::Resource(resource_type(user)), text)
        .ok()
        .map(|f| f.matches(object))
}

/// Applies a SCIM PATCH body to a stored User (or Group); whether it applied.
pub fn scim_patch(user: bool, resource: &Map<String, Value>, body: &Value) -> bool {
    crate::scim::patch::apply(resource_type(user), resource, body).is_ok()
}
