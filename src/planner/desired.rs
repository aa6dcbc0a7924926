//! From a journaled person to the access rules grant them.

use serde_json::Value;

use super::Desired;
use crate::admin_api::{OrgRole, WorkspaceRole};
use crate::journal::PersonRow;
use crate::rules::{GrantSource, PersonFacts, PersonStatus, RuleSet};

fn text(attrs: &Value, key: &str) -> Option<String> {
    attrs.get(key).and_then(Value::as_str).map(str::to_owned)
}

/// The facts rules see, from the person's merged attributes and lifecycle status.
pub fn person_facts(person: &PersonRow) -> PersonFacts {
    let a = &person.attributes;
    PersonFacts {
        id: person.source_person_id.clone(),
        email: person.email.clone().or_else(|| text(a, "email")),
        name: text(a, "name"),
        department: text(a, "department"),
        title: text(a, "title"),
        division: text(a, "division"),
        cost_center: text(a, "cost_center"),
        location: text(a, "location"),
        worker_type: text(a, "worker_type"),
        manager_email: text(a, "manager_email"),
        groups: a
            .get("groups")
            .and_then(Value::as_array)
            .map(|g| {
                g.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default(),
        attributes: a
            .get("attributes")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default(),
        status: match person.status {
            // Rules are asked about a person whose first event is being applied: they work here.
            PersonStatus::New => PersonStatus::Active,
            status => status,
        },
        source: person.source.clone(),
    }
}

fn credited(source: &GrantSource) -> String {
    match source {
        GrantSource::Rule { name, .. } => name.clone(),
        GrantSource::Default => "default".to_owned(),
    }
}

/// Evaluates the rules for a person and converts the decision to Admin API terms.
pub fn desired_access(rules: &RuleSet, person: &PersonRow) -> Desired {
    let decision = rules.evaluate(&person_facts(person));
    let explanation = serde_json::to_value(&decision.explanation).unwrap_or(Value::Null);
    let org_role = decision.org_role.map(|r| {
        r.as_str()
            .parse::<OrgRole>()
            .unwrap_or_else(|_| OrgRole::Other(r.as_str().to_owned()))
    });
    let org_role_rule = decision
        .explanation
        .org_role
        .as_ref()
        .map(|a| credited(&a.source));
    let workspaces = decision
        .workspaces
        .iter()
        .map(|(name, role)| {
            let rule = decision
                .explanation
                .workspaces
                .get(name)
                .map_or_else(|| "rules".to_owned(), |a| credited(&a.source));
            let role = role
                .as_str()
                .parse::<WorkspaceRole>()
                .unwrap_or_else(|_| WorkspaceRole::Other(role.as_str().to_owned()));
            (name.clone(), (role, rule))
        })
        .collect();
    Desired {
        org_role,
        org_role_rule,
        workspaces,
        explanation,
    }
}
