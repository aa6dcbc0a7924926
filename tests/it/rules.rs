//! The rules module through its public API, as `keycard check-config` and `keycard plan`
//! will use it: TOML sections in, located errors or decisions out.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure should stop the test loudly

use keycard::rules::{
    Basis, DefaultConfig, OrgRole, PersonFacts, RuleConfig, RuleErrorKind, RuleSet, WorkspaceRole,
};
use serde::Deserialize;

#[derive(Deserialize)]
struct Config {
    #[serde(default)]
    rules: Vec<RuleConfig>,
    default: Option<DefaultConfig>,
}

fn load(text: &str) -> Config {
    toml::from_str(text).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn spec_config_decides_for_the_spec_person() {
    let config = load(
        r#"
        [[rules]]
        name = "engineering"
        when = 'person.department == "Engineering" && person.worker_type != "contractor"'
        org_role = "developer"
        workspaces = { "Engineering" = "workspace_developer", "Sandbox" = "workspace_user" }

        [default]
        org_role = "user"
        "#,
    );
    let rules = RuleSet::compile(&config.rules, config.default.as_ref())
        .unwrap_or_else(|errors| panic!("{errors:?}"));
    let managed: Vec<_> = rules.managed_workspaces().into_iter().collect();
    assert_eq!(managed, ["Engineering", "Sandbox"]);

    // §4's sample person, as the native event carries it.
    let person: PersonFacts = serde_json::from_value(serde_json::json!({
        "id": "E1234",
        "email": "ada@example.com",
        "name": "Ada Lovelace",
        "department": "Engineering",
        "title": "Staff Engineer",
        "division": "R&D",
        "cost_center": "CC-42",
        "location": "London",
        "worker_type": "employee",
        "manager_email": "grace@example.com",
        "groups": ["ml-research"],
        "attributes": { "level": "L6" },
        "source": "hr"
    }))
    .unwrap_or_else(|e| panic!("{e}"));

    let decision = rules.evaluate(&person);
    assert_eq!(decision.org_role, Some(OrgRole::Developer));
    assert_eq!(
        decision.workspaces.get("Engineering"),
        Some(&WorkspaceRole::Developer)
    );
    let shown = decision.to_string();
    assert!(
        shown.contains("rules[0] \"engineering\": matched"),
        "{shown}"
    );
    assert!(
        shown.contains("org role: developer from rules[0] \"engineering\""),
        "{shown}"
    );

    let stranger = PersonFacts {
        id: "E2".into(),
        source: "hr".into(),
        ..PersonFacts::default()
    };
    let decision = rules.evaluate(&stranger);
    assert_eq!(decision.explanation.basis, Basis::Default);
    assert_eq!(decision.org_role, Some(OrgRole::User));
    assert!(decision.workspaces.is_empty());
}

#[test]
fn broken_config_reports_every_error_with_its_location() {
    let config = load(
        r#"
        [[rules]]
        name = "engineering"
        when = 'person.department == "Engineering" &&'
        org_role = "developer"

        [[rules]]
        name = "admins"
        when = 'person.title.contains("Head")'
        org_role = "admin"

        [[rules]]
        name = "engineering"
        when = 'isManager(person)'
        workspaces = { "Engineering" = "workspace_billing" }
        "#,
    );
    let errors = match RuleSet::compile(&config.rules, config.default.as_ref()) {
        Ok(_) => panic!("expected errors"),
        Err(errors) => errors,
    };
    let shown: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
    let expect = |prefix: &str, kind: RuleErrorKind| {
        assert!(
            errors
                .iter()
                .zip(&shown)
                .any(|(e, s)| e.kind == kind && s.starts_with(prefix)),
            "no {kind:?} at {prefix}:\n{}",
            shown.join("\n")
        );
    };
    expect("rules[0] \"engineering\".when:1:", RuleErrorKind::Syntax);
    expect(
        "rules[1] \"admins\".org_role: ",
        RuleErrorKind::AdministrativeRole,
    );
    expect(
        "rules[2] \"engineering\".name: ",
        RuleErrorKind::DuplicateName,
    );
    expect(
        "rules[2] \"engineering\".when:1:1: ",
        RuleErrorKind::UnknownFunction,
    );
    expect(
        "rules[2] \"engineering\".workspaces.\"Engineering\": ",
        RuleErrorKind::InvalidWorkspaceRole,
    );
    assert_eq!(errors.len(), 5, "{}", shown.join("\n"));
}
