//! The attribute catalog (RFC 7643 §4, §6) and the discovery documents built from it:
//! `/ServiceProviderConfig`, `/Schemas`, `/ResourceTypes`. What is declared here is what the
//! filter parser, the PATCH engine and resource validation accept, and nothing more.

use serde_json::{Value, json};

pub(crate) const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub(crate) const ENTERPRISE_SCHEMA: &str =
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
pub(crate) const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
pub(crate) const LIST_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
#[cfg(test)] // Keycard accepts a PatchOp by its shape; tests send the schema as IdPs do.
pub(crate) const PATCH_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
pub(crate) const SPC_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig";
pub(crate) const RESOURCE_TYPE_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:ResourceType";
pub(crate) const SCHEMA_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Schema";

/// Most resources one list response returns (`filter.maxResults`).
pub(crate) const MAX_RESULTS: usize = 200;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    String,
    Boolean,
    Complex,
    Reference,
    Binary,
    DateTime,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Self::String => "string",
            Self::Boolean => "boolean",
            Self::Complex => "complex",
            Self::Reference => "reference",
            Self::Binary => "binary",
            Self::DateTime => "dateTime",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mutability {
    ReadWrite,
    ReadOnly,
    Immutable,
    WriteOnly,
}

/// One attribute definition.
#[derive(Debug)]
pub(crate) struct AttrDef {
    pub name: &'static str,
    pub kind: Kind,
    pub multi: bool,
    pub required: bool,
    pub case_exact: bool,
    pub mutability: Mutability,
    pub sub: &'static [AttrDef],
}

const fn attr(name: &'static str, kind: Kind) -> AttrDef {
    AttrDef {
        name,
        kind,
        multi: false,
        required: false,
        case_exact: false,
        mutability: Mutability::ReadWrite,
        sub: &[],
    }
}

const fn complex(name: &'static str, multi: bool, sub: &'static [AttrDef]) -> AttrDef {
    AttrDef {
        name,
        kind: Kind::Complex,
        multi,
        required: false,
        case_exact: false,
        mutability: Mutability::ReadWrite,
        sub,
    }
}

const fn required(mut a: AttrDef) -> AttrDef {
    a.required = true;
    a
}

const fn read_only(mut a: AttrDef) -> AttrDef {
    a.mutability = Mutability::ReadOnly;
    a
}

const fn case_exact(mut a: AttrDef) -> AttrDef {
    a.case_exact = true;
    a
}

const MULTI_STD: &[AttrDef] = &[
    attr("value", Kind::String),
    attr("display", Kind::String),
    attr("type", Kind::String),
    attr("primary", Kind::Boolean),
];

const MULTI_REF: &[AttrDef] = &[
    attr("value", Kind::Reference),
    attr("display", Kind::String),
    attr("type", Kind::String),
    attr("primary", Kind::Boolean),
];

const MULTI_BINARY: &[AttrDef] = &[
    attr("value", Kind::Binary),
    attr("display", Kind::String),
    attr("type", Kind::String),
    attr("primary", Kind::Boolean),
];

const NAME: &[AttrDef] = &[
    attr("formatted", Kind::String),
    attr("familyName", Kind::String),
    attr("givenName", Kind::String),
    attr("middleName", Kind::String),
    attr("honorificPrefix", Kind::String),
    attr("honorificSuffix", Kind::String),
];

const ADDRESS: &[AttrDef] = &[
    attr("formatted", Kind::String),
    attr("streetAddress", Kind::String),
    attr("locality", Kind::String),
    attr("region", Kind::String),
    attr("postalCode", Kind::String),
    attr("country", Kind::String),
    attr("type", Kind::String),
    attr("primary", Kind::Boolean),
];

const USER_GROUPS: &[AttrDef] = &[
    read_only(attr("value", Kind::String)),
    read_only(attr("$ref", Kind::Reference)),
    read_only(attr("display", Kind::String)),
    read_only(attr("type", Kind::String)),
];

pub(crate) const USER_ATTRS: &[AttrDef] = &[
    required(attr("userName", Kind::String)),
    complex("name", false, NAME),
    attr("displayName", Kind::String),
    attr("nickName", Kind::String),
    attr("profileUrl", Kind::Reference),
    attr("title", Kind::String),
    attr("userType", Kind::String),
    attr("preferredLanguage", Kind::String),
    attr("locale", Kind::String),
    attr("timezone", Kind::String),
    attr("active", Kind::Boolean),
    AttrDef {
        mutability: Mutability::WriteOnly,
        case_exact: true,
        ..attr("password", Kind::String)
    },
    complex("emails", true, MULTI_STD),
    complex("phoneNumbers", true, MULTI_STD),
    complex("ims", true, MULTI_STD),
    complex("photos", true, MULTI_REF),
    complex("addresses", true, ADDRESS),
    read_only(complex("groups", true, USER_GROUPS)),
    complex("entitlements", true, MULTI_STD),
    complex("roles", true, MULTI_STD),
    complex("x509Certificates", true, MULTI_BINARY),
];

const MANAGER: &[AttrDef] = &[
    attr("value", Kind::String),
    attr("$ref", Kind::Reference),
    read_only(attr("displayName", Kind::String)),
];

pub(crate) const ENTERPRISE_ATTRS: &[AttrDef] = &[
    attr("employeeNumber", Kind::String),
    attr("costCenter", Kind::String),
    attr("organization", Kind::String),
    attr("division", Kind::String),
    attr("department", Kind::String),
    complex("manager", false, MANAGER),
];

const MEMBERS: &[AttrDef] = &[
    AttrDef {
        mutability: Mutability::Immutable,
        case_exact: true,
        ..attr("value", Kind::String)
    },
    AttrDef {
        mutability: Mutability::Immutable,
        ..attr("$ref", Kind::Reference)
    },
    read_only(attr("display", Kind::String)),
    AttrDef {
        mutability: Mutability::Immutable,
        ..attr("type", Kind::String)
    },
];

pub(crate) const GROUP_ATTRS: &[AttrDef] = &[
    required(attr("displayName", Kind::String)),
    complex("members", true, MEMBERS),
];

const META: &[AttrDef] = &[
    read_only(attr("resourceType", Kind::String)),
    read_only(attr("created", Kind::DateTime)),
    read_only(attr("lastModified", Kind::DateTime)),
    read_only(attr("location", Kind::Reference)),
    read_only(case_exact(attr("version", Kind::String))),
];

/// Attributes every resource has (RFC 7643 §3.1); filterable, not listed in `/Schemas`.
pub(crate) const COMMON_ATTRS: &[AttrDef] = &[
    read_only(case_exact(attr("id", Kind::String))),
    case_exact(attr("externalId", Kind::String)),
    read_only(complex("meta", false, META)),
];

/// The resource types served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ResourceType {
    User,
    Group,
}

impl ResourceType {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::User => "User",
            Self::Group => "Group",
        }
    }

    pub(crate) fn endpoint(self) -> &'static str {
        match self {
            Self::User => "Users",
            Self::Group => "Groups",
        }
    }

    pub(crate) fn core_schema(self) -> &'static str {
        match self {
            Self::User => USER_SCHEMA,
            Self::Group => GROUP_SCHEMA,
        }
    }

    pub(crate) fn core_attrs(self) -> &'static [AttrDef] {
        match self {
            Self::User => USER_ATTRS,
            Self::Group => GROUP_ATTRS,
        }
    }

    /// Extension schemas this type accepts, with their attributes.
    pub(crate) fn extensions(self) -> &'static [(&'static str, &'static [AttrDef])] {
        match self {
            Self::User => &[(ENTERPRISE_SCHEMA, ENTERPRISE_ATTRS)],
            Self::Group => &[],
        }
    }
}

/// Finds an attribute by name, case-insensitively (RFC 7643 §2.1).
pub(crate) fn find<'a>(attrs: &'a [AttrDef], name: &str) -> Option<&'a AttrDef> {
    attrs.iter().find(|a| a.name.eq_ignore_ascii_case(name))
}

fn attr_json(a: &AttrDef) -> Value {
    let mutability = match a.mutability {
        Mutability::ReadWrite => "readWrite",
        Mutability::ReadOnly => "readOnly",
        Mutability::Immutable => "immutable",
        Mutability::WriteOnly => "writeOnly",
    };
    let returned = match (a.mutability, a.name) {
        (Mutability::WriteOnly, _) => "never",
        (_, "id") => "always",
        _ => "default",
    };
    let uniqueness = match a.name {
        "userName" | "id" => "server",
        _ => "none",
    };
    let mut out = json!({
        "name": a.name,
        "type": a.kind.as_str(),
        "multiValued": a.multi,
        "description": a.name,
        "required": a.required,
        "caseExact": a.case_exact,
        "mutability": mutability,
        "returned": returned,
        "uniqueness": uniqueness,
    });
    if let Some(obj) = out.as_object_mut() {
        if a.kind == Kind::Reference {
            let types = match a.name {
                "$ref" => json!(["User", "Group"]),
                _ => json!(["external"]),
            };
            obj.insert("referenceTypes".into(), types);
        }
        if !a.sub.is_empty() {
            obj.insert(
                "subAttributes".into(),
                Value::Array(a.sub.iter().map(attr_json).collect()),
            );
        }
    }
    out
}

fn schema_json(base: &str, id: &str, name: &str, attrs: &[AttrDef]) -> Value {
    json!({
        "schemas": [SCHEMA_SCHEMA],
        "id": id,
        "name": name,
        "description": format!("{name} as Keycard stores it"),
        "attributes": attrs.iter().map(attr_json).collect::<Vec<_>>(),
        "meta": { "resourceType": "Schema", "location": format!("{base}/Schemas/{id}") },
    })
}

/// Every schema served, by id.
pub(crate) fn schemas(base: &str) -> Vec<Value> {
    vec![
        schema_json(base, USER_SCHEMA, "User", USER_ATTRS),
        schema_json(base, ENTERPRISE_SCHEMA, "EnterpriseUser", ENTERPRISE_ATTRS),
        schema_json(base, GROUP_SCHEMA, "Group", GROUP_ATTRS),
    ]
}

pub(crate) fn resource_types(base: &str) -> Vec<Value> {
    [ResourceType::User, ResourceType::Group]
        .into_iter()
        .map(|rt| {
            let extensions: Vec<Value> = rt
                .extensions()
                .iter()
                .map(|(urn, _)| json!({ "schema": urn, "required": false }))
                .collect();
            json!({
                "schemas": [RESOURCE_TYPE_SCHEMA],
                "id": rt.as_str(),
                "name": rt.as_str(),
                "endpoint": format!("/{}", rt.endpoint()),
                "description": format!("{} provisioned by this source", rt.endpoint()),
                "schema": rt.core_schema(),
                "schemaExtensions": extensions,
                "meta": {
                    "resourceType": "ResourceType",
                    "location": format!("{base}/ResourceTypes/{}", rt.as_str()),
                },
            })
        })
        .collect()
}

/// Declares exactly what is implemented: PATCH, filters, ETags (If-Match / If-None-Match);
/// no bulk, no sort, no password change.
pub(crate) fn service_provider_config(base: &str) -> Value {
    json!({
        "schemas": [SPC_SCHEMA],
        "documentationUri": "https://github.com/keycard/keycard/blob/main/docs/scim.md",
        "patch": { "supported": true },
        "bulk": { "supported": false, "maxOperations": 0, "maxPayloadSize": 0 },
        "filter": { "supported": true, "maxResults": MAX_RESULTS },
        "changePassword": { "supported": false },
        "sort": { "supported": false },
        "etag": { "supported": true },
        "authenticationSchemes": [{
            "type": "oauthbearertoken",
            "name": "Bearer token",
            "description": "The static bearer token configured for this SCIM source (token_env / token_file)",
            "primary": true,
        }],
        "meta": {
            "resourceType": "ServiceProviderConfig",
            "location": format!("{base}/ServiceProviderConfig"),
        },
    })
}
